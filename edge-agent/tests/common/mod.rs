//! Helpers shared by the edge agent's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cascade_shared::manifest::ModelManifest;
use edge_agent::decode::Frame;
use edge_agent::detect::{DetectParams, OnnxDetector};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared` beside the project root, when this machine has it.
pub fn shared_dir() -> Option<PathBuf> {
    let d = repo().join("../shared");
    d.join("models").is_dir().then_some(d)
}

pub fn params() -> DetectParams {
    DetectParams {
        score_threshold: 0.5,
        nms_iou: 0.45,
        min_box_area: 0.0005,
        class_id: Some(0),
    }
}

pub fn load_detector(manifest: &Path, model_override: Option<&Path>) -> OnnxDetector {
    let (m, path) = ModelManifest::load(manifest).unwrap_or_else(|p| panic!("manifest: {p}"));
    let path = model_override.map_or(path, Path::to_path_buf);
    m.verify_file(&path).expect("model file matches its sha256");
    OnnxDetector::load(m, &path, None, 1, params()).expect("model loads in ONNX Runtime")
}

/// A 320x240 dark frame with a white 36x96 block at (x, 70), like tests/fixtures/walker.*.
pub fn walker_frame(x: usize) -> Frame {
    let mut f = Frame::filled(320, 240, 48);
    for y in 70..166 {
        for xx in x..x + 36 {
            f.y[y * 320 + xx] = 235;
        }
    }
    f
}
