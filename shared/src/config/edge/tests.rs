use std::path::Path;

use super::*;
use crate::config::ConfigFile;
use crate::wire::Compression;

const MINIMAL: &str = r#"
    [device]
    id = "dev-1"
    [[camera]]
    id = "cam-1"
    source = { kind = "file", path = "clip.mp4" }
    [detector]
    manifest = "models/m.toml"
    [buffer]
    dir = "buffer"
    [uplink]
    host = "localhost"
    port = 8883
    ca_file = "ca.pem"
"#;

fn file(text: &str) -> raw::EdgeConfig {
    toml::from_str(text).expect("parses")
}

fn validated(text: &str) -> Result<EdgeConfig, Problems> {
    file(text).validated()
}

/// A file source's `path`, `realtime`, `loop` and `fps`.
fn file_source(source: &SourceConfig) -> (&Path, bool, bool, f64) {
    #[allow(irrefutable_let_patterns)] // until the next source kind
    let SourceConfig::File {
        path,
        realtime,
        looped,
        fps,
        ..
    } = source
    else {
        panic!("not a file source: {source:?}");
    };
    (path, *realtime, *looped, *fps)
}

#[test]
fn a_camera_sets_its_own_motion_and_rate_over_the_defaults() {
    let text = MINIMAL.replace(
        "source = { kind = \"file\", path = \"clip.mp4\" }",
        "source = { kind = \"file\", path = \"clip.mp4\" }\nmax_rate_hz = 2.0\n\
         motion = { threshold = 40, masks = [[[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]]] }",
    );
    let cfg = validated(&text).expect("valid");
    let cam = &cfg.cameras[0];
    let m = cfg.motion_of(cam);
    assert_eq!((m.threshold, m.width, m.masks.len()), (40, 320, 1));
    assert_eq!(cfg.max_rate_of(cam), 2.0);

    let bad = MINIMAL.replace(
        "source = { kind = \"file\", path = \"clip.mp4\" }",
        "source = { kind = \"file\", path = \"clip.mp4\" }\nmax_rate_hz = 0.0\n\
         motion = { width = 8 }",
    );
    let problems = validated(&bad).expect_err("invalid").to_string();
    assert!(problems.contains("camera[0].max_rate_hz"), "{problems}");
    assert!(problems.contains("camera[0].motion.width"), "{problems}");
    let unknown = MINIMAL.replace(
        "source = { kind = \"file\", path = \"clip.mp4\" }",
        "source = { kind = \"file\", path = \"clip.mp4\" }\nmotion = { treshold = 4 }",
    );
    let err = toml::from_str::<raw::EdgeConfig>(&unknown).expect_err("unknown field");
    assert!(err.to_string().contains("treshold"), "{err}");
}

#[test]
fn skim_is_for_files_played_as_fast_as_possible() {
    let with =
        |src: &str| MINIMAL.replace("source = { kind = \"file\", path = \"clip.mp4\" }", src);
    validated(&with(
        "source = { kind = \"file\", path = \"clip.mp4\", skim = true }",
    ))
    .expect("valid");
    let bad =
        with("source = { kind = \"file\", path = \"clip.mp4\", skim = true, realtime = true }");
    let problems = validated(&bad).expect_err("invalid").to_string();
    assert!(problems.contains("camera[0].source.skim"), "{problems}");
}

#[test]
fn minimal_config_is_valid_with_the_documented_defaults() {
    let cfg = validated(MINIMAL).expect("valid");
    assert!(cfg.uplink.tls);
    assert_eq!(cfg.device.profile, None);
    let (_, realtime, looped, fps) = file_source(&cfg.cameras[0].source);
    assert_eq!((realtime, looped, fps), (false, false, 25.0));
    let m = &cfg.motion;
    assert_eq!((m.width, m.threshold, m.warmup_frames), (320, 25, 5));
    assert_eq!(
        (m.min_area, m.learning_rate, m.global_change),
        (0.002, 0.05, 0.6)
    );
    assert!(m.masks.is_empty());
    let d = &cfg.detector;
    assert_eq!((d.backend, &d.onnxruntime), (None, &None));
    assert_eq!((&d.input_sizes, d.threads), (&None, None));
    assert_eq!((d.latency_budget_ms, d.adapt), (None, true));
    assert_eq!(
        (d.max_rate_hz, d.score_threshold, d.nms_iou, d.min_box_area),
        (5.0, 0.5, 0.45, 0.001)
    );
    let t = &cfg.tracker;
    assert_eq!((t.iou_match, t.better_score), (0.3, 0.1));
    assert_eq!((t.confirm_hits.get(), t.max_missed), (2, 5));
    assert_eq!(t.reupload_interval, Duration::from_secs(10));
    let c = &cfg.crops;
    assert_eq!((c.padding, c.max_side, c.jpeg_quality), (0.15, 640, 80));
    assert_eq!(cfg.buffer.max_bytes, 256 * 1024 * 1024);
    assert_eq!(cfg.buffer.max_age, Duration::from_secs(7 * 86_400));
    let u = &cfg.uplink;
    assert_eq!(u.keep_alive, Duration::from_secs(15));
    assert_eq!((u.max_packet_bytes, u.max_inflight.get()), (1 << 20, 16));
    assert_eq!(u.reconnect_max, Duration::from_secs(30));
    assert_eq!(u.ack_timeout, Duration::from_secs(60));
    assert_eq!(u.compression, Compression::None);
    assert_eq!((&u.username, &u.password), (&None, &None));
    assert_eq!(
        cfg.telemetry.listen,
        SocketAddr::from(([127, 0, 0, 1], 9464))
    );
    assert_eq!(cfg.supervisor, SupervisorConfig::default());
    assert_eq!(cfg.supervisor.stall_timeout, Duration::from_secs(10));
}

/// The starter config parses and validates as written, and every setting it shows at a
/// default's value (or leaves commented out) is that default.
#[test]
fn the_starter_config_is_valid_and_shows_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/edge-agent.toml");
    let text = std::fs::read_to_string(path).expect("starter");
    let starter = validated(&text).expect("valid");
    let defaults = validated(MINIMAL).expect("valid");
    let debug = |c: &EdgeConfig| {
        format!(
            "{:?}",
            (&c.motion, &c.tracker, &c.crops, &c.telemetry, &c.supervisor)
        )
    };
    assert_eq!(debug(&starter), debug(&defaults));
    let (s, d) = (&starter.detector, &defaults.detector);
    assert_eq!(
        format!(
            "{:?}",
            (s.backend, &s.onnxruntime, &s.input_sizes, s.threads)
        ),
        format!(
            "{:?}",
            (d.backend, &d.onnxruntime, &d.input_sizes, d.threads)
        ),
        "the hardware profile decides these",
    );
    assert_eq!(
        (s.max_rate_hz, s.score_threshold, s.nms_iou, s.min_box_area),
        (d.max_rate_hz, d.score_threshold, d.nms_iou, d.min_box_area)
    );
    assert_eq!(
        (s.motion_rate_hz, &s.regions),
        (d.motion_rate_hz, &d.regions)
    );
    assert_eq!(
        (s.latency_budget_ms, s.adapt),
        (d.latency_budget_ms, d.adapt)
    );
    assert_eq!(
        (starter.buffer.max_bytes, starter.buffer.max_age),
        (defaults.buffer.max_bytes, defaults.buffer.max_age)
    );
    let (s, d) = (&starter.uplink, &defaults.uplink);
    assert_eq!(
        format!(
            "{:?}",
            (
                s.tls,
                s.keep_alive,
                s.max_packet_bytes,
                s.max_inflight,
                s.reconnect_max,
                s.ack_timeout,
                s.compression,
                &s.username,
                &s.password
            )
        ),
        format!(
            "{:?}",
            (
                d.tls,
                d.keep_alive,
                d.max_packet_bytes,
                d.max_inflight,
                d.reconnect_max,
                d.ack_timeout,
                d.compression,
                &d.username,
                &d.password
            )
        )
    );
    let (_, _, looped, fps) = file_source(&starter.cameras[0].source);
    assert_eq!((looped, fps), (false, 25.0));
}

#[test]
fn durations_keep_their_field_names_and_units() {
    let text = MINIMAL
        .replace(
            "[buffer]",
            "[tracker]\nreupload_interval_s = 0.25\n[supervisor]\nstall_timeout_s = 2\n[buffer]\nmax_age_s = 90",
        )
        .replace(
            "port = 8883",
            "port = 8883\nkeep_alive_s = 20\nreconnect_max_s = 2.5\nack_timeout_s = 6",
        );
    let cfg = validated(&text).expect("valid");
    assert_eq!(cfg.tracker.reupload_interval, Duration::from_millis(250));
    assert_eq!(cfg.supervisor.stall_timeout, Duration::from_secs(2));
    assert_eq!(cfg.buffer.max_age, Duration::from_secs(90));
    assert_eq!(cfg.uplink.keep_alive, Duration::from_secs(20));
    assert_eq!(cfg.uplink.reconnect_max, Duration::from_millis(2500));
    assert_eq!(cfg.uplink.ack_timeout, Duration::from_secs(6));
    for (from, to, field) in [
        (
            "port = 8883",
            "port = 8883\nkeep_alive_s = -1",
            "keep_alive_s",
        ),
        (
            "port = 8883",
            "port = 8883\nack_timeout_s = \"60s\"",
            "ack_timeout_s",
        ),
        (
            "dir = \"buffer\"",
            "dir = \"b\"\nmax_age_s = 1e99",
            "max_age_s",
        ),
    ] {
        let e = toml::from_str::<raw::EdgeConfig>(&MINIMAL.replace(from, to))
            .expect_err(to)
            .to_string();
        assert!(e.contains(field), "{to}: {e}");
    }
}

#[test]
fn unknown_fields_are_refused() {
    for (from, to, field) in [
        ("port = 8883", "port = 8883\nprot = 1", "prot"),
        (
            "[buffer]",
            "[tracker]\nreupload_interval = 3\n[buffer]",
            "reupload_interval",
        ),
        (
            "path = \"clip.mp4\"",
            "path = \"clip.mp4\", url = \"x\"",
            "url",
        ),
    ] {
        let err = toml::from_str::<raw::EdgeConfig>(&MINIMAL.replace(from, to))
            .expect_err("refused")
            .to_string();
        assert!(err.contains(field), "{err}");
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = MINIMAL
        .replace("id = \"dev-1\"", "id = \"dev/1\"")
        .replace(
            "port = 8883",
            "port = 0\nmax_inflight = 0\nkeep_alive_s = 70000\nreconnect_max_s = 0.5\n\
             ack_timeout_s = 1\nmax_packet_bytes = 1024",
        )
        .replace(
            "path = \"clip.mp4\"",
            "path = \"clip.mp4\", fps = 0.0 }\n[[camera]]\nid = \"cam-1\"\nsource = { kind = \"file\", path = \"b.mp4\"",
        )
        .replace(
            "[buffer]",
            "[motion]\nthreshold = 0\n[tracker]\nconfirm_hits = 0\niou_match = 1.0\n\
             reupload_interval_s = 0\n[supervisor]\nrestart_backoff_min_s = 5\n\
             restart_backoff_max_s = 2\n[crops]\njpeg_quality = 0\n[buffer]\nmax_age_s = 59",
        )
        .replace(
            "manifest = \"models/m.toml\"",
            "manifest = \"models/m.toml\"\nthreads = 0\nlatency_budget_ms = 0",
        );
    let file = file(&text);
    let p = file.validated().expect_err("invalid");
    let fields = [
        "device.id",
        "camera[0].source.fps",
        "camera[0].id",
        "camera[1].id",
        "motion.threshold",
        "detector.threads",
        "detector.latency_budget_ms",
        "supervisor.restart_backoff_max_s",
        "tracker.iou_match",
        "tracker.confirm_hits",
        "tracker.reupload_interval_s",
        "crops.jpeg_quality",
        "buffer.max_age_s",
        "uplink.port",
        "uplink.max_inflight",
        "uplink.max_packet_bytes",
        "uplink.keep_alive_s",
        "uplink.ack_timeout_s",
        "uplink.reconnect_max_s",
    ];
    assert_eq!(p.len(), fields.len(), "{p}");
    for f in fields {
        assert!(p.iter().any(|l| l.starts_with(f)), "{f} not named:\n{p}");
    }
    assert_eq!(file.validate(), p, "validate() reports the same problems");
}

#[test]
fn sections_validate_on_their_own() {
    let u: raw::UplinkConfig =
        toml::from_str("host = \"h\"\nport = 1\nmax_inflight = 3").expect("uplink");
    assert_eq!(u.validated().expect("valid").max_inflight.get(), 3);
    let u: raw::UplinkConfig =
        toml::from_str("host = \"\"\nport = 1\nmax_inflight = 0").expect("uplink");
    assert_eq!(u.validated().expect_err("invalid").len(), 2);
    let t = raw::TrackerConfig::default().validated().expect("defaults");
    assert_eq!(t.confirm_hits.get(), 2);
}

#[test]
fn the_engine_cache_defaults_beside_the_buffer_and_stays_out_of_it() {
    let mut cfg = file(MINIMAL);
    cfg.resolve_paths(Path::new("/var/lib/cascade"));
    let d = &cfg.detector;
    assert_eq!(
        d.engine_cache_dir(&cfg.buffer.dir),
        Path::new("/var/lib/cascade/trt-cache")
    );
    let mut cfg = file(&MINIMAL.replace("[detector]", "[detector]\nengine_cache = \"trt\""));
    cfg.resolve_paths(Path::new("/etc/cascade"));
    assert_eq!(
        cfg.detector.engine_cache_dir(&cfg.buffer.dir),
        Path::new("/etc/cascade/trt")
    );
    assert!(cfg.validate().is_empty());
    let mut cfg = file(&MINIMAL.replace("[detector]", "[detector]\nengine_cache = \"buffer/trt\""));
    cfg.resolve_paths(Path::new("/etc/cascade"));
    let p = cfg.validate();
    assert_eq!(p.len(), 1, "{p}");
    assert!(
        p.iter()
            .all(|l| l.starts_with("detector.engine_cache: /etc/cascade/buffer/trt")),
        "{p}"
    );
}

#[test]
fn relative_paths_are_resolved_against_the_config_folder() {
    let mut cfg = file(&MINIMAL.replace("[detector]", "[detector]\nonnxruntime = \"/opt/ort.so\""));
    cfg.resolve_paths(Path::new("/etc/cascade"));
    let (path, ..) = file_source(&cfg.cameras[0].source);
    assert_eq!(path, Path::new("/etc/cascade/clip.mp4"));
    assert_eq!(
        cfg.detector.manifest,
        Path::new("/etc/cascade/models/m.toml")
    );
    assert_eq!(
        cfg.detector.onnxruntime.as_deref(),
        Some(Path::new("/opt/ort.so"))
    );
    assert_eq!(cfg.buffer.dir, Path::new("/etc/cascade/buffer"));
    assert_eq!(
        cfg.uplink.ca_file.as_deref(),
        Some(Path::new("/etc/cascade/ca.pem"))
    );
}
