//! `scripts/quantize.py` (static QDQ INT8) on the tiny YOLOv8-shaped model of
//! `scripts/make_test_models.py` (`models/test/tiny-yolov8-fp32.onnx`: an export's head layout,
//! detects the bright walker), calibrated on `tests/fixtures/walker.mp4`, at its own size and
//! re-sized; every model it writes goes through the real detector (ONNX Runtime) and is compared
//! with the FP32 model at the same size. Runs the script with the venv `scripts/setup.sh` makes
//! (`.venv-quant`); skips, saying so, when that is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use cascade_infer::{Detection, Detector, Frame, LoadOptions, load_detector};
use cascade_shared::manifest::{ModelManifest, Precision};
use cascade_shared::wire::BoxPx;
use cascade_tests::repo_root as repo;
use edge_agent::decode::{H264Decoder, VideoDecoder};
use edge_agent::source::{Container, Mp4File};
use serde_json::Value;

const VENV_PYTHON: &str = ".venv-quant/bin/python";

fn venv_python() -> Option<PathBuf> {
    let p = repo().join(VENV_PYTHON);
    p.is_file().then_some(p)
}

/// Runs `scripts/quantize.py` on the tiny model into `out` and returns its report.
fn quantize(python: &Path, out: &Path, name: &str, extra: &[&str]) -> Value {
    let output = Command::new(python)
        .current_dir(repo())
        .args([
            "scripts/quantize.py",
            "--model",
            "models/test/tiny-yolov8-fp32.onnx",
        ])
        .args(["--source-manifest", "models/tiny-yolov8-fp32.toml"])
        .args(["--frames", "tests/fixtures/walker.mp4", "--every", "1"])
        .args([
            "--calib-frames",
            "40",
            "--eval-frames",
            "40",
            "--latency-runs",
            "3",
        ])
        .args(["--keep-fp32", "--name", name, "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("runs the venv's python");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "quantize.py {extra:?} failed:\n{log}"
    );
    eprintln!("{log}{}", String::from_utf8_lossy(&output.stdout));
    let text = std::fs::read_to_string(out.join(format!("{name}.report.json"))).expect("report");
    serde_json::from_str(&text).expect("report is JSON")
}

/// What the quantised graph holds (ONNX), and what ONNX Runtime makes of it (the optimised graph it
/// runs, saved by the session): op counts, and the node that produces `output0` with its inputs.
const GRAPH_PY: &str = r#"
import collections, json, sys, onnx, onnxruntime as ort
m = onnx.load(sys.argv[1])
prod = {o: n for n in m.graph.node for o in n.output}
last = prod[m.graph.output[0].name]
so = ort.SessionOptions()
so.log_severity_level = 3
so.optimized_model_filepath = sys.argv[2]
ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
opt = onnx.load(sys.argv[2])
print(json.dumps({
    "ops": collections.Counter(n.op_type for n in m.graph.node),
    "final": {"name": last.name, "op": last.op_type,
              "inputs": [prod[i].op_type if i in prod else "initializer" for i in last.input]},
    "runs": collections.Counter(n.op_type for n in opt.graph.node),
}))
"#;

fn graph(python: &Path, model: &Path) -> Value {
    let optimised = model.with_extension("optimised.onnx");
    let output = Command::new(python)
        .args(["-c", GRAPH_PY])
        .arg(model)
        .arg(&optimised)
        .output()
        .expect("runs the venv's python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

fn count(v: &Value, key: &str, op: &str) -> u64 {
    v[key][op].as_u64().unwrap_or(0)
}

/// The frames of the walker clip (10 fps; the walker is in view from t = 2 s to 6.5 s).
fn walker_frames() -> Vec<Frame> {
    let mut src = Mp4File::open(&repo().join("tests/fixtures/walker.mp4")).expect("clip opens");
    let mut dec = H264Decoder::new().expect("decoder");
    let mut frames = Vec::new();
    while let Some(au) = src.next_unit().expect("reads") {
        dec.decode(&au, &mut frames).expect("decodes");
    }
    frames
}

fn detector(manifest: &Path) -> Detector {
    load_detector(&LoadOptions::onnx_cpu(manifest))
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()))
}

fn iou(a: &BoxPx, b: &BoxPx) -> f32 {
    let area = |r: &BoxPx| (r.x2 - r.x1).max(0.0) * (r.y2 - r.y1).max(0.0);
    let iw = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let ih = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let inter = iw * ih;
    inter / (area(a) + area(b) - inter).max(1e-6)
}

fn best(found: &[Detection]) -> Option<&Detection> {
    found.iter().max_by(|a, b| a.score.total_cmp(&b.score))
}

/// The manifest the script wrote: parses with the project's rules, pins the file's sha256, says what
/// the model is.
fn check_manifest(manifest: &Path, size: u32, precision: Precision) {
    let (m, file) = ModelManifest::load(manifest).expect("manifest parses");
    m.verify_file(&file).expect("sha256 matches the file");
    assert_eq!((m.input.width, m.input.height), (size, size), "{m:?}");
    assert_eq!(m.precision, precision);
    assert_eq!(
        m.labels,
        ["person", "other"],
        "labels from --source-manifest"
    );
    assert_eq!(m.person_class_id, 0);
}

#[test]
fn quantize_py_makes_a_static_int8_model_the_detector_runs_like_fp32() {
    let Some(python) = venv_python() else {
        eprintln!(
            "SKIPPED: {VENV_PYTHON} is not present; scripts/setup.sh makes it (quantize.py's venv)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let frames = walker_frames();
    // 8 s at 10 fps; the decoder does not flush its last reordered frame.
    assert!(frames.len() >= 79, "walker.mp4: {} frames", frames.len());

    // 128: the model's own size; 160: re-sized by the script (anchors, strides, shape constants).
    for size in [128u32, 160] {
        let name = format!("tiny-int8-{size}");
        let extra: &[&str] = if size == 128 { &[] } else { &["--size", "160"] };
        let report = quantize(&python, dir.path(), &name, extra);

        // The script's own comparison on the 40 held-out frames.
        assert_eq!(report["size"], size);
        assert_eq!(report["calibration_frames"], 40);
        assert_eq!(report["recall_vs_fp32"], 1.0, "{report}");
        assert_eq!(report["precision_vs_fp32"], 1.0, "{report}");
        let persons = report["fp32_persons"].as_u64().expect("count");
        assert!(
            persons >= 15,
            "the walker is in about half the frames: {report}"
        );
        let diff = report["mean_abs_score_diff"].as_f64().expect("diff");
        assert!(diff < 0.03, "INT8 scores follow FP32: {report}");
        assert_eq!(
            report["excluded_head_nodes"], 24,
            "the export's head: 24 nodes"
        );
        if size != 128 {
            assert!(
                report["resize_check"]["iou"].as_f64().expect("iou") > 0.8,
                "re-sized FP32 against the original: {report}"
            );
        }

        // The graph: QDQ around every feature Conv, run as QLinearConv; the head in float.
        let model = dir.path().join(format!("{name}.onnx"));
        let g = graph(&python, &model);
        eprintln!("{size}: {g}");
        assert!(count(&g, "ops", "QuantizeLinear") >= 18, "{g}");
        assert!(count(&g, "ops", "DequantizeLinear") >= 36, "{g}");
        assert_eq!(
            count(&g, "runs", "QLinearConv"),
            18,
            "every Conv but the DFL's runs as QLinearConv: {g}"
        );
        assert_eq!(g["final"]["name"], "/model.22/Concat_3", "{g}");
        assert_eq!(g["final"]["op"], "Concat", "{g}");
        assert_eq!(
            g["final"]["inputs"],
            serde_json::json!(["Mul", "Sigmoid"]),
            "the final Concat takes float boxes and probabilities: {g}"
        );

        // The manifests, then both models through the real detector on every frame of the clip.
        let int8_manifest = dir.path().join(format!("{name}.toml"));
        let fp32_manifest = dir.path().join(format!("{name}-fp32.toml"));
        check_manifest(&int8_manifest, size, Precision::Int8);
        check_manifest(&fp32_manifest, size, Precision::Fp32);
        let mut int8 = detector(&int8_manifest);
        let mut fp32 = detector(&fp32_manifest);
        let (mut seen, mut worst_iou, mut worst_diff) = (0, 1.0f32, 0.0f32);
        for frame in &frames {
            let i = frame.pts_us / 100_000; // the frame's number at 10 fps
            let f = fp32.detect(frame).expect("fp32 runs");
            let q = int8.detect(frame).expect("int8 runs");
            assert_eq!(f.len(), q.len(), "{size}, frame {i}: {f:?} vs {q:?}");
            let Some(f) = best(&f) else { continue };
            let q = best(&q).expect("as many");
            let iou = iou(&f.bbox, &q.bbox);
            let diff = (f.score - q.score).abs();
            assert!(iou > 0.8, "{size}, frame {i}: {f:?} vs {q:?}");
            assert!(diff < 0.05, "{size}, frame {i}: {f:?} vs {q:?}");
            (seen, worst_iou, worst_diff) = (seen + 1, worst_iou.min(iou), worst_diff.max(diff));
            assert!(
                (20..=65).contains(&i),
                "{size}: a person in frame {i}, out of the walker's time: {f:?}"
            );
            if i == 40 {
                // t = 4 s: the walker's 36x96 block at x = 20 + 2 * 60 = 140, y = 70.
                let b = f.bbox;
                for (got, want) in [(b.x1, 140.0), (b.y1, 70.0), (b.x2, 176.0), (b.y2, 166.0)] {
                    assert!((got - want).abs() <= 4.0, "{size}: FP32 box {b:?}");
                }
            }
        }
        eprintln!(
            "{size}: FP32 and INT8 find the walker in {seen} frames; worst IoU {worst_iou:.3}, \
             worst score difference {worst_diff:.4}"
        );
        assert!(
            seen >= 40,
            "{size}: the walker is in view for 4.5 s: {seen} frames"
        );
    }

    // Why the head stays in float: quantised, its final Concat holds pixel boxes (0-160) and
    // probabilities (0-1) on one uint8 scale of about 0.6, so the walker's 0.9 drops to one step.
    let report = quantize(
        &python,
        dir.path(),
        "head-160",
        &["--size", "160", "--quantize-head"],
    );
    let g = graph(&python, &dir.path().join("head-160.onnx"));
    assert_eq!(g["final"]["op"], "DequantizeLinear", "{g}");
    let diff = report["mean_score_diff_int8_minus_fp32"]
        .as_f64()
        .expect("diff");
    assert!(
        diff < -0.2,
        "scores collapse with the head quantised: {report}"
    );
    let mut broken = detector(&dir.path().join("head-160.toml"));
    let at_4s = frames
        .iter()
        .find(|f| f.pts_us == 4_000_000)
        .expect("t = 4 s");
    let top = best(&broken.detect(at_4s).expect("runs")).map(|d| d.score);
    assert!(
        top.is_none_or(|s| s < 0.7),
        "head quantised: top score {top:?}"
    );
}
