//! Capped exponential backoff with jitter, for every task that retries (uplink, ingest, cameras).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    min: Duration,
    max: Duration,
}

impl Backoff {
    /// 0.25 s doubling up to `max`.
    pub fn new(max: Duration) -> Self {
        Self::between(Duration::from_millis(250), max)
    }

    /// `min` doubling up to `max`.
    pub fn between(min: Duration, max: Duration) -> Self {
        Self {
            attempt: 0,
            min,
            max: max.max(min),
        }
    }

    /// After a success: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failures since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The next delay: `min` doubling up to the cap, each scaled by a random 0.75-1.25 (never
    /// above the cap), so that many clients do not retry in step.
    pub fn next_delay(&mut self) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = 0.75 + rand::random::<f64>() * 0.5;
        base.mul_f64(jitter).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::between(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(75) && d[0] <= Duration::from_millis(125));
        assert!(d[2] >= Duration::from_millis(300) && d[2] <= Duration::from_millis(500));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(1)));
        assert!(d[7] >= Duration::from_millis(750));
        assert_eq!(b.attempts(), 8);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
    }
}
