//! Per-device budgets: one device cannot take the analyzer from the others. Each device has two
//! token buckets, crops and bytes, refilled at the configured rates and holding [`BURST_S`]
//! seconds' worth. A crop over budget is acknowledged to the broker (it holds no memory here) but
//! neither stored nor receipted: its device keeps it and sends it again when its receipt times out,
//! which backs off. I/O-free; time is given.

use std::collections::HashMap;

/// Seconds of sustained rate a bucket holds (the burst a device may send at once).
pub const BURST_S: f64 = 10.0;
/// Devices tracked at most; idle (full) buckets are dropped first.
const MAX_DEVICES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    crops: f64,
    bytes: f64,
    at_us: i64,
}

#[derive(Debug)]
pub struct Budgets {
    crops_per_s: f64,
    bytes_per_s: f64,
    devices: HashMap<String, Bucket>,
}

impl Budgets {
    pub fn new(crops_per_s: f64, bytes_per_s: f64) -> Self {
        Self {
            crops_per_s,
            bytes_per_s,
            devices: HashMap::new(),
        }
    }

    fn full(&self, at_us: i64) -> Bucket {
        Bucket {
            crops: self.crops_per_s * BURST_S,
            bytes: self.bytes_per_s * BURST_S,
            at_us,
        }
    }

    /// Takes one crop of `bytes` from `device`'s budget at `now_us`; `false` when over budget
    /// (nothing is taken then).
    pub fn admit(&mut self, device: &str, bytes: usize, now_us: i64) -> bool {
        if self.devices.len() >= MAX_DEVICES && !self.devices.contains_key(device) {
            self.forget_idle(now_us);
        }
        let full = self.full(now_us);
        let (crops_per_s, bytes_per_s) = (self.crops_per_s, self.bytes_per_s);
        let b = self.devices.entry(device.to_string()).or_insert(full);
        let dt = (now_us - b.at_us).max(0) as f64 / 1e6;
        b.crops = (b.crops + dt * crops_per_s).min(full.crops);
        b.bytes = (b.bytes + dt * bytes_per_s).min(full.bytes);
        b.at_us = b.at_us.max(now_us);
        let cost = bytes as f64;
        if b.crops < 1.0 || b.bytes < cost.min(full.bytes) {
            return false;
        }
        b.crops -= 1.0;
        b.bytes -= cost;
        true
    }

    /// Drops buckets that have refilled (a device idle for the burst time starts full anyway).
    fn forget_idle(&mut self, now_us: i64) {
        let idle_us = (BURST_S * 1e6) as i64;
        self.devices.retain(|_, b| now_us - b.at_us < idle_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let mut b = Budgets::new(2.0, 1e9);
        let passed = (0..30).filter(|_| b.admit("a", 10, 0)).count();
        assert_eq!(passed, 20, "ten seconds' worth at once");
        assert!(!b.admit("a", 10, 0));
        assert!(b.admit("a", 10, S / 2), "one more after half a second");
        assert!(!b.admit("a", 10, S / 2));
        assert!(
            b.admit("other", 10, S / 2),
            "another device has its own budget"
        );
    }

    #[test]
    fn bytes_are_budgeted_too_and_one_large_crop_can_still_pass() {
        let mut b = Budgets::new(1000.0, 100_000.0);
        assert!(b.admit("a", 900_000, 0));
        assert!(!b.admit("a", 200_000, 0), "over the byte budget");
        assert!(b.admit("a", 200_000, 2 * S), "refilled");
        let mut b = Budgets::new(1000.0, 65_536.0);
        assert!(
            b.admit("a", 4 << 20, 0),
            "a crop larger than the bucket passes when it is full"
        );
    }

    #[test]
    fn idle_devices_are_forgotten_when_the_table_is_full() {
        let mut b = Budgets::new(1.0, 1e6);
        b.admit("a", 1, 0);
        b.forget_idle(11 * S);
        assert!(b.devices.is_empty());
    }
}
