use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;

use super::*;

const T: i64 = 30_000_000;

fn receipt(stored: &[&str], rejected: &[&str]) -> Receipt {
    let v = |ids: &[&str]| ids.iter().map(|s| (*s).to_string()).collect();
    Receipt {
        stored: v(stored),
        rejected: v(rejected),
    }
}

#[test]
fn a_puback_alone_deletes_nothing_under_receipts() {
    let mut d = Deliveries::new(Delivery::Receipt, 4, T);
    d.sent(1, "a", 10, false);
    assert_eq!(d.puback(1, 0), None);
    assert_eq!(d.awaiting(), 1);
    let done = d.receipt(&receipt(&["a"], &[]));
    assert_eq!(
        done,
        vec![Done {
            key: 1,
            bytes: 10,
            word: false,
            rejected: false
        }]
    );
    assert_eq!(
        d.receipt(&receipt(&["a"], &[])),
        vec![],
        "a second receipt names nothing"
    );
    assert_eq!(d.room(), 4);
}

#[test]
fn under_puback_the_puback_delivers() {
    let mut d = Deliveries::new(Delivery::Puback, 4, T);
    d.sent(1, "a", 10, false);
    assert_eq!(d.puback(1, 0).map(|x| x.key), Some(1));
    assert_eq!(d.room(), 4);
}

#[test]
fn a_receipt_before_the_puback_delivers_and_the_late_puback_is_ignored() {
    let mut d = Deliveries::new(Delivery::Receipt, 4, T);
    d.sent(7, "x", 1, false);
    assert_eq!(d.receipt(&receipt(&[], &["x"])).len(), 1);
    assert_eq!(d.puback(7, 5), None);
    assert_eq!(d.next_deadline(), None);
}

#[test]
fn overdue_receipts_send_again_and_the_timeout_backs_off_until_a_receipt() {
    let mut d = Deliveries::new(Delivery::Receipt, 8, T);
    d.sent(1, "a", 1, false);
    d.sent(2, "b", 1, false);
    d.puback(1, 0);
    d.puback(2, 10);
    assert_eq!(d.next_deadline(), Some(T));
    assert_eq!(d.expire(T - 1), 0);
    assert_eq!(d.expire(T), 1, "only a is overdue");
    assert_eq!(d.to_resend(8), vec![1]);
    assert_eq!(d.room(), 6, "a crop to send again still takes its place");
    d.sent(1, "a", 1, false);
    d.puback(1, T);
    assert_eq!(d.next_deadline(), Some(T + 10), "b keeps its own deadline");
    assert_eq!(d.expire(T + 10), 1);
    assert_eq!(
        d.next_deadline(),
        Some(3 * T),
        "a was acknowledged under the doubled timeout"
    );
    for _ in 0..10 {
        let at = d.next_deadline().expect("awaiting");
        d.expire(at);
        for k in d.to_resend(8) {
            d.sent(k, if k == 1 { "a" } else { "b" }, 1, false);
            d.puback(k, at);
        }
    }
    assert_eq!(d.timeout_us, 16 * T, "capped");
    d.receipt(&receipt(&["a"], &[]));
    assert_eq!(d.timeout_us, T, "back to its base on a receipt");
}

#[test]
fn the_window_bounds_what_is_on_its_way_and_reset_forgets_it() {
    let mut d = Deliveries::new(Delivery::Receipt, 2, T);
    d.sent(1, "a", 1, false);
    d.sent(2, "b", 1, false);
    assert_eq!(d.room(), 0);
    d.forget(1);
    assert_eq!(d.room(), 1);
    d.reset();
    assert_eq!(d.room(), 2);
    assert_eq!(
        d.receipt(&receipt(&["b"], &[])),
        vec![],
        "nothing of the old session"
    );
}

proptest! {
    /// A broker that may lose what it acknowledged (restarted without persistence), an analyzer
    /// that may be slow or lose receipts, reconnects at any time: no crop is deleted without a
    /// receipt naming it, each is deleted once, and all are delivered in the end.
    #[test]
    fn every_crop_is_deleted_once_and_only_on_its_receipt(
        actions in proptest::collection::vec(0u8..12, 1..500),
        window in 1usize..6,
    ) {
        let mut d = Deliveries::new(Delivery::Receipt, window, T);
        let id = |k: u64| format!("m{k}");
        let mut buffer: BTreeSet<u64> = (1..=15).collect();
        let mut cursor = 0;
        let (mut wire, mut acked, mut cloud) = (Vec::new(), Vec::new(), BTreeSet::new());
        let mut deleted = HashSet::new();
        let mut now = 0;
        for a in actions {
            now += 1_000_000;
            match a {
                0..=2 => {
                    let mut keys = d.to_resend(d.room());
                    keys.extend(buffer.range(cursor + 1..).take(d.room() - keys.len()));
                    for k in keys {
                        cursor = cursor.max(k);
                        d.sent(k, &id(k), 1, false);
                        wire.push(k);
                    }
                }
                3..=4 if !wire.is_empty() => {
                    let k = wire.remove(0);
                    d.puback(k, now);
                    acked.push(k); // the broker holds it for the analyzer
                }
                5..=6 if !acked.is_empty() => {
                    cloud.insert(acked.remove(0)); // stored; its receipt is yet to come
                }
                7 if !cloud.is_empty() => {
                    let stored: Vec<String> = cloud.iter().map(|k| id(*k)).collect();
                    cloud.clear();
                    let r = Receipt { stored, rejected: vec![] };
                    for done in d.receipt(&r) {
                        prop_assert!(r.stored.contains(&id(done.key)), "deleted without its receipt");
                        prop_assert!(deleted.insert(done.key), "deleted twice");
                        buffer.remove(&done.key);
                    }
                }
                8 => {
                    // The broker restarts without persistence: what it held for the analyzer and
                    // the receipts not yet sent are lost; the connection drops.
                    acked.clear();
                    cloud.clear();
                    wire.clear();
                    d.reset();
                    cursor = 0;
                }
                9 => now += 40_000_000,
                _ => {
                    if let Some(at) = d.next_deadline().filter(|at| *at <= now) {
                        d.expire(at);
                    }
                }
            }
        }
        // Then a healthy stretch: everything sent is stored and receipted.
        d.reset();
        cursor = 0;
        for _ in 0..100 {
            let keys: Vec<u64> = buffer.range(cursor + 1..).take(d.room()).copied().collect();
            for k in keys {
                cursor = cursor.max(k);
                d.sent(k, &id(k), 1, false);
                d.puback(k, now);
                let r = Receipt { stored: vec![id(k)], rejected: vec![] };
                for done in d.receipt(&r) {
                    prop_assert!(deleted.insert(done.key), "deleted twice");
                    buffer.remove(&done.key);
                }
            }
        }
        prop_assert!(buffer.is_empty(), "left: {:?}", buffer);
        prop_assert_eq!(deleted.len(), 15);
    }
}
