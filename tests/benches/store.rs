//! Store throughput: crops/s inserted and decided (verdict + alert folding + outbox), SQLite
//! against PostgreSQL, and PostgreSQL with three replicas writing at once. No model: the confirm
//! model's cost is `benches/cloud.rs`'s; this is the store's share of each crop.
//!
//! `cargo bench -p cascade-tests --bench store` (or, without a release build,
//! `cargo test -p cascade-tests --bench store`). `CASCADE_BENCH_CROPS` sets the number of crops
//! per run (default 2000). PostgreSQL is started by the harness (`cascade_tests::postgres`) with
//! its defaults (`fsync` and `synchronous_commit` on), as SQLite runs with `synchronous = FULL`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cascade_shared::wire::{BoxPx, Crop};
use cascade_tests::postgres::Postgres;
use cloud_analyzer::alert::{AlertEngine, Confirmed, Step};
use cloud_analyzer::store::{PgStore, Store, Verdict};

const COOLDOWN: Duration = Duration::from_secs(30);
/// Crops per track (a visit uploads a few).
const PER_TRACK: usize = 10;

/// Crop `i` of `replica`; replicas of one `device` share its cameras and tracks (as a `$share`
/// subscription splits one device's crops), of distinct ones do not.
fn crop(replica: usize, device: usize, i: usize, jpeg: &[u8]) -> Crop {
    let b = BoxPx {
        x1: 10.0,
        y1: 10.0,
        x2: 60.0,
        y2: 160.0,
    };
    Crop {
        message_id: format!("r{replica}-m{i}"),
        device_id: format!("dev-{device}"),
        camera_id: format!("cam-{}", i % 4),
        sequence: i as u64,
        capture_time_us: 1_700_000_000_000_000,
        frame_width: 640,
        frame_height: 480,
        r#box: Some(b),
        crop_region: Some(b),
        score: 0.8,
        track_id: (i / PER_TRACK) as u64,
        jpeg: jpeg.to_vec(),
        ..Crop::default()
    }
}

fn confirmed(c: &Crop) -> Confirmed {
    Confirmed {
        message_id: c.message_id.clone(),
        device_id: c.device_id.clone(),
        camera_id: c.camera_id.clone(),
        track_id: c.track_id,
        capture_time_us: c.capture_time_us,
        upload_time_us: 0,
        edge_score: c.score,
        cloud_score: 0.9,
        bbox: [10.0, 10.0, 60.0, 160.0],
    }
}

const YES: Verdict = Verdict {
    cloud_score: 0.9,
    confirmed: true,
};

/// One analyzer's store path per crop: insert, then verdict + fold + events, in order.
fn run(store: &Store, replica: usize, device: usize, n: usize, jpeg: &[u8]) {
    let mut engine = AlertEngine::with_cooldown(COOLDOWN, Vec::new());
    for i in 0..n {
        let c = crop(replica, device, i, jpeg);
        store.insert_crop(&c, 0, 1).expect("insert");
        let now = 1_000 + i as i64;
        let step = Step::Confirm(confirmed(&c), String::new());
        if store.folds_alerts() {
            store
                .fold(&step, Some((&c.message_id, YES)), now)
                .expect("fold");
        } else {
            let changes = engine.apply(&step, now);
            store
                .decide(&c.message_id, YES, now, &changes)
                .expect("decide");
        }
    }
}

fn report(name: &str, crops: usize, elapsed: Duration) {
    println!(
        "{name:<48} {crops:>6} crops  {:>8.0} crops/s  {:>7.3} ms/crop",
        crops as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / crops as f64
    );
}

fn main() {
    let n: usize = std::env::var("CASCADE_BENCH_CROPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    // A typical context crop's size (design/cloud-analyzer.md: about 11-16 KB).
    let jpeg: Vec<u8> = (0..14_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    println!("store throughput: insert + verdict + alert fold + outbox per crop, 14 KB JPEG");

    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Store::open(dir.path()).expect("sqlite");
    let t = Instant::now();
    run(&sqlite, 0, 0, n, &jpeg);
    report("SQLite (WAL, synchronous=FULL), 1 analyzer", n, t.elapsed());

    let Some(pg) = Postgres::start().expect("PostgreSQL starts") else {
        return;
    };
    let url = pg.create_db("bench").expect("db");
    let one = Store::Postgres(PgStore::connect(&url, "one", COOLDOWN, COOLDOWN).expect("pg"));
    let t = Instant::now();
    run(&one, 0, 0, n, &jpeg);
    report(
        "PostgreSQL (folded in the database), 1 replica",
        n,
        t.elapsed(),
    );

    for (name, shared) in [
        ("PostgreSQL, 3 replicas, 3 devices (sum)", false),
        ("PostgreSQL, 3 replicas, 1 device's tracks (sum)", true),
    ] {
        let url = pg
            .create_db(if shared { "shared" } else { "apart" })
            .expect("db");
        let t = Instant::now();
        replicas(&url, shared, n, &jpeg);
        report(name, 3 * n, t.elapsed());
    }
}

/// Three replicas, each its own connection and thread, `n` crops each.
fn replicas(url: &str, shared: bool, n: usize, jpeg: &[u8]) {
    let stores: Vec<Arc<Store>> = (0..3)
        .map(|r| {
            let s = PgStore::connect(url, &format!("r{r}"), COOLDOWN, COOLDOWN).expect("pg");
            Arc::new(Store::Postgres(s))
        })
        .collect();
    let threads: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(r, s)| {
            let (s, jpeg) = (s.clone(), jpeg.to_vec());
            let device = if shared { 0 } else { r };
            std::thread::spawn(move || run(&s, r, device, n, &jpeg))
        })
        .collect();
    for th in threads {
        th.join().expect("replica");
    }
}
