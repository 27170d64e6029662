//! The detector through the real ONNX Runtime (`cascade-infer`): generated models with known
//! outputs, and (when `../shared` is present) the real pretrained person detectors on the real clip.

use std::path::Path;

use cascade_infer::Classes;
use cascade_infer::{Detector, Frame, LoadOptions, load_detector as load};
use cascade_tests::{repo_root as repo, shared_dir};
use edge_agent::decode::{H264Decoder, VideoDecoder};
use edge_agent::source::{Container, Mp4File};

fn options(manifest: &Path) -> LoadOptions {
    LoadOptions {
        min_box_area: 0.0005,
        ..LoadOptions::onnx_cpu(manifest)
    }
}

fn load_detector(manifest: &Path, model_file: Option<&Path>) -> Detector {
    load(&LoadOptions {
        model_file: model_file.map(Path::to_path_buf),
        ..options(manifest)
    })
    .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()))
}

/// A 320x240 dark frame with a white 36x96 block at (x, 70), like tests/fixtures/walker.*.
fn walker_frame(x: usize) -> Frame {
    let mut f = Frame::filled(320, 240, 48);
    for y in 70..166 {
        for xx in x..x + 36 {
            f.y[y * 320 + xx] = 235;
        }
    }
    f
}

#[test]
fn every_output_format_finds_the_blob_fp32_and_int8() {
    for name in [
        "blob-yolov8-fp32",
        "blob-yolov8-int8",
        "blob-yolov5-fp32",
        "blob-ssd-fp32",
    ] {
        let mut det = load_detector(&repo().join(format!("models/{name}.toml")), None);
        let found = det.detect(&walker_frame(100)).expect("runs");
        assert_eq!(
            found.len(),
            1,
            "{name}: NMS must drop the shifted duplicate: {found:?}"
        );
        let d = found[0];
        assert_eq!(d.class_id, 0, "{name}");
        assert!((d.score - 0.9).abs() < 1e-5, "{name}: score {}", d.score);
        let b = d.bbox;
        // 320 -> 128 scales by 0.4: one input pixel is 2.5 frame pixels.
        for (got, want) in [(b.x1, 100.0), (b.y1, 70.0), (b.x2, 136.0), (b.y2, 166.0)] {
            assert!((got - want).abs() <= 3.0, "{name}: box {b:?}");
        }
        assert!(
            det.detect(&Frame::filled(320, 240, 48))
                .expect("runs")
                .is_empty(),
            "{name}: empty scene"
        );
    }
}

#[test]
fn score_threshold_and_class_filter_apply() {
    let manifest = repo().join("models/blob-yolov8-fp32.toml");
    let mut det = load(&LoadOptions {
        score_threshold: 0.95,
        ..options(&manifest)
    })
    .expect("loads");
    assert!(
        det.detect(&walker_frame(100)).expect("runs").is_empty(),
        "0.9 < 0.95"
    );
    let mut det = load(&LoadOptions {
        score_threshold: 0.01,
        classes: Classes::Only(1),
        ..options(&manifest)
    })
    .expect("loads");
    let found = det.detect(&walker_frame(100)).expect("runs");
    assert!(
        !found.is_empty()
            && found
                .iter()
                .all(|d| d.class_id == 1 && (d.score - 0.05).abs() < 1e-5),
        "{found:?}"
    );
}

#[test]
fn tampered_model_is_refused_by_its_sha256() {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("m.onnx");
    let mut bytes = std::fs::read(repo().join("models/test/blob-yolov8-fp32.onnx")).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&copy, bytes).expect("write");
    let (m, _) =
        cascade_shared::manifest::ModelManifest::load(&repo().join("models/blob-yolov8-fp32.toml"))
            .expect("manifest");
    let err = m.verify_file(&copy).expect_err("refused");
    assert!(err.contains("sha256"), "{err}");
}

/// The frame of the real clip at `t_us` (decoded from the start).
fn real_frame(clip: &Path, t_us: i64) -> Frame {
    let mut src = Mp4File::open(clip).expect("clip opens");
    let mut dec = H264Decoder::new().expect("decoder");
    let mut frames = Vec::new();
    while let Some(au) = src.next_unit().expect("reads") {
        dec.decode(&au, &mut frames).expect("decodes");
        if let Some(f) = frames.iter().find(|f| f.pts_us >= t_us) {
            return f.clone();
        }
        frames.clear();
    }
    panic!("clip ends before {t_us} us");
}

#[test]
fn real_models_find_the_man_in_the_real_clip() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED: ../shared/models is not present; the real-model test needs it");
        return;
    };
    let frame = real_frame(
        &shared.join("samples/one-by-one-person-detection.mp4"),
        30_000_000,
    );
    for (manifest, file) in [
        ("yolov8n-int8", "yolov8n_int8.onnx"),
        ("yolov8n-fp32", "yolov8n_fp32_dequant.onnx"),
        ("yolox-nano", "yolox_nano.onnx"),
    ] {
        let model = shared.join("models").join(file);
        let mut det = load_detector(
            &repo().join(format!("models/{manifest}.toml")),
            Some(&model),
        );
        let found = det.detect(&frame).expect("runs");
        let best = found
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .expect("a person");
        let b = best.bbox;
        eprintln!(
            "{manifest}: {} people, best {:.3} at {b:?}",
            found.len(),
            best.score
        );
        assert!(best.score > 0.8, "{manifest}: score {}", best.score);
        // Reference box from ../shared/models/README.md: about [380, 3, 543, 375].
        for (got, want) in [(b.x1, 380.0), (b.y1, 3.0), (b.x2, 543.0), (b.y2, 375.0)] {
            assert!((got - want).abs() < 25.0, "{manifest}: {b:?}");
        }
    }
}

#[test]
fn a_batch_runs_as_one_tensor_and_keeps_items_apart() {
    for name in ["blob-yolov8-int8", "blob-yolov5-fp32", "blob-ssd-fp32"] {
        let mut det = load_detector(&repo().join(format!("models/{name}.toml")), None);
        assert!(
            det.batches_natively(),
            "{name}: the generated models have a dynamic batch"
        );
        let frames = [
            walker_frame(100),
            Frame::filled(320, 240, 48),
            walker_frame(200),
        ];
        let out = det.detect_batch(&frames).expect("runs");
        assert_eq!(out.len(), 3);
        assert!(
            out[1].is_empty(),
            "{name}: the empty frame stays empty: {:?}",
            out[1]
        );
        for (dets, x) in [(&out[0], 100.0), (&out[2], 200.0)] {
            assert_eq!(dets.len(), 1, "{name}: {dets:?}");
            assert!(
                (dets[0].bbox.x1 - x).abs() <= 3.0,
                "{name}: {:?} vs x {x}",
                dets[0].bbox
            );
        }
        // Same answers one by one.
        for (f, batched) in frames.iter().zip(&out) {
            assert_eq!(&det.detect(f).expect("runs"), batched, "{name}");
        }
    }
}
