//! A tracker (IoU with the last and the motion-predicted box, then nearness for people who moved
//! further than their width between runs: `affinity`) and the upload policy: one person walking
//! by yields a handful of crops.
//!
//! A track is uploaded when it is confirmed (`confirm_hits` detections in a row). Until the cloud
//! says it saw a person in one of its crops (a verdict), it is uploaded again every
//! `confirm_interval` (up to `confirm_crops` crops), so an alert does not wait for the one good
//! crop; after that, only when a crop is clearly better (score) or `reupload_interval` has passed.
//! Between crops, an uploaded track says it is still in view (a `seen` word without a picture)
//! every `seen_interval`, and when the tracker loses it, that it ended: the cloud's alert ends
//! when the person leaves, not when its timer runs out.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use cascade_shared::clock::micros;
use cascade_shared::config::edge::TrackerConfig;
use cascade_shared::wire::{BoxPx, TrackEvent};

use crate::detect::Detection;

mod affinity;

use affinity::{Motion, affinity};

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    det: Detection,
    /// When `det` was seen (us), and the box centre's velocity (pixels per second).
    at: i64,
    velocity: (f32, f32),
    hits: u32,
    missed: u32,
    /// Score and time (us) of the last crop uploaded.
    uploaded: Option<(f32, i64)>,
    /// Crops uploaded so far.
    crops: u32,
    /// Time (us) of the last message of any kind about this track.
    said: i64,
    /// The cloud confirmed one of its crops.
    cloud_confirmed: bool,
}

/// A message about a track: a crop of `det` to cut and upload, or a word without a picture
/// (`det` is then the track's last detection).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Upload {
    pub track_id: u64,
    pub det: Detection,
    pub event: TrackEvent,
}

pub struct Tracker {
    cfg: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    /// A tracker numbering its tracks from `first_id` (unique across the camera's runs and the
    /// agent's restarts, so the cloud never folds a new person into an old track's alert).
    pub fn new(cfg: TrackerConfig, first_id: u64) -> Self {
        Self {
            cfg,
            tracks: Vec::new(),
            next_id: first_id.max(1),
        }
    }

    /// A first track id unique to a tracker started at UTC `now_us`: the time in milliseconds
    /// times 1000 (room for 1000 tracks per millisecond; under 2^53, so JSON readers keep it
    /// exact).
    pub fn first_id_at(now_us: i64) -> u64 {
        u64::try_from(now_us / 1000).unwrap_or(0) * 1000 + 1
    }

    pub fn active(&self) -> usize {
        self.tracks.len()
    }

    /// The last box of every live track, frame pixels (where the detector should keep looking).
    pub fn boxes(&self) -> Vec<BoxPx> {
        self.tracks.iter().map(|t| t.det.bbox).collect()
    }

    /// The cloud confirmed a crop of track `id`: its crops slow to the re-upload interval.
    pub fn cloud_confirmed(&mut self, id: u64) {
        if let Some(t) = self.tracks.iter_mut().find(|t| t.id == id) {
            t.cloud_confirmed = true;
        }
    }

    /// Feeds one detector run at `t_us`; returns the crops and words to send.
    pub fn update(&mut self, dets: &[Detection], t_us: i64) -> Vec<Upload> {
        let matched = self.associate(dets, t_us);
        let existing = self.tracks.len();
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for (i, det) in dets.iter().enumerate() {
            let idx = self.follow(matched[i], det, t_us);
            seen.push(idx);
            if self.wants_upload(idx, t_us) {
                let tr = &mut self.tracks[idx];
                tr.uploaded = Some((det.score, t_us));
                tr.crops += 1;
                tr.said = t_us;
                out.push(upload(tr, TrackEvent::Crop));
            } else if self.still_here_due(idx, t_us) {
                let tr = &mut self.tracks[idx];
                tr.said = t_us;
                out.push(upload(tr, TrackEvent::Seen));
            }
        }
        for (i, tr) in self.tracks.iter_mut().enumerate().take(existing) {
            if !seen.contains(&i) {
                tr.missed += 1;
            }
        }
        let max_missed = self.cfg.max_missed;
        out.extend(self.end_where(|t| t.missed > max_missed));
        out
    }

    /// Ends every track (the camera's run ended): an `ended` word for each one uploaded.
    pub fn end_all(&mut self) -> Vec<Upload> {
        self.end_where(|_| true)
    }

    /// Removes the tracks `lost` picks; an `ended` word for each one the cloud has heard of.
    fn end_where(&mut self, lost: impl Fn(&Track) -> bool) -> Vec<Upload> {
        let mut ended = Vec::new();
        self.tracks.retain(|t| {
            if !lost(t) {
                return true;
            }
            if t.uploaded.is_some() {
                ended.push(upload(t, TrackEvent::Ended));
            }
            false
        });
        ended
    }

    /// Continues the matched track with `det`, or starts a new one; returns its index.
    fn follow(&mut self, matched: Option<usize>, det: &Detection, t_us: i64) -> usize {
        if let Some(t) = matched {
            let tr = &mut self.tracks[t];
            let m = tr.motion();
            let dt_s = (t_us - tr.at) as f32 / 1e6;
            tr.velocity = m.updated_velocity(&det.bbox, dt_s, tr.hits == 1);
            tr.at = t_us;
            tr.det = *det;
            tr.hits += 1;
            tr.missed = 0;
            return t;
        }
        self.tracks.push(Track {
            id: self.next_id,
            det: *det,
            at: t_us,
            velocity: (0.0, 0.0),
            hits: 1,
            missed: 0,
            uploaded: None,
            crops: 0,
            said: i64::MIN,
            cloud_confirmed: false,
        });
        self.next_id += 1;
        self.tracks.len() - 1
    }

    /// Greedy matching by affinity (overlap with the last or predicted box, else nearness),
    /// best pairs first. `result[d]` is the track of detection `d`.
    fn associate(&self, dets: &[Detection], t_us: i64) -> Vec<Option<usize>> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (d, det) in dets.iter().enumerate() {
            for (t, tr) in self.tracks.iter().enumerate() {
                let dt_s = (t_us - tr.at) as f32 / 1e6;
                let a = affinity(&det.bbox, &tr.motion(), dt_s, self.cfg.iou_match);
                if let Some(v) = a.filter(|_| det.class_id == tr.det.class_id) {
                    pairs.push((v, d, t));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut result = vec![None; dets.len()];
        let mut used = vec![false; self.tracks.len()];
        for (_, d, t) in pairs {
            if result[d].is_none() && !used[t] {
                result[d] = Some(t);
                used[t] = true;
            }
        }
        result
    }

    fn wants_upload(&self, idx: usize, t_us: i64) -> bool {
        let tr = &self.tracks[idx];
        if tr.hits < self.cfg.confirm_hits.get() {
            return false;
        }
        let Some((score, at)) = tr.uploaded else {
            return true;
        };
        let confirming = !tr.cloud_confirmed && tr.crops < self.cfg.confirm_crops;
        let interval = if confirming {
            self.cfg.confirm_interval
        } else {
            self.cfg.reupload_interval
        };
        tr.det.score >= score + self.cfg.better_score || t_us - at >= micros(interval)
    }

    /// An uploaded track seen now and silent for `seen_interval` says it is still here.
    fn still_here_due(&self, idx: usize, t_us: i64) -> bool {
        let tr = &self.tracks[idx];
        tr.uploaded.is_some() && t_us - tr.said >= micros(self.cfg.seen_interval)
    }
}

impl Track {
    fn motion(&self) -> Motion {
        Motion {
            last: self.det.bbox,
            velocity: self.velocity,
        }
    }
}

fn upload(t: &Track, event: TrackEvent) -> Upload {
    Upload {
        track_id: t.id,
        det: t.det,
        event,
    }
}

/// Tracks the cloud confirmed, per camera, from the uplink's verdicts to each camera's post
/// stage (which tells its tracker).
#[derive(Debug, Default)]
pub struct CloudConfirmed(Mutex<HashMap<String, Vec<u64>>>);

impl CloudConfirmed {
    pub fn add(&self, camera: &str, track_id: u64) {
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        m.entry(camera.to_string()).or_default().push(track_id);
    }

    /// The tracks of `camera` confirmed since the last call.
    pub fn take(&self, camera: &str) -> Vec<u64> {
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        m.remove(camera).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
