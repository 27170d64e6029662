use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

const LIMITS: Limits = Limits {
    max_bytes: 1 << 30,
    max_age_us: 3_600_000_000,
};

fn rec(camera: &str, payload: Vec<u8>) -> NewRecord<'_> {
    NewRecord {
        camera,
        build: Box::new(move |_| payload),
    }
}

fn open(dir: &Path, limits: Limits) -> Buffer {
    Buffer::open(dir, limits).expect("opens")
}

#[test]
fn survives_reopen_with_sequences_continuing() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let b = open(dir.path(), LIMITS);
        let added = b
            .push(
                1,
                vec![
                    rec("a", vec![1; 10]),
                    rec("b", vec![2; 10]),
                    rec("a", vec![3; 10]),
                ],
            )
            .expect("push")
            .added;
        assert_eq!(
            added.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            vec![1, 1, 2]
        );
    }
    let b = open(dir.path(), LIMITS);
    assert_eq!(b.stats().records, 3);
    let added = b.push(2, vec![rec("a", vec![4; 10])]).expect("push").added;
    assert_eq!(
        added[0],
        (4, 3),
        "keys and per-camera sequences continue after reopen"
    );
    let all = b.pending(0, 10).expect("pending");
    assert_eq!(
        all.iter().map(|r| r.payload[0]).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(b.remove(&[2, 99]).expect("remove"), 1);
    assert_eq!(
        b.pending(1, 10)
            .expect("pending")
            .iter()
            .map(|r| r.key)
            .collect::<Vec<_>>(),
        vec![3, 4]
    );
}

#[test]
fn byte_bound_evicts_oldest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = Limits {
        max_bytes: 3 * (1000 + RECORD_OVERHEAD),
        ..LIMITS
    };
    let b = open(dir.path(), limits);
    for i in 0..3u8 {
        let ev = b
            .push(i64::from(i), vec![rec("a", vec![i; 1000])])
            .expect("push")
            .evicted;
        assert!(ev.is_empty());
    }
    let ev = b
        .push(9, vec![rec("a", vec![9; 1000])])
        .expect("push")
        .evicted;
    assert_eq!(
        ev,
        vec![Eviction {
            key: 1,
            bytes: 1000 + RECORD_OVERHEAD,
            reason: EvictReason::MaxBytes
        }]
    );
    assert_eq!(b.stats().records, 3);
    assert_eq!(b.stats().oldest_created_us, Some(1));
}

#[test]
fn age_bound_evicts_expired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = open(
        dir.path(),
        Limits {
            max_age_us: 100,
            ..LIMITS
        },
    );
    b.push(0, vec![rec("a", vec![0; 5])]).expect("push");
    b.push(50, vec![rec("a", vec![1; 5])]).expect("push");
    b.push(200, vec![rec("a", vec![2; 5])]).expect("push");
    let ev = b.evict_expired(160).expect("evict");
    assert_eq!(
        ev.iter().map(|e| (e.key, e.reason)).collect::<Vec<_>>(),
        vec![(1, EvictReason::MaxAge), (2, EvictReason::MaxAge)]
    );
    assert_eq!(b.stats().records, 1);
}

#[derive(Debug, Clone)]
enum Op {
    Push(u8, usize),
    Remove(u64),
    Evict(i64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 1usize..400).prop_map(|(c, n)| Op::Push(c, n)),
        2 => (1u64..40).prop_map(Op::Remove),
        1 => (0i64..60).prop_map(Op::Evict),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The buffer behaves like a simple ordered map with byte and age bounds.
    #[test]
    fn matches_an_in_memory_model(ops in proptest::collection::vec(op(), 1..30)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = Limits { max_bytes: 2000, max_age_us: 20 };
        let mut b = Buffer::open(dir.path(), limits).expect("opens");
        let mut model: BTreeMap<u64, (i64, Vec<u8>)> = BTreeMap::new();
        let (mut next_key, mut now) = (1u64, 0i64);
        let bytes = |m: &BTreeMap<u64, (i64, Vec<u8>)>| m.values().map(|(_, p)| cost(p.len())).sum::<u64>();
        for op in ops {
            now += 1;
            match op {
                Op::Push(cam, n) => {
                    let payload = vec![cam; n];
                    let cams = ["c0", "c1", "c2"];
                    b.push(now, vec![rec(cams[cam as usize], payload.clone())]).expect("push");
                    while bytes(&model) + cost(n) > limits.max_bytes {
                        let Some(k) = model.keys().next().copied() else { break };
                        model.remove(&k);
                    }
                    model.insert(next_key, (now, payload));
                    next_key += 1;
                }
                Op::Remove(k) => {
                    b.remove(&[k]).expect("remove");
                    model.remove(&k);
                }
                Op::Evict(t) => {
                    let at = now + t;
                    b.evict_expired(at).expect("evict");
                    let cutoff = at - limits.max_age_us;
                    let expired: Vec<u64> = model.iter().take_while(|(_, (c, _))| *c < cutoff).map(|(k, _)| *k).collect();
                    for k in expired { model.remove(&k); }
                }
                Op::Reopen => {
                    drop(b);
                    b = Buffer::open(dir.path(), limits).expect("reopens");
                }
            }
            let got: Vec<(u64, i64, Vec<u8>)> = b.pending(0, 1000).expect("pending").into_iter().map(|r| (r.key, r.created_us, r.payload)).collect();
            let want: Vec<(u64, i64, Vec<u8>)> = model.iter().map(|(k, (c, p))| (*k, *c, p.clone())).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(b.stats().bytes, bytes(&model));
            prop_assert_eq!(b.stats().records, model.len() as u64);
        }
    }
}

/// A push blocked inside its write transaction (its record builder waits) does not hold up
/// `stats()`, which returns the last committed stats.
#[test]
fn stats_do_not_wait_on_a_commit_in_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = open(dir.path(), LIMITS);
    b.push(1, vec![rec("a", vec![0; 10])]).expect("push");
    let before = b.stats();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let b = &b;
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            let build = move |_| {
                let _ = entered_tx.send(());
                let _ = release_rx.recv();
                vec![1; 10]
            };
            b.push(
                2,
                vec![NewRecord {
                    camera: "a",
                    build: Box::new(build),
                }],
            )
        });
        entered_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the push is inside its write transaction");
        let (stats_tx, stats_rx) = mpsc::channel();
        s.spawn(move || {
            let _ = stats_tx.send(b.stats());
        });
        let during = stats_rx.recv_timeout(Duration::from_secs(5));
        // Release the writer before asserting, so that a failure cannot leave the scope hanging.
        let _ = release_tx.send(());
        let pushed = writer.join().expect("writer thread").expect("push");
        assert_eq!(
            during,
            Ok(before),
            "stats() waited on the write in progress, or showed it before its commit"
        );
        assert_eq!(pushed.added, vec![(2, 2)]);
    });
    assert_eq!(b.stats().records, 2);
}

/// Pushes (with byte evictions), removals and age evictions from several threads at once leave the
/// published stats equal to a recount of the file. (Empty at the end is fine: a stale or
/// out-of-order publication would still differ from the recount.)
#[test]
fn stats_stay_exact_under_concurrent_writers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = Limits {
        max_bytes: 30 * (200 + RECORD_OVERHEAD),
        max_age_us: 20,
    };
    let b = open(dir.path(), limits);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let pushers: Vec<_> = ["c0", "c1", "c2"]
            .into_iter()
            .map(|camera| s.spawn(|| push_many(&b, camera, 40)))
            .collect();
        for _ in 0..2 {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let pending = b.pending(0, 2).expect("pending");
                    let keys: Vec<u64> = pending.iter().map(|r| r.key).collect();
                    b.remove(&keys).expect("remove");
                }
            });
        }
        s.spawn(|| {
            for now in 20.. {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                b.evict_expired(now).expect("evict");
            }
        });
        for p in pushers {
            p.join().expect("pusher");
        }
        done.store(true, Ordering::Relaxed);
    });
    let live = b.stats();
    drop(b);
    let recounted = open(dir.path(), limits).stats();
    assert_eq!(live, recounted);
}

/// `n` pushes of 1-3 records of 100-200 bytes for `camera`, created at times `0..n`.
fn push_many(b: &Buffer, camera: &str, n: i64) {
    for i in 0..n {
        let count = 1 + i.unsigned_abs() % 3;
        let records = (0..count).map(|j| rec(camera, vec![7; 100 + 50 * j as usize]));
        b.push(i, records.collect()).expect("push");
    }
}

/// A buffer holding 20 crops of camera `c` (sequences 1..=20), closed.
fn filled(dir: &Path) -> Vec<u8> {
    let b = open(dir, LIMITS);
    for i in 0..20u8 {
        b.push(1, vec![rec("c", vec![i; 2000])]).expect("push");
    }
    drop(b);
    std::fs::read(dir.join(FILE)).expect("file")
}

#[test]
fn damaged_files_are_moved_aside_and_sequences_keep_increasing() {
    for damage in ["truncated", "zero-length", "garbage", "flipped"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = filled(dir.path());
        let damaged = match damage {
            "truncated" => bytes[..bytes.len() / 3].to_vec(),
            "zero-length" => Vec::new(),
            "garbage" => (0..bytes.len()).map(|i| (i * 131 % 251) as u8).collect(),
            _ => {
                let mut b = bytes.clone();
                let mid = b.len() / 2;
                for x in &mut b[mid..mid + 64] {
                    *x ^= 0xA5;
                }
                b
            }
        };
        std::fs::write(dir.path().join(FILE), damaged).expect("damage");
        let b = Buffer::open(dir.path(), LIMITS)
            .unwrap_or_else(|e| panic!("{damage}: the agent must start: {e}"));
        let seq = b.push(2, vec![rec("c", vec![9; 10])]).expect("push").added[0].1;
        assert!(seq > 20, "{damage}: sequence went back to {seq}");
        if let Some(r) = b.recovery() {
            assert!(r.moved_to.is_file(), "{damage}: moved aside");
            assert!(!r.reason.is_empty());
        }
        if matches!(damage, "truncated" | "garbage") {
            assert!(b.recovery().is_some(), "{damage}: noticed");
        }
    }
}

#[test]
fn what_a_damaged_file_still_holds_is_salvaged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE);
    filled(dir.path());
    let s = recover::salvage(&path);
    assert_eq!(s.records.len(), 20, "an intact file salvages whole");
    assert_eq!(s.sequences.get("c"), Some(&20));
}
