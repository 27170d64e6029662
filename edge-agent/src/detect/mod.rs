//! Person detection: the edge's view of `cascade-infer`. The [`Detect`] trait is this stage's edge
//! (fakes stand behind it in unit tests); `cascade_infer::Detector` is the real one.

pub mod ladder;
pub mod service;

use cascade_shared::manifest::ModelManifest;

pub use cascade_infer::{DetectParams, Detection, Detector, InferError};

use crate::decode::Frame;

/// Finds people in decoded frames.
pub trait Detect: Send {
    /// Runs on several frames (of one or several cameras); results in input order.
    fn detect_batch(&mut self, frames: &[&Frame]) -> Result<Vec<Vec<Detection>>, InferError>;
    fn manifest(&self) -> &ModelManifest;
    /// Several frames run as one tensor (else one run each).
    fn batches_natively(&self) -> bool;
}

impl Detect for Detector {
    fn detect_batch(&mut self, frames: &[&Frame]) -> Result<Vec<Vec<Detection>>, InferError> {
        Detector::detect_batch(self, frames)
    }

    fn manifest(&self) -> &ModelManifest {
        Detector::manifest(self)
    }

    fn batches_natively(&self) -> bool {
        Detector::batches_natively(self)
    }
}
