//! Inference for both binaries: image types, letterbox and region pre-processing, the output
//! decoders and NMS, and a small [`Backend`] trait (input tensor in, output tensors out) under one
//! generic [`Detector`] that owns pre- and post-processing.
//!
//! Backends sit behind cargo features, one file each under `backend/`: ONNX Runtime (`onnx`,
//! default), LiteRT for TFLite models (`litert`, default) and HailoRT for HEF models on a Hailo-8L
//! (`hailo`); each runtime's library is loaded at run time. A new backend implements [`Backend`]
//! and adds one arm to [`backend::open`].

pub mod backend;
pub mod detector;
pub mod image;
pub mod model;
pub mod postprocess;
pub mod preprocess;
pub mod regions;

pub use backend::{
    Backend, BackendError, BackendInfo, DType, InputData, InputTensor, OutputTensor, Quantization,
};
pub use detector::{DetectParams, Detection, Detector, InferError};
pub use image::{Frame, Region, RgbImage, RgbSource, yuv_to_rgb};
pub use model::{Classes, LoadOptions, load_detector, load_ladder};
pub use preprocess::{Letterbox, Scaling, letterbox};
pub use regions::Look;
