//! The Edge TPU loader under the LiteRT backend, without an Edge TPU: a missing `libedgetpu.so.1`
//! and a runtime that finds no device fail with messages that say what to do, and a stand-in
//! library (`tests/edgetpu/fake_libedgetpu.c`, built here with the system C compiler) whose
//! delegate claims no node goes through the whole registration with real LiteRT: the delegate is
//! made for the listed device, prepared on the model's graph, the model's outputs are unchanged,
//! and the delegate is freed with the backend. Needs `libLiteRt.so` (scripts/setup.sh) and `cc`.
#![cfg(feature = "litert")]

use std::path::{Path, PathBuf};
use std::process::Command;

use cascade_infer::backend::{self, BackendOptions, EdgeTpuOptions};
use cascade_infer::{InputData, InputTensor};
use cascade_shared::config::BackendKind;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn model() -> PathBuf {
    repo().join("models/test/tiny-yolov8-int8.tflite")
}

fn options(library: &Path) -> BackendOptions {
    BackendOptions {
        kind: BackendKind::Litert,
        library: None,
        threads: 1,
        spin: false,
        edge_tpu: Some(EdgeTpuOptions {
            library: Some(library.to_path_buf()),
            device: None,
        }),
        gpu: None,
    }
}

/// Builds the stand-in library with `devices` devices into `dir`; it logs its calls to
/// `dir/calls.log`.
fn fake_library(dir: &Path, devices: u32) -> PathBuf {
    let out = dir.join("libedgetpu.so.1");
    let log = dir.join("calls.log");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/edgetpu/fake_libedgetpu.c");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1"])
        .arg(format!("-DFAKE_DEVICES={devices}"))
        .arg(format!("-DFAKE_LOG={:?}", log.display().to_string()))
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .expect("the system C compiler `cc` (build-essential) runs");
    assert!(status.success(), "cc failed on {}", src.display());
    out
}

fn run_once(b: &mut dyn backend::Backend) -> Vec<f32> {
    let data: Vec<i8> = (0..32 * 32).flat_map(|_| [127i8, -128, -128]).collect();
    let out = b
        .run(InputTensor {
            shape: [1, 32, 32, 3],
            data: InputData::I8(&data),
        })
        .expect("runs");
    out[0].data.clone()
}

#[test]
fn a_missing_runtime_library_says_what_to_install() {
    let opts = options(Path::new("/nonexistent/libedgetpu.so.1"));
    let e = backend::open(&model(), &opts).err().expect("no library");
    let e = e.to_string();
    assert!(
        e.contains("libedgetpu.so.1 not found") && e.contains("/nonexistent/libedgetpu.so.1"),
        "{e}"
    );
    assert!(e.contains("libedgetpu1-std"), "{e}");
    let e = backend::locate_runtime(&opts).expect_err("check reports it too");
    assert_eq!(e.backend, "edgetpu");
}

#[test]
fn a_runtime_without_a_device_names_the_devices_it_looked_for() {
    let dir = tempfile::tempdir().expect("tmp");
    let opts = options(&fake_library(dir.path(), 0));
    let e = backend::open(&model(), &opts).err().expect("no device");
    let e = e.to_string();
    assert!(e.contains("no Edge TPU found"), "{e}");
    assert!(e.contains("/dev/apex_0") && e.contains("1a6e:089a"), "{e}");
}

#[test]
fn the_delegate_is_made_prepared_and_freed_through_litert() {
    let dir = tempfile::tempdir().expect("tmp");
    let lib = fake_library(dir.path(), 1);
    let log = dir.path().join("calls.log");
    let plain = {
        let mut b = backend::open(&model(), &options(&lib).with_cpu_only()).expect("cpu");
        run_once(b.as_mut())
    };
    let probe = backend::locate_runtime(&options(&lib)).expect("check finds the fake device");
    assert!(probe.ends_with("libLiteRt.so"), "{}", probe.display());
    let mut b = backend::open(&model(), &options(&lib)).expect("loads with the delegate");
    assert!(
        b.info()
            .name
            .contains("edge tpu usb /sys/bus/usb/devices/fake-1"),
        "{}",
        b.info().name
    );
    assert_eq!(
        run_once(b.as_mut()),
        plain,
        "a delegate that claims nothing changes nothing"
    );
    drop(b);
    let calls = std::fs::read_to_string(&log).expect("the fake logged its calls");
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(
        calls,
        ["create 1 /sys/bus/usb/devices/fake-1", "prepare", "free"],
        "made for the listed device, applied to the graph, freed with the backend"
    );
}

trait CpuOnly {
    fn with_cpu_only(self) -> Self;
}

impl CpuOnly for BackendOptions {
    fn with_cpu_only(self) -> Self {
        Self {
            edge_tpu: None,
            ..self
        }
    }
}
