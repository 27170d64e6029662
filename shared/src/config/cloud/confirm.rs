//! `[confirm]`: the confirm rule. The cloud's model runs on each crop (at its native scale unless
//! `upscale`), its person boxes are mapped back to frame pixels through the crop's region, and a
//! crop is confirmed by a person that overlaps the edge's box: at `min_score`, or at
//! `strong_min_score` when the overlap is strong. `design/cloud-analyzer.md` has the measurements.

use serde::Deserialize;

use crate::Problems;

/// `[confirm]`: the confirm rule.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConfirmConfig {
    /// Lowest cloud score that confirms a crop, 0 to 1. Default: 0.5.
    pub min_score: f32,
    /// Smallest confirmed box, as a fraction (0 to below 1) of the crop's area. Default: 0 (none:
    /// a context crop is mostly surroundings, and the match with the edge's box bounds the size;
    /// 0.05 before context crops).
    pub min_box_area: f32,
    /// A cloud person counts only when its box, in frame pixels, overlaps the edge's box by at
    /// least this IoU, 0 to 1 (0: any person anywhere in the crop, the rule before matching).
    /// Default: 0.3.
    pub match_iou: f32,
    /// An overlap of at least this IoU is a strong match, `match_iou` to 1. Default: 0.5.
    pub strong_match_iou: f32,
    /// Lowest cloud score that confirms a strong match, 0 to `min_score`. Default: 0.25.
    pub strong_min_score: f32,
    /// Scale crops smaller than the model's input up to fill it (true), or paste them at their
    /// native scale (false). Default: false.
    pub upscale: bool,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        Self {
            min_score: 0.5,
            min_box_area: 0.0,
            match_iou: 0.3,
            strong_match_iou: 0.5,
            strong_min_score: 0.25,
            upscale: false,
        }
    }
}

impl ConfirmConfig {
    /// The rule of earlier releases: any person in the crop at `min_score`, the crop stretched to
    /// the model's input (for comparisons).
    pub fn any_person(&self) -> Self {
        Self {
            match_iou: 0.0,
            strong_match_iou: 1.0,
            strong_min_score: self.min_score,
            upscale: true,
            ..self.clone()
        }
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(
            (0.0..=1.0).contains(&self.min_score),
            "confirm.min_score",
            "must be within 0..=1",
        );
        p.check(
            (0.0..1.0).contains(&self.min_box_area),
            "confirm.min_box_area",
            "must be within 0..1",
        );
        p.check(
            (0.0..=1.0).contains(&self.match_iou),
            "confirm.match_iou",
            "must be within 0..=1",
        );
        p.check(
            (self.match_iou..=1.0).contains(&self.strong_match_iou),
            "confirm.strong_match_iou",
            "must be within match_iou..=1",
        );
        p.check(
            (0.0..=self.min_score).contains(&self.strong_min_score),
            "confirm.strong_min_score",
            "must be within 0..=min_score",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let cfg: ConfirmConfig = toml::from_str(text).expect("parses");
        let mut p = Problems::default();
        cfg.validate(&mut p);
        p.iter().map(str::to_string).collect()
    }

    #[test]
    fn defaults_match_and_are_valid() {
        let c: ConfirmConfig = toml::from_str("").expect("parses");
        assert_eq!(c, ConfirmConfig::default());
        assert_eq!((c.match_iou, c.strong_match_iou), (0.3, 0.5));
        assert_eq!((c.strong_min_score, c.upscale), (0.25, false));
        assert!(problems("").is_empty());
        let old = c.any_person();
        assert_eq!(
            (old.match_iou, old.upscale, old.min_score),
            (0.0, true, 0.5)
        );
        let mut p = Problems::default();
        old.validate(&mut p);
        assert!(p.is_empty(), "{p}");
    }

    #[test]
    fn matching_settings_are_checked_and_named() {
        let p = problems("match_iou = 1.2\nstrong_match_iou = 2.0\nstrong_min_score = -1.0");
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("confirm.match_iou"), "{p:?}");
        assert!(p[1].starts_with("confirm.strong_match_iou"), "{p:?}");
        assert!(p[2].starts_with("confirm.strong_min_score"), "{p:?}");
        let p = problems("match_iou = 0.6\nstrong_match_iou = 0.5");
        assert_eq!(
            p,
            ["confirm.strong_match_iou: must be within match_iou..=1"]
        );
        let p = problems("min_score = 0.4\nstrong_min_score = 0.45");
        assert_eq!(
            p,
            ["confirm.strong_min_score: must be within 0..=min_score"]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<ConfirmConfig>("iou = 0.5").expect_err("unknown key");
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
