//! The buffer on a disk that fills up: a real, small tmpfs (mounted here when run as root; skipped,
//! saying so, otherwise). A full disk degrades the buffer instead of wedging it: crops it cannot
//! take are refused and counted by the caller, what it holds stays readable and deletable, new
//! crops replace the oldest, and it is back to normal as soon as space returns. Starting on a full
//! disk works too (the reserve file of the last run makes room).

use cascade_tests::tmpfs::{Tmpfs, fill};
use edge_agent::buffer::{Buffer, EvictReason, Limits, NewRecord};

const CROP: usize = 256 * 1024;

fn push(buffer: &Buffer, i: usize) -> Result<Vec<EvictReason>, edge_agent::buffer::BufferError> {
    let rec = NewRecord {
        camera: "cam",
        build: Box::new(move |_| vec![(i % 251) as u8; CROP]),
    };
    let pushed = buffer.push(i as i64, vec![rec])?;
    Ok(pushed.evicted.iter().map(|e| e.reason).collect())
}

#[test]
fn a_full_disk_degrades_the_buffer_and_space_returning_restores_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(fs) = Tmpfs::mount(&tmp.path().join("mnt"), "32m") else {
        return;
    };
    let dir = fs.path.join("buffer");
    let limits = Limits {
        max_bytes: 100 << 20, // the disk, not the bound, runs out
        max_age_us: i64::MAX / 2,
    };
    let buffer = Buffer::open(&dir, limits).expect("buffer");
    buffer.check_space(); // writes the reserve
    assert!(dir.join("reserve").exists(), "reserve in place");
    let filler = fs.path.join("filler");
    fill(&filler, 10 << 20);

    // Push until the disk is full.
    let mut i = 0;
    let first_refusal = loop {
        match push(&buffer, i) {
            Ok(_) => i += 1,
            Err(e) => break e,
        }
        assert!(i < 200, "the disk never filled up");
    };
    assert!(first_refusal.is_disk_full(), "{first_refusal}");
    let committed = i;
    assert!(buffer.degraded());
    assert!(!dir.join("reserve").exists(), "the reserve was given back");
    eprintln!("disk full after {committed} crops of {CROP} bytes");

    // Degraded: new crops replace the oldest; what is held reads and deletes.
    let mut taken = 0;
    let mut evicted_for_space = 0;
    for _ in 0..20 {
        i += 1;
        if let Ok(reasons) = push(&buffer, i) {
            taken += 1;
            evicted_for_space += reasons
                .iter()
                .filter(|r| **r == EvictReason::DiskFull)
                .count();
        }
    }
    assert!(
        taken >= 15,
        "the degraded buffer keeps taking new crops: {taken} of 20"
    );
    assert!(evicted_for_space >= 1, "by evicting the oldest");
    let held = buffer.pending(0, 1000).expect("what it holds reads");
    assert!(!held.is_empty());
    let keys: Vec<u64> = held.iter().take(3).map(|r| r.key).collect();
    assert_eq!(buffer.remove(&keys).expect("deletes on a full disk"), 3);

    // Space returns: the next check lifts the bound and writes the reserve again.
    std::fs::remove_file(&filler).expect("free space");
    assert!(buffer.check_space(), "back to normal");
    assert!(!buffer.degraded());
    assert!(dir.join("reserve").exists(), "reserve written again");
    i += 1;
    let reasons = push(&buffer, i).expect("accepts again");
    assert!(
        reasons.is_empty(),
        "no eviction once space is back: {reasons:?}"
    );
    drop(buffer);

    // Start on a full disk: fill it to the last byte, then open.
    fill(&fs.path.join("filler2"), u64::MAX);
    let buffer = Buffer::open(&dir, limits).expect("opens on a full disk");
    assert!(buffer.degraded(), "in degraded mode");
    let held = buffer.pending(0, 1000).expect("reads");
    assert!(!held.is_empty(), "what it held is there to drain");
    let keys: Vec<u64> = held.iter().map(|r| r.key).collect();
    assert_eq!(buffer.remove(&keys).expect("drains") as usize, keys.len());
    assert_eq!(buffer.stats().records, 0);
}
