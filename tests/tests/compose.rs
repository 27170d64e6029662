//! The compose cloud (`deploy/compose`, issue 13 item 4): Mosquitto with the repo's config and ACL
//! over TLS, two analyzer replicas of one config on a shared subscription, PostgreSQL, all built
//! here from the local Debian 12 base, certificates made by `make-certs.sh` (the analyzer's PKI
//! command). A device's crops of one track, published with its own certificate, reach both
//! replicas and come out as exactly one alert, on MQTT (read with the alert consumer's
//! certificate) and in both replicas' APIs. A project unique to the test, torn down (`down -v`)
//! on failure too. Skipped, saying so, without a Docker engine, the base image, or compose.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cascade_tests::docker::{self, Compose, Image};
use cascade_tests::*;
use common::{envelope, good_crop};

mod common;

const DEVICE: &str = "dev-compose";
const CROPS: u64 = 6;

/// An identity's files made by make-certs.sh (`folder`, `stem`.pem/.key, ca.pem) as the
/// harness's `Certs` (it reads only the CA and the client pair).
fn identity(folder: &Path, stem: &str) -> Certs {
    let ca = folder.join("ca.pem");
    Certs {
        server_cert: ca.clone(),
        server_key: ca.clone(),
        client_cert: folder.join(format!("{stem}.pem")),
        client_key: folder.join(format!("{stem}.key")),
        ca,
    }
}

fn crops() -> Vec<Vec<u8>> {
    (0..CROPS)
        .map(|n| {
            let mut c = good_crop(DEVICE, &format!("compose-{n}"));
            c.sequence = n + 1;
            c.capture_time_us += i64::try_from(n).unwrap_or(0) * 200_000;
            envelope(&c)
        })
        .collect()
}

fn alert_count(api: SocketAddr, token: &str) -> Option<usize> {
    let path = format!("/api/alerts?device={DEVICE}");
    let (status, body) = http_request(api, "GET", &path, Some(token)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    (status == 200).then(|| v["alerts"].as_array().map_or(0, Vec::len))
}

#[test]
fn two_replicas_on_postgres_behind_mosquitto_raise_one_alert() {
    if docker::available().is_none() {
        return;
    }
    let Some(command) = docker::compose_command() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let image = Image::analyzer(&docker::unique("compose")).expect("analyzer image");
    let pki = dir.join("pki");
    let compose_dir = repo_root().join("deploy/compose");
    docker::run(
        std::process::Command::new(compose_dir.join("make-certs.sh"))
            .arg(&pki)
            .arg(DEVICE)
            .env("CLOUD_ANALYZER", binary("cloud-analyzer")),
    )
    .expect("certificates");
    let (token, lines) = docker::api_token("compose-test", "read").expect("a token");
    let config = dir.join("cloud-analyzer.toml");
    std::fs::write(
        &config,
        docker::test_config("deploy/compose/cloud-analyzer.toml", &lines).expect("config"),
    )
    .expect("config written");
    docker::world_readable(&config).expect("chmod");

    let (pki_s, config_s) = (pki.display().to_string(), config.display().to_string());
    let compose = Compose::new(
        command,
        &compose_dir.join("compose.yaml"),
        &docker::unique("compose"),
        &[
            ("CASCADE_DB_PASSWORD", "compose-test-password"),
            ("CASCADE_PKI", &pki_s),
            ("CASCADE_ANALYZER_CONFIG", &config_s),
            ("CASCADE_ANALYZER_IMAGE", &image.tag),
            ("CASCADE_MQTT", "127.0.0.1:"),
            ("CASCADE_API_1", "127.0.0.1:"),
            ("CASCADE_API_2", "127.0.0.1:"),
        ],
    );
    compose
        .run(&["up", "-d", "--build"])
        .unwrap_or_else(|e| panic!("compose up: {e}\n{}", compose.logs()));
    let api = |service: &str| {
        compose
            .container(service)
            .and_then(|c| c.host_port(8080))
            .unwrap_or_else(|e| panic!("{service}: {e}\n{}", compose.logs()))
    };
    let apis = [api("analyzer-1"), api("analyzer-2")];
    let broker = compose
        .container("mosquitto")
        .and_then(|c| c.host_port(8883))
        .expect("broker port");
    for a in apis {
        eventually(Duration::from_secs(90), || {
            http_get(a, "/readyz").is_ok_and(|(s, _)| s == 200)
        })
        .unwrap_or_else(|_| panic!("{a} not ready; logs:\n{}", compose.logs()));
    }

    let alerts = identity(&pki.join("alerts"), "cascade-alerts");
    let sub = subscribe(broker.port(), &alerts, "cascade/v1/alerts/#");
    eventually(Duration::from_secs(20), || sub.is_subscribed()).expect("subscribed");
    let device = identity(&pki.join(format!("devices/{DEVICE}")), DEVICE);
    publish_all(
        broker.port(),
        &device,
        &format!("cascade/v1/{DEVICE}/crops"),
        crops(),
    )
    .unwrap_or_else(|e| panic!("published: {e}\n{}", compose.logs()));

    // Every crop decided, between them.
    let decided = |m: &str| -> f64 { apis.iter().map(|a| api_metric(*a, m, &[])).sum() };
    eventually(Duration::from_secs(60), || {
        decided("cascade_cloud_crops_decided_total") >= CROPS as f64
    })
    .unwrap_or_else(|_| panic!("crops not decided; logs:\n{}", compose.logs()));
    let news = || {
        sub.messages()
            .iter()
            .filter_map(|(_, p)| serde_json::from_slice::<serde_json::Value>(p).ok())
            .filter(|v| v["type"] == "new" && v["device_id"] == DEVICE)
            .count()
    };
    eventually(Duration::from_secs(20), || news() >= 1)
        .unwrap_or_else(|_| panic!("no alert on MQTT; logs:\n{}", compose.logs()));
    // Both replicas took crops of the track, and they agree on its one alert.
    for a in apis {
        assert!(
            api_metric(a, "cascade_cloud_crops_received_total", &[]) >= 1.0,
            "{a} received none of the shared crops"
        );
    }
    assert_eq!(
        decided("cascade_cloud_crops_received_total"),
        CROPS as f64,
        "each crop delivered once"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(news(), 1, "one alert for the track: {:?}", sub.messages());
    for a in apis {
        assert_eq!(alert_count(a, &token), Some(1), "{a} lists the one alert");
    }
}
