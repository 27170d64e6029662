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
mod edgetpu;
mod motion;
mod power;
pub mod raw;
mod regions;
mod uplink;
pub mod v4l2;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crops::CropConfig;
pub use edgetpu::{EdgeTpuConfig, EdgeTpuDevice};
pub use motion::{MotionConfig, MotionOverrides};
pub use power::PowerConfig;
pub use regions::RegionsConfig;

use super::BackendKind;
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

/// A camera's `source = { kind = "...", ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// An `.mp4` or Annex-B `.h264` file.
    File {
        /// No default.
        path: PathBuf,
        /// Play at the stream's own frame rate (true) or as fast as possible (false).
        /// Default: false.
        #[serde(default)]
        realtime: bool,
        /// `loop`: start again at the end (a stand-in for a live camera). Default: false.
        #[serde(default, rename = "loop")]
        looped: bool,
        /// Played as fast as possible (`realtime = false`), do not wait for a busy detector: it
        /// runs on the newest frame whenever it is free, as on a live camera. A quick look through
        /// long recordings; what is found then depends on the CPU's speed. Default: false (every
        /// frame the detector's rate allows is detected, the same result on any machine).
        #[serde(default)]
        skim: bool,
        /// Frame rate for Annex-B files, which carry no timestamps; in (0, 240]. Default: 25.
        #[serde(default = "default_fps")]
        fps: f64,
    },
    /// An IP camera or relay over RTSP (H.264).
    Rtsp {
        /// `rtsp://host:port/path`. Put credentials in `username` and `password_env`, not here.
        url: String,
        #[serde(default)]
        username: Option<String>,
        /// The password, in the config file; prefer `password_env`.
        #[serde(default)]
        password: Option<String>,
        /// An environment variable that holds the password.
        #[serde(default)]
        password_env: Option<String>,
        /// `tcp` (default) or `udp`.
        #[serde(default)]
        transport: RtspTransport,
        /// Connect and request timeout, and the longest wait for a frame. Default: 10 s.
        #[serde(default = "default_rtsp_timeout", with = "super::seconds")]
        timeout_s: Duration,
    },
    /// A USB or CSI camera on this machine (Video4Linux2); see [`v4l2`].
    V4l2 {
        /// The device node: `/dev/video0`, or better a `/dev/v4l/by-id/...` name, which stays the
        /// same when the camera is plugged into another port. An absolute path. No default.
        device: PathBuf,
        /// `auto` (H.264, then NV12 or YUYV, then MJPEG), `h264`, `mjpeg`, `yuyv` or `nv12`.
        /// Default: `auto`.
        #[serde(default)]
        format: V4l2Format,
        /// Requested width, 16 to 7680; the driver may grant another (logged). Default: 1280.
        #[serde(default = "v4l2::default_width")]
        width: u32,
        /// Requested height, 16 to 4320. Default: 720.
        #[serde(default = "v4l2::default_height")]
        height: u32,
        /// Requested frame rate, in (0, 240]; the driver may grant another (logged). Default: 15.
        #[serde(default = "v4l2::default_fps")]
        fps: f64,
    },
}

fn default_fps() -> f64 {
    25.0
}

fn default_rtsp_timeout() -> Duration {
    Duration::from_secs(10)
}

/// How RTP travels from an RTSP camera.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RtspTransport {
    /// Interleaved on the RTSP TCP connection: works through NAT and firewalls. Default.
    #[default]
    Tcp,
    /// Separate UDP ports: less latency on a clean LAN; lost packets are lost frames.
    Udp,
}

impl SourceConfig {
    /// Makes a file source's path relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        match self {
            Self::File { path, .. } => *path = super::resolve(base, path),
            Self::Rtsp { .. } | Self::V4l2 { .. } => {}
        }
    }

    /// Range and consistency problems, named under `field` (e.g. `camera[0].source`).
    pub fn validate(&self, field: &str, p: &mut Problems) {
        match self {
            Self::File {
                fps,
                realtime,
                skim,
                ..
            } => {
                p.check(
                    *fps > 0.0 && *fps <= 240.0,
                    format!("{field}.fps"),
                    "must be in (0, 240]",
                );
                p.check(
                    !(*skim && *realtime),
                    format!("{field}.skim"),
                    "skims a file played as fast as possible: remove it or set realtime = false",
                );
            }
            Self::Rtsp {
                url,
                password,
                password_env,
                timeout_s,
                ..
            } => {
                p.check(
                    url.starts_with("rtsp://") || url.starts_with("rtsps://"),
                    format!("{field}.url"),
                    "must start with rtsp:// or rtsps://",
                );
                p.check(
                    password.is_none() || password_env.is_none(),
                    format!("{field}.password"),
                    "set password or password_env, not both",
                );
                p.check(
                    *timeout_s >= Duration::from_secs(1),
                    format!("{field}.timeout_s"),
                    "must be at least 1",
                );
            }
            Self::V4l2 {
                device,
                width,
                height,
                fps,
                ..
            } => v4l2::validate(field, device, (*width, *height), *fps, p),
        }
    }
}

/// `[detector]`: the person detector. `backend`, `threads` and `input_sizes` are resolved against
/// the hardware profile by [`super::effective::Effective`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// A model manifest (see `models/`). No default: `manifest` must be set.
    pub manifest: PathBuf,
    /// The inference runtime. Default: the hardware profile's accelerator's (`onnxruntime` for
    /// `cpu` and `cuda`), else `onnxruntime`.
    #[serde(default)]
    pub backend: Option<BackendKind>,
    /// `libonnxruntime.so`. Default: `$ORT_DYLIB_PATH`, then `.cache/onnxruntime/libonnxruntime.so`.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// TensorRT's engine (and timing) cache folder, used when the hardware profile's `[gpu]` names
    /// `tensorrt`: the first start with a model builds its engine (minutes on a Jetson) and keeps
    /// it here for the next starts; created when missing, must be writable, and must not be
    /// `buffer.dir` or inside it. Default: `trt-cache` beside `buffer.dir`
    /// (`/var/lib/cascade/trt-cache` for `/var/lib/cascade/buffer`).
    #[serde(default)]
    pub engine_cache: Option<PathBuf>,
    /// Detector input sides the agent may step between to keep up, largest first (multiples of
    /// 32). Default: the hardware profile's `detector_input_sizes`, else the model's input.
    #[serde(default)]
    pub input_sizes: Option<Vec<u32>>,
    /// Most detector runs per second per camera while a person is being tracked (so the best
    /// crop is found), in (0, 120]. Default: 5.
    #[serde(default = "default_rate")]
    pub max_rate_hz: f32,
    /// Most detector runs per second per camera while only motion is seen, in (0, 120], at most
    /// a camera's `max_rate_hz`. Default: 2.
    #[serde(default = "default_motion_rate")]
    pub motion_rate_hz: f32,
    /// `[detector.edgetpu]`: the Edge TPU runtime and device (profiles with `accelerator =
    /// "edge_tpu"`).
    #[serde(default)]
    pub edgetpu: EdgeTpuConfig,
    /// `[detector.regions]`: run on squares around the motion instead of the whole frame.
    #[serde(default)]
    pub regions: RegionsConfig,
    /// Lowest score kept, 0 to 1. Default: 0.5.
    #[serde(default = "default_score")]
    pub score_threshold: f32,
    /// IoU above which non-maximum suppression drops the weaker box, in (0, 1]. Default: 0.45.
    #[serde(default = "default_iou")]
    pub nms_iou: f32,
    /// Smallest detection kept, as a fraction (0 to below 1) of the frame area. Default: 0.001.
    #[serde(default = "default_min_box")]
    pub min_box_area: f32,
    /// Threads one inference may use, 1 to 64. Default: the hardware profile's
    /// `detector_threads`, else 1.
    #[serde(default)]
    pub threads: Option<u32>,
    /// The detector's p95 run time, in milliseconds, that the agent steps down `input_sizes` to
    /// stay under (and steps back up within, with headroom), 1 to 10000. Default: the interval
    /// that keeps every camera at its rate on the one shared detector, 1000 / (the sum of the
    /// cameras' rates) ms: 1000 / (`max_rate_hz` × number of cameras) when none sets its own.
    #[serde(default)]
    pub latency_budget_ms: Option<u32>,
    /// Step between `input_sizes` to keep within the budget (true), or always run the largest
    /// (false). Default: true.
    #[serde(default = "default_adapt")]
    pub adapt: bool,
}

fn default_rate() -> f32 {
    5.0
}
fn default_motion_rate() -> f32 {
    2.0
}
fn default_adapt() -> bool {
    true
}
fn default_score() -> f32 {
    0.5
}
fn default_iou() -> f32 {
    0.45
}
fn default_min_box() -> f32 {
    0.001
}

impl DetectorConfig {
    /// The TensorRT engine cache folder in force: `engine_cache`, else `trt-cache` beside
    /// `buffer_dir`.
    pub fn engine_cache_dir(&self, buffer_dir: &Path) -> PathBuf {
        self.engine_cache
            .clone()
            .unwrap_or_else(|| buffer_dir.parent().unwrap_or(buffer_dir).join("trt-cache"))
    }

    /// `engine_cache` must not be the buffer's folder or inside it (the crops' store).
    fn validate_engine_cache(&self, buffer_dir: &Path, p: &mut Problems) {
        if let Some(cache) = &self.engine_cache {
            p.check(
                !cache.starts_with(buffer_dir),
                "detector.engine_cache",
                format!(
                    "{}: must not be buffer.dir ({}) or inside it",
                    cache.display(),
                    buffer_dir.display()
                ),
            );
        }
    }

    fn validate(&self, p: &mut Problems) {
        p.check(
            self.max_rate_hz > 0.0 && self.max_rate_hz <= 120.0,
            "detector.max_rate_hz",
            "must be in (0, 120]",
        );
        p.check(
            self.motion_rate_hz > 0.0 && self.motion_rate_hz <= self.max_rate_hz,
            "detector.motion_rate_hz",
            "must be in (0, max_rate_hz]",
        );
        self.regions.validate(p);
        self.edgetpu.validate(p);
        p.check(
            (0.0..=1.0).contains(&self.score_threshold),
            "detector.score_threshold",
            "must be within 0..=1",
        );
        p.check(
            self.nms_iou > 0.0 && self.nms_iou <= 1.0,
            "detector.nms_iou",
            "must be in (0, 1]",
        );
        p.check(
            (0.0..1.0).contains(&self.min_box_area),
            "detector.min_box_area",
            "must be within 0..1",
        );
        p.check(
            self.threads.is_none_or(|t| (1..=64).contains(&t)),
            "detector.threads",
            "must be 1..=64",
        );
        p.check(
            self.latency_budget_ms
                .is_none_or(|b| (1..=10_000).contains(&b)),
            "detector.latency_budget_ms",
            "must be 1..=10000",
        );
        if let Some(sizes) = &self.input_sizes {
            p.check(
                crate::profile::valid_input_sizes(sizes),
                "detector.input_sizes",
                "must be non-empty, strictly decreasing multiples of 32",
            );
        }
    }
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
mod tests {
    use super::*;
    use crate::config::ConfigFile;
    use crate::wire::Compression;

    const MINIMAL: &str = r#"
        [device]
        id = "dev-1"
        [[camera]]
        id = "cam-1"
        source = { kind = "file", path = "clip.mp4" }
        [detector]
        manifest = "models/m.toml"
        [buffer]
        dir = "buffer"
        [uplink]
        host = "localhost"
        port = 8883
        ca_file = "ca.pem"
    "#;

    fn file(text: &str) -> raw::EdgeConfig {
        toml::from_str(text).expect("parses")
    }

    fn validated(text: &str) -> Result<EdgeConfig, Problems> {
        file(text).validated()
    }

    /// A file source's `path`, `realtime`, `loop` and `fps`.
    fn file_source(source: &SourceConfig) -> (&Path, bool, bool, f64) {
        #[allow(irrefutable_let_patterns)] // until the next source kind
        let SourceConfig::File {
            path,
            realtime,
            looped,
            fps,
            ..
        } = source
        else {
            panic!("not a file source: {source:?}");
        };
        (path, *realtime, *looped, *fps)
    }

    #[test]
    fn a_camera_sets_its_own_motion_and_rate_over_the_defaults() {
        let text = MINIMAL.replace(
            "source = { kind = \"file\", path = \"clip.mp4\" }",
            "source = { kind = \"file\", path = \"clip.mp4\" }\nmax_rate_hz = 2.0\n\
             motion = { threshold = 40, masks = [[[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]]] }",
        );
        let cfg = validated(&text).expect("valid");
        let cam = &cfg.cameras[0];
        let m = cfg.motion_of(cam);
        assert_eq!((m.threshold, m.width, m.masks.len()), (40, 320, 1));
        assert_eq!(cfg.max_rate_of(cam), 2.0);

        let bad = MINIMAL.replace(
            "source = { kind = \"file\", path = \"clip.mp4\" }",
            "source = { kind = \"file\", path = \"clip.mp4\" }\nmax_rate_hz = 0.0\n\
             motion = { width = 8 }",
        );
        let problems = validated(&bad).expect_err("invalid").to_string();
        assert!(problems.contains("camera[0].max_rate_hz"), "{problems}");
        assert!(problems.contains("camera[0].motion.width"), "{problems}");
        let unknown = MINIMAL.replace(
            "source = { kind = \"file\", path = \"clip.mp4\" }",
            "source = { kind = \"file\", path = \"clip.mp4\" }\nmotion = { treshold = 4 }",
        );
        let err = toml::from_str::<raw::EdgeConfig>(&unknown).expect_err("unknown field");
        assert!(err.to_string().contains("treshold"), "{err}");
    }

    #[test]
    fn skim_is_for_files_played_as_fast_as_possible() {
        let with =
            |src: &str| MINIMAL.replace("source = { kind = \"file\", path = \"clip.mp4\" }", src);
        validated(&with(
            "source = { kind = \"file\", path = \"clip.mp4\", skim = true }",
        ))
        .expect("valid");
        let bad =
            with("source = { kind = \"file\", path = \"clip.mp4\", skim = true, realtime = true }");
        let problems = validated(&bad).expect_err("invalid").to_string();
        assert!(problems.contains("camera[0].source.skim"), "{problems}");
    }

    #[test]
    fn minimal_config_is_valid_with_the_documented_defaults() {
        let cfg = validated(MINIMAL).expect("valid");
        assert!(cfg.uplink.tls);
        assert_eq!(cfg.device.profile, None);
        let (_, realtime, looped, fps) = file_source(&cfg.cameras[0].source);
        assert_eq!((realtime, looped, fps), (false, false, 25.0));
        let m = &cfg.motion;
        assert_eq!((m.width, m.threshold, m.warmup_frames), (320, 25, 5));
        assert_eq!(
            (m.min_area, m.learning_rate, m.global_change),
            (0.002, 0.05, 0.6)
        );
        assert!(m.masks.is_empty());
        let d = &cfg.detector;
        assert_eq!((d.backend, &d.onnxruntime), (None, &None));
        assert_eq!((&d.input_sizes, d.threads), (&None, None));
        assert_eq!((d.latency_budget_ms, d.adapt), (None, true));
        assert_eq!(
            (d.max_rate_hz, d.score_threshold, d.nms_iou, d.min_box_area),
            (5.0, 0.5, 0.45, 0.001)
        );
        let t = &cfg.tracker;
        assert_eq!((t.iou_match, t.better_score), (0.3, 0.1));
        assert_eq!((t.confirm_hits.get(), t.max_missed), (2, 5));
        assert_eq!(t.reupload_interval, Duration::from_secs(10));
        let c = &cfg.crops;
        assert_eq!((c.padding, c.max_side, c.jpeg_quality), (0.15, 640, 80));
        assert_eq!(cfg.buffer.max_bytes, 256 * 1024 * 1024);
        assert_eq!(cfg.buffer.max_age, Duration::from_secs(7 * 86_400));
        let u = &cfg.uplink;
        assert_eq!(u.keep_alive, Duration::from_secs(15));
        assert_eq!((u.max_packet_bytes, u.max_inflight.get()), (1 << 20, 16));
        assert_eq!(u.reconnect_max, Duration::from_secs(30));
        assert_eq!(u.ack_timeout, Duration::from_secs(60));
        assert_eq!(u.compression, Compression::None);
        assert_eq!((&u.username, &u.password), (&None, &None));
        assert_eq!(
            cfg.telemetry.listen,
            SocketAddr::from(([127, 0, 0, 1], 9464))
        );
        assert_eq!(cfg.supervisor, SupervisorConfig::default());
        assert_eq!(cfg.supervisor.stall_timeout, Duration::from_secs(10));
    }

    /// The starter config parses and validates as written, and every setting it shows at a
    /// default's value (or leaves commented out) is that default.
    #[test]
    fn the_starter_config_is_valid_and_shows_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/edge-agent.toml");
        let text = std::fs::read_to_string(path).expect("starter");
        let starter = validated(&text).expect("valid");
        let defaults = validated(MINIMAL).expect("valid");
        let debug = |c: &EdgeConfig| {
            format!(
                "{:?}",
                (&c.motion, &c.tracker, &c.crops, &c.telemetry, &c.supervisor)
            )
        };
        assert_eq!(debug(&starter), debug(&defaults));
        let (s, d) = (&starter.detector, &defaults.detector);
        assert_eq!(
            format!(
                "{:?}",
                (s.backend, &s.onnxruntime, &s.input_sizes, s.threads)
            ),
            format!(
                "{:?}",
                (d.backend, &d.onnxruntime, &d.input_sizes, d.threads)
            ),
            "the hardware profile decides these",
        );
        assert_eq!(
            (s.max_rate_hz, s.score_threshold, s.nms_iou, s.min_box_area),
            (d.max_rate_hz, d.score_threshold, d.nms_iou, d.min_box_area)
        );
        assert_eq!(
            (s.motion_rate_hz, &s.regions),
            (d.motion_rate_hz, &d.regions)
        );
        assert_eq!(
            (s.latency_budget_ms, s.adapt),
            (d.latency_budget_ms, d.adapt)
        );
        assert_eq!(
            (starter.buffer.max_bytes, starter.buffer.max_age),
            (defaults.buffer.max_bytes, defaults.buffer.max_age)
        );
        let (s, d) = (&starter.uplink, &defaults.uplink);
        assert_eq!(
            format!(
                "{:?}",
                (
                    s.tls,
                    s.keep_alive,
                    s.max_packet_bytes,
                    s.max_inflight,
                    s.reconnect_max,
                    s.ack_timeout,
                    s.compression,
                    &s.username,
                    &s.password
                )
            ),
            format!(
                "{:?}",
                (
                    d.tls,
                    d.keep_alive,
                    d.max_packet_bytes,
                    d.max_inflight,
                    d.reconnect_max,
                    d.ack_timeout,
                    d.compression,
                    &d.username,
                    &d.password
                )
            )
        );
        let (_, _, looped, fps) = file_source(&starter.cameras[0].source);
        assert_eq!((looped, fps), (false, 25.0));
    }

    #[test]
    fn durations_keep_their_field_names_and_units() {
        let text = MINIMAL
            .replace(
                "[buffer]",
                "[tracker]\nreupload_interval_s = 0.25\n[supervisor]\nstall_timeout_s = 2\n[buffer]\nmax_age_s = 90",
            )
            .replace(
                "port = 8883",
                "port = 8883\nkeep_alive_s = 20\nreconnect_max_s = 2.5\nack_timeout_s = 6",
            );
        let cfg = validated(&text).expect("valid");
        assert_eq!(cfg.tracker.reupload_interval, Duration::from_millis(250));
        assert_eq!(cfg.supervisor.stall_timeout, Duration::from_secs(2));
        assert_eq!(cfg.buffer.max_age, Duration::from_secs(90));
        assert_eq!(cfg.uplink.keep_alive, Duration::from_secs(20));
        assert_eq!(cfg.uplink.reconnect_max, Duration::from_millis(2500));
        assert_eq!(cfg.uplink.ack_timeout, Duration::from_secs(6));
        for (from, to, field) in [
            (
                "port = 8883",
                "port = 8883\nkeep_alive_s = -1",
                "keep_alive_s",
            ),
            (
                "port = 8883",
                "port = 8883\nack_timeout_s = \"60s\"",
                "ack_timeout_s",
            ),
            (
                "dir = \"buffer\"",
                "dir = \"b\"\nmax_age_s = 1e99",
                "max_age_s",
            ),
        ] {
            let e = toml::from_str::<raw::EdgeConfig>(&MINIMAL.replace(from, to))
                .expect_err(to)
                .to_string();
            assert!(e.contains(field), "{to}: {e}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        for (from, to, field) in [
            ("port = 8883", "port = 8883\nprot = 1", "prot"),
            (
                "[buffer]",
                "[tracker]\nreupload_interval = 3\n[buffer]",
                "reupload_interval",
            ),
            (
                "path = \"clip.mp4\"",
                "path = \"clip.mp4\", url = \"x\"",
                "url",
            ),
        ] {
            let err = toml::from_str::<raw::EdgeConfig>(&MINIMAL.replace(from, to))
                .expect_err("refused")
                .to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let text = MINIMAL
            .replace("id = \"dev-1\"", "id = \"dev/1\"")
            .replace(
                "port = 8883",
                "port = 0\nmax_inflight = 0\nkeep_alive_s = 70000\nreconnect_max_s = 0.5\n\
                 ack_timeout_s = 1\nmax_packet_bytes = 1024",
            )
            .replace(
                "path = \"clip.mp4\"",
                "path = \"clip.mp4\", fps = 0.0 }\n[[camera]]\nid = \"cam-1\"\nsource = { kind = \"file\", path = \"b.mp4\"",
            )
            .replace(
                "[buffer]",
                "[motion]\nthreshold = 0\n[tracker]\nconfirm_hits = 0\niou_match = 1.0\n\
                 reupload_interval_s = 0\n[supervisor]\nrestart_backoff_min_s = 5\n\
                 restart_backoff_max_s = 2\n[crops]\njpeg_quality = 0\n[buffer]\nmax_age_s = 59",
            )
            .replace(
                "manifest = \"models/m.toml\"",
                "manifest = \"models/m.toml\"\nthreads = 0\nlatency_budget_ms = 0",
            );
        let file = file(&text);
        let p = file.validated().expect_err("invalid");
        let fields = [
            "device.id",
            "camera[0].source.fps",
            "camera[0].id",
            "camera[1].id",
            "motion.threshold",
            "detector.threads",
            "detector.latency_budget_ms",
            "supervisor.restart_backoff_max_s",
            "tracker.iou_match",
            "tracker.confirm_hits",
            "tracker.reupload_interval_s",
            "crops.jpeg_quality",
            "buffer.max_age_s",
            "uplink.port",
            "uplink.max_inflight",
            "uplink.max_packet_bytes",
            "uplink.keep_alive_s",
            "uplink.ack_timeout_s",
            "uplink.reconnect_max_s",
        ];
        assert_eq!(p.len(), fields.len(), "{p}");
        for f in fields {
            assert!(p.iter().any(|l| l.starts_with(f)), "{f} not named:\n{p}");
        }
        assert_eq!(file.validate(), p, "validate() reports the same problems");
    }

    #[test]
    fn sections_validate_on_their_own() {
        let u: raw::UplinkConfig =
            toml::from_str("host = \"h\"\nport = 1\nmax_inflight = 3").expect("uplink");
        assert_eq!(u.validated().expect("valid").max_inflight.get(), 3);
        let u: raw::UplinkConfig =
            toml::from_str("host = \"\"\nport = 1\nmax_inflight = 0").expect("uplink");
        assert_eq!(u.validated().expect_err("invalid").len(), 2);
        let t = raw::TrackerConfig::default().validated().expect("defaults");
        assert_eq!(t.confirm_hits.get(), 2);
    }

    #[test]
    fn the_engine_cache_defaults_beside_the_buffer_and_stays_out_of_it() {
        let mut cfg = file(MINIMAL);
        cfg.resolve_paths(Path::new("/var/lib/cascade"));
        let d = &cfg.detector;
        assert_eq!(
            d.engine_cache_dir(&cfg.buffer.dir),
            Path::new("/var/lib/cascade/trt-cache")
        );
        let mut cfg = file(&MINIMAL.replace("[detector]", "[detector]\nengine_cache = \"trt\""));
        cfg.resolve_paths(Path::new("/etc/cascade"));
        assert_eq!(
            cfg.detector.engine_cache_dir(&cfg.buffer.dir),
            Path::new("/etc/cascade/trt")
        );
        assert!(cfg.validate().is_empty());
        let mut cfg =
            file(&MINIMAL.replace("[detector]", "[detector]\nengine_cache = \"buffer/trt\""));
        cfg.resolve_paths(Path::new("/etc/cascade"));
        let p = cfg.validate();
        assert_eq!(p.len(), 1, "{p}");
        assert!(
            p.iter()
                .all(|l| l.starts_with("detector.engine_cache: /etc/cascade/buffer/trt")),
            "{p}"
        );
    }

    #[test]
    fn relative_paths_are_resolved_against_the_config_folder() {
        let mut cfg =
            file(&MINIMAL.replace("[detector]", "[detector]\nonnxruntime = \"/opt/ort.so\""));
        cfg.resolve_paths(Path::new("/etc/cascade"));
        let (path, ..) = file_source(&cfg.cameras[0].source);
        assert_eq!(path, Path::new("/etc/cascade/clip.mp4"));
        assert_eq!(
            cfg.detector.manifest,
            Path::new("/etc/cascade/models/m.toml")
        );
        assert_eq!(
            cfg.detector.onnxruntime.as_deref(),
            Some(Path::new("/opt/ort.so"))
        );
        assert_eq!(cfg.buffer.dir, Path::new("/etc/cascade/buffer"));
        assert_eq!(
            cfg.uplink.ca_file.as_deref(),
            Some(Path::new("/etc/cascade/ca.pem"))
        );
    }
}
