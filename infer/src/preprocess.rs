//! Letterbox pre-processing: scale an image into the model's input, keeping its aspect ratio, and
//! write the tensor in the model's layout, channel order and normalisation.

use cascade_shared::manifest::{ChannelOrder, InputSpec, Layout, Letterbox as Placement};

use crate::image::RgbSource;

/// How an image is scaled onto the model's canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scaling {
    /// Up or down to fill the canvas (the edge: frames and regions at least the input's size).
    #[default]
    Fit,
    /// Down to fit, never up: a smaller image is pasted at its native scale and the rest of the
    /// canvas is padding (the cloud's crops: a small crop stretched up loses the look the model
    /// knows).
    Native,
}

/// How an image was placed on the model's canvas; maps boxes back to image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}

impl Letterbox {
    pub fn new(src: (usize, usize), spec: &InputSpec) -> Self {
        Self::scaled(src, spec, Scaling::Fit)
    }

    /// The placement of a `src`-sized image with `scaling`.
    pub fn scaled(src: (usize, usize), spec: &InputSpec, scaling: Scaling) -> Self {
        let (sw, sh) = (src.0.max(1) as f32, src.1.max(1) as f32);
        let (dw, dh) = (spec.width as f32, spec.height as f32);
        let fit = (dw / sw).min(dh / sh);
        let scale = match scaling {
            Scaling::Fit => fit,
            Scaling::Native => fit.min(1.0),
        };
        let (nw, nh) = ((sw * scale).round(), (sh * scale).round());
        let (pad_x, pad_y) = match spec.letterbox {
            Placement::Center => (((dw - nw) / 2.0).floor(), ((dh - nh) / 2.0).floor()),
            Placement::TopLeft => (0.0, 0.0),
        };
        Self {
            scale,
            pad_x,
            pad_y,
        }
    }

    /// Model-input coordinates -> image coordinates.
    pub fn unmap(&self, x: f32, y: f32) -> (f32, f32) {
        ((x - self.pad_x) / self.scale, (y - self.pad_y) / self.scale)
    }
}

/// Fills `out` with the model input for `img` as normalised `f32` (nearest-neighbour scaling) and
/// returns the mapping.
pub fn letterbox(img: &impl RgbSource, spec: &InputSpec, out: &mut Vec<f32>) -> Letterbox {
    letterbox_with(img, spec, Scaling::Fit, &f32_lut(spec), out)
}

/// Per-channel value tables, indexed by the 8-bit channel value in model channel order.
pub type Lut<T> = [[T; 256]; 3];

/// The manifest's normalisation: `(v * scale - mean) / std`.
pub fn f32_lut(spec: &InputSpec) -> Lut<f32> {
    std::array::from_fn(|c| {
        std::array::from_fn(|v| (v as f32 * spec.scale - spec.mean[c]) / spec.std[c])
    })
}

/// Raw bytes (quantised models with scale 1/255 and zero point 0).
pub fn u8_lut() -> Lut<u8> {
    std::array::from_fn(|_| std::array::from_fn(|v| v as u8))
}

/// Bytes shifted by -128 (quantised models with scale 1/255 and zero point -128).
pub fn i8_lut() -> Lut<i8> {
    std::array::from_fn(|_| std::array::from_fn(|v| (v as i16 - 128) as i8))
}

/// The manifest's normalisation, then affine quantisation: `clamp(round(x / scale) + zero_point)`
/// into `T`'s range (uint8 or int8 inputs of a quantised model).
pub fn quant_lut<T: QuantBounds>(spec: &InputSpec, q: crate::backend::Quantization) -> Lut<T> {
    let f = f32_lut(spec);
    std::array::from_fn(|c| {
        std::array::from_fn(|v| {
            let x = (f[c][v] / q.scale).round() as i64 + i64::from(q.zero_point);
            T::saturate(x)
        })
    })
}

/// The integer types a quantised input takes.
pub trait QuantBounds: Sized + Copy {
    fn saturate(x: i64) -> Self;
}

impl QuantBounds for u8 {
    fn saturate(x: i64) -> Self {
        x.clamp(0, 255) as u8
    }
}

impl QuantBounds for i8 {
    fn saturate(x: i64) -> Self {
        x.clamp(-128, 127) as i8
    }
}

/// Fills `out` with the model input for `img` placed with `scaling`, each channel value through
/// `lut`, in the spec's layout and channel order (nearest-neighbour scaling), and returns the
/// mapping.
pub fn letterbox_with<T: Copy + Default>(
    img: &impl RgbSource,
    spec: &InputSpec,
    scaling: Scaling,
    lut: &Lut<T>,
    out: &mut Vec<T>,
) -> Letterbox {
    let lb = Letterbox::scaled(img.size(), spec, scaling);
    let (sw, sh) = img.size();
    let (dw, dh) = (spec.width as usize, spec.height as usize);
    let plane = dw * dh;
    out.clear();
    out.resize(plane * 3, T::default());
    let order = match spec.channels {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    let pad = [spec.pad_value; 3];
    // Source column for each destination column (None in the padding).
    let cols: Vec<Option<usize>> = (0..dw)
        .map(|x| {
            let sx = ((x as f32 - lb.pad_x + 0.5) / lb.scale).floor();
            (sx >= 0.0 && (sx as usize) < sw && x as f32 >= lb.pad_x).then_some(sx as usize)
        })
        .collect();
    for y in 0..dh {
        let sy = ((y as f32 - lb.pad_y + 0.5) / lb.scale).floor();
        let row = (sy >= 0.0 && (sy as usize) < sh && y as f32 >= lb.pad_y).then_some(sy as usize);
        for (x, col) in cols.iter().enumerate() {
            let px = match (row, col) {
                (Some(sy), Some(sx)) => img.rgb(*sx, sy),
                _ => pad,
            };
            for (c, &src_c) in order.iter().enumerate() {
                let i = match spec.layout {
                    Layout::Nchw => c * plane + y * dw + x,
                    Layout::Nhwc => (y * dw + x) * 3 + c,
                };
                out[i] = lut[c][usize::from(px[src_c])];
            }
        }
    }
    lb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::RgbImage;

    #[test]
    fn the_quantising_table_matches_the_shifted_bytes_at_scale_one_255th() {
        let sp = spec(8, 8, Placement::Center);
        let q = |zero_point| crate::backend::Quantization {
            scale: 1.0 / 255.0,
            zero_point,
        };
        assert_eq!(quant_lut::<i8>(&sp, q(-128)), i8_lut());
        assert_eq!(quant_lut::<u8>(&sp, q(0)), u8_lut());
        // A coarser scale saturates instead of wrapping.
        let coarse = quant_lut::<i8>(
            &sp,
            crate::backend::Quantization {
                scale: 0.5 / 255.0,
                zero_point: 0,
            },
        );
        assert_eq!((coarse[0][0], coarse[0][63], coarse[0][255]), (0, 126, 127));
    }

    fn spec(w: u32, h: u32, letterbox: Placement) -> InputSpec {
        toml::from_str::<InputSpec>(&format!("width = {w}\nheight = {h}"))
            .map(|s| InputSpec { letterbox, ..s })
            .expect("spec")
    }

    #[test]
    fn centred_letterbox_maps_back() {
        let lb = Letterbox::new((768, 432), &spec(640, 640, Placement::Center));
        assert!((lb.scale - 640.0 / 768.0).abs() < 1e-6);
        assert_eq!((lb.pad_x, lb.pad_y), (0.0, 140.0));
        let (x, y) = lb.unmap(320.0, 320.0);
        assert!((x - 384.0).abs() < 0.01 && (y - 216.0).abs() < 0.01);
    }

    #[test]
    fn native_scaling_pastes_a_small_image_unstretched() {
        let s = spec(640, 640, Placement::Center);
        let lb = Letterbox::scaled((200, 100), &s, Scaling::Native);
        assert_eq!((lb.scale, lb.pad_x, lb.pad_y), (1.0, 220.0, 270.0));
        let (x, y) = lb.unmap(220.0 + 50.0, 270.0 + 10.0);
        assert!((x - 50.0).abs() < 1e-4 && (y - 10.0).abs() < 1e-4);
        assert!((Letterbox::scaled((200, 100), &s, Scaling::Fit).scale - 3.2).abs() < 1e-6);
        let big = Letterbox::scaled((1280, 720), &s, Scaling::Native);
        assert!(
            (big.scale - 0.5).abs() < 1e-6,
            "a larger image is still scaled down"
        );
        let mut out = Vec::new();
        let img = RgbImage {
            width: 2,
            height: 2,
            data: vec![255; 12],
        };
        let lb = letterbox_with(
            &img,
            &spec(8, 8, Placement::Center),
            Scaling::Native,
            &u8_lut(),
            &mut out,
        );
        assert_eq!((lb.pad_x, lb.pad_y), (3.0, 3.0));
        let lit: Vec<usize> = (0..64).filter(|&i| out[i] == 255).collect();
        assert_eq!(
            lit,
            vec![27, 28, 35, 36],
            "a 2x2 image in the middle of the 8x8 canvas"
        );
    }

    #[test]
    fn pads_with_fill_value_and_normalises() {
        let img = RgbImage {
            width: 4,
            height: 2,
            data: vec![255; 24],
        };
        let mut out = Vec::new();
        let s = spec(8, 8, Placement::Center);
        let lb = letterbox(&img, &s, &mut out);
        assert_eq!((lb.pad_x, lb.pad_y), (0.0, 2.0));
        assert!((out[0] - 114.0 / 255.0).abs() < 1e-6, "padding row");
        assert!((out[2 * 8] - 1.0).abs() < 1e-6, "image row");
    }

    #[test]
    fn quantised_inputs_take_raw_or_shifted_bytes() {
        let img = RgbImage {
            width: 2,
            height: 2,
            data: vec![200; 12],
        };
        let s = InputSpec {
            layout: Layout::Nhwc,
            ..spec(2, 2, Placement::Center)
        };
        let mut u = Vec::new();
        letterbox_with(&img, &s, Scaling::Fit, &u8_lut(), &mut u);
        assert_eq!(u, vec![200u8; 12]);
        let mut i = Vec::new();
        letterbox_with(&img, &s, Scaling::Fit, &i8_lut(), &mut i);
        assert_eq!(i, vec![72i8; 12]);
    }
}
