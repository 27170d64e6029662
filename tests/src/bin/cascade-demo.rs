//! The main job on embedded defaults: starts a real Mosquitto over TLS (generated certificates, temp
//! dir, free port), runs the edge agent on a clip until its crops are acknowledged, and prints what a
//! subscriber received and a summary. Uses the real INT8 detector and real clip when given (or found
//! in ../shared), else the generated test model and clip, and says which.
//!
//! Usage: cascade-demo [--clip FILE] [--manifest MODEL.toml]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cascade_shared::wire;
use cascade_tests::{Mosquitto, eventually, mosquitto_binary, subscribe};

fn arg(name: &str) -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
}

fn main() -> anyhow::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()?;
    let real_model = repo.join("models/downloads/yolov8n_int8.onnx");
    let real_clip = repo.join("../shared/samples/one-by-one-person-detection.mp4");
    let (clip, manifest, what) = match (arg("--clip"), arg("--manifest")) {
        (Some(c), Some(m)) => (c, m, "the given clip and model"),
        (clip, _) if real_model.is_file() && (clip.is_some() || real_clip.is_file()) => (
            clip.unwrap_or(real_clip),
            repo.join("models/yolov8n-int8.toml"),
            "the real YOLOv8n INT8 detector",
        ),
        (clip, _) => (
            clip.unwrap_or_else(|| repo.join("tests/fixtures/walker.mp4")),
            repo.join("models/blob-yolov8-int8.toml"),
            "the GENERATED test detector (scripts/fetch-models.sh fetches the real one)",
        ),
    };
    println!("cascade demo: {} with {what}", clip.display());
    let bin = mosquitto_binary()
        .ok_or_else(|| anyhow::anyhow!("mosquitto is required: run scripts/setup.sh"))?;
    let dir = tempfile::tempdir()?;
    let broker = Mosquitto::start(bin, dir.path(), true)?;
    let sub = subscribe(broker.port, &broker.certs, "cascade/v1/+/crops");
    eventually(Duration::from_secs(10), || sub.is_subscribed())
        .map_err(|_| anyhow::anyhow!("subscriber did not connect"))?;
    let config = dir.path().join("edge.toml");
    let starter = std::fs::read_to_string(repo.join("deploy/edge-agent.toml"))?;
    let cfg = starter
        .replace(
            "\"../tests/fixtures/walker.mp4\"",
            &format!("{:?}", clip.display().to_string()),
        )
        .replace(
            "\"../models/blob-yolov8-int8.toml\"",
            &format!("{:?}", manifest.display().to_string()),
        )
        .replace(
            "\"/var/lib/cascade/buffer\"",
            &format!("{:?}", dir.path().join("buffer").display().to_string()),
        )
        .replace("port = 8883", &format!("port = {}", broker.port))
        .replace(
            "\"/etc/cascade/ca.pem\"",
            &format!("{:?}", broker.certs.ca.display().to_string()),
        )
        .replace(
            "\"/etc/cascade/client.pem\"",
            &format!("{:?}", broker.certs.client_cert.display().to_string()),
        )
        .replace(
            "\"/etc/cascade/client.key\"",
            &format!("{:?}", broker.certs.client_key.display().to_string()),
        )
        .replace(
            "\"../hardware-profiles/",
            &format!("\"{}/hardware-profiles/", repo.display()),
        )
        .replace("127.0.0.1:9464", "127.0.0.1:0");
    std::fs::write(&config, cfg)?;
    let agent = std::env::current_exe()?.with_file_name("edge-agent");
    let started = Instant::now();
    let out = Command::new(&agent)
        .args(["run", "--exit-when-done", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .output()?;
    let log = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(out.status.success(), "edge-agent failed:\n{log}");
    let expected = log.matches("crops committed to the buffer").count();
    let _ = eventually(Duration::from_secs(10), || sub.len() >= expected);
    println!("\ncrops received by an independent MQTT subscriber:");
    for p in sub.all() {
        let (_, c) = wire::decode(&p)?;
        let b = c.r#box.unwrap_or_default();
        println!(
            "  {} {}/{} seq {:>3} track {:>2} {} {:.2} box [{:.0}, {:.0}, {:.0}, {:.0}] jpeg {} B",
            c.message_id,
            c.device_id,
            c.camera_id,
            c.sequence,
            c.track_id,
            c.class_name,
            c.score,
            b.x1,
            b.y1,
            b.x2,
            b.y2,
            c.jpeg.len()
        );
    }
    let summary = log
        .lines()
        .find(|l| l.contains(" summary"))
        .unwrap_or("(no summary line)");
    println!(
        "\nagent summary ({:.1} s): {}",
        started.elapsed().as_secs_f64(),
        summary.split("summary").last().unwrap_or(summary).trim()
    );
    if let (Some(i), Some(u)) = (
        field(summary, "input_bytes"),
        field(summary, "uploaded_bytes"),
    ) {
        println!(
            "uploaded {u:.0} B for {i:.0} B of video: {:.2} % of the input",
            100.0 * u / i.max(1.0)
        );
    }
    if let (Some(f), Some(d)) = (field(summary, "frames"), field(summary, "detector_runs")) {
        println!(
            "detector ran on {d:.0} of {f:.0} frames ({:.1} %)",
            100.0 * d / f.max(1.0)
        );
    }
    Ok(())
}

fn field(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}="))?.parse().ok())
}
