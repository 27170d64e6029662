use super::*;

const BASE: &str = r#"
name = "m"
version = "1"
file = "downloads/m640.onnx"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
licence = "x"
labels = ["person"]
person_class_id = 0
[input]
width = 640
height = 640
[output]
format = "yolov8"
"#;

fn write(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.toml");
    std::fs::write(&path, format!("{BASE}{extra}")).expect("write");
    (dir, path)
}

#[test]
fn a_manifest_names_its_sizes_and_each_one_is_its_own_file() {
    let sha = "ab".repeat(32);
    let (_d, path) = write(&format!(
        "[[sizes]]\nside = 416\nfile = \"downloads/m416.onnx\"\nsha256 = \"{sha}\"\n"
    ));
    let (m, file) = ModelManifest::load(&path).expect("valid");
    assert!(file.ends_with("downloads/m640.onnx"));
    assert_eq!(m.sides().collect::<Vec<_>>(), [640, 416]);
    let small = m.at_side(416).expect("416");
    assert_eq!((small.input.width, small.input.height), (416, 416));
    assert_eq!(small.file, Path::new("downloads/m416.onnx"));
    assert_eq!(small.sha256, sha);
    assert!(small.sizes.is_empty());
    assert_eq!(m.at_side(640).expect("main"), m);
    assert!(m.at_side(320).is_none());
    assert_eq!(
        m.ladder(&[640, 480, 416, 320]),
        (vec![640, 416], vec![480, 320])
    );
    assert_eq!(m.ladder(&[416]), (vec![416], vec![]));
    assert_eq!(m.ladder(&[]), (vec![640], vec![]));
    assert_eq!(
        m.ladder(&[256]),
        (vec![640], vec![256]),
        "none: its own size"
    );
}

#[test]
fn bad_sizes_are_reported_by_field() {
    let (_d, path) = write(
        "[[sizes]]\nside = 640\nfile = \"a\"\nsha256 = \"nope\"\n[[sizes]]\nside = 100\nfile = \"b\"\nsha256 = \"nope\"\n",
    );
    let err = ModelManifest::load(&path).expect_err("invalid").to_string();
    for want in [
        "sizes[0].sha256",
        "sizes[0].side: names a side the manifest already has",
        "sizes[1].side: must be a multiple of 32",
        "sizes[1].sha256",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
}

#[test]
fn backend_dtype_and_quantisation_are_read_and_checked_by_field() {
    let tflite = BASE.replace("m640.onnx", "m.tflite").replace(
        "[input]",
        "backend = \"litert\"\n[input]\ndtype = \"int8\"\nquantization = { scale = 0.0039, zero_point = -128 }",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.toml");
    std::fs::write(&path, &tflite).expect("write");
    let (m, _) = ModelManifest::load(&path).expect("valid");
    assert_eq!(m.backend, Some(BackendKind::Litert));
    assert_eq!(m.input.dtype, Some(InputDType::Int8));
    assert_eq!(m.input.quantization.map(|q| q.zero_point), Some(-128));
    for (from, to, field) in [
        (
            "backend = \"litert\"\n",
            "",
            "backend: a .tflite file runs on",
        ),
        (
            "zero_point = -128",
            "zero_point = 200",
            "input.quantization.zero_point",
        ),
        ("scale = 0.0039", "scale = 0.0", "input.quantization.scale"),
        (
            "dtype = \"int8\"",
            "dtype = \"float32\"",
            "input.quantization: needs",
        ),
        // Serde's error shows the line of the field.
        ("dtype = \"int8\"", "dtype = \"int4\"", "dtype = \"int4\""),
        (
            "zero_point = -128 }",
            "zero_point = -128, bits = 8 }",
            "bits",
        ),
    ] {
        std::fs::write(&path, tflite.replace(from, to)).expect("write");
        let err = ModelManifest::load(&path).expect_err(field).to_string();
        assert!(err.contains(field), "{field:?} not in {err}");
    }
    // An ONNX file on LiteRT is refused too; existing manifests (no backend) stay valid.
    std::fs::write(
        &path,
        BASE.replace("[input]", "backend = \"litert\"\n[input]"),
    )
    .expect("write");
    let err = ModelManifest::load(&path)
        .expect_err("onnx on litert")
        .to_string();
    assert!(err.contains("backend: a .tflite file runs on"), "{err}");
}

#[test]
fn a_hef_runs_on_hailo_with_nms_on_chip_and_nhwc_uint8_input() {
    let hef = BASE
        .replace("m640.onnx", "m.hef")
        .replace(
            "[input]",
            "backend = \"hailo\"\n[input]\nlayout = \"nhwc\"\ndtype = \"uint8\"",
        )
        .replace("\"yolov8\"", "\"hailo_nms\"");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.toml");
    std::fs::write(&path, &hef).expect("write");
    let (m, _) = ModelManifest::load(&path).expect("valid");
    assert_eq!(m.backend, Some(BackendKind::Hailo));
    assert_eq!(m.output.format, OutputFormat::HailoNms);
    for (from, to, field) in [
        (
            "backend = \"hailo\"\n",
            "",
            "backend: a .hef file runs on \"hailo\"",
        ),
        ("m.hef", "m.onnx", "backend: a .hef file runs on \"hailo\""),
        (
            "\"hailo_nms\"",
            "\"yolov8\"",
            "output.format: \"hailo_nms\" is",
        ),
        (
            "layout = \"nhwc\"",
            "layout = \"nchw\"",
            "input.layout: a HEF takes",
        ),
        (
            "dtype = \"uint8\"",
            "dtype = \"float32\"",
            "input.dtype: a HEF takes",
        ),
    ] {
        std::fs::write(&path, hef.replace(from, to)).expect("write");
        let err = ModelManifest::load(&path).expect_err(field).to_string();
        assert!(err.contains(field), "{field:?} not in {err}");
    }
    // NMS on chip comes from a HEF only.
    std::fs::write(&path, BASE.replace("\"yolov8\"", "\"hailo_nms\"")).expect("write");
    let err = ModelManifest::load(&path).expect_err("onnx").to_string();
    assert!(err.contains("output.format: \"hailo_nms\" is"), "{err}");
}
