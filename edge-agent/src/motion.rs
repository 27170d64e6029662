//! Cheap motion detection on the luma plane only (no colour conversion): box-average downscale,
//! running-average background, threshold, 3x3 dilation, connected components -> motion boxes.
//! A change over most of the frame at once (lights, IR switch) recalibrates instead of firing.

use cascade_shared::config::edge::MotionConfig;
use cascade_shared::wire::BoxPx;

use crate::decode::Frame;

/// What motion detection found in one frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Motion {
    /// Boxes around moving regions, in full-frame pixels.
    pub boxes: Vec<BoxPx>,
    /// Fraction of the (unmasked) frame that differs from the background.
    pub changed: f32,
    /// The background was reset because too much changed at once.
    pub recalibrated: bool,
}

/// Finds moving regions in a stream of frames.
pub trait MotionDetector: Send {
    fn detect(&mut self, frame: &Frame) -> Motion;
}

/// Fixed-point background: luma * 256.
const FP: i32 = 256;

pub struct BackgroundMotion {
    cfg: MotionConfig,
    /// Downscale factor and the downscaled size, fixed by the first frame.
    geom: Option<Geometry>,
    background: Vec<i32>,
    small: Vec<u8>,
    mask: Vec<u8>,
    dilated: Vec<u8>,
    scratch: Vec<u8>,
    ignore: Vec<bool>,
    /// Column sums of the current band of `factor` rows (u16: at most 257 rows of 255).
    row_acc: Vec<u16>,
    warmup_left: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Geometry {
    src_w: usize,
    src_h: usize,
    factor: usize,
    w: usize,
    h: usize,
}

impl BackgroundMotion {
    pub fn new(cfg: MotionConfig) -> Self {
        Self {
            warmup_left: cfg.warmup_frames,
            cfg,
            geom: None,
            background: Vec::new(),
            small: Vec::new(),
            mask: Vec::new(),
            dilated: Vec::new(),
            scratch: Vec::new(),
            ignore: Vec::new(),
            row_acc: Vec::new(),
        }
    }

    fn setup(&mut self, frame: &Frame) -> Geometry {
        // At most 128 rows per band keeps the u16 column sums from overflowing.
        let factor = (frame.width / self.cfg.width.max(1) as usize).clamp(1, 128);
        let g = Geometry {
            src_w: frame.width,
            src_h: frame.height,
            factor,
            w: frame.width / factor,
            h: frame.height / factor,
        };
        let n = g.w * g.h;
        self.small = vec![0; n];
        self.mask = vec![0; n];
        self.dilated = vec![0; n];
        self.scratch = vec![0; n];
        self.row_acc = vec![0; frame.width];
        self.ignore = rasterize_masks(&self.cfg.masks, g.w, g.h);
        self.geom = Some(g);
        self.warmup_left = self.cfg.warmup_frames;
        g
    }

    /// Box-average downscale of the luma plane by an integer factor.
    fn downscale(&mut self, frame: &Frame, g: Geometry) {
        let f = g.factor;
        let area = (f * f) as u32;
        for sy in 0..g.h {
            self.row_acc.fill(0);
            for row in frame.y[sy * f * g.src_w..].chunks_exact(g.src_w).take(f) {
                for (acc, &p) in self.row_acc.iter_mut().zip(row) {
                    *acc += u16::from(p);
                }
            }
            let out = &mut self.small[sy * g.w..(sy + 1) * g.w];
            for (o, block) in out.iter_mut().zip(self.row_acc.chunks_exact(f)) {
                *o = (block.iter().map(|&v| u32::from(v)).sum::<u32>() / area) as u8;
            }
        }
    }

    fn reset_background(&mut self) {
        self.background = self.small.iter().map(|&p| i32::from(p) * FP).collect();
    }

    /// Thresholds against the background; returns the changed fraction of unmasked pixels.
    fn threshold(&mut self) -> f32 {
        let thr = i32::from(self.cfg.threshold) * FP;
        let mut changed = 0usize;
        for (((m, &p), &bg), &ign) in self
            .mask
            .iter_mut()
            .zip(&self.small)
            .zip(&self.background)
            .zip(&self.ignore)
        {
            let hit = !ign && (i32::from(p) * FP - bg).abs() > thr;
            *m = u8::from(hit);
            changed += usize::from(hit);
        }
        let live = self.ignore.iter().filter(|i| !**i).count().max(1);
        changed as f32 / live as f32
    }

    /// Moves the background towards the current frame. The same rate everywhere: a slower rate
    /// under motion leaves "ghosts" where someone stood for a while and then left.
    fn learn(&mut self, rate: f32) {
        let r = ((rate * 1024.0) as i32).max(1);
        for (bg, &p) in self.background.iter_mut().zip(&self.small) {
            *bg += (i32::from(p) * FP - *bg) * r / 1024;
        }
    }

    fn boxes(&mut self, g: Geometry) -> Vec<BoxPx> {
        dilate3(&self.mask, &mut self.scratch, &mut self.dilated, g.w, g.h);
        let min_px = (self.cfg.min_area * (g.w * g.h) as f32).max(1.0) as usize;
        let scale_x = g.src_w as f32 / g.w as f32;
        let scale_y = g.src_h as f32 / g.h as f32;
        components(&mut self.dilated, g.w, g.h)
            .into_iter()
            .filter(|c| c.pixels >= min_px)
            .map(|c| BoxPx {
                x1: c.x1 as f32 * scale_x,
                y1: c.y1 as f32 * scale_y,
                x2: ((c.x2 + 1) as f32 * scale_x).min(g.src_w as f32),
                y2: ((c.y2 + 1) as f32 * scale_y).min(g.src_h as f32),
            })
            .collect()
    }
}

impl MotionDetector for BackgroundMotion {
    fn detect(&mut self, frame: &Frame) -> Motion {
        let g = match self.geom {
            Some(g) if g.src_w == frame.width && g.src_h == frame.height => g,
            _ => {
                let g = self.setup(frame);
                self.downscale(frame, g);
                self.reset_background();
                return Motion {
                    recalibrated: true,
                    ..Motion::default()
                };
            }
        };
        self.downscale(frame, g);
        let changed = self.threshold();
        if changed > self.cfg.global_change {
            self.reset_background();
            self.warmup_left = self.cfg.warmup_frames;
            return Motion {
                boxes: Vec::new(),
                changed,
                recalibrated: true,
            };
        }
        if self.warmup_left > 0 {
            self.warmup_left -= 1;
            self.learn(0.5);
            return Motion {
                boxes: Vec::new(),
                changed,
                recalibrated: false,
            };
        }
        let boxes = self.boxes(g);
        self.learn(self.cfg.learning_rate);
        Motion {
            boxes,
            changed,
            recalibrated: false,
        }
    }
}

/// 3x3 binary dilation, separable; `tmp` is scratch of the same size.
fn dilate3(src: &[u8], tmp: &mut [u8], dst: &mut [u8], w: usize, h: usize) {
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        let out = &mut tmp[y * w..(y + 1) * w];
        for x in 0..w {
            out[x] = row[x.saturating_sub(1)] | row[x] | row[(x + 1).min(w - 1)];
        }
    }
    for y in 0..h {
        let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            dst[y * w + x] = tmp[up * w + x] | tmp[y * w + x] | tmp[down * w + x];
        }
    }
}

struct Component {
    x1: usize,
    y1: usize,
    x2: usize,
    y2: usize,
    pixels: usize,
}

/// 8-connected components of a binary image (consumes the mask).
fn components(mask: &mut [u8], w: usize, h: usize) -> Vec<Component> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if mask[start] == 0 {
            continue;
        }
        mask[start] = 0;
        stack.push(start);
        let mut c = Component {
            x1: w,
            y1: h,
            x2: 0,
            y2: 0,
            pixels: 0,
        };
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            c.x1 = c.x1.min(x);
            c.x2 = c.x2.max(x);
            c.y1 = c.y1.min(y);
            c.y2 = c.y2.max(y);
            c.pixels += 1;
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if mask[j] != 0 {
                        mask[j] = 0;
                        stack.push(j);
                    }
                }
            }
        }
        out.push(c);
    }
    out
}

/// Marks the downscaled pixels whose centres fall inside any mask polygon (even-odd rule).
fn rasterize_masks(polys: &[Vec<[f32; 2]>], w: usize, h: usize) -> Vec<bool> {
    let mut ignore = vec![false; w * h];
    for poly in polys {
        for y in 0..h {
            let py = (y as f32 + 0.5) / h as f32;
            for x in 0..w {
                let px = (x as f32 + 0.5) / w as f32;
                if point_in_polygon(px, py, poly) {
                    ignore[y * w + x] = true;
                }
            }
        }
    }
    ignore
}

fn point_in_polygon(x: f32, y: f32, poly: &[[f32; 2]]) -> bool {
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let [xi, yi] = poly[i];
        let [xj, yj] = poly[(i + n - 1) % n];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
    }
    inside
}

#[cfg(test)]
mod tests;
