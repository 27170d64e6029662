//! A camera's post stage, on its own thread: detector results -> tracker -> crops -> one durable
//! buffer transaction per frame -> wake the uplink. It lives as long as the agent (a restarted run
//! only resets the tracker), so nothing buffered depends on a camera's health.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use cascade_shared::clock::SharedClock;
use cascade_shared::config::edge::{CropConfig, TrackerConfig};
use cascade_shared::manifest::ModelManifest;
use cascade_shared::shutdown::Shutdown;
use cascade_shared::wire::{Compression, TrackEvent};
use tokio::sync::Notify;

use super::Tracked;
use super::gop::GopCache;
use crate::buffer::Buffer;
use crate::buffer::NewRecord;
use crate::decode::Frame;
use crate::detect::service::{CameraSlot, Detected};
use crate::record::{FrameInfo, Origin, crop_message, new_record, word_message};
use crate::telemetry::Telemetry;
use crate::track::{CloudConfirmed, Tracker, Upload};

/// What the post stage needs.
pub struct Post {
    pub device_id: String,
    pub camera_id: String,
    pub model: ModelManifest,
    pub tracker: TrackerConfig,
    pub crops: CropConfig,
    pub compression: Compression,
    pub buffer: Arc<Buffer>,
    pub telemetry: Arc<Telemetry>,
    pub clock: SharedClock,
    pub wake: Arc<Notify>,
    /// The camera's main stream, when it has one: crops are cut from it at full resolution.
    pub main: Option<Arc<GopCache>>,
    /// Where the tracked people are, for the camera's pipeline.
    pub tracked: Arc<Tracked>,
    /// The tracks the cloud confirmed (from the uplink's verdicts).
    pub confirmed: Arc<CloudConfirmed>,
}

impl Post {
    /// Handles results until shutdown; frees the camera's slot after each.
    pub fn run(self, results: &Receiver<Detected>, slot: &CameraSlot, shutdown: &Shutdown) {
        let mut tracker = self.new_tracker();
        let (mut run, mut last) = (0, None);
        loop {
            let d = match results.recv_timeout(Duration::from_millis(100)) {
                Ok(d) => d,
                Err(RecvTimeoutError::Timeout) if !shutdown.is_cancelled() => {
                    if let (Some(ended), Some(frame)) = (self.tracked.take_ended(), last)
                        && ended == run
                    {
                        self.end_tracks(&mut tracker, frame);
                    }
                    continue;
                }
                Err(_) => return,
            };
            if d.job.run != run {
                // A new run of the camera: its people are tracked afresh, the old tracks end.
                if let Some(frame) = last {
                    self.end_tracks(&mut tracker, frame);
                }
                tracker = self.new_tracker();
                run = d.job.run;
            }
            last = Some(FrameInfo {
                width: d.job.frame.width,
                height: d.job.frame.height,
                capture_us: d.job.capture_us,
            });
            self.handle(&mut tracker, &d);
            slot.done();
        }
    }

    /// One detector result through the tracker; its crops and words buffered.
    fn handle(&self, tracker: &mut Tracker, d: &Detected) {
        for id in self.confirmed.take(&self.camera_id) {
            tracker.cloud_confirmed(id);
        }
        match &d.result {
            Ok(people) => {
                let uploads = tracker.update(people, d.job.frame.pts_us);
                self.tracked.set(tracker.boxes());
                if !uploads.is_empty() {
                    self.buffer_uploads(d, &uploads);
                }
            }
            Err(e) => {
                tracing::error!(camera = %self.camera_id, error = %e, "detector failed on a frame")
            }
        }
    }

    /// Ends every track (words for those the cloud heard of), as of the last frame seen.
    fn end_tracks(&self, tracker: &mut Tracker, last: FrameInfo) {
        let ended = tracker.end_all();
        self.tracked.set(Vec::new());
        if !ended.is_empty() {
            self.buffer_words(last, &ended);
        }
    }

    /// A tracker whose track ids no earlier run or start of the agent used.
    fn new_tracker(&self) -> Tracker {
        let first = Tracker::first_id_at(self.clock.now_utc_us());
        Tracker::new(self.tracker.clone(), first)
    }

    /// The main-stream picture matching the detected frame, when the camera has a main stream.
    fn main_frame(&self, d: &Detected) -> Option<Frame> {
        let cache = self.main.as_ref()?;
        let t0 = std::time::Instant::now();
        let got = cache.frame_at(d.job.capture_us);
        let seconds = t0.elapsed().as_secs_f64();
        self.telemetry
            .main_stream_crop(&self.camera_id, seconds, got.as_ref().err());
        got.ok()
    }

    /// Crops, encodes and commits one frame's uploads (crops and track words) in one transaction,
    /// then wakes the uplink.
    fn buffer_uploads(&self, d: &Detected, uploads: &[Upload]) {
        let cam = self.camera_id.as_str();
        let origin = self.origin();
        let main = self.main_frame(d);
        let (source, uploads) = match &main {
            Some(f) => (f, scaled(uploads, &d.job.frame, f)),
            None => (&d.job.frame, uploads.to_vec()),
        };
        let frame = FrameInfo {
            width: source.width,
            height: source.height,
            capture_us: d.job.capture_us,
        };
        let stored = Rc::new(Cell::new(0usize));
        let mut records = Vec::new();
        let words = uploads
            .iter()
            .filter(|u| u.event != TrackEvent::Crop)
            .count();
        for up in &uploads {
            let msg = if up.event == TrackEvent::Crop {
                match crate::crop::make(source, &up.det.bbox, &self.crops) {
                    Ok(crop) => crop_message(&origin, frame, up, crop),
                    Err(e) => {
                        tracing::error!(camera = cam, error = %e, "crop failed");
                        continue;
                    }
                }
            } else {
                word_message(&origin, frame, up)
            };
            records.push(new_record(cam, msg, self.compression, stored.clone()));
        }
        let crops = records.len() - words;
        self.commit(records, crops, &stored);
    }

    /// Commits the words of tracks ended without a frame (the input ended) in one transaction.
    fn buffer_words(&self, frame: FrameInfo, words: &[Upload]) {
        let origin = self.origin();
        let stored = Rc::new(Cell::new(0usize));
        let records = words
            .iter()
            .map(|up| {
                let msg = word_message(&origin, frame, up);
                new_record(&self.camera_id, msg, self.compression, stored.clone())
            })
            .collect();
        self.commit(records, 0, &stored);
    }

    fn origin(&self) -> Origin<'_> {
        Origin {
            device_id: &self.device_id,
            camera_id: &self.camera_id,
            model: &self.model,
        }
    }

    /// Pushes `records` (`crops` of them crops, the rest words) in one transaction and wakes the
    /// uplink.
    fn commit(&self, records: Vec<NewRecord<'_>>, crops: usize, stored: &Rc<Cell<usize>>) {
        let cam = self.camera_id.as_str();
        match self.buffer.push(self.clock.now_utc_us(), records) {
            Ok(pushed) => {
                self.telemetry.evicted(&pushed.evicted);
                self.telemetry.crops_buffered(
                    cam,
                    crops,
                    stored.get(),
                    self.buffer.stats(),
                    self.clock.now_utc_us(),
                );
                self.wake.notify_one();
            }
            Err(e) => {
                let reason = if e.is_disk_full() {
                    "disk_full"
                } else {
                    "io_error"
                };
                self.telemetry.crops_lost(cam, crops, reason, &e);
            }
        }
    }
}

/// `uploads` with their boxes moved from `from`'s pixels to `to`'s (sub-stream to main stream).
fn scaled(uploads: &[Upload], from: &Frame, to: &Frame) -> Vec<Upload> {
    let sx = to.width as f32 / from.width.max(1) as f32;
    let sy = to.height as f32 / from.height.max(1) as f32;
    uploads
        .iter()
        .map(|u| {
            let mut u = *u;
            let b = &mut u.det.bbox;
            (b.x1, b.x2, b.y1, b.y2) = (b.x1 * sx, b.x2 * sx, b.y1 * sy, b.y2 * sy);
            u
        })
        .collect()
}
