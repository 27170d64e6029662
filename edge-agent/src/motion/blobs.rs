//! Motion blobs from the bit mask of changed cells: a 3x3 dilation on whole words (64 cells per
//! operation), then 8-connected components over runs of set bits (union-find on runs, not on
//! cells), each with its bounding box and cell count. Buffers are kept between frames.

use super::grid::Geometry;

/// A connected region of the dilated mask, in cells (inclusive bounds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Blob {
    pub x1: usize,
    pub y1: usize,
    pub x2: usize,
    pub y2: usize,
    pub cells: usize,
}

/// A horizontal run of set cells in one row (inclusive bounds).
#[derive(Clone, Copy, Debug)]
struct Run {
    y: usize,
    x1: usize,
    x2: usize,
}

#[derive(Default)]
pub(super) struct Blobs {
    across: Vec<u64>,
    dilated: Vec<u64>,
    runs: Vec<Run>,
    parent: Vec<usize>,
    found: Vec<Option<Blob>>,
}

impl Blobs {
    /// The components of `mask` (`g.words` words per row) after a 3x3 dilation, in the order of
    /// their first cell (row by row).
    pub fn find(&mut self, mask: &[u64], g: Geometry) -> impl Iterator<Item = Blob> + '_ {
        self.dilate(mask, g);
        self.runs.clear();
        for (y, row) in self.dilated.chunks_exact(g.words).enumerate() {
            row_runs(row, y, &mut self.runs);
        }
        self.link();
        self.collect();
        self.found.iter().filter_map(|b| *b)
    }

    /// 3x3 dilation: each row OR its neighbours one cell left and right (carrying across words),
    /// then each row OR the rows above and below. Bits past the last cell stay clear.
    fn dilate(&mut self, mask: &[u64], g: Geometry) {
        let n = g.words;
        let last = match g.w % 64 {
            0 => u64::MAX,
            r => (1u64 << r) - 1,
        };
        self.across.resize(mask.len(), 0);
        self.dilated.resize(mask.len(), 0);
        for (src, dst) in mask.chunks_exact(n).zip(self.across.chunks_exact_mut(n)) {
            for k in 0..n {
                let left = if k > 0 { src[k - 1] >> 63 } else { 0 };
                let right = src.get(k + 1).map_or(0, |w| w << 63);
                dst[k] = src[k] | src[k] << 1 | left | src[k] >> 1 | right;
            }
            dst[n - 1] &= last;
        }
        for y in 0..g.h {
            let (up, down) = (y.saturating_sub(1), (y + 1).min(g.h - 1));
            for k in 0..n {
                self.dilated[y * n + k] =
                    self.across[up * n + k] | self.across[y * n + k] | self.across[down * n + k];
            }
        }
    }

    /// Union-find over runs: a run joins every run of the row above that it touches, diagonals
    /// included. The root of a component is its first run.
    fn link(&mut self) {
        self.parent.clear();
        self.parent.extend(0..self.runs.len());
        let (mut above, mut row_start) = (0, 0);
        for i in 0..self.runs.len() {
            let run = self.runs[i];
            if run.y != self.runs[row_start].y {
                // A new row: the previous row's runs are the ones above, if it is adjacent.
                above = if self.runs[i - 1].y + 1 == run.y {
                    row_start
                } else {
                    i
                };
                row_start = i;
            }
            let mut j = above;
            while j < row_start && self.runs[j].x2 + 1 < run.x1 {
                j += 1;
            }
            above = j;
            while j < row_start && self.runs[j].x1 <= run.x2 + 1 {
                union(&mut self.parent, i, j);
                j += 1;
            }
        }
    }

    /// One blob per root, at the root's index.
    fn collect(&mut self) {
        self.found.clear();
        self.found.resize(self.runs.len(), None);
        for i in 0..self.runs.len() {
            let r = self.runs[i];
            let root = find(&mut self.parent, i);
            let b = self.found[root].get_or_insert(Blob {
                x1: r.x1,
                y1: r.y,
                x2: r.x2,
                y2: r.y,
                cells: 0,
            });
            b.x1 = b.x1.min(r.x1);
            b.x2 = b.x2.max(r.x2);
            b.y2 = b.y2.max(r.y);
            b.cells += r.x2 - r.x1 + 1;
        }
    }
}

/// Appends the runs of set bits of one row, merging runs that continue across words.
fn row_runs(row: &[u64], y: usize, runs: &mut Vec<Run>) {
    for (k, &word) in row.iter().enumerate() {
        let mut rest = word;
        while rest != 0 {
            let start = rest.trailing_zeros();
            let len = (rest >> start).trailing_ones();
            let (x1, x2) = (k * 64 + start as usize, k * 64 + (start + len) as usize - 1);
            match runs.last_mut() {
                Some(prev) if prev.y == y && prev.x2 + 1 == x1 => prev.x2 = x2,
                _ => runs.push(Run { y, x1, x2 }),
            }
            rest &= !low_bits(start + len);
        }
    }
}

/// A word with the low `n` bits set (n <= 64).
fn low_bits(n: u32) -> u64 {
    1u64.checked_shl(n).map_or(u64::MAX, |b| b - 1)
}

/// Root of `i`, halving the path on the way.
fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Joins two sets under the smaller root (the earlier run).
fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
    parent[hi] = lo;
}
