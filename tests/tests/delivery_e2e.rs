//! End-to-end receipts through the real binaries on a real Mosquitto without persistence: the
//! broker is killed and restarted ten times while the analyzer is held back (SIGSTOP) until the
//! edge has reconnected and published into a broker that has nobody to give the crops to. A PUBACK
//! alone would lose those crops; with receipts every crop the edge committed is stored exactly once.

use std::time::{Duration, Instant};

use cascade_tests::*;

const ROUNDS: usize = 10;

/// A number `key=N` (or `key=N.0`) on the line of `log` that contains `marker`.
fn logged(log: &str, marker: &str, key: &str) -> Option<f64> {
    let line = log.lines().rev().find(|l| l.contains(marker))?;
    let word = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))?;
    word.parse().ok()
}

#[test]
fn broker_restarts_without_persistence_lose_no_crop_with_receipts() {
    let Some(bin) = mosquitto_binary() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut broker = Mosquitto::start(bin, dir, true).expect("mosquitto");
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let broker_toml = external_broker_toml(broker.port, &broker.certs);
    let config = analyzer_config(dir, &repo_root(), &broker_toml, api, 60.0);
    let mut analyzer = AnalyzerProcess::start(dir, &config, api).expect("analyzer starts");
    // The walker played slowly (8 s of video over 32 s), a crop on every detector run.
    let o = EdgeOptions {
        clip: repo_root().join("tests/fixtures/walker.h264"),
        realtime: true,
        source: ", fps = 2.5".into(),
        tracker: "reupload_interval_s = 0.05\nbetter_score = 0.0".into(),
        uplink: "reconnect_max_s = 1.0\nreceipt_timeout_s = 5".into(),
        ..EdgeOptions::walker(&repo_root())
    };
    let edge_config = write_edge_config(dir, broker.port, &broker.certs, &o);
    let log = dir.join("edge.log");
    let mut edge =
        EdgeProcess::start_with(&edge_config, &log, &["--exit-when-done"]).expect("edge starts");
    let stored = || api_metric(api, "cascade_cloud_crops_received_total", &[]);
    eventually(Duration::from_secs(30), || stored() >= 1.0).expect("crops flowing");

    let analyzer_pid = analyzer.pid().expect("analyzer runs");
    let mut behind = Vec::new();
    for _ in 0..ROUNDS {
        broker.kill();
        signal(analyzer_pid, "STOP").expect("analyzer held back");
        broker.restart().expect("mosquitto restarts");
        // The edge reconnects first and publishes into a broker with no subscriber.
        let reconnected = Instant::now();
        let _ = eventually(Duration::from_secs(10), || {
            edge.metric("mqtt_connected", &[]) == 1.0
        });
        std::thread::sleep(Duration::from_millis(800));
        behind.push(reconnected.elapsed());
        signal(analyzer_pid, "CONT").expect("analyzer resumes");
        eventually(Duration::from_secs(20), || {
            api_metric(api, "cascade_cloud_mqtt_connected", &[]) == 1.0
        })
        .expect("analyzer reconnected");
        std::thread::sleep(Duration::from_millis(1200));
    }
    let status = edge
        .wait(Duration::from_secs(180))
        .expect("edge finished and drained");
    let log_text = edge.log_text();
    assert!(status.success(), "edge failed:\n{log_text}");
    let committed = logged(&log_text, "summary", "crops_buffered").expect("summary");
    let delivered = logged(&log_text, "summary", "crops_uploaded").expect("summary");
    let resent = logged(&log_text, "summary", "crops_resent").expect("summary");
    let devices = || http_json(api, "/api/devices").map(|(_, d)| d["devices"][0]["crops"].as_f64());
    let held = devices().ok().flatten().unwrap_or(0.0);
    eprintln!(
        "{ROUNDS} broker restarts: {committed} crops committed, {delivered} delivered, {held} \
         stored by message id, {resent} sent again for want of a receipt, {} received in all \
         (duplicates folded: {}), {} receipts naming {} crops",
        stored(),
        api_metric(api, "cascade_cloud_crops_duplicate_total", &[]),
        api_metric(api, "cascade_cloud_receipts_published_total", &[]),
        api_metric(api, "cascade_cloud_crops_receipted_total", &[]),
    );
    assert!(committed >= 20.0, "enough crops to matter: {committed}");
    assert_eq!(delivered, committed, "the edge drained only on receipts");
    assert_eq!(
        held, committed,
        "every committed crop stored exactly once by message id"
    );
    assert!(
        resent >= 1.0,
        "some crops were acknowledged by a broker that had nobody to give them to"
    );
    analyzer.stop();
}
