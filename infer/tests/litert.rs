//! The LiteRT backend on the generated tiny TFLite model (`models/tiny-yolov8-int8.toml`, made by
//! `scripts/make_test_tflite.py`): known outputs through the backend alone, then the whole
//! detector (int8 input quantised from the model's scale and zero point, int8 output de-quantised,
//! YOLOv8 decoding with boxes normalised to the input). Needs `libLiteRt.so` (scripts/setup.sh).
#![cfg(feature = "litert")]

use std::path::{Path, PathBuf};

use cascade_infer::backend::{self, BackendOptions};
use cascade_infer::{DType, InputData, InputTensor, LoadOptions, RgbImage, load_detector};
use cascade_shared::config::BackendKind;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn manifest() -> PathBuf {
    repo().join("models/tiny-yolov8-int8.toml")
}

fn litert(threads: usize) -> BackendOptions {
    BackendOptions {
        kind: BackendKind::Litert,
        library: None,
        threads,
        spin: false,
        edge_tpu: None,
        gpu: None,
    }
}

/// A 32x32 NHWC int8 input with every red value `red` (0-255), green and blue 0.
fn input(red: u8) -> Vec<i8> {
    (0..32 * 32)
        .flat_map(|_| [(i16::from(red) - 128) as i8, -128, -128])
        .collect()
}

#[test]
fn the_tiny_model_gives_its_known_outputs_dequantised() {
    let model = repo().join("models/test/tiny-yolov8-int8.tflite");
    let mut b = backend::open(&model, &litert(1)).expect("loads on LiteRT");
    let info = b.info().clone();
    assert_eq!(info.dtype, DType::I8);
    assert_eq!(info.input_size, Some((32, 32)));
    let q = info
        .input_quant
        .expect("the file has the input's quantisation");
    assert!(
        (q.scale - 1.0 / 255.0).abs() < 1e-6 && q.zero_point == -128,
        "{q:?}"
    );
    assert!(
        info.name.starts_with("litert (cpu, xnnpack, 1 threads)"),
        "{}",
        info.name
    );
    assert_eq!(info.outputs.len(), 1);
    for (red, score) in [(255u8, 1.0f32), (0, 0.0), (128, 128.0 / 255.0)] {
        let data = input(red);
        let out = b
            .run(InputTensor {
                shape: [1, 32, 32, 3],
                data: InputData::I8(&data),
            })
            .expect("runs");
        assert_eq!(out[0].shape, [1, 5, 2]);
        let want = [
            0.5,
            0.25,
            0.5,
            0.25,
            0.5,
            0.1,
            0.75,
            0.1,
            score,
            1.0 - score,
        ];
        for (got, want) in out[0].data.iter().zip(want) {
            assert!(
                (got - want).abs() <= 1.5 / 255.0,
                "red {red}: {:?}",
                out[0].data
            );
        }
    }
    let wrong = vec![0u8; 32 * 32 * 3];
    let e = b
        .run(InputTensor {
            shape: [1, 32, 32, 3],
            data: InputData::U8(&wrong),
        })
        .expect_err("a uint8 tensor for an int8 input is refused");
    assert!(e.to_string().contains("the model takes"), "{e}");
}

fn image(w: usize, h: usize, rgb: [u8; 3]) -> RgbImage {
    RgbImage {
        width: w,
        height: h,
        data: rgb.repeat(w * h),
    }
}

#[test]
fn the_detector_quantises_decodes_and_maps_boxes_back() {
    // The config names ONNX Runtime; the manifest's backend (litert) wins for a .tflite file.
    let mut det = load_detector(&LoadOptions::onnx_cpu(manifest())).expect("loads");
    assert!(
        det.backend_name().starts_with("litert"),
        "{}",
        det.backend_name()
    );
    // All red: anchor 0 scores 1.0; its box (input 8..24 x 4..28) at scale 2 is 16..48 x 8..56.
    let found = det.detect(&image(64, 64, [255, 0, 0])).expect("runs");
    assert_eq!(found.len(), 1, "{found:?}");
    let d = found[0];
    assert!(d.score > 0.99, "{d:?}");
    let b = d.bbox;
    for (got, want) in [(b.x1, 16.0), (b.y1, 8.0), (b.x2, 48.0), (b.y2, 56.0)] {
        assert!((got - want).abs() <= 1.0, "{b:?}");
    }
    // No red: anchor 1 (box 0.25 +- 0.05 of the input) instead.
    let found = det.detect(&image(64, 64, [0, 0, 0])).expect("runs");
    assert_eq!(found.len(), 1, "{found:?}");
    let b = found[0].bbox;
    assert!(
        (b.x1 - 12.8).abs() <= 1.0 && (b.x2 - 19.2).abs() <= 1.0,
        "{b:?}"
    );
}

/// The tiny model beside a manifest in a temp dir, with `replace` applied to the manifest text.
fn with_manifest(replace: (&str, &str)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("test")).expect("mkdir");
    std::fs::copy(
        repo().join("models/test/tiny-yolov8-int8.tflite"),
        dir.path().join("test/tiny-yolov8-int8.tflite"),
    )
    .expect("copy");
    let text = std::fs::read_to_string(manifest()).expect("read");
    assert!(text.contains(replace.0), "{}", replace.0);
    let path = dir.path().join("m.toml");
    std::fs::write(&path, text.replace(replace.0, replace.1)).expect("write");
    (dir, path)
}

#[test]
fn a_manifest_that_disagrees_with_the_file_is_refused_by_field() {
    for (replace, field) in [
        (
            ("zero_point = -128", "zero_point = -100"),
            "input.quantization",
        ),
        (
            (
                "dtype = \"int8\"\nquantization = { scale = 0.003921569, zero_point = -128 }",
                "dtype = \"uint8\"",
            ),
            "input.dtype",
        ),
    ] {
        let (_dir, path) = with_manifest(replace);
        let e = load_detector(&LoadOptions::onnx_cpu(&path)).expect_err("refused");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    // Without quantisation in the manifest the file's is used.
    let (_dir, path) = with_manifest((
        "quantization = { scale = 0.003921569, zero_point = -128 }\n",
        "",
    ));
    let mut det = load_detector(&LoadOptions::onnx_cpu(&path)).expect("loads");
    assert_eq!(
        det.detect(&image(64, 64, [255, 0, 0])).expect("runs").len(),
        1
    );
}

#[test]
fn threads_come_from_the_options_and_a_missing_library_is_named() {
    let model = repo().join("models/test/tiny-yolov8-int8.tflite");
    let b = backend::open(&model, &litert(2)).expect("loads");
    assert!(b.info().name.contains("2 threads"), "{}", b.info().name);
    let e = backend::locate_runtime(&BackendOptions {
        library: Some("/nonexistent/libLiteRt.so".into()),
        ..litert(1)
    })
    .expect_err("missing");
    assert!(e.to_string().contains("/nonexistent/libLiteRt.so"), "{e}");
}
