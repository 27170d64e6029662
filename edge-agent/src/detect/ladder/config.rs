//! The controller's settings, and how `[detector]` makes them.

use std::time::Duration;

use cascade_shared::Problems;
use cascade_shared::config::edge::DetectorConfig;

use super::MAX_SAMPLES;

/// The controller's settings. [`LadderConfig::new`] fills in the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LadderConfig {
    /// Input sides, largest first, strictly decreasing.
    pub sizes: Vec<u32>,
    /// The p95 run time to stay within.
    pub budget: Duration,
    /// The span the p95 and the dropped share are taken over; also the pause after a change.
    pub window: Duration,
    /// Runs (and offers) in the window before either says anything, 1 to 256.
    pub min_samples: usize,
    /// Step up only when the p95 predicted at the larger size is within `budget` times this,
    /// in (0, 1].
    pub up_headroom: f32,
    /// How long the headroom must last before a step up.
    pub up_hold: Duration,
    /// The share of offered frames dropped as busy that counts as overload, in (0, 1].
    pub drop_ratio: f32,
    /// Half-life of what was learnt about a size (its latency ratio, the p95 it was left at).
    pub memory_half_life: Duration,
}

impl LadderConfig {
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
    pub const DEFAULT_MIN_SAMPLES: usize = 10;
    pub const DEFAULT_UP_HEADROOM: f32 = 0.7;
    pub const DEFAULT_UP_HOLD: Duration = Duration::from_secs(30);
    pub const DEFAULT_DROP_RATIO: f32 = 0.2;
    pub const DEFAULT_MEMORY_HALF_LIFE: Duration = Duration::from_secs(600);

    /// `sizes` and `budget` with the default window, samples, headroom, hold, drop ratio and
    /// half-life.
    pub fn new(sizes: Vec<u32>, budget: Duration) -> Self {
        Self {
            sizes,
            budget,
            window: Self::DEFAULT_WINDOW,
            min_samples: Self::DEFAULT_MIN_SAMPLES,
            up_headroom: Self::DEFAULT_UP_HEADROOM,
            up_hold: Self::DEFAULT_UP_HOLD,
            drop_ratio: Self::DEFAULT_DROP_RATIO,
            memory_half_life: Self::DEFAULT_MEMORY_HALF_LIFE,
        }
    }

    /// The ladder for `[detector]`: `input_sizes` are the effective ones (empty: the model's own
    /// `model_side` only), the budget is `latency_budget_ms`, else one over the sum of
    /// `camera_rates` (each camera's detector rate; `max_rate_hz` when there are none);
    /// `adapt = false` keeps only the largest size.
    pub fn from_detector(
        d: &DetectorConfig,
        input_sizes: &[u32],
        model_side: u32,
        camera_rates: impl IntoIterator<Item = f32>,
    ) -> Self {
        let mut sizes = if input_sizes.is_empty() {
            vec![model_side]
        } else {
            input_sizes.to_vec()
        };
        if !d.adapt {
            sizes.truncate(1);
        }
        let budget = match d.latency_budget_ms {
            Some(ms) => Duration::from_millis(u64::from(ms)),
            None => shared_interval(camera_rates, d.max_rate_hz),
        };
        Self::new(sizes, budget)
    }

    /// Every problem at once.
    pub fn validate(&self) -> Result<(), Problems> {
        let mut p = Problems::new();
        p.check(
            !self.sizes.is_empty()
                && self.sizes.windows(2).all(|w| w[0] > w[1])
                && self.sizes.iter().all(|s| *s > 0),
            "sizes",
            "must be non-empty, positive and strictly decreasing",
        );
        p.check(!self.budget.is_zero(), "budget", "must be positive");
        p.check(!self.window.is_zero(), "window", "must be positive");
        p.check(
            (1..=MAX_SAMPLES).contains(&self.min_samples),
            "min_samples",
            format!("must be 1..={MAX_SAMPLES}"),
        );
        p.check(
            self.up_headroom > 0.0 && self.up_headroom <= 1.0,
            "up_headroom",
            "must be in (0, 1]",
        );
        p.check(
            self.drop_ratio > 0.0 && self.drop_ratio <= 1.0,
            "drop_ratio",
            "must be in (0, 1]",
        );
        p.into_result(())
    }
}

/// One over the sum of the rates (1 ms to 10 s): the interval that keeps every camera at its
/// rate on one shared detector.
fn shared_interval(rates: impl IntoIterator<Item = f32>, fallback_hz: f32) -> Duration {
    let total: f64 = rates
        .into_iter()
        .map(f64::from)
        .filter(|r| r.is_finite() && *r > 0.0)
        .sum();
    let hz = if total > 0.0 {
        total
    } else {
        f64::from(fallback_hz)
    };
    Duration::try_from_secs_f64((1.0 / hz).clamp(0.001, 10.0)).unwrap_or(Duration::from_secs(1))
}

/// The controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum LadderError {
    #[error("invalid input-size ladder:\n{0}")]
    Config(Problems),
}

#[cfg(test)]
mod tests {
    use super::super::Ladder;
    use super::*;

    fn config(sizes: &[u32]) -> LadderConfig {
        LadderConfig::new(sizes.to_vec(), Duration::from_millis(100))
    }

    #[test]
    fn invalid_settings_are_reported_together() {
        let mut c = config(&[320, 640]);
        c.budget = Duration::ZERO;
        c.min_samples = 0;
        c.up_headroom = 1.5;
        c.drop_ratio = f32::NAN;
        let p = c.validate().expect_err("invalid");
        for field in [
            "sizes",
            "budget",
            "min_samples",
            "up_headroom",
            "drop_ratio",
        ] {
            assert!(p.iter().any(|l| l.starts_with(field)), "{field}: {p}");
        }
        assert_eq!(p.len(), 5, "{p}");
        assert!(Ladder::new(config(&[]), 0).is_err());
        assert!(Ladder::new(config(&[640, 640]), 0).is_err());
        assert!(
            Ladder::new(config(&[300]), 0).is_ok(),
            "the model's own side"
        );
    }

    fn detector(extra: &str) -> DetectorConfig {
        toml::from_str(&format!("manifest = \"m.toml\"\n{extra}")).expect("detector")
    }

    #[test]
    fn from_detector_shares_the_detector_between_the_cameras() {
        let c = LadderConfig::from_detector(&detector(""), &[640, 480], 640, [5.0, 5.0]);
        assert_eq!(
            (c.sizes.clone(), c.budget),
            (vec![640, 480], Duration::from_millis(100))
        );
        let c = LadderConfig::from_detector(&detector("max_rate_hz = 4.0"), &[], 416, []);
        assert_eq!(
            (c.sizes.clone(), c.budget),
            (vec![416], Duration::from_millis(250))
        );
        let d = detector("latency_budget_ms = 80\nadapt = false");
        let c = LadderConfig::from_detector(&d, &[640, 480], 640, [5.0, 2.0]);
        assert_eq!(
            (c.sizes.clone(), c.budget),
            (vec![640], Duration::from_millis(80))
        );
        assert_eq!(c.window, LadderConfig::DEFAULT_WINDOW);
        assert!(c.validate().is_ok());
    }
}
