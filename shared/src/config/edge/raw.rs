//! The agent's config file as written (strict serde), and [`EdgeConfig::validated`], the one place
//! it becomes the [`super::EdgeConfig`] the agent runs on.

use std::num::{NonZeroU16, NonZeroU32};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{
    BufferConfig, CameraConfig, CropConfig, Delivery, DetectorConfig, DeviceConfig, MotionConfig,
    MotionOverrides, PowerConfig, SupervisorConfig, TelemetryConfig,
};
use crate::Problems;
use crate::config::ConfigFile;
use crate::topics::{RESERVED_DEVICE_IDS, valid_device_id, valid_id};
use crate::wire::Compression;

/// The longest `uplink.keep_alive_s`: MQTT sends it as 16 bits of seconds.
const MAX_KEEP_ALIVE: Duration = Duration::from_secs(u16::MAX as u64);

/// The file as written. Sections left out take the defaults their fields document.
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
    #[serde(default)]
    pub power: PowerConfig,
}

/// `[tracker]` as written: the IoU tracker and the upload policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Smallest IoU between a detection and a track's last box that continues the track, in
    /// (0, 1). Default: 0.3.
    pub iou_match: f32,
    /// Detections in a row before a track is confirmed and first uploaded; at least 1. Default: 2.
    pub confirm_hits: u32,
    /// Detector runs without a match before a track ends. Default: 5.
    pub max_missed: u32,
    /// `reupload_interval_s`, in seconds: upload again after this long even if the crop is not
    /// better. Positive. Default: 10 s.
    #[serde(rename = "reupload_interval_s", with = "crate::config::seconds")]
    pub reupload_interval: Duration,
    /// Upload again when the score beats the last upload by this much. Default: 0.1.
    pub better_score: f32,
    /// `confirm_interval_s`, in seconds: until the cloud confirms a track (its verdict), upload
    /// it again after this long, so an alert does not wait for the re-upload interval when a
    /// first crop (a person entering, partly in view) is not confirmed. Positive. Default: 1 s.
    #[serde(rename = "confirm_interval_s", with = "crate::config::seconds")]
    pub confirm_interval: Duration,
    /// Most crops of a track sent at `confirm_interval_s` while the cloud has not confirmed it;
    /// after that, `reupload_interval_s` applies. 1 to 100. Default: 5.
    pub confirm_crops: u32,
    /// `seen_interval_s`, in seconds: an uploaded track still in view says so (a small message
    /// without a picture) after this long without any message, keeping its alert open; the cloud's
    /// `alerts.cooldown_s` should be a few times longer. Positive. Default: 5 s.
    #[serde(rename = "seen_interval_s", with = "crate::config::seconds")]
    pub seen_interval: Duration,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            iou_match: 0.3,
            confirm_hits: 2,
            max_missed: 5,
            reupload_interval: Duration::from_secs(10),
            better_score: 0.1,
            confirm_interval: Duration::from_secs(1),
            confirm_crops: 5,
            seen_interval: Duration::from_secs(5),
        }
    }
}

/// `[uplink]` as written: the MQTT connection crops leave by.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    /// The broker's host name (checked against its certificate). No default.
    pub host: String,
    /// Not 0. No default.
    pub port: u16,
    /// TLS is on unless explicitly turned off (for a broker on loopback only). Default: true.
    #[serde(default = "yes")]
    pub tls: bool,
    /// CA certificate (PEM) the broker's certificate must chain to; only with `tls`.
    /// Default: the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for brokers that require them; both or neither.
    /// Default: none.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// Default: none.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// Sent only together with `password`. Default: none (no credentials are sent).
    #[serde(default)]
    pub username: Option<String>,
    /// Default: none.
    #[serde(default)]
    pub password: Option<String>,
    /// `keep_alive_s`, in seconds: the MQTT keep-alive, 5 to 65535. Default: 15 s.
    #[serde(
        rename = "keep_alive_s",
        default = "default_keep_alive",
        with = "crate::config::seconds"
    )]
    pub keep_alive: Duration,
    /// Largest MQTT packet sent or received; at least 384 KiB. Default: 1 MiB (1048576).
    #[serde(default = "default_packet")]
    pub max_packet_bytes: u32,
    /// Publishes awaiting PUBACK at once, 1 to 60000. Default: 16.
    #[serde(default = "default_inflight")]
    pub max_inflight: u16,
    /// `reconnect_max_s`, in seconds: the longest wait between reconnect attempts (the wait
    /// starts at 0.25 s and doubles, with jitter); at least 1. Default: 30 s.
    #[serde(
        rename = "reconnect_max_s",
        default = "default_backoff_max",
        with = "crate::config::seconds"
    )]
    pub reconnect_max: Duration,
    /// `ack_timeout_s`, in seconds: a publish unacknowledged this long means a stuck session:
    /// reconnect and resend. At least 5. Default: 60 s.
    #[serde(
        rename = "ack_timeout_s",
        default = "default_ack_timeout",
        with = "crate::config::seconds"
    )]
    pub ack_timeout: Duration,
    /// Compression of crop bodies: `none`, `zstd` (always) or `auto` (kept when it saves at least
    /// 5 %). Default: `none` (JPEG does not shrink).
    #[serde(default = "default_compression")]
    pub compression: Compression,
    /// `receipt` (the analyzer has stored the crop) or `puback` (the broker has it; only for
    /// consumers that send no receipts). Default: `receipt`.
    #[serde(default)]
    pub delivery: Delivery,
    /// `receipt_timeout_s`, in seconds: a crop the broker acknowledged but no receipt named this
    /// long is sent again; the wait doubles (up to 16 times) while no receipt arrives at all.
    /// At least 5. Default: 30 s.
    #[serde(
        rename = "receipt_timeout_s",
        default = "default_receipt_timeout",
        with = "crate::config::seconds"
    )]
    pub receipt_timeout: Duration,
    /// Crops sent and not yet delivered at once (in flight or awaiting their receipt), 1 to 10000.
    /// Bounds what is sent again when receipts stop. Default: 256.
    #[serde(default = "default_receipt_window")]
    pub receipt_window: usize,
}

fn yes() -> bool {
    true
}
fn default_keep_alive() -> Duration {
    Duration::from_secs(15)
}
fn default_packet() -> u32 {
    1024 * 1024
}
fn default_inflight() -> u16 {
    16
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(30)
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_receipt_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_receipt_window() -> usize {
    256
}
fn default_compression() -> Compression {
    Compression::None
}

impl TrackerConfig {
    /// `[tracker]` validated, or its problems.
    pub fn validated(&self) -> Result<super::TrackerConfig, Problems> {
        let mut p = Problems::new();
        let t = self.convert(&mut p);
        t.filter(|_| p.is_empty()).ok_or(p)
    }

    /// Records its problems in `p`; `None` when a value cannot be converted (a problem recorded).
    fn convert(&self, p: &mut Problems) -> Option<super::TrackerConfig> {
        p.check(
            self.iou_match > 0.0 && self.iou_match < 1.0,
            "tracker.iou_match",
            "must be in (0, 1)",
        );
        let confirm_hits = NonZeroU32::new(self.confirm_hits);
        p.check(
            confirm_hits.is_some(),
            "tracker.confirm_hits",
            "must be at least 1",
        );
        for (ok, field) in [
            (
                !self.reupload_interval.is_zero(),
                "tracker.reupload_interval_s",
            ),
            (
                !self.confirm_interval.is_zero(),
                "tracker.confirm_interval_s",
            ),
            (!self.seen_interval.is_zero(), "tracker.seen_interval_s"),
        ] {
            p.check(ok, field, "must be positive");
        }
        p.check(
            (1..=100).contains(&self.confirm_crops),
            "tracker.confirm_crops",
            "must be 1 to 100",
        );
        Some(super::TrackerConfig {
            iou_match: self.iou_match,
            confirm_hits: confirm_hits?,
            max_missed: self.max_missed,
            reupload_interval: self.reupload_interval,
            better_score: self.better_score,
            confirm_interval: self.confirm_interval,
            confirm_crops: self.confirm_crops,
            seen_interval: self.seen_interval,
        })
    }
}

impl UplinkConfig {
    /// `[uplink]` validated, or its problems.
    pub fn validated(&self) -> Result<super::UplinkConfig, Problems> {
        let mut p = Problems::new();
        let u = self.convert(&mut p);
        u.filter(|_| p.is_empty()).ok_or(p)
    }

    /// Records its problems in `p`; `None` when a value cannot be converted (a problem recorded).
    fn convert(&self, p: &mut Problems) -> Option<super::UplinkConfig> {
        p.check(!self.host.is_empty(), "uplink.host", "must not be empty");
        p.check(self.port != 0, "uplink.port", "must not be 0");
        p.check(
            self.client_cert_file.is_some() == self.client_key_file.is_some(),
            "uplink.client_cert_file",
            "client_cert_file and client_key_file go together",
        );
        p.check(
            self.tls || self.ca_file.is_none(),
            "uplink.ca_file",
            "is set but tls = false",
        );
        let max_inflight = NonZeroU16::new(self.max_inflight).filter(|n| n.get() <= 60_000);
        p.check(
            max_inflight.is_some(),
            "uplink.max_inflight",
            "must be 1..=60000",
        );
        let max_packet_bytes = usize::try_from(self.max_packet_bytes)
            .ok()
            .filter(|n| *n >= crate::wire::MAX_JPEG_BYTES / 8);
        p.check(
            max_packet_bytes.is_some(),
            "uplink.max_packet_bytes",
            "must be at least 384 KiB",
        );
        p.check(
            (Duration::from_secs(5)..=MAX_KEEP_ALIVE).contains(&self.keep_alive),
            "uplink.keep_alive_s",
            "must be 5..=65535",
        );
        p.check(
            self.ack_timeout >= Duration::from_secs(5),
            "uplink.ack_timeout_s",
            "must be at least 5",
        );
        p.check(
            self.reconnect_max >= Duration::from_secs(1),
            "uplink.reconnect_max_s",
            "must be at least 1",
        );
        p.check(
            self.receipt_timeout >= Duration::from_secs(5),
            "uplink.receipt_timeout_s",
            "must be at least 5",
        );
        p.check(
            (1..=10_000).contains(&self.receipt_window),
            "uplink.receipt_window",
            "must be 1..=10000",
        );
        Some(super::UplinkConfig {
            host: self.host.clone(),
            port: self.port,
            tls: self.tls,
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            keep_alive: self.keep_alive,
            max_packet_bytes: max_packet_bytes?,
            max_inflight: max_inflight?,
            reconnect_max: self.reconnect_max,
            ack_timeout: self.ack_timeout,
            compression: self.compression,
            delivery: self.delivery,
            receipt_timeout: self.receipt_timeout,
            receipt_window: self.receipt_window,
        })
    }
}

impl EdgeConfig {
    /// The config the agent runs on, or every problem at once, each naming its field. Files are
    /// checked by `edge-agent check`.
    pub fn validated(&self) -> Result<super::EdgeConfig, Problems> {
        let mut p = Problems::new();
        p.check(
            valid_id(&self.device.id),
            "device.id",
            "must be 1-64 characters of A-Z a-z 0-9 - _ .",
        );
        p.check(
            !valid_id(&self.device.id) || valid_device_id(&self.device.id),
            "device.id",
            format!(
                "{:?} is reserved for other topics; reserved: {}",
                self.device.id,
                RESERVED_DEVICE_IDS.join(", ")
            ),
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
            if let Some(main) = &cam.main_source {
                main.validate(&format!("camera[{i}].main_source"), &mut p);
            }
            if cam.motion != MotionOverrides::default() {
                let motion = cam.motion.over(&self.motion);
                motion.validate(&format!("camera[{i}].motion"), &mut p);
            }
            if let Some(rate) = cam.max_rate_hz {
                p.check(
                    rate > 0.0 && rate <= 120.0,
                    format!("camera[{i}].max_rate_hz"),
                    "must be in (0, 120]",
                );
            }
        }
        self.motion.validate("motion", &mut p);
        self.detector.validate(&mut p);
        self.supervisor.validate(&mut p);
        self.power.validate(&mut p);
        let tracker = self.tracker.convert(&mut p);
        self.crops.validate(&mut p);
        self.buffer.validate(&mut p);
        self.detector
            .validate_engine_cache(&self.buffer.dir, &mut p);
        let uplink = self.uplink.convert(&mut p);

        // Each `None` above recorded its problem, so no problem means every section is there.
        match (tracker, uplink) {
            (Some(tracker), Some(uplink)) if p.is_empty() => Ok(super::EdgeConfig {
                device: self.device.clone(),
                cameras: self.cameras.clone(),
                motion: self.motion.clone(),
                detector: self.detector.clone(),
                tracker,
                crops: self.crops.clone(),
                buffer: self.buffer.clone(),
                uplink,
                telemetry: self.telemetry.clone(),
                supervisor: self.supervisor.clone(),
                power: self.power.clone(),
            }),
            _ => Err(p),
        }
    }
}

impl ConfigFile for EdgeConfig {
    fn resolve_paths(&mut self, base: &Path) {
        use crate::config::resolve;
        if let Some(p) = &mut self.device.profile {
            *p = resolve(base, p);
        }
        for cam in &mut self.cameras {
            cam.source.resolve_paths(base);
            if let Some(main) = &mut cam.main_source {
                main.resolve_paths(base);
            }
        }
        self.detector.manifest = resolve(base, &self.detector.manifest);
        for p in [
            &mut self.detector.onnxruntime,
            &mut self.detector.edgetpu.library,
            &mut self.detector.engine_cache,
        ]
        .into_iter()
        .flatten()
        {
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

    /// The problems [`EdgeConfig::validated`] reports.
    fn validate(&self) -> Problems {
        self.validated().err().unwrap_or_default()
    }
}
