//! Edge benchmarks: `cargo bench -p edge-agent --bench edge` prints the figures
//! (`-- v4l2`: only the V4L2 conversions; `-- motion`: only motion against its anchor).
//! Uses ../shared (real clip and models) when present, else the generated fixtures.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cascade_infer::{Detector, LoadOptions};
use cascade_shared::config::edge::CropConfig;
use cascade_shared::wire::{BoxPx, Compression, Crop};
use edge_agent::buffer::{Buffer, Limits, NewRecord};
use edge_agent::decode::{Frame, H264Decoder, VideoDecoder};
use edge_agent::source::{Container, Mp4File};

mod motion;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn noisy_frame(w: usize, h: usize, seed: u32, block_x: usize) -> Frame {
    let mut f = Frame::filled(w, h, 0);
    let mut x = seed | 1;
    for (i, p) in f.y.iter_mut().enumerate() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let (px, py) = (i % w, i / w);
        let inside = (block_x..block_x + w / 16).contains(&px) && (h / 4..h / 2).contains(&py);
        *p = if inside { 220 } else { 80 } + (x % 9) as u8;
    }
    f
}

fn decode_all(clip: &Path) -> (Vec<Frame>, f64) {
    let mut src = Mp4File::open(clip).expect("clip");
    let mut units = Vec::new();
    while let Some(u) = src.next_unit().expect("read") {
        units.push(u);
    }
    let mut dec = H264Decoder::new().expect("decoder");
    let mut frames = Vec::new();
    let t = Instant::now();
    for u in &units {
        let _ = dec.decode(u, &mut frames);
    }
    dec.flush(&mut frames).expect("flush");
    (frames, t.elapsed().as_secs_f64())
}

fn bench_decode(clip: &Path) -> Vec<Frame> {
    let (frames, secs) = decode_all(clip);
    println!(
        "decode openh264 ({}): {} frames in {:.2} s = {:.0} fps",
        clip.display(),
        frames.len(),
        secs,
        frames.len() as f64 / secs
    );
    let t = Instant::now();
    let ff = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-threads", "1", "-i"])
        .arg(clip)
        .args(["-f", "null", "-"])
        .status();
    match ff {
        Ok(s) if s.success() => {
            let secs = t.elapsed().as_secs_f64();
            println!(
                "decode ffmpeg -threads 1 (same clip): {:.2} s = {:.0} fps (process start included)",
                secs,
                frames.len() as f64 / secs
            )
        }
        _ => println!("decode ffmpeg: not installed, skipped"),
    }
    frames
}

fn load(manifest: &Path, model: Option<PathBuf>, threads: usize) -> Detector {
    let mut o = LoadOptions::onnx_cpu(manifest);
    o.model_file = model;
    o.backend.threads = threads;
    cascade_infer::load_detector(&o).expect("model")
}

fn bench_detector(frame: &Frame, name: &str, det: &mut Detector) {
    for _ in 0..3 {
        det.detect(frame).expect("run");
    }
    let mut times: Vec<f64> = (0..30)
        .map(|_| {
            let t = Instant::now();
            det.detect(frame).expect("run");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "detector {name}: p50 {:.1} ms, p95 {:.1} ms ({}x{} frame)",
        times[15], times[28], frame.width, frame.height
    );
}

fn bench_buffer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Buffer::open(
        dir.path(),
        Limits {
            max_bytes: 1 << 34,
            max_age_us: i64::MAX / 2,
        },
    )
    .expect("buffer");
    let payload = vec![0x5Au8; 50_000];
    let n = 200;
    let t = Instant::now();
    for i in 0..n {
        let p = payload.clone();
        b.push(
            i,
            vec![NewRecord {
                camera: "c",
                build: Box::new(move |_| p),
            }],
        )
        .expect("push");
    }
    let secs = t.elapsed().as_secs_f64();
    let file = std::fs::metadata(dir.path().join("crops.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "buffer: {:.0} durable commits/s of 50 KB records (fsync each; {} in {:.2} s); file {:.1} MB for {:.1} MB payload",
        n as f64 / secs,
        n,
        secs,
        file as f64 / 1e6,
        n as f64 * 0.05
    );
}

fn bench_zstd(frames: &[Frame], det: &mut Detector) {
    let (mut raw, mut packed, mut n) = (0usize, 0usize, 0);
    let t0 = Instant::now();
    for f in frames.iter().step_by(20) {
        for d in det.detect(f).expect("run") {
            let c = edge_agent::crop::make(f, &d.bbox, &CropConfig::default()).expect("crop");
            let msg = Crop {
                message_id: "0190f1a2-7c3b-7d3e-9c1a-123456789abc".into(),
                device_id: "dev".into(),
                camera_id: "cam".into(),
                frame_width: f.width as u32,
                frame_height: f.height as u32,
                r#box: Some(d.bbox),
                crop_region: Some(c.region),
                score: d.score,
                jpeg: c.jpeg,
                event: 0,
                ..Crop::default()
            };
            raw += msg.encode_body(Compression::None).body.len();
            packed += msg.encode_body(Compression::Zstd).body.len();
            n += 1;
        }
    }
    let _ = BoxPx::default();
    if n > 0 {
        println!(
            "zstd on {n} real crops: {raw} -> {packed} bytes, ratio {:.3} (saves {:.1} %); {:.1} s incl. detection",
            raw as f64 / packed as f64,
            100.0 * (1.0 - packed as f64 / raw as f64),
            t0.elapsed().as_secs_f64()
        );
    }
}

/// Cost of a full-resolution crop from a main stream: the coded units of the last two GOPs are
/// cached (bytes reported), and one picture is decoded on demand from its key frame. Best case:
/// the key frame itself; worst: the last picture of the group. `CASCADE_MAIN_CLIP` names another
/// clip (e.g. a 1080p one; see the README for the command that makes one).
fn bench_main_stream(clip: &Path) {
    use edge_agent::camera::gop::GopCache;
    let cache = GopCache::new(usize::MAX, 1_000_000);
    let mut src = match Mp4File::open(clip) {
        Ok(s) => s,
        Err(e) => return println!("main stream: {e}"),
    };
    let mut pts = Vec::new();
    while let Ok(Some(au)) = src.next_unit() {
        pts.push(au.pts_us);
        cache.push(au.pts_us, au);
    }
    pts.sort_unstable();
    let Some(&last) = pts.last() else {
        return println!("main stream: {} holds no video", clip.display());
    };
    let size = cache.frame_at(last).map(|f| (f.width, f.height));
    let Ok((w, h)) = size else {
        return println!("main stream: cannot decode {}", clip.display());
    };
    // The oldest kept picture is the previous group's key frame.
    let first = pts
        .iter()
        .copied()
        .find(|p| cache.frame_at(*p).is_ok())
        .unwrap_or(last);
    for (what, at) in [
        ("oldest kept (a key frame)", first),
        ("newest (end of a group)", last),
    ] {
        let n = 10;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(cache.frame_at(at).ok());
        }
        let per = t.elapsed().as_secs_f64() / f64::from(n);
        println!(
            "main-stream crop {w}x{h}, picture {what}: {:.1} ms to decode on demand",
            per * 1e3
        );
    }
    println!(
        "main-stream cache {w}x{h}: {:.2} MB of coded units (two GOPs)",
        cache.bytes() as f64 / 1e6
    );
}

/// Raw V4L2 pictures to frames, 1280x720 (what a Pi pays per frame before motion).
fn bench_v4l2_convert() {
    use edge_agent::source::v4l2::convert::{Layout, mjpeg, nv12, yuyv};
    let (w, h) = (1280usize, 720usize);
    let src = noisy_frame(w, h, 7, w / 4);
    let layout = Layout {
        width: w,
        height: h,
        stride: 0,
    };
    let packed: Vec<u8> = (0..w * h)
        .flat_map(|i| [src.y[i], if i % 2 == 0 { 100 } else { 150 }])
        .collect();
    let mut semi = src.y.clone();
    semi.extend(std::iter::repeat_n([100u8, 150], w * h / 4).flatten());
    let rgb: Vec<u8> = src.y.iter().flat_map(|&y| [y, y / 2, 255 - y]).collect();
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 80)
        .encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .expect("encodes");
    let time = |name: &str, f: &dyn Fn() -> Frame| {
        let n = 60;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(f());
        }
        let per = t.elapsed().as_secs_f64() / f64::from(n);
        println!(
            "v4l2 {name} {w}x{h} -> frame: {:.2} ms (one core)",
            per * 1e3
        );
    };
    time("YUYV", &|| yuyv(&packed, layout, 0).expect("yuyv"));
    time("NV12", &|| nv12(&semi, layout, 0).expect("nv12"));
    time(&format!("MJPEG ({} KB)", jpeg.len() / 1024), &|| {
        mjpeg(&jpeg, w, h, 0).expect("mjpeg")
    });
}

fn main() {
    if std::env::args().any(|a| a == "v4l2") {
        bench_v4l2_convert();
        return;
    }
    let shared = repo().join("../shared");
    let real = shared.join("models").is_dir();
    println!(
        "cascade edge benchmarks ({} inputs)",
        if real { "real ../shared" } else { "generated" }
    );
    let clip = if real {
        shared.join("samples/one-by-one-person-detection.mp4")
    } else {
        repo().join("tests/fixtures/walker.mp4")
    };
    let sample = shared.join("samples/one-by-one-person-detection.mp4");
    motion::bench(&repo(), sample.is_file().then_some(sample.as_path()));
    if std::env::args().any(|a| a == "motion") {
        return;
    }
    bench_v4l2_convert();
    let main_clip =
        std::env::var_os("CASCADE_MAIN_CLIP").map_or_else(|| clip.clone(), PathBuf::from);
    bench_main_stream(&main_clip);
    let frames = bench_decode(&clip);
    let frame = frames
        .iter()
        .find(|f| f.pts_us >= 30_000_000)
        .unwrap_or(&frames[frames.len() / 2])
        .clone();
    if real {
        println!(
            "detector latency per model and size: cargo bench -p edge-agent --bench detector -- models"
        );
        let mut int8 = load(
            &repo().join("models/yolov8n-int8.toml"),
            Some(shared.join("models/yolov8n_int8.onnx")),
            2,
        );
        bench_zstd(&frames, &mut int8);
    } else {
        let mut det = load(&repo().join("models/blob-yolov8-int8.toml"), None, 1);
        bench_detector(&frame, "generated blob INT8", &mut det);
    }
    bench_buffer();
    println!(
        "whole agent on a clip: scripts/demo.sh (prints input vs uploaded bytes, detector share, crops, peak RSS)"
    );
}
