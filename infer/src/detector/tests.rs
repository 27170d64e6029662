//! The generic detector against a fake backend (the trait boundary): what it feeds the backend,
//! and how it turns outputs into detections. The real ONNX Runtime runs in `tests/tests/detector.rs`.

use std::sync::{Arc, Mutex};

use cascade_shared::manifest::ModelManifest;

use super::*;
use crate::backend::{BackendInfo, OutputTensor};
use crate::image::{Frame, RgbImage};

fn manifest(extra_input: &str, format: &str) -> ModelManifest {
    toml::from_str(&format!(
        r#"
        name = "fake"
        version = "1"
        file = "fake.onnx"
        sha256 = "00"
        licence = "none"
        labels = ["person", "other"]
        person_class_id = 0
        [input]
        width = 8
        height = 8
        {extra_input}
        [output]
        format = "{format}"
        "#
    ))
    .expect("manifest")
}

fn params() -> DetectParams {
    DetectParams {
        score_threshold: 0.5,
        nms_iou: 0.45,
        min_box_area: 0.0,
        class_id: Some(0),
        scaling: crate::preprocess::Scaling::Fit,
    }
}

/// What the fake saw: each run's shape and its first input value.
type Seen = Arc<Mutex<Vec<([usize; 4], f32)>>>;

/// Answers every image of a run with one YOLOv8 candidate: a person box 2..6 in input pixels.
struct Fake {
    info: BackendInfo,
    seen: Seen,
}

impl Fake {
    fn boxed(dtype: DType, dynamic_batch: bool, outputs: &[&str]) -> (Box<dyn Backend>, Seen) {
        let seen = Seen::default();
        let info = BackendInfo {
            name: "fake".into(),
            dtype,
            input_size: Some((8, 8)),
            input_quant: None,
            dynamic_batch,
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            provider: crate::backend::ProviderKind::Cpu,
            fallbacks: Vec::new(),
        };
        (
            Box::new(Self {
                info,
                seen: seen.clone(),
            }),
            seen,
        )
    }
}

impl Backend for Fake {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn run(&mut self, input: InputTensor<'_>) -> Result<Vec<OutputTensor>, BackendError> {
        let first = match input.data {
            InputData::F32(d) => d[0],
            InputData::U8(d) => f32::from(d[0]),
            InputData::I8(d) => f32::from(d[0]),
        };
        self.seen.lock().expect("lock").push((input.shape, first));
        let n = input.shape[0];
        // [n, 6, 1]: cx, cy, w, h, person, other.
        let one = [4.0, 4.0, 4.0, 4.0, 0.9, 0.1];
        Ok(vec![OutputTensor {
            name: "out".into(),
            shape: vec![n as i64, 6, 1],
            data: one.repeat(n),
        }])
    }
}

fn grey(side: usize) -> RgbImage {
    RgbImage {
        width: side,
        height: side,
        data: vec![255; side * side * 3],
    }
}

#[test]
fn detections_map_back_to_image_pixels() {
    let (b, _) = Fake::boxed(DType::F32, false, &["out"]);
    let mut d = Detector::new(manifest("", "yolov8"), b, params()).expect("fits");
    let found = d.detect(&grey(16)).expect("runs");
    assert_eq!(found.len(), 1);
    let bb = found[0].bbox;
    assert_eq!(
        (bb.x1, bb.y1, bb.x2, bb.y2),
        (4.0, 4.0, 12.0, 12.0),
        "8 -> 16 doubles"
    );
    assert_eq!(found[0].class_id, 0);
}

#[test]
fn the_backend_gets_the_dtype_it_asks_for() {
    for (dtype, want) in [(DType::F32, 1.0), (DType::U8, 255.0), (DType::I8, 127.0)] {
        let (b, seen) = Fake::boxed(dtype, false, &["out"]);
        let mut d = Detector::new(manifest("", "yolov8"), b, params()).expect("fits");
        d.detect(&grey(8)).expect("runs");
        let (shape, first) = seen.lock().expect("lock")[0];
        assert_eq!(shape, [1, 3, 8, 8], "{dtype:?}");
        assert!((first - want).abs() < 1e-6, "{dtype:?}: {first}");
    }
}

#[test]
fn a_batch_is_one_run_only_when_the_model_takes_one() {
    let frames = [Frame::filled(8, 8, 100), Frame::filled(8, 8, 100)];
    let refs: Vec<&Frame> = frames.iter().collect();
    let (b, seen) = Fake::boxed(DType::F32, true, &["out"]);
    let mut d = Detector::new(manifest("layout = \"nhwc\"", "yolov8"), b, params()).expect("fits");
    assert_eq!(d.detect_batch(&refs).expect("runs").len(), 2);
    assert_eq!(seen.lock().expect("lock").len(), 1);
    assert_eq!(seen.lock().expect("lock")[0].0, [2, 8, 8, 3]);

    let (b, seen) = Fake::boxed(DType::F32, false, &["out"]);
    let mut d = Detector::new(manifest("", "yolov8"), b, params()).expect("fits");
    let out = d.detect_batch(&refs).expect("runs");
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|r| r.len() == 1));
    assert_eq!(seen.lock().expect("lock").len(), 2, "one run per image");
}

#[test]
fn a_model_that_does_not_fit_its_manifest_is_refused() {
    let (b, _) = Fake::boxed(DType::F32, false, &["out"]);
    let err = Detector::new(manifest("", "ssd"), b, params()).expect_err("no ssd outputs");
    assert!(
        err.to_string().contains("no output named \"boxes\""),
        "{err}"
    );

    let (b, _) = Fake::boxed(DType::F32, false, &["out"]);
    let mut m = manifest("", "yolov8");
    m.input.width = 16;
    let err = Detector::new(m, b, params()).expect_err("size differs");
    assert!(err.to_string().contains("16x8"), "{err}");
}

/// A HEF with NMS on chip, as the Hailo backend hands it over: uint8 NHWC in, one
/// `[1, classes, 1 + 5 * max_boxes]` float32 buffer out (2 classes, at most 2 boxes each).
struct HailoFake(BackendInfo, Seen);

impl Backend for HailoFake {
    fn info(&self) -> &BackendInfo {
        &self.0
    }

    fn run(&mut self, input: InputTensor<'_>) -> Result<Vec<OutputTensor>, BackendError> {
        self.1.lock().expect("lock").push((input.shape, 0.0));
        // A person at 0.25..0.75 of the input both ways, then one box of the other class.
        let mut data = vec![1.0, 0.25, 0.25, 0.75, 0.75, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0];
        data.extend([1.0, 0.0, 0.0, 1.0, 1.0, 0.8]);
        data.resize(22, 0.0);
        Ok(vec![OutputTensor {
            name: "yolov8n/yolov8_nms_postprocess".into(),
            shape: vec![1, 2, 11],
            data,
        }])
    }
}

#[test]
fn nms_on_chip_boxes_map_back_through_the_letterbox() {
    let seen = Seen::default();
    let info = BackendInfo {
        name: "hailo fake".into(),
        dtype: DType::U8,
        input_size: Some((8, 8)),
        input_quant: None,
        dynamic_batch: false,
        outputs: vec!["yolov8n/yolov8_nms_postprocess".into()],
        provider: crate::backend::ProviderKind::Cpu,
        fallbacks: Vec::new(),
    };
    let b = Box::new(HailoFake(info, seen.clone()));
    let m = manifest("layout = \"nhwc\"\ndtype = \"uint8\"", "hailo_nms");
    let mut d = Detector::new(m, b, params()).expect("fits");
    // 16x8 into 8x8: half size, 2 rows of padding above and below.
    let wide = RgbImage {
        width: 16,
        height: 8,
        data: vec![90; 16 * 8 * 3],
    };
    let found = d.detect(&wide).expect("runs");
    assert_eq!(seen.lock().expect("lock")[0].0, [1, 8, 8, 3], "NHWC");
    assert_eq!(found.len(), 1, "the person only: {found:?}");
    let bb = found[0].bbox;
    assert_eq!((bb.x1, bb.y1, bb.x2, bb.y2), (4.0, 0.0, 12.0, 8.0));
    assert_eq!((found[0].class_id, found[0].score), (0, 0.9));
}
