//! Confirming crops with the large FP32 model. Pre-processing and output decoding are
//! `cascade-infer`'s, shared with the edge agent; the crop is pasted into the model's input at
//! its native scale (unless `[confirm] upscale`), and the [`Rule`] judges the people found against
//! the edge's box in frame pixels. The model runs in-process (ONNX Runtime) or on a KServe v2
//! inference server (`[model.server]`): the same detector either way, only its backend differs.

mod rule;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cascade_infer::backend::kserve::ServerStatus;
use cascade_infer::{Detector, InferError, RgbImage, RgbSource, Scaling};
use cascade_shared::config::cloud::ConfirmConfig;

use crate::store::Verdict;

pub use rule::{Place, Rule};

/// One crop to judge: its decoded JPEG and where that picture sits in the camera's frame.
#[derive(Debug, Clone)]
pub struct CropInput {
    pub image: RgbImage,
    pub place: Place,
}

/// Runs the confirm model on a batch of crops.
pub trait Confirmer: Send {
    fn confirm(&mut self, crops: &[CropInput]) -> Result<Vec<Verdict>, InferError>;
    fn model(&self) -> String;
    /// After a failed [`Confirmer::confirm`]: how long to wait before trying the same crops again
    /// (an inference server that is down or overloaded); `None`: trying again will not help.
    fn retry_in(&self) -> Option<Duration> {
        None
    }
}

/// The confirm model over a [`Detector`], in-process or on an inference server.
pub struct OnnxConfirmer {
    detector: Detector,
    rule: Rule,
    /// The inference server's status and the first retry wait, when the model runs on one.
    server: Option<(Arc<ServerStatus>, Duration)>,
}

impl OnnxConfirmer {
    /// The rule of `cfg` over `detector`, which scales crops as `cfg.upscale` says.
    pub fn new(detector: Detector, cfg: &ConfirmConfig) -> Self {
        let rule = Rule::new(cfg, detector.manifest().person_class_id);
        let scaling = if cfg.upscale {
            Scaling::Fit
        } else {
            Scaling::Native
        };
        Self {
            detector: detector.with_scaling(scaling),
            rule,
            server: None,
        }
    }

    /// The same, for a detector whose model runs on the inference server `status` reports on;
    /// failed batches are tried again after `backoff`, or when the open circuit's probe is due.
    #[must_use]
    pub fn on_server(mut self, status: Arc<ServerStatus>, backoff: Duration) -> Self {
        self.server = Some((status, backoff));
        self
    }

    /// The model's people in each crop, in the crop's pixels (for evaluations).
    pub fn detect(
        &mut self,
        crops: &[CropInput],
    ) -> Result<Vec<Vec<cascade_infer::Detection>>, InferError> {
        let images: Vec<&RgbImage> = crops.iter().map(|c| &c.image).collect();
        self.detector.detect_batch(&images)
    }

    pub fn rule(&self) -> &Rule {
        &self.rule
    }
}

impl Confirmer for OnnxConfirmer {
    fn confirm(&mut self, crops: &[CropInput]) -> Result<Vec<Verdict>, InferError> {
        let results = self.detect(crops)?;
        Ok(results
            .iter()
            .zip(crops)
            .map(|(dets, c)| self.rule.judge(dets, c.image.size(), &c.place))
            .collect())
    }

    fn model(&self) -> String {
        let m = self.detector.manifest();
        format!("{} {}", m.name, m.version)
    }

    fn retry_in(&self) -> Option<Duration> {
        let (status, backoff) = self.server.as_ref()?;
        status.health().retry_in(Instant::now(), *backoff)
    }
}
