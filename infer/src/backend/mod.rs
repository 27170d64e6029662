//! Inference backends: input tensor in, output tensors out. Each backend is one file behind a cargo
//! feature (`onnx`, `litert`, `hailo`); [`open`] is the one place that picks a backend by name.

#[cfg(feature = "litert")]
pub mod edgetpu;
#[cfg(feature = "hailo")]
pub mod hailo;
#[cfg(feature = "hailo")]
pub mod hailo_runtime;
#[cfg(feature = "kserve")]
pub mod kserve;
#[cfg(any(feature = "onnx", feature = "litert"))]
mod library;
#[cfg(feature = "litert")]
pub mod litert;
#[cfg(feature = "litert")]
pub mod litert_runtime;
#[cfg(feature = "onnx")]
pub mod onnx;
#[cfg(feature = "onnx")]
mod onnx_providers;
#[cfg(feature = "onnx")]
pub mod onnx_runtime;
pub mod providers;

use std::path::{Path, PathBuf};

use cascade_shared::config::BackendKind;
use cascade_shared::config::edge::EdgeTpuDevice;

pub use providers::{Fallback, GpuOptions, Provider, ProviderKind};

/// The element type a model's input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// Normalised per the manifest (`scale`, `mean`, `std`).
    F32,
    /// Quantised bytes: with [`BackendInfo::input_quant`] (or the manifest's), `q = round(x / scale)
    /// + zero_point` of the normalised value `x`; without, raw 0-255 bytes.
    U8,
    /// Quantised signed bytes, as `U8`; without a scale, bytes shifted by -128.
    I8,
}

/// A per-tensor affine quantisation: `real = (q - zero_point) * scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantization {
    pub scale: f32,
    pub zero_point: i32,
}

/// What a loaded model wants and gives.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendInfo {
    /// `onnxruntime (cpu)` and the like, for logs and metrics.
    pub name: String,
    pub dtype: DType,
    /// Input `(width, height)` the model was built for, when it says so.
    pub input_size: Option<(u32, u32)>,
    /// The input's quantisation, when the model file says (int8/uint8 inputs).
    pub input_quant: Option<Quantization>,
    /// Several images can run as one tensor (a dynamic batch dimension).
    pub dynamic_batch: bool,
    /// Output names, in the model's order.
    pub outputs: Vec<String>,
    /// ONNX Runtime's execution provider the model runs on; `cpu` for the other backends (LiteRT,
    /// HailoRT), whose `name` says where they run (XNNPACK, an Edge TPU, a Hailo chip).
    pub provider: ProviderKind,
    /// Providers of the chain that were skipped, in order, and why (each also logged as a warning).
    pub fallbacks: Vec<Fallback>,
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
    /// Run LiteRT models' Edge TPU ops on an Edge TPU (`None`: the CPU only).
    pub edge_tpu: Option<EdgeTpuOptions>,
    /// ONNX Runtime's GPU execution providers to try before the CPU (the hardware profile's
    /// `[gpu]` and the engine cache folder); None: the CPU alone. Other backends ignore it.
    pub gpu: Option<GpuOptions>,
}

/// Which Edge TPU, through which runtime library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeTpuOptions {
    /// `libedgetpu.so.1`, when not in its default places.
    pub library: Option<PathBuf>,
    /// `None`: the first found.
    pub device: Option<EdgeTpuDevice>,
}

/// Opens `model` on the backend `opts` names: the one `match` on backend kinds.
#[cfg_attr(
    not(any(feature = "onnx", feature = "litert", feature = "hailo")),
    allow(unused_variables)
)]
pub fn open(model: &Path, opts: &BackendOptions) -> Result<Box<dyn Backend>, BackendError> {
    match opts.kind {
        #[cfg(feature = "onnx")]
        BackendKind::Onnxruntime => Ok(Box::new(onnx::OnnxBackend::load(
            model,
            opts.library.as_deref(),
            opts.threads,
            opts.spin,
            opts.gpu.as_ref(),
        )?)),
        #[cfg(not(feature = "onnx"))]
        BackendKind::Onnxruntime => Err(not_built("onnxruntime", "onnx")),
        #[cfg(feature = "litert")]
        BackendKind::Litert => Ok(Box::new(litert::LiteRtBackend::load(
            model,
            opts.library.as_deref(),
            opts.threads,
            opts.edge_tpu.as_ref(),
        )?)),
        #[cfg(not(feature = "litert"))]
        BackendKind::Litert => Err(not_built("litert", "litert")),
        #[cfg(feature = "hailo")]
        BackendKind::Hailo => Ok(Box::new(hailo::HailoBackend::load(
            model,
            opts.library.as_deref(),
        )?)),
        #[cfg(not(feature = "hailo"))]
        BackendKind::Hailo => Err(not_built("hailo", "hailo")),
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
        #[cfg(feature = "litert")]
        BackendKind::Litert => {
            let lib =
                litert_runtime::locate(opts.library.as_deref()).map_err(|reason| BackendError {
                    backend: "litert",
                    reason,
                })?;
            if let Some(tpu) = &opts.edge_tpu {
                edgetpu::probe(tpu).map_err(|reason| BackendError {
                    backend: "edgetpu",
                    reason,
                })?;
            }
            Ok(lib)
        }
        #[cfg(not(feature = "litert"))]
        BackendKind::Litert => Err(not_built("litert", "litert")),
        // The library, then the device node (`/dev/hailo0`).
        #[cfg(feature = "hailo")]
        BackendKind::Hailo => {
            hailo_runtime::locate(opts.library.as_deref()).map_err(|reason| BackendError {
                backend: "hailo",
                reason,
            })
        }
        #[cfg(not(feature = "hailo"))]
        BackendKind::Hailo => Err(not_built("hailo", "hailo")),
    }
}

/// `(width, height)` of a 4-D image input, NCHW or NHWC, when both are fixed.
#[cfg_attr(not(any(feature = "onnx", feature = "litert")), allow(dead_code))]
pub(crate) fn spatial_size(shape: &[i64]) -> Option<(u32, u32)> {
    let dims = match shape {
        [_, 3, h, w] => (*w, *h),
        [_, h, w, 3] => (*w, *h),
        _ => return None,
    };
    Some((u32::try_from(dims.0).ok()?, u32::try_from(dims.1).ok()?))
}

#[cfg(any(not(feature = "onnx"), not(feature = "litert"), not(feature = "hailo")))]
fn not_built(backend: &'static str, feature: &str) -> BackendError {
    BackendError {
        backend,
        reason: format!("not in this build (cargo feature `{feature}` of cascade-infer)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spatial_size_reads_both_layouts() {
        assert_eq!(spatial_size(&[1, 3, 416, 640]), Some((640, 416)));
        assert_eq!(spatial_size(&[-1, 320, 320, 3]), Some((320, 320)));
        assert_eq!(spatial_size(&[1, 3, -1, -1]), None);
        assert_eq!(spatial_size(&[1, 84, 8400]), None);
    }
}
