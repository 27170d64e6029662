//! A camera: its pipeline run (source -> decode -> motion -> detector slot), its post stage
//! (track -> crop -> buffer), and the supervisor that keeps it running. One failing camera never
//! stops the others, the detector service or the uplink.

pub mod board;
pub mod gop;
pub mod main_stream;
pub mod pipeline;
pub mod post;
pub mod supervisor;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use cascade_shared::clock::SharedClock;
use cascade_shared::config::edge::{MotionConfig, SourceConfig};
use cascade_shared::shutdown::Shutdown;
use cascade_shared::wire::BoxPx;

use crate::decode::DecodeError;
use crate::detect::service::CameraSlot;
use crate::source::SourceError;
use crate::telemetry::Telemetry;

/// Everything one camera's runs need; lives as long as the agent.
pub struct Camera {
    pub id: String,
    pub source: SourceConfig,
    pub motion: MotionConfig,
    /// Detector runs per second while a person is tracked and moving.
    pub max_rate_hz: f32,
    /// Detector runs per second while only motion is seen (or a tracked person stands still).
    pub motion_rate_hz: f32,
    /// The people the post stage is tracking now (written there, read by the pipeline).
    pub tracked: Arc<Tracked>,
    /// When any camera last saw motion or a tracked person (for power management).
    pub activity: Arc<crate::power::Activity>,
    pub telemetry: Arc<Telemetry>,
    pub clock: SharedClock,
    pub slot: CameraSlot,
    /// The runtime async sources (RTSP) run their producers on.
    pub runtime: tokio::runtime::Handle,
}

/// The boxes of the people a camera's post stage is tracking, shared with its pipeline: the
/// detector keeps looking where they are, and runs faster while there are any. The pipeline also
/// says here when a run's input ended (the post stage then ends that run's tracks).
#[derive(Debug, Default)]
pub struct Tracked {
    boxes: Mutex<Vec<BoxPx>>,
    /// The run whose input ended (0: none), until the post stage takes it.
    ended_run: AtomicU64,
}

impl Tracked {
    pub fn set(&self, boxes: Vec<BoxPx>) {
        *self.boxes.lock().unwrap_or_else(PoisonError::into_inner) = boxes;
    }

    pub fn get(&self) -> Vec<BoxPx> {
        self.boxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The input of `run` ended and its last result was consumed.
    pub fn input_ended(&self, run: u64) {
        self.ended_run.store(run, Ordering::Release);
    }

    /// Waits (at most `limit`) until the post stage has taken the ended run and buffered the words
    /// of its tracks, so an agent exiting when its files are done sends them.
    pub fn wait_tracks_ended(&self, stop: &Shutdown, limit: std::time::Duration) {
        let t0 = std::time::Instant::now();
        while (self.ended_run.load(Ordering::Acquire) != 0 || !self.get().is_empty())
            && !stop.is_cancelled()
            && t0.elapsed() < limit
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The run whose input ended since the last call, if any.
    pub fn take_ended(&self) -> Option<u64> {
        Some(self.ended_run.swap(0, Ordering::AcqRel)).filter(|r| *r != 0)
    }
}

/// How a run ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// The input ended (a file played once).
    Ended,
    /// Asked to stop (shutdown, or the watchdog).
    Stopped,
}

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("{count} corrupt access units in a row: the stream is broken")]
    DecodeStorm { count: u32 },
    #[error("panicked: {0}")]
    Panic(String),
    #[error("no frame for {seconds:.1} s: the source stalled")]
    Stalled { seconds: f64 },
    #[error("cannot start the camera's thread: {0}")]
    Thread(std::io::Error),
}

impl CameraError {
    /// A short label for `camera_reconnects_total{reason}`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Source(e) => e.label(),
            Self::Decode(DecodeError::Interlaced { .. }) => "interlaced",
            Self::Decode(_) | Self::DecodeStorm { .. } => "decode",
            Self::Panic(_) => "panic",
            Self::Stalled { .. } => "stall",
            Self::Thread(_) => "thread",
        }
    }

    /// Retrying cannot help until someone changes the camera or the config.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Source(e) => e.is_permanent(),
            Self::Decode(e) => !e.is_recoverable(),
            _ => false,
        }
    }
}

/// What the camera is doing, for `/readyz`, the `camera_up` gauge and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraState {
    /// Opening its source, or waiting for the first frame.
    Connecting,
    /// Delivering frames.
    Streaming,
    /// Waiting to restart after a failure.
    Backoff { reason: String },
    /// Its input ended (a file played once).
    Ended,
    /// Failed in a way retrying cannot fix (e.g. an interlaced stream); retried rarely.
    Failed { reason: String },
}

impl std::fmt::Display for CameraState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connecting => f.write_str("connecting"),
            Self::Streaming => f.write_str("streaming"),
            Self::Backoff { reason } => write!(f, "backoff: {reason}"),
            Self::Ended => f.write_str("ended"),
            Self::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// Frames a run delivered, and when the last one came (monotonic us): the watchdog reads it.
#[derive(Debug, Default)]
pub struct Heartbeat {
    frames: AtomicU64,
    last_us: AtomicI64,
}

impl Heartbeat {
    pub fn new(now_us: i64) -> Self {
        Self {
            frames: AtomicU64::new(0),
            last_us: AtomicI64::new(now_us),
        }
    }

    pub fn beat(&self, now_us: i64) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.last_us.store(now_us, Ordering::Relaxed);
    }

    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Microseconds since the last frame (or since the run started).
    pub fn idle_us(&self, now_us: i64) -> i64 {
        now_us - self.last_us.load(Ordering::Relaxed)
    }
}
