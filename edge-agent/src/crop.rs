//! Person crops: the box padded by a margin, clipped to the frame, scaled down to a maximum side,
//! and JPEG-encoded straight from the I420 frame.

use cascade_shared::config::edge::CropConfig;
use cascade_shared::wire::BoxPx;
use jpeg_encoder::{ColorType, Encoder};

use cascade_infer::{Frame, RgbSource};

#[derive(Debug, thiserror::Error)]
#[error("JPEG encoding of a {width}x{height} crop failed: {reason}")]
pub struct CropError {
    pub width: usize,
    pub height: usize,
    pub reason: String,
}

/// A JPEG crop and the region of the frame it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct JpegCrop {
    pub jpeg: Vec<u8>,
    pub region: BoxPx,
}

/// The padded, clipped, whole-pixel region around `b`.
pub fn region(b: &BoxPx, frame: (usize, usize), padding: f32) -> BoxPx {
    let (fw, fh) = (frame.0 as f32, frame.1 as f32);
    let (px, py) = (b.width() * padding, b.height() * padding);
    let x1 = (b.x1 - px).floor().clamp(0.0, fw - 1.0);
    let y1 = (b.y1 - py).floor().clamp(0.0, fh - 1.0);
    let x2 = (b.x2 + px).ceil().clamp(x1 + 1.0, fw);
    let y2 = (b.y2 + py).ceil().clamp(y1 + 1.0, fh);
    BoxPx { x1, y1, x2, y2 }
}

/// Cuts and encodes the crop around `b`.
pub fn make(frame: &Frame, b: &BoxPx, cfg: &CropConfig) -> Result<JpegCrop, CropError> {
    let r = region(b, (frame.width, frame.height), cfg.padding);
    let (x0, y0) = (r.x1 as usize, r.y1 as usize);
    let (rw, rh) = ((r.x2 - r.x1) as usize, (r.y2 - r.y1) as usize);
    let scale = (cfg.max_side as f32 / rw.max(rh) as f32).min(1.0);
    let (w, h) = (
        ((rw as f32 * scale).round() as usize).max(1),
        ((rh as f32 * scale).round() as usize).max(1),
    );
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let sy = y0 + ((y as f32 + 0.5) / scale) as usize;
        for x in 0..w {
            let sx = x0 + ((x as f32 + 0.5) / scale) as usize;
            rgb.extend_from_slice(&frame.rgb(sx.min(frame.width - 1), sy.min(frame.height - 1)));
        }
    }
    let err = |reason: String| CropError {
        width: w,
        height: h,
        reason,
    };
    let (ew, eh) = (
        u16::try_from(w).map_err(|e| err(e.to_string()))?,
        u16::try_from(h).map_err(|e| err(e.to_string()))?,
    );
    let mut jpeg = Vec::with_capacity(w * h / 4);
    Encoder::new(&mut jpeg, cfg.jpeg_quality)
        .encode(&rgb, ew, eh, ColorType::Rgb)
        .map_err(|e| err(e.to_string()))?;
    Ok(JpegCrop { jpeg, region: r })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_is_padded_and_clipped() {
        let b = BoxPx {
            x1: 10.0,
            y1: 10.0,
            x2: 50.0,
            y2: 110.0,
        };
        let r = region(&b, (100, 100), 0.5);
        assert_eq!(
            r,
            BoxPx {
                x1: 0.0,
                y1: 0.0,
                x2: 70.0,
                y2: 100.0
            }
        );
    }

    #[test]
    fn crop_is_a_jpeg_within_max_side() {
        let mut f = Frame::filled(640, 480, 60);
        for y in 100..400 {
            for x in 200..300 {
                f.y[y * 640 + x] = 230;
            }
        }
        let cfg = CropConfig {
            max_side: 160,
            padding: 0.1,
            jpeg_quality: 80,
        };
        let c = make(
            &f,
            &BoxPx {
                x1: 200.0,
                y1: 100.0,
                x2: 300.0,
                y2: 400.0,
            },
            &cfg,
        )
        .expect("encodes");
        assert_eq!(&c.jpeg[..2], &[0xFF, 0xD8]);
        let img = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(&c.jpeg))
            .decode()
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(img.is_ok(), "{img:?}");
        let mut d = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(&c.jpeg));
        d.decode_headers().expect("headers");
        let (w, h) = d.dimensions().expect("dims");
        assert_eq!(h, 160, "longest side scaled to max_side");
        assert!(w < h);
    }
}
