//! Confirming crops with the large FP32 model. Pre-processing and output decoding are
//! `cascade-infer`'s, shared with the edge agent.

use cascade_infer::{Detection, Detector, InferError, RgbImage, RgbSource};
use cascade_shared::config::cloud::ConfirmConfig;

use crate::store::Verdict;

/// Runs the confirm model on a batch of crops.
pub trait Confirmer: Send {
    fn confirm(&mut self, crops: &[RgbImage]) -> Result<Vec<Verdict>, InferError>;
    fn model(&self) -> String;
}

/// The confirm rule: the person class, a minimum score and a minimum box area within the crop.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub class_id: u32,
    pub min_score: f32,
    pub min_box_area: f32,
}

impl Rule {
    pub fn new(cfg: &ConfirmConfig, class_id: u32) -> Self {
        Self {
            class_id,
            min_score: cfg.min_score,
            min_box_area: cfg.min_box_area,
        }
    }

    /// The best qualifying person in a crop decides.
    pub fn judge(&self, dets: &[Detection], crop: (usize, usize)) -> Verdict {
        let area = (crop.0 * crop.1) as f32;
        let best = dets
            .iter()
            .filter(|d| {
                d.class_id == self.class_id
                    && d.bbox.width() * d.bbox.height() >= self.min_box_area * area
            })
            .map(|d| d.score)
            .fold(0.0f32, f32::max);
        Verdict {
            cloud_score: best,
            confirmed: best >= self.min_score && best > 0.0,
        }
    }
}

pub struct OnnxConfirmer {
    detector: Detector,
    rule: Rule,
}

impl OnnxConfirmer {
    pub fn new(detector: Detector, cfg: &ConfirmConfig) -> Self {
        let rule = Rule::new(cfg, detector.manifest().person_class_id);
        Self { detector, rule }
    }
}

impl Confirmer for OnnxConfirmer {
    fn confirm(&mut self, crops: &[RgbImage]) -> Result<Vec<Verdict>, InferError> {
        let results = self.detector.detect_batch(crops)?;
        Ok(results
            .iter()
            .zip(crops)
            .map(|(dets, c)| self.rule.judge(dets, c.size()))
            .collect())
    }

    fn model(&self) -> String {
        let m = self.detector.manifest();
        format!("{} {}", m.name, m.version)
    }
}

#[cfg(test)]
mod tests {
    use cascade_shared::wire::BoxPx;

    use super::*;

    fn det(class_id: u32, score: f32, side: f32) -> Detection {
        Detection {
            bbox: BoxPx {
                x1: 0.0,
                y1: 0.0,
                x2: side,
                y2: side,
            },
            score,
            class_id,
        }
    }

    #[test]
    fn rule_needs_class_score_and_area() {
        let r = Rule {
            class_id: 0,
            min_score: 0.5,
            min_box_area: 0.1,
        };
        assert!(r.judge(&[det(0, 0.8, 50.0)], (100, 100)).confirmed);
        assert!(
            !r.judge(&[det(1, 0.9, 50.0)], (100, 100)).confirmed,
            "wrong class"
        );
        assert!(
            !r.judge(&[det(0, 0.4, 50.0)], (100, 100)).confirmed,
            "low score"
        );
        assert!(
            !r.judge(&[det(0, 0.9, 20.0)], (100, 100)).confirmed,
            "box too small in the crop"
        );
        assert!(!r.judge(&[], (100, 100)).confirmed);
    }
}
