//! Alerts, I/O-free: confirmed crops become `new` / `update` / `end` events per track, in the style
//! Frigate users know, and each camera has an `ON` / `OFF` state.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a confirmed crop contributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmed {
    pub message_id: String,
    pub device_id: String,
    pub camera_id: String,
    pub track_id: u64,
    pub capture_time_us: i64,
    pub upload_time_us: i64,
    pub edge_score: f32,
    pub cloud_score: f32,
    pub bbox: [f32; 4],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    New,
    Update,
    End,
}

impl EventType {
    pub fn label(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Update => "update",
            Self::End => "end",
        }
    }
}

/// One event on `cascade/v1/alerts/{device}/{camera}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub alert_id: String,
    pub device_id: String,
    pub camera_id: String,
    pub track_id: u64,
    /// The crop that caused this event (for `end`, the alert's last one).
    pub message_id: String,
    pub capture_time_us: i64,
    pub edge_upload_time_us: i64,
    pub cloud_decision_time_us: i64,
    pub started_us: i64,
    pub edge_score: f32,
    pub cloud_score: f32,
    /// x1, y1, x2, y2 in frame pixels.
    pub r#box: [f32; 4],
    /// Confirmed crops folded into this alert so far.
    pub crops: u32,
    pub crop_url: String,
}

/// An alert in progress (persisted so a restart neither forgets nor repeats it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Active {
    pub alert_id: String,
    pub started_us: i64,
    pub last_seen_us: i64,
    pub crops: u32,
    pub best: AlertEvent,
}

type Key = (String, String, u64);

#[derive(Debug, Default)]
pub struct AlertEngine {
    cooldown_us: i64,
    active: BTreeMap<Key, Active>,
}

/// What a step changed: events to publish and camera states that flipped.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub events: Vec<AlertEvent>,
    /// (device, camera, on)
    pub states: Vec<(String, String, bool)>,
}

impl AlertEngine {
    /// An engine whose alerts end after `cooldown` of silence (`alerts.cooldown_s`), continuing the
    /// `restored` ones.
    pub fn with_cooldown(cooldown: Duration, restored: Vec<Active>) -> Self {
        Self::new(cascade_shared::clock::micros(cooldown), restored)
    }

    /// The same with the cooldown in microseconds, the unit of the engine's clock.
    pub fn new(cooldown_us: i64, restored: Vec<Active>) -> Self {
        let mut e = Self {
            cooldown_us,
            active: BTreeMap::new(),
        };
        for a in restored {
            let key = (
                a.best.device_id.clone(),
                a.best.camera_id.clone(),
                a.best.track_id,
            );
            e.active.insert(key, a);
        }
        e
    }

    pub fn active(&self) -> impl Iterator<Item = &Active> {
        self.active.values()
    }

    fn camera_on(&self, device: &str, camera: &str) -> bool {
        self.active
            .keys()
            .any(|(d, c, _)| d == device && c == camera)
    }

    /// A confirmed crop at cloud time `now_us`; `crop_url` points at its JPEG.
    pub fn confirm(&mut self, c: &Confirmed, now_us: i64, crop_url: String) -> Changes {
        let mut changes = self.expire(now_us);
        let was_on = self.camera_on(&c.device_id, &c.camera_id);
        let key = (c.device_id.clone(), c.camera_id.clone(), c.track_id);
        let existing = self.active.get(&key).cloned();
        let (kind, alert_id, started_us, crops) = match existing {
            Some(a) => (EventType::Update, a.alert_id, a.started_us, a.crops + 1),
            None => (
                EventType::New,
                format!("{}", uuid::Uuid::now_v7()),
                now_us,
                1,
            ),
        };
        let event = AlertEvent {
            kind,
            alert_id: alert_id.clone(),
            device_id: c.device_id.clone(),
            camera_id: c.camera_id.clone(),
            track_id: c.track_id,
            message_id: c.message_id.clone(),
            capture_time_us: c.capture_time_us,
            edge_upload_time_us: c.upload_time_us,
            cloud_decision_time_us: now_us,
            started_us,
            edge_score: c.edge_score,
            cloud_score: c.cloud_score,
            r#box: c.bbox,
            crops,
            crop_url,
        };
        self.active.insert(
            key,
            Active {
                alert_id,
                started_us,
                last_seen_us: now_us,
                crops,
                best: event.clone(),
            },
        );
        changes.events.push(event);
        if !was_on {
            changes
                .states
                .push((c.device_id.clone(), c.camera_id.clone(), true));
        }
        changes
    }

    /// Ends alerts silent for longer than the cooldown.
    pub fn expire(&mut self, now_us: i64) -> Changes {
        let mut changes = Changes::default();
        let ended: Vec<Key> = self
            .active
            .iter()
            .filter(|(_, a)| now_us - a.last_seen_us > self.cooldown_us)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ended {
            if let Some(a) = self.active.remove(&key) {
                changes.events.push(AlertEvent {
                    kind: EventType::End,
                    cloud_decision_time_us: now_us,
                    crops: a.crops,
                    ..a.best
                });
                if !self.camera_on(&key.0, &key.1) {
                    changes.states.push((key.0, key.1, false));
                }
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
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
}
