//! Injected time. Production code asks a [`Clock`]; tests use [`ManualClock`] and need no sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock (UTC) and monotonic time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// UTC now, microseconds since the Unix epoch.
    fn now_utc_us(&self) -> i64;
    /// Monotonic now, microseconds since an arbitrary origin.
    fn monotonic_us(&self) -> i64;
    /// Blocks the calling (non-async) thread for `d`; a manual clock advances instead.
    fn sleep_blocking(&self, d: Duration);
}

pub type SharedClock = Arc<dyn Clock>;

/// `d` in microseconds, the unit clocks count in (saturating at `i64::MAX`).
pub fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_utc_us(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, micros)
    }

    fn monotonic_us(&self) -> i64 {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let origin = *ORIGIN.get_or_init(std::time::Instant::now);
        micros(origin.elapsed())
    }

    fn sleep_blocking(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock that moves only when told to (or when slept on). For tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    utc_us: AtomicI64,
    mono_us: AtomicI64,
}

impl ManualClock {
    pub fn new(utc_us: i64) -> Arc<Self> {
        Arc::new(Self {
            utc_us: AtomicI64::new(utc_us),
            mono_us: AtomicI64::new(0),
        })
    }

    pub fn advance(&self, d: Duration) {
        let us = micros(d);
        self.utc_us.fetch_add(us, Ordering::SeqCst);
        self.mono_us.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_utc_us(&self) -> i64 {
        self.utc_us.load(Ordering::SeqCst)
    }

    fn monotonic_us(&self) -> i64 {
        self.mono_us.load(Ordering::SeqCst)
    }

    fn sleep_blocking(&self, d: Duration) {
        self.advance(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_utc_us(), 1_000);
        c.sleep_blocking(Duration::from_millis(2));
        assert_eq!(c.now_utc_us(), 3_000);
        assert_eq!(c.monotonic_us(), 2_000);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_utc_us() > 1_577_836_800_000_000);
    }
}
