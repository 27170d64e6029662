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
use cascade_shared::wire::Compression;
use tokio::sync::Notify;

use super::Tracked;
use super::gop::GopCache;
use crate::buffer::Buffer;
use crate::decode::Frame;
use crate::detect::service::{CameraSlot, Detected};
use crate::record::{FrameInfo, Origin, crop_message, new_record};
use crate::telemetry::Telemetry;
use crate::track::{Tracker, Upload};

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
}

impl Post {
    /// Handles results until shutdown; frees the camera's slot after each.
    pub fn run(self, results: &Receiver<Detected>, slot: &CameraSlot, shutdown: &Shutdown) {
        let mut tracker = Tracker::new(self.tracker.clone());
        let mut run = 0;
        loop {
            let d = match results.recv_timeout(Duration::from_millis(100)) {
                Ok(d) => d,
                Err(RecvTimeoutError::Timeout) if !shutdown.is_cancelled() => continue,
                Err(_) => return,
            };
            if d.job.run != run {
                tracker = Tracker::new(self.tracker.clone());
                run = d.job.run;
            }
            match &d.result {
                Ok(people) => {
                    let uploads = tracker.update(people, d.job.frame.pts_us);
                    self.tracked.set(tracker.boxes());
                    if !uploads.is_empty() {
                        self.buffer_crops(&d, &uploads);
                    }
                }
                Err(e) => {
                    tracing::error!(camera = %self.camera_id, error = %e, "detector failed on a frame")
                }
            }
            slot.done();
        }
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

    /// Crops, encodes and commits one frame's uploads in one transaction, then wakes the uplink.
    fn buffer_crops(&self, d: &Detected, uploads: &[Upload]) {
        let cam = self.camera_id.as_str();
        let origin = Origin {
            device_id: &self.device_id,
            camera_id: cam,
            model: &self.model,
        };
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
        for up in &uploads {
            match crate::crop::make(source, &up.det.bbox, &self.crops) {
                Ok(crop) => {
                    let msg = crop_message(&origin, frame, up, crop);
                    records.push(new_record(cam, msg, self.compression, stored.clone()));
                }
                Err(e) => tracing::error!(camera = cam, error = %e, "crop failed"),
            }
        }
        let count = records.len();
        match self.buffer.push(self.clock.now_utc_us(), records) {
            Ok(pushed) => {
                self.telemetry.evicted(&pushed.evicted);
                self.telemetry.crops_buffered(
                    cam,
                    count,
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
                self.telemetry.crops_lost(cam, count, reason, &e);
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
