//! Adaptive input size: the detector's ladder of input sides (largest first) and the controller
//! that picks the rung. I/O-free and clocked from outside (monotonic microseconds): the detector
//! service reports runs ([`Ladder::ran`]), frames offered ([`Ladder::offered`]) and the thermal
//! state ([`Ladder::throttled`]), calls [`Ladder::tick`], and logs, counts and shows each
//! [`Change`].
//!
//! The policy, one size per step:
//! - **down** when, over the last `window`, the p95 of the runs at the current size exceeds the
//!   budget (at least `min_samples` runs), or at least `drop_ratio` of the frames offered (at least
//!   `min_samples`) were dropped because the detector was busy, or the device is throttled;
//! - **up** when the p95 predicted at the next larger size stays within `budget × up_headroom`
//!   for that size's hold (`up_hold`), with (almost) no drops and no throttling. The prediction
//!   scales the current p95 by the ratio of the two sizes' p95s measured across the last change
//!   between them (by the pixel ratio until one was measured). A size left for drops must also
//!   predict within `up_headroom` of the p95 it was left at. What was learnt relaxes towards the
//!   prior (pixel ratio, plain budget) with a half-life of `memory_half_life`, so a load that
//!   eases is tried again; a step up undone for latency or drops within two windows plus its hold
//!   doubles that size's hold and half-life (up to 64 times), so a steady load does not oscillate;
//! - after a change the window starts empty (runs at the old size say nothing about the new one)
//!   and nothing is decided for one `window`. A ladder of one size never changes.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use cascade_shared::clock::micros;

mod config;

pub use config::{LadderConfig, LadderError};

/// Most runs kept in the window (the p95 of the latest ones).
const MAX_SAMPLES: usize = 256;
/// Most offers kept in the window.
const MAX_OFFERS: usize = 1024;
/// Failed step ups that still double a size's hold and half-life.
const MAX_FAILURES: u32 = 6;
/// A step up needs the dropped share under this part of `drop_ratio`.
const UP_DROP_PART: f32 = 0.25;

/// Why the size changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reason {
    /// The p95 over the window exceeded the budget.
    Latency { p95: Duration },
    /// This share of the offered frames was dropped as busy.
    Drops { ratio: f32 },
    /// The device is thermally throttled.
    Thermal,
    /// The p95 at the old size, and that predicted at the new one, left room for the larger.
    Headroom { p95: Duration, predicted: Duration },
}

impl Reason {
    /// A metric label: `latency`, `drops`, `thermal` or `headroom`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Latency { .. } => "latency",
            Self::Drops { .. } => "drops",
            Self::Thermal => "thermal",
            Self::Headroom { .. } => "headroom",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        match self {
            Self::Latency { p95 } => write!(f, "p95 {:.1} ms over the budget", ms(p95)),
            Self::Drops { ratio } => write!(f, "{:.0} % of frames dropped", ratio * 100.0),
            Self::Thermal => f.write_str("thermally throttled"),
            Self::Headroom { p95, predicted } => write!(
                f,
                "headroom: p95 {:.1} ms, {:.1} ms predicted at the larger size",
                ms(p95),
                ms(predicted)
            ),
        }
    }
}

/// A step from one size to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub from: u32,
    pub to: u32,
    pub reason: Reason,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "input size {} -> {}: {}",
            self.from, self.to, self.reason
        )
    }
}

/// Timed values, at most `cap`, the oldest dropped first.
#[derive(Debug, Clone)]
struct Window<T> {
    items: VecDeque<(i64, T)>,
    cap: usize,
}

impl<T: Copy> Window<T> {
    fn new(cap: usize) -> Self {
        Self {
            items: VecDeque::with_capacity(cap),
            cap,
        }
    }

    fn push(&mut self, at: i64, value: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back((at, value));
    }

    /// Forgets what came before `since`.
    fn prune(&mut self, since: i64) {
        while self.items.front().is_some_and(|(at, _)| *at < since) {
            self.items.pop_front();
        }
    }

    fn clear(&mut self) {
        self.items.clear();
    }

    fn values(&self) -> impl Iterator<Item = T> + '_ {
        self.items.iter().map(|(_, v)| *v)
    }
}

/// Something learnt at a time, relaxing towards a prior.
#[derive(Debug, Clone, Copy)]
struct Learnt {
    value: f64,
    at: i64,
}

/// `learnt` moved towards `prior` by the halves of `half_life` since it was learnt.
fn relax(learnt: Learnt, prior: f64, now: i64, half_life: Duration) -> f64 {
    let hl = micros(half_life);
    if hl == 0 {
        return prior;
    }
    let halves = (now.saturating_sub(learnt.at).max(0) as f64) / hl as f64;
    prior + (learnt.value - prior) * 0.5f64.powf(halves)
}

/// The p95 at the size left by the last change, to learn the two sizes' ratio from.
#[derive(Debug, Clone, Copy)]
struct Pending {
    from: usize,
    p95: Duration,
}

/// The controller: which input size the detector runs at. See the module doc for the policy.
#[derive(Debug, Clone)]
pub struct Ladder {
    cfg: LadderConfig,
    index: usize,
    runs: Window<Duration>,
    offers: Window<bool>,
    throttled: bool,
    changed_at: i64,
    came_up: bool,
    /// A run at the current size has finished since the last change: drops before it are the
    /// old size's (its last run kept the detector busy).
    ran_since_change: bool,
    headroom_since: Option<i64>,
    pending: Option<Pending>,
    /// Per pair (`i`, `i + 1`): p95 at `sizes[i]` over p95 at `sizes[i + 1]`.
    ratios: Vec<Option<Learnt>>,
    /// Per size: the p95 (seconds) it had when it was left for drops.
    left_for_drops: Vec<Option<Learnt>>,
    /// Per size: step ups into it undone soon after, in a row.
    failures: Vec<u32>,
}

impl Ladder {
    /// Starts at the largest size at `now_us`.
    pub fn new(cfg: LadderConfig, now_us: i64) -> Result<Self, LadderError> {
        cfg.validate().map_err(LadderError::Config)?;
        let n = cfg.sizes.len();
        Ok(Self {
            cfg,
            index: 0,
            runs: Window::new(MAX_SAMPLES),
            offers: Window::new(MAX_OFFERS),
            throttled: false,
            changed_at: now_us,
            came_up: false,
            ran_since_change: true,
            headroom_since: None,
            pending: None,
            ratios: vec![None; n - 1],
            left_for_drops: vec![None; n],
            failures: vec![0; n],
        })
    }

    /// The input side to run at now.
    pub fn size(&self) -> u32 {
        self.cfg.sizes[self.index]
    }

    /// The current size's place in the ladder (0: the largest).
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn config(&self) -> &LadderConfig {
        &self.cfg
    }

    /// The p95 of the runs in the window, when there are at least `min_samples`.
    pub fn p95(&self) -> Option<Duration> {
        let mut v: Vec<Duration> = self.runs.values().collect();
        if v.len() < self.cfg.min_samples {
            return None;
        }
        v.sort_unstable();
        let rank = (v.len() * 95).div_ceil(100).max(1);
        v.get(rank - 1).copied()
    }

    /// One detector run at `size` that took `latency`, finished at `now_us`. A run at another
    /// size than the current one (started before a change) is ignored.
    pub fn ran(&mut self, now_us: i64, size: u32, latency: Duration) {
        if size == self.size() {
            self.runs.push(now_us, latency);
            self.ran_since_change = true;
        }
    }

    /// A frame offered to the detector at `now_us`; `dropped` when it was dropped as busy.
    /// Ignored after a change until the first run at the new size has finished.
    pub fn offered(&mut self, now_us: i64, dropped: bool) {
        if self.ran_since_change {
            self.offers.push(now_us, dropped);
        }
    }

    /// The device's thermal state, from outside.
    pub fn throttled(&mut self, _now_us: i64, yes: bool) {
        if yes != self.throttled {
            self.throttled = yes;
            self.headroom_since = None;
            // Measurements across a change of the thermal state say nothing about the sizes.
            self.pending = None;
        }
    }

    /// Decides at `now_us`: at most one step, and none within a window of the last.
    pub fn tick(&mut self, now_us: i64) -> Option<Change> {
        let since = now_us.saturating_sub(micros(self.cfg.window));
        self.runs.prune(since);
        self.offers.prune(since);
        if self.cfg.sizes.len() < 2 || since < self.changed_at {
            return None;
        }
        let p95 = self.p95();
        if let Some(p95) = p95 {
            self.learn(now_us, p95);
        }
        if let Some(reason) = self.overload(p95) {
            let to = self.index + 1;
            return Some(self.change(now_us, to, reason, p95));
        }
        self.headroom(now_us, p95)
    }

    /// The dropped share of the offers in the window, when there are at least `min_samples`.
    fn drop_share(&self) -> Option<f32> {
        let (offers, dropped) = self
            .offers
            .values()
            .fold((0usize, 0usize), |(o, d), x| (o + 1, d + usize::from(x)));
        (offers >= self.cfg.min_samples).then(|| dropped as f32 / offers as f32)
    }

    /// Why to step down, if there is a smaller size.
    fn overload(&self, p95: Option<Duration>) -> Option<Reason> {
        if self.index + 1 >= self.cfg.sizes.len() {
            return None;
        }
        if self.throttled {
            return Some(Reason::Thermal);
        }
        if let Some(p95) = p95.filter(|p| *p > self.cfg.budget) {
            return Some(Reason::Latency { p95 });
        }
        self.drop_share()
            .filter(|r| *r >= self.cfg.drop_ratio)
            .map(|ratio| Reason::Drops { ratio })
    }

    /// Steps up once the larger size has been predicted to fit for its hold.
    fn headroom(&mut self, now: i64, p95: Option<Duration>) -> Option<Change> {
        let room = match p95 {
            Some(p95) if self.index > 0 && !self.throttled && self.few_drops() => {
                let predicted = self.predicted(now, p95);
                (predicted <= self.limit(now)).then_some((p95, predicted))
            }
            _ => None,
        };
        let Some((p95, predicted)) = room else {
            self.headroom_since = None;
            return None;
        };
        let since = *self.headroom_since.get_or_insert(now);
        if now.saturating_sub(since) < micros(self.hold(self.index - 1)) {
            return None;
        }
        let predicted = Duration::try_from_secs_f64(predicted).unwrap_or(Duration::MAX);
        let reason = Reason::Headroom { p95, predicted };
        Some(self.change(now, self.index - 1, reason, Some(p95)))
    }

    fn few_drops(&self) -> bool {
        self.drop_share()
            .is_none_or(|r| r < self.cfg.drop_ratio * UP_DROP_PART)
    }

    /// The p95 (seconds) expected at the next larger size.
    fn predicted(&self, now: i64, p95: Duration) -> f64 {
        let up = self.index - 1;
        let pixels = f64::from(self.cfg.sizes[up]) / f64::from(self.cfg.sizes[self.index]);
        let prior = pixels * pixels;
        let ratio = self.ratios[up].map_or(prior, |l| relax(l, prior, now, self.half_life(up)));
        p95.as_secs_f64() * ratio.max(1.0)
    }

    /// The most p95 (seconds) the next larger size may be predicted at to step up.
    fn limit(&self, now: i64) -> f64 {
        let up = self.index - 1;
        let headroom = f64::from(self.cfg.up_headroom);
        let base = self.cfg.budget.as_secs_f64() * headroom;
        self.left_for_drops[up].map_or(base, |l| {
            let left = Learnt {
                value: l.value * headroom,
                ..l
            };
            base.min(relax(left, base, now, self.half_life(up)))
        })
    }

    /// How long headroom must last to step up into `index`.
    fn hold(&self, index: usize) -> Duration {
        self.cfg.up_hold.saturating_mul(1 << self.failures[index])
    }

    fn half_life(&self, index: usize) -> Duration {
        self.cfg
            .memory_half_life
            .saturating_mul(1 << self.failures[index])
    }

    /// Learns the ratio of the two sizes' p95s from the first window after a change.
    fn learn(&mut self, now: i64, p95: Duration) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let (large, small) = if pending.from < self.index {
            (pending.p95, p95)
        } else {
            (p95, pending.p95)
        };
        if !small.is_zero() {
            let value = (large.as_secs_f64() / small.as_secs_f64()).max(1.0);
            self.ratios[pending.from.min(self.index)] = Some(Learnt { value, at: now });
        }
    }

    fn change(&mut self, now: i64, to: usize, reason: Reason, p95: Option<Duration>) -> Change {
        let from = self.index;
        if matches!(reason, Reason::Latency { .. } | Reason::Drops { .. }) {
            self.judge_last_step_up(now);
        }
        if let (Reason::Drops { .. }, Some(p95)) = (reason, p95) {
            let value = p95.as_secs_f64();
            self.left_for_drops[from] = Some(Learnt { value, at: now });
        }
        self.pending = match reason {
            Reason::Thermal => None,
            _ => p95.map(|p95| Pending { from, p95 }),
        };
        self.index = to;
        self.changed_at = now;
        self.came_up = to < from;
        self.ran_since_change = false;
        self.headroom_since = None;
        self.runs.clear();
        self.offers.clear();
        Change {
            from: self.cfg.sizes[from],
            to: self.cfg.sizes[to],
            reason,
        }
    }

    /// Leaving the current size as too slow: a failure of the step up that brought it, if that
    /// was recent, else a size that held (its failures forgotten).
    fn judge_last_step_up(&mut self, now: i64) {
        let i = self.index;
        let soon = micros(
            self.cfg
                .window
                .saturating_mul(2)
                .saturating_add(self.hold(i)),
        );
        self.failures[i] = if self.came_up && now.saturating_sub(self.changed_at) < soon {
            (self.failures[i] + 1).min(MAX_FAILURES)
        } else {
            0
        };
    }
}

#[cfg(test)]
mod tests;
