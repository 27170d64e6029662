//! The driver side of a V4L2 camera: open the node, ask what it offers (formats, sizes, frame
//! intervals), and set the format and rate chosen by [`caps::choose`]. Errors name the device and
//! say what to do: unplugged, permission (the `video` group), busy, not a capture device.

use std::io;
use std::path::{Path, PathBuf};

use v4l::capability::Flags as CapFlags;
use v4l::format::{Format, FourCC};
use v4l::fraction::Fraction;
use v4l::frameinterval::{FrameInterval, FrameIntervalEnum};
use v4l::framesize::FrameSizeEnum;
use v4l::video::Capture;
use v4l::video::capture::Parameters;
use v4l::{Device, capability::Capabilities};

use super::V4l2Settings;
use super::caps::{self, Choice, FormatCaps, Interval, PixelFormat, Rates, SizeCaps, Sizes};
use crate::source::SourceError;

/// What a device is and offers (`edge-agent probe`, `check`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    pub path: PathBuf,
    pub driver: String,
    pub card: String,
    pub bus: String,
    pub formats: Vec<FormatCaps>,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (driver {}, {}); formats:{}",
            self.path.display(),
            self.card,
            self.driver,
            self.bus,
            caps::list(&self.formats)
        )
    }
}

/// The format, size and rate the driver granted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Granted {
    pub pixel: PixelFormat,
    pub fourcc: [u8; 4],
    pub width: u32,
    pub height: u32,
    /// Bytes per row (`bytesperline`; 0 for compressed formats).
    pub stride: u32,
    /// `None` when the driver does not say.
    pub fps: Option<f64>,
}

/// An I/O error of `device` during `what`, told apart the way the supervisor needs: gone
/// (unplugged: retried), no permission, not a V4L2 device, busy (said plainly), anything else.
pub fn io_error(device: &Path, what: &str, e: &io::Error) -> SourceError {
    use rustix::io::Errno;
    let device = device.to_path_buf();
    match Errno::from_io_error(e) {
        Some(Errno::NODEV | Errno::NOENT | Errno::NXIO) => SourceError::Unplugged {
            device,
            reason: format!("{what}: {e}"),
        },
        Some(Errno::ACCESS | Errno::PERM) => SourceError::Permission { device },
        Some(Errno::NOTTY) => SourceError::Format {
            device,
            reason: format!("is not a V4L2 device ({what}: {e})"),
        },
        Some(Errno::BUSY) => SourceError::V4l2 {
            device,
            reason: format!("{what}: the camera is in use by another program"),
        },
        _ => SourceError::V4l2 {
            device,
            reason: format!("{what}: {e}"),
        },
    }
}

fn format_err(device: &Path, reason: impl Into<String>) -> SourceError {
    SourceError::Format {
        device: device.to_path_buf(),
        reason: reason.into(),
    }
}

/// Opens `path` and checks that it captures video by streaming.
pub fn open(path: &Path) -> Result<(Device, Capabilities), SourceError> {
    let dev = Device::with_path(path).map_err(|e| io_error(path, "open", &e))?;
    let caps = dev
        .query_caps()
        .map_err(|e| io_error(path, "query capabilities (VIDIOC_QUERYCAP)", &e))?;
    let flags = caps.capabilities;
    if !flags.contains(CapFlags::VIDEO_CAPTURE) {
        let why = if flags.contains(CapFlags::VIDEO_CAPTURE_MPLANE) {
            "captures multi-planar video only, which cascade does not read yet"
        } else {
            "is not a video capture node (a UVC camera also has a metadata node: try the other \
             /dev/video number, or a /dev/v4l/by-id/...-video-index0 name)"
        };
        return Err(format_err(
            path,
            format!("{} ({}) {why}", caps.card, caps.driver),
        ));
    }
    if !flags.contains(CapFlags::STREAMING) {
        return Err(format_err(path, "does not support streaming I/O"));
    }
    Ok((dev, caps))
}

/// Everything the device offers; the rates of a stepwise size are those at the size nearest
/// `want`.
pub fn formats(
    dev: &Device,
    path: &Path,
    want: (u32, u32),
) -> Result<Vec<FormatCaps>, SourceError> {
    let descriptions = dev
        .enum_formats()
        .map_err(|e| io_error(path, "list formats (VIDIOC_ENUM_FMT)", &e))?;
    Ok(descriptions
        .into_iter()
        .map(|d| {
            let sizes = dev
                .enum_framesizes(d.fourcc)
                .unwrap_or_default()
                .into_iter()
                .map(|s| {
                    let sizes = sizes_of(&s.size);
                    let (w, h) = caps::fit(&sizes, want);
                    let rates =
                        rates_of(&dev.enum_frameintervals(d.fourcc, w, h).unwrap_or_default());
                    SizeCaps { sizes, rates }
                })
                .collect();
            FormatCaps {
                fourcc: d.fourcc.repr,
                description: d.description,
                sizes,
            }
        })
        .collect())
}

/// A driver's frame size list entry as [`Sizes`].
pub fn sizes_of(s: &FrameSizeEnum) -> Sizes {
    match s {
        FrameSizeEnum::Discrete(d) => Sizes::Discrete {
            width: d.width,
            height: d.height,
        },
        FrameSizeEnum::Stepwise(s) => Sizes::Stepwise {
            min: (s.min_width, s.min_height),
            max: (s.max_width, s.max_height),
            step: (s.step_width, s.step_height),
        },
    }
}

/// A driver's frame intervals of one size as [`Rates`] (the first stepwise entry wins).
pub fn rates_of(list: &[FrameInterval]) -> Rates {
    let interval = |f: &Fraction| Interval {
        num: f.numerator,
        den: f.denominator,
    };
    let mut discrete = Vec::new();
    for i in list {
        match &i.interval {
            FrameIntervalEnum::Discrete(f) => discrete.push(interval(f)),
            FrameIntervalEnum::Stepwise(s) => {
                return Rates::Stepwise {
                    min: interval(&s.min),
                    max: interval(&s.max),
                };
            }
        }
    }
    if discrete.is_empty() {
        Rates::Unknown
    } else {
        Rates::Discrete(discrete)
    }
}

/// What `path` is and offers (the rates of stepwise sizes at the size nearest `want`).
pub fn probe(path: &Path, want: (u32, u32)) -> Result<DeviceInfo, SourceError> {
    let (dev, caps) = open(path)?;
    let formats = formats(&dev, path, want)?;
    Ok(DeviceInfo {
        path: path.to_path_buf(),
        driver: caps.driver,
        card: caps.card,
        bus: caps.bus,
        formats,
    })
}

/// Chooses from what the device offers, sets it, and returns what the driver granted.
pub fn negotiate(dev: &Device, s: &V4l2Settings) -> Result<Granted, SourceError> {
    let path = s.device.as_path();
    let offered = formats(dev, path, (s.width, s.height))?;
    let choice = caps::choose(&offered, s.format, (s.width, s.height), s.fps)
        .map_err(|e| format_err(path, e.to_string()))?;
    let asked = Format::new(choice.width, choice.height, FourCC::new(&choice.fourcc));
    let got = dev
        .set_format(&asked)
        .map_err(|e| io_error(path, "set the format (VIDIOC_S_FMT)", &e))?;
    if got.fourcc.repr != choice.fourcc {
        return Err(format_err(
            path,
            format!(
                "asked for {}, the driver set {}",
                caps::fourcc_str(choice.fourcc),
                caps::fourcc_str(got.fourcc.repr)
            ),
        ));
    }
    Ok(Granted {
        pixel: choice.pixel,
        fourcc: choice.fourcc,
        width: got.width,
        height: got.height,
        stride: got.stride,
        fps: set_rate(dev, path, &choice, s.fps),
    })
}

/// Asks for the chosen rate; returns the one in force. Drivers without rate control keep theirs.
fn set_rate(dev: &Device, path: &Path, choice: &Choice, fps: f64) -> Option<f64> {
    let want = choice.interval.unwrap_or_else(|| Interval::from_fps(fps));
    let params = Parameters::new(Fraction::new(want.num, want.den));
    let granted = dev.set_params(&params).or_else(|e| {
        tracing::warn!(device = %path.display(), error = %e, "cannot set the frame rate; the driver's own applies");
        dev.params()
    });
    granted
        .ok()
        .map(|p| {
            Interval {
                num: p.interval.numerator,
                den: p.interval.denominator,
            }
            .fps()
        })
        .filter(|f| *f > 0.0)
}
