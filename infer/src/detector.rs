//! The generic detector: letterbox pre-processing into the dtype the backend wants, one backend run
//! (batched when the model allows), output decoding, NMS, mapping back and filtering. Every backend
//! shares this code.

use cascade_shared::manifest::{ModelManifest, OutputFormat};
use cascade_shared::wire::BoxPx;

use crate::backend::{Backend, BackendError, DType, InputData, InputTensor, Quantization};
use crate::image::RgbSource;
use crate::postprocess::{self, Candidate, Filter, Tensor, decode, nms};
use crate::preprocess::{self, Letterbox, Lut, Scaling, letterbox_with};

/// One detection in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BoxPx,
    pub score: f32,
    pub class_id: u32,
}

/// Thresholds applied after the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectParams {
    pub score_threshold: f32,
    pub nms_iou: f32,
    /// Smallest box kept, as a fraction of the image area.
    pub min_box_area: f32,
    /// Keep only this class; `None` keeps all.
    pub class_id: Option<u32>,
    /// How images are scaled onto the model's input. Default (as loaded): [`Scaling::Fit`].
    pub scaling: Scaling,
}

#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Output(#[from] postprocess::OutputError),
    #[error("model {model}: {reason}")]
    Model { model: String, reason: String },
}

/// Input buffers, reused from run to run, in the dtype the backend wants.
enum Scratch {
    F32(Lut<f32>, Vec<f32>, Vec<f32>),
    U8(Lut<u8>, Vec<u8>, Vec<u8>),
    I8(Lut<i8>, Vec<i8>, Vec<i8>),
}

/// A model on a backend, with the manifest's pre- and post-processing.
pub struct Detector {
    manifest: ModelManifest,
    backend: Box<dyn Backend>,
    params: DetectParams,
    /// Index into the backend's outputs of each tensor the output decoder takes, in its order.
    outputs: Vec<usize>,
    scratch: Scratch,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("model", &self.manifest.name)
            .field("backend", &self.backend.info().name)
            .finish_non_exhaustive()
    }
}

impl Detector {
    /// Checks that the backend's model fits the manifest (input size, named outputs).
    pub fn new(
        manifest: ModelManifest,
        backend: Box<dyn Backend>,
        params: DetectParams,
    ) -> Result<Self, InferError> {
        let model_err = |reason: String| InferError::Model {
            model: manifest.name.clone(),
            reason,
        };
        let info = backend.info();
        let want = (manifest.input.width, manifest.input.height);
        if let Some(got) = info.input_size
            && got != want
        {
            return Err(model_err(format!(
                "the manifest says a {}x{} input, the model file takes {}x{}",
                want.0, want.1, got.0, got.1
            )));
        }
        let outputs = if manifest.output.format == OutputFormat::Ssd {
            let wanted = manifest.output.ssd_outputs.clone().unwrap_or([
                "boxes".into(),
                "classes".into(),
                "scores".into(),
            ]);
            wanted
                .iter()
                .map(|w| {
                    info.outputs.iter().position(|o| o == w).ok_or_else(|| {
                        model_err(format!(
                            "has no output named {w:?} (outputs: {:?})",
                            info.outputs
                        ))
                    })
                })
                .collect::<Result<_, _>>()?
        } else if info.outputs.is_empty() {
            return Err(model_err("has no outputs".into()));
        } else {
            vec![0]
        };
        let quant = input_quantization(&manifest.input, info).map_err(model_err)?;
        let spec = &manifest.input;
        let scratch = match (info.dtype, quant) {
            (DType::F32, _) => Scratch::F32(preprocess::f32_lut(spec), vec![], vec![]),
            (DType::U8, None) => Scratch::U8(preprocess::u8_lut(), vec![], vec![]),
            (DType::U8, Some(q)) => Scratch::U8(preprocess::quant_lut(spec, q), vec![], vec![]),
            (DType::I8, None) => Scratch::I8(preprocess::i8_lut(), vec![], vec![]),
            (DType::I8, Some(q)) => Scratch::I8(preprocess::quant_lut(spec, q), vec![], vec![]),
        };
        Ok(Self {
            manifest,
            backend,
            params,
            outputs,
            scratch,
        })
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    pub fn params(&self) -> &DetectParams {
        &self.params
    }

    /// The same detector scaling images onto its input with `scaling`.
    #[must_use]
    pub fn with_scaling(mut self, scaling: Scaling) -> Self {
        self.params.scaling = scaling;
        self
    }

    /// The backend's description, e.g. `onnxruntime (cpu, 2 threads)`.
    pub fn backend_name(&self) -> &str {
        &self.backend.info().name
    }

    /// Whether [`Detector::detect_batch`] runs several images as one tensor (else one run each).
    pub fn batches_natively(&self) -> bool {
        self.backend.info().dynamic_batch
    }

    /// Runs the model on one image.
    pub fn detect(&mut self, img: &impl RgbSource) -> Result<Vec<Detection>, InferError> {
        Ok(self
            .detect_batch(std::slice::from_ref(img))?
            .pop()
            .unwrap_or_default())
    }

    /// Runs the model on several images: one batched run when the model's batch dimension is
    /// dynamic, else one run each. Results are in input order.
    pub fn detect_batch<I: RgbSource>(
        &mut self,
        imgs: &[I],
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        if !self.batches_natively() && imgs.len() > 1 {
            let mut all = Vec::with_capacity(imgs.len());
            for img in imgs {
                all.extend(self.run_batch(std::slice::from_ref(img))?);
            }
            return Ok(all);
        }
        self.run_batch(imgs)
    }

    fn run_batch<I: RgbSource>(&mut self, imgs: &[I]) -> Result<Vec<Vec<Detection>>, InferError> {
        let n = imgs.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let (spec, scaling) = (&self.manifest.input, self.params.scaling);
        let (w, h) = (spec.width as usize, spec.height as usize);
        let shape = match spec.layout {
            cascade_shared::manifest::Layout::Nchw => [n, 3, h, w],
            cascade_shared::manifest::Layout::Nhwc => [n, h, w, 3],
        };
        let mut boxes = Vec::with_capacity(n);
        let data = match &mut self.scratch {
            Scratch::F32(lut, all, one) => {
                InputData::F32(fill(imgs, (spec, scaling), lut, all, one, &mut boxes))
            }
            Scratch::U8(lut, all, one) => {
                InputData::U8(fill(imgs, (spec, scaling), lut, all, one, &mut boxes))
            }
            Scratch::I8(lut, all, one) => {
                InputData::I8(fill(imgs, (spec, scaling), lut, all, one, &mut boxes))
            }
        };
        let outputs = self.backend.run(InputTensor { shape, data })?;
        let mut tensors = Vec::with_capacity(self.outputs.len());
        for &i in &self.outputs {
            let o = outputs.get(i).ok_or_else(|| InferError::Model {
                model: self.manifest.name.clone(),
                reason: format!("output {i} missing"),
            })?;
            if o.shape.first().copied() != Some(n as i64) || o.data.len() % n != 0 {
                return Err(InferError::Model {
                    model: self.manifest.name.clone(),
                    reason: format!(
                        "output {} has shape {:?} for a batch of {n}",
                        o.name, o.shape
                    ),
                });
            }
            // Each item's slice, as a batch of one.
            let item_shape: Vec<i64> = std::iter::once(1)
                .chain(o.shape.iter().skip(1).copied())
                .collect();
            tensors.push((item_shape, &o.data, o.data.len() / n));
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

/// The input's quantisation: the model file's, else the manifest's, after checking that the two
/// (and the manifest's `input.dtype`) agree with the file.
fn input_quantization(
    spec: &cascade_shared::manifest::InputSpec,
    info: &crate::backend::BackendInfo,
) -> Result<Option<Quantization>, String> {
    use cascade_shared::manifest::InputDType;
    let file = match info.dtype {
        DType::F32 => InputDType::Float32,
        DType::U8 => InputDType::Uint8,
        DType::I8 => InputDType::Int8,
    };
    if let Some(d) = spec.dtype
        && d != file
    {
        return Err(format!(
            "input.dtype: the manifest says {d:?}, the model file takes {file:?}"
        ));
    }
    let manifest = spec.quantization.map(|q| Quantization {
        scale: q.scale,
        zero_point: q.zero_point,
    });
    match (info.input_quant, manifest) {
        (Some(f), Some(m))
            if f.zero_point != m.zero_point || (f.scale - m.scale).abs() > f.scale * 1e-3 =>
        {
            Err(format!(
                "input.quantization: the manifest says scale {} zero point {}, the model file {} and {}",
                m.scale, m.zero_point, f.scale, f.zero_point
            ))
        }
        (f, m) => Ok(f.or(m)),
    }
}

/// Letterboxes every image into `all` (one after the other), recording each mapping.
fn fill<'a, T: Copy + Default, I: RgbSource>(
    imgs: &[I],
    (spec, scaling): (&cascade_shared::manifest::InputSpec, Scaling),
    lut: &Lut<T>,
    all: &'a mut Vec<T>,
    one: &mut Vec<T>,
    boxes: &mut Vec<Letterbox>,
) -> &'a [T] {
    if imgs.len() == 1 {
        boxes.push(letterbox_with(&imgs[0], spec, scaling, lut, all));
        return all;
    }
    all.clear();
    for img in imgs {
        boxes.push(letterbox_with(img, spec, scaling, lut, one));
        all.extend_from_slice(one);
    }
    all
}

/// Candidates in model-input pixels -> NMS'd detections in image pixels, clipped and filtered.
pub fn finish(
    cands: Vec<Candidate>,
    lb: &Letterbox,
    image: (usize, usize),
    p: &DetectParams,
) -> Vec<Detection> {
    let (w, h) = (image.0 as f32, image.1 as f32);
    let min_area = p.min_box_area * w * h;
    nms(cands, p.nms_iou)
        .into_iter()
        .filter_map(|c| {
            let (x1, y1) = lb.unmap(c.x1, c.y1);
            let (x2, y2) = lb.unmap(c.x2, c.y2);
            let bbox = BoxPx {
                x1: x1.clamp(0.0, w),
                y1: y1.clamp(0.0, h),
                x2: x2.clamp(0.0, w),
                y2: y2.clamp(0.0, h),
            };
            (bbox.width() > 0.0 && bbox.height() > 0.0 && bbox.width() * bbox.height() >= min_area)
                .then_some(Detection {
                    bbox,
                    score: c.score,
                    class_id: c.class_id,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests;
