//! Person detection: the edge's view of `cascade-infer`. The [`Detect`] trait is this stage's edge
//! (fakes stand behind it in unit tests); `cascade_infer::Detector` is the real one. [`roi`] plans
//! where in a frame the detector looks; [`service`] shares one detector (per input size) between
//! every camera.

pub mod ladder;
pub mod roi;
pub mod service;

use cascade_shared::manifest::ModelManifest;

pub use cascade_infer::{DetectParams, Detection, Detector, InferError, Look};

use crate::decode::Frame;

/// Finds people in decoded frames.
pub trait Detect: Send {
    /// Runs on regions of several frames (of one or several cameras; no regions: the whole
    /// frame); per frame, the people found in frame pixels, in input order.
    fn detect_looks(
        &mut self,
        looks: &[Look<'_, Frame>],
    ) -> Result<Vec<Vec<Detection>>, InferError>;
    fn manifest(&self) -> &ModelManifest;
    /// Several images run as one tensor (else one run each).
    fn batches_natively(&self) -> bool;
}

impl Detect for Detector {
    fn detect_looks(
        &mut self,
        looks: &[Look<'_, Frame>],
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        Detector::detect_looks(self, looks)
    }

    fn manifest(&self) -> &ModelManifest {
        Detector::manifest(self)
    }

    fn batches_natively(&self) -> bool {
        Detector::batches_natively(self)
    }
}
