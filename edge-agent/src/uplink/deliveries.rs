//! The I/O-free record of where each sent crop stands, and what ends its journey: the analyzer's
//! receipt (`Delivery::Receipt`) or the broker's PUBACK (`Delivery::Puback`).
//!
//! A crop is sent, acknowledged by the broker (PUBACK: flow control only, it starts the receipt
//! timer), then delivered when a receipt names its message id. A crop whose receipt does not come
//! within the timeout is sent again; the timeout (for crops acknowledged from then on) doubles, up
//! to 16 times, while no receipt arrives at all (an analyzer that is down is not flooded), and is back to its base on the next receipt.
//! At most `window` crops are between sending and delivery, so what is sent again is bounded.
//! A new session forgets everything: the buffer is sent again from its oldest record.

use std::collections::{BTreeMap, HashMap};

use cascade_shared::config::edge::Delivery;
use cascade_shared::receipt::Receipt;

/// The receipt timeout grows to at most this many times its base.
const MAX_TIMEOUT_FACTOR: i64 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    InFlight,
    /// The broker acknowledged it; its receipt is awaited until this monotonic time.
    Awaiting(i64),
    /// Its receipt did not come: to be sent again.
    Resend,
}

#[derive(Debug)]
struct Sent {
    id: String,
    bytes: usize,
    word: bool,
    state: State,
}

/// A crop whose journey ended: delete it from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub key: u64,
    pub bytes: usize,
    /// A word about a track (no picture), not a crop.
    pub word: bool,
    /// The analyzer refused it for good (it keeps it among its dead letters).
    pub rejected: bool,
}

#[derive(Debug)]
pub struct Deliveries {
    mode: Delivery,
    window: usize,
    base_timeout_us: i64,
    timeout_us: i64,
    sent: BTreeMap<u64, Sent>,
    by_id: HashMap<String, u64>,
}

impl Deliveries {
    pub fn new(mode: Delivery, window: usize, timeout_us: i64) -> Self {
        Self {
            mode,
            window,
            base_timeout_us: timeout_us,
            timeout_us,
            sent: BTreeMap::new(),
            by_id: HashMap::new(),
        }
    }

    pub fn mode(&self) -> Delivery {
        self.mode
    }

    /// The receipt timeout now, in seconds.
    pub fn timeout_s(&self) -> f64 {
        self.timeout_us as f64 / 1e6
    }

    /// A new session: nothing is known to be on its way any more.
    pub fn reset(&mut self) {
        self.sent.clear();
        self.by_id.clear();
    }

    /// How many more crops may be sent now.
    pub fn room(&self) -> usize {
        self.window.saturating_sub(self.sent.len())
    }

    /// Crops acknowledged by the broker and awaiting their receipt.
    pub fn awaiting(&self) -> usize {
        self.count(|s| matches!(s, State::Awaiting(_)))
    }

    fn count(&self, f: impl Fn(State) -> bool) -> usize {
        self.sent.values().filter(|s| f(s.state)).count()
    }

    /// Keys of crops to send again, oldest first, at most `limit`.
    pub fn to_resend(&self, limit: usize) -> Vec<u64> {
        let keys = self.sent.iter().filter(|(_, s)| s.state == State::Resend);
        keys.map(|(k, _)| *k).take(limit).collect()
    }

    /// A crop to send again is no longer in the buffer (evicted): forget it.
    pub fn forget(&mut self, key: u64) {
        if let Some(s) = self.sent.remove(&key) {
            self.by_id.remove(&s.id);
        }
    }

    /// `key` (message `id`, `bytes` on the wire; a `word` about a track or a crop) was handed to
    /// the connection.
    pub fn sent(&mut self, key: u64, id: &str, bytes: usize, word: bool) {
        let state = State::InFlight;
        self.sent.insert(
            key,
            Sent {
                id: id.to_string(),
                bytes,
                word,
                state,
            },
        );
        self.by_id.insert(id.to_string(), key);
    }

    /// The broker's PUBACK for `key` at monotonic `now_us`: delivered under `puback`, else the
    /// receipt timer starts.
    pub fn puback(&mut self, key: u64, now_us: i64) -> Option<Done> {
        let s = self.sent.get_mut(&key)?;
        if s.state != State::InFlight {
            return None;
        }
        if self.mode == Delivery::Puback {
            return self.done(key, false);
        }
        s.state = State::Awaiting(now_us.saturating_add(self.timeout_us));
        None
    }

    /// A receipt: the crops it names that we sent, to delete (late receipts for crops of an
    /// earlier session name nothing here; those crops are sent again and named again).
    pub fn receipt(&mut self, r: &Receipt) -> Vec<Done> {
        self.timeout_us = self.base_timeout_us;
        let stored = r.stored.iter().map(|id| (id, false));
        let named = stored.chain(r.rejected.iter().map(|id| (id, true)));
        let keys: Vec<(u64, bool)> = named
            .filter_map(|(id, rejected)| Some((*self.by_id.get(id)?, rejected)))
            .collect();
        keys.into_iter()
            .filter_map(|(key, rejected)| self.done(key, rejected))
            .collect()
    }

    fn done(&mut self, key: u64, rejected: bool) -> Option<Done> {
        let s = self.sent.remove(&key)?;
        self.by_id.remove(&s.id);
        Some(Done {
            key,
            bytes: s.bytes,
            word: s.word,
            rejected,
        })
    }

    /// When the next receipt times out (monotonic us), if any is awaited.
    pub fn next_deadline(&self) -> Option<i64> {
        let deadlines = self.sent.values().filter_map(|s| match s.state {
            State::Awaiting(deadline) => Some(deadline),
            _ => None,
        });
        deadlines.min()
    }

    /// Marks every crop whose receipt is overdue at `now_us` to be sent again; returns how many.
    /// The timeout of crops acknowledged from now on doubles (to at most 16 times its base) until
    /// a receipt arrives.
    pub fn expire(&mut self, now_us: i64) -> usize {
        let mut n = 0;
        for s in self.sent.values_mut() {
            if let State::Awaiting(deadline) = s.state
                && now_us >= deadline
            {
                s.state = State::Resend;
                n += 1;
            }
        }
        if n > 0 {
            let cap = self.base_timeout_us.saturating_mul(MAX_TIMEOUT_FACTOR);
            self.timeout_us = self.timeout_us.saturating_mul(2).min(cap);
        }
        n
    }
}

#[cfg(test)]
mod tests;
