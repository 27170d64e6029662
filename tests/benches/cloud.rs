//! Cloud benchmarks: `cargo bench -p cascade-tests --bench cloud` prints the figures (here, beside
//! the harness, because real crops are cut by the edge agent's decoder and cropper).
//! 1. crops/s through validation + store + FP32 confirm + alert at max_batch 1, 4, 8 and 16 (in
//!    process), on the dynamic-batch FP32 model (one run per batch) when present;
//! 2. end-to-end latency capture -> alert through the real binary and its embedded broker on
//!    loopback at 10 crops/s, with `[batch] max_wait_ms` 0, 20 and 100 (what waiting for a fuller
//!    batch costs), and the analyzer's peak RSS.
//! 3. the confirm model on a KServe v2 inference server (MLServer + ONNX Runtime, the harness's
//!    `.venv-mlserver`) against in-process ONNX Runtime: crops/s and p50/p99 latency per batch at
//!    max_batch 1 and 8 (skipped, saying so, without the venv). `CASCADE_BENCH_ONLY=server` runs
//!    only this one.
//!    Uses ../shared (real clip and models) when present, else the generated ones.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cascade_infer::{Detector, LoadOptions};
use cascade_shared::config::cloud::ConfirmConfig;
use cascade_shared::config::edge::CropConfig;
use cascade_shared::wire::{Compression, Crop, CropEnvelope};
use cloud_analyzer::alert::{AlertEngine, Changes};
use cloud_analyzer::confirm::{Confirmer, CropInput, OnnxConfirmer, Place};
use cloud_analyzer::ingest;
use cloud_analyzer::store::{Inserted, Store};
use edge_agent::decode::{H264Decoder, VideoDecoder};
use edge_agent::source::{Container, Mp4File};
use prost::Message;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn detector(manifest: &Path, model: Option<PathBuf>, threshold: f32) -> Detector {
    let mut o = LoadOptions::onnx_cpu(manifest);
    o.model_file = model;
    o.score_threshold = threshold;
    o.min_box_area = 0.0;
    o.backend.threads = 2;
    cascade_infer::load_detector(&o).expect("model")
}

/// Real crops: the edge INT8 detector on frames of the clip, cut and encoded as the edge does.
fn crops(clip: &Path, edge: &mut Detector, want: usize) -> Vec<Vec<u8>> {
    let mut src = Mp4File::open(clip).expect("clip");
    let mut dec = H264Decoder::new().expect("decoder");
    let (mut frames, mut out, mut i) = (Vec::new(), Vec::new(), 0u64);
    while let Some(au) = src.next_unit().expect("read") {
        let _ = dec.decode(&au, &mut frames);
        for f in frames.drain(..) {
            i += 1;
            if i % 15 != 0 || out.len() >= want {
                continue;
            }
            for d in edge.detect(&f).expect("detect") {
                let c = edge_agent::crop::make(&f, &d.bbox, &crop_config()).expect("crop");
                let crop = Crop {
                    message_id: format!("bench-{}", out.len()),
                    device_id: "bench".into(),
                    camera_id: "cam".into(),
                    frame_width: f.width as u32,
                    frame_height: f.height as u32,
                    r#box: Some(d.bbox),
                    crop_region: Some(c.region),
                    score: d.score,
                    track_id: out.len() as u64,
                    jpeg: c.jpeg,
                    event: 0,
                    ..Crop::default()
                };
                out.push(
                    CropEnvelope::wrap(&crop.encode_body(Compression::None), 0).encode_to_vec(),
                );
            }
        }
    }
    out
}

/// A crop the cloud did not confirm: edge score, cloud score, JPEG width and height.
type Missed = (f32, f32, usize, usize);

/// The edge's crop settings; `CASCADE_BENCH_CROP=padding,max_side` tries others.
fn crop_config() -> CropConfig {
    let mut c = CropConfig::default();
    if let Ok(v) = std::env::var("CASCADE_BENCH_CROP") {
        let mut it = v.split(',');
        c.padding = it.next().and_then(|x| x.parse().ok()).unwrap_or(c.padding);
        c.max_side = it.next().and_then(|x| x.parse().ok()).unwrap_or(c.max_side);
    }
    c
}

fn throughput(
    payloads: &[Vec<u8>],
    confirm_manifest: &Path,
    model: Option<PathBuf>,
    max_batch: usize,
) -> (f64, usize, Vec<Missed>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let det = detector(confirm_manifest, model, 0.1);
    let mut confirmer = OnnxConfirmer::new(det, &ConfirmConfig::default());
    let mut engine = AlertEngine::new(30_000_000, Vec::new());
    let (mut confirmed, start, mut missed) = (0, Instant::now(), Vec::new());
    for chunk in payloads.chunks(max_batch) {
        let mut valid = Vec::new();
        for p in chunk {
            let v = ingest::validate("cascade/v1/bench/crops", p).expect("valid");
            if store.insert_crop(&v.crop, 0, 0).expect("insert") == Inserted::New {
                valid.push(v.into_pending());
            }
        }
        let inputs: Vec<_> = valid
            .iter()
            .map(|p| CropInput {
                image: ingest::decode_jpeg(&p.jpeg).expect("jpeg"),
                place: Place::from_arrays(p.bbox, p.region),
            })
            .collect();
        let verdicts = confirmer.confirm(&inputs).expect("confirm");
        for ((p, v), c) in valid.iter().zip(verdicts).zip(&inputs) {
            if !v.confirmed {
                missed.push((p.edge_score, v.cloud_score, c.image.width, c.image.height));
            }
            let changes = if v.confirmed {
                confirmed += 1;
                let c = p.confirmed(v.cloud_score);
                engine.confirm(&c, 1, String::new())
            } else {
                Changes::default()
            };
            store.decide(&p.message_id, v, 1, &changes).expect("decide");
        }
    }
    (
        payloads.len() as f64 / start.elapsed().as_secs_f64(),
        confirmed,
        missed,
    )
}

fn main() {
    let shared = repo().join("../shared");
    let real = shared.join("models").is_dir();
    println!(
        "cascade cloud benchmarks ({} inputs)",
        if real { "real ../shared" } else { "generated" }
    );
    let (clip, edge_manifest, edge_model, cloud_manifest, cloud_model) = if real {
        (
            shared.join("samples/one-by-one-person-detection.mp4"),
            repo().join("models/yolov8n-int8.toml"),
            Some(shared.join("models/yolov8n_int8.onnx")),
            repo().join("models/yolov8n-fp32-dynbatch.toml"),
            Some(shared.join("models/yolov8n_fp32_dynbatch.onnx")),
        )
    } else {
        (
            repo().join("tests/fixtures/walker.mp4"),
            repo().join("models/blob-yolov8-int8.toml"),
            None,
            repo().join("models/blob-yolov8-fp32.toml"),
            None,
        )
    };
    let mut edge = detector(&edge_manifest, edge_model, 0.5);
    let payloads = crops(&clip, &mut edge, 48);
    println!("{} crops from {}", payloads.len(), clip.display());
    let onnx = cloud_model
        .clone()
        .unwrap_or_else(|| repo().join("models/test/blob-yolov8-fp32.onnx"));
    if std::env::var("CASCADE_BENCH_ONLY").is_ok_and(|v| v == "server") {
        return server::compare(&payloads, &cloud_manifest, &onnx);
    }
    for batch in [1, 4, 8, 16] {
        let (rate, confirmed, missed) =
            throughput(&payloads, &cloud_manifest, cloud_model.clone(), batch);
        println!(
            "ingest + FP32 confirm + alert, max_batch {batch}: {rate:.1} crops/s ({confirmed} confirmed)"
        );
        if batch == 1 {
            let m: Vec<String> = missed
                .iter()
                .map(|(e, c, w, h)| format!("edge {e:.2} cloud {c:.2} {w}x{h}"))
                .collect();
            println!("  not confirmed: {}", m.join(", "));
        }
    }
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    println!(
        "crop settings {:?}: {:.0} bytes per crop message on average",
        crop_config(),
        bytes as f64 / payloads.len().max(1) as f64
    );
    if std::env::var("CASCADE_BENCH_CROP").is_err() {
        for max_wait_ms in [0, 20, 100] {
            loopback(&payloads, &cloud_manifest, max_wait_ms);
        }
    }
    server::compare(&payloads, &cloud_manifest, &onnx);
}

/// The confirm model on an inference server against in-process ONNX Runtime.
mod server {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Instant;

    use cascade_infer::backend::kserve::{
        CircuitState, Outcome, ServerHealth, ServerObserver, ServerStatus,
    };
    use cascade_shared::config::cloud::{ConfirmConfig, ServerConfig};
    use cascade_tests::mlserver::{MlServer, ModelSettings, mlserver_binary};
    use cloud_analyzer::confirm::{Confirmer, CropInput, OnnxConfirmer, Place};
    use cloud_analyzer::ingest;

    struct Quiet;

    impl ServerObserver for Quiet {
        fn request(&self, _: Outcome, _: f64) {}
        fn circuit(&self, _: CircuitState) {}
        fn changed(&self, _: &ServerHealth) {}
    }

    fn options(manifest: &Path) -> cascade_infer::LoadOptions {
        let mut o = cascade_infer::LoadOptions::onnx_cpu(manifest);
        o.score_threshold = 0.1;
        o.min_box_area = 0.0;
        o.backend.threads = 2;
        o
    }

    /// crops/s, and p50 and p99 of the per-batch confirm time in ms.
    fn run(confirmer: &mut dyn Confirmer, inputs: &[CropInput], batch: usize) -> (f64, f64, f64) {
        let _ = confirmer.confirm(&inputs[..1]).expect("warm-up");
        let start = Instant::now();
        let mut lat = Vec::new();
        for chunk in inputs.chunks(batch) {
            let t = Instant::now();
            confirmer.confirm(chunk).expect("confirm");
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let rate = inputs.len() as f64 / start.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
        (rate, p(0.5), p(0.99))
    }

    pub fn compare(payloads: &[Vec<u8>], manifest: &Path, onnx: &Path) {
        if let Err(why) = mlserver_binary() {
            return println!("inference server: skipped: {why}");
        }
        let inputs: Vec<CropInput> = payloads
            .iter()
            .map(|p| {
                let v = ingest::validate("cascade/v1/bench/crops", p).expect("valid");
                let p = v.into_pending();
                CropInput {
                    image: ingest::decode_jpeg(&p.jpeg).expect("jpeg"),
                    place: Place::from_arrays(p.bbox, p.region),
                }
            })
            .collect();
        let dir = tempfile::tempdir().expect("tmp");
        let server = MlServer::start(dir.path(), &ModelSettings::new("confirm", onnx))
            .expect("MLServer starts");
        let cfg: ServerConfig =
            toml::from_str(&format!("url = \"{}\"\nmodel = \"confirm\"", server.url()))
                .expect("server config");
        let status = Arc::new(ServerStatus::new(&server.url(), Box::new(Quiet)));
        let det = cascade_infer::model::load_server_detector(&options(manifest), &cfg, status)
            .expect("server detector");
        let mut remote = OnnxConfirmer::new(det, &ConfirmConfig::default());
        let local = cascade_infer::load_detector(&options(manifest)).expect("local detector");
        let mut local = OnnxConfirmer::new(local, &ConfirmConfig::default());
        for batch in [1, 8] {
            for (name, c) in [
                ("in-process ONNX Runtime", &mut local as &mut dyn Confirmer),
                ("MLServer (KServe v2 REST, JSON tensors)", &mut remote),
            ] {
                let (rate, p50, p99) = run(c, &inputs, batch);
                println!(
                    "confirm on {name}, max_batch {batch}: {rate:.1} crops/s, per batch p50 {p50:.1} ms, p99 {p99:.1} ms"
                );
            }
        }
    }
}

/// Publishes crops (capture time = now) to the real analyzer binary at a steady pace; reports
/// capture -> alert latency percentiles and the analyzer's peak RSS.
fn loopback(payloads: &[Vec<u8>], cloud_manifest: &Path, max_wait_ms: u32) {
    use cascade_tests::*;
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(dir.path()).expect("certs");
    let (port, api) = (
        free_port(),
        std::net::SocketAddr::from(([127, 0, 0, 1], free_port())),
    );
    let broker = embedded_broker_toml(port, &certs);
    let mut cfg = analyzer_config(dir.path(), &repo(), &broker, api, 60.0)
        .replace("max_wait_ms = 20", &format!("max_wait_ms = {max_wait_ms}"));
    cfg = cfg.replace(
        &repo()
            .join("models/blob-yolov8-fp32.toml")
            .display()
            .to_string(),
        &cloud_manifest.display().to_string(),
    );
    let Ok(analyzer) = AnalyzerProcess::start(dir.path(), &cfg, api) else {
        println!(
            "loopback: the analyzer binary is not built (cargo build --release --bins), skipped"
        );
        return;
    };
    let alerts = subscribe(port, &certs, "cascade/v1/alerts/+/+");
    let _ = eventually(Duration::from_secs(10), || alerts.is_subscribed());
    for (i, p) in payloads.iter().enumerate() {
        let mut env = CropEnvelope::decode(p.as_slice()).expect("envelope");
        let mut crop = Crop::decode(env.body.as_slice()).expect("crop");
        let now = cascade_shared::clock::Clock::now_utc_us(&cascade_shared::clock::SystemClock);
        crop.message_id = format!("loop-{i}");
        crop.capture_time_us = now;
        env = CropEnvelope::wrap(&crop.encode_body(Compression::None), now);
        publish_all(
            port,
            &certs,
            "cascade/v1/bench/crops",
            vec![env.encode_to_vec()],
        )
        .expect("publish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = eventually(Duration::from_secs(30), || {
        alerts.len() >= payloads.len() / 2
    });
    std::thread::sleep(Duration::from_secs(1));
    let mut lat: Vec<f64> = alerts
        .all()
        .iter()
        .filter_map(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
        .filter_map(|e| {
            Some((e["cloud_decision_time_us"].as_f64()? - e["capture_time_us"].as_f64()?) / 1e3)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    if !lat.is_empty() {
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
        println!(
            "loopback capture -> alert ({} alerts, 10 crops/s, max_wait_ms {max_wait_ms}): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
            lat.len(),
            p(0.5),
            p(0.9),
            p(0.99)
        );
    }
    if let Some(pid) = analyzer.pid() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .unwrap_or("VmHWM: ?");
        println!(
            "analyzer peak RSS: {}",
            hwm.trim_start_matches("VmHWM:").trim()
        );
    }
}
