//! The real `edge-agent` binary on a generated clip, against a real Mosquitto over TLS with client
//! certificates: a subscriber decodes the crops it publishes and checks boxes, sequence numbers and
//! JPEGs. With `../shared` present, the same runs with the real INT8 detector on the real clip.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cascade_shared::wire::{self, Crop, TrackEvent};
use cascade_tests::{Mosquitto, Received, eventually, mosquitto_binary, subscribe};
use cascade_tests::{repo_root as repo, shared_dir};

fn write_config(
    dir: &Path,
    broker: &Mosquitto,
    clip: &Path,
    manifest: &Path,
    detector: &str,
) -> std::path::PathBuf {
    let o = cascade_tests::EdgeOptions {
        clip: clip.to_path_buf(),
        manifest: manifest.to_path_buf(),
        detector: detector.into(),
        ..cascade_tests::EdgeOptions::walker(&repo())
    };
    cascade_tests::write_edge_config(dir, broker.port, &broker.certs, &o)
}

/// Runs the agent to completion (`--exit-when-done`) and returns the decoded crops received.
fn run_agent(dir: &Path, broker: &Mosquitto, sub: &Received, config: &Path) -> Vec<Crop> {
    let started = Instant::now();
    let out = Command::new(cascade_tests::binary("edge-agent"))
        .args(["run", "--exit-when-done", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .current_dir(dir)
        .output()
        .expect("edge-agent runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "edge-agent failed:\n{log}");
    eprintln!(
        "edge-agent ran in {:.1} s against port {}",
        started.elapsed().as_secs_f64(),
        broker.port
    );
    let expected = log.matches("crops committed to the buffer").count();
    assert!(expected > 0, "no crops buffered:\n{log}");
    let _ = eventually(Duration::from_secs(10), || sub.len() >= expected);
    sub.all()
        .iter()
        .map(|p| wire::decode(p).expect("a valid crop message").1)
        .collect()
}

#[test]
fn agent_publishes_crops_of_the_walker() {
    let Some(bin) = mosquitto_binary() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Mosquitto::start(bin, dir.path(), true).expect("mosquitto");
    let sub = subscribe(broker.port, &broker.certs, "cascade/v1/dev-e2e/crops");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("subscribed");
    let clip = repo().join("tests/fixtures/walker.mp4");
    let config = write_config(
        dir.path(),
        &broker,
        &clip,
        &repo().join("models/blob-yolov8-int8.toml"),
        "max_rate_hz = 10.0",
    );

    let check = Command::new(cascade_tests::binary("edge-agent"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("check runs");
    assert!(
        check.status.success(),
        "check: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let all = run_agent(dir.path(), &broker, &sub, &config);
    let crops: Vec<_> = all
        .iter()
        .filter(|c| c.track_event() == TrackEvent::Crop)
        .collect();
    assert!(
        (1..=8).contains(&crops.len()),
        "a walk-by gives a handful of crops, got {}",
        crops.len()
    );
    // The walker's track ends (lost, or at the end of the file) with a word without a picture.
    let last = all.last().expect("messages");
    assert_eq!(last.track_event(), TrackEvent::Ended, "{last:?}");
    assert_eq!(last.track_id, crops[0].track_id);
    assert!(last.jpeg.is_empty());
    let mut last_seq = 0;
    for c in &all {
        assert!(
            c.sequence > last_seq,
            "sequence numbers increase: {} after {last_seq}",
            c.sequence
        );
        last_seq = c.sequence;
    }
    for c in &crops {
        assert_eq!(
            (c.device_id.as_str(), c.camera_id.as_str()),
            ("dev-e2e", "cam-1")
        );
        let b = c.r#box.expect("box");
        // The walker is 36x96 at y = 70 (tests/fixtures/make_clips.sh).
        assert!(
            (b.y1 - 70.0).abs() <= 4.0 && (b.y2 - 166.0).abs() <= 4.0,
            "{b:?}"
        );
        // Full width, or cut by the frame's edge as the walker enters or leaves.
        let cut = b.x1 <= 1.0 || b.x2 >= 319.0;
        assert!(cut || (b.width() - 36.0).abs() <= 6.0, "{b:?}");
        let mut d = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(&c.jpeg));
        d.decode().expect("the crop is a JPEG");
        assert_eq!(c.class_name, "person");
        assert!(c.score >= 0.5);
    }
}

#[test]
fn bad_config_reports_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[device]
id = "bad/id"
[[camera]]
id = "cam"
source = { kind = "file", path = "missing.mp4" }
[detector]
manifest = "missing.toml"
[buffer]
dir = "buf"
[uplink]
host = "localhost"
port = 0
"#,
    )
    .expect("write");
    let out = Command::new(cascade_tests::binary("edge-agent"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for field in ["device.id", "uplink.port", "missing.mp4", "missing.toml"] {
        assert!(err.contains(field), "{field} not reported:\n{err}");
    }
    let out = Command::new(cascade_tests::binary("edge-agent"))
        .args(["check", "--config", "/nonexistent.toml"])
        .output()
        .expect("runs");
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml")
    );
}

#[test]
fn real_detector_on_real_clip_uploads_the_people() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED: ../shared is not present; the real-clip end-to-end test needs it");
        return;
    };
    let Some(bin) = mosquitto_binary() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // The manifest points at models/downloads/; use ../shared's copy through a manifest beside it.
    let manifest_text =
        std::fs::read_to_string(repo().join("models/yolov8n-int8.toml")).expect("manifest");
    let model = shared.join("models/yolov8n_int8.onnx");
    let manifest = dir.path().join("yolov8n-int8.toml");
    std::fs::write(
        &manifest,
        manifest_text.replace("downloads/yolov8n_int8.onnx", &model.display().to_string()),
    )
    .expect("write");
    let broker = Mosquitto::start(bin, dir.path(), true).expect("mosquitto");
    let sub = subscribe(broker.port, &broker.certs, "cascade/v1/dev-e2e/crops");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("subscribed");
    let clip = shared.join("samples/one-by-one-person-detection.mp4");
    let config = write_config(
        dir.path(),
        &broker,
        &clip,
        &manifest,
        "score_threshold = 0.5\nthreads = 2\nmax_rate_hz = 2.0",
    );
    let crops: Vec<Crop> = run_agent(dir.path(), &broker, &sub, &config)
        .into_iter()
        .filter(|c| c.track_event() == TrackEvent::Crop)
        .collect();
    eprintln!(
        "real clip: {} crops uploaded, {} bytes of JPEG",
        crops.len(),
        crops.iter().map(|c| c.jpeg.len()).sum::<usize>()
    );
    assert!(
        crops.len() >= 3,
        "people walk in several times; got {} crops",
        crops.len()
    );
    for c in &crops {
        let b = c.r#box.expect("box");
        assert!(
            b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= 768.0 && b.y2 <= 432.0,
            "box inside the frame: {b:?}"
        );
        assert!(
            c.score >= 0.5 && c.class_id == 0,
            "a person above threshold: {c:?}"
        );
        assert!(b.height() > 100.0, "a standing person is tall: {b:?}");
    }
}

#[test]
fn starter_config_checks_clean_apart_from_its_deployment_paths() {
    // deploy/edge-agent.toml works as written once its buffer folder and certificates exist.
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = cascade_tests::make_certs(dir.path()).expect("certs");
    let text = std::fs::read_to_string(repo().join("deploy/edge-agent.toml"))
        .expect("starter")
        .replace(
            "/var/lib/cascade/buffer",
            &dir.path().join("buffer").display().to_string(),
        )
        .replace("/etc/cascade/ca.pem", &certs.ca.display().to_string())
        .replace(
            "/etc/cascade/client.pem",
            &certs.client_cert.display().to_string(),
        )
        .replace(
            "/etc/cascade/client.key",
            &certs.client_key.display().to_string(),
        )
        .replace("\"../", &format!("\"{}/", repo().display()));
    let path = dir.path().join("edge.toml");
    std::fs::write(&path, text).expect("write");
    let out = Command::new(cascade_tests::binary("edge-agent"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn interlaced_camera_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = cascade_tests::make_certs(dir.path()).expect("certs");
    let o = cascade_tests::EdgeOptions {
        clip: repo().join("tests/fixtures/interlaced.h264"),
        ..cascade_tests::EdgeOptions::walker(&repo())
    };
    // No broker needed: the pipeline stops before anything is uploaded.
    let config =
        cascade_tests::write_edge_config(dir.path(), cascade_tests::free_port(), &certs, &o);
    let out = Command::new(cascade_tests::binary("edge-agent"))
        .args(["run", "--exit-when-done", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("interlaced") && err.contains("progressive"),
        "{err}"
    );
}

/// The hardware profile for this machine's processor.
fn native_profile() -> (std::path::PathBuf, cascade_shared::profile::HardwareProfile) {
    let name = match std::env::consts::ARCH {
        "aarch64" => "raspberry-pi-5",
        _ => "x86_64-cpu",
    };
    let path = repo().join(format!("hardware-profiles/{name}.toml"));
    let profile = cascade_shared::profile::HardwareProfile::load(&path).expect("profile");
    (path, profile)
}

fn check_stdout(config: &Path) -> String {
    let out = Command::new(cascade_tests::binary("edge-agent"))
        .args(["check", "--config"])
        .arg(config)
        .output()
        .expect("check runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn check_says_which_settings_come_from_the_profile_and_which_from_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = cascade_tests::make_certs(dir.path()).expect("certs");
    let (path, profile) = native_profile();
    let with_profile = |detector: &str| {
        let o = cascade_tests::EdgeOptions {
            detector: detector.into(),
            ..cascade_tests::EdgeOptions::walker(&repo())
        };
        let config =
            cascade_tests::write_edge_config(dir.path(), cascade_tests::free_port(), &certs, &o);
        let text = std::fs::read_to_string(&config).expect("read");
        let text = text.replacen(
            "id = \"dev-e2e\"",
            &format!("id = \"dev-e2e\"\nprofile = \"{}\"", path.display()),
            1,
        );
        std::fs::write(&config, text).expect("write");
        check_stdout(&config)
    };
    let omitted = with_profile("");
    let from = format!("(profile {})", profile.name);
    assert!(
        omitted.contains(&format!(
            "detector.threads = {} {from}",
            profile.detector_threads
        )),
        "{omitted}"
    );
    assert!(
        omitted.contains(&format!(
            "detector.input_sizes = {:?} {from}",
            profile.detector_input_sizes
        )),
        "{omitted}"
    );
    assert!(
        omitted.contains(&format!("detector.backend = onnxruntime {from}")),
        "{omitted}"
    );
    // The generated model has one file, at 128: the profile's sizes are skipped, and said so.
    assert!(
        omitted.contains(&format!(
            "detector ladder = [128] ({:?} skipped: the model has no file for them)",
            profile.detector_input_sizes
        )),
        "{omitted}"
    );
    let set = with_profile("threads = 1\ninput_sizes = [128]");
    assert!(set.contains("detector.threads = 1 (config)"), "{set}");
    assert!(
        set.contains("detector.input_sizes = [128] (config)"),
        "{set}"
    );
    assert!(set.contains("detector ladder = [128]\n"), "{set}");
}

/// A size the config asks for that the model has no file for is a mistake `check` names.
#[test]
fn check_refuses_an_input_size_the_model_has_no_file_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = cascade_tests::make_certs(dir.path()).expect("certs");
    let o = cascade_tests::EdgeOptions {
        detector: "input_sizes = [320]".into(),
        ..cascade_tests::EdgeOptions::walker(&repo())
    };
    let config =
        cascade_tests::write_edge_config(dir.path(), cascade_tests::free_port(), &certs, &o);
    let out = Command::new(cascade_tests::binary("edge-agent"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("check runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("detector.input_sizes")
            && err.contains("[320]")
            && err.contains("has no model file"),
        "{err}"
    );
}

#[test]
fn a_damaged_buffer_is_moved_aside_reported_and_sequences_go_on() {
    let Some(bin) = mosquitto_binary() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Mosquitto::start(bin, dir.path(), true).expect("mosquitto");
    let sub = subscribe(broker.port, &broker.certs, "cascade/v1/dev-e2e/crops");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("subscribed");
    let config = write_config(
        dir.path(),
        &broker,
        &repo().join("tests/fixtures/walker.mp4"),
        &repo().join("models/blob-yolov8-int8.toml"),
        "max_rate_hz = 10.0",
    );
    let first = run_agent(dir.path(), &broker, &sub, &config);
    let high = first.iter().map(|c| c.sequence).max().expect("crops");

    // The SD card garbles the buffer file.
    let file = dir.path().join("edge-buffer/crops.redb");
    std::fs::write(&file, vec![0x5A; 64 * 1024]).expect("garble");
    let check = Command::new(cascade_tests::binary("edge-agent"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("check runs");
    let told = String::from_utf8_lossy(&check.stderr);
    assert!(
        !check.status.success() && told.contains("damaged"),
        "check: {told}"
    );

    let before = sub.len();
    let out = Command::new(cascade_tests::binary("edge-agent"))
        .args(["run", "--exit-when-done", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .output()
        .expect("edge-agent runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the agent starts on a damaged buffer:\n{log}"
    );
    assert_eq!(
        log.matches("the buffer file was damaged").count(),
        1,
        "{log}"
    );
    let aside = std::fs::read_dir(dir.path().join("edge-buffer"))
        .expect("buffer dir")
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("crops.redb.corrupt-")
        });
    assert!(aside, "the damaged file is kept aside");
    let _ = eventually(Duration::from_secs(10), || sub.len() > before);
    let second: Vec<Crop> = sub.all()[before..]
        .iter()
        .map(|p| wire::decode(p).expect("a valid crop message").1)
        .collect();
    assert!(!second.is_empty(), "uploads again:\n{log}");
    assert!(
        second.iter().all(|c| c.sequence > high),
        "sequences went back: {high} then {:?}",
        second.iter().map(|c| c.sequence).collect::<Vec<_>>()
    );
}
