//! What a V4L2 camera offers (pixel formats, sizes, frame intervals) as plain data, and the one
//! choice made from it: which format, size and rate to ask for. Pure functions, testable without
//! a device; `device.rs` fills these from the driver.

use std::fmt;

use cascade_shared::config::edge::V4l2Format;

/// A pixel format cascade can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// H.264 from the camera's encoder: through the decoder, like RTSP.
    H264,
    /// Semi-planar 4:2:0: Y plane, then interleaved U and V.
    Nv12,
    /// Packed 4:2:2: Y0 U Y1 V.
    Yuyv,
    /// Motion JPEG (fourcc `MJPG` or `JPEG`).
    Mjpeg,
}

impl PixelFormat {
    /// The format a fourcc names, if cascade can use it.
    pub fn from_fourcc(fourcc: [u8; 4]) -> Option<Self> {
        match &fourcc {
            b"H264" => Some(Self::H264),
            b"NV12" => Some(Self::Nv12),
            b"YUYV" => Some(Self::Yuyv),
            b"MJPG" | b"JPEG" => Some(Self::Mjpeg),
            _ => None,
        }
    }

    /// The formats a config's `format` accepts, best first.
    pub fn preference(wanted: V4l2Format) -> &'static [Self] {
        match wanted {
            V4l2Format::Auto => &[Self::H264, Self::Nv12, Self::Yuyv, Self::Mjpeg],
            V4l2Format::H264 => &[Self::H264],
            V4l2Format::Nv12 => &[Self::Nv12],
            V4l2Format::Yuyv => &[Self::Yuyv],
            V4l2Format::Mjpeg => &[Self::Mjpeg],
        }
    }
}

/// A frame interval, `num / den` seconds (what V4L2 counts in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub num: u32,
    pub den: u32,
}

impl Interval {
    /// Frames per second; 0 for a meaningless interval.
    pub fn fps(self) -> f64 {
        if self.num == 0 {
            0.0
        } else {
            f64::from(self.den) / f64::from(self.num)
        }
    }

    /// The interval of `fps` frames per second, to the millisecond-frame.
    pub fn from_fps(fps: f64) -> Self {
        Self {
            num: 1000,
            den: (fps * 1000.0).round().clamp(1.0, f64::from(u32::MAX)) as u32,
        }
    }
}

/// The sizes a format comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    Discrete {
        width: u32,
        height: u32,
    },
    /// Any size from `min` to `max` in steps (continuous: steps of 1).
    Stepwise {
        min: (u32, u32),
        max: (u32, u32),
        step: (u32, u32),
    },
}

/// The frame rates a size comes at.
#[derive(Debug, Clone, PartialEq)]
pub enum Rates {
    Discrete(Vec<Interval>),
    /// Any interval from `min` (fastest) to `max` (slowest).
    Stepwise {
        min: Interval,
        max: Interval,
    },
    /// The driver does not list them.
    Unknown,
}

/// One size of a format, with its rates.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeCaps {
    pub sizes: Sizes,
    pub rates: Rates,
}

/// One pixel format a device offers.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatCaps {
    pub fourcc: [u8; 4],
    /// The driver's name for it (`"Motion-JPEG"`).
    pub description: String,
    /// Empty when the driver does not list sizes (any size may be asked for).
    pub sizes: Vec<SizeCaps>,
}

/// What to ask the driver for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// The device's own fourcc for the format.
    pub fourcc: [u8; 4],
    pub pixel: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// `None` when the driver lists no rates: ask for the configured one.
    pub interval: Option<Interval>,
}

/// The device offers nothing cascade can use, or not the format the config asks for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}; the camera offers: {}", missing(*.wanted), list(.offered))]
pub struct NoFormat {
    pub wanted: V4l2Format,
    pub offered: Vec<FormatCaps>,
}

fn missing(wanted: V4l2Format) -> String {
    match wanted {
        V4l2Format::Auto => "the camera offers none of H.264, NV12, YUYV or MJPEG".into(),
        other => format!("the camera does not offer format = \"{other}\""),
    }
}

/// Every format on one line each: `YUYV (YUYV 4:2:2): 640x480 @ 30, 15 fps; ...`.
pub fn list(formats: &[FormatCaps]) -> String {
    if formats.is_empty() {
        return "no formats".into();
    }
    let lines: Vec<String> = formats.iter().map(|f| format!("\n  {f}")).collect();
    lines.concat()
}

/// Picks a format, size and rate. `auto` takes the first format in preference order that has
/// the requested size at the requested rate or faster, else the first one offered at all; an
/// explicit format must be offered. The size is the nearest offered, the rate the slowest that is
/// at least the requested one, else the fastest.
pub fn choose(
    formats: &[FormatCaps],
    wanted: V4l2Format,
    size: (u32, u32),
    fps: f64,
) -> Result<Choice, NoFormat> {
    let candidates: Vec<(Choice, bool)> = PixelFormat::preference(wanted)
        .iter()
        .flat_map(|p| {
            formats
                .iter()
                .filter(move |f| PixelFormat::from_fourcc(f.fourcc) == Some(*p))
                .map(move |f| best_of(f, *p, size, fps))
        })
        .collect();
    candidates
        .iter()
        .find(|(_, satisfies)| *satisfies)
        .or_else(|| candidates.first())
        .map(|(c, _)| *c)
        .ok_or_else(|| NoFormat {
            wanted,
            offered: formats.to_vec(),
        })
}

/// The best size and rate of one format, and whether they are what was asked for.
fn best_of(f: &FormatCaps, pixel: PixelFormat, want: (u32, u32), fps: f64) -> (Choice, bool) {
    let best = f
        .sizes
        .iter()
        .map(|s| (fit(&s.sizes, want), &s.rates))
        .min_by_key(|((w, h), _)| {
            let dist = w.abs_diff(want.0) + h.abs_diff(want.1);
            (dist, u64::MAX - u64::from(*w) * u64::from(*h))
        });
    let ((width, height), rates) = match best {
        Some((wh, rates)) => (wh, rates),
        None => (want, &Rates::Unknown),
    };
    let interval = rate(rates, fps);
    let fast_enough = interval.is_none_or(|i| i.fps() >= fps * 0.99);
    let choice = Choice {
        fourcc: f.fourcc,
        pixel,
        width,
        height,
        interval,
    };
    (choice, (width, height) == want && fast_enough)
}

/// The size nearest `want` among `sizes`.
pub fn fit(sizes: &Sizes, want: (u32, u32)) -> (u32, u32) {
    match *sizes {
        Sizes::Discrete { width, height } => (width, height),
        Sizes::Stepwise { min, max, step } => (
            snap(want.0, min.0, max.0, step.0),
            snap(want.1, min.1, max.1, step.1),
        ),
    }
}

fn snap(want: u32, min: u32, max: u32, step: u32) -> u32 {
    let (lo, hi) = (min.min(max), max.max(min));
    let v = want.clamp(lo, hi);
    let step = step.max(1);
    let steps = (v - lo + step / 2) / step;
    lo.saturating_add(steps.saturating_mul(step)).min(hi)
}

/// The interval to ask for: the slowest at least `fps`, else the fastest.
pub fn rate(rates: &Rates, fps: f64) -> Option<Interval> {
    match rates {
        Rates::Unknown => None,
        Rates::Discrete(list) => {
            let usable = list.iter().filter(|i| i.fps() > 0.0);
            let fast_enough = usable.clone().filter(|i| i.fps() >= fps * 0.99);
            fast_enough
                .min_by(|a, b| a.fps().total_cmp(&b.fps()))
                .or_else(|| usable.max_by(|a, b| a.fps().total_cmp(&b.fps())))
                .copied()
        }
        Rates::Stepwise { min, max } => {
            let (slow, fast) = (max.fps(), min.fps());
            Some(Interval::from_fps(
                fps.clamp(slow.min(fast), fast.max(slow)),
            ))
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fps = self.fps();
        if (fps - fps.round()).abs() < 0.005 {
            write!(f, "{fps:.0}")
        } else {
            write!(f, "{fps:.2}")
        }
    }
}

impl fmt::Display for SizeCaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sizes {
            Sizes::Discrete { width, height } => write!(f, "{width}x{height}")?,
            Sizes::Stepwise { min, max, step } => write!(
                f,
                "{}x{} to {}x{} in steps of {}x{}",
                min.0, min.1, max.0, max.1, step.0, step.1
            )?,
        }
        match &self.rates {
            Rates::Unknown => Ok(()),
            Rates::Discrete(list) => {
                let fps: Vec<String> = list.iter().map(ToString::to_string).collect();
                write!(f, " @ {} fps", fps.join(", "))
            }
            Rates::Stepwise { min, max } => write!(f, " @ {max} to {min} fps"),
        }
    }
}

impl fmt::Display for FormatCaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", fourcc_str(self.fourcc), self.description)?;
        if PixelFormat::from_fourcc(self.fourcc).is_none() {
            f.write_str(" [not usable by cascade]")?;
        }
        if self.sizes.is_empty() {
            return f.write_str(": sizes not listed");
        }
        let sizes: Vec<String> = self.sizes.iter().map(ToString::to_string).collect();
        write!(f, ": {}", sizes.join("; "))
    }
}

/// A fourcc as text, non-printable bytes as `?`.
pub fn fourcc_str(fourcc: [u8; 4]) -> String {
    fourcc
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
