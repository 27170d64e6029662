//! The ONNX Runtime backend (`ort`, load-dynamic). INT8 (static QDQ or dynamic-quantised) and FP32
//! models run on the first execution provider of the chain that works (`onnx_providers`):
//! TensorRT and CUDA where the hardware profile's `[gpu]` names them, else the CPU.

use std::path::Path;

use ort::session::Session;
use ort::session::SessionInputValue;
use ort::value::TensorElementType;
use ort::value::TensorRef;

use super::onnx_providers::{self, Opened, Settings};
use super::providers::{self, GpuOptions};
use super::{
    Backend, BackendError, BackendInfo, DType, InputData, InputTensor, OutputTensor, spatial_size,
};

const NAME: &str = "onnxruntime";

fn err(reason: impl std::fmt::Display) -> BackendError {
    BackendError {
        backend: NAME,
        reason: reason.to_string(),
    }
}

pub struct OnnxBackend {
    session: Session,
    input_name: String,
    info: BackendInfo,
}

impl OnnxBackend {
    /// Loads the model at `model` with `threads` intra-op threads, spinning or not while idle, on
    /// the first provider of the chain `gpu` makes that works (the CPU without `gpu`).
    pub fn load(
        model: &Path,
        library: Option<&Path>,
        threads: usize,
        spin: bool,
        gpu: Option<&GpuOptions>,
    ) -> Result<Self, BackendError> {
        let env = super::onnx_runtime::environment(library).map_err(err)?;
        let chain = providers::chain(gpu);
        let Opened {
            session,
            provider,
            fallbacks,
        } = onnx_providers::open(&env, model, &Settings { threads, spin }, &chain).map_err(err)?;
        let input = session
            .inputs()
            .first()
            .ok_or_else(|| err(format!("{}: the model has no inputs", model.display())))?;
        let input_name = input.name().to_string();
        let dtype = match input.dtype().tensor_type() {
            Some(TensorElementType::Float32) => DType::F32,
            Some(TensorElementType::Uint8) => DType::U8,
            Some(TensorElementType::Int8) => DType::I8,
            other => {
                return Err(err(format!(
                    "{}: input {input_name} is {other:?}; float32, uint8 or int8 is supported",
                    model.display()
                )));
            }
        };
        let shape: Vec<i64> = input
            .dtype()
            .tensor_shape()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let dynamic_batch = shape.first().is_some_and(|d| *d < 0);
        let input_size = spatial_size(&shape);
        let outputs = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        Ok(Self {
            session,
            input_name,
            info: BackendInfo {
                name: format!("{NAME} ({provider}, {threads} threads)"),
                provider,
                fallbacks,
                dtype,
                input_size,
                input_quant: None,
                dynamic_batch,
                outputs,
            },
        })
    }
}

impl Backend for OnnxBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn run(&mut self, input: InputTensor<'_>) -> Result<Vec<OutputTensor>, BackendError> {
        let shape = input.shape;
        // Views of the caller's buffer: no copy of the input.
        let value: SessionInputValue<'_> = match input.data {
            InputData::F32(d) => TensorRef::from_array_view((shape, d)).map(Into::into),
            InputData::U8(d) => TensorRef::from_array_view((shape, d)).map(Into::into),
            InputData::I8(d) => TensorRef::from_array_view((shape, d)).map(Into::into),
        }
        .map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => value])
            .map_err(err)?;
        let mut out = Vec::with_capacity(self.info.outputs.len());
        for name in &self.info.outputs {
            let value = outputs
                .get(name.as_str())
                .ok_or_else(|| err(format!("output {name} missing")))?;
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(err)?;
            out.push(OutputTensor {
                name: name.clone(),
                shape: shape.iter().copied().collect(),
                data: data.to_vec(),
            });
        }
        Ok(out)
    }
}
