//! `[crops]`: what is cut out around a detection and uploaded. The crop is the box with padding,
//! grown to a minimum context (a share of the frame and a side in frame pixels) so that the
//! cloud's model sees a person cut by the frame edge or partly hidden together with what
//! surrounds them (`design/cloud-analyzer.md` has the measurements).

use serde::Deserialize;

use crate::Problems;

/// `[crops]`: what is cut out around a detection and uploaded.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CropConfig {
    /// Padding around the box, as a fraction (0 to 2) of its width and height. Default: 0.15.
    pub padding: f32,
    /// Context: the crop spans at least this share of the frame's width and of its height, 0 to
    /// 1 (0: no minimum). Default: 0.4.
    pub context_share: f32,
    /// Context: each side of the crop is at least this many frame pixels (at most the frame's
    /// side), 0 to 4096 (0: no minimum). Default: 256.
    pub context_px: u32,
    /// Longest side of the JPEG, 16 to 4096; larger crops are scaled down, smaller ones are never
    /// scaled up. Default: 640.
    pub max_side: u32,
    /// JPEG quality, 1 to 100. Default: 80.
    pub jpeg_quality: u8,
}

impl Default for CropConfig {
    fn default() -> Self {
        Self {
            padding: 0.15,
            context_share: 0.4,
            context_px: 256,
            max_side: 640,
            jpeg_quality: 80,
        }
    }
}

impl CropConfig {
    /// The crop of earlier releases: the padded box only, no context.
    pub fn without_context(&self) -> Self {
        Self {
            context_share: 0.0,
            context_px: 0,
            ..self.clone()
        }
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(
            (0.0..=2.0).contains(&self.padding),
            "crops.padding",
            "must be within 0..=2",
        );
        p.check(
            (0.0..=1.0).contains(&self.context_share),
            "crops.context_share",
            "must be within 0..=1",
        );
        p.check(
            self.context_px <= 4096,
            "crops.context_px",
            "must be 0..=4096",
        );
        p.check(
            (16..=4096).contains(&self.max_side),
            "crops.max_side",
            "must be 16..=4096",
        );
        p.check(
            (1..=100).contains(&self.jpeg_quality),
            "crops.jpeg_quality",
            "must be 1..=100",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let cfg: CropConfig = toml::from_str(text).expect("parses");
        let mut p = Problems::default();
        cfg.validate(&mut p);
        p.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn defaults_give_context_and_are_valid() {
        let c: CropConfig = toml::from_str("").expect("parses");
        assert_eq!(c, CropConfig::default());
        assert_eq!((c.context_share, c.context_px), (0.4, 256));
        assert!(problems("").is_empty());
        let plain = c.without_context();
        assert_eq!((plain.context_share, plain.context_px), (0.0, 0));
        assert_eq!(plain.padding, c.padding);
    }

    #[test]
    fn context_settings_are_checked_and_named() {
        let p = problems("context_share = 1.5\ncontext_px = 5000");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("crops.context_share"), "{p:?}");
        assert!(p[1].contains("crops.context_px"), "{p:?}");
        assert!(problems("context_share = -0.1")[0].contains("crops.context_share"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<CropConfig>("context = 0.5").expect_err("unknown key");
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
