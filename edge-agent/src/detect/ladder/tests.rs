use proptest::prelude::*;

use super::*;

const MS: i64 = 1_000;
const S: i64 = 1_000_000;
const MIN: i64 = 60 * S;
const BUDGET: Duration = Duration::from_millis(100);
const WINDOW: i64 = 10 * S;
const HOLD: i64 = 30 * S;

/// What the detector sees: each run's mean time (seconds) at a size and time, the share of
/// frames whose slot is taken anyway (a slow post stage), and the thermal state.
struct World {
    latency: Box<dyn Fn(u32, i64) -> f64>,
    /// Each run's time is the mean times (1 + noise × u), u uniform in [-1, 1].
    noise: f64,
    forced_drops: Box<dyn Fn(u32, i64) -> f64>,
    throttled: Box<dyn Fn(i64) -> bool>,
}

impl World {
    fn steady(latency: impl Fn(u32) -> f64 + 'static) -> Self {
        Self {
            latency: Box::new(move |s, _| latency(s)),
            noise: 0.05,
            forced_drops: Box::new(|_, _| 0.0),
            throttled: Box::new(|_| false),
        }
    }
}

/// One detector fed a frame every `interval` (busy: dropped), ticked every second.
struct Sim {
    ladder: Ladder,
    world: World,
    interval: i64,
    rng: u64,
    running: Option<(i64, u32, Duration)>,
    next_offer: i64,
    next_tick: i64,
    changes: Vec<(i64, Change)>,
}

impl Sim {
    fn new(cfg: LadderConfig, world: World, seed: u64) -> Self {
        Self {
            interval: micros(cfg.budget),
            ladder: Ladder::new(cfg, 0).expect("valid"),
            world,
            rng: seed | 1,
            running: None,
            next_offer: 0,
            next_tick: S,
            changes: Vec::new(),
        }
    }

    /// Uniform in [0, 1) (xorshift).
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Runs the world until `until` (microseconds).
    fn run(&mut self, until: i64) {
        loop {
            let end = self.running.map_or(i64::MAX, |r| r.0);
            let t = end.min(self.next_offer).min(self.next_tick);
            if t >= until {
                return;
            }
            if let Some((_, size, latency)) = self.running.filter(|r| r.0 == t) {
                self.running = None;
                self.ladder.ran(t, size, latency);
            } else if t == self.next_tick {
                self.ladder.throttled(t, (self.world.throttled)(t));
                if let Some(c) = self.ladder.tick(t) {
                    self.changes.push((t, c));
                }
                self.next_tick += S;
            } else {
                self.offer(t);
            }
        }
    }

    fn offer(&mut self, t: i64) {
        let size = self.ladder.size();
        let forced = self.uniform() < (self.world.forced_drops)(size, t);
        let busy = self.running.is_some();
        self.ladder.offered(t, busy || forced);
        if !busy && !forced {
            let u = self.uniform() * 2.0 - 1.0;
            let secs = (self.world.latency)(size, t) * (1.0 + self.world.noise * u);
            let latency = Duration::from_secs_f64(secs.max(0.0));
            self.running = Some((t + micros(latency), size, latency));
        }
        self.next_offer += self.interval;
    }

    fn ups(&self) -> Vec<i64> {
        let up = |c: &Change| matches!(c.reason, Reason::Headroom { .. });
        self.changes
            .iter()
            .filter(|(_, c)| up(c))
            .map(|(t, _)| *t)
            .collect()
    }
}

fn cfg(sizes: &[u32]) -> LadderConfig {
    LadderConfig::new(sizes.to_vec(), BUDGET)
}

/// `mean` seconds at `largest`, scaled by pixels.
fn by_pixels(largest: u32, mean: f64) -> impl Fn(u32) -> f64 + Copy {
    move |s| mean * (f64::from(s) / f64::from(largest)).powi(2)
}

/// By when a ladder started at the top must have stepped down to `sizes[to]`: per step a window,
/// or (if longer) the old size's last run, the new size's first and a second of offers; and a
/// tick.
fn deadline(latency: impl Fn(u32) -> f64, sizes: &[u32], to: usize) -> i64 {
    let run = |i: usize| micros(Duration::from_secs_f64(latency(sizes[i]) * 1.05));
    (1..=to)
        .map(|i| WINDOW.max(run(i - 1) + run(i) + 2 * S) + S)
        .sum()
}

fn reasons(sim: &Sim) -> Vec<(u32, u32, &'static str)> {
    let r = |c: &Change| (c.from, c.to, c.reason.label());
    sim.changes.iter().map(|(_, c)| r(c)).collect()
}

/// Found by the overload property: a top size so slow that one run takes many minutes still
/// reaches the cheapest size, given the time its runs take.
#[test]
fn a_very_slow_top_size_still_reaches_the_cheapest() {
    let sizes = [1120, 992, 576, 192, 64];
    let latency = by_pixels(64, 18.95 * BUDGET.as_secs_f64());
    let mut sim = Sim::new(
        cfg(&sizes),
        World::steady(latency),
        3_431_522_250_918_097_600,
    );
    sim.run((30 * MIN).max(deadline(latency, &sizes, 4) + 10 * MIN));
    assert_eq!(sim.ladder.index(), 4, "{:?}", sim.changes);
}

#[test]
fn a_ladder_of_one_size_never_changes() {
    let mut world = World::steady(|_| 1.0);
    world.throttled = Box::new(|_| true);
    world.forced_drops = Box::new(|_, _| 0.9);
    let mut sim = Sim::new(cfg(&[320]), world, 7);
    sim.run(10 * MIN);
    assert!(sim.changes.is_empty(), "{:?}", sim.changes);
    assert_eq!(sim.ladder.size(), 320);
}

#[test]
fn samples_of_a_stale_size_are_ignored() {
    let mut l = Ladder::new(cfg(&[640, 480, 320]), 0).expect("valid");
    for i in 0..20 {
        l.ran(i * 100 * MS, 640, Duration::from_millis(200));
    }
    let c = l.tick(WINDOW).expect("too slow");
    assert_eq!((c.from, c.to, c.reason.label()), (640, 480, "latency"));
    assert_eq!(l.p95(), None, "the window starts empty");
    for i in 1..=40 {
        let t = WINDOW + i * 250 * MS;
        l.ran(t, 640, Duration::from_secs(1));
        l.ran(t, 320, Duration::from_secs(1));
        l.ran(t, 480, Duration::from_millis(50));
    }
    assert_eq!(l.p95(), Some(Duration::from_millis(50)));
    assert_eq!(l.tick(2 * WINDOW), None);
    assert_eq!(l.size(), 480);
}

#[test]
fn throttling_steps_down_and_release_steps_up_only_after_the_hold() {
    let mut world = World::steady(by_pixels(640, 0.010));
    world.throttled = Box::new(|t| (60 * S..200 * S).contains(&t));
    let mut sim = Sim::new(cfg(&[640, 480, 320]), world, 3);
    sim.run(10 * MIN);
    let at: Vec<i64> = sim.changes.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        reasons(&sim),
        [
            (640, 480, "thermal"),
            (480, 320, "thermal"),
            (320, 480, "headroom"),
            (480, 640, "headroom")
        ]
    );
    assert_eq!(
        &at[..2],
        [60 * S, 60 * S + WINDOW],
        "down at once, then a window apart"
    );
    assert_eq!(at[2], 200 * S + HOLD, "up after the hold");
    assert_eq!(at[3], at[2] + WINDOW + HOLD);
}

#[test]
fn a_burst_steps_down_and_the_quiet_after_it_steps_back_up() {
    let pixels = by_pixels(640, 0.050);
    let burst = |t: i64| {
        if (5 * MIN..15 * MIN).contains(&t) {
            3.0
        } else {
            1.0
        }
    };
    let world = World {
        latency: Box::new(move |s, t| pixels(s) * burst(t)),
        ..World::steady(|_| 0.0)
    };
    let mut sim = Sim::new(cfg(&[640, 480, 320]), world, 11);
    sim.run(40 * MIN);
    assert_eq!(
        reasons(&sim),
        [(640, 480, "latency"), (480, 640, "headroom")],
        "{:?}",
        sim.changes
    );
    let (down, up) = (sim.changes[0].0, sim.changes[1].0);
    assert!(
        (5 * MIN..5 * MIN + WINDOW + 2 * S).contains(&down),
        "{down}"
    );
    assert!(
        (15 * MIN + HOLD..15 * MIN + HOLD + 2 * WINDOW).contains(&up),
        "{up}"
    );
}

/// Asserts each gap between `times` is at least `factor` times the one before.
fn assert_gaps_grow(times: &[i64], factor: f64) {
    let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for g in gaps.windows(2) {
        assert!(g[1] as f64 >= g[0] as f64 * factor, "gaps {gaps:?}");
    }
}

#[test]
fn a_failed_step_up_is_learnt_and_retried_ever_more_rarely() {
    // 320 is ten times faster than 640, not the four the pixels predict.
    let mut world = World::steady(|s| if s == 640 { 0.150 } else { 0.015 });
    world.throttled = Box::new(|t| t < 100 * S);
    let mut sim = Sim::new(cfg(&[640, 320]), world, 5);
    sim.run(60 * MIN);
    assert_eq!(
        reasons(&sim),
        [
            (640, 320, "thermal"),
            (320, 640, "headroom"),
            (640, 320, "latency")
        ]
    );
    sim.run(6 * 60 * MIN);
    let ups = sim.ups();
    assert!(
        ups.len() >= 3 && sim.changes.len() <= 9,
        "{:?}",
        sim.changes
    );
    assert!(ups[1] - ups[0] > 60 * MIN, "{ups:?}");
    assert_gaps_grow(&ups, 1.8);
    assert_eq!(sim.ladder.size(), 320);
}

#[test]
fn a_size_left_for_drops_is_retried_ever_more_rarely() {
    let mut world = World::steady(|s| if s == 640 { 0.060 } else { 0.015 });
    world.forced_drops = Box::new(|s, _| if s == 640 { 0.4 } else { 0.0 });
    let mut sim = Sim::new(cfg(&[640, 320]), world, 9);
    sim.run(3 * 60 * MIN);
    let ups = sim.ups();
    assert!(ups.first().is_some_and(|t| *t > 14 * MIN), "{ups:?}");
    assert!(
        ups.len() >= 2 && sim.changes.len() <= 7,
        "{:?}",
        sim.changes
    );
    assert_gaps_grow(&ups, 1.8);
    let first = sim.changes[0].1;
    assert_eq!(
        (first.from, first.to, first.reason.label()),
        (640, 320, "drops")
    );
    assert!(first.to_string().contains("% of frames dropped"), "{first}");
}

/// Distinct multiples of 32 (64 to 1280), largest first, each at least 1.2 times the next's
/// pixels (closer sizes cannot be told apart through 5 % noise).
fn ladders() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::btree_set(2u32..=40, 1..7).prop_map(|set| {
        let mut sizes: Vec<u32> = Vec::new();
        for s in set.into_iter().rev().map(|s| s * 32) {
            let last = sizes.last().map_or(f64::INFINITY, |l| f64::from(*l));
            if (last / f64::from(s)).powi(2) >= 1.2 {
                sizes.push(s);
            }
        }
        sizes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Latency `a + k·size²` (± 5 %), frames at the budget's rate, for an hour: the ladder only
    /// steps down, once per size too slow, and stays on the largest size that fits.
    #[test]
    fn a_steady_load_settles_on_the_largest_size_that_fits(
        sizes in ladders(), pick in 0usize..7, overhead in 0.0f64..0.3, within in 0.15f64..0.85, seed in any::<u64>(),
    ) {
        let fit = pick % sizes.len();
        let (b, n) = (BUDGET.as_secs_f64(), 0.05);
        let a = overhead * b;
        let area = |i: usize| f64::from(sizes[i]).powi(2);
        let low = if fit == 0 { 0.0 } else { (b / (1.0 - n) - a) / area(fit - 1) };
        let high = (b / (1.0 + n) - a) / area(fit);
        prop_assume!(low < high);
        let k = low + (high - low) * within;
        let latency = move |s: u32| a + k * f64::from(s).powi(2);
        let mut sim = Sim::new(cfg(&sizes), World::steady(latency), seed);
        sim.run(60 * MIN);
        prop_assert_eq!(sim.ladder.size(), sizes[fit], "{:?}", sim.changes);
        prop_assert_eq!(sim.changes.len(), fit);
        prop_assert!(sim.changes.len() <= sizes.len());
        let last = sim.changes.last().map_or(0, |(t, _)| *t);
        prop_assert!(last <= deadline(latency, &sizes, fit), "settled at {}", last);
    }

    /// Even the smallest size too slow, or frames dropped anyway: down to the cheapest size
    /// within a window (and a tick) per step, and it stays there.
    #[test]
    fn overload_reaches_the_cheapest_size_and_stays(
        sizes in ladders(), slow in 1.2f64..20.0, drops in 0.4f64..0.9, by_drops in any::<bool>(), seed in any::<u64>(),
    ) {
        let steps = sizes.len() - 1;
        let smallest = slow * BUDGET.as_secs_f64();
        let latency = if by_drops {
            by_pixels(sizes[0], 0.01)
        } else {
            by_pixels(sizes[steps], smallest)
        };
        let mut world = World::steady(latency);
        if by_drops {
            world.forced_drops = Box::new(move |_, _| drops);
        }
        let mut sim = Sim::new(cfg(&sizes), world, seed);
        // Long enough to get there (a very slow top size takes minutes per run) and to stay.
        sim.run((30 * MIN).max(deadline(latency, &sizes, steps) + 10 * MIN));
        prop_assert_eq!(sim.ladder.index(), steps);
        prop_assert_eq!(sim.changes.len(), steps, "{:?}", sim.changes);
        let last = sim.changes.last().map_or(0, |(t, _)| *t);
        prop_assert!(last <= deadline(latency, &sizes, steps), "cheapest at {}", last);
    }

    /// Whatever is reported, in any order: one step at a time, a window apart, within the
    /// ladder, never up while throttled.
    #[test]
    fn any_input_keeps_the_invariants(
        sizes in ladders(),
        events in proptest::collection::vec((0i64..3_000, 0u8..4, 0usize..8, 0u64..400), 1..600),
    ) {
        let mut l = Ladder::new(cfg(&sizes), 0).expect("valid");
        let (mut now, mut last_change, mut throttled) = (0i64, 0i64, false);
        for (dt, kind, pick, value) in events {
            now += dt * MS;
            let size = sizes[pick % sizes.len()];
            match kind {
                0 => l.ran(now, size, Duration::from_millis(value)),
                1 => l.offered(now, value % 3 == 0),
                2 => { throttled = value % 5 == 0; l.throttled(now, throttled) }
                _ => {}
            }
            let before = l.index();
            let Some(c) = l.tick(now) else {
                prop_assert_eq!(l.index(), before);
                continue;
            };
            prop_assert_eq!(before.abs_diff(l.index()), 1);
            prop_assert_eq!((c.from, c.to), (sizes[before], l.size()));
            prop_assert!(now - last_change >= WINDOW, "{} then {}", last_change, now);
            prop_assert!(!throttled || l.index() > before, "up while throttled");
            last_change = now;
        }
    }
}
