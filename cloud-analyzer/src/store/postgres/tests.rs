//! The PostgreSQL store against a real server (`cascade_tests::postgres`): one server for all
//! cases, one database each. Skipped, said on stderr, without PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use cascade_tests::postgres::Postgres;

use super::PgStore;
use crate::alert::{Confirmed, EventType, Step};
use crate::store::{AlertQuery, Inserted, Store, Verdict};

const COOLDOWN: Duration = Duration::from_secs(30);

use crate::store::tests::crop_of_track as crop;

fn confirmed(id: &str, track: u64) -> Step {
    Step::Confirm(
        Confirmed {
            message_id: id.into(),
            device_id: "dev".into(),
            camera_id: "cam".into(),
            track_id: track,
            capture_time_us: 10,
            upload_time_us: 1,
            edge_score: 0.7,
            cloud_score: 0.9,
            bbox: [1.0, 2.0, 30.0, 60.0],
        },
        format!("url/{id}"),
    )
}

const YES: Verdict = Verdict {
    cloud_score: 0.9,
    confirmed: true,
};

fn replica(url: &str, name: &str, lease: Duration) -> PgStore {
    PgStore::connect(url, name, COOLDOWN, lease).expect("connect")
}

#[test]
fn postgres_store() {
    let Some(pg) = Postgres::start().expect("PostgreSQL starts") else {
        return;
    };
    crops_deduplicate_and_migrations_run_once(&pg.create_db("dedup").expect("db"));
    replicas_folding_one_track_raise_one_alert(&pg.create_db("fold").expect("db"));
    a_crop_decided_twice_folds_once_and_words_end_alerts(&pg.create_db("twice").expect("db"));
    a_silent_replicas_crops_and_events_are_taken_over(&pg.create_db("orphans").expect("db"));
    queries_match_sqlite(&pg.create_db("queries").expect("db"));
}

fn crops_deduplicate_and_migrations_run_once(url: &str) {
    let a = replica(url, "a", COOLDOWN);
    let b = replica(url, "b", COOLDOWN);
    assert_eq!(
        a.schema_version().expect("version"),
        super::schema::MIGRATIONS.len()
    );
    assert!(a.writable());
    assert_eq!(
        a.insert_crop(&crop("m1", 1), 1, 2).expect("insert"),
        Inserted::New
    );
    assert_eq!(
        b.insert_crop(&crop("m1", 1), 1, 3).expect("insert"),
        Inserted::Duplicate
    );
    assert_eq!(a.devices().expect("devices")[0].crops, 1);
    assert!(
        b.pending().expect("pending").is_empty(),
        "a's crop, a's claim"
    );
    assert_eq!(
        a.pending().expect("pending").len(),
        1,
        "its own crop after a restart"
    );
}

/// Four threads on two replicas fold 40 crops of one track at once: one alert, 40 crops in it,
/// one `new`, 39 `update`s, the camera turned on once.
fn replicas_folding_one_track_raise_one_alert(url: &str) {
    let stores = [
        Arc::new(replica(url, "a", COOLDOWN)),
        Arc::new(replica(url, "b", COOLDOWN)),
    ];
    for i in 0..40 {
        stores[0]
            .insert_crop(&crop(&format!("c{i}"), 7), 1, 2)
            .expect("insert");
    }
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let s = stores[t % 2].clone();
            std::thread::spawn(move || {
                let mut kinds = Vec::new();
                let mut ons = 0;
                for i in (t..40).step_by(4) {
                    let id = format!("c{i}");
                    let (events, ch) = s
                        .fold(&confirmed(&id, 7), Some((&id, YES)), 100 + i as i64)
                        .expect("fold");
                    assert_eq!(events.len(), ch.events.len());
                    kinds.extend(ch.events.iter().map(|e| e.kind));
                    ons += ch.states.iter().filter(|s| s.2).count();
                }
                (kinds, ons)
            })
        })
        .collect();
    let (mut kinds, mut ons) = (Vec::new(), 0);
    for t in threads {
        let (k, o) = t.join().expect("thread");
        kinds.extend(k);
        ons += o;
    }
    assert_eq!(kinds.iter().filter(|k| **k == EventType::New).count(), 1);
    assert_eq!(
        kinds.iter().filter(|k| **k == EventType::Update).count(),
        39
    );
    assert_eq!(ons, 1, "the camera turns on once");
    let alerts = stores[1]
        .alerts(&AlertQuery {
            limit: 10,
            ..AlertQuery::default()
        })
        .expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].crops, 40);
    assert_eq!(
        stores[0].message_counts().expect("counts"),
        vec![("confirmed".into(), 40)]
    );
}

fn a_crop_decided_twice_folds_once_and_words_end_alerts(url: &str) {
    let a = replica(url, "a", COOLDOWN);
    let b = replica(url, "b", COOLDOWN);
    a.insert_crop(&crop("x", 3), 1, 2).expect("insert");
    let (first, _) = a
        .fold(&confirmed("x", 3), Some(("x", YES)), 100)
        .expect("fold");
    let (second, ch) = b
        .fold(&confirmed("x", 3), Some(("x", YES)), 101)
        .expect("fold");
    assert_eq!(first.len(), 1);
    assert!(
        second.is_empty() && ch.events.is_empty(),
        "decided already: nothing folded"
    );
    // `seen` keeps it open past the cooldown; `ended` ends it; a late crop folds into nothing.
    let key = ("dev".to_string(), "cam".to_string(), 3);
    let later = 100 + 25_000_000;
    b.fold(&Step::Seen(key.clone()), None, later).expect("seen");
    let (ev, ch) = a
        .fold(&Step::Expire, None, later + 10_000_000)
        .expect("expire");
    assert!(
        ev.is_empty() && ch.events.is_empty(),
        "seen recently: still open"
    );
    let (ev, ch) = b
        .fold(&Step::Left(key), None, later + 11_000_000)
        .expect("left");
    assert_eq!(ev.len(), 1);
    assert_eq!(ch.events[0].kind, EventType::End);
    assert_eq!(ch.states, vec![("dev".into(), "cam".into(), false)]);
    a.insert_crop(&crop("y", 3), 1, 2).expect("insert");
    let (ev, _) = a
        .fold(&confirmed("y", 3), Some(("y", YES)), later + 12_000_000)
        .expect("fold");
    assert!(ev.is_empty(), "a crop of an ended alert folds into nothing");
    // A silent alert ends by timeout, once, whichever replica sweeps.
    a.insert_crop(&crop("z", 4), 1, 2).expect("insert");
    a.fold(&confirmed("z", 4), Some(("z", YES)), 200)
        .expect("fold");
    let (ev, _) = b
        .fold(&Step::Expire, None, 200 + 31_000_000)
        .expect("expire");
    let (again, _) = a
        .fold(&Step::Expire, None, 200 + 32_000_000)
        .expect("expire");
    assert_eq!((ev.len(), again.len()), (1, 0));
    assert!(a.active_alerts().expect("active").is_empty());
}

fn a_silent_replicas_crops_and_events_are_taken_over(url: &str) {
    let lease = Duration::from_millis(300);
    let dead = replica(url, "dead", lease);
    let live = replica(url, "live", lease);
    dead.insert_crop(&crop("o1", 9), 1, 2).expect("insert");
    dead.insert_crop(&crop("o2", 9), 1, 2).expect("insert");
    let (events, _) = dead
        .fold(&confirmed("o1", 9), Some(("o1", YES)), 100)
        .expect("fold");
    assert_eq!(
        events.len(),
        1,
        "committed, never published: the replica died"
    );
    assert_eq!(
        live.orphans().expect("orphans"),
        (Vec::new(), Vec::new()),
        "within the lease"
    );
    std::thread::sleep(lease + Duration::from_millis(100));
    let (crops, events) = live.orphans().expect("orphans");
    assert_eq!(
        crops
            .iter()
            .map(|p| p.message_id.as_str())
            .collect::<Vec<_>>(),
        ["o2"]
    );
    assert_eq!(events.len(), 1);
    assert_eq!(
        live.orphans().expect("orphans"),
        (Vec::new(), Vec::new()),
        "claimed once"
    );
    live.mark_published(events[0].0).expect("published");
    assert!(dead.unpublished().expect("unpublished").is_empty());
}

fn queries_match_sqlite(url: &str) {
    use cascade_shared::status::{AgentInfo, CameraPhase, CameraStatus, DeviceStatus, Presence};
    let s = Store::Postgres(replica(url, "a", COOLDOWN));
    s.insert_crop(&crop("old", 1), 0, 0).expect("insert");
    s.insert_crop(&crop("new", 1), 0, 1_000).expect("insert");
    assert_eq!(s.crop_jpeg("new").expect("jpeg"), Some(vec![0xFF, 0xD8, 1]));
    s.apply_retention(1_500, Duration::from_micros(1_000))
        .expect("retention");
    assert_eq!(s.crop_jpeg("old").expect("jpeg"), None);
    assert!(s.erase_crop("new").expect("erase"));
    assert!(!s.erase_crop("new").expect("erase"));
    let online = DeviceStatus {
        state: Presence::Online,
        agent: Some(AgentInfo {
            version: "0.2.0".into(),
            profile: None,
            models: vec![],
        }),
        cameras: vec![CameraStatus {
            id: "front".into(),
            state: CameraPhase::Streaming,
            reason: None,
        }],
    };
    s.device_status("dev", &online, 10).expect("status");
    s.device_status("dev", &DeviceStatus::offline(), 20)
        .expect("status");
    let d = &s.devices().expect("devices")[0];
    assert_eq!(
        (d.last_status.as_deref(), d.last_seen_us),
        (Some("offline"), 1_000)
    );
    assert_eq!(d.cameras, online.cameras);
    assert_eq!(d.agent, online.agent);
    s.dead_letter(1, "t", Some("d"), "jpeg", "x", &vec![7u8; 10_000])
        .expect("dead letter");
    assert_eq!(
        s.dead_letters().expect("letters"),
        vec![("jpeg".into(), Some("d".into()))]
    );
    assert!(s.cameras_on().expect("on").is_empty());
}
