use cascade_shared::config::edge::raw;
use cascade_shared::wire::BoxPx;

use super::*;

fn det(x: f32, score: f32) -> Detection {
    Detection {
        bbox: BoxPx {
            x1: x,
            y1: 10.0,
            x2: x + 40.0,
            y2: 110.0,
        },
        score,
        class_id: 0,
    }
}

/// The documented defaults (a 10 s re-upload interval, 2 hits to confirm).
fn cfg() -> TrackerConfig {
    raw::TrackerConfig::default()
        .validated()
        .expect("the defaults are valid")
}

/// The crops and words of one person walking 5 px per run at 5 Hz for `runs` runs; the cloud
/// confirms the track at run `confirmed_at` (never when `None`).
fn walk(runs: i64, confirmed_at: Option<i64>) -> Vec<Upload> {
    let mut t = Tracker::new(cfg(), 1);
    let mut out = Vec::new();
    for i in 0..runs {
        if confirmed_at == Some(i) {
            t.cloud_confirmed(1);
        }
        out.extend(t.update(&[det(5.0 * i as f32, 0.8)], i * 200_000));
    }
    out
}

fn count(out: &[Upload], event: TrackEvent) -> usize {
    out.iter().filter(|u| u.event == event).count()
}

#[test]
fn a_walk_by_yields_a_handful_of_crops_close_together_until_the_cloud_confirms() {
    // 10 s of walking, never confirmed: the first crop, then one a second up to 5 crops, then
    // the 10 s re-upload interval.
    let never = walk(50, None);
    assert_eq!(count(&never, TrackEvent::Crop), 5, "{never:?}");
    assert!(never.iter().all(|u| u.track_id == 1), "one track");
    let crops: Vec<i64> = never
        .iter()
        .filter(|u| u.event == TrackEvent::Crop)
        .map(|u| u.det.bbox.x1 as i64 / 5)
        .collect();
    assert_eq!(crops, vec![1, 6, 11, 16, 21], "runs of the crops");
    // Confirmed after the second crop: no more close together.
    let confirmed = walk(50, Some(7));
    assert_eq!(count(&confirmed, TrackEvent::Crop), 2, "{confirmed:?}");
}

#[test]
fn an_uploaded_track_says_it_is_still_here_between_crops() {
    let out = walk(50, Some(2));
    // One crop at run 1 (0.2 s), then a word every 5 s of silence: at 5.2 s and 10.2 s... within
    // 10 s of walking, at 5.2 s only (the re-upload at 10.2 s is outside).
    assert_eq!(count(&out, TrackEvent::Crop), 1, "{out:?}");
    assert_eq!(count(&out, TrackEvent::Seen), 1, "{out:?}");
    assert!(
        walk(1, None).is_empty(),
        "a track not yet uploaded says nothing"
    );
}

#[test]
fn a_lost_track_that_was_uploaded_ends_with_a_word() {
    let mut t = Tracker::new(cfg(), 1);
    t.update(&[det(0.0, 0.8)], 0);
    t.update(&[det(0.0, 0.8)], 1);
    let mut out = Vec::new();
    for i in 0..6 {
        out.extend(t.update(&[], 2 + i));
    }
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].event, out[0].track_id), (TrackEvent::Ended, 1));
    // A track never uploaded (one hit) ends silently.
    t.update(&[det(300.0, 0.8)], 10);
    for i in 0..6 {
        assert!(t.update(&[], 11 + i).is_empty());
    }
    assert_eq!(t.active(), 0);
}

#[test]
fn end_all_ends_the_uploaded_tracks() {
    let mut t = Tracker::new(cfg(), 1);
    t.update(&[det(0.0, 0.8), det(200.0, 0.8)], 0);
    t.update(&[det(0.0, 0.8)], 1);
    let ended = t.end_all();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].event, TrackEvent::Ended);
    assert_eq!(t.active(), 0);
}

#[test]
fn first_ids_differ_between_runs_and_stay_exact_in_json() {
    let a = Tracker::first_id_at(1_795_000_000_000_000);
    let b = Tracker::first_id_at(1_795_000_000_001_000);
    assert!(b > a + 999, "{a} {b}");
    assert!(b < 1 << 53, "exact as a JSON number");
    let mut t = Tracker::new(cfg(), a);
    t.update(&[det(0.0, 0.8)], 0);
    assert_eq!(t.update(&[det(0.0, 0.8)], 1)[0].track_id, a);
}

#[test]
fn cloud_confirmed_hands_each_camera_its_tracks_once() {
    let c = CloudConfirmed::default();
    c.add("a", 1);
    c.add("b", 2);
    c.add("a", 3);
    assert_eq!(c.take("a"), vec![1, 3]);
    assert!(c.take("a").is_empty());
    assert_eq!(c.take("b"), vec![2]);
}

#[test]
fn upload_waits_for_confirmation_and_better_crops() {
    let mut t = Tracker::new(cfg(), 1);
    assert!(
        t.update(&[det(0.0, 0.6)], 0).is_empty(),
        "not confirmed yet"
    );
    assert_eq!(t.update(&[det(2.0, 0.6)], 1).len(), 1, "confirmed");
    t.cloud_confirmed(1);
    assert!(
        t.update(&[det(4.0, 0.65)], 2).is_empty(),
        "not clearly better"
    );
    assert_eq!(t.update(&[det(6.0, 0.75)], 3).len(), 1, "clearly better");
}

#[test]
fn tracks_end_after_missed_runs() {
    let mut t = Tracker::new(
        TrackerConfig {
            max_missed: 2,
            ..cfg()
        },
        1,
    );
    t.update(&[det(0.0, 0.8)], 0);
    t.update(&[det(0.0, 0.8)], 1);
    let mut ended = Vec::new();
    for i in 0..3 {
        ended.extend(t.update(&[], 2 + i));
    }
    assert_eq!(t.active(), 0);
    assert_eq!(count(&ended, TrackEvent::Ended), 1);
    let first = t.update(&[det(0.0, 0.8)], 10);
    assert!(first.is_empty(), "a new track starts unconfirmed");
}

#[test]
fn two_people_get_two_tracks() {
    let mut t = Tracker::new(cfg(), 1);
    t.update(&[det(0.0, 0.8), det(200.0, 0.8)], 0);
    let ups = t.update(&[det(2.0, 0.8), det(202.0, 0.8)], 1);
    assert_eq!(ups.len(), 2);
    assert_ne!(ups[0].track_id, ups[1].track_id);
}

#[test]
fn a_walker_seen_seldom_stays_one_track() {
    // 30 px between runs of a 36 px wide walker (a busy detector at 2 Hz, 60 px/s): IoU 0.09.
    let mut t = Tracker::new(cfg(), 1);
    let mut ids = std::collections::BTreeSet::new();
    for i in 0..12 {
        for u in t.update(&[det(30.0 * i as f32, 0.8)], i * 500_000) {
            ids.insert(u.track_id);
        }
    }
    assert_eq!(t.active(), 1);
    assert_eq!(ids.len(), 1, "{ids:?}");
}
