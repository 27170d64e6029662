//! A simple IoU tracker and the upload policy: one person walking by yields a handful of crops.
//! A track is uploaded when it is confirmed, then again only when its crop is clearly better
//! (score) or a configured interval has passed.

use cascade_shared::clock::micros;
use cascade_shared::config::edge::TrackerConfig;

use crate::detect::Detection;

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    det: Detection,
    hits: u32,
    missed: u32,
    /// Score and time (us) of the last upload.
    uploaded: Option<(f32, i64)>,
}

/// A detection chosen for upload, with its track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Upload {
    pub track_id: u64,
    pub det: Detection,
}

pub struct Tracker {
    cfg: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Self {
        Self {
            cfg,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    pub fn active(&self) -> usize {
        self.tracks.len()
    }

    /// The last box of every live track, frame pixels (where the detector should keep looking).
    pub fn boxes(&self) -> Vec<cascade_shared::wire::BoxPx> {
        self.tracks.iter().map(|t| t.det.bbox).collect()
    }

    /// Feeds one detector run at `t_us`; returns the detections to upload.
    pub fn update(&mut self, dets: &[Detection], t_us: i64) -> Vec<Upload> {
        let matched = self.associate(dets);
        let existing = self.tracks.len();
        let mut uploads = Vec::new();
        for (i, det) in dets.iter().enumerate() {
            let idx = match matched[i] {
                Some(t) => {
                    let tr = &mut self.tracks[t];
                    tr.det = *det;
                    tr.hits += 1;
                    tr.missed = 0;
                    t
                }
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        det: *det,
                        hits: 1,
                        missed: 0,
                        uploaded: None,
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            if self.wants_upload(idx, t_us) {
                let tr = &mut self.tracks[idx];
                tr.uploaded = Some((det.score, t_us));
                uploads.push(Upload {
                    track_id: tr.id,
                    det: *det,
                });
            }
        }
        let seen: Vec<usize> = matched.iter().flatten().copied().collect();
        for (i, tr) in self.tracks.iter_mut().enumerate().take(existing) {
            if !seen.contains(&i) {
                tr.missed += 1;
            }
        }
        let max_missed = self.cfg.max_missed;
        self.tracks.retain(|t| t.missed <= max_missed);
        uploads
    }

    /// Greedy matching by IoU, best pairs first. `result[d]` is the track of detection `d`.
    fn associate(&self, dets: &[Detection]) -> Vec<Option<usize>> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (d, det) in dets.iter().enumerate() {
            for (t, tr) in self.tracks.iter().enumerate() {
                let v = det.bbox.iou(&tr.det.bbox);
                if v >= self.cfg.iou_match && det.class_id == tr.det.class_id {
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
        match tr.uploaded {
            None => true,
            Some((score, at)) => {
                tr.det.score >= score + self.cfg.better_score
                    || t_us - at >= micros(self.cfg.reupload_interval)
            }
        }
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn a_walk_by_yields_a_handful_of_crops() {
        let mut t = Tracker::new(cfg());
        let mut uploads = Vec::new();
        for i in 0..50 {
            // 5 px per run at 5 Hz: 10 s of walking.
            uploads.extend(t.update(&[det(5.0 * i as f32, 0.8)], i * 200_000));
        }
        assert!(
            (1..=3).contains(&uploads.len()),
            "{} uploads",
            uploads.len()
        );
        assert!(
            uploads.iter().all(|u| u.track_id == uploads[0].track_id),
            "one track"
        );
    }

    #[test]
    fn upload_waits_for_confirmation_and_better_crops() {
        let mut t = Tracker::new(cfg());
        assert!(
            t.update(&[det(0.0, 0.6)], 0).is_empty(),
            "not confirmed yet"
        );
        assert_eq!(t.update(&[det(2.0, 0.6)], 1).len(), 1, "confirmed");
        assert!(
            t.update(&[det(4.0, 0.65)], 2).is_empty(),
            "not clearly better"
        );
        assert_eq!(t.update(&[det(6.0, 0.75)], 3).len(), 1, "clearly better");
    }

    #[test]
    fn tracks_end_after_missed_runs() {
        let mut t = Tracker::new(TrackerConfig {
            max_missed: 2,
            ..cfg()
        });
        t.update(&[det(0.0, 0.8)], 0);
        t.update(&[det(0.0, 0.8)], 1);
        for i in 0..3 {
            t.update(&[], 2 + i);
        }
        assert_eq!(t.active(), 0);
        let first = t.update(&[det(0.0, 0.8)], 10);
        assert!(first.is_empty(), "a new track starts unconfirmed");
    }

    #[test]
    fn two_people_get_two_tracks() {
        let mut t = Tracker::new(cfg());
        t.update(&[det(0.0, 0.8), det(200.0, 0.8)], 0);
        let ups = t.update(&[det(2.0, 0.8), det(202.0, 0.8)], 1);
        assert_eq!(ups.len(), 2);
        assert_ne!(ups[0].track_id, ups[1].track_id);
    }
}
