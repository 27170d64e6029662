//! The edge agent's config (see `deploy/edge-agent.toml` for a starter), in two layers, like the
//! analyzer's ([`super::cloud`]):
//!
//! - [`raw::EdgeConfig`], the file as written: strict serde (`deny_unknown_fields`), durations
//!   already read into [`Duration`]s, counts as plain integers, so that a zero is reported together
//!   with every other problem instead of as the one parse error that would hide them;
//! - [`EdgeConfig`], what the agent runs on, made from it in one place,
//!   [`raw::EdgeConfig::validated`], which reports every problem at once, naming each field:
//!   durations as [`Duration`], counts that must be positive as `NonZero` integers, nothing left to
//!   convert or check again where the values are used.
//!
//! Only [`TrackerConfig`] and [`UplinkConfig`] differ between the layers; every other section is
//! the same type in both, and documents its defaults here.
//!
//! Source kinds are one enum, [`SourceConfig`]: a new kind is a variant here plus its arms in
//! [`SourceConfig::resolve_paths`] and [`SourceConfig::validate`], one arm in the agent's source
//! opener and one in `edge-agent check`.

mod crops;
mod detector;
mod edgetpu;
mod motion;
mod power;
pub mod raw;
mod regions;
mod source;
mod uplink;
pub mod v4l2;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use crops::CropConfig;
pub use detector::DetectorConfig;
pub use edgetpu::{EdgeTpuConfig, EdgeTpuDevice};
pub use motion::{MotionConfig, MotionOverrides};
pub use power::PowerConfig;
pub use regions::RegionsConfig;
pub use source::{RtspTransport, SourceConfig};

use crate::Problems;

pub use uplink::{Delivery, UplinkConfig};
pub use v4l2::V4l2Format;

/// The agent's config, validated. Made by [`raw::EdgeConfig::validated`].
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub device: DeviceConfig,
    /// At least one; ids unique.
    pub cameras: Vec<CameraConfig>,
    pub motion: MotionConfig,
    pub detector: DetectorConfig,
    pub tracker: TrackerConfig,
    pub crops: CropConfig,
    pub buffer: BufferConfig,
    pub uplink: UplinkConfig,
    pub telemetry: TelemetryConfig,
    pub supervisor: SupervisorConfig,
    pub power: PowerConfig,
}

impl EdgeConfig {
    /// The motion settings `camera` runs with: its own over `[motion]`.
    pub fn motion_of(&self, camera: &CameraConfig) -> MotionConfig {
        camera.motion.over(&self.motion)
    }

    /// The detector rate of `camera` while motion only is seen: `[detector] motion_rate_hz`, at
    /// most the camera's own `max_rate_hz`.
    pub fn motion_rate_of(&self, camera: &CameraConfig) -> f32 {
        self.detector.motion_rate_hz.min(self.max_rate_of(camera))
    }

    /// The detector rate `camera` runs at while a person is tracked: its own, else
    /// `[detector] max_rate_hz`.
    pub fn max_rate_of(&self, camera: &CameraConfig) -> f32 {
        camera.max_rate_hz.unwrap_or(self.detector.max_rate_hz)
    }
}

/// `[supervisor]`: how cameras are kept running.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    /// `stall_timeout_s`, in seconds: a camera that delivers no frame for this long is restarted.
    /// At least 0.5. Default: 10 s.
    #[serde(rename = "stall_timeout_s", with = "super::seconds")]
    pub stall_timeout: Duration,
    /// `restart_backoff_min_s`, in seconds: first wait before restarting a failed camera; it
    /// doubles (with jitter) up to `restart_backoff_max_s`, and starts over once a camera has
    /// streamed for a minute. Positive. Default: 1 s.
    #[serde(rename = "restart_backoff_min_s", with = "super::seconds")]
    pub restart_backoff_min: Duration,
    /// `restart_backoff_max_s`, in seconds: longest wait between restarts; also the retry interval
    /// of failures that need a person (an interlaced or non-H.264 stream). At least
    /// `restart_backoff_min_s`. Default: 60 s.
    #[serde(rename = "restart_backoff_max_s", with = "super::seconds")]
    pub restart_backoff_max: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            stall_timeout: Duration::from_secs(10),
            restart_backoff_min: Duration::from_secs(1),
            restart_backoff_max: Duration::from_secs(60),
        }
    }
}

impl SupervisorConfig {
    fn validate(&self, p: &mut Problems) {
        p.check(
            self.stall_timeout >= Duration::from_millis(500),
            "supervisor.stall_timeout_s",
            "must be at least 0.5",
        );
        p.check(
            !self.restart_backoff_min.is_zero(),
            "supervisor.restart_backoff_min_s",
            "must be positive",
        );
        p.check(
            self.restart_backoff_max >= self.restart_backoff_min,
            "supervisor.restart_backoff_max_s",
            "must be at least restart_backoff_min_s",
        );
    }
}

/// `[device]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// The device's id in MQTT topics and crops: 1-64 characters of `A-Z a-z 0-9 - _ .`.
    /// No default: `id` must be set.
    pub id: String,
    /// A file in `hardware-profiles/`; its settings apply where the config sets none.
    /// Default: none (the built-in defaults apply).
    #[serde(default)]
    pub profile: Option<PathBuf>,
}

/// `[[camera]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Unique among the cameras; 1-64 characters of `A-Z a-z 0-9 - _ .`. No default.
    pub id: String,
    /// Where the pictures come from. No default.
    pub source: SourceConfig,
    /// The same camera's main (full-resolution) stream, when `source` is its sub-stream: motion
    /// and detection run on `source`, crops are cut from this stream (H.264; decoded only for the
    /// pictures crops are cut from). Default: none, crops come from `source`.
    #[serde(default)]
    pub main_source: Option<SourceConfig>,
    /// `[camera.motion]`: this camera's motion settings over the `[motion]` defaults (its own
    /// masks, a threshold for a noisy sensor). Default: none, `[motion]` applies.
    #[serde(default)]
    pub motion: MotionOverrides,
    /// This camera's detector rate over `[detector] max_rate_hz`, in (0, 120]. Default: none.
    #[serde(default)]
    pub max_rate_hz: Option<f32>,
}

/// `[tracker]`, validated (the file's form is [`raw::TrackerConfig`], which documents the
/// defaults).
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// In (0, 1).
    pub iou_match: f32,
    /// Detections in a row before a track is confirmed and first uploaded.
    pub confirm_hits: NonZeroU32,
    /// Detector runs without a match before a track ends.
    pub max_missed: u32,
    /// Upload again after this long even if the crop is not better; positive.
    pub reupload_interval: Duration,
    /// Upload again when the score beats the last upload by this much.
    pub better_score: f32,
    /// Until the cloud confirms a track, upload it again after this long; positive.
    pub confirm_interval: Duration,
    /// Most crops of a track sent at `confirm_interval` while unconfirmed, 1 to 100.
    pub confirm_crops: u32,
    /// An uploaded track in view says so after this long without any message; positive.
    pub seen_interval: Duration,
}

/// `[buffer]`: the durable store crops wait in until the broker acknowledges them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// The buffer's folder. No default: `dir` must be set.
    pub dir: PathBuf,
    /// Above this size the oldest crops are dropped; at least 1 MiB. Default: 256 MiB (268435456).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// `max_age_s`, in seconds: crops older than this are dropped; at least 60. Default: 7 days
    /// (604800 s).
    #[serde(
        rename = "max_age_s",
        default = "default_max_age",
        with = "super::seconds"
    )]
    pub max_age: Duration,
}

fn default_max_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_max_age() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

impl BufferConfig {
    fn validate(&self, p: &mut Problems) {
        p.check(
            self.max_bytes >= 1024 * 1024,
            "buffer.max_bytes",
            "must be at least 1 MiB",
        );
        p.check(
            self.max_age >= Duration::from_secs(60),
            "buffer.max_age_s",
            "must be at least 60",
        );
    }
}

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Address of the `/metrics`, `/livez`, `/readyz` endpoint; port 0 picks a free one.
    /// Default: `127.0.0.1:9464`.
    pub listen: SocketAddr,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

#[cfg(test)]
mod tests;
