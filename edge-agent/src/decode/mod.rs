//! H.264 decode with OpenH264 (`Flush::NoFlush`: the default flush breaks streams with B-frames).
//! Runs on the calling (blocking) thread; never call it from the async runtime.

mod sps;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use openh264::OpenH264API;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;

pub use cascade_infer::Frame;
pub use sps::{SpsInfo, parse_sps};

use crate::source::{AccessUnit, split_nal_units};

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "interlaced H.264 ({width}x{height}, frame_mbs_only_flag = 0) is not supported by the OpenH264 \
         decoder: set the camera to progressive scan"
    )]
    Interlaced { width: u32, height: u32 },
    #[error("corrupt or truncated access unit at {pts_us} us ({len} bytes): {reason}")]
    Corrupt {
        pts_us: i64,
        len: usize,
        reason: String,
    },
    #[error("cannot start the OpenH264 decoder: {0}")]
    Init(String),
}

impl DecodeError {
    /// Whether the stream can go on after this error.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, Self::Corrupt { .. })
    }
}

/// Turns access units into frames in presentation order.
pub trait VideoDecoder: Send {
    /// Decodes one access unit; decoded frames (zero or more) are appended to `out`.
    fn decode(&mut self, au: &AccessUnit, out: &mut Vec<Frame>) -> Result<(), DecodeError>;
    /// Emits the frames still held for reordering (end of stream).
    fn flush(&mut self, out: &mut Vec<Frame>) -> Result<(), DecodeError>;
}

pub struct H264Decoder {
    inner: Decoder,
    /// The picture size of the sequence being decoded (from its SPS).
    size: Option<(u32, u32)>,
    /// Timestamps of pictures fed but not yet output; pictures leave in presentation order.
    pending_pts: BinaryHeap<Reverse<i64>>,
}

impl H264Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        Ok(Self {
            inner: Self::open()?,
            size: None,
            pending_pts: BinaryHeap::new(),
        })
    }

    fn open() -> Result<Decoder, DecodeError> {
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        Decoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| DecodeError::Init(e.to_string()))
    }

    /// A new sequence with another picture size (a camera's resolution changed mid-stream): the
    /// pictures held for reordering are output, then the decoder starts over on the new size.
    fn resize(&mut self, size: (u32, u32), out: &mut Vec<Frame>) -> Result<(), DecodeError> {
        if let Some(old) = self.size.replace(size)
            && old != size
        {
            tracing::info!(
                from = %format!("{}x{}", old.0, old.1),
                to = %format!("{}x{}", size.0, size.1),
                "new picture size in the stream: the decoder starts over"
            );
            self.drain(out)?;
            self.inner = Self::open()?;
        }
        Ok(())
    }

    fn next_pts(&mut self) -> i64 {
        // More pending than any legal reorder depth means frames were lost to corruption.
        while self.pending_pts.len() > 17 {
            self.pending_pts.pop();
        }
        self.pending_pts.pop().map_or(0, |Reverse(p)| p)
    }

    fn frame_from(yuv: &DecodedYUV<'_>, pts_us: i64) -> Frame {
        let (w, h) = yuv.dimensions();
        let (sy, su, sv) = yuv.strides();
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        Frame {
            width: w,
            height: h,
            y: copy_plane(yuv.y(), sy, w, h),
            u: copy_plane(yuv.u(), su, cw, ch),
            v: copy_plane(yuv.v(), sv, cw, ch),
            pts_us,
        }
    }
}

fn copy_plane(src: &[u8], stride: usize, w: usize, h: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h);
    for row in src.chunks(stride.max(1)).take(h) {
        out.extend_from_slice(&row[..w.min(row.len())]);
    }
    out.resize(w * h, 0);
    out
}

/// What an access unit holds, as far as timestamps and picture sizes care.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct UnitKind {
    /// Holds a coded picture (not only parameter sets or SEI).
    picture: bool,
    /// The picture size its SPS announces, when it carries one.
    size: Option<(u32, u32)>,
}

/// Classifies a unit and refuses interlaced streams before OpenH264 sees them.
fn inspect(au: &AccessUnit) -> Result<UnitKind, DecodeError> {
    let mut kind = UnitKind::default();
    for nal in split_nal_units(&au.data) {
        match nal[0] & 0x1F {
            7 => {
                if let Some(info) = parse_sps(nal) {
                    if info.interlaced {
                        return Err(DecodeError::Interlaced {
                            width: info.width,
                            height: info.height,
                        });
                    }
                    kind.size = Some((info.width, info.height));
                }
            }
            1 | 5 => kind.picture = true,
            _ => {}
        }
    }
    Ok(kind)
}

impl H264Decoder {
    /// Outputs every held picture, each taking the smallest pending timestamp; then forgets the
    /// timestamps of pictures the decoder dropped (lost to corruption).
    fn drain(&mut self, out: &mut Vec<Frame>) -> Result<(), DecodeError> {
        let frames: Vec<Frame> = self
            .inner
            .flush_remaining()
            .map_err(|e| DecodeError::Corrupt {
                pts_us: -1,
                len: 0,
                reason: e.to_string(),
            })?
            .iter()
            .map(|yuv| Self::frame_from(yuv, 0))
            .collect();
        for f in frames {
            let pts_us = self.next_pts();
            out.push(Frame { pts_us, ..f });
        }
        self.pending_pts.clear();
        Ok(())
    }
}

impl VideoDecoder for H264Decoder {
    fn decode(&mut self, au: &AccessUnit, out: &mut Vec<Frame>) -> Result<(), DecodeError> {
        let kind = inspect(au)?;
        if let Some(size) = kind.size {
            self.resize(size, out)?;
        }
        if kind.picture {
            self.pending_pts.push(Reverse(au.pts_us));
        }
        match self.inner.decode(&au.data) {
            Ok(Some(yuv)) => {
                let frame = Self::frame_from(&yuv, 0);
                let pts_us = self.next_pts();
                out.push(Frame { pts_us, ..frame });
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                // A unit that failed produces no picture: its timestamp must not shift later ones.
                let mut pending = std::mem::take(&mut self.pending_pts).into_vec();
                if let Some(i) = pending.iter().position(|Reverse(p)| *p == au.pts_us) {
                    pending.swap_remove(i);
                }
                self.pending_pts = pending.into();
                Err(DecodeError::Corrupt {
                    pts_us: au.pts_us,
                    len: au.data.len(),
                    reason: e.to_string(),
                })
            }
        }
    }

    fn flush(&mut self, out: &mut Vec<Frame>) -> Result<(), DecodeError> {
        self.drain(out)
    }
}

#[cfg(test)]
mod tests;
