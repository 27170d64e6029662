//! Person crops: the box padded by a margin, clipped to the frame, grown to a minimum context (a
//! share of the frame, a side in frame pixels) and moved inside the frame, scaled down (never up)
//! to a maximum side, and JPEG-encoded straight from the I420 frame.

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

/// The whole-pixel region of the frame the crop of `b` shows: `b` padded, clipped to the frame,
/// then grown about its centre to the context minimum (`context_share` of each frame side,
/// `context_px` frame pixels, neither past the frame) and moved back inside the frame.
pub fn region(b: &BoxPx, frame: (usize, usize), cfg: &CropConfig) -> BoxPx {
    let (fw, fh) = (frame.0 as f32, frame.1 as f32);
    let min = |side: f32| (cfg.context_share * side).max(cfg.context_px as f32);
    let (x1, x2) = span(b.x1, b.x2, b.width() * cfg.padding, min(fw), fw);
    let (y1, y2) = span(b.y1, b.y2, b.height() * cfg.padding, min(fh), fh);
    BoxPx { x1, y1, x2, y2 }
}

/// One axis of [`region`]: `lo..hi` padded by `pad`, clipped to `0..len`, grown to at least
/// `min` (at most `len`) about its centre and shifted back inside, rounded out to whole pixels
/// (at least one).
fn span(lo: f32, hi: f32, pad: f32, min: f32, len: f32) -> (f32, f32) {
    let (mut a, mut b) = ((lo - pad).max(0.0), (hi + pad).min(len));
    let need = min.min(len);
    if b - a < need {
        let c = (a + b) / 2.0;
        (a, b) = (c - need / 2.0, c + need / 2.0);
        let shift = (-a).max(0.0) - (b - len).max(0.0);
        (a, b) = ((a + shift).max(0.0), (b + shift).min(len));
    }
    let a = a.floor().clamp(0.0, len - 1.0);
    (a, b.ceil().clamp(a + 1.0, len))
}

/// Cuts and encodes the crop around `b`.
pub fn make(frame: &Frame, b: &BoxPx, cfg: &CropConfig) -> Result<JpegCrop, CropError> {
    let r = region(b, (frame.width, frame.height), cfg);
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
        let cfg = CropConfig {
            padding: 0.5,
            ..CropConfig::default().without_context()
        };
        let r = region(&b, (100, 100), &cfg);
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

    fn bx(x1: f32, y1: f32, x2: f32, y2: f32) -> BoxPx {
        BoxPx { x1, y1, x2, y2 }
    }

    fn context(share: f32, px: u32) -> CropConfig {
        CropConfig {
            context_share: share,
            context_px: px,
            ..CropConfig::default()
        }
    }

    #[test]
    fn context_grows_a_small_box_and_moves_it_inside_the_frame() {
        let cfg = context(0.5, 320);
        // 768x432: at least 384 wide (half the width) and 320 high (the pixel minimum).
        let r = region(&bx(100.0, 100.0, 140.0, 200.0), (768, 432), &cfg);
        assert_eq!(
            r,
            bx(0.0, 0.0, 384.0, 320.0),
            "moved right and down from the corner"
        );
        let r = region(&bx(300.0, 150.0, 340.0, 250.0), (768, 432), &cfg);
        assert_eq!(
            r,
            bx(128.0, 40.0, 512.0, 360.0),
            "centred on the padded box"
        );
        // An arm reaching in at the right edge: the context lies inside, to its left.
        let r = region(&bx(730.0, 200.0, 768.0, 260.0), (768, 432), &cfg);
        assert_eq!(r, bx(384.0, 70.0, 768.0, 390.0));
    }

    #[test]
    fn context_never_exceeds_the_frame_and_leaves_large_boxes_alone() {
        let r = region(&bx(50.0, 20.0, 60.0, 40.0), (200, 150), &context(0.5, 320));
        assert_eq!(r, bx(0.0, 0.0, 200.0, 150.0), "a small frame: all of it");
        let big = bx(100.0, 50.0, 500.0, 400.0);
        assert_eq!(
            region(&big, (768, 432), &context(0.5, 320)),
            region(&big, (768, 432), &CropConfig::default().without_context()),
            "already past the minimum: the padded box as before"
        );
    }

    #[test]
    fn a_context_crop_is_never_scaled_up() {
        let f = Frame::filled(768, 432, 90);
        let c = make(&f, &bx(300.0, 150.0, 340.0, 250.0), &context(0.5, 320)).expect("encodes");
        let mut d = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(&c.jpeg));
        d.decode_headers().expect("headers");
        assert_eq!(d.dimensions(), Some((384, 320)), "the region's own pixels");
    }

    proptest::proptest! {
        /// The region lies inside the frame on whole pixels, holds the box (its part inside the
        /// frame) and spans at least the context minimum on each axis, or the whole frame.
        #[test]
        fn region_holds_the_box_and_the_context(
            fw in 16usize..2000, fh in 16usize..1200,
            (x, y, w, h) in (0.0f32..1.0, 0.0f32..1.0, 0.01f32..1.0, 0.01f32..1.0),
            share in 0.0f32..1.0, px in 0u32..1000, padding in 0.0f32..2.0,
        ) {
            let (fwf, fhf) = (fw as f32, fh as f32);
            let b = bx(x * fwf, y * fhf, (x * fwf + w * fwf).min(fwf), (y * fhf + h * fhf).min(fhf));
            proptest::prop_assume!(b.width() > 0.0 && b.height() > 0.0);
            let cfg = CropConfig { padding, ..context(share, px) };
            let r = region(&b, (fw, fh), &cfg);
            for v in [r.x1, r.y1, r.x2, r.y2] {
                proptest::prop_assert_eq!(v, v.round());
            }
            proptest::prop_assert!(r.x1 >= 0.0 && r.y1 >= 0.0 && r.x2 <= fwf && r.y2 <= fhf);
            proptest::prop_assert!(r.x1 <= b.x1 && r.y1 <= b.y1 && r.x2 >= b.x2 && r.y2 >= b.y2, "{r:?} {b:?}");
            let need = |side: f32| (share * side).max(px as f32).min(side);
            proptest::prop_assert!(r.width() >= need(fwf) - 1e-3, "{r:?} need {}", need(fwf));
            proptest::prop_assert!(r.height() >= need(fhf) - 1e-3, "{r:?} need {}", need(fhf));
        }
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
            ..CropConfig::default().without_context()
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
