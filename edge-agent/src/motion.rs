//! Cheap motion detection on the luma plane only (no colour conversion): a sampled box-average
//! downscale (`grid`: four pixels per cell, only the rows it needs), a running-average
//! background, a bit-packed change mask, a 3x3 dilation and connected components on it (`blobs`)
//! -> motion boxes. A change over most of the frame at once (lights, IR switch) recalibrates
//! instead of firing. Nothing is allocated per frame once the first frame of a size set it up
//! (a frame with motion allocates its list of boxes). `design/motion.md` has the figures.

mod blobs;
mod grid;

use cascade_shared::config::edge::MotionConfig;
use cascade_shared::wire::BoxPx;

use crate::decode::Frame;
use blobs::{Blob, Blobs};
use grid::{Geometry, Grid};

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

pub struct BackgroundMotion {
    cfg: MotionConfig,
    /// The grid of the current picture size, made by its first frame.
    grid: Option<Grid>,
    blobs: Blobs,
    warmup_left: u32,
}

impl BackgroundMotion {
    pub fn new(cfg: MotionConfig) -> Self {
        Self {
            warmup_left: cfg.warmup_frames,
            cfg,
            grid: None,
            blobs: Blobs::default(),
        }
    }

    /// Starts over (a new grid, the background from this frame) when the frame's size is not the
    /// grid's; says whether it did.
    fn start_on_new_size(&mut self, frame: &Frame) -> bool {
        let same = self
            .grid
            .as_ref()
            .is_some_and(|g| (g.g.src_w, g.g.src_h) == (frame.width, frame.height));
        if !same {
            let g = Geometry::new(frame.width, frame.height, self.cfg.width);
            let mut grid = Grid::new(g, &self.cfg);
            grid.sample(&frame.y);
            grid.reset_background();
            self.grid = Some(grid);
            self.warmup_left = self.cfg.warmup_frames;
        }
        !same
    }
}

impl MotionDetector for BackgroundMotion {
    fn detect(&mut self, frame: &Frame) -> Motion {
        let fresh = self.start_on_new_size(frame);
        let (cfg, blobs) = (&self.cfg, &mut self.blobs);
        let Some(grid) = self.grid.as_mut().filter(|_| !fresh) else {
            return Motion {
                recalibrated: true,
                ..Motion::default()
            };
        };
        grid.sample(&frame.y);
        let changed = grid.threshold(cfg.threshold) as f32 / grid.live as f32;
        if changed > cfg.global_change {
            grid.reset_background();
            self.warmup_left = cfg.warmup_frames;
            return Motion {
                boxes: Vec::new(),
                changed,
                recalibrated: true,
            };
        }
        if self.warmup_left > 0 {
            self.warmup_left -= 1;
            grid.learn(0.5);
            return Motion {
                changed,
                ..Motion::default()
            };
        }
        let g = grid.g;
        let min_cells = (cfg.min_area * (g.w * g.h) as f32).max(1.0) as usize;
        let boxes = blobs
            .find(&grid.changed, g)
            .filter(|b| b.cells >= min_cells)
            .map(|b| to_frame(b, g))
            .collect();
        grid.learn(cfg.learning_rate);
        Motion {
            boxes,
            changed,
            recalibrated: false,
        }
    }
}

/// A blob's cells as a box in frame pixels (the frame's right and bottom edge included when the
/// grid stops short of them).
fn to_frame(b: Blob, g: Geometry) -> BoxPx {
    let (sx, sy) = (g.src_w as f32 / g.w as f32, g.src_h as f32 / g.h as f32);
    BoxPx {
        x1: b.x1 as f32 * sx,
        y1: b.y1 as f32 * sy,
        x2: ((b.x2 + 1) as f32 * sx).min(g.src_w as f32),
        y2: ((b.y2 + 1) as f32 * sy).min(g.src_h as f32),
    }
}

/// Bit masks (`g.words` words per row) of the cells whose centres fall inside any mask polygon
/// (even-odd rule).
fn rasterize_masks(polys: &[Vec<[f32; 2]>], g: Geometry) -> Vec<u64> {
    let mut ignore = vec![0u64; g.words * g.h];
    for poly in polys {
        for y in 0..g.h {
            let py = (y as f32 + 0.5) / g.h as f32;
            for x in 0..g.w {
                let px = (x as f32 + 0.5) / g.w as f32;
                if point_in_polygon(px, py, poly) {
                    ignore[y * g.words + x / 64] |= 1 << (x % 64);
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
