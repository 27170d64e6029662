//! Raw camera pictures to the pipeline's [`Frame`] (I420, BT.601 limited range, what the decoder
//! produces): YUYV and NV12 rearranged directly, MJPEG decoded with `zune-jpeg` to YCbCr and
//! brought from JPEG's full range to limited range. Buffers come from a driver: every size, stride
//! and length is checked, and a bad one is an error, never a panic or an out-of-bounds read.

use std::borrow::Cow;

use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::decode::Frame;

/// The widest or tallest picture accepted.
pub const MAX_SIDE: usize = 16_384;
/// The most pixels in a picture accepted (8192 x 8192).
pub const MAX_PIXELS: usize = 8192 * 8192;

/// How a raw picture lies in a driver's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub width: usize,
    pub height: usize,
    /// Bytes from one row to the next (`bytesperline`); 0 means rows are packed.
    pub stride: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("a {width}x{height} picture is empty or too large")]
    Size { width: usize, height: usize },
    #[error("{format} rows of {stride} bytes cannot hold {width} pixels (at least {min} bytes)")]
    Stride {
        format: &'static str,
        width: usize,
        stride: usize,
        min: usize,
    },
    #[error("{format} {width}x{height}: {got} bytes, at least {need} expected (a short buffer)")]
    Short {
        format: &'static str,
        width: usize,
        height: usize,
        got: usize,
        need: usize,
    },
    #[error("damaged JPEG: {0}")]
    Jpeg(String),
    #[error("a {got_width}x{got_height} JPEG from a camera set to {width}x{height}")]
    JpegSize {
        width: usize,
        height: usize,
        got_width: usize,
        got_height: usize,
    },
}

fn check_size(width: usize, height: usize) -> Result<(), ConvertError> {
    let ok = width > 0
        && height > 0
        && width <= MAX_SIDE
        && height <= MAX_SIDE
        && width * height <= MAX_PIXELS;
    if ok {
        Ok(())
    } else {
        Err(ConvertError::Size { width, height })
    }
}

/// Checks a layout; returns the stride in force and the chroma size `(cw, ch)`.
fn check_layout(
    format: &'static str,
    l: Layout,
    min_row: usize,
    rows: usize,
    got: usize,
) -> Result<(usize, usize, usize), ConvertError> {
    check_size(l.width, l.height)?;
    let stride = if l.stride == 0 { min_row } else { l.stride };
    if stride < min_row {
        return Err(ConvertError::Stride {
            format,
            width: l.width,
            stride,
            min: min_row,
        });
    }
    // Saturating: a driver's stride is any u32, and usize may be 32 bits (armv7).
    let need = stride.saturating_mul(rows - 1).saturating_add(min_row);
    if got < need {
        return Err(ConvertError::Short {
            format,
            width: l.width,
            height: l.height,
            got,
            need,
        });
    }
    Ok((stride, l.width.div_ceil(2), l.height.div_ceil(2)))
}

fn avg(a: u8, b: u8) -> u8 {
    (u16::from(a) + u16::from(b)).div_ceil(2) as u8
}

/// Packed 4:2:2 (`Y0 U Y1 V` per two pixels): luma as it is, chroma of each row pair averaged.
pub fn yuyv(data: &[u8], l: Layout, pts_us: i64) -> Result<Frame, ConvertError> {
    let min_row = 4 * l.width.div_ceil(2);
    let (stride, cw, ch) = check_layout("YUYV", l, min_row, l.height, data.len())?;
    let (w, h) = (l.width, l.height);
    let row = |r: usize| &data[r * stride..r * stride + min_row];
    let mut y = Vec::with_capacity(w * h);
    for r in 0..h {
        y.extend(row(r).chunks_exact(2).take(w).map(|p| p[0]));
    }
    let (mut u, mut v) = (Vec::with_capacity(cw * ch), Vec::with_capacity(cw * ch));
    for cy in 0..ch {
        let (a, b) = (row(2 * cy), row((2 * cy + 1).min(h - 1)));
        for (pa, pb) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
            u.push(avg(pa[1], pb[1]));
            v.push(avg(pa[3], pb[3]));
        }
    }
    Ok(Frame {
        width: w,
        height: h,
        y,
        u,
        v,
        pts_us,
    })
}

/// Semi-planar 4:2:0: the Y plane, then rows of interleaved `U V` right after it (at
/// `stride * height`, as V4L2's single-planar NV12 lays them out).
pub fn nv12(data: &[u8], l: Layout, pts_us: i64) -> Result<Frame, ConvertError> {
    let (w, h) = (l.width, l.height);
    let min_row = 2 * w.div_ceil(2);
    let rows = h + h.div_ceil(2);
    let (stride, cw, ch) = check_layout("NV12", l, min_row, rows, data.len())?;
    let mut y = Vec::with_capacity(w * h);
    for r in 0..h {
        y.extend_from_slice(&data[r * stride..r * stride + w]);
    }
    let (mut u, mut v) = (Vec::with_capacity(cw * ch), Vec::with_capacity(cw * ch));
    for cy in 0..ch {
        let start = (h + cy) * stride;
        for p in data[start..start + 2 * cw].chunks_exact(2) {
            u.push(p[0]);
            v.push(p[1]);
        }
    }
    Ok(Frame {
        width: w,
        height: h,
        y,
        u,
        v,
        pts_us,
    })
}

/// One Motion-JPEG picture, which must be `width` x `height` (the size the camera was set to:
/// nothing larger is allocated). UVC cameras leave out the Huffman tables; the standard ones
/// apply.
pub fn mjpeg(data: &[u8], width: usize, height: usize, pts_us: i64) -> Result<Frame, ConvertError> {
    check_size(width, height)?;
    let data = &*with_huffman_tables(data);
    let jpeg_err = |e: &dyn std::fmt::Display| ConvertError::Jpeg(e.to_string());
    let probe = DecoderOptions::default()
        .set_max_width(width)
        .set_max_height(height);
    let mut d = JpegDecoder::new_with_options(std::io::Cursor::new(data), probe);
    d.decode_headers().map_err(|e| jpeg_err(&e))?;
    let (got_width, got_height) = d.dimensions().ok_or(ConvertError::Jpeg("no size".into()))?;
    if (got_width, got_height) != (width, height) {
        return Err(ConvertError::JpegSize {
            width,
            height,
            got_width,
            got_height,
        });
    }
    let out = match d.input_colorspace() {
        Some(ColorSpace::Luma) => ColorSpace::Luma,
        _ => ColorSpace::YCbCr,
    };
    let options = probe.jpeg_set_out_colorspace(out);
    let mut d = JpegDecoder::new_with_options(std::io::Cursor::new(data), options);
    let pixels = d.decode().map_err(|e| jpeg_err(&e))?;
    let n = out.num_components();
    if pixels.len() != width * height * n {
        return Err(ConvertError::Jpeg(format!(
            "{} bytes decoded, {} expected",
            pixels.len(),
            width * height * n
        )));
    }
    Ok(full_range_to_frame(&pixels, n, width, height, pts_us))
}

/// An `APP0` segment marking a frame as AVI Motion JPEG, whose missing Huffman tables are the
/// standard ones (OpenDML).
const AVI1: [u8; 9] = [0xFF, 0xE0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0];

/// UVC cameras leave the Huffman tables out of MJPEG frames, as AVI files do. `zune-jpeg` fills in
/// the standard ones only for frames marked `AVI1`: mark a frame that has none before its scan.
fn with_huffman_tables(data: &[u8]) -> Cow<'_, [u8]> {
    if !data.starts_with(&[0xFF, 0xD8]) || has_huffman_tables(data) {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + AVI1.len());
    out.extend_from_slice(&data[..2]);
    out.extend_from_slice(&AVI1);
    out.extend_from_slice(&data[2..]);
    Cow::Owned(out)
}

/// Whether a DHT segment comes before the first scan (SOS). Walks the segments after SOI.
fn has_huffman_tables(data: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= data.len() && data[i] == 0xFF {
        match data[i + 1] {
            0xC4 => return true,
            0xDA => return false,
            0xFF => i += 1,               // fill byte
            0x01 | 0xD0..=0xD7 => i += 2, // no length
            _ => i += 2 + usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]])),
        }
    }
    false
}

/// Interleaved full-range YCbCr (or luma only, `n` = 1) to a limited-range I420 frame.
fn full_range_to_frame(p: &[u8], n: usize, w: usize, h: usize, pts_us: i64) -> Frame {
    let (luma, chroma) = range_tables();
    let y = p
        .chunks_exact(n)
        .map(|px| luma[usize::from(px[0])])
        .collect();
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    if n < 3 {
        return Frame {
            width: w,
            height: h,
            y,
            u: vec![128; cw * ch],
            v: vec![128; cw * ch],
            pts_us,
        };
    }
    let (mut u, mut v) = (Vec::with_capacity(cw * ch), Vec::with_capacity(cw * ch));
    for cy in 0..ch {
        let rows = [2 * cy, (2 * cy + 1).min(h - 1)];
        for cx in 0..cw {
            let cols = [2 * cx, (2 * cx + 1).min(w - 1)];
            let (mut su, mut sv) = (0u32, 0u32);
            for r in rows {
                for c in cols {
                    let i = (r * w + c) * 3;
                    su += u32::from(p[i + 1]);
                    sv += u32::from(p[i + 2]);
                }
            }
            u.push(chroma[((su + 2) / 4) as usize]);
            v.push(chroma[((sv + 2) / 4) as usize]);
        }
    }
    Frame {
        width: w,
        height: h,
        y,
        u,
        v,
        pts_us,
    }
}

/// Full range (0-255) to BT.601 limited range: luma 16-235, chroma 16-240 around 128.
fn range_tables() -> ([u8; 256], [u8; 256]) {
    let (mut luma, mut chroma) = ([0u8; 256], [0u8; 256]);
    for i in 0..256 {
        let x = i as f32;
        luma[i] = (16.0 + x * 219.0 / 255.0).round() as u8;
        chroma[i] = (128.0 + (x - 128.0) * 224.0 / 255.0).round() as u8;
    }
    (luma, chroma)
}

#[cfg(test)]
mod tests;
