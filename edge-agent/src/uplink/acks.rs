//! The I/O-free acknowledgement tracker. The uplink assigns each QoS 1 publish its own packet id
//! from a window of `1..=window`, and an id is reused only after its PUBACK. A buffer record is
//! deleted only on the PUBACK of its packet id; after any reconnect everything unacknowledged is
//! forgotten here and sent again from the buffer (duplicates allowed, loss not).

use std::collections::HashMap;
use std::num::NonZeroU16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A buffered crop: its buffer key and payload size.
    Record { key: u64, bytes: usize },
    /// The retained status message.
    Status,
}

#[derive(Debug)]
pub struct AckTracker {
    window: u16,
    free: Vec<u16>,
    /// Each in-flight packet id: what it carries and when it was sent (monotonic us).
    inflight: HashMap<u16, (Slot, i64)>,
    /// Highest buffer key sent in this session; the next fill starts after it.
    cursor: u64,
}

impl AckTracker {
    pub fn new(window: NonZeroU16) -> Self {
        let mut t = Self {
            window: window.get(),
            free: Vec::new(),
            inflight: HashMap::new(),
            cursor: 0,
        };
        t.reset();
        t
    }

    /// Forgets every in-flight publish (connection lost or new session): all of it is resent.
    pub fn reset(&mut self) {
        self.inflight.clear();
        self.free = (1..=self.window).rev().collect();
        self.cursor = 0;
    }

    /// Packet ids still free.
    pub fn room(&self) -> usize {
        self.free.len()
    }

    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Takes a packet id for `slot` sent at `now_us`, or `None` when the window is full.
    pub fn send(&mut self, slot: Slot, now_us: i64) -> Option<u16> {
        let pkid = self.free.pop()?;
        if let Slot::Record { key, .. } = slot {
            self.cursor = self.cursor.max(key);
        }
        self.inflight.insert(pkid, (slot, now_us));
        Some(pkid)
    }

    /// When the longest-waiting publish was sent (a PUBACK that never comes stalls the window).
    pub fn oldest_sent_us(&self) -> Option<i64> {
        self.inflight.values().map(|(_, t)| *t).min()
    }

    /// A PUBACK arrived: what it acknowledges, if the id was in flight in this session.
    pub fn ack(&mut self, pkid: u16) -> Option<Slot> {
        let (slot, _) = self.inflight.remove(&pkid)?;
        self.free.push(pkid);
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use proptest::prelude::*;

    use super::*;

    fn window(n: u16) -> NonZeroU16 {
        NonZeroU16::new(n).expect("a positive window")
    }

    fn rec(key: u64) -> Slot {
        Slot::Record { key, bytes: 10 }
    }

    #[test]
    fn ids_are_reused_only_after_their_ack() {
        let mut t = AckTracker::new(window(2));
        let a = t.send(rec(1), 0).expect("room");
        let b = t.send(rec(2), 0).expect("room");
        assert_ne!(a, b);
        assert!(t.send(rec(3), 0).is_none(), "window full");
        assert_eq!(t.ack(b), Some(rec(2)));
        assert_eq!(t.ack(b), None, "a duplicate PUBACK acknowledges nothing");
        assert_eq!(t.send(rec(3), 0), Some(b));
        assert_eq!(t.cursor(), 3);
    }

    #[test]
    fn the_oldest_unacknowledged_send_is_known() {
        let mut t = AckTracker::new(window(4));
        assert_eq!(t.oldest_sent_us(), None);
        let a = t.send(rec(1), 100).expect("room");
        t.send(rec(2), 200).expect("room");
        assert_eq!(t.oldest_sent_us(), Some(100));
        t.ack(a);
        assert_eq!(t.oldest_sent_us(), Some(200));
    }

    #[test]
    fn reset_forgets_everything_in_flight() {
        let mut t = AckTracker::new(window(4));
        let a = t.send(rec(1), 0).expect("room");
        t.send(Slot::Status, 0).expect("room");
        t.reset();
        assert_eq!(
            t.ack(a),
            None,
            "a late PUBACK from the old session deletes nothing"
        );
        assert_eq!((t.room(), t.cursor()), (4, 0));
    }

    proptest! {
        /// Against a lossy broker that acks out of order and drops connections: every record is
        /// acknowledged (deleted) exactly once, and none is deleted without its own PUBACK.
        #[test]
        fn every_record_is_acked_exactly_once(actions in proptest::collection::vec(0u8..10, 1..400), size in 1u16..6) {
            let mut t = AckTracker::new(window(size));
            let mut buffer: BTreeSet<u64> = (1..=20).collect();
            let mut wire: Vec<(u16, u64)> = Vec::new(); // publishes the broker holds, not yet acked
            let mut deleted = HashSet::new();
            for a in actions {
                match a {
                    0..=4 => {
                        // Fill the window from the buffer, after the cursor.
                        let next: Vec<u64> = buffer.range(t.cursor() + 1..).take(t.room()).copied().collect();
                        for key in next {
                            let pkid = t.send(rec(key), 0).expect("room");
                            wire.push((pkid, key));
                        }
                    }
                    5..=8 if !wire.is_empty() => {
                        let (pkid, key) = wire.remove(usize::from(a) % wire.len());
                        if let Some(Slot::Record { key: acked, .. }) = t.ack(pkid) {
                            prop_assert_eq!(acked, key, "a PUBACK deletes its own record");
                            prop_assert!(deleted.insert(acked), "deleted twice");
                            buffer.remove(&acked);
                        }
                    }
                    _ => {
                        // Connection lost: the broker's session and our in-flight state go.
                        wire.clear();
                        t.reset();
                    }
                }
            }
            // Drain: reconnect and let the broker ack everything.
            t.reset();
            while !buffer.is_empty() {
                let next: Vec<u64> = buffer.range(t.cursor() + 1..).take(t.room()).copied().collect();
                for key in next {
                    let pkid = t.send(rec(key), 0).expect("room");
                    let acked = t.ack(pkid);
                    prop_assert_eq!(acked, Some(rec(key)));
                    prop_assert!(deleted.insert(key));
                    buffer.remove(&key);
                }
            }
            prop_assert_eq!(deleted.len(), 20);
        }
    }
}
