use cascade_shared::wire::BoxPx;

use super::*;
use crate::alert::{AlertEngine, Confirmed};

fn crop(id: &str) -> Crop {
    crop_of_track(id, 4)
}

/// A stored crop of `track` (also for the PostgreSQL store's tests).
pub(super) fn crop_of_track(id: &str, track: u64) -> Crop {
    Crop {
        message_id: id.into(),
        device_id: "dev".into(),
        camera_id: "cam".into(),
        sequence: 1,
        capture_time_us: 10,
        frame_width: 100,
        frame_height: 100,
        r#box: Some(BoxPx {
            x1: 1.0,
            y1: 2.0,
            x2: 30.0,
            y2: 60.0,
        }),
        crop_region: Some(BoxPx {
            x1: 0.0,
            y1: 0.0,
            x2: 40.0,
            y2: 70.0,
        }),
        score: 0.7,
        track_id: track,
        jpeg: vec![0xFF, 0xD8, 1],
        event: 0,
        ..Crop::default()
    }
}

#[test]
fn message_ids_deduplicate_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let s = Store::open(dir.path()).expect("open");
        assert_eq!(
            s.schema_version().expect("version"),
            sqlite::MIGRATIONS.len()
        );
        assert_eq!(
            s.insert_crop(&crop("a"), 1, 2).expect("insert"),
            Inserted::New
        );
        assert_eq!(
            s.insert_crop(&crop("a"), 1, 3).expect("insert"),
            Inserted::Duplicate
        );
    }
    let s = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        s.insert_crop(&crop("a"), 1, 4).expect("insert"),
        Inserted::Duplicate
    );
    let p = s.pending().expect("pending");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].bbox, [1.0, 2.0, 30.0, 60.0]);
    assert_eq!(s.devices().expect("devices")[0].crops, 1);
}

#[test]
fn a_verdict_and_its_alert_commit_together_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path()).expect("open");
    s.insert_crop(&crop("a"), 1, 2).expect("insert");
    let mut engine = AlertEngine::new(1_000_000, Vec::new());
    let c = Confirmed {
        message_id: "a".into(),
        device_id: "dev".into(),
        camera_id: "cam".into(),
        track_id: 4,
        capture_time_us: 10,
        upload_time_us: 1,
        edge_score: 0.7,
        cloud_score: 0.9,
        bbox: [1.0, 2.0, 30.0, 60.0],
    };
    let changes = engine.confirm(&c, 100, "url".into());
    let events = s
        .decide(
            "a",
            Verdict {
                cloud_score: 0.9,
                confirmed: true,
            },
            100,
            &changes,
        )
        .expect("decide");
    assert_eq!(events.len(), 1);
    assert!(s.pending().expect("pending").is_empty());
    assert_eq!(s.unpublished().expect("unpublished").len(), 1);
    s.mark_published(events[0].0).expect("mark");
    assert!(s.unpublished().expect("unpublished").is_empty());
    drop(s);
    let s = Store::open(dir.path()).expect("reopen");
    let active = s.active_alerts().expect("active");
    assert_eq!(active.len(), 1);
    let rows = s
        .alerts(&AlertQuery {
            device_id: Some("dev".into()),
            limit: 10,
            ..AlertQuery::default()
        })
        .expect("alerts");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        s.alert(&rows[0].alert_id).expect("alert").map(|a| a.crops),
        Some(1)
    );
    assert!(
        s.alerts(&AlertQuery {
            device_id: Some("other".into()),
            limit: 10,
            ..AlertQuery::default()
        })
        .expect("alerts")
        .is_empty()
    );
    assert_eq!(s.crop_jpeg("a").expect("jpeg"), Some(vec![0xFF, 0xD8, 1]));
    assert_eq!(s.devices().expect("devices")[0].alerts, 1);
}

#[test]
fn retention_drops_old_crops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path()).expect("open");
    s.insert_crop(&crop("old"), 0, 0).expect("insert");
    s.insert_crop(&crop("new"), 0, 1_000).expect("insert");
    s.apply_retention(1_500, std::time::Duration::from_micros(1_000))
        .expect("retention");
    assert_eq!(s.crop_jpeg("old").expect("jpeg"), None);
    assert!(s.crop_jpeg("new").expect("jpeg").is_some());
    assert_eq!(
        s.insert_crop(&crop("old"), 0, 1_600).expect("insert"),
        Inserted::Duplicate,
        "id kept for dedup"
    );
}

#[test]
fn a_device_status_keeps_its_cameras_and_offline_keeps_the_last_known() {
    use cascade_shared::status::{
        AgentInfo, CameraPhase, CameraStatus, DeviceStatus, ModelVersion, Presence,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path()).expect("open");
    let online = DeviceStatus {
        state: Presence::Online,
        agent: Some(AgentInfo {
            version: "0.2.0".into(),
            profile: Some("raspberry-pi-5".into()),
            models: vec![ModelVersion {
                name: "m".into(),
                version: "1".into(),
                input: Some(320),
                sha256: "ab".repeat(32),
            }],
        }),
        cameras: vec![
            CameraStatus {
                id: "front".into(),
                state: CameraPhase::Streaming,
                reason: None,
            },
            CameraStatus {
                id: "yard".into(),
                state: CameraPhase::Backoff,
                reason: Some("refused".into()),
            },
        ],
    };
    s.device_status("dev", &online, 10).expect("stored");
    s.device_status("dev", &DeviceStatus::offline(), 20)
        .expect("stored");
    let d = &s.devices().expect("devices")[0];
    assert_eq!(d.last_status.as_deref(), Some("offline"));
    assert_eq!(d.cameras, online.cameras, "the cameras last reported");
    assert_eq!(d.agent, online.agent, "what it ran when last online");
    assert_eq!(d.last_seen_us, 20);
}

#[test]
fn dead_letters_keep_a_bounded_prefix_of_the_payload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path()).expect("open");
    let big = vec![7u8; 3 << 20];
    s.dead_letter(1, "cascade/v1/d/crops", Some("d"), "bad_jpeg", "x", &big)
        .expect("kept");
    let Store::Sqlite(s) = &s else {
        panic!("Store::open is SQLite")
    };
    let conn = s.lock();
    let len: i64 = conn
        .query_row("SELECT length(payload) FROM dead_letters", [], |r| r.get(0))
        .expect("row");
    assert_eq!(len as usize, DEAD_LETTER_PREFIX_BYTES);
}
