//! A visit's alert from start to end, with the real binaries: one `new` when the person comes into
//! view, updates while they stay, and one `end` when they leave (the edge's `ended` word), not when
//! the cloud's timer runs out; a lost word still ends an alert at the timeout; and the cloud tells
//! the device which of its tracks it confirmed (a verdict).

use std::time::Duration;

use cascade_shared::verdict::Verdicts;
use cascade_shared::wire::{Crop, TrackEvent};
use cascade_tests::*;
use common::{envelope, good_crop};

mod common;

/// An analyzer with its embedded broker and an alert timeout of `cooldown_s`.
fn analyzer(dir: &std::path::Path, cooldown_s: f64) -> (AnalyzerProcess, Certs, u16) {
    let certs = make_certs(dir).expect("certs");
    let port = free_port();
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let cfg = analyzer_config(
        dir,
        &repo_root(),
        &embedded_broker_toml(port, &certs),
        api,
        cooldown_s,
    );
    let a = AnalyzerProcess::start(dir, &cfg, api).expect("analyzer starts");
    (a, certs, port)
}

/// Alert events (JSON), in the order received.
fn alert_events(sub: &Received) -> Vec<serde_json::Value> {
    sub.messages()
        .iter()
        .filter(|(t, _)| !t.ends_with("/state"))
        .filter_map(|(_, p)| serde_json::from_slice(p).ok())
        .collect()
}

/// UTC microseconds of the clip's stream time 0, from the edge's log.
fn stream_zero_us(edge_log: &str) -> i64 {
    edge_log
        .lines()
        .find_map(|l| {
            let rest = &l[l.find("stream_zero_utc_us=")? + "stream_zero_utc_us=".len()..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no stream_zero_utc_us in the edge log:\n{edge_log}"))
}

fn at_s(e: &serde_json::Value, zero_us: i64) -> f64 {
    (e["cloud_decision_time_us"].as_i64().unwrap_or(0) - zero_us) as f64 / 1e6
}

#[test]
fn a_visit_is_one_alert_that_ends_when_the_person_leaves() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // A minute of timeout: only the edge's word can end the alert within seconds of the leaving.
    let (a, certs, port) = analyzer(dir, 60.0);
    let sub = subscribe(port, &certs, "cascade/v1/alerts/#");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("subscriber");
    let o = EdgeOptions {
        clip: repo_root().join("tests/fixtures/visit.mp4"),
        realtime: true,
        tracker: "reupload_interval_s = 2.0".into(),
        uplink: String::new(),
        ..EdgeOptions::walker(&repo_root())
    };
    let log = run_edge(&write_edge_config(dir, port, &certs, &o)).expect("edge runs");
    let zero = stream_zero_us(&log);
    // A clean run and exit warns about nothing, and its summary counts are whole numbers.
    assert!(!log.contains(" WARN "), "warnings on a clean run:\n{log}");
    let summary = log
        .lines()
        .find(|l| l.contains(" summary"))
        .expect("summary");
    for key in [
        "frames",
        "detector_runs",
        "crops_uploaded",
        "uploaded_bytes",
    ] {
        let value = summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")));
        assert!(
            value.is_some_and(|v| v.parse::<u64>().is_ok()),
            "{key} is a whole number: {summary}"
        );
    }
    assert!(log.contains("stopped; 0 messages left buffered"), "{log}");
    eventually(Duration::from_secs(20), || {
        alert_events(&sub).iter().any(|e| e["type"] == "end")
    })
    .unwrap_or_else(|_| panic!("no end; analyzer log:\n{}", a.log_text()));
    std::thread::sleep(Duration::from_millis(500));
    let ev = alert_events(&sub);
    let kinds: Vec<&str> = ev.iter().filter_map(|e| e["type"].as_str()).collect();
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    assert_eq!(count("new"), 1, "one visit, one alert: {kinds:?}");
    assert!(
        count("update") >= 1,
        "updates while the person stays: {kinds:?}"
    );
    assert_eq!(count("end"), 1, "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"end"), "{kinds:?}");
    let ids: std::collections::HashSet<&str> =
        ev.iter().filter_map(|e| e["alert_id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "one alert id: {ids:?}");
    let (new, end) = (&ev[0], &ev[ev.len() - 1]);
    assert_eq!(end["ended_by"], "left", "ended by the edge's word: {end}");
    // The walker is in view from 2.0 s and fully gone at 12.33 s of the clip.
    let (raised, ended) = (at_s(new, zero), at_s(end, zero));
    assert!(raised > 2.0 && raised < 12.3, "raised at {raised:.1} s");
    assert!(
        ended > 12.3 && ended < 12.3 + 6.0,
        "ended {:.1} s after the leaving (timeout 60 s)",
        ended - 12.3
    );
}

#[test]
fn seen_words_hold_an_alert_open_a_lost_end_times_out_and_the_device_hears_the_verdict() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (a, certs, port) = analyzer(dir, 2.0);
    let alerts = subscribe(port, &certs, "cascade/v1/alerts/#");
    let verdicts = subscribe(port, &certs, "cascade/v1/dev-words/verdicts");
    eventually(Duration::from_secs(10), || {
        alerts.is_subscribed() && verdicts.is_subscribed()
    })
    .expect("subscribers");
    let topic = "cascade/v1/dev-words/crops";
    publish_all(
        port,
        &certs,
        topic,
        vec![envelope(&good_crop("dev-words", "c-1"))],
    )
    .expect("crop published");
    eventually(Duration::from_secs(20), || {
        alert_events(&alerts).iter().any(|e| e["type"] == "new")
    })
    .unwrap_or_else(|_| panic!("no alert; analyzer log:\n{}", a.log_text()));
    let word = |id: &str| Crop {
        message_id: id.into(),
        event: TrackEvent::Seen as i32,
        jpeg: Vec::new(),
        crop_region: None,
        ..good_crop("dev-words", id)
    };
    // Still here for 5 s, a word a second: more than twice the 2 s timeout.
    for i in 0..5 {
        publish_all(
            port,
            &certs,
            topic,
            vec![envelope(&word(&format!("w-{i}")))],
        )
        .expect("word published");
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        !alert_events(&alerts).iter().any(|e| e["type"] == "end"),
        "the words kept the alert open: {:?}",
        alert_events(&alerts)
    );
    // The `ended` word is lost: the timeout ends the alert.
    eventually(Duration::from_secs(10), || {
        alert_events(&alerts).iter().any(|e| e["type"] == "end")
    })
    .expect("the timeout ends the alert");
    let end = alert_events(&alerts)
        .into_iter()
        .find(|e| e["type"] == "end")
        .expect("end");
    assert_eq!(end["ended_by"], "timeout", "{end}");
    eventually(Duration::from_secs(10), || !verdicts.is_empty()).expect("a verdict");
    let v = Verdicts::decode(&verdicts.all()[0]).expect("valid verdicts");
    assert_eq!(
        (v.confirmed[0].camera_id.as_str(), v.confirmed[0].track_id),
        ("cam-1", 7),
        "{v:?}"
    );
}
