//! Wires one camera's stages on two blocking threads: capture+decode+motion, and detect+track+
//! crop+buffer. Frames with motion go to the detector through a one-slot channel: when it is busy
//! the frame is dropped and counted, so detection never blocks capture.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use cascade_shared::clock::SharedClock;
use cascade_shared::config::edge::{CropConfig, SourceConfig, TrackerConfig};
use cascade_shared::shutdown::Shutdown;
use cascade_shared::wire::{Compression, Crop};
use tokio::sync::Notify;

use crate::buffer::{Buffer, NewRecord};
use crate::decode::{Frame, H264Decoder, VideoDecoder};
use crate::detect::Detect;
use crate::motion::MotionDetector;
use crate::source::{Source, open_file};
use crate::telemetry::Telemetry;
use crate::track::{Tracker, Upload};

/// What a camera pipeline needs besides its stages.
#[derive(Clone)]
pub struct Context {
    pub device_id: String,
    pub camera_id: String,
    pub telemetry: Arc<Telemetry>,
    pub buffer: Arc<Buffer>,
    pub clock: SharedClock,
    pub wake: Arc<Notify>,
    pub shutdown: Shutdown,
    pub crops: CropConfig,
    pub compression: Compression,
    pub max_rate_hz: f32,
    /// Frames arrive in real time (live camera or paced file): never wait for the detector.
    pub live: bool,
}

/// A frame on its way to the detector, with the UTC time it was captured.
struct Job {
    frame: Frame,
    capture_us: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Decode(#[from] crate::decode::DecodeError),
}

/// Starts a camera; the returned handles finish when its input ends or on shutdown.
pub fn start(
    ctx: Context,
    source: &SourceConfig,
    motion: Box<dyn MotionDetector>,
    detector: Box<dyn Detect>,
    tracker: TrackerConfig,
) -> Result<Vec<std::thread::JoinHandle<Result<(), PipelineError>>>, PipelineError> {
    let SourceConfig::File {
        path,
        realtime,
        looped,
        fps,
    } = source;
    let src = open_file(path, *fps)?;
    let decoder = H264Decoder::new()?;
    let (tx, rx) = sync_channel::<Job>(1);
    let (realtime, looped) = (*realtime, *looped);
    let ctx = Context {
        live: realtime,
        ..ctx
    };
    let (c1, c2) = (ctx.clone(), ctx);
    let capture = std::thread::Builder::new()
        .name(format!("capture-{}", c1.camera_id))
        .spawn(move || capture_loop(&c1, src, Box::new(decoder), motion, &tx, realtime, looped))
        .map_err(|e| crate::decode::DecodeError::Init(e.to_string()))?;
    let detect = std::thread::Builder::new()
        .name(format!("detect-{}", c2.camera_id))
        .spawn(move || {
            detect_loop(&c2, detector, Tracker::new(tracker), &rx);
            Ok(())
        })
        .map_err(|e| crate::decode::DecodeError::Init(e.to_string()))?;
    Ok(vec![capture, detect])
}

fn capture_loop(
    ctx: &Context,
    mut src: Box<dyn Source>,
    mut decoder: Box<dyn VideoDecoder>,
    mut motion: Box<dyn MotionDetector>,
    tx: &SyncSender<Job>,
    realtime: bool,
    looped: bool,
) -> Result<(), PipelineError> {
    let cam = ctx.camera_id.as_str();
    let started_us = ctx.clock.monotonic_us();
    let mut dispatch = Dispatch::new(ctx, tx);
    let (mut offset_us, mut last_pts) = (0i64, 0i64);
    let mut frames = Vec::new();
    while !ctx.shutdown.is_cancelled() {
        let Some(au) = src.next_unit()? else {
            decoder.flush(&mut frames)?;
            dispatch.frames(&mut frames, &mut *motion, offset_us);
            if !looped {
                break;
            }
            src.rewind()?;
            offset_us = last_pts + 1;
            continue;
        };
        if realtime {
            pace(ctx, started_us + offset_us + au.pts_us);
        }
        ctx.telemetry.unit_read(cam, au.data.len());
        match decoder.decode(&au, &mut frames) {
            Ok(()) => {}
            Err(e) if e.is_recoverable() => ctx.telemetry.decode_error(cam, &e),
            Err(e) => return Err(e.into()),
        }
        last_pts = last_pts.max(offset_us + au.pts_us);
        dispatch.frames(&mut frames, &mut *motion, offset_us);
    }
    Ok(())
}

/// Waits (on the injected clock) until monotonic time `due_us`, or shutdown.
fn pace(ctx: &Context, due_us: i64) {
    loop {
        let left = due_us - ctx.clock.monotonic_us();
        if left <= 0 || ctx.shutdown.is_cancelled() {
            return;
        }
        ctx.clock
            .sleep_blocking(Duration::from_micros(left.min(200_000) as u64));
    }
}

/// Runs motion on decoded frames and hands motion frames to the detector, at most at the
/// configured rate (by stream time).
struct Dispatch<'a> {
    ctx: &'a Context,
    tx: &'a SyncSender<Job>,
    start_utc: i64,
    min_gap_us: i64,
    last_sent: i64,
}

impl<'a> Dispatch<'a> {
    fn new(ctx: &'a Context, tx: &'a SyncSender<Job>) -> Self {
        let min_gap_us = (1e6 / f64::from(ctx.max_rate_hz)) as i64;
        Self {
            ctx,
            tx,
            start_utc: ctx.clock.now_utc_us(),
            min_gap_us,
            last_sent: i64::MIN / 2,
        }
    }

    fn frames(&mut self, frames: &mut Vec<Frame>, motion: &mut dyn MotionDetector, offset_us: i64) {
        let cam = self.ctx.camera_id.as_str();
        for mut frame in frames.drain(..) {
            frame.pts_us += offset_us;
            self.ctx.telemetry.frame_decoded(cam, frame.pts_us);
            let m = motion.detect(&frame);
            self.ctx
                .telemetry
                .motion(cam, m.boxes.len(), m.recalibrated);
            if m.boxes.is_empty() {
                continue;
            }
            if frame.pts_us - self.last_sent < self.min_gap_us {
                self.ctx.telemetry.detector_dropped(cam, "rate_limit");
                continue;
            }
            let pts = frame.pts_us;
            if self.send(Job {
                frame,
                capture_us: self.start_utc + pts,
            }) {
                self.last_sent = pts;
            }
        }
    }

    /// A live source never waits for the detector: the frame is dropped and counted. A file
    /// played as fast as possible has no clock to keep up with, so it waits instead (results do
    /// not depend on CPU speed).
    fn send(&self, job: Job) -> bool {
        if !self.ctx.live {
            return self.tx.send(job).is_ok();
        }
        match self.tx.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.ctx
                    .telemetry
                    .detector_dropped(&self.ctx.camera_id, "busy");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

fn detect_loop(
    ctx: &Context,
    mut detector: Box<dyn Detect>,
    mut tracker: Tracker,
    rx: &Receiver<Job>,
) {
    let cam = ctx.camera_id.as_str();
    while let Ok(job) = rx.recv() {
        let t0 = Instant::now();
        let people = match detector.detect_batch(&[&job.frame]) {
            Ok(mut p) => p.pop().unwrap_or_default(),
            Err(e) => {
                tracing::error!(camera = cam, error = %e, "detector failed on a frame");
                continue;
            }
        };
        ctx.telemetry
            .detector_ran(cam, t0.elapsed().as_secs_f64(), people.len());
        let uploads = tracker.update(&people, job.frame.pts_us);
        if !uploads.is_empty() {
            buffer_crops(ctx, &*detector, &job, &uploads);
        }
    }
}

/// Crops, encodes and commits one frame's uploads in one transaction, then wakes the uplink.
fn buffer_crops(ctx: &Context, detector: &dyn Detect, job: &Job, uploads: &[Upload]) {
    let cam = ctx.camera_id.as_str();
    let m = detector.manifest();
    let mut records = Vec::new();
    let bytes = std::rc::Rc::new(std::cell::Cell::new(0usize));
    for up in uploads {
        let crop = match crate::crop::make(&job.frame, &up.det.bbox, &ctx.crops) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(camera = cam, error = %e, "crop failed");
                continue;
            }
        };
        let msg = Crop {
            message_id: uuid::Uuid::now_v7().to_string(),
            device_id: ctx.device_id.clone(),
            camera_id: ctx.camera_id.clone(),
            sequence: 0,
            capture_time_us: job.capture_us,
            frame_width: job.frame.width as u32,
            frame_height: job.frame.height as u32,
            r#box: Some(up.det.bbox),
            crop_region: Some(crop.region),
            class_id: up.det.class_id,
            class_name: m
                .labels
                .get(up.det.class_id as usize)
                .cloned()
                .unwrap_or_default(),
            score: up.det.score,
            model_name: m.name.clone(),
            model_version: m.version.clone(),
            track_id: up.track_id,
            jpeg: crop.jpeg,
        };
        let (compression, bytes) = (ctx.compression, bytes.clone());
        records.push(NewRecord {
            camera: cam,
            build: Box::new(move |seq| {
                let stored = crate::uplink::store_body(
                    &Crop {
                        sequence: seq,
                        ..msg
                    }
                    .encode_body(compression),
                );
                bytes.set(bytes.get() + stored.len());
                stored
            }),
        });
    }
    let count = records.len();
    match ctx.buffer.push(ctx.clock.now_utc_us(), records) {
        Ok(pushed) => {
            ctx.telemetry.evicted(&pushed.evicted);
            ctx.telemetry.crops_buffered(
                cam,
                count,
                bytes.get(),
                ctx.buffer.stats(),
                ctx.clock.now_utc_us(),
            );
            ctx.wake.notify_one();
        }
        Err(e) => {
            tracing::error!(camera = cam, error = %e, "crops could not be buffered and are lost")
        }
    }
}
