//! RTSP cameras against a real RTSP server (GStreamer's rtsp-server, `tests/rtsp/server.py`) and a
//! real Mosquitto over TLS, through the real `edge-agent` binary. Skipped, saying so, where
//! GStreamer's RTSP server or Mosquitto is not installed (`scripts/setup.sh` installs both).

use std::path::{Path, PathBuf};
use std::time::Duration;

use cascade_shared::wire;
use cascade_tests::{EdgeProcess, Mosquitto, Received, RtspServer, eventually, repo_root};

const LIMIT: Duration = Duration::from_secs(40);

/// The broker and a subscriber to the device's crops, when the machine has what the test needs.
fn broker(dir: &Path) -> Option<(Mosquitto, Received)> {
    cascade_tests::rtsp_broker(dir, "cascade/v1/dev-e2e/crops")
}

fn walker() -> PathBuf {
    repo_root().join("tests/fixtures/walker.mp4")
}

/// An agent with one RTSP camera `cam-1`; `source_extra` goes inside the source table.
fn config(dir: &Path, broker: &Mosquitto, url: &str, source_extra: &str) -> PathBuf {
    let camera = format!(
        "[[camera]]\nid = \"cam-1\"\nsource = {{ kind = \"rtsp\", url = \"{url}\", timeout_s = 5{source_extra} }}"
    );
    cascade_tests::write_cameras_config(
        dir,
        broker.port,
        &broker.certs,
        &camera,
        "max_rate_hz = 10.0",
    )
}

fn crops(sub: &Received) -> usize {
    sub.all()
        .iter()
        .filter_map(|p| wire::decode(p).ok())
        .filter(|(_, c)| c.camera_id == "cam-1")
        .count()
}

#[test]
fn crops_arrive_over_tcp_and_udp() {
    for transport in ["tcp", "udp"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some((broker, sub)) = broker(dir.path()) else {
            return;
        };
        let server = RtspServer::start(&walker(), None, "h264").expect("rtsp server");
        let cfg = config(
            dir.path(),
            &broker,
            &server.url(),
            &format!(", transport = \"{transport}\""),
        );
        let agent = EdgeProcess::start(&cfg, &dir.path().join("edge.log")).expect("agent");
        let ok = eventually(LIMIT, || crops(&sub) > 0);
        assert!(
            ok.is_ok(),
            "{transport}: no crops; log:\n{}",
            agent.log_text()
        );
        assert_eq!(agent.metric("camera_up", &[("camera", "cam-1")]), 1.0);
    }
}

#[test]
fn the_agent_reconnects_after_the_server_dies_and_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((broker, sub)) = broker(dir.path()) else {
        return;
    };
    let mut server = RtspServer::start(&walker(), None, "h264").expect("rtsp server");
    let cfg = config(dir.path(), &broker, &server.url(), "");
    let agent = EdgeProcess::start(&cfg, &dir.path().join("edge.log")).expect("agent");
    assert!(
        eventually(LIMIT, || crops(&sub) > 0).is_ok(),
        "{}",
        agent.log_text()
    );
    server.kill();
    let down = eventually(LIMIT, || {
        agent.metric("camera_reconnects_total", &[("camera", "cam-1")]) >= 1.0
            && agent.metric("camera_up", &[("camera", "cam-1")]) == 0.0
    });
    assert!(down.is_ok(), "restart counted; log:\n{}", agent.log_text());
    std::thread::sleep(Duration::from_secs(5));
    // While it was gone the camera refused connections: counted as such.
    let refused = agent.metric("camera_reconnects_total", &[("reason", "refused")]);
    assert!(
        refused >= 1.0,
        "refused {refused}; log:
{}",
        agent.log_text()
    );
    server.restart().expect("server back");
    let before = crops(&sub);
    let back = eventually(LIMIT, || {
        agent.metric("camera_up", &[("camera", "cam-1")]) == 1.0 && crops(&sub) > before
    });
    assert!(back.is_ok(), "uploads again; log:\n{}", agent.log_text());
}

#[test]
fn a_wrong_password_says_authentication_failed_without_hammering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((broker, _sub)) = broker(dir.path()) else {
        return;
    };
    let server = RtspServer::start(&walker(), Some(("viewer", "right")), "h264").expect("server");
    let cfg = config(
        dir.path(),
        &broker,
        &server.url(),
        ", username = \"viewer\", password = \"wrong\"",
    );
    let agent = EdgeProcess::start(&cfg, &dir.path().join("edge.log")).expect("agent");
    let told = eventually(LIMIT, || {
        agent.log_text().contains("authentication failed")
            && agent.metric("camera_reconnects_total", &[("reason", "auth")]) >= 1.0
    });
    assert!(told.is_ok(), "{}", agent.log_text());
    // Not hammered: retried only at the longest backoff (2 s here).
    std::thread::sleep(Duration::from_secs(1));
    assert!(agent.metric("camera_reconnects_total", &[("reason", "auth")]) <= 2.0);
    let (_, body) = agent.readyz();
    assert!(body.contains("camera cam-1: failed"), "{body}");
    assert!(
        !agent.log_text().contains("wrong"),
        "the password never reaches the log"
    );
    drop(agent);

    let cfg = config(
        dir.path(),
        &broker,
        &server.url(),
        ", username = \"viewer\", password = \"right\"",
    );
    let agent = EdgeProcess::start(&cfg, &dir.path().join("edge2.log")).expect("agent");
    let up = eventually(LIMIT, || {
        agent.metric("camera_up", &[("camera", "cam-1")]) == 1.0
    });
    assert!(up.is_ok(), "{}", agent.log_text());
}

#[test]
fn an_h265_camera_is_refused_with_its_codec_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((broker, _sub)) = broker(dir.path()) else {
        return;
    };
    let server = RtspServer::start(&walker(), None, "h265").expect("server");
    let cfg = config(dir.path(), &broker, &server.url(), "");
    let agent = EdgeProcess::start(&cfg, &dir.path().join("edge.log")).expect("agent");
    let told = eventually(LIMIT, || {
        agent
            .log_text()
            .contains("the camera sends h265; cascade decodes H.264 only")
    });
    assert!(told.is_ok(), "{}", agent.log_text());
}

#[test]
fn check_and_probe_describe_the_camera() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((broker, _sub)) = broker(dir.path()) else {
        return;
    };
    let server = RtspServer::start(&walker(), None, "h264").expect("server");
    let cfg = config(dir.path(), &broker, &server.url(), "");
    let edge = cascade_tests::binary("edge-agent");
    let out = std::process::Command::new(&edge)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .expect("check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("camera cam-1: video h264"), "{stdout}");
    // The server may refuse for a moment while it tears down the media `check` asked for.
    let mut out = None;
    let probed = eventually(Duration::from_secs(20), || {
        let o = std::process::Command::new(&edge)
            .args(["probe", &server.url()])
            .output()
            .expect("probe runs");
        let ok = o.status.success();
        out = Some(o);
        ok
    });
    let out = out.expect("probed once");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        probed.is_ok() && stdout.contains("video h264"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);
    let out = std::process::Command::new(&edge)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .expect("check runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a camera that does not answer is a problem"
    );
    assert!(
        stderr.contains("camera cam-1: rtsp://127.0.0.1:"),
        "{stderr}"
    );
}
