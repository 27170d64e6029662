//! Image types: decoded I420 frames, packed RGB images, and the [`RgbSource`] view that
//! pre-processing and cropping sample from.

use cascade_shared::wire::BoxPx;

/// A decoded picture, I420, tightly packed (stride = width).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    /// Presentation time, microseconds from the stream's start.
    pub pts_us: i64,
}

impl Frame {
    /// A flat grey frame (tests and benchmarks).
    pub fn filled(width: usize, height: usize, luma: u8) -> Self {
        let c = width.div_ceil(2) * height.div_ceil(2);
        Self {
            width,
            height,
            y: vec![luma; width * height],
            u: vec![128; c],
            v: vec![128; c],
            pts_us: 0,
        }
    }
}

/// Anything that can be sampled as RGB pixels.
pub trait RgbSource {
    fn size(&self) -> (usize, usize);
    fn rgb(&self, x: usize, y: usize) -> [u8; 3];
}

impl<T: RgbSource + ?Sized> RgbSource for &T {
    fn size(&self) -> (usize, usize) {
        (**self).size()
    }

    #[inline]
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        (**self).rgb(x, y)
    }
}

/// BT.601 limited-range YUV -> RGB, integer arithmetic.
#[inline]
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (i32::from(y) - 16).max(0) * 298;
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clip = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clip(c + 409 * e),
        clip(c - 100 * d - 208 * e),
        clip(c + 516 * d),
    ]
}

impl RgbSource for Frame {
    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    #[inline]
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let cw = self.width.div_ceil(2);
        let ci = (y / 2) * cw + x / 2;
        yuv_to_rgb(self.y[y * self.width + x], self.u[ci], self.v[ci])
    }
}

/// A packed RGB8 image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbSource for RgbImage {
    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    #[inline]
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

/// A rectangle of an image, seen as an image of its own (region-of-interest pre-processing: run
/// the detector on the part of the frame where there is motion). Boxes found in a region map back
/// to the whole image with [`Region::to_image`].
#[derive(Debug, Clone, Copy)]
pub struct Region<'a, I: RgbSource + ?Sized> {
    image: &'a I,
    x0: usize,
    y0: usize,
    width: usize,
    height: usize,
}

impl<'a, I: RgbSource + ?Sized> Region<'a, I> {
    /// The whole-pixel part of `b` inside the image; at least one pixel.
    pub fn new(image: &'a I, b: &BoxPx) -> Self {
        let (iw, ih) = image.size();
        let x0 = (b.x1.max(0.0) as usize).min(iw.saturating_sub(1));
        let y0 = (b.y1.max(0.0) as usize).min(ih.saturating_sub(1));
        let x1 = (b.x2.ceil().max(0.0) as usize).clamp(x0 + 1, iw.max(x0 + 1));
        let y1 = (b.y2.ceil().max(0.0) as usize).clamp(y0 + 1, ih.max(y0 + 1));
        Self {
            image,
            x0,
            y0,
            width: x1 - x0,
            height: y1 - y0,
        }
    }

    /// A box in region pixels -> the same box in image pixels.
    pub fn to_image(&self, b: &BoxPx) -> BoxPx {
        let (dx, dy) = (self.x0 as f32, self.y0 as f32);
        BoxPx {
            x1: b.x1 + dx,
            y1: b.y1 + dy,
            x2: b.x2 + dx,
            y2: b.y2 + dy,
        }
    }
}

impl<I: RgbSource + ?Sized> RgbSource for Region<'_, I> {
    fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    #[inline]
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        self.image.rgb(self.x0 + x, self.y0 + y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_yuv_is_white_rgb() {
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
    }

    #[test]
    fn region_samples_its_rectangle_and_maps_back() {
        let mut img = RgbImage {
            width: 10,
            height: 8,
            data: vec![0; 240],
        };
        img.data[(3 * 10 + 4) * 3] = 200;
        let r = Region::new(
            &img,
            &BoxPx {
                x1: 4.0,
                y1: 3.0,
                x2: 7.5,
                y2: 20.0,
            },
        );
        assert_eq!(r.size(), (4, 5), "clipped to the image, rounded out");
        assert_eq!(r.rgb(0, 0), [200, 0, 0]);
        let back = r.to_image(&BoxPx {
            x1: 1.0,
            y1: 1.0,
            x2: 2.0,
            y2: 2.0,
        });
        assert_eq!((back.x1, back.y1, back.x2, back.y2), (5.0, 4.0, 6.0, 5.0));
    }

    #[test]
    fn region_outside_the_image_is_one_pixel_inside_it() {
        let img = RgbImage {
            width: 4,
            height: 4,
            data: vec![7; 48],
        };
        let r = Region::new(
            &img,
            &BoxPx {
                x1: 50.0,
                y1: -3.0,
                x2: 60.0,
                y2: -1.0,
            },
        );
        assert_eq!(r.size(), (1, 1));
        assert_eq!(r.rgb(0, 0), [7, 7, 7]);
    }
}
