//! The LiteRT backend on the real TFLite person detectors of `../shared/models` (YOLOv5n uint8,
//! YOLOv8n and YOLO11n int8; manifests `models/*-int8-tflite.toml`) on frames of the real clip:
//! each finds the person where the ONNX Runtime model (static INT8 YOLOv8n) does. Skipped, saying
//! so, without `../shared`. The tiny generated TFLite model is tested always, in
//! `infer/tests/litert.rs`.

use std::path::Path;

use cascade_infer::{Detection, Detector, Frame, LoadOptions, load_detector};
use cascade_tests::{repo_root as repo, shared_dir};
use edge_agent::decode::{H264Decoder, VideoDecoder};
use edge_agent::source::{Container, Mp4File};

/// Every `every_us` of the clip, from `first_us`, the first frame at or after that time.
fn frames_every(clip: &Path, first_us: i64, every_us: i64) -> Vec<Frame> {
    let mut src = Mp4File::open(clip).expect("clip opens");
    let mut dec = H264Decoder::new().expect("decoder");
    let (mut next, mut out, mut frames) = (first_us, Vec::new(), Vec::new());
    while let Some(au) = src.next_unit().expect("reads") {
        dec.decode(&au, &mut frames).expect("decodes");
        for f in frames.drain(..) {
            if f.pts_us >= next {
                next += every_us;
                out.push(f);
            }
        }
    }
    out
}

fn detector(manifest: &str, file: &Path) -> Detector {
    load_detector(&LoadOptions {
        model_file: Some(file.to_path_buf()),
        ..LoadOptions::onnx_cpu(repo().join(format!("models/{manifest}.toml")))
    })
    .unwrap_or_else(|e| panic!("{manifest}: {e}"))
}

fn best(found: &[Detection]) -> Option<Detection> {
    found
        .iter()
        .copied()
        .max_by(|a, b| a.score.total_cmp(&b.score))
}

fn iou(a: &Detection, b: &Detection) -> f32 {
    let (a, b) = (a.bbox, b.bbox);
    let iw = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let ih = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let inter = iw * ih;
    inter / (a.width() * a.height() + b.width() * b.height() - inter)
}

#[test]
fn real_tflite_models_find_the_person_where_onnx_does() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED: ../shared/models is not present; the real TFLite model test needs it");
        return;
    };
    let frames = frames_every(
        &shared.join("samples/one-by-one-person-detection.mp4"),
        5_000_000,
        8_000_000,
    );
    assert!(frames.len() >= 15, "{} frames", frames.len());
    let models = shared.join("models");
    let mut reference = detector(
        "yolov8n-int8-static",
        &models.join("yolov8n_int8static_qdq_640.onnx"),
    );
    let want: Vec<Option<Detection>> = frames
        .iter()
        .map(|f| best(&reference.detect(f).expect("onnx runs")))
        .collect();
    let with_person = want.iter().flatten().count();
    assert!(with_person >= 5, "the reference finds {with_person} people");
    for (manifest, file) in [
        ("yolov5n-int8-tflite", "yolov5n-int8.tflite"),
        ("yolov8n-int8-tflite", "yolov8n_full_integer_quant.tflite"),
        ("yolo11n-int8-tflite", "yolo11n_full_integer_quant.tflite"),
    ] {
        let mut det = detector(manifest, &models.join(file));
        assert!(
            det.backend_name().starts_with("litert"),
            "{}",
            det.backend_name()
        );
        let (mut matched, mut extra, mut missed) = (0, 0, Vec::new());
        for (i, (frame, want)) in frames.iter().zip(&want).enumerate() {
            let got = best(&det.detect(frame).expect("litert runs"));
            match (want, got) {
                (Some(w), Some(g)) if iou(w, &g) >= 0.5 => matched += 1,
                (None, None) => {}
                (None, Some(_)) => extra += 1,
                (Some(w), g) => missed.push((i, w.score, g.map(|g| (g.score, iou(w, &g))))),
            }
        }
        eprintln!(
            "{manifest}: {matched} of {with_person} reference people matched (IoU >= 0.5), \
             {extra} found where the reference has none, missed {missed:?}"
        );
        // A person the reference is unsure of (score near the 0.5 threshold) may fall either way.
        let confident_missed = missed
            .iter()
            .filter(|(i, ..)| want[*i].is_some_and(|w| w.score >= 0.7))
            .count();
        assert_eq!(confident_missed, 0, "{manifest}: missed {missed:?}");
        assert!(
            matched * 10 >= with_person * 9,
            "{manifest}: {matched} of {with_person}"
        );
        assert!(
            extra <= 1,
            "{manifest}: {extra} people where the reference has none"
        );
    }
}
