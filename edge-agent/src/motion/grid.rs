//! The motion grid: the luma plane sampled down to cells of `factor` x `factor` pixels, its
//! running-average background, and the bit mask of the cells that differ from it.
//!
//! Each cell is the mean of four pixels of its block, a 2x2 lattice at a quarter and three
//! quarters of the block (the whole block when it is 2x2): two rows of each band of `factor`
//! rows are read, and two pixels of each block in them, so a 1080p frame costs 360 row reads
//! instead of 1 080. Four samples halve the sensor noise a single nearest-neighbour sample keeps.

use super::rasterize_masks;
use cascade_shared::config::edge::MotionConfig;

/// Background fixed point: luma * 64 (255 * 64 fits an i16).
const FP: i16 = 64;
/// Learning-rate fixed point (a rate of 1 is exactly 1 << 15).
const RATE_ONE: f32 = 32768.0;

/// The grid's size, fixed by the first frame of a size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geometry {
    pub src_w: usize,
    pub src_h: usize,
    pub factor: usize,
    pub w: usize,
    pub h: usize,
    /// u64 words per row of a bit mask.
    pub words: usize,
}

impl Geometry {
    /// At most 128 pixels per cell; at least one cell.
    pub fn new(src_w: usize, src_h: usize, width: u32) -> Self {
        let factor = (src_w / (width.max(1) as usize)).clamp(1, 128);
        let w = (src_w / factor).max(1);
        Self {
            src_w,
            src_h,
            factor,
            w,
            h: (src_h / factor).max(1),
            words: w.div_ceil(64),
        }
    }
}

pub(super) struct Grid {
    pub g: Geometry,
    small: Vec<u8>,
    background: Vec<i16>,
    /// Bit masks, `g.words` per row: cells ignored (polygons), cells changed this frame.
    ignore: Vec<u64>,
    pub changed: Vec<u64>,
    /// Cells not ignored.
    pub live: usize,
}

impl Grid {
    pub fn new(g: Geometry, cfg: &MotionConfig) -> Self {
        let ignore = rasterize_masks(&cfg.masks, g);
        let ignored: usize = ignore.iter().map(|w| w.count_ones() as usize).sum();
        Self {
            g,
            small: vec![0; g.w * g.h],
            background: vec![0; g.w * g.h],
            changed: vec![0; g.words * g.h],
            live: (g.w * g.h - ignored).max(1),
            ignore,
        }
    }

    /// Samples a luma plane of the grid's size (`src_w * src_h` bytes, or shorter: missing rows
    /// leave their cells as they were).
    pub fn sample(&mut self, luma: &[u8]) {
        let g = self.g;
        let (f, row_len) = (g.factor, g.w * g.factor);
        let (t0, t1) = taps(f);
        for (y, out) in self.small.chunks_exact_mut(g.w).enumerate() {
            let row = |t: usize| {
                luma.get((y * f + t) * g.src_w..)
                    .and_then(|r| r.get(..row_len))
            };
            if let (Some(a), Some(b)) = (row(t0), row(t1)) {
                sample_rows(a, b, out, f);
            }
        }
    }

    pub fn reset_background(&mut self) {
        for (bg, &p) in self.background.iter_mut().zip(&self.small) {
            *bg = i16::from(p) * FP;
        }
    }

    /// Sets `changed` to the unmasked cells more than `threshold` from the background; returns
    /// how many there are.
    pub fn threshold(&mut self, threshold: u8) -> usize {
        let t = i16::from(threshold) * FP;
        let g = self.g;
        let rows = self
            .small
            .chunks_exact(g.w)
            .zip(self.background.chunks_exact(g.w))
            .zip(self.changed.chunks_exact_mut(g.words))
            .zip(self.ignore.chunks_exact(g.words));
        let mut count = 0;
        for (((small, bg), changed), ignore) in rows {
            let cells = small.chunks(64).zip(bg.chunks(64));
            for (((s, b), word), &ign) in cells.zip(changed.iter_mut()).zip(ignore) {
                *word = differs(s, b, t) & !ign;
                count += word.count_ones() as usize;
            }
        }
        count
    }

    /// Moves the background towards the current frame by `rate` (0 to 1).
    pub fn learn(&mut self, rate: f32) {
        let r = ((rate * RATE_ONE).round() as i32).clamp(1, RATE_ONE as i32);
        for (bg, &p) in self.background.iter_mut().zip(&self.small) {
            let d = i32::from(p) * i32::from(FP) - i32::from(*bg);
            *bg += ((d * r) >> 15) as i16;
        }
    }
}

/// The two sample offsets inside a block of `f` pixels: a quarter and three quarters in.
fn taps(f: usize) -> (usize, usize) {
    (f / 4, 3 * f / 4)
}

/// One row of cells from its two sampled rows (each `w * f` pixels). Common factors get their
/// own monomorphised loop: fixed offsets into fixed-size blocks, no bounds checks.
fn sample_rows(a: &[u8], b: &[u8], out: &mut [u8], f: usize) {
    match f {
        1 => sample_const::<1>(a, b, out),
        2 => sample_const::<2>(a, b, out),
        3 => sample_const::<3>(a, b, out),
        4 => sample_const::<4>(a, b, out),
        5 => sample_const::<5>(a, b, out),
        6 => sample_const::<6>(a, b, out),
        8 => sample_const::<8>(a, b, out),
        _ => {
            let (t0, t1) = taps(f);
            let blocks = a.chunks_exact(f).zip(b.chunks_exact(f));
            for (o, (a, b)) in out.iter_mut().zip(blocks) {
                *o = mean4(a[t0], a[t1], b[t0], b[t1]);
            }
        }
    }
}

fn sample_const<const F: usize>(a: &[u8], b: &[u8], out: &mut [u8]) {
    let (t0, t1) = const { (F / 4, 3 * F / 4) };
    let blocks = a.as_chunks::<F>().0.iter().zip(b.as_chunks::<F>().0);
    for (o, (a, b)) in out.iter_mut().zip(blocks) {
        *o = mean4(a[t0], a[t1], b[t0], b[t1]);
    }
}

fn mean4(a: u8, b: u8, c: u8, d: u8) -> u8 {
    ((u16::from(a) + u16::from(b) + u16::from(c) + u16::from(d) + 2) >> 2) as u8
}

/// Bit i: cell i (of at most 64) differs from its background by more than `t`.
fn differs(small: &[u8], bg: &[i16], t: i16) -> u64 {
    let mut hits = [0u8; 64];
    for ((h, &p), &b) in hits.iter_mut().zip(small).zip(bg) {
        *h = u8::from((i16::from(p) * FP - b).abs() > t);
    }
    pack_bits(&hits)
}

/// 64 bytes of 0 or 1 into the bits of a word (byte i to bit i): each group of eight bytes is
/// gathered into its top byte by one multiplication (no two products meet, so nothing carries).
pub(super) fn pack_bits(bytes: &[u8; 64]) -> u64 {
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let (groups, _) = bytes.as_chunks::<8>();
    groups.iter().enumerate().fold(0, |acc, (i, g)| {
        acc | ((u64::from_le_bytes(*g).wrapping_mul(GATHER) >> 56) << (8 * i))
    })
}
