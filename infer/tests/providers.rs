//! The execution-provider chain against the project's ONNX Runtime library (the CPU-only PyPI
//! build, `.cache/onnxruntime/`): TensorRT and CUDA are asked for, neither is in the library, so
//! the session falls back to the CPU, says so, and runs.

use std::path::{Path, PathBuf};

use cascade_infer::backend::{self, BackendOptions, GpuOptions, ProviderKind};
use cascade_infer::{InputData, InputTensor, LoadOptions, RgbImage};
use cascade_shared::config::BackendKind;
use cascade_shared::profile::{GpuProvider, GpuSpec};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn gpu(cache: &Path) -> GpuOptions {
    GpuOptions {
        spec: GpuSpec {
            providers: vec![GpuProvider::Tensorrt, GpuProvider::Cuda],
            fp16: true,
            int8: false,
        },
        engine_cache: cache.join("trt-cache"),
    }
}

fn options(cache: &Path) -> BackendOptions {
    BackendOptions {
        kind: BackendKind::Onnxruntime,
        library: None,
        threads: 1,
        spin: false,
        edge_tpu: None,
        gpu: Some(gpu(cache)),
    }
}

#[test]
fn the_execution_provider_chain_falls_back_to_cpu_with_a_warning_when_cuda_and_tensorrt_are_absent()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let model = repo().join("models/test/tiny-yolov8-fp32.onnx");
    let mut b = backend::open(&model, &options(dir.path())).expect("falls back and loads");
    let info = b.info().clone();
    assert_eq!(info.provider, ProviderKind::Cpu);
    assert!(info.name.contains("(cpu, 1 threads)"), "{}", info.name);
    let skipped: Vec<_> = info.fallbacks.iter().map(|f| f.provider).collect();
    assert_eq!(skipped, [ProviderKind::TensorRt, ProviderKind::Cuda]);
    for (f, lib) in info.fallbacks.iter().zip(["tensorrt", "cuda"]) {
        // ONNX Runtime's words (what is missing), then what to install.
        assert!(
            f.reason.contains("not enabled in this build"),
            "{}",
            f.reason
        );
        let provider_lib = format!("libonnxruntime_providers_{lib}.so");
        assert!(f.reason.contains(&provider_lib), "{}", f.reason);
        assert!(f.reason.contains("onnxruntime-gpu"), "{}", f.reason);
        eprintln!("{}: {}", f.provider, f.reason);
    }
    let data = vec![0.5f32; 3 * 128 * 128];
    let out = b
        .run(InputTensor {
            shape: [1, 3, 128, 128],
            data: InputData::F32(&data),
        })
        .expect("runs on the CPU");
    assert_eq!(out.len(), info.outputs.len());
}

#[test]
fn a_detector_with_gpu_providers_asked_for_runs_on_the_cpu_here() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = LoadOptions::onnx_cpu(repo().join("models/tiny-yolov8-fp32.toml"));
    opts.backend = options(dir.path());
    let mut det = cascade_infer::load_detector(&opts).expect("loads");
    assert!(
        det.backend_name().contains("(cpu,"),
        "{}",
        det.backend_name()
    );
    let img = RgbImage {
        width: 160,
        height: 120,
        data: vec![90; 160 * 120 * 3],
    };
    det.detect(&img).expect("detects on the CPU");
}

#[test]
fn without_gpu_options_nothing_falls_back() {
    let model = repo().join("models/test/tiny-yolov8-fp32.onnx");
    let b = backend::open(
        &model,
        &BackendOptions {
            gpu: None,
            ..options(Path::new("/nonexistent"))
        },
    )
    .expect("loads");
    assert_eq!(b.info().provider, ProviderKind::Cpu);
    assert!(b.info().fallbacks.is_empty());
}
