//! The whole cascade: the real `cloud-analyzer` and `edge-agent` binaries on a generated clip with a
//! person-like target, an independent MQTT subscriber for alerts, and the HTTP API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use cascade_tests::*;
use common::{envelope, good_crop, noise};

mod common;

struct Cascade {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    certs: Certs,
    port: u16,
    api: SocketAddr,
    analyzer: AnalyzerProcess,
    _mosquitto: Option<Mosquitto>,
}

fn api_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Analyzer with its embedded broker, TLS with client certificates.
fn embedded(cooldown_s: f64) -> Cascade {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let certs = make_certs(&dir).expect("certs");
    let (port, api) = (free_port(), api_addr());
    let broker = embedded_broker_toml(port, &certs);
    let analyzer = AnalyzerProcess::start(
        &dir,
        &analyzer_config(&dir, &repo_root(), &broker, api, cooldown_s),
        api,
    )
    .expect("analyzer starts");
    Cascade {
        _dir: tmp,
        dir,
        certs,
        port,
        api,
        analyzer,
        _mosquitto: None,
    }
}

/// Analyzer and edge on a real Mosquitto, TLS with client certificates.
fn on_mosquitto(cooldown_s: f64) -> Option<Cascade> {
    let bin = mosquitto_binary()?;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let mosquitto = Mosquitto::start(bin, &dir, true).expect("mosquitto");
    let certs = mosquitto.certs.clone();
    let api = api_addr();
    let broker = external_broker_toml(mosquitto.port, &certs);
    let analyzer = AnalyzerProcess::start(
        &dir,
        &analyzer_config(&dir, &repo_root(), &broker, api, cooldown_s),
        api,
    )
    .expect("analyzer starts");
    Some(Cascade {
        _dir: tmp,
        dir,
        port: mosquitto.port,
        certs,
        api,
        analyzer,
        _mosquitto: Some(mosquitto),
    })
}

/// Alert events (JSON) and camera states received so far.
fn events(sub: &Received) -> (Vec<serde_json::Value>, Vec<String>) {
    let (mut ev, mut states) = (Vec::new(), Vec::new());
    for (topic, payload) in sub.messages() {
        if topic.ends_with("/state") {
            states.push(String::from_utf8_lossy(&payload).to_string());
        } else if let Ok(v) = serde_json::from_slice(&payload) {
            ev.push(v);
        }
    }
    (ev, states)
}

fn count_new_per_alert(ev: &[serde_json::Value]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for e in ev.iter().filter(|e| e["type"] == "new") {
        *m.entry(e["alert_id"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    m
}

/// The crop messages received (not the words about tracks, which carry no picture and are not
/// stored as crops).
fn crops_only(sub: &Received) -> Vec<cascade_shared::wire::Crop> {
    sub.all()
        .iter()
        .map(|p| cascade_shared::wire::decode(p).expect("a valid message").1)
        .filter(|c| c.track_event() == cascade_shared::wire::TrackEvent::Crop)
        .collect()
}

fn metric(c: &Cascade, name: &str) -> f64 {
    let (_, body) = http_get(c.api, "/metrics").expect("metrics");
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn walk_and_check_alerts(c: &Cascade) {
    let sub = subscribe(c.port, &c.certs, "cascade/v1/alerts/#");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("alert subscriber");
    let edge = edge_config(&c.dir, &repo_root(), c.port, &c.certs, "", false);
    run_edge(&edge).expect("edge agent runs");
    eventually(Duration::from_secs(30), || {
        events(&sub).0.iter().any(|e| e["type"] == "end")
    })
    .unwrap_or_else(|_| panic!("no alert ended; analyzer log:\n{}", c.analyzer.log_text()));
    let (ev, states) = events(&sub);
    let news = count_new_per_alert(&ev);
    assert!(!news.is_empty(), "an alert was raised: {ev:?}");
    assert!(
        news.values().all(|n| *n == 1),
        "each alert is new exactly once: {news:?}"
    );
    assert_eq!(
        states.first().map(String::as_str),
        Some("ON"),
        "camera state: {states:?}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("OFF"),
        "camera state: {states:?}"
    );
    let first = &ev[0];
    for field in [
        "alert_id",
        "message_id",
        "capture_time_us",
        "edge_upload_time_us",
        "cloud_decision_time_us",
        "edge_score",
        "cloud_score",
        "box",
        "crop_url",
    ] {
        assert!(!first[field].is_null(), "alert has {field}: {first}");
    }
    assert_eq!(first["device_id"], "dev-e2e");

    // The API lists the alerts and serves the crops.
    let (status, list) = http_json(c.api, "/api/alerts?device=dev-e2e&limit=50").expect("alerts");
    assert_eq!(status, 200);
    let listed: Vec<&str> = list["alerts"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["alert_id"].as_str())
        .collect();
    for id in news.keys() {
        assert!(listed.contains(&id.as_str()), "{id} listed in {list}");
        let (status, one) = http_json(c.api, &format!("/api/alerts/{id}")).expect("alert");
        assert_eq!((status, one["alert_id"].as_str()), (200, Some(id.as_str())));
    }
    let url = first["crop_url"].as_str().expect("url");
    let path = &url[url.find("/api/").expect("api path")..];
    let (status, jpeg) = http_get(c.api, path).expect("crop");
    assert_eq!(status, 200);
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
    let (status, devices) = http_json(c.api, "/api/devices").expect("devices");
    assert_eq!(status, 200);
    assert!(
        devices["devices"][0]["crops"].as_u64().unwrap_or(0) >= 1,
        "{devices}"
    );
    // What the device runs, from its status message (design/ota.md).
    let agent = &devices["devices"][0]["agent"];
    assert_eq!(
        agent["version"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "{devices}"
    );
    let sha = agent["models"][0]["sha256"].as_str().unwrap_or("");
    assert!(
        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
        "{devices}"
    );
    assert_eq!(
        http_json(c.api, "/api/alerts/no-such-alert")
            .expect("404")
            .0,
        404
    );
    assert_eq!(http_json(c.api, "/api/alerts?limit=0").expect("400").0, 400);
    assert_eq!(http_get(c.api, "/api/crops/nope.jpg").expect("404").0, 404);
    assert_eq!(http_get(c.api, "/livez").expect("livez").0, 200);
}

#[test]
fn embedded_broker_cascade_raises_alerts() {
    let c = embedded(1.0);
    walk_and_check_alerts(&c);
}

#[test]
fn mosquitto_cascade_raises_alerts() {
    let Some(c) = on_mosquitto(1.0) else { return };
    walk_and_check_alerts(&c);
}

#[test]
fn analyzer_killed_mid_stream_stores_every_crop_once_and_alerts_once() {
    let Some(mut c) = on_mosquitto(60.0) else {
        return;
    };
    let crops = subscribe(c.port, &c.certs, "cascade/v1/+/crops");
    let alerts = subscribe(c.port, &c.certs, "cascade/v1/alerts/#");
    eventually(Duration::from_secs(10), || {
        crops.is_subscribed() && alerts.is_subscribed()
    })
    .expect("subscribers");
    // Upload on every detector run, in real time, so crops keep flowing while the analyzer dies.
    let edge = edge_config(
        &c.dir,
        &repo_root(),
        c.port,
        &c.certs,
        "reupload_interval_s = 0.05\nbetter_score = 0.0",
        true,
    );
    let edge_run = std::thread::spawn(move || run_edge(&edge));
    eventually(Duration::from_secs(20), || !crops.is_empty()).expect("crops flowing");
    c.analyzer.kill();
    std::thread::sleep(Duration::from_millis(1500));
    c.analyzer.restart().expect("analyzer restarts");
    edge_run.join().expect("edge thread").expect("edge agent");

    let sent: std::collections::HashSet<String> = crops_only(&crops)
        .into_iter()
        .map(|c| c.message_id)
        .collect();
    assert!(sent.len() >= 5, "enough crops to matter: {}", sent.len());
    eventually(Duration::from_secs(30), || {
        http_json(c.api, "/api/devices")
            .is_ok_and(|(_, d)| d["devices"][0]["crops"].as_u64() == Some(sent.len() as u64))
    })
    .unwrap_or_else(|_| {
        panic!(
            "stored {} of {} crops; log:\n{}",
            http_json(c.api, "/api/devices")
                .map(|d| d.1.to_string())
                .unwrap_or_default(),
            sent.len(),
            c.analyzer.log_text()
        )
    });
    eventually(Duration::from_secs(30), || {
        metric(&c, "cascade_cloud_pending_crops") == 0.0
    })
    .expect("all decided");
    std::thread::sleep(Duration::from_millis(500));
    let news = count_new_per_alert(&events(&alerts).0);
    assert!(!news.is_empty(), "alerts were raised");
    assert!(
        news.values().all(|n| *n == 1),
        "no alert raised twice: {news:?}"
    );
    assert_eq!(news.len(), 1, "one walker, one track, one alert: {news:?}");
}

#[test]
fn bad_inputs_are_rejected_by_reason_and_good_crops_still_alert() {
    use cascade_shared::wire::{BodyEncoding, CropEnvelope, SCHEMA_VERSION};
    use prost::Message;
    let c = embedded(60.0);
    let alerts = subscribe(c.port, &c.certs, "cascade/v1/alerts/#");
    eventually(Duration::from_secs(10), || alerts.is_subscribed()).expect("subscriber");
    let topic = "cascade/v1/dev-bad/crops";
    let random = noise(2000, 0x9E37_79B9);
    let good = envelope(&good_crop("dev-bad", "good-1"));
    let truncated = good[..good.len() / 2].to_vec();
    let mut wrong_version = CropEnvelope::decode(good.as_slice()).expect("envelope");
    wrong_version.schema_version = SCHEMA_VERSION + 1;
    let bomb = CropEnvelope {
        schema_version: SCHEMA_VERSION,
        encoding: BodyEncoding::Zstd as i32,
        uncompressed_size: 10_000,
        body: zstd::bulk::compress(&vec![0u8; 256 << 20], 19).expect("bomb"),
        upload_time_us: 0,
    };
    let mismatch = envelope(&good_crop("someone-else", "bad-device"));
    let mut not_jpeg = good_crop("dev-bad", "not-jpeg");
    not_jpeg.jpeg = b"GIF89a definitely not a jpeg".to_vec();
    let oversized = vec![0u8; 5 << 20];
    let bad = vec![
        random,
        truncated,
        wrong_version.encode_to_vec(),
        bomb.encode_to_vec(),
        mismatch,
        envelope(&not_jpeg),
        oversized,
    ];
    publish_all(c.port, &c.certs, topic, bad).expect("bad inputs published");
    publish_all(c.port, &c.certs, topic, vec![good.clone(), good])
        .expect("good crop published twice");

    eventually(Duration::from_secs(20), || {
        events(&alerts)
            .0
            .iter()
            .any(|e| e["message_id"] == "good-1")
    })
    .unwrap_or_else(|_| {
        panic!(
            "the good crop raised no alert; log:\n{}",
            c.analyzer.log_text()
        )
    });
    eventually(Duration::from_secs(10), || {
        metric(&c, "cascade_cloud_crops_received_total") >= 9.0
    })
    .expect("all received");
    for (reason, n) in [
        ("malformed", 2.0),
        ("schema_version", 1.0),
        ("decompress", 1.0),
        ("device_mismatch", 1.0),
        ("jpeg", 1.0),
        ("too_large", 1.0),
    ] {
        let got = metric(
            &c,
            &format!("cascade_cloud_crops_rejected_total{{reason=\"{reason}\"}}"),
        );
        assert_eq!(got, n, "rejections for {reason}");
    }
    assert_eq!(
        metric(&c, "cascade_cloud_crops_duplicate_total"),
        1.0,
        "the resent good crop is a duplicate"
    );
    let news = count_new_per_alert(&events(&alerts).0);
    assert_eq!(news.len(), 1, "{news:?}");
    let log = c.analyzer.log_text();
    assert_eq!(
        log.matches("crop rejected").count(),
        6,
        "each (device, reason) logged once:\n{log}"
    );
}

#[test]
fn analyzer_check_reports_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"broker = { mode = "external", host = "", port = 0, ca_file = "missing.pem" }
[ingest]
share_group = "a/b"
[model]
manifest = "missing.toml"
[batch]
max_batch = 0
[store]
dir = "store"
"#,
    )
    .expect("write");
    let out = std::process::Command::new(binary("cloud-analyzer"))
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for field in [
        "broker.host",
        "broker.port",
        "ingest.share_group",
        "batch.max_batch",
        "missing.toml",
        "missing.pem",
    ] {
        assert!(err.contains(field), "{field} not reported:\n{err}");
    }
    let starter = repo_root().join("deploy/cloud-analyzer.toml");
    let text = std::fs::read_to_string(&starter).expect("starter").replace(
        "/var/lib/cascade-cloud",
        &dir.path().join("s").display().to_string(),
    );
    let ok = dir.path().join("deploy-copy.toml");
    std::fs::write(
        &ok,
        text.replace("../models/", &format!("{}/models/", repo_root().display())),
    )
    .expect("write");
    let out = std::process::Command::new(binary("cloud-analyzer"))
        .args(["check", "--config"])
        .arg(&ok)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "the starter config works as written: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn replicas_in_a_shared_subscription_split_the_crops() {
    let Some(bin) = mosquitto_binary() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mosquitto = Mosquitto::start(bin, dir, true).expect("mosquitto");
    let certs = mosquitto.certs.clone();
    let broker = external_broker_toml(mosquitto.port, &certs);
    let mut replicas = Vec::new();
    for i in 0..2 {
        let rdir = dir.join(format!("replica-{i}"));
        std::fs::create_dir_all(&rdir).expect("dir");
        let api = api_addr();
        let cfg = analyzer_config(&rdir, &repo_root(), &broker, api, 60.0).replace(
            "[model]",
            &format!(
                "[ingest]\nclient_id = \"analyzer-{i}\"\nshare_group = \"analyzers\"\n\n[model]"
            ),
        );
        replicas.push(AnalyzerProcess::start(&rdir, &cfg, api).expect("replica starts"));
    }
    let crops = subscribe(mosquitto.port, &certs, "cascade/v1/+/crops");
    eventually(Duration::from_secs(10), || crops.is_subscribed()).expect("subscriber");
    let edge = edge_config(
        dir,
        &repo_root(),
        mosquitto.port,
        &certs,
        "reupload_interval_s = 0.05\nbetter_score = 0.0",
        false,
    );
    run_edge(&edge).expect("edge agent");
    let sent = crops_only(&crops).len();
    assert!(sent >= 10, "enough crops: {sent}");
    let stored = |r: &AnalyzerProcess| {
        http_json(r.api, "/api/devices")
            .ok()
            .and_then(|(_, d)| d["devices"][0]["crops"].as_u64())
            .unwrap_or(0)
    };
    eventually(Duration::from_secs(20), || {
        replicas.iter().map(stored).sum::<u64>() == sent as u64
    })
    .unwrap_or_else(|_| {
        panic!(
            "stored {:?} of {sent}",
            replicas.iter().map(stored).collect::<Vec<_>>()
        )
    });
    assert!(
        replicas.iter().all(|r| stored(r) > 0),
        "both replicas got crops: {:?}",
        replicas.iter().map(stored).collect::<Vec<_>>()
    );
}
