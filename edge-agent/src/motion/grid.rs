//! The motion grid: the luma plane sampled down to cells of `factor` x `factor` pixels, its
//! running-average background, and the bit mask of the cells that differ from it.
//!
//! Each cell is the mean of four pixels of its block. For cells of 4x4 and more, one row of each
//! band of `factor` rows is read (the middle one) and four pixels of each block in it, spread
//! across its width: a 1080p frame costs 180 row reads instead of 1 080, a 720p one 180 instead
//! of 720. Smaller cells take a 2x2 lattice at a quarter and three quarters of the block (the
//! whole block when it is 2x2). Four samples halve the sensor noise a single nearest-neighbour
//! sample keeps. While a band is sampled, one byte of each cache line of the next band's rows is
//! loaded, so those lines come from memory while this band is worked on, not one after the other.

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
    /// The bytes `sample` loaded ahead, folded (a result, so the loads are not optimised away).
    warm: u8,
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
            warm: 0,
        }
    }

    /// Samples a luma plane of the grid's size (`src_w * src_h` bytes, or shorter: missing rows
    /// leave their cells as they were).
    pub fn sample(&mut self, luma: &[u8]) {
        let g = self.g;
        let (f, row_len) = (g.factor, g.w * g.factor);
        let rows = Rows::of(f);
        let row = |band: usize, t: usize| {
            luma.get((band * f + t) * g.src_w..)
                .and_then(|r| r.get(..row_len))
        };
        let mut warm = 0;
        for (y, out) in self.small.chunks_exact_mut(g.w).enumerate() {
            warm ^= rows.each(|t| row(y + 1, t).map_or(0, touch));
            match rows {
                Rows::One(t) => {
                    if let Some(a) = row(y, t) {
                        sample_row(a, out, f);
                    }
                }
                Rows::Two(t0, t1) => {
                    if let (Some(a), Some(b)) = (row(y, t0), row(y, t1)) {
                        sample_rows(a, b, out, f);
                    }
                }
            }
        }
        // Kept so that the loads are made.
        self.warm = warm;
    }

    #[cfg(test)]
    pub fn cells(&self) -> &[u8] {
        &self.small
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

    /// Moves the background towards the current frame by `rate` (0 to 1): `bg += d * r >> 15`
    /// for `d` the frame minus the background, computed as the high half of `2d * r` (both fit
    /// an i16, so it is one 16-bit multiply per cell and vectorises).
    pub fn learn(&mut self, rate: f32) {
        let r = ((rate * RATE_ONE).round() as i32).clamp(1, RATE_ONE as i32);
        let Ok(r) = i16::try_from(r) else {
            return self.reset_background();
        };
        for (bg, &p) in self.background.iter_mut().zip(&self.small) {
            // |d| <= 255 * 64, so |2d| < 2^15.
            let d2 = 2 * (i16::from(p) * FP - *bg);
            *bg += ((i32::from(d2) * i32::from(r)) >> 16) as i16;
        }
    }
}

/// Cells of this many pixels and more are sampled on one row of each band.
const ONE_ROW_FROM: usize = 4;

/// The rows of a band of `f` that are read.
#[derive(Clone, Copy)]
enum Rows {
    /// The middle row, four pixels of each block.
    One(usize),
    /// A quarter and three quarters down, two pixels of each block in each.
    Two(usize, usize),
}

impl Rows {
    fn of(f: usize) -> Self {
        if f >= ONE_ROW_FROM {
            Self::One(f / 2)
        } else {
            let (t0, t1) = taps(f);
            Self::Two(t0, t1)
        }
    }

    /// `visit` of each row offset, XORed.
    fn each(self, mut visit: impl FnMut(usize) -> u8) -> u8 {
        match self {
            Self::One(t) => visit(t),
            Self::Two(t0, t1) => visit(t0) ^ visit(t1),
        }
    }
}

/// One byte of each cache line of `row`, XORed: brings the row towards the core.
fn touch(row: &[u8]) -> u8 {
    const LINE: usize = 64;
    let last = row.last().copied().unwrap_or(0);
    row.iter().step_by(LINE).fold(last, |acc, &b| acc ^ b)
}

/// The two sample offsets inside a block of `f` pixels: a quarter and three quarters in.
fn taps(f: usize) -> (usize, usize) {
    (f / 4, 3 * f / 4)
}

/// Four sample offsets across a block of `f` pixels, at its eighths 1, 3, 5 and 7 (6: 0, 2, 3, 5).
const fn taps4(f: usize) -> [usize; 4] {
    [f / 8, 3 * f / 8, 5 * f / 8, 7 * f / 8]
}

/// One row of cells from one sampled row (`w * f` pixels), four pixels of each block.
fn sample_row(a: &[u8], out: &mut [u8], f: usize) {
    match f {
        4 => sample_one_const::<4>(a, out),
        6 => sample_one_const::<6>(a, out),
        8 => sample_one_const::<8>(a, out),
        _ => {
            let [t0, t1, t2, t3] = taps4(f);
            for (o, a) in out.iter_mut().zip(a.chunks_exact(f)) {
                *o = mean4(a[t0], a[t1], a[t2], a[t3]);
            }
        }
    }
}

fn sample_one_const<const F: usize>(a: &[u8], out: &mut [u8]) {
    let [t0, t1, t2, t3] = const { taps4(F) };
    for (o, a) in out.iter_mut().zip(a.as_chunks::<F>().0) {
        *o = mean4(a[t0], a[t1], a[t2], a[t3]);
    }
}

/// One row of cells from its two sampled rows (each `w * f` pixels). Common factors get their
/// own monomorphised loop: fixed offsets into fixed-size blocks, no bounds checks.
fn sample_rows(a: &[u8], b: &[u8], out: &mut [u8], f: usize) {
    match f {
        1 => sample_const::<1>(a, b, out),
        2 => sample_const::<2>(a, b, out),
        3 => sample_const::<3>(a, b, out),
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
