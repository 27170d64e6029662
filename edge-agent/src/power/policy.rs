//! When to switch: I/O-free and clocked from outside (monotonic microseconds), like the
//! detector's ladder. The task calls [`Policy::tick`] with the latest activity time (motion or a
//! tracked person, any camera) and applies the [`Change`] it returns.
//!
//! - **high at once** when something was seen after the switch to low (no dwell: a person in view
//!   is never detected slowly to save power);
//! - **low** when nothing was seen for `idle` (counted from the start when nothing was seen yet)
//!   and the high mode has lasted at least `min_dwell`.
//!
//! The two conditions are the hysteresis: going low needs a whole `idle` of quiet, going high one
//! sighting, so activity that comes and goes faster than `idle` keeps the high mode, and two
//! switches to low are at least `max(idle, min_dwell)` apart.

use std::fmt;
use std::time::Duration;

use cascade_shared::clock::micros;

/// The two states the policy moves between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    High,
    Low,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Low => "low",
        }
    }
}

/// Why the mode changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Motion or a tracked person.
    Activity,
    /// Nothing seen for the idle time.
    Idle,
    /// The agent stops: the state it found is put back.
    Shutdown,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Self::Activity => "activity",
            Self::Idle => "idle",
            Self::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Activity => "motion or a tracked person",
            Self::Idle => "nothing seen for the idle time",
            Self::Shutdown => "the agent stops: restoring the mode it found",
        })
    }
}

/// A switch the task should make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub from: Level,
    pub to: Level,
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyConfig {
    pub idle: Duration,
    pub min_dwell: Duration,
}

#[derive(Debug, Clone)]
pub struct Policy {
    idle_us: i64,
    dwell_us: i64,
    level: Level,
    /// When the current level began (the start counts).
    since_us: i64,
    started_us: i64,
    /// Activity at or after this time switches to high.
    low_since_us: i64,
}

impl Policy {
    /// Starts at `level` (what the device was found in) at `now_us`. Found low, any activity
    /// switches it high.
    pub fn new(cfg: PolicyConfig, level: Level, now_us: i64) -> Self {
        Self {
            idle_us: micros(cfg.idle).max(1),
            dwell_us: micros(cfg.min_dwell),
            level,
            since_us: now_us,
            started_us: now_us,
            low_since_us: i64::MIN,
        }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// The change to make at `now_us`, given the latest activity (`None`: nothing seen yet).
    pub fn tick(&mut self, now_us: i64, last_activity_us: Option<i64>) -> Option<Change> {
        let to = match self.level {
            Level::Low if last_activity_us.is_some_and(|a| a >= self.low_since_us) => {
                (Level::High, Reason::Activity)
            }
            Level::High
                if self.quiet_for(now_us, last_activity_us) >= self.idle_us
                    && now_us - self.since_us >= self.dwell_us =>
            {
                (Level::Low, Reason::Idle)
            }
            _ => return None,
        };
        let change = Change {
            from: self.level,
            to: to.0,
            reason: to.1,
        };
        self.level = to.0;
        self.since_us = now_us;
        if to.0 == Level::Low {
            self.low_since_us = now_us;
        }
        Some(change)
    }

    fn quiet_for(&self, now_us: i64, last_activity_us: Option<i64>) -> i64 {
        now_us - last_activity_us.unwrap_or(i64::MIN).max(self.started_us)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const S: i64 = 1_000_000;

    fn policy(level: Level) -> Policy {
        let cfg = PolicyConfig {
            idle: Duration::from_secs(60),
            min_dwell: Duration::from_secs(30),
        };
        Policy::new(cfg, level, 0)
    }

    #[test]
    fn idle_goes_low_after_the_idle_time_and_not_before() {
        let mut p = policy(Level::High);
        assert_eq!(p.tick(59 * S, None), None);
        let c = p.tick(60 * S, None).expect("low");
        assert_eq!((c.to, c.reason), (Level::Low, Reason::Idle));
        // Activity at 10 s restarts the count.
        let mut p = policy(Level::High);
        assert_eq!(p.tick(60 * S, Some(10 * S)), None);
        assert_eq!(p.tick(70 * S, Some(10 * S)).map(|c| c.to), Some(Level::Low));
    }

    #[test]
    fn motion_goes_high_at_once() {
        let mut p = policy(Level::High);
        p.tick(60 * S, None).expect("low");
        assert_eq!(p.tick(61 * S, None), None);
        let c = p.tick(61 * S, Some(61 * S)).expect("high");
        assert_eq!(
            (c.from, c.to, c.reason),
            (Level::Low, Level::High, Reason::Activity)
        );
        // Found low at start: anything seen goes high.
        let mut p = policy(Level::Low);
        assert_eq!(p.tick(S, Some(-5)).map(|c| c.to), Some(Level::High));
    }

    #[test]
    fn the_high_mode_lasts_at_least_the_dwell() {
        let cfg = PolicyConfig {
            idle: Duration::from_secs(1),
            min_dwell: Duration::from_secs(30),
        };
        let mut p = Policy::new(cfg, Level::Low, 0);
        p.tick(S, Some(S)).expect("high");
        assert_eq!(p.tick(10 * S, Some(S)), None, "idle, but not the dwell");
        assert_eq!(p.tick(31 * S, Some(S)).map(|c| c.to), Some(Level::Low));
    }

    proptest! {
        /// Under any activity (bursts, alternation, silence), switching never flaps: high at once
        /// on activity, low only after a whole idle time of quiet and the dwell, and two switches
        /// to low at least max(idle, dwell) apart.
        #[test]
        fn never_flaps(
            steps in proptest::collection::vec((1i64..20_000, any::<bool>()), 1..400),
            idle_ms in 100u64..5_000,
            dwell_ms in 0u64..5_000,
        ) {
            let cfg = PolicyConfig {
                idle: Duration::from_millis(idle_ms),
                min_dwell: Duration::from_millis(dwell_ms),
            };
            let (idle, dwell) = (idle_ms as i64 * 1000, dwell_ms as i64 * 1000);
            let mut p = Policy::new(cfg, Level::High, 0);
            let (mut now, mut last, mut high_at, mut low_at) = (0i64, None, 0i64, None::<i64>);
            for (dt_ms, seen) in steps {
                now += dt_ms * 1000;
                if seen {
                    last = Some(now);
                }
                let change = p.tick(now, last);
                if seen {
                    prop_assert_eq!(p.level(), Level::High, "activity at {} left it low", now);
                }
                match change.map(|c| c.to) {
                    Some(Level::Low) => {
                        let quiet = now - last.unwrap_or(0).max(0);
                        prop_assert!(quiet >= idle, "low after {} us quiet", quiet);
                        prop_assert!(now - high_at >= dwell, "low after {} us high", now - high_at);
                        if let Some(before) = low_at {
                            prop_assert!(now - before >= idle.max(dwell));
                        }
                        low_at = Some(now);
                    }
                    Some(Level::High) => {
                        prop_assert!(seen, "high without activity");
                        high_at = now;
                    }
                    None => {}
                }
            }
        }

        /// Activity that comes back within the idle time keeps the high mode: no change at all.
        #[test]
        fn alternating_motion_faster_than_idle_never_switches(
            gaps in proptest::collection::vec(1i64..500, 1..300),
        ) {
            let cfg = PolicyConfig { idle: Duration::from_secs(1), min_dwell: Duration::ZERO };
            let mut p = Policy::new(cfg, Level::High, 0);
            let (mut now, mut last) = (0, 0);
            for (i, gap) in gaps.into_iter().enumerate() {
                now += gap * 1000;
                if i % 2 == 0 {
                    last = now;
                }
                prop_assert_eq!(p.tick(now, Some(last)), None);
            }
        }
    }
}
