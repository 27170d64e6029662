//! Dynamic-batch models (issue 12 item 1): `scripts/make_dynbatch.py` makes a batch-agnostic copy
//! of the tiny YOLOv8-shaped test model (an export's head layout, `scripts/make_test_models.py`),
//! and the detector's batched run of several different frames gives each frame's single-image
//! detections, through real ONNX Runtime; the same for the real `models/yolov8n-fp32-dynbatch.toml`
//! on frames of the real sample clip when `../shared` is present (skipped, saying so, without it).
//! Runs the script with the venv `scripts/setup.sh` makes (`.venv-quant`); skips, saying so, when
//! that is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use cascade_infer::{Detection, Detector, Frame, LoadOptions, load_detector};
use cascade_tests::{repo_root as repo, shared_dir};

mod common;

fn detector(manifest: &Path) -> Detector {
    let mut o = LoadOptions::onnx_cpu(manifest);
    o.score_threshold = 0.25;
    o.backend.threads = 2;
    load_detector(&o).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()))
}

/// One batched run against one run per frame: the same boxes and scores, frame by frame.
fn assert_batch_equals_singles(det: &mut Detector, frames: &[Frame]) -> usize {
    assert!(det.batches_natively(), "a dynamic batch dimension");
    let batched = det.detect_batch(frames).expect("batched run");
    let singles: Vec<Vec<Detection>> = frames
        .iter()
        .map(|f| det.detect(f).expect("single run"))
        .collect();
    assert_eq!(batched.len(), frames.len());
    common::assert_same(&batched, &singles)
}

fn venv_python() -> Option<PathBuf> {
    let p = repo().join(".venv-quant/bin/python");
    p.is_file().then_some(p)
}

#[test]
fn the_script_makes_a_batch_agnostic_model_whose_batched_detections_equal_single_runs() {
    let Some(python) = venv_python() else {
        eprintln!("SKIPPED: .venv-quant is absent (scripts/setup.sh makes it)");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("tiny-dynbatch.onnx");
    let run = Command::new(&python)
        .current_dir(repo())
        .args([
            "scripts/make_dynbatch.py",
            "models/test/tiny-yolov8-fp32.onnx",
        ])
        .arg(&out)
        .output()
        .expect("runs the venv's python");
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "make_dynbatch.py failed:\n{said}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(said.contains("max abs difference 0.00e+00"), "{said}");
    let sha = said
        .lines()
        .find_map(|l| l.strip_prefix("sha256 = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the script prints the sha256");
    // The tiny model's manifest, pointed at the new file.
    let manifest = std::fs::read_to_string(repo().join("models/tiny-yolov8-fp32.toml"))
        .expect("manifest")
        .replace("test/tiny-yolov8-fp32.onnx", &out.display().to_string())
        .lines()
        .map(|l| {
            if l.starts_with("sha256") {
                format!("sha256 = \"{sha}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.path().join("tiny-dynbatch.toml");
    std::fs::write(&path, manifest).expect("write manifest");

    let fixed = detector(&repo().join("models/tiny-yolov8-fp32.toml"));
    assert!(!fixed.batches_natively(), "the export has a batch of 1");
    let mut det = detector(&path);
    let walker = common::frames(&repo().join("tests/fixtures/walker.mp4"), 20, 6);
    let found = assert_batch_equals_singles(&mut det, &walker);
    assert!(
        found >= 3,
        "the tiny model finds the walker: {found} detections"
    );
}

#[test]
fn the_real_dynamic_batch_model_gives_each_frame_its_single_image_detections() {
    let manifest = repo().join("models/yolov8n-fp32-dynbatch.toml");
    let model = repo().join("models/downloads/yolov8n_fp32_dynbatch.onnx");
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED: ../shared (the real sample clip) is absent");
        return;
    };
    if !model.is_file() {
        eprintln!(
            "SKIPPED: {} is absent (scripts/fetch-models.sh)",
            model.display()
        );
        return;
    }
    let clip = shared.join("samples/one-by-one-person-detection.mp4");
    let mut det = detector(&manifest);
    // Eight frames 12 s apart: people and empty corridor.
    let sample = common::frames(&clip, 120, 8);
    let found = assert_batch_equals_singles(&mut det, &sample);
    assert!(
        found >= 4,
        "people in the sampled frames: {found} detections"
    );
}
