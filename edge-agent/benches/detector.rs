//! Detector benchmarks: `cargo bench -p edge-agent --bench detector -- [models] [backends] [roi]
//! [--threads N] [--frames N]` (all when none is named). Needs the real models (`scripts/fetch-models.sh`, or ../shared) and
//! the real sample clip (../shared/samples); says so and stops when they are absent.
//! 1. `models`: detector latency p50/p99 per model and input size, FP32, dynamic INT8 and static
//!    INT8 at 640/416/320, measured in interleaved rounds (every model once per round) on frames
//!    of the sample clip, so machine noise hits them alike;
//! 2. `backends`: the same network (YOLOv8n INT8) at the same input size (640) on ONNX Runtime
//!    (static QDQ) and on LiteRT/XNNPACK (the full-integer TFLite export), with YOLO11n and YOLOv5n
//!    on LiteRT beside them, interleaved the same way (`--frames`, default 120);
//! 3. `roi`: on the motion frames of the sample clip (as the agent sends them: motion gate,
//!    5 Hz), person recall and cost of whole-frame detection against regions of interest at each
//!    size, taking what FP32 640 finds in the clip's frames as the people; once on the clip as it
//!    is (768x432, people large) and once with the clip shrunk into a 1920x1080 wide view (people
//!    far away).

use std::path::{Path, PathBuf};
use std::time::Instant;

use cascade_infer::{Detection, Detector, LoadOptions, Look};
use cascade_shared::config::edge::{MotionConfig, RegionsConfig};
use cascade_shared::wire::BoxPx;
use edge_agent::decode::{Frame, H264Decoder, VideoDecoder};
use edge_agent::detect::roi::Planner;
use edge_agent::motion::{BackgroundMotion, MotionDetector};
use edge_agent::source::{Container, Mp4File};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Model {
    label: String,
    det: Detector,
}

/// `manifest` at input side `side`, from models/downloads (`scripts/fetch-models.sh`).
fn load(manifest: &str, side: u32, threads: usize) -> Option<Model> {
    let path = repo().join("models").join(manifest);
    let mut o = LoadOptions::onnx_cpu(&path);
    o.backend.threads = threads;
    let det = cascade_infer::load_ladder(&o, &[side]).ok()?.pop()?;
    Some(Model {
        label: format!("{} {side}", det.manifest().name),
        det,
    })
}

fn decode(clip: &Path) -> Vec<Frame> {
    let mut src = Mp4File::open(clip).expect("clip");
    let mut dec = H264Decoder::new().expect("decoder");
    let mut frames = Vec::new();
    while let Some(u) = src.next_unit().expect("read") {
        let _ = dec.decode(&u, &mut frames);
    }
    dec.flush(&mut frames).expect("flush");
    frames
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bench_models(frames: &[Frame], threads: usize) {
    let specs = [
        ("yolov8n-fp32.toml", 640),
        ("yolov8n-int8.toml", 640),
        ("yolov8n-int8-static.toml", 640),
        ("yolov8n-int8-static.toml", 416),
        ("yolov8n-int8-static.toml", 320),
    ];
    latency(frames, threads, &specs, 60);
}

/// ONNX Runtime against LiteRT (the manifests name the backend) for YOLOv8n INT8 at 640.
fn bench_backends(frames: &[Frame], threads: usize, picks: usize) {
    let specs = [
        ("yolov8n-int8-static.toml", 640),
        ("yolov8n-int8-tflite.toml", 640),
        ("yolo11n-int8-tflite.toml", 640),
        ("yolov5n-int8-tflite.toml", 640),
    ];
    latency(frames, threads, &specs, picks);
}

/// Latency of each model in `specs` on `picks` frames spread over the clip, in interleaved rounds.
fn latency(frames: &[Frame], threads: usize, specs: &[(&str, u32)], picks: usize) {
    let mut models: Vec<Model> = specs
        .iter()
        .filter_map(|(m, s)| load(m, *s, threads))
        .collect();
    if models.len() < specs.len() {
        println!("models: some models are missing (run scripts/fetch-models.sh)");
    }
    let picks: Vec<&Frame> = frames
        .iter()
        .step_by((frames.len() / picks.max(1)).max(1))
        .take(picks)
        .collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); models.len()];
    for m in &mut models {
        m.det.detect(picks[0]).expect("warm-up");
    }
    for f in &picks {
        for (m, t) in models.iter_mut().zip(&mut times) {
            let t0 = Instant::now();
            m.det.detect(*f).expect("run");
            t.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    println!(
        "\ndetector latency, {threads} thread(s), {} frames of the sample clip, interleaved:",
        picks.len()
    );
    println!(
        "  {:<30} {:<34} {:>8} {:>8} {:>8}",
        "model", "backend", "p50 ms", "p90 ms", "p99 ms"
    );
    for (m, t) in models.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        println!(
            "  {:<30} {:<34} {:>8.1} {:>8.1} {:>8.1}",
            m.label,
            m.det.backend_name(),
            pct(t, 0.5),
            pct(t, 0.9),
            pct(t, 0.99)
        );
    }
}

/// A scene as the camera sees it: the clip as is, or shrunk into a wider view.
#[derive(Clone, Copy)]
enum Scene {
    /// The clip's own frames.
    Native,
    /// Each frame at half size pasted at (1200, 600) of a flat 1920x1080 picture: the same people
    /// far away in a wide view, where letterboxing the whole frame costs them most of their pixels.
    Far,
}

impl Scene {
    const FAR: (usize, usize, usize, usize) = (1920, 1080, 1200, 600);

    fn frame(self, f: &Frame) -> Frame {
        match self {
            Self::Native => f.clone(),
            Self::Far => {
                let (w, h, ox, oy) = Self::FAR;
                let mut out = Frame::filled(w, h, 100);
                out.pts_us = f.pts_us;
                let (sw, sh) = (f.width / 2, f.height / 2);
                for y in 0..sh {
                    for x in 0..sw {
                        out.y[(oy + y) * w + ox + x] = f.y[(2 * y) * f.width + 2 * x];
                    }
                }
                let (cw, scw) = (w / 2, f.width.div_ceil(2));
                for y in 0..sh / 2 {
                    for x in 0..sw / 2 {
                        let (d, s) = ((oy / 2 + y) * cw + ox / 2 + x, (2 * y) * scw + 2 * x);
                        out.u[d] = f.u[s];
                        out.v[d] = f.v[s];
                    }
                }
                out
            }
        }
    }

    /// A box of the clip's frame in this scene's frame.
    fn map(self, d: &Detection) -> Detection {
        match self {
            Self::Native => *d,
            Self::Far => {
                let (_, _, ox, oy) = Self::FAR;
                let b = d.bbox;
                let m = |v: f32, o: usize| v / 2.0 + o as f32;
                Detection {
                    bbox: BoxPx {
                        x1: m(b.x1, ox),
                        y1: m(b.y1, oy),
                        x2: m(b.x2, ox),
                        y2: m(b.y2, oy),
                    },
                    ..*d
                }
            }
        }
    }
}

/// The frames the agent would send in `scene` (motion gate, then at most 5 per second of stream
/// time), every `keep`-th of them, with the clip frame's index and the motion boxes.
fn sent_frames(frames: &[Frame], scene: Scene, keep: usize) -> Vec<(usize, Frame, Vec<BoxPx>)> {
    let mut motion = BackgroundMotion::new(MotionConfig::default());
    let mut last = i64::MIN / 2;
    let mut out = Vec::new();
    let mut n = 0;
    for (i, f) in frames.iter().enumerate() {
        let seen = scene.frame(f);
        let m = motion.detect(&seen);
        if !m.boxes.is_empty() && f.pts_us - last >= 200_000 {
            last = f.pts_us;
            if n % keep == 0 {
                out.push((i, seen, m.boxes));
            }
            n += 1;
        }
    }
    out
}

/// People of `reference` found in `got` (IoU >= 0.5), and boxes of `got` not in `reference`.
fn score(reference: &[Detection], got: &[Detection]) -> (usize, usize) {
    let found = reference
        .iter()
        .filter(|r| got.iter().any(|g| r.bbox.iou(&g.bbox) >= 0.5))
        .count();
    let extra = got
        .iter()
        .filter(|g| !reference.iter().any(|r| r.bbox.iou(&g.bbox) >= 0.5))
        .count();
    (found, extra)
}

fn bench_roi(frames: &[Frame], threads: usize, scene: Scene, keep: usize) {
    let sent = sent_frames(frames, scene, keep);
    let Some(mut reference) = load("yolov8n-fp32.toml", 640, threads) else {
        println!("roi: the FP32 reference model is missing (run scripts/fetch-models.sh)");
        return;
    };
    // The people are those FP32 finds in the clip's own frame, moved into the scene.
    let truth: Vec<Vec<Detection>> = sent
        .iter()
        .map(|(i, _, _)| {
            let found = reference.det.detect(&frames[*i]).expect("run");
            found.iter().map(|d| scene.map(d)).collect()
        })
        .collect();
    let people: usize = truth.iter().map(Vec::len).sum();
    let (w, h) = sent.first().map_or((0, 0), |(_, f, _)| (f.width, f.height));
    println!(
        "\nregions of interest vs whole frame, {w}x{h} scene, {} motion frames sent at 5 Hz (1 in {keep} kept) of {} ({} people: FP32 640 on the clip's frames), {threads} thread(s):",
        sent.len(),
        frames.len(),
        people
    );
    println!(
        "  {:<32} {:>7} {:>7} {:>9} {:>9} {:>8}",
        "static INT8", "recall", "extra", "ms/frame", "regions", "whole %"
    );
    for side in [640u32, 416, 320] {
        let Some(mut m) = load("yolov8n-int8-static.toml", side, threads) else {
            println!("  static INT8 {side}: missing");
            continue;
        };
        for roi in [false, true] {
            let cfg = RegionsConfig {
                enabled: roi,
                whole_frame_every_s: if roi { 10.0 } else { 0.0 },
                ..RegionsConfig::default()
            };
            let mut planner = Planner::new(cfg);
            let (mut found, mut extra, mut regions, mut whole, mut secs) = (0, 0, 0, 0, 0.0);
            for ((_, f, boxes), t) in sent.iter().zip(&truth) {
                let plan = planner.plan(f.pts_us, (f.width, f.height), side, boxes.iter().copied());
                let look = [Look {
                    image: f,
                    regions: plan.regions(),
                }];
                let t0 = Instant::now();
                let got = m
                    .det
                    .detect_looks(&look)
                    .expect("run")
                    .pop()
                    .unwrap_or_default();
                secs += t0.elapsed().as_secs_f64();
                let (fo, ex) = score(t, &got);
                (found, extra) = (found + fo, extra + ex);
                regions += plan.regions().len();
                whole += usize::from(plan.regions().is_empty());
            }
            let n = sent.len().max(1) as f64;
            println!(
                "  {:<32} {:>7.3} {:>7} {:>9.1} {:>9.2} {:>7.0}%",
                format!("{side} {}", if roi { "regions" } else { "whole frame" }),
                found as f64 / people.max(1) as f64,
                extra,
                secs * 1e3 / n,
                regions as f64 / n,
                whole as f64 * 100.0 / n
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(1);
    let picks = args
        .iter()
        .position(|a| a == "--frames")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(120);
    let named: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| ["models", "backends", "roi"].contains(a))
        .collect();
    let clip = repo().join("../shared/samples/one-by-one-person-detection.mp4");
    if !clip.is_file() || load("yolov8n-int8-static.toml", 320, 1).is_none() {
        println!(
            "detector benchmarks skipped: they need the real sample clip ({}) and models (scripts/fetch-models.sh)",
            clip.display()
        );
        return;
    }
    let frames = decode(&clip);
    println!(
        "sample clip: {} frames {}x{}",
        frames.len(),
        frames[0].width,
        frames[0].height
    );
    if named.is_empty() || named.contains(&"models") {
        bench_models(&frames, threads);
    }
    if named.is_empty() || named.contains(&"backends") {
        bench_backends(&frames, threads, picks);
    }
    if named.is_empty() || named.contains(&"roi") {
        bench_roi(&frames, threads, Scene::Native, 1);
        bench_roi(&frames, threads, Scene::Far, 3);
    }
}
