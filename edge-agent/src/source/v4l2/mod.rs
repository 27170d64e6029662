//! V4L2 cameras (USB/UVC, CSI) with the `v4l` crate: mmap streaming on the camera's capture
//! thread. The format is chosen from what the device offers ([`caps::choose`]); H.264 leaves as
//! access units for the decoder (after the first key frame), YUYV, NV12 and MJPEG as raw frames
//! that skip it ([`convert`]). Frame times are the driver's buffer timestamps (the kernel's
//! monotonic clock) relative to the moment the source opened; the source's [`TimeBase`] maps
//! them to UTC (the UTC read at that moment), with the clock `driver`. Frames of a driver without
//! monotonic stamps are timed on arrival (the clock `wall`).
//!
//! An unplugged camera ends the run (`Unplugged`); the supervisor retries with backoff and the
//! next run opens the device again, so plugging it back in is enough. Damaged frames are skipped
//! (a run of them ends the run). Waits are sliced so that `stop` is seen within [`SLICE`].

pub mod caps;
pub mod convert;
pub mod device;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cascade_shared::clock::{SharedClock, micros};
use cascade_shared::config::edge::V4l2Format;
use cascade_shared::shutdown::Shutdown;
use v4l::buffer::{Flags, Metadata, Type};
use v4l::io::mmap::Stream as MmapStream;
use v4l::io::traits::CaptureStream;

pub use caps::PixelFormat;
pub use device::{DeviceInfo, Granted, probe};

use super::{AccessUnit, CaptureClock, Packet, Source, SourceError, TimeBase, split_nal_units};
use convert::{ConvertError, Layout};

/// Buffers asked of the driver.
const BUFFERS: u32 = 4;
/// The longest single wait for a frame: how soon `stop` is seen.
pub const SLICE: Duration = Duration::from_millis(250);
/// Damaged frames in a row after which the run ends.
const BAD_STORM: u32 = 30;
/// A driver stamp further than this behind the moment it is read is not believed.
const MAX_STAMP_AGE_US: i64 = 5_000_000;

/// A V4L2 camera's settings, from its config.
#[derive(Debug, Clone, PartialEq)]
pub struct V4l2Settings {
    pub device: PathBuf,
    pub format: V4l2Format,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

/// Where a frame's time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// The driver's buffer timestamp (monotonic).
    Driver,
    /// The moment the frame was read (the driver's stamp is missing or not monotonic).
    Arrival,
}

/// A frame's time on the kernel's monotonic clock, microseconds: the driver's stamp when it is
/// monotonic and plausible (not after `now_us`, at most 5 s before), else `now_us`.
pub fn frame_time_us(stamp: Duration, flags: u32, now_us: i64) -> (i64, Stamp) {
    let mask = Flags::TIMESTAMP_MASK.bits();
    let monotonic = flags & mask == Flags::TIMESTAMP_MONOTONIC.bits();
    let t = micros(stamp);
    if monotonic && !stamp.is_zero() && t <= now_us && now_us - t <= MAX_STAMP_AGE_US {
        (t, Stamp::Driver)
    } else {
        (now_us, Stamp::Arrival)
    }
}

/// The kernel's monotonic clock (the one V4L2 stamps buffers with), microseconds.
pub fn monotonic_now_us() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec.saturating_mul(1_000_000) + t.tv_nsec / 1000
}

/// Whether an Annex-B access unit starts a picture the decoder can begin with (IDR or SPS).
pub fn is_key(data: &[u8]) -> bool {
    split_nal_units(data)
        .iter()
        .any(|nal| nal.first().is_some_and(|b| matches!(b & 0x1F, 5 | 7)))
}

/// The driver's buffer queue as the source uses it: `v4l`'s mmap stream (a fake in tests).
trait Buffers: Send {
    /// Waits up to one [`SLICE`] for a filled buffer.
    fn ready(&mut self) -> std::io::Result<bool>;
    /// Hands back the buffer it returned last time (the first time: queues every buffer and
    /// starts streaming), then takes the next filled one, waiting up to one slice.
    fn next(&mut self) -> std::io::Result<(&[u8], &Metadata)>;
    /// Takes a filled buffer without handing one back.
    fn dequeue(&mut self) -> std::io::Result<()>;
}

impl Buffers for MmapStream<'static> {
    fn ready(&mut self) -> std::io::Result<bool> {
        let ms = i32::try_from(SLICE.as_millis()).unwrap_or(i32::MAX);
        match self.handle().poll(libc::POLLIN, ms) {
            Ok(n) => Ok(n > 0),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn next(&mut self) -> std::io::Result<(&[u8], &Metadata)> {
        CaptureStream::next(self)
    }

    fn dequeue(&mut self) -> std::io::Result<()> {
        CaptureStream::dequeue(self).map(|_| ())
    }
}

pub struct V4l2Source {
    stream: Box<dyn Buffers>,
    frames: Frames,
    started: bool,
    /// Whether the buffer `next` hands back to the driver is ours (not already queued).
    holding: bool,
}

/// Turns filled buffers into packets (apart from the stream, which lends the buffers).
struct Frames {
    device: PathBuf,
    granted: Granted,
    /// The monotonic time that is stream time 0.
    origin_us: i64,
    /// Stream time to UTC, and the clock in force.
    base: Arc<TimeBase>,
    keyframe_seen: bool,
    bad_in_row: u32,
    stamp: Option<Stamp>,
    sequence: Option<u32>,
}

impl V4l2Source {
    /// Opens the device, negotiates the format and rate (logging what was granted) and maps the
    /// buffers. Streaming starts with the first [`Source::next`]. `clock` gives the UTC of stream
    /// time 0.
    pub fn open(s: &V4l2Settings, clock: &SharedClock) -> Result<Self, SourceError> {
        let (dev, info) = device::open(&s.device)?;
        let granted = device::negotiate(&dev, s)?;
        tracing::info!(
            device = %s.device.display(),
            card = %info.card,
            driver = %info.driver,
            asked = %format_args!("{} {}x{} @ {} fps", s.format, s.width, s.height, s.fps),
            granted = %format_args!(
                "{} {}x{} @ {} fps",
                caps::fourcc_str(granted.fourcc),
                granted.width,
                granted.height,
                granted.fps.map_or("?".into(), |f| format!("{f:.2}"))
            ),
            stride = granted.stride,
            "V4L2 camera opened"
        );
        let mut stream = MmapStream::with_buffers(&dev, Type::VideoCapture, BUFFERS)
            .map_err(|e| device::io_error(&s.device, "map buffers (VIDIOC_REQBUFS)", &e))?;
        stream.set_timeout(SLICE);
        Ok(Self::with_buffers(
            Box::new(stream),
            &s.device,
            granted,
            clock.now_utc_us(),
        ))
    }

    /// `utc_us`: UTC now, which becomes stream time 0.
    fn with_buffers(
        stream: Box<dyn Buffers>,
        device: &Path,
        granted: Granted,
        utc_us: i64,
    ) -> Self {
        Self {
            stream,
            frames: Frames {
                device: device.to_path_buf(),
                granted,
                origin_us: monotonic_now_us(),
                base: Arc::new(TimeBase::anchored(utc_us, CaptureClock::Driver)),
                keyframe_seen: false,
                bad_in_row: 0,
                stamp: None,
                sequence: None,
            },
            started: false,
            holding: false,
        }
    }

    /// What the driver granted.
    pub fn granted(&self) -> Granted {
        self.frames.granted
    }

    /// Waits up to one slice for a filled buffer; `Ok(false)` when none came.
    fn wait(&mut self) -> Result<bool, SourceError> {
        self.stream
            .ready()
            .map_err(|e| self.frames.io_error("wait for a frame (poll)", &e))
    }
}

impl Frames {
    fn io_error(&self, what: &str, e: &std::io::Error) -> SourceError {
        device::io_error(&self.device, what, e)
    }

    /// A filled buffer made into a packet; `None` for a frame to skip.
    fn packet(&mut self, data: &[u8], meta: &Metadata) -> Result<Option<Packet>, SourceError> {
        self.note_sequence(meta.sequence);
        let (t, stamp) =
            frame_time_us(meta.timestamp.into(), meta.flags.bits(), monotonic_now_us());
        self.base.set_clock(match stamp {
            Stamp::Driver => CaptureClock::Driver,
            Stamp::Arrival => CaptureClock::Wall,
        });
        match self.stamp.replace(stamp) {
            None => {
                tracing::info!(device = %self.device.display(), source = ?stamp, "V4L2 frame times")
            }
            Some(before) if before != stamp => {
                tracing::debug!(device = %self.device.display(), source = ?stamp, "V4L2 frame times");
            }
            Some(_) => {}
        }
        let pts_us = t - self.origin_us;
        let used = usize::try_from(meta.bytesused).map_or(data.len(), |n| n.min(data.len()));
        let data = &data[..used];
        if meta.flags.contains(Flags::ERROR) || data.is_empty() {
            return self.bad("the driver marked the frame damaged or empty".to_string());
        }
        let g = self.granted;
        let (w, h) = (g.width as usize, g.height as usize);
        let layout = Layout {
            width: w,
            height: h,
            stride: g.stride as usize,
        };
        let frame = match g.pixel {
            PixelFormat::H264 => return Ok(self.coded(data, meta, pts_us)),
            PixelFormat::Yuyv => convert::yuyv(data, layout, pts_us),
            PixelFormat::Nv12 => convert::nv12(data, layout, pts_us),
            PixelFormat::Mjpeg => convert::mjpeg(data, w, h, pts_us),
        };
        match frame {
            Ok(f) => {
                self.bad_in_row = 0;
                Ok(Some(Packet::Raw(f)))
            }
            Err(e) => self.bad(e),
        }
    }

    /// An H.264 access unit; nothing before the first key frame.
    fn coded(&mut self, data: &[u8], meta: &Metadata, pts_us: i64) -> Option<Packet> {
        self.keyframe_seen |= meta.flags.contains(Flags::KEYFRAME) || is_key(data);
        self.keyframe_seen.then(|| {
            Packet::Coded(AccessUnit {
                data: data.to_vec(),
                pts_us,
                duration_us: 0,
            })
        })
    }

    /// Skips a damaged frame; too many in a row end the run.
    fn bad(&mut self, why: impl Into<BadFrame>) -> Result<Option<Packet>, SourceError> {
        let why = why.into().0;
        self.bad_in_row += 1;
        if self.bad_in_row == 1 {
            tracing::warn!(device = %self.device.display(), error = %why, "skipping a damaged frame");
        }
        if self.bad_in_row >= BAD_STORM {
            return Err(SourceError::V4l2 {
                device: self.device.clone(),
                reason: format!(
                    "{} damaged frames in a row; the last: {why}",
                    self.bad_in_row
                ),
            });
        }
        Ok(None)
    }

    fn note_sequence(&mut self, seq: u32) {
        if let Some(last) = self.sequence {
            let lost = seq.wrapping_sub(last).wrapping_sub(1);
            if lost > 0 && lost < u32::MAX / 2 {
                tracing::debug!(device = %self.device.display(), lost, "the driver dropped frames");
            }
        }
        self.sequence = Some(seq);
    }
}

/// A wait that ended without a frame (timed out, or the non-blocking node had none after all).
fn no_frame_yet(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

/// Why a frame was skipped.
struct BadFrame(String);

impl From<String> for BadFrame {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<ConvertError> for BadFrame {
    fn from(e: ConvertError) -> Self {
        Self(e.to_string())
    }
}

impl Source for V4l2Source {
    fn next(&mut self, stop: &Shutdown) -> Result<Option<Packet>, SourceError> {
        loop {
            if stop.is_cancelled() {
                return Ok(None);
            }
            // `v4l`'s `next` first hands back the buffer it returned last time: call it only when
            // that buffer is ours. After a wait inside it timed out, take a buffer back first.
            if self.started && !self.wait()? {
                continue;
            }
            if self.started && !self.holding {
                match self.stream.dequeue() {
                    Ok(()) => self.holding = true,
                    Err(e) if no_frame_yet(&e) => {}
                    Err(e) => return Err(self.frames.io_error("read a frame", &e)),
                }
                continue;
            }
            self.started = true;
            let Self { stream, frames, .. } = self;
            let (data, meta) = match stream.next() {
                Ok(filled) => filled,
                Err(e) if no_frame_yet(&e) => {
                    self.holding = false;
                    continue;
                }
                Err(e) => return Err(frames.io_error("read a frame", &e)),
            };
            let packet = frames.packet(data, meta)?;
            self.holding = true;
            if packet.is_some() {
                return Ok(packet);
            }
        }
    }

    fn is_live(&self) -> bool {
        true
    }

    fn time_base(&self) -> Option<Arc<TimeBase>> {
        Some(self.frames.base.clone())
    }
}

#[cfg(test)]
mod tests;
