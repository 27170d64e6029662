//! The ONNX Runtime backend. INT8 (QDQ or dynamic-quantised) and FP32 models both run on CPU.

use std::path::Path;

use cascade_shared::manifest::{ModelManifest, OutputFormat};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor as OrtTensor;

use super::{
    DetectError, DetectParams, Detection, Detector, Filter, RgbSource, Tensor, decode, finish,
    letterbox,
};
use crate::decode::Frame;

pub struct OnnxDetector {
    manifest: ModelManifest,
    session: Session,
    input_name: String,
    output_names: Vec<String>,
    params: DetectParams,
    /// The model's batch dimension is dynamic: several images run as one tensor.
    dynamic_batch: bool,
    scratch: Vec<f32>,
}

impl OnnxDetector {
    /// Loads a model described by `manifest`, whose file is at `model_path`.
    pub fn load(
        manifest: ModelManifest,
        model_path: &Path,
        ort_lib: Option<&Path>,
        threads: usize,
        params: DetectParams,
    ) -> Result<Self, DetectError> {
        let rt = |e: String| DetectError::Runtime(e);
        let env = super::runtime::environment(ort_lib).map_err(rt)?;
        let session = Session::builder(&env)
            .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
            .and_then(|b| Ok(b.with_intra_threads(threads)?))
            .and_then(|mut b| b.commit_from_file(model_path))
            .map_err(|e| rt(format!("{}: {e}", model_path.display())))?;
        let model_err = |reason: String| DetectError::Model {
            model: manifest.name.clone(),
            reason,
        };
        let input_name = session
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .ok_or_else(|| model_err("has no inputs".into()))?;
        let mut output_names: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        if manifest.output.format == OutputFormat::Ssd {
            let wanted = manifest.output.ssd_outputs.clone().unwrap_or([
                "boxes".into(),
                "classes".into(),
                "scores".into(),
            ]);
            for w in &wanted {
                if !output_names.contains(w) {
                    return Err(model_err(format!(
                        "has no output named {w:?} (outputs: {output_names:?})"
                    )));
                }
            }
            output_names = wanted.to_vec();
        }
        let dynamic_batch = session
            .inputs()
            .first()
            .and_then(|i| {
                i.dtype()
                    .tensor_shape()
                    .map(|s| s.first().is_some_and(|d| *d < 0))
            })
            .unwrap_or(false);
        Ok(Self {
            manifest,
            session,
            input_name,
            output_names,
            params,
            dynamic_batch,
            scratch: Vec::new(),
        })
    }

    /// The manifest the model was loaded with.
    pub fn manifest_ref(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Whether [`OnnxDetector::detect_images`] runs a batch as one tensor (else one run per image).
    pub fn batches_natively(&self) -> bool {
        self.dynamic_batch
    }

    /// Runs the model on any RGB image (the cloud analyzer uses this on crops).
    pub fn detect_image(&mut self, img: &impl RgbSource) -> Result<Vec<Detection>, DetectError> {
        Ok(self
            .detect_images(std::slice::from_ref(img))?
            .pop()
            .unwrap_or_default())
    }

    /// Runs the model on several images: one batched run when the model's batch dimension is
    /// dynamic, else one run each. Results are in input order.
    pub fn detect_images<I: RgbSource>(
        &mut self,
        imgs: &[I],
    ) -> Result<Vec<Vec<Detection>>, DetectError> {
        if imgs.is_empty() {
            return Ok(Vec::new());
        }
        if !self.dynamic_batch && imgs.len() > 1 {
            return imgs
                .iter()
                .map(|img| {
                    self.run_batch(std::slice::from_ref(img))
                        .map(|mut v| v.pop().unwrap_or_default())
                })
                .collect();
        }
        self.run_batch(imgs)
    }

    fn run_batch<I: RgbSource>(&mut self, imgs: &[I]) -> Result<Vec<Vec<Detection>>, DetectError> {
        let spec = self.manifest.input.clone();
        let (w, h) = (spec.width as usize, spec.height as usize);
        let mut data = std::mem::take(&mut self.scratch);
        data.clear();
        let mut one = Vec::new();
        let mut boxes = Vec::with_capacity(imgs.len());
        for img in imgs {
            boxes.push(letterbox(img, &spec, &mut one));
            data.extend_from_slice(&one);
        }
        let n = imgs.len();
        let shape = match spec.layout {
            cascade_shared::manifest::Layout::Nchw => [n, 3, h, w],
            cascade_shared::manifest::Layout::Nhwc => [n, h, w, 3],
        };
        let rt = |e: ort::Error| DetectError::Runtime(e.to_string());
        let input = OrtTensor::from_array((shape, data)).map_err(rt)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => input])
            .map_err(rt)?;
        let mut tensors = Vec::with_capacity(self.output_names.len());
        for name in &self.output_names {
            let value = outputs
                .get(name.as_str())
                .ok_or_else(|| DetectError::Runtime(format!("output {name} missing")))?;
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(rt)?;
            if shape.first().copied() != Some(n as i64) || data.len() % n != 0 {
                return Err(DetectError::Model {
                    model: self.manifest.name.clone(),
                    reason: format!("output {name} has shape {shape:?} for a batch of {n}"),
                });
            }
            // Each item's slice, as a batch of one.
            let item_shape: Vec<i64> = std::iter::once(1)
                .chain(shape.iter().skip(1).copied())
                .collect();
            tensors.push((item_shape, data, data.len() / n));
        }
        let filter = Filter {
            score_threshold: self.params.score_threshold,
            class_id: self.params.class_id,
        };
        let mut results = Vec::with_capacity(n);
        for (i, (img, lb)) in imgs.iter().zip(&boxes).enumerate() {
            let views: Vec<Tensor<'_>> = tensors
                .iter()
                .map(|(s, d, per)| Tensor {
                    shape: s,
                    data: &d[i * per..(i + 1) * per],
                })
                .collect();
            let cands = decode(
                &self.manifest.output,
                &views,
                (spec.width, spec.height),
                filter,
            )?;
            results.push(finish(cands, lb, img.size(), &self.params));
        }
        Ok(results)
    }
}

impl Detector for OnnxDetector {
    fn detect(&mut self, frame: &Frame) -> Result<Vec<Detection>, DetectError> {
        self.detect_image(frame)
    }

    fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }
}
