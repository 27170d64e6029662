//! Inference backends: input tensor in, output tensors out. Each backend is one file behind a cargo
//! feature; [`open`] is the one place that picks a backend by name.

#[cfg(feature = "onnx")]
pub mod onnx;
#[cfg(feature = "onnx")]
pub mod onnx_runtime;

use std::path::{Path, PathBuf};

use cascade_shared::config::BackendKind;

/// The element type a model's input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// Normalised per the manifest (`scale`, `mean`, `std`).
    F32,
    /// Raw 0-255 bytes (quantised input, zero point 0).
    U8,
    /// Bytes shifted by -128 (quantised input, zero point -128).
    I8,
}

/// What a loaded model wants and gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    /// `onnxruntime (cpu)` and the like, for logs and metrics.
    pub name: String,
    pub dtype: DType,
    /// Input `(width, height)` the model was built for, when it says so.
    pub input_size: Option<(u32, u32)>,
    /// Several images can run as one tensor (a dynamic batch dimension).
    pub dynamic_batch: bool,
    /// Output names, in the model's order.
    pub outputs: Vec<String>,
}

/// The input of one run: `shape` is `[n, 3, h, w]` (NCHW) or `[n, h, w, 3]` (NHWC).
#[derive(Debug)]
pub struct InputTensor<'a> {
    pub shape: [usize; 4],
    pub data: InputData<'a>,
}

#[derive(Debug)]
pub enum InputData<'a> {
    F32(&'a [f32]),
    U8(&'a [u8]),
    I8(&'a [i8]),
}

/// One output, dequantised to `f32` by the backend when the model's output is quantised.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

#[derive(Debug, thiserror::Error)]
#[error("{backend}: {reason}")]
pub struct BackendError {
    pub backend: &'static str,
    pub reason: String,
}

/// A loaded model on one runtime.
pub trait Backend: Send {
    fn info(&self) -> &BackendInfo;
    /// Runs the model once. Outputs come in [`BackendInfo::outputs`] order.
    fn run(&mut self, input: InputTensor<'_>) -> Result<Vec<OutputTensor>, BackendError>;
}

/// How to open a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendOptions {
    pub kind: BackendKind,
    /// The runtime's shared library, when not in its default place.
    pub library: Option<PathBuf>,
    /// Threads one inference may use.
    pub threads: usize,
    /// Let idle intra-op threads spin waiting for the next run (lower latency, but the spinning
    /// burns CPU that other sessions, cameras and the rest of the box need: off on the edge).
    pub spin: bool,
}

/// Opens `model` on the backend `opts` names: the one `match` on backend kinds.
pub fn open(model: &Path, opts: &BackendOptions) -> Result<Box<dyn Backend>, BackendError> {
    match opts.kind {
        #[cfg(feature = "onnx")]
        BackendKind::Onnxruntime => Ok(Box::new(onnx::OnnxBackend::load(
            model,
            opts.library.as_deref(),
            opts.threads,
            opts.spin,
        )?)),
        #[cfg(not(feature = "onnx"))]
        BackendKind::Onnxruntime => Err(not_built("onnxruntime", "onnx")),
    }
}

/// Whether the runtime a backend needs can be found (for `check`), without loading a model.
pub fn locate_runtime(opts: &BackendOptions) -> Result<PathBuf, BackendError> {
    match opts.kind {
        #[cfg(feature = "onnx")]
        BackendKind::Onnxruntime => {
            onnx_runtime::locate(opts.library.as_deref()).map_err(|reason| BackendError {
                backend: "onnxruntime",
                reason,
            })
        }
        #[cfg(not(feature = "onnx"))]
        BackendKind::Onnxruntime => Err(not_built("onnxruntime", "onnx")),
    }
}

#[cfg(not(feature = "onnx"))]
fn not_built(backend: &'static str, feature: &str) -> BackendError {
    BackendError {
        backend,
        reason: format!("not in this build (cargo feature `{feature}` of cascade-infer)"),
    }
}
