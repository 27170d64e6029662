//! Alerts, I/O-free: confirmed crops become `new` / `update` / `end` events per track, in the style
//! Frigate users know, and each camera has an `ON` / `OFF` state.
//!
//! An alert ends when the edge says its track left (an `ended` word), or, when that word is lost,
//! after `cooldown_s` without any message of the track (crops and `seen` words keep it open). A
//! crop confirmed after its track's `ended` word (the word overtook the confirm model) still
//! raises the alert the visit deserves, as a `new` followed at once by its `end`; a crop of an
//! alert that already ended is folded into nothing, so one visit is one alert.

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
    /// Why the alert ended (`end` events only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<EndCause>,
}

/// Why an alert ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// The edge said the person left (its tracker lost the track).
    Left,
    /// No message of the track for `cooldown_s` (a lost word, a device gone offline).
    Timeout,
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

/// A track: (device, camera, track id).
pub type Key = (String, String, u64);

/// One step of the alert engine (see [`AlertEngine::apply`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A crop the cloud confirmed, with the URL of its JPEG.
    Confirm(Confirmed, String),
    /// The edge's `seen` word: the track is still in view.
    Seen(Key),
    /// The edge's `ended` word: the track left.
    Left(Key),
    /// Only end alerts silent for longer than the cooldown.
    Expire,
    /// Nothing (a rejected crop).
    Nothing,
}

impl Step {
    /// The (device, camera) the step is about; `None` for [`Step::Expire`] and [`Step::Nothing`].
    pub fn camera(&self) -> Option<(&str, &str)> {
        match self {
            Self::Confirm(c, _) => Some((&c.device_id, &c.camera_id)),
            Self::Seen((d, c, _)) | Self::Left((d, c, _)) => Some((d, c)),
            Self::Expire | Self::Nothing => None,
        }
    }

    /// The track the step is about.
    pub fn track(&self) -> Option<Key> {
        match self {
            Self::Confirm(c, _) => Some((c.device_id.clone(), c.camera_id.clone(), c.track_id)),
            Self::Seen(k) | Self::Left(k) => Some(k.clone()),
            Self::Expire | Self::Nothing => None,
        }
    }
}

/// How long an ended track is remembered (late crops of it fold into nothing), at least.
pub const ENDED_MEMORY_US: i64 = 10 * 60 * 1_000_000;
/// Most ended tracks remembered.
const ENDED_MAX: usize = 10_000;

#[derive(Debug, Default)]
pub struct AlertEngine {
    cooldown_us: i64,
    active: BTreeMap<Key, Active>,
    /// Tracks the edge said ended: when, and whether they have had their alert.
    ended: BTreeMap<Key, (i64, bool)>,
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
            ..Self::default()
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

    /// Runs one step at cloud time `now_us`.
    pub fn apply(&mut self, step: &Step, now_us: i64) -> Changes {
        match step {
            Step::Confirm(c, url) => self.confirm(c, now_us, url.clone()),
            Step::Seen((d, c, t)) => self.seen(d, c, *t, now_us),
            Step::Left((d, c, t)) => self.left(d, c, *t, now_us),
            Step::Expire => self.expire(now_us),
            Step::Nothing => Changes::default(),
        }
    }

    /// Remembers that the edge said `key` ended at `at_us` (and whether it had its alert), as a
    /// store that keeps the engine's state between steps restores it.
    pub fn remember_ended(&mut self, key: Key, at_us: i64, alerted: bool) {
        self.ended.insert(key, (at_us, alerted));
    }

    /// When the edge said `key` ended, and whether it had its alert.
    pub fn ended(&self, key: &Key) -> Option<(i64, bool)> {
        self.ended.get(key).copied()
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
        let key = (c.device_id.clone(), c.camera_id.clone(), c.track_id);
        if let Some((_, alerted)) = self.ended.get_mut(&key) {
            if !std::mem::replace(alerted, true) {
                // The person left before the cloud confirmed them: the visit's alert, ended.
                self.open(c, now_us, crop_url, &mut changes);
                self.end(&key, now_us, EndCause::Left, &mut changes);
            }
            return changes;
        }
        self.open(c, now_us, crop_url, &mut changes);
        changes
    }

    /// Starts the track's alert, or folds the crop into it.
    fn open(&mut self, c: &Confirmed, now_us: i64, crop_url: String, changes: &mut Changes) {
        let was_on = self.camera_on(&c.device_id, &c.camera_id);
        let key = (c.device_id.clone(), c.camera_id.clone(), c.track_id);
        let (kind, alert_id, started_us, crops) = match self.active.get(&key) {
            Some(a) => (
                EventType::Update,
                a.alert_id.clone(),
                a.started_us,
                a.crops + 1,
            ),
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
            ended_by: None,
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
    }

    /// The edge says the track is still in view: its alert stays open.
    pub fn seen(&mut self, device: &str, camera: &str, track: u64, now_us: i64) -> Changes {
        let changes = self.expire(now_us);
        let key = (device.to_string(), camera.to_string(), track);
        if let Some(a) = self.active.get_mut(&key) {
            a.last_seen_us = a.last_seen_us.max(now_us);
        }
        changes
    }

    /// The edge says the track left the view: its alert ends now.
    pub fn left(&mut self, device: &str, camera: &str, track: u64, now_us: i64) -> Changes {
        let mut changes = self.expire(now_us);
        let key = (device.to_string(), camera.to_string(), track);
        let alerted = self.end(&key, now_us, EndCause::Left, &mut changes);
        self.ended
            .entry(key)
            .and_modify(|e| e.1 |= alerted)
            .or_insert((now_us, alerted));
        changes
    }

    /// Ends alerts silent for longer than the cooldown.
    pub fn expire(&mut self, now_us: i64) -> Changes {
        let mut changes = Changes::default();
        let silent: Vec<Key> = self
            .active
            .iter()
            .filter(|(_, a)| now_us - a.last_seen_us > self.cooldown_us)
            .map(|(k, _)| k.clone())
            .collect();
        for key in silent {
            self.end(&key, now_us, EndCause::Timeout, &mut changes);
        }
        self.forget_ended(now_us);
        changes
    }

    /// Ends the alert of `key`, if one is open; true when it did.
    fn end(&mut self, key: &Key, now_us: i64, cause: EndCause, changes: &mut Changes) -> bool {
        let Some(a) = self.active.remove(key) else {
            return false;
        };
        changes.events.push(AlertEvent {
            kind: EventType::End,
            cloud_decision_time_us: now_us,
            crops: a.crops,
            ended_by: Some(cause),
            ..a.best
        });
        if !self.camera_on(&key.0, &key.1) {
            changes.states.push((key.0.clone(), key.1.clone(), false));
        }
        true
    }

    /// Forgets ended tracks older than the memory (and the oldest beyond the cap).
    fn forget_ended(&mut self, now_us: i64) {
        let memory = self.cooldown_us.max(ENDED_MEMORY_US);
        self.ended.retain(|_, (at, _)| now_us - *at <= memory);
        if self.ended.len() > ENDED_MAX {
            let mut ats: Vec<i64> = self.ended.values().map(|(at, _)| *at).collect();
            ats.sort_unstable();
            let cut = ats[self.ended.len() - ENDED_MAX];
            self.ended.retain(|_, (at, _)| *at > cut);
        }
    }
}

#[cfg(test)]
mod tests;
