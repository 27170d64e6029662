//! Capture: where a camera's pictures come from. A [`Source`] yields [`Packet`]s: H.264 access
//! units (Annex B, decode order) for the decoder, or raw frames that skip it (V4L2 YUYV, NV12 and
//! MJPEG cameras). [`open`] is the one place that turns a source config into a source.
//!
//! Blocking sources (files, V4L2 devices) run on the camera's capture thread. An async source
//! (RTSP) runs as a task and feeds the blocking decoder through a bounded channel
//! ([`ChannelSource`]).

mod channel;
pub mod file;
pub mod rtsp;
pub mod timebase;
pub mod v4l2;

use std::path::PathBuf;
use std::sync::Arc;

use cascade_shared::clock::SharedClock;
use cascade_shared::config::edge::{RtspTransport, SourceConfig};
use cascade_shared::shutdown::Shutdown;

pub use channel::{ChannelSource, PacketSender, channel};
pub use file::{AnnexBFile, Container, FileSource, Mp4File, Playback, split_nal_units};
pub use timebase::{CaptureClock, Stamper, TimeBase};

use crate::decode::Frame;

/// One coded picture (all its NAL units), Annex B, with start codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub data: Vec<u8>,
    /// Presentation time, microseconds from the stream's start.
    pub pts_us: i64,
    /// Duration of this picture, microseconds (used for real-time pacing).
    pub duration_us: i64,
}

/// What a source yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Coded H.264, for the decoder.
    Coded(AccessUnit),
    /// A picture already decoded (raw camera formats); skips the decoder.
    Raw(Frame),
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a usable MP4: {reason}")]
    Mp4 { path: PathBuf, reason: String },
    #[error("{path}: has no H.264 (avc1) video track; cascade decodes H.264 only")]
    NoH264 { path: PathBuf },
    #[error("{path}: unsupported file type (expected .mp4, .m4v, .h264 or .264)")]
    UnknownType { path: PathBuf },
    #[error("{path}: holds no video")]
    Empty { path: PathBuf },
    #[error("{url}: {reason}")]
    Rtsp {
        url: String,
        kind: rtsp::RtspFailure,
        reason: String,
    },
    #[error("{url}: authentication failed: check the camera's user name and password")]
    Auth { url: String },
    #[error(
        "{url}: the camera sends {codec}; cascade decodes H.264 only: set the camera's stream to H.264"
    )]
    Codec { url: String, codec: String },
    #[error("{device}: no camera there ({reason}): is it plugged in?")]
    Unplugged { device: PathBuf, reason: String },
    #[error(
        "{device}: permission denied: add the agent's user to the `video` group \
         (`sudo usermod -aG video USER`, then log in again)"
    )]
    Permission { device: PathBuf },
    #[error("{device}: {reason}")]
    V4l2 { device: PathBuf, reason: String },
    /// The device offers nothing usable, or not the configured format (the reason lists what it
    /// offers).
    #[error("{device}: {reason}")]
    Format { device: PathBuf, reason: String },
}

impl SourceError {
    /// A short label for metrics (`camera_reconnects_total{reason}`): an RTSP failure by kind
    /// (`refused`, `timeout`, `eof`, `not_found`, `rtsp_error`, `config`); a V4L2 failure as
    /// `unplugged`, `permission`, `v4l2_error` or `format`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Io { .. } => "source_io",
            Self::Mp4 { .. } | Self::Empty { .. } => "source_format",
            Self::NoH264 { .. } | Self::UnknownType { .. } | Self::Codec { .. } => {
                "source_unsupported"
            }
            Self::Rtsp { kind, .. } => kind.label(),
            Self::Auth { .. } => "auth",
            Self::Unplugged { .. } => "unplugged",
            Self::Permission { .. } => "permission",
            Self::V4l2 { .. } => "v4l2_error",
            Self::Format { .. } => "format",
        }
    }

    /// Retrying cannot help until someone changes the camera or the config (wrong credentials
    /// included: retried only at the longest backoff, never hammering the camera).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::NoH264 { .. }
                | Self::UnknownType { .. }
                | Self::Codec { .. }
                | Self::Auth { .. }
                | Self::Rtsp {
                    kind: rtsp::RtspFailure::Config,
                    ..
                }
                | Self::Permission { .. }
                | Self::Format { .. }
        )
    }
}

/// A stream of packets.
pub trait Source: Send {
    /// The next packet; `None` at the end of the stream, or soon after `stop` is cancelled.
    /// A source that plays in real time waits here (live cameras on the network, paced files).
    fn next(&mut self, stop: &Shutdown) -> Result<Option<Packet>, SourceError>;
    /// Pictures arrive in real time: a busy detector means dropping, never waiting.
    fn is_live(&self) -> bool;
    /// Frames wait for a busy detector (files played as fast as possible, so that what they find
    /// does not depend on the CPU); otherwise a frame the detector cannot take is dropped.
    fn waits_for_detector(&self) -> bool {
        !self.is_live()
    }
    /// The share of the input read, 0 to 1, for inputs that end (a file not looped).
    fn progress(&self) -> Option<f64> {
        None
    }
    /// What maps this source's stream time to UTC, when the source itself knows (RTSP cameras
    /// with RTCP sender reports); otherwise the wall clock is used.
    fn time_base(&self) -> Option<Arc<TimeBase>> {
        None
    }
}

/// Opens the source a camera's config describes: the one `match` on source kinds. Async sources
/// run their producer on `rt` until `stop`.
pub fn open(
    cfg: &SourceConfig,
    clock: &SharedClock,
    rt: &tokio::runtime::Handle,
    stop: &Shutdown,
) -> Result<Box<dyn Source>, SourceError> {
    match cfg {
        SourceConfig::File {
            path,
            realtime,
            looped,
            skim,
            fps,
        } => Ok(Box::new(FileSource::open(
            path,
            Playback {
                realtime: *realtime,
                looped: *looped,
                skim: *skim,
                fps: *fps,
            },
            clock.clone(),
        )?)),
        SourceConfig::Rtsp {
            url,
            username,
            password,
            password_env,
            transport,
            timeout_s,
        } => {
            let settings = rtsp::RtspSettings::from_config(
                url,
                username.as_deref(),
                password.as_deref(),
                password_env.as_deref(),
                *transport == RtspTransport::Tcp,
                *timeout_s,
            )?;
            Ok(Box::new(rtsp::open(&settings, rt, clock, stop)))
        }
        SourceConfig::V4l2 {
            device,
            format,
            width,
            height,
            fps,
        } => {
            let settings = v4l2::V4l2Settings {
                device: device.clone(),
                format: *format,
                width: *width,
                height: *height,
                fps: *fps,
            };
            Ok(Box::new(v4l2::V4l2Source::open(&settings, clock)?))
        }
    }
}

/// A V4L2 camera's settings; `None` for other kinds of source.
pub fn v4l2_settings(cfg: &SourceConfig) -> Option<v4l2::V4l2Settings> {
    match cfg {
        SourceConfig::V4l2 {
            device,
            format,
            width,
            height,
            fps,
        } => Some(v4l2::V4l2Settings {
            device: device.clone(),
            format: *format,
            width: *width,
            height: *height,
            fps: *fps,
        }),
        SourceConfig::File { .. } | SourceConfig::Rtsp { .. } => None,
    }
}

/// An RTSP camera's connection settings (the password read from its variable); `None` for other
/// kinds of source.
pub fn rtsp_settings(cfg: &SourceConfig) -> Option<Result<rtsp::RtspSettings, SourceError>> {
    match cfg {
        SourceConfig::Rtsp {
            url,
            username,
            password,
            password_env,
            transport,
            timeout_s,
        } => Some(rtsp::RtspSettings::from_config(
            url,
            username.as_deref(),
            password.as_deref(),
            password_env.as_deref(),
            *transport == RtspTransport::Tcp,
            *timeout_s,
        )),
        SourceConfig::File { .. } | SourceConfig::V4l2 { .. } => None,
    }
}
