//! Person detection behind the [`Detector`] trait. Pre- and post-processing live here once and
//! serve every backend (ONNX Runtime today; LiteRT, Edge TPU and Hailo slot in beside it).

mod onnx;
pub mod postprocess;
pub mod preprocess;
pub mod runtime;

use cascade_shared::manifest::ModelManifest;
use cascade_shared::wire::BoxPx;

pub use onnx::OnnxDetector;
pub use postprocess::{Candidate, Filter, Tensor, decode, nms};
pub use preprocess::{Letterbox, RgbImage, RgbSource, letterbox};

use crate::decode::Frame;

/// One detection in frame pixels.
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
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error(transparent)]
    Output(#[from] postprocess::OutputError),
    #[error("model {model}: {reason}")]
    Model { model: String, reason: String },
}

/// Finds objects in a decoded frame.
pub trait Detector: Send {
    fn detect(&mut self, frame: &Frame) -> Result<Vec<Detection>, DetectError>;
    fn manifest(&self) -> &ModelManifest;
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
