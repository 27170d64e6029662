//! Several cameras in one agent, supervised, sharing one detector: the real `edge-agent` binary
//! against a real Mosquitto over TLS. One camera's file is damaged mid-run: it is restarted with
//! backoff (counted, shown by `camera_up` and `/readyz`) while the other keeps uploading, and it
//! comes back once the file is good again.

use std::path::Path;
use std::time::Duration;

use cascade_shared::wire;
use cascade_tests::{EdgeProcess, Mosquitto, Received, eventually, mosquitto_binary, repo_root};

/// Two looping Annex-B cameras played in real time at 40 fps (one 8 s walk-by every 2 s).
fn two_camera_config(dir: &Path, broker: &Mosquitto, second_clip: &Path) -> std::path::PathBuf {
    let clip = repo_root().join("tests/fixtures/walker.h264");
    let cameras = format!(
        r#"[[camera]]
id = "cam-1"
source = {{ kind = "file", path = "{}", realtime = true, loop = true, fps = 40.0 }}

[[camera]]
id = "cam-2"
source = {{ kind = "file", path = "{}", realtime = true, loop = true, fps = 40.0 }}"#,
        clip.display(),
        second_clip.display()
    );
    // Every frame: at 4x speed the walker moves too far between sparser runs for the tracker.
    cascade_tests::write_cameras_config(
        dir,
        broker.port,
        &broker.certs,
        &cameras,
        "max_rate_hz = 40.0",
    )
}

fn crops_from(sub: &Received, camera: &str) -> usize {
    sub.all()
        .iter()
        .filter_map(|p| wire::decode(p).ok())
        .filter(|(_, c)| c.camera_id == camera)
        .count()
}

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_failing_camera_restarts_while_the_other_keeps_uploading_through_one_detector() {
    let Some(bin) = mosquitto_binary() else {
        eprintln!("SKIPPED: mosquitto is not installed (scripts/setup.sh installs it)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Mosquitto::start(bin, dir.path(), true).expect("mosquitto");
    let sub = cascade_tests::subscribe(broker.port, &broker.certs, "cascade/v1/dev-e2e/crops");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("subscribed");
    let walker = repo_root().join("tests/fixtures/walker.h264");
    let second = dir.path().join("cam-2.h264");
    std::fs::copy(&walker, &second).expect("copy");
    let config = two_camera_config(dir.path(), &broker, &second);
    let agent = EdgeProcess::start(&config, &dir.path().join("edge.log")).expect("starts");
    let up = |cam: &str| agent.metric("camera_up", &[("camera", cam)]);

    // Both cameras stream and upload, through one model load.
    let both = eventually(LIMIT, || {
        up("cam-1") == 1.0
            && up("cam-2") == 1.0
            && crops_from(&sub, "cam-1") > 0
            && crops_from(&sub, "cam-2") > 0
    });
    assert!(
        both.is_ok(),
        "both cameras upload; log:\n{}",
        agent.log_text()
    );
    assert_eq!(agent.readyz().0, 200, "{}", agent.readyz().1);
    assert_eq!(agent.metric("detector_model_loads_total", &[]), 1.0);
    assert_eq!(
        agent.log_text().matches("detector model loaded").count(),
        1,
        "one detector session serves both cameras"
    );

    // cam-2's file is damaged: its next pass fails, again and again, with backoff.
    std::fs::write(&second, b"this is not H.264").expect("damage");
    let restarting = eventually(LIMIT, || {
        agent.metric("camera_reconnects_total", &[("camera", "cam-2")]) >= 2.0 && up("cam-2") == 0.0
    });
    assert!(
        restarting.is_ok(),
        "cam-2 restarts; log:\n{}",
        agent.log_text()
    );
    let (status, body) = agent.readyz();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("camera cam-2: backoff") && body.contains("camera cam-1: streaming"),
        "{body}"
    );
    assert_eq!(up("cam-1"), 1.0);
    assert_eq!(
        agent.metric("camera_reconnects_total", &[("camera", "cam-1")]),
        0.0
    );

    // cam-1 keeps uploading meanwhile.
    let before = crops_from(&sub, "cam-1");
    let more = eventually(LIMIT, || crops_from(&sub, "cam-1") > before);
    assert!(
        more.is_ok(),
        "cam-1 keeps uploading; log:\n{}",
        agent.log_text()
    );

    // The file is good again: cam-2 comes back by itself.
    std::fs::copy(&walker, &second).expect("restore");
    let back_from = crops_from(&sub, "cam-2");
    let back = eventually(LIMIT, || {
        up("cam-2") == 1.0 && crops_from(&sub, "cam-2") > back_from
    });
    assert!(back.is_ok(), "cam-2 recovers; log:\n{}", agent.log_text());
    assert_eq!(agent.readyz().0, 200);
}

#[test]
fn crops_are_cut_from_the_main_stream_while_detection_runs_on_the_sub_stream() {
    let Some(bin) = mosquitto_binary() else {
        eprintln!("SKIPPED: mosquitto is not installed (scripts/setup.sh installs it)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Mosquitto::start(bin, dir.path(), true).expect("mosquitto");
    let sub = cascade_tests::subscribe(broker.port, &broker.certs, "cascade/v1/dev-e2e/crops");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("subscribed");
    // The same scene at 320x240 (sub-stream) and 480x360 (main stream), both played in real time.
    let fixtures = repo_root().join("tests/fixtures");
    let camera = format!(
        r#"[[camera]]
id = "cam-1"
source = {{ kind = "file", path = "{}", realtime = true, loop = true }}
main_source = {{ kind = "file", path = "{}", realtime = true, loop = true }}"#,
        fixtures.join("walker.mp4").display(),
        fixtures.join("walker_480.mp4").display()
    );
    let config = cascade_tests::write_cameras_config(
        dir.path(),
        broker.port,
        &broker.certs,
        &camera,
        "max_rate_hz = 10.0",
    );
    let agent = EdgeProcess::start(&config, &dir.path().join("edge.log")).expect("starts");
    let main_crops = || {
        sub.all()
            .iter()
            .filter_map(|p| wire::decode(p).ok())
            .map(|(_, c)| c)
            .filter(|c| c.frame_width == 480)
            .collect::<Vec<_>>()
    };
    let got = eventually(Duration::from_secs(40), || main_crops().len() >= 2);
    assert!(got.is_ok(), "main-stream crops; log:\n{}", agent.log_text());
    assert!(agent.metric("main_stream_crops_total", &[("camera", "cam-1")]) >= 2.0);
    for c in main_crops() {
        assert_eq!(c.frame_height, 360);
        let b = c.r#box.expect("box");
        // The walker is 54x144 at 480x360 (36x96 at 320x240): the box was scaled to the main stream.
        assert!(
            (b.y2 - b.y1) > 110.0 && (b.y2 - b.y1) < 180.0,
            "box {b:?} not in main-stream pixels"
        );
        let img = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(&c.jpeg))
            .decode()
            .expect("a JPEG");
        let bright = img.iter().filter(|v| **v > 200).count();
        assert!(bright > img.len() / 10, "the walker is in the crop");
    }
}
