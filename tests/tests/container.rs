//! The analyzer's container image (issue 13 item 4): built by `scripts/build-image.sh` from the
//! suite's binary on the local Debian 12 base, run with its embedded broker (TLS, client
//! certificates) and a mounted config and certificates, ports published on loopback. It runs as a
//! non-root user, turns healthy (its HEALTHCHECK), answers `/readyz`, and a crop published to its
//! broker comes out as an alert on MQTT and in the API. Skipped, saying so, without a Docker engine
//! or the base image.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cascade_tests::docker::{self, Container, Image};
use cascade_tests::*;
use common::{envelope, good_crop};

mod common;

const DEVICE: &str = "dev-container";

/// The folder mounted at /etc/cascade: certificates and the config, readable by the image's user.
fn etc_dir(dir: &Path, token_lines: &str) -> (std::path::PathBuf, Certs) {
    let etc = dir.join("etc");
    std::fs::create_dir(&etc).expect("etc");
    let certs = make_certs(&etc).expect("certificates");
    let config = docker::test_config("deploy/cloud-analyzer.container.toml", token_lines)
        .expect("the baked config");
    std::fs::write(etc.join("cloud-analyzer.toml"), config).expect("config");
    docker::world_readable(&etc).expect("chmod");
    for f in std::fs::read_dir(&etc).expect("ls").flatten() {
        docker::world_readable(&f.path()).expect("chmod");
    }
    (etc, certs)
}

fn api_get(api: SocketAddr, path: &str, token: &str) -> (u16, serde_json::Value) {
    let (status, body) = http_request(api, "GET", path, Some(token)).expect("answered");
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[test]
fn the_image_runs_answers_readyz_and_turns_a_crop_into_an_alert() {
    if docker::available().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let image = Image::analyzer(&docker::unique("image")).expect("image builds");
    let (token, lines) = docker::api_token("container-test", "read").expect("a token");
    let (etc, certs) = etc_dir(tmp.path(), &lines);
    let mount = format!("{}:/etc/cascade:ro", etc.display());
    let c = Container::run(
        &docker::unique("analyzer"),
        &[
            "-p",
            "127.0.0.1::8883",
            "-p",
            "127.0.0.1::8080",
            "-v",
            &mount,
            &image.tag,
        ],
    )
    .expect("container starts");
    assert_eq!(
        c.inspect("{{.Config.User}}"),
        "10001:10001",
        "a numeric non-root user"
    );
    let port = |p: u16| {
        c.host_port(p)
            .unwrap_or_else(|e| panic!("port {p}: {e}; log:\n{}", c.logs()))
    };
    let (api, broker) = (port(8080), port(8883));
    eventually(Duration::from_secs(60), || {
        http_get(api, "/readyz").is_ok_and(|(s, _)| s == 200)
    })
    .unwrap_or_else(|_| panic!("no /readyz 200; log:\n{}", c.logs()));
    let who = docker::docker(&["exec", &c.name, "id", "-un"]).expect("id -un");
    assert_eq!(who, "cascade", "runs as the image's own user");

    let sub = subscribe(broker.port(), &certs, "cascade/v1/alerts/#");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("subscribed");
    let crop = envelope(&good_crop(DEVICE, "container-1"));
    publish_all(
        broker.port(),
        &certs,
        &format!("cascade/v1/{DEVICE}/crops"),
        vec![crop],
    )
    .expect("published");
    let alert = |m: &(String, Vec<u8>)| {
        serde_json::from_slice::<serde_json::Value>(&m.1)
            .is_ok_and(|v| v["type"] == "new" && v["device_id"] == DEVICE)
    };
    eventually(Duration::from_secs(30), || sub.messages().iter().any(alert))
        .unwrap_or_else(|_| panic!("no alert on MQTT; log:\n{}", c.logs()));
    let (status, list) = api_get(api, &format!("/api/alerts?device={DEVICE}"), &token);
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["alerts"].as_array().map(Vec::len),
        Some(1),
        "one alert in the API: {list}"
    );
    // Its HEALTHCHECK (bash's /dev/tcp on /livez) passes: healthy within its first intervals.
    eventually(Duration::from_secs(60), || {
        c.inspect("{{.State.Health.Status}}") == "healthy"
    })
    .unwrap_or_else(|_| panic!("not healthy: {}", c.inspect("{{json .State.Health}}")));
    // State lives in the volume, not in the image's layers.
    let mounts = c.inspect("{{range .Mounts}}{{.Destination}} {{end}}");
    assert!(mounts.contains("/var/lib/cascade-cloud"), "{mounts}");
}
