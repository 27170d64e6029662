//! `[[camera]] source`: where a camera's pictures come from (a file, an RTSP URL, a V4L2 device).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::v4l2::{self, V4l2Format};
use crate::Problems;

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
        #[serde(default = "default_rtsp_timeout", with = "crate::config::seconds")]
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
            Self::File { path, .. } => *path = crate::config::resolve(base, path),
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
