//! The circuit breaker in front of an inference server, I/O-free and clocked from outside: it
//! opens after `failures` failed requests in a row, lets one probe through (half-open) once
//! `cooldown` has passed, closes on the probe's success and opens again on its failure.

use std::time::{Duration, Instant};

/// Where the circuit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Requests go through.
    Closed,
    /// Requests wait until the cool-down ends.
    Open,
    /// The cool-down ended: the next request is the probe.
    HalfOpen,
}

impl CircuitState {
    /// For logs and the `state` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// The gauge's value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Breaker {
    failures_to_open: u32,
    cooldown: Duration,
    state: CircuitState,
    /// Failed requests in a row.
    failures: u32,
    /// When an open circuit lets its probe through.
    probe_at: Option<Instant>,
}

impl Breaker {
    /// `failures_to_open` is at least 1 (0 counts as 1).
    pub fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        Self {
            failures_to_open: failures_to_open.max(1),
            cooldown,
            state: CircuitState::Closed,
            failures: 0,
            probe_at: None,
        }
    }

    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// Failed requests in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When an open circuit lets its next probe through.
    pub fn probe_at(&self) -> Option<Instant> {
        self.probe_at
    }

    /// Whether a request may go at `now`: `Err(wait)` while the circuit is open. An open circuit
    /// whose cool-down has passed turns half-open and lets this request through as the probe.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        match (self.state, self.probe_at) {
            (CircuitState::Open, Some(at)) if now < at => Err(at - now),
            (CircuitState::Open, _) => {
                self.state = CircuitState::HalfOpen;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A request succeeded: the circuit closes.
    pub fn success(&mut self) {
        self.state = CircuitState::Closed;
        self.failures = 0;
        self.probe_at = None;
    }

    /// A request failed at `now` (after its retries): the circuit opens on the
    /// `failures_to_open`-th failure in a row, or at once when it was the half-open probe.
    pub fn failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.state == CircuitState::HalfOpen || self.failures >= self.failures_to_open {
            self.state = CircuitState::Open;
            self.probe_at = Some(now + self.cooldown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(5);

    #[test]
    fn opens_after_n_failures_in_a_row_and_waits_the_cooldown() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, COOL);
        for _ in 0..2 {
            assert_eq!(b.admit(t0), Ok(()));
            b.failure(t0);
            assert_eq!(b.state(), CircuitState::Closed);
        }
        b.failure(t0);
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.admit(t0), Err(COOL));
        let later = t0 + Duration::from_secs(1);
        assert_eq!(b.admit(later), Err(Duration::from_secs(4)), "still open");
        assert_eq!(b.state(), CircuitState::Open);
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, COOL);
        b.failure(t0);
        b.success();
        b.failure(t0);
        assert_eq!(b.state(), CircuitState::Closed, "not two in a row");
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn after_the_cooldown_one_probe_closes_or_reopens_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, COOL);
        b.failure(t0);
        let t1 = t0 + COOL;
        assert_eq!(b.admit(t1), Ok(()), "the probe goes");
        assert_eq!(b.state(), CircuitState::HalfOpen);
        b.failure(t1);
        assert_eq!(b.state(), CircuitState::Open, "a failed probe reopens");
        assert_eq!(b.probe_at(), Some(t1 + COOL), "for a whole cool-down");
        assert!(b.admit(t1 + Duration::from_secs(4)).is_err());

        let t2 = t1 + COOL;
        assert_eq!(b.admit(t2), Ok(()));
        b.success();
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!((b.failures(), b.probe_at()), (0, None));
        assert_eq!(b.admit(t2), Ok(()));
    }

    #[test]
    fn a_half_open_probe_failure_reopens_even_below_the_threshold() {
        let t0 = Instant::now();
        let mut b = Breaker::new(5, COOL);
        for _ in 0..5 {
            b.failure(t0);
        }
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.admit(t0 + COOL), Ok(()));
        b.failure(t0 + COOL);
        assert_eq!(b.state(), CircuitState::Open);
    }
}
