//! The edge agent's config file (see `deploy/edge-agent.toml` for a starter).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{BackendKind, ConfigFile};
use crate::Problems;
use crate::topics::valid_id;
use crate::wire::Compression;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    pub device: DeviceConfig,
    #[serde(rename = "camera")]
    pub cameras: Vec<CameraConfig>,
    #[serde(default)]
    pub motion: MotionConfig,
    pub detector: DetectorConfig,
    #[serde(default)]
    pub tracker: TrackerConfig,
    #[serde(default)]
    pub crops: CropConfig,
    pub buffer: BufferConfig,
    pub uplink: UplinkConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub supervisor: SupervisorConfig,
}

/// How cameras are kept running.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    /// A camera that delivers no frame for this long is restarted. Default: 10 s.
    #[serde(with = "super::seconds")]
    pub stall_timeout_s: Duration,
    /// First wait before restarting a failed camera; it doubles (with jitter) up to
    /// `restart_backoff_max_s`, and starts over once a camera has streamed for a minute.
    /// Default: 1 s.
    #[serde(with = "super::seconds")]
    pub restart_backoff_min_s: Duration,
    /// Longest wait between restarts; also the retry interval of failures that need a person
    /// (an interlaced or non-H.264 stream). Default: 60 s.
    #[serde(with = "super::seconds")]
    pub restart_backoff_max_s: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            stall_timeout_s: Duration::from_secs(10),
            restart_backoff_min_s: Duration::from_secs(1),
            restart_backoff_max_s: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    pub id: String,
    /// A file in `hardware-profiles/`.
    #[serde(default)]
    pub profile: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub id: String,
    pub source: SourceConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// An `.mp4` or Annex-B `.h264` file.
    File {
        path: PathBuf,
        /// Play at the stream's own frame rate (true) or as fast as possible (false).
        #[serde(default)]
        realtime: bool,
        /// Start again at the end (a stand-in for a live camera).
        #[serde(default, rename = "loop")]
        looped: bool,
        /// Frame rate for Annex-B files, which carry no timestamps. Default: 25.
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
            Self::Rtsp { .. } => {}
        }
    }

    /// Range and consistency problems, named under `field` (e.g. `camera[0].source`).
    pub fn validate(&self, field: &str, p: &mut Problems) {
        match self {
            Self::File { fps, .. } => p.check(
                *fps > 0.0 && *fps <= 240.0,
                format!("{field}.fps"),
                "must be in (0, 240]",
            ),
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
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MotionConfig {
    /// Width of the downscaled luma image motion is computed on.
    pub width: u32,
    /// Luma difference (0-255) against the background that counts as change.
    pub threshold: u8,
    /// Smallest motion box, as a fraction of the frame area.
    pub min_area: f32,
    /// Background learning rate per frame (0-1).
    pub learning_rate: f32,
    /// Above this changed fraction of the frame, recalibrate instead of firing.
    pub global_change: f32,
    /// Frames after start or recalibration during which nothing fires.
    pub warmup_frames: u32,
    /// Polygons to ignore, vertices as fractions (0-1) of frame width and height.
    pub masks: Vec<Vec<[f32; 2]>>,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            width: 320,
            threshold: 25,
            min_area: 0.002,
            learning_rate: 0.05,
            global_change: 0.6,
            warmup_frames: 5,
            masks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// A model manifest (see `models/`).
    pub manifest: PathBuf,
    /// The inference runtime. Default: the hardware profile's accelerator's (`onnxruntime` for
    /// `cpu` and `cuda`), else `onnxruntime`.
    #[serde(default)]
    pub backend: Option<BackendKind>,
    /// `libonnxruntime.so`; defaults to `$ORT_DYLIB_PATH`, then `.cache/onnxruntime/libonnxruntime.so`.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// Detector input sides the agent may step between to keep up, largest first (multiples of
    /// 32). Default: the hardware profile's `detector_input_sizes`, else the model's input.
    #[serde(default)]
    pub input_sizes: Option<Vec<u32>>,
    #[serde(default = "default_rate")]
    pub max_rate_hz: f32,
    #[serde(default = "default_score")]
    pub score_threshold: f32,
    #[serde(default = "default_iou")]
    pub nms_iou: f32,
    /// Smallest detection kept, as a fraction of the frame area.
    #[serde(default = "default_min_box")]
    pub min_box_area: f32,
    /// Threads one inference may use. Default: the hardware profile's `detector_threads`, else 1.
    #[serde(default)]
    pub threads: Option<u32>,
}

fn default_rate() -> f32 {
    5.0
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    pub iou_match: f32,
    /// Detections in a row before a track is confirmed and first uploaded.
    pub confirm_hits: u32,
    /// Detector runs without a match before a track ends.
    pub max_missed: u32,
    /// Upload again after this long even if the crop is not better.
    pub reupload_interval_s: f64,
    /// Upload again when the score beats the last upload by this much.
    pub better_score: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            iou_match: 0.3,
            confirm_hits: 2,
            max_missed: 5,
            reupload_interval_s: 10.0,
            better_score: 0.1,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CropConfig {
    /// Padding around the box, as a fraction of its width and height.
    pub padding: f32,
    /// Longest side of the JPEG; larger crops are scaled down.
    pub max_side: u32,
    pub jpeg_quality: u8,
}

impl Default for CropConfig {
    fn default() -> Self {
        Self {
            padding: 0.15,
            max_side: 640,
            jpeg_quality: 80,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    pub dir: PathBuf,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    #[serde(default = "default_max_age")]
    pub max_age_s: u64,
}

fn default_max_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_max_age() -> u64 {
    7 * 24 * 3600
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    pub host: String,
    pub port: u16,
    /// TLS is on unless explicitly turned off (for a broker on loopback only).
    #[serde(default = "yes")]
    pub tls: bool,
    /// CA certificate (PEM) the broker's certificate must chain to; the system's roots when unset.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for brokers that require them.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
    #[serde(default = "default_packet")]
    pub max_packet_bytes: u32,
    /// Publishes awaiting PUBACK at once.
    #[serde(default = "default_inflight")]
    pub max_inflight: u16,
    #[serde(default = "default_backoff_max")]
    pub reconnect_max_s: f64,
    /// A publish unacknowledged this long means a stuck session: reconnect and resend.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout_s: f64,
    #[serde(default = "default_compression")]
    pub compression: Compression,
}

fn yes() -> bool {
    true
}
fn default_keep_alive() -> u64 {
    15
}
fn default_packet() -> u32 {
    1024 * 1024
}
fn default_inflight() -> u16 {
    16
}
fn default_backoff_max() -> f64 {
    30.0
}
fn default_ack_timeout() -> f64 {
    60.0
}
fn default_compression() -> Compression {
    Compression::None
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Address of the `/metrics`, `/livez`, `/readyz` endpoint; port 0 picks a free one.
    pub listen: SocketAddr,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

impl EdgeConfig {
    fn validate_motion(&self, p: &mut Problems) {
        let m = &self.motion;
        p.check(
            (32..=1920).contains(&m.width),
            "motion.width",
            "must be 32..=1920",
        );
        p.check(m.threshold >= 1, "motion.threshold", "must be at least 1");
        p.check(
            (0.0..1.0).contains(&m.min_area),
            "motion.min_area",
            "must be within 0..1",
        );
        p.check(
            m.learning_rate > 0.0 && m.learning_rate <= 1.0,
            "motion.learning_rate",
            "must be in (0, 1]",
        );
        p.check(
            m.global_change > 0.0 && m.global_change <= 1.0,
            "motion.global_change",
            "must be in (0, 1]",
        );
        for (i, poly) in m.masks.iter().enumerate() {
            p.check(
                poly.len() >= 3,
                format!("motion.masks[{i}]"),
                "a polygon needs at least 3 vertices",
            );
            p.check(
                poly.iter().flatten().all(|v| (0.0..=1.0).contains(v)),
                format!("motion.masks[{i}]"),
                "vertices are fractions of the frame, within 0..=1",
            );
        }
    }

    fn validate_uplink(&self, p: &mut Problems) {
        let u = &self.uplink;
        p.check(!u.host.is_empty(), "uplink.host", "must not be empty");
        p.check(u.port != 0, "uplink.port", "must not be 0");
        p.check(
            u.client_cert_file.is_some() == u.client_key_file.is_some(),
            "uplink.client_cert_file",
            "client_cert_file and client_key_file go together",
        );
        p.check(
            u.tls || u.ca_file.is_none(),
            "uplink.ca_file",
            "is set but tls = false",
        );
        p.check(
            (1..=60_000).contains(&u.max_inflight),
            "uplink.max_inflight",
            "must be 1..=60000",
        );
        p.check(
            u.max_packet_bytes as usize >= crate::wire::MAX_JPEG_BYTES / 8,
            "uplink.max_packet_bytes",
            "must be at least 384 KiB",
        );
        p.check(
            u.keep_alive_s >= 5,
            "uplink.keep_alive_s",
            "must be at least 5",
        );
        p.check(
            u.ack_timeout_s >= 5.0,
            "uplink.ack_timeout_s",
            "must be at least 5",
        );
        p.check(
            u.reconnect_max_s >= 1.0,
            "uplink.reconnect_max_s",
            "must be at least 1",
        );
    }

    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.uplink.keep_alive_s)
    }
}

impl ConfigFile for EdgeConfig {
    fn resolve_paths(&mut self, base: &Path) {
        use super::resolve;
        if let Some(p) = &mut self.device.profile {
            *p = resolve(base, p);
        }
        for cam in &mut self.cameras {
            cam.source.resolve_paths(base);
        }
        self.detector.manifest = resolve(base, &self.detector.manifest);
        if let Some(p) = &mut self.detector.onnxruntime {
            *p = resolve(base, p);
        }
        self.buffer.dir = resolve(base, &self.buffer.dir);
        let u = &mut self.uplink;
        for p in [
            &mut u.ca_file,
            &mut u.client_cert_file,
            &mut u.client_key_file,
        ]
        .into_iter()
        .flatten()
        {
            *p = resolve(base, p);
        }
    }

    /// Every range and consistency problem (files are checked by `edge-agent check`).
    fn validate(&self) -> Problems {
        let mut p = Problems::new();
        p.check(
            valid_id(&self.device.id),
            "device.id",
            "must be 1-64 characters of A-Z a-z 0-9 - _ .",
        );
        p.check(
            !self.cameras.is_empty(),
            "camera",
            "at least one [[camera]] is required",
        );
        for (i, cam) in self.cameras.iter().enumerate() {
            p.check(
                valid_id(&cam.id),
                format!("camera[{i}].id"),
                "must be 1-64 characters of A-Z a-z 0-9 - _ .",
            );
            p.check(
                self.cameras.iter().filter(|c| c.id == cam.id).count() == 1,
                format!("camera[{i}].id"),
                format!("{:?} is used by more than one camera", cam.id),
            );
            cam.source.validate(&format!("camera[{i}].source"), &mut p);
        }
        self.validate_motion(&mut p);
        let d = &self.detector;
        p.check(
            d.max_rate_hz > 0.0 && d.max_rate_hz <= 120.0,
            "detector.max_rate_hz",
            "must be in (0, 120]",
        );
        p.check(
            (0.0..=1.0).contains(&d.score_threshold),
            "detector.score_threshold",
            "must be within 0..=1",
        );
        p.check(
            d.nms_iou > 0.0 && d.nms_iou <= 1.0,
            "detector.nms_iou",
            "must be in (0, 1]",
        );
        p.check(
            (0.0..1.0).contains(&d.min_box_area),
            "detector.min_box_area",
            "must be within 0..1",
        );
        p.check(
            d.threads.is_none_or(|t| (1..=64).contains(&t)),
            "detector.threads",
            "must be 1..=64",
        );
        if let Some(sizes) = &d.input_sizes {
            p.check(
                crate::profile::valid_input_sizes(sizes),
                "detector.input_sizes",
                "must be non-empty, strictly decreasing multiples of 32",
            );
        }
        let s = &self.supervisor;
        p.check(
            s.stall_timeout_s >= Duration::from_millis(500),
            "supervisor.stall_timeout_s",
            "must be at least 0.5",
        );
        p.check(
            s.restart_backoff_min_s > Duration::ZERO,
            "supervisor.restart_backoff_min_s",
            "must be positive",
        );
        p.check(
            s.restart_backoff_max_s >= s.restart_backoff_min_s,
            "supervisor.restart_backoff_max_s",
            "must be at least restart_backoff_min_s",
        );
        let t = &self.tracker;
        p.check(
            t.iou_match > 0.0 && t.iou_match < 1.0,
            "tracker.iou_match",
            "must be in (0, 1)",
        );
        p.check(
            t.confirm_hits >= 1,
            "tracker.confirm_hits",
            "must be at least 1",
        );
        p.check(
            t.reupload_interval_s > 0.0,
            "tracker.reupload_interval_s",
            "must be positive",
        );
        let c = &self.crops;
        p.check(
            (0.0..=2.0).contains(&c.padding),
            "crops.padding",
            "must be within 0..=2",
        );
        p.check(
            (16..=4096).contains(&c.max_side),
            "crops.max_side",
            "must be 16..=4096",
        );
        p.check(
            (1..=100).contains(&c.jpeg_quality),
            "crops.jpeg_quality",
            "must be 1..=100",
        );
        p.check(
            self.buffer.max_bytes >= 1024 * 1024,
            "buffer.max_bytes",
            "must be at least 1 MiB",
        );
        p.check(
            self.buffer.max_age_s >= 60,
            "buffer.max_age_s",
            "must be at least 60",
        );
        self.validate_uplink(&mut p);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn minimal_config_is_valid() {
        let cfg: EdgeConfig = toml::from_str(MINIMAL).expect("parses");
        assert!(cfg.validate().is_empty(), "{}", cfg.validate());
        assert!(cfg.uplink.tls);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = MINIMAL.replace("port = 8883", "port = 8883\nprot = 1");
        let err = toml::from_str::<EdgeConfig>(&text)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let text = MINIMAL
            .replace("id = \"dev-1\"", "id = \"dev/1\"")
            .replace("port = 8883", "port = 0\nmax_inflight = 0")
            .replace("[buffer]", "[motion]\nthreshold = 0\n[buffer]");
        let cfg: EdgeConfig = toml::from_str(&text).expect("parses");
        let p = cfg.validate();
        let all: Vec<_> = p.iter().collect();
        for field in [
            "device.id",
            "uplink.port",
            "uplink.max_inflight",
            "motion.threshold",
        ] {
            assert!(
                all.iter().any(|l| l.starts_with(field)),
                "{field} missing in {p}"
            );
        }
    }
}
