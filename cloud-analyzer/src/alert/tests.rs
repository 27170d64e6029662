use super::*;

fn crop(track: u64, id: &str) -> Confirmed {
    Confirmed {
        message_id: id.into(),
        device_id: "d".into(),
        camera_id: "c".into(),
        track_id: track,
        capture_time_us: 1,
        upload_time_us: 2,
        edge_score: 0.8,
        cloud_score: 0.9,
        bbox: [1.0, 2.0, 3.0, 4.0],
    }
}

const S: i64 = 1_000_000;

#[test]
fn a_track_folds_into_one_alert_and_ends_after_the_cooldown() {
    let mut e = AlertEngine::with_cooldown(Duration::from_secs(30), Vec::new());
    let first = e.confirm(&crop(1, "m1"), 0, "u1".into());
    assert_eq!(first.events[0].kind, EventType::New);
    assert_eq!(first.states, vec![("d".into(), "c".into(), true)]);
    let second = e.confirm(&crop(1, "m2"), 10 * S, "u2".into());
    assert_eq!(second.events[0].kind, EventType::Update);
    assert_eq!(second.events[0].alert_id, first.events[0].alert_id);
    assert_eq!(second.events[0].crops, 2);
    assert!(second.states.is_empty(), "already ON");
    assert!(
        e.expire(40 * S).events.is_empty(),
        "within the cooldown of the last crop"
    );
    let end = e.expire(41 * S);
    assert_eq!(end.events.len(), 1);
    assert_eq!(
        (end.events[0].kind, end.events[0].crops),
        (EventType::End, 2)
    );
    assert_eq!(end.states, vec![("d".into(), "c".into(), false)]);
}

#[test]
fn two_tracks_are_two_alerts_and_the_camera_stays_on_until_both_end() {
    let mut e = AlertEngine::new(5 * S, Vec::new());
    let a = e.confirm(&crop(1, "m1"), 0, String::new());
    let b = e.confirm(&crop(2, "m2"), 3 * S, String::new());
    assert_ne!(a.events[0].alert_id, b.events[0].alert_id);
    let end1 = e.expire(6 * S);
    assert_eq!(end1.events.len(), 1);
    assert!(end1.states.is_empty(), "track 2 still active");
    let end2 = e.expire(9 * S);
    assert_eq!(end2.states, vec![("d".into(), "c".into(), false)]);
}

#[test]
fn restored_alerts_continue_instead_of_starting_again() {
    let mut e = AlertEngine::new(30 * S, Vec::new());
    e.confirm(&crop(1, "m1"), 0, String::new());
    let saved: Vec<Active> = e.active().cloned().collect();
    let mut again = AlertEngine::new(30 * S, saved);
    let next = again.confirm(&crop(1, "m2"), S, String::new());
    assert_eq!(next.events[0].kind, EventType::Update);
    assert!(next.states.is_empty());
}

#[test]
fn seen_words_keep_an_alert_open_past_the_cooldown() {
    let mut e = AlertEngine::new(8 * S, Vec::new());
    let id = e.confirm(&crop(1, "m1"), 0, String::new()).events[0]
        .alert_id
        .clone();
    for t in [5, 10, 15, 20] {
        assert!(e.seen("d", "c", 1, t * S).events.is_empty(), "at {t} s");
    }
    assert!(e.expire(27 * S).events.is_empty(), "seen at 20 s");
    let late = e.confirm(&crop(1, "m2"), 27 * S, String::new());
    assert_eq!(late.events[0].kind, EventType::Update);
    assert_eq!(late.events[0].alert_id, id, "still one alert");
    let end = e.expire(36 * S);
    assert_eq!(end.events[0].ended_by, Some(EndCause::Timeout));
}

#[test]
fn an_ended_word_ends_the_alert_at_once_and_late_crops_fold_into_nothing() {
    let mut e = AlertEngine::new(30 * S, Vec::new());
    e.confirm(&crop(1, "m1"), 0, String::new());
    let left = e.left("d", "c", 1, 3 * S);
    assert_eq!(left.events.len(), 1);
    assert_eq!(left.events[0].kind, EventType::End);
    assert_eq!(left.events[0].ended_by, Some(EndCause::Left));
    assert_eq!(left.states, vec![("d".into(), "c".into(), false)]);
    let late = e.confirm(&crop(1, "m2"), 4 * S, String::new());
    assert_eq!(late, Changes::default(), "one visit, one alert");
    assert_eq!(
        e.left("d", "c", 1, 5 * S),
        Changes::default(),
        "a repeated word"
    );
}

#[test]
fn a_crop_confirmed_after_its_track_ended_still_raises_the_visit_alert() {
    let mut e = AlertEngine::new(30 * S, Vec::new());
    assert_eq!(e.left("d", "c", 7, 0), Changes::default(), "no alert yet");
    let late = e.confirm(&crop(7, "m1"), S, String::new());
    let kinds: Vec<_> = late.events.iter().map(|ev| ev.kind).collect();
    assert_eq!(kinds, vec![EventType::New, EventType::End]);
    assert_eq!(late.events[0].alert_id, late.events[1].alert_id);
    assert_eq!(
        late.states,
        vec![
            ("d".into(), "c".into(), true),
            ("d".into(), "c".into(), false)
        ]
    );
    assert_eq!(
        e.confirm(&crop(7, "m2"), 2 * S, String::new()),
        Changes::default(),
        "only once"
    );
    assert_eq!(e.active().count(), 0);
}

#[test]
fn an_ended_track_does_not_turn_its_camera_off_while_another_alert_is_open() {
    let mut e = AlertEngine::new(30 * S, Vec::new());
    e.confirm(&crop(1, "m1"), 0, String::new());
    e.confirm(&crop(2, "m2"), S, String::new());
    let left = e.left("d", "c", 1, 2 * S);
    assert_eq!(left.events.len(), 1);
    assert!(left.states.is_empty(), "track 2 keeps the camera ON");
    let seen_other = e.seen("d", "c", 99, 3 * S);
    assert_eq!(seen_other, Changes::default(), "a word of an unknown track");
}

#[test]
fn ended_tracks_are_forgotten_after_their_memory() {
    let mut e = AlertEngine::new(30 * S, Vec::new());
    e.left("d", "c", 1, 0);
    e.expire(ENDED_MEMORY_US + S);
    let fresh = e.confirm(&crop(1, "m1"), ENDED_MEMORY_US + 2 * S, String::new());
    assert_eq!(fresh.events.len(), 1);
    assert_eq!(fresh.events[0].kind, EventType::New);
}
