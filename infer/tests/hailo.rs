//! The Hailo backend's loader where there is no Hailo: a missing `libhailort.so` is named with the
//! places tried and what to install, a missing `/dev/hailo0` is named, and a build without the
//! `hailo` feature says which feature it lacks. The output decoding has its own tests
//! (`postprocess::hailo_nms`, `detector::tests`); a real HEF needs a Hailo-8L (design/hailo.md).

use std::path::PathBuf;

use cascade_infer::LoadOptions;
use cascade_infer::backend::{self, BackendOptions};
use cascade_shared::config::BackendKind;

/// The options `cascade-infer` would open a HEF with, naming the library `library`.
fn hailo(library: Option<PathBuf>) -> BackendOptions {
    let mut o = LoadOptions::onnx_cpu("m.toml").backend;
    o.kind = BackendKind::Hailo;
    o.library = library;
    o
}

#[cfg(feature = "hailo")]
#[test]
fn a_missing_library_names_itself_where_it_was_looked_for_and_what_to_install() {
    let lib = PathBuf::from("/nonexistent/libhailort.so");
    let e = backend::open(std::path::Path::new("yolov8n.hef"), &hailo(Some(lib)))
        .err()
        .expect("no library")
        .to_string();
    for want in [
        "hailo: libhailort.so not found",
        "tried /nonexistent/libhailort.so",
        "sudo apt install hailo-all",
        "HAILORT_LIB_PATH",
    ] {
        assert!(e.contains(want), "{want:?} not in {e}");
    }
}

#[cfg(feature = "hailo")]
#[test]
fn a_missing_device_is_named() {
    if std::path::Path::new("/dev/hailo0").exists() {
        eprintln!("SKIPPED: this machine has a Hailo device");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = dir.path().join("libhailort.so");
    std::fs::write(&lib, b"").expect("write");
    let e = backend::locate_runtime(&hailo(Some(lib))).expect_err("no device");
    let e = e.to_string();
    assert!(
        e.contains("no Hailo device: /dev/hailo0 does not exist"),
        "{e}"
    );
    assert!(e.contains("sudo apt install hailo-all"), "{e}");
}

#[cfg(not(feature = "hailo"))]
#[test]
fn a_build_without_the_feature_says_so() {
    let e = backend::locate_runtime(&hailo(None)).expect_err("not built");
    assert!(e.to_string().contains("cargo feature `hailo`"), "{e}");
}
