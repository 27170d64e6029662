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
        Ok(Self {
            manifest,
            session,
            input_name,
            output_names,
            params,
            scratch: Vec::new(),
        })
    }

    /// Runs the model on any RGB image (the cloud analyzer uses this on crops).
    pub fn detect_image(&mut self, img: &impl RgbSource) -> Result<Vec<Detection>, DetectError> {
        let spec = &self.manifest.input;
        let lb = letterbox(img, spec, &mut self.scratch);
        let (w, h) = (spec.width as usize, spec.height as usize);
        let shape = match spec.layout {
            cascade_shared::manifest::Layout::Nchw => [1, 3, h, w],
            cascade_shared::manifest::Layout::Nhwc => [1, h, w, 3],
        };
        let rt = |e: ort::Error| DetectError::Runtime(e.to_string());
        let input =
            OrtTensor::from_array((shape, std::mem::take(&mut self.scratch))).map_err(rt)?;
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
            tensors.push((shape.to_vec(), data));
        }
        let views: Vec<Tensor<'_>> = tensors
            .iter()
            .map(|(s, d)| Tensor { shape: s, data: d })
            .collect();
        let filter = Filter {
            score_threshold: self.params.score_threshold,
            class_id: self.params.class_id,
        };
        let cands = decode(
            &self.manifest.output,
            &views,
            (spec.width, spec.height),
            filter,
        )?;
        Ok(finish(cands, &lb, img.size(), &self.params))
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
