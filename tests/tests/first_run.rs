//! The first-run mistakes (issue 14), each with the real edge agent: no ONNX Runtime library, no
//! model file, no broker listening, and a broker whose certificate the configured CA did not sign
//! (a real analyzer with its embedded broker over TLS, the agent given another CA). Each message
//! names the field or file and says what to run or change.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cascade_tests::{
    AnalyzerProcess, Certs, EdgeOptions, EdgeProcess, analyzer_config, binary,
    embedded_broker_toml, eventually, free_port, make_certs, repo_root, write_edge_config,
};

fn check(config: &Path) -> (bool, String) {
    let out = Command::new(binary("edge-agent"))
        .args(["check", "--config"])
        .arg(config)
        .output()
        .expect("check runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config(dir: &Path, port: u16, certs: &Certs, detector: &str) -> std::path::PathBuf {
    let o = EdgeOptions {
        detector: detector.into(),
        ..EdgeOptions::walker(&repo_root())
    };
    write_edge_config(dir, port, certs, &o)
}

#[test]
fn no_onnx_runtime_library_says_to_run_setup() {
    let dir = tempfile::tempdir().expect("tmp");
    let certs = make_certs(dir.path()).expect("certs");
    let cfg = config(
        dir.path(),
        8883,
        &certs,
        "onnxruntime = \"/nonexistent/libonnxruntime.so\"",
    );
    let (ok, err) = check(&cfg);
    assert!(!ok, "{err}");
    assert!(
        err.contains("detector.onnxruntime")
            && err.contains("/nonexistent/libonnxruntime.so")
            && err.contains("run scripts/setup.sh"),
        "{err}"
    );
}

#[test]
fn no_model_file_says_to_fetch_the_models() {
    let dir = tempfile::tempdir().expect("tmp");
    let certs = make_certs(dir.path()).expect("certs");
    // The real detector's manifest with its file not fetched.
    let manifest = std::fs::read_to_string(repo_root().join("models/yolov8n-int8-static.toml"))
        .expect("manifest");
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).expect("dir");
    std::fs::write(models.join("m.toml"), manifest).expect("manifest copy");
    let o = EdgeOptions {
        manifest: models.join("m.toml"),
        ..EdgeOptions::walker(&repo_root())
    };
    let cfg = write_edge_config(dir.path(), 8883, &certs, &o);
    let (ok, err) = check(&cfg);
    assert!(!ok, "{err}");
    assert!(
        err.contains("detector.manifest") && err.contains("run scripts/fetch-models.sh"),
        "{err}"
    );
}

/// Runs the agent on `cfg` until its log holds `want`.
fn agent_says(cfg: &Path, dir: &Path, want: &str) -> String {
    let agent = EdgeProcess::start(cfg, &dir.join("edge.log")).expect("agent starts");
    let said = eventually(Duration::from_secs(20), || agent.log_text().contains(want));
    let log = agent.log_text();
    assert!(said.is_ok(), "no {want:?} in:\n{log}");
    log
}

#[test]
fn no_broker_listening_says_what_to_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let certs = make_certs(dir.path()).expect("certs");
    let port = free_port();
    let cfg = config(dir.path(), port, &certs, "max_rate_hz = 10.0");
    let log = agent_says(
        &cfg,
        dir.path(),
        &format!("nothing accepts connections at localhost:{port}"),
    );
    assert!(log.contains("start the cloud analyzer"), "{log}");
}

#[test]
fn a_broker_certificate_from_another_ca_names_uplink_ca_file() {
    let dir = tempfile::tempdir().expect("tmp");
    for d in ["broker", "other"] {
        std::fs::create_dir_all(dir.path().join(d)).expect("dir");
    }
    let broker_certs = make_certs(&dir.path().join("broker")).expect("certs");
    let other = make_certs(&dir.path().join("other")).expect("other CA");
    let (port, api) = (
        free_port(),
        std::net::SocketAddr::from(([127, 0, 0, 1], free_port())),
    );
    let acfg = analyzer_config(
        dir.path(),
        &repo_root(),
        &embedded_broker_toml(port, &broker_certs),
        api,
        5.0,
    );
    let _analyzer = AnalyzerProcess::start(dir.path(), &acfg, api).expect("analyzer");
    let cfg = config(dir.path(), port, &other, "max_rate_hz = 10.0");
    let log = agent_says(&cfg, dir.path(), "not signed by the CA in uplink.ca_file");
    assert!(log.contains(&other.ca.display().to_string()), "{log}");
}
