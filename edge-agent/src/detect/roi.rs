//! Where the detector looks in a frame (Frigate-style regions of interest): a square around each
//! motion box and each tracked person, at least the model's input side in frame pixels (so the
//! model never scales a region up, and a small person keeps every pixel it has), overlapping
//! squares merged, clamped to the frame. The whole frame instead when the regions would cover most
//! of it, when there are too many, or periodically, to find people whose motion was missed.
//! Pure: the caller passes the clock.

use cascade_shared::config::edge::RegionsConfig;
use cascade_shared::wire::BoxPx;

/// What one detector run looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Whole,
    Regions(Vec<BoxPx>),
}

impl Plan {
    /// The regions, empty for the whole frame (the form `cascade_infer::Look` takes).
    pub fn regions(&self) -> &[BoxPx] {
        match self {
            Self::Whole => &[],
            Self::Regions(r) => r,
        }
    }
}

/// Plans each run of one camera; remembers when the whole frame was last looked at.
#[derive(Debug, Clone)]
pub struct Planner {
    cfg: RegionsConfig,
    last_whole_us: Option<i64>,
}

impl Planner {
    pub fn new(cfg: RegionsConfig) -> Self {
        Self {
            cfg,
            last_whole_us: None,
        }
    }

    /// The plan for a frame of `frame` pixels at `now_us` with these motion and track boxes,
    /// for a model whose input side is `side`.
    pub fn plan(
        &mut self,
        now_us: i64,
        frame: (usize, usize),
        side: u32,
        boxes: impl IntoIterator<Item = BoxPx>,
    ) -> Plan {
        let due = match (self.cfg.whole_frame_every(), self.last_whole_us) {
            (Some(every), Some(last)) => now_us - last >= every.as_micros() as i64,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let plan = if !self.cfg.enabled || due {
            Plan::Whole
        } else {
            regions(&self.cfg, frame, side as f32, boxes)
        };
        if plan == Plan::Whole {
            self.last_whole_us = Some(now_us);
        }
        plan
    }
}

/// The regions for `boxes`, or the whole frame when they would cover most of it.
pub fn regions(
    cfg: &RegionsConfig,
    frame: (usize, usize),
    side: f32,
    boxes: impl IntoIterator<Item = BoxPx>,
) -> Plan {
    let (fw, fh) = (frame.0 as f32, frame.1 as f32);
    let mut squares: Vec<BoxPx> = boxes
        .into_iter()
        .map(|b| square(&b, cfg.margin, side, (fw, fh)))
        .collect();
    if squares.is_empty() {
        return Plan::Whole;
    }
    merge_overlapping(&mut squares, side, (fw, fh));
    let covered: f32 = squares.iter().map(|s| s.width() * s.height()).sum();
    if squares.len() > cfg.max_regions as usize || covered > cfg.whole_frame_share * fw * fh {
        return Plan::Whole;
    }
    Plan::Regions(squares)
}

/// The square around `b` grown by `margin` of its larger side on each side, at least `side`
/// pixels, moved (not shrunk) to lie inside the frame; cut to the frame only where the frame is
/// smaller than the square.
fn square(b: &BoxPx, margin: f32, side: f32, frame: (f32, f32)) -> BoxPx {
    let big = b.width().max(b.height()).max(0.0);
    let s = (big * (1.0 + 2.0 * margin)).max(side);
    let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    let (x1, x2) = place(cx, s, frame.0);
    let (y1, y2) = place(cy, s, frame.1);
    BoxPx { x1, y1, x2, y2 }
}

/// An interval of length `len` centred on `c` as nearly as fits in `0..max`.
fn place(c: f32, len: f32, max: f32) -> (f32, f32) {
    if len >= max {
        return (0.0, max);
    }
    let lo = (c - len / 2.0).clamp(0.0, max - len);
    (lo, lo + len)
}

/// Replaces any two overlapping squares by the square around both, until none overlap.
fn merge_overlapping(squares: &mut Vec<BoxPx>, side: f32, frame: (f32, f32)) {
    'again: loop {
        for i in 0..squares.len() {
            for j in i + 1..squares.len() {
                if overlaps(&squares[i], &squares[j]) {
                    let (a, b) = (squares[i], squares.swap_remove(j));
                    let union = BoxPx {
                        x1: a.x1.min(b.x1),
                        y1: a.y1.min(b.y1),
                        x2: a.x2.max(b.x2),
                        y2: a.y2.max(b.y2),
                    };
                    squares[i] = square(&union, 0.0, side, frame);
                    continue 'again;
                }
            }
        }
        return;
    }
}

fn overlaps(a: &BoxPx, b: &BoxPx) -> bool {
    a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2
}

#[cfg(test)]
mod tests;
