//! The confirm model on a real KServe v2 inference server (issue 12 item 2): MLServer from PyPI
//! with the small ONNX Runtime runtime of `tests/kserve/onnx_runtime.py`, started on free ports.
//!
//! - the server backend's detections equal the local ONNX Runtime backend's on the same frames
//!   (the dynamic-batch blob model: one request per batch; the fixed-batch tiny model: one per
//!   image; the real YOLOv8n when its files are here);
//! - the real `cloud-analyzer` on the server confirms the crops of a real edge run on Mosquitto
//!   and raises the alert;
//! - the server killed mid-run: `/readyz` says why, crops are not lost; started again: the waiting
//!   crops are confirmed, each once.
//!
//! Skips, saying so, without `.venv-mlserver` (scripts/setup.sh makes it).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cascade_infer::backend::kserve::{
    CircuitState, Outcome, ServerHealth, ServerObserver, ServerStatus,
};
use cascade_infer::{Detector, Frame, LoadOptions, load_detector};
use cascade_shared::config::cloud::ServerConfig;
use cascade_tests::mlserver::{MlServer, ModelSettings, mlserver_binary};
use cascade_tests::*;

mod common;

/// Prints `skipped: <why>` without the server's venv.
fn have_mlserver() -> bool {
    match mlserver_binary() {
        Ok(_) => true,
        Err(why) => {
            println!("skipped: {why}");
            false
        }
    }
}

struct Quiet;

impl ServerObserver for Quiet {
    fn request(&self, _: Outcome, _: f64) {}
    fn circuit(&self, _: CircuitState) {}
    fn changed(&self, _: &ServerHealth) {}
}

fn server_config(url: &str, model: &str) -> ServerConfig {
    let text = format!("url = \"{url}\"\nmodel = \"{model}\"\nretries = 0\nbreaker_failures = 1");
    toml::from_str(&text).expect("server config")
}

fn options(manifest: &Path) -> LoadOptions {
    let mut o = LoadOptions::onnx_cpu(manifest);
    o.score_threshold = 0.1;
    o.min_box_area = 0.0;
    o.backend.threads = 2;
    o
}

fn on_server(manifest: &Path, server: &MlServer, model: &str) -> (Detector, Arc<ServerStatus>) {
    let status = Arc::new(ServerStatus::new(&server.url(), Box::new(Quiet)));
    let det = cascade_infer::model::load_server_detector(
        &options(manifest),
        &server_config(&server.url(), model),
        status.clone(),
    )
    .expect("server detector");
    (det, status)
}

/// Local ONNX Runtime against the server on the same frames, batched as the analyzer would.
fn compare(manifest: &Path, onnx: &Path, frames: &[Frame], dynamic: bool) -> usize {
    let dir = tempfile::tempdir().expect("tmp");
    let server =
        MlServer::start(dir.path(), &ModelSettings::new("confirm", onnx)).expect("MLServer starts");
    let mut local = load_detector(&options(manifest)).expect("local detector");
    let (mut remote, status) = on_server(manifest, &server, "confirm");
    assert!(status.health().ready(), "{:?}", status.health());
    assert_eq!(remote.batches_natively(), dynamic, "the server's batch dim");
    let here = local.detect_batch(frames).expect("local run");
    let there = remote.detect_batch(frames).expect("server run");
    common::assert_same(&here, &there)
}

#[test]
fn the_server_backend_detects_what_local_onnx_runtime_detects() {
    if !have_mlserver() {
        return;
    }
    let repo = repo_root();
    let walker = common::frames(&repo.join("tests/fixtures/walker.mp4"), 20, 6);
    let found = compare(
        &repo.join("models/blob-yolov8-fp32.toml"),
        &repo.join("models/test/blob-yolov8-fp32.onnx"),
        &walker,
        true,
    );
    assert!(found >= 3, "the blob model finds the walker: {found}");
    let found = compare(
        &repo.join("models/tiny-yolov8-fp32.toml"),
        &repo.join("models/test/tiny-yolov8-fp32.onnx"),
        &walker,
        false,
    );
    assert!(found >= 3, "the tiny model finds the walker: {found}");
}

#[test]
fn the_real_yolov8n_on_the_server_detects_what_it_detects_locally() {
    if !have_mlserver() {
        return;
    }
    let repo = repo_root();
    let model = repo.join("models/downloads/yolov8n_fp32_dynbatch.onnx");
    let Some(shared) = shared_dir() else {
        println!("skipped: ../shared (the real sample clip) is absent");
        return;
    };
    if !model.is_file() {
        println!(
            "skipped: {} is absent (scripts/fetch-models.sh)",
            model.display()
        );
        return;
    }
    let clip = shared.join("samples/one-by-one-person-detection.mp4");
    let sample = common::frames(&clip, 120, 4);
    let found = compare(
        &repo.join("models/yolov8n-fp32-dynbatch.toml"),
        &model,
        &sample,
        true,
    );
    assert!(found >= 2, "people in the sampled frames: {found}");
}

/// Mosquitto, MLServer with the blob model, and an analyzer confirming on it.
struct Rig {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    mosquitto: Mosquitto,
    server: MlServer,
    analyzer: AnalyzerProcess,
}

fn rig() -> Option<Rig> {
    if !have_mlserver() {
        return None;
    }
    let Some(bin) = mosquitto_binary() else {
        println!("skipped: mosquitto is not installed (scripts/setup.sh installs it)");
        return None;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let repo = repo_root();
    let server = MlServer::start(
        &dir.join("mlserver"),
        &ModelSettings::new("blob", &repo.join("models/test/blob-yolov8-fp32.onnx")),
    )
    .expect("MLServer starts");
    let mosquitto = Mosquitto::start(bin, &dir, true).expect("mosquitto");
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let broker = external_broker_toml(mosquitto.port, &mosquitto.certs);
    let config = analyzer_config(&dir, &repo, &broker, api, 2.0).replace(
        "threads = 1\n",
        &format!(
            "threads = 1\n\n[model.server]\nurl = \"{}\"\nmodel = \"blob\"\nretries = 1\n\
             retry_backoff_ms = 50\nbreaker_failures = 2\nbreaker_cooldown_s = 1.0\n\
             request_timeout_s = 10.0\n",
            server.url()
        ),
    );
    let analyzer = AnalyzerProcess::start(&dir, &config, api).expect("analyzer starts");
    Some(Rig {
        _tmp: tmp,
        dir,
        mosquitto,
        server,
        analyzer,
    })
}

fn metric(r: &Rig, name: &str, labels: &[(&str, &str)]) -> f64 {
    api_metric(r.analyzer.api, &format!("cascade_cloud_{name}"), labels)
}

#[test]
fn the_analyzer_on_the_server_confirms_a_real_edge_run_and_raises_the_alert() {
    let Some(mut r) = rig() else { return };
    let certs = &r.mosquitto.certs;
    let sub = subscribe(r.mosquitto.port, certs, "cascade/v1/alerts/#");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("alert subscriber");
    let edge = edge_config(&r.dir, &repo_root(), r.mosquitto.port, certs, "", false);
    run_edge(&edge).expect("edge agent runs");
    eventually(Duration::from_secs(60), || {
        sub.messages().iter().any(|(t, p)| {
            !t.ends_with("/state")
                && serde_json::from_slice::<serde_json::Value>(p).is_ok_and(|v| v["type"] == "new")
        })
    })
    .unwrap_or_else(|_| panic!("no alert; analyzer log:\n{}", r.analyzer.log_text()));
    assert!(metric(&r, "crops_decided_total", &[("verdict", "confirmed")]) >= 1.0);
    let ok = metric(&r, "inference_server_requests_total", &[("outcome", "ok")]);
    assert!(ok >= 1.0, "requests went to the server: {ok}");
    assert_eq!(
        metric(
            &r,
            "inference_server_requests_total",
            &[("outcome", "failed")]
        ),
        0.0
    );
    let (code, body) = http_json(r.analyzer.api, "/readyz").expect("readyz");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["inference_server"]["ready"], true, "{body}");

    // `check` asks the server and describes its model; with the server gone it names the field.
    let config = r.dir.join("analyzer.toml");
    let check = || {
        std::process::Command::new(binary("cloud-analyzer"))
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .expect("check runs")
    };
    let out = check();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("inference server: model blob on http://127.0.0.1")
            && said.contains("images FP32 [-1, 3, 128, 128]"),
        "{said}"
    );
    r.server.kill();
    let out = check();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("model.server.url") && err.contains("connection refused"),
        "{err}"
    );
}

fn publish(r: &Rig, ids: std::ops::Range<usize>) {
    let payloads = ids
        .map(|i| common::envelope(&common::good_crop("dev-kserve", &format!("crop-{i:03}"))))
        .collect();
    publish_all(
        r.mosquitto.port,
        &r.mosquitto.certs,
        "cascade/v1/dev-kserve/crops",
        payloads,
    )
    .expect("published");
}

fn decided(r: &Rig) -> f64 {
    metric(r, "crops_decided_total", &[])
}

#[test]
fn crops_wait_while_the_server_is_down_and_are_confirmed_once_when_it_is_back() {
    let Some(mut r) = rig() else { return };
    publish(&r, 0..5);
    eventually(Duration::from_secs(30), || decided(&r) == 5.0)
        .unwrap_or_else(|_| panic!("5 decided; log:\n{}", r.analyzer.log_text()));

    r.server.kill();
    publish(&r, 5..12);
    let api = r.analyzer.api;
    let mut why = serde_json::Value::Null;
    eventually(Duration::from_secs(30), || {
        let Ok((code, body)) = http_json(api, "/readyz") else {
            return false;
        };
        why = body["inference_server"]["reason"].clone();
        code == 503 && body["inference_server"]["circuit"] == "open"
    })
    .unwrap_or_else(|_| panic!("readyz never said the circuit is open: {why}"));
    let reason = why.as_str().unwrap_or_default().to_string();
    assert!(
        reason.contains(&r.server.url())
            && reason.contains("connection refused")
            && reason.contains("next probe in"),
        "{reason}"
    );
    assert_eq!(metric(&r, "crops_received_total", &[]), 12.0);
    assert_eq!(decided(&r), 5.0, "nothing decided while the server is down");
    assert_eq!(metric(&r, "crops_rejected_total", &[]), 0.0);
    assert_eq!(metric(&r, "inference_server_circuit_state", &[]), 2.0);
    assert!(
        metric(
            &r,
            "inference_server_requests_total",
            &[("outcome", "failed")]
        ) >= 2.0
    );
    let log = r.analyzer.log_text();
    assert_eq!(
        log.matches("inference server unavailable").count(),
        2,
        "one line per change (not ready, then open), not per crop:\n{log}"
    );

    r.server.restart().expect("MLServer starts again");
    eventually(Duration::from_secs(60), || decided(&r) == 12.0)
        .unwrap_or_else(|_| panic!("12 decided; log:\n{}", r.analyzer.log_text()));
    eventually(Duration::from_secs(10), || {
        http_json(api, "/readyz").is_ok_and(|(c, _)| c == 200)
    })
    .expect("ready again");
    // Each crop decided once: no more decisions come, and none was a duplicate.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(decided(&r), 12.0);
    assert_eq!(metric(&r, "crops_duplicate_total", &[]), 0.0);
    assert_eq!(metric(&r, "inference_server_circuit_state", &[]), 0.0);
    assert!(
        r.analyzer.log_text().contains("inference server ready"),
        "the recovery is logged"
    );
}
