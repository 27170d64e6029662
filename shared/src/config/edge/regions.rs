//! `[detector.regions]`: where in the frame the detector looks (Frigate-style regions of interest)
//! and `[detector]`'s rates while only motion is seen and while a person is tracked.

use std::time::Duration;

use serde::Deserialize;

use crate::Problems;

/// `[detector.regions]`: the detector runs on squares around the motion (and the people being
/// tracked) instead of the whole frame letterboxed, so small people keep their pixels and a
/// small model input goes further.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegionsConfig {
    /// Run on regions at all (false: always the whole frame). Default: true.
    pub enabled: bool,
    /// Each motion box is grown by this share of its larger side on every side before its square
    /// region is made, 0 to 2. Default: 0.25.
    pub margin: f32,
    /// When the regions of a frame together cover more than this share of it, in (0, 1], the
    /// detector runs on the whole frame instead. Default: 0.6.
    pub whole_frame_share: f32,
    /// More regions than this in one frame (1-16): the whole frame instead. Default: 4.
    pub max_regions: u32,
    /// At least one whole-frame run this often while the detector runs, seconds (0: never), to
    /// find people whose motion box missed them. Default: 10.
    pub whole_frame_every_s: f32,
}

impl Default for RegionsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            margin: 0.25,
            whole_frame_share: 0.6,
            max_regions: 4,
            whole_frame_every_s: 10.0,
        }
    }
}

impl RegionsConfig {
    pub fn whole_frame_every(&self) -> Option<Duration> {
        (self.whole_frame_every_s > 0.0).then(|| Duration::from_secs_f32(self.whole_frame_every_s))
    }

    pub fn validate(&self, p: &mut Problems) {
        p.check(
            (0.0..=2.0).contains(&self.margin),
            "detector.regions.margin",
            "must be within 0..=2",
        );
        p.check(
            self.whole_frame_share > 0.0 && self.whole_frame_share <= 1.0,
            "detector.regions.whole_frame_share",
            "must be in (0, 1]",
        );
        p.check(
            (1..=16).contains(&self.max_regions),
            "detector.regions.max_regions",
            "must be 1..=16",
        );
        p.check(
            (0.0..=3600.0).contains(&self.whole_frame_every_s),
            "detector.regions.whole_frame_every_s",
            "must be within 0..=3600",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        let mut p = Problems::new();
        RegionsConfig::default().validate(&mut p);
        assert!(p.is_empty(), "{p}");
        let bad: RegionsConfig = toml::from_str(
            "margin = 3.0\nwhole_frame_share = 0.0\nmax_regions = 0\nwhole_frame_every_s = -1.0",
        )
        .expect("parses");
        let mut p = Problems::new();
        bad.validate(&mut p);
        let text = p.to_string();
        for f in [
            "margin",
            "whole_frame_share",
            "max_regions",
            "whole_frame_every_s",
        ] {
            assert!(
                text.contains(&format!("detector.regions.{f}")),
                "{f}: {text}"
            );
        }
        assert!(toml::from_str::<RegionsConfig>("nope = 1").is_err());
    }
}
