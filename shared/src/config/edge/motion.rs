//! `[motion]`, the motion gate in front of the detector, and a camera's `[camera.motion]`
//! overrides of it.

use serde::Deserialize;

use crate::Problems;

/// `[motion]`: the motion gate in front of the detector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MotionConfig {
    /// Width of the downscaled luma image motion is computed on, 32 to 1920. Default: 320.
    pub width: u32,
    /// Luma difference (1-255) against the background that counts as change. Default: 25.
    pub threshold: u8,
    /// Smallest motion box, as a fraction (0 to below 1) of the frame area. Default: 0.002.
    pub min_area: f32,
    /// Background learning rate per frame, in (0, 1]. Default: 0.05.
    pub learning_rate: f32,
    /// Above this changed fraction of the frame, in (0, 1], recalibrate instead of firing.
    /// Default: 0.6.
    pub global_change: f32,
    /// Frames after start or recalibration during which nothing fires. Default: 5.
    pub warmup_frames: u32,
    /// Polygons to ignore (at least 3 vertices each), vertices as fractions (0-1) of frame width
    /// and height. Default: none.
    pub masks: Vec<Vec<[f32; 2]>>,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            width: 320,
            threshold: 25,
            min_area: 0.002,
            learning_rate: 0.05,
            global_change: 0.6,
            warmup_frames: 5,
            masks: Vec::new(),
        }
    }
}

impl MotionConfig {
    /// Range problems, named under `field` (`motion`, or `camera[i].motion`).
    pub fn validate(&self, field: &str, p: &mut Problems) {
        p.check(
            (32..=1920).contains(&self.width),
            format!("{field}.width"),
            "must be 32..=1920",
        );
        p.check(
            self.threshold >= 1,
            format!("{field}.threshold"),
            "must be at least 1",
        );
        p.check(
            (0.0..1.0).contains(&self.min_area),
            format!("{field}.min_area"),
            "must be within 0..1",
        );
        p.check(
            self.learning_rate > 0.0 && self.learning_rate <= 1.0,
            format!("{field}.learning_rate"),
            "must be in (0, 1]",
        );
        p.check(
            self.global_change > 0.0 && self.global_change <= 1.0,
            format!("{field}.global_change"),
            "must be in (0, 1]",
        );
        for (i, poly) in self.masks.iter().enumerate() {
            p.check(
                poly.len() >= 3,
                format!("{field}.masks[{i}]"),
                "a polygon needs at least 3 vertices",
            );
            p.check(
                poly.iter().flatten().all(|v| (0.0..=1.0).contains(v)),
                format!("{field}.masks[{i}]"),
                "vertices are fractions of the frame, within 0..=1",
            );
        }
    }
}

/// `[camera.motion]`: any `[motion]` setting, for one camera. Unset fields take `[motion]`'s.
/// `masks` replaces the default masks (masks are per camera view).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MotionOverrides {
    pub width: Option<u32>,
    pub threshold: Option<u8>,
    pub min_area: Option<f32>,
    pub learning_rate: Option<f32>,
    pub global_change: Option<f32>,
    pub warmup_frames: Option<u32>,
    pub masks: Option<Vec<Vec<[f32; 2]>>>,
}

impl MotionOverrides {
    /// These settings over `base`.
    pub fn over(&self, base: &MotionConfig) -> MotionConfig {
        MotionConfig {
            width: self.width.unwrap_or(base.width),
            threshold: self.threshold.unwrap_or(base.threshold),
            min_area: self.min_area.unwrap_or(base.min_area),
            learning_rate: self.learning_rate.unwrap_or(base.learning_rate),
            global_change: self.global_change.unwrap_or(base.global_change),
            warmup_frames: self.warmup_frames.unwrap_or(base.warmup_frames),
            masks: self.masks.clone().unwrap_or_else(|| base.masks.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let base = MotionConfig {
            masks: vec![vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]],
            ..MotionConfig::default()
        };
        let o = MotionOverrides {
            threshold: Some(40),
            ..MotionOverrides::default()
        };
        let m = o.over(&base);
        assert_eq!(m.threshold, 40);
        assert_eq!((m.width, m.masks.len()), (base.width, 1));
        let no_masks = MotionOverrides {
            masks: Some(vec![]),
            ..MotionOverrides::default()
        };
        assert!(
            no_masks.over(&base).masks.is_empty(),
            "a camera can drop the masks"
        );
    }

    #[test]
    fn problems_are_named_under_the_field() {
        let bad = MotionConfig {
            width: 8,
            ..MotionConfig::default()
        };
        let mut p = Problems::new();
        bad.validate("camera[1].motion", &mut p);
        assert!(p.to_string().contains("camera[1].motion.width"), "{p}");
    }
}
