//! The evaluation set: crops the edge would send, by category, made from a clip's frames and
//! their labels (people found by the cloud's FP32 model on the whole frame).
//!
//! - `full`: a labelled person not touching the frame's edge, the edge's detection of them.
//! - partly visible (the edge's detection of what is left, when it still finds the person):
//!   `edge-clip` (cut by the clip's own frame edge), `edge-left` / `-right` / `-top` / `-bottom`
//!   (the frame is a window of the clip's frame whose edge cuts the person, keeping 40 % of the
//!   box), `edge-arm` (keeping 30 % of its width: an arm and a shoulder reaching in),
//!   `occl-top` (the upper half hidden), `occl-head` (a counter hides all but the top 35 %:
//!   head and shoulders), `occl-side` (half the width hidden), `occl-arm` (a wall hides all but
//!   30 % of the width).
//! - negatives (motion with no person; the edge's box is the changed area, as if the edge model
//!   had fired on it), on frames with nobody in them: `neg-shadow`, `neg-light`, `neg-car`,
//!   `neg-pet`, `neg-moved`; and `neg-beside`: a shadow or light near a person, who is then
//!   inside the context crop but not on the edge's box.

use cascade_infer::{Detection, Detector, Frame};
use cascade_shared::wire::BoxPx;

use crate::synth;

/// What a sample is, and which way it should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Full,
    Partial,
    Negative,
}

/// One crop the edge would send: the frame it is cut from and the edge's box.
pub struct Sample {
    pub group: Group,
    pub kind: &'static str,
    pub frame: Frame,
    pub edge_box: BoxPx,
}

/// A decoded frame and its labelled people (score >= 0.5 on the whole frame).
pub struct Labelled {
    pub frame: Frame,
    pub people: Vec<BoxPx>,
    /// Nothing person-like at all (no candidate >= 0.2): usable for negatives.
    pub empty: bool,
}

pub fn bx(x1: f32, y1: f32, x2: f32, y2: f32) -> BoxPx {
    BoxPx { x1, y1, x2, y2 }
}

/// Labels `frame` with the cloud model run on the whole frame (`cloud` keeps candidates >= 0.2).
pub fn label(cloud: &mut Detector, frame: Frame) -> Labelled {
    let dets = cloud.detect(&frame).expect("whole-frame detection");
    Labelled {
        people: dets
            .iter()
            .filter(|d| d.score >= 0.5)
            .map(|d| d.bbox)
            .collect(),
        empty: dets.is_empty(),
        frame,
    }
}

/// The edge's detection of the person whose visible part is `visible` (whole box `whole`): the
/// best overlap of either, at least 0.3 IoU.
fn edge_box(edge: &mut Detector, f: &Frame, visible: &BoxPx, whole: &BoxPx) -> Option<BoxPx> {
    let dets: Vec<Detection> = edge.detect(f).expect("edge detection");
    dets.iter()
        .map(|d| (d.bbox.iou(visible).max(d.bbox.iou(whole)), d.bbox))
        .filter(|(iou, _)| *iou >= 0.3)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, b)| b)
}

/// Counts of what could not become a sample (the edge did not find the partly visible person,
/// or the variant did not fit the frame).
#[derive(Debug, Default)]
pub struct Dropped {
    pub edge_missed: Vec<&'static str>,
    pub no_room: usize,
}

const PARTIAL: [&str; 9] = [
    "edge-left",
    "edge-right",
    "edge-top",
    "edge-bottom",
    "edge-arm",
    "occl-top",
    "occl-head",
    "occl-side",
    "occl-arm",
];

/// The wall / counter colour of occluders, per variant (Y, U, V).
const WALL: [[u8; 3]; 3] = [[130, 120, 134], [96, 132, 140], [118, 126, 126]];

/// A partly visible variant `kind` of `f` around the person `p`: the changed frame and the
/// visible part of the box (frame coordinates of the new frame). `None`: it does not fit.
fn partial(f: &Frame, p: &BoxPx, kind: &str, n: usize) -> Option<(Frame, BoxPx)> {
    let (fw, fh) = (f.width as f32, f.height as f32);
    let (w, h) = (p.width(), p.height());
    let whole = bx(0.0, 0.0, fw, fh);
    let cut = |keep_x: (f32, f32), keep_y: (f32, f32), win: BoxPx| {
        let vis = bx(
            p.x1 + keep_x.0 * w,
            p.y1 + keep_y.0 * h,
            p.x1 + keep_x.1 * w,
            p.y1 + keep_y.1 * h,
        );
        let g = window(f, &win)?;
        let (x0, y0) = (g.1.x1, g.1.y1);
        Some((g.0, bx(vis.x1 - x0, vis.y1 - y0, vis.x2 - x0, vis.y2 - y0)))
    };
    let hide = |cover: BoxPx, vis: BoxPx| {
        let mut g = f.clone();
        synth::occlude(&mut g, &cover, WALL[n % WALL.len()]);
        Some((g, vis))
    };
    match kind {
        "edge-left" => cut((0.6, 1.0), (0.0, 1.0), bx(p.x1 + 0.6 * w, 0.0, fw, fh)),
        "edge-right" => cut((0.0, 0.4), (0.0, 1.0), bx(0.0, 0.0, p.x1 + 0.4 * w, fh)),
        "edge-top" => cut((0.0, 1.0), (0.6, 1.0), bx(0.0, p.y1 + 0.6 * h, fw, fh)),
        "edge-bottom" => cut((0.0, 1.0), (0.0, 0.4), bx(0.0, 0.0, fw, p.y1 + 0.4 * h)),
        "edge-arm" if n.is_multiple_of(2) => {
            cut((0.7, 1.0), (0.0, 1.0), bx(p.x1 + 0.7 * w, 0.0, fw, fh))
        }
        "edge-arm" => cut((0.0, 0.3), (0.0, 1.0), bx(0.0, 0.0, p.x1 + 0.3 * w, fh)),
        "occl-top" => hide(
            bx(p.x1 - 0.3 * w, 0.0, p.x2 + 0.3 * w, p.y1 + 0.5 * h),
            bx(p.x1, p.y1 + 0.5 * h, p.x2, p.y2),
        ),
        "occl-head" => hide(
            bx(p.x1 - 0.3 * w, p.y1 + 0.35 * h, p.x2 + 0.3 * w, fh),
            bx(p.x1, p.y1, p.x2, p.y1 + 0.35 * h),
        ),
        "occl-side" if n.is_multiple_of(2) => hide(
            bx(p.x1 - 0.2 * w, 0.0, p.x1 + 0.5 * w, fh),
            bx(p.x1 + 0.5 * w, p.y1, p.x2, p.y2),
        ),
        "occl-side" => hide(
            bx(p.x1 + 0.5 * w, 0.0, p.x2 + 0.2 * w, fh),
            bx(p.x1, p.y1, p.x1 + 0.5 * w, p.y2),
        ),
        "occl-arm" if n.is_multiple_of(2) => hide(
            bx(p.x1 - 0.2 * w, 0.0, p.x1 + 0.7 * w, fh),
            bx(p.x1 + 0.7 * w, p.y1, p.x2, p.y2),
        ),
        "occl-arm" => hide(
            bx(p.x1 + 0.3 * w, 0.0, p.x2 + 0.2 * w, fh),
            bx(p.x1, p.y1, p.x1 + 0.3 * w, p.y2),
        ),
        _ => None,
    }
    .filter(|(g, _)| g.width >= 64 && g.height >= 64 && whole.width() > 0.0)
}

/// The window `b` of `f` (at least 64 px each way) and the window's even-aligned box.
fn window(f: &Frame, b: &BoxPx) -> Option<(Frame, BoxPx)> {
    let (x0, y0, x1, y1) = synth::even(b, (f.width, f.height));
    (x1 >= x0 + 64 && y1 >= y0 + 64).then(|| {
        let w = bx(x0 as f32, y0 as f32, x1 as f32, y1 as f32);
        (synth::window(f, &w), w)
    })
}

/// The positive samples of one labelled frame: `full` (or `edge-clip`), and `per_frame` partly
/// visible variants, taken in turn from the list (`turn` says where this frame starts).
pub fn positives(
    edge: &mut Detector,
    l: &Labelled,
    (turn, per_frame): (usize, usize),
    dropped: &mut Dropped,
) -> Vec<Sample> {
    let f = &l.frame;
    let mut out = Vec::new();
    for p in &l.people {
        let inside = p.x1 >= 4.0
            && p.y1 >= 4.0
            && p.x2 <= f.width as f32 - 4.0
            && p.y2 <= f.height as f32 - 4.0;
        let (group, kind) = if inside {
            (Group::Full, "full")
        } else {
            (Group::Partial, "edge-clip")
        };
        match edge_box(edge, f, p, p) {
            Some(b) => out.push(Sample {
                group,
                kind,
                frame: f.clone(),
                edge_box: b,
            }),
            None => dropped.edge_missed.push(kind),
        }
    }
    // Synthetic variants only around the one person of a frame (a second could be hidden too).
    let [p] = l.people[..] else { return out };
    if !(p.x1 >= 4.0 && p.x2 <= f.width as f32 - 4.0) {
        return out;
    }
    for k in 0..per_frame {
        let n = turn * per_frame + k;
        let kind = PARTIAL[n % PARTIAL.len()];
        let Some((g, vis)) = partial(f, &p, kind, n / PARTIAL.len()) else {
            dropped.no_room += 1;
            continue;
        };
        let whole = bx(p.x1, p.y1, p.x2, p.y2);
        match edge_box(edge, &g, &vis, &whole) {
            Some(b) => out.push(Sample {
                group: Group::Partial,
                kind,
                frame: g,
                edge_box: b,
            }),
            None => dropped.edge_missed.push(kind),
        }
    }
    out
}

/// A negative of kind `n` (in turn) on an empty frame: the changed frame and the changed area.
pub fn negative(f: &Frame, n: usize) -> Sample {
    let (fw, fh) = (f.width as f32, f.height as f32);
    // Somewhere different each time, a person's size or a car's.
    let t = (n as f32 * 0.618_034).fract();
    let mut g = f.clone();
    let (kind, b) = match n % 5 {
        0 => {
            let b = bx(t * fw * 0.7, fh * 0.25, t * fw * 0.7 + fw * 0.12, fh * 0.95);
            synth::shade(&mut g, &b, 0.55, 0.0);
            ("neg-shadow", b)
        }
        1 => {
            let b = bx(t * fw * 0.6, fh * 0.1, t * fw * 0.6 + fw * 0.35, fh * 0.8);
            synth::shade(&mut g, &b, 1.15, 45.0);
            ("neg-light", b)
        }
        2 => {
            let b = bx(t * fw * 0.55, fh * 0.45, t * fw * 0.55 + fw * 0.4, fh * 0.8);
            synth::car(
                &mut g,
                &b,
                [[90, 110, 180], [60, 128, 128], [110, 100, 150]][n % 3],
            );
            ("neg-car", b)
        }
        3 => {
            let b = bx(t * fw * 0.8, fh * 0.72, t * fw * 0.8 + fw * 0.14, fh * 0.92);
            synth::pet(
                &mut g,
                &b,
                [[120, 110, 150], [50, 125, 130], [100, 120, 140]][n % 3],
            );
            ("neg-pet", b)
        }
        _ => {
            let from = bx(fw * 0.05, fh * 0.3, fw * 0.3, fh * 0.75);
            let to = (fw * (0.35 + 0.3 * t), fh * 0.25);
            synth::moved(&mut g, &from, to);
            (
                "neg-moved",
                bx(to.0, to.1, to.0 + from.width(), to.1 + from.height()),
            )
        }
    };
    let edge_box = bx(b.x1.max(0.0), b.y1.max(0.0), b.x2.min(fw), b.y2.min(fh));
    Sample {
        group: Group::Negative,
        kind,
        frame: g,
        edge_box,
    }
}

/// `neg-beside`: a shadow or a light just beside the one person of `l`, on their side with more
/// room; `None` when there is no room.
pub fn beside(l: &Labelled, n: usize) -> Option<Sample> {
    let [p] = l.people[..] else { return None };
    let f = &l.frame;
    let (fw, fh) = (f.width as f32, f.height as f32);
    let w = (p.width() * 0.8).max(fw * 0.08);
    let gap = fw * 0.03;
    let (x1, x2) = if p.x1 > fw - p.x2 {
        (p.x1 - gap - w, p.x1 - gap)
    } else {
        (p.x2 + gap, p.x2 + gap + w)
    };
    if x1 < 0.0 || x2 > fw {
        return None;
    }
    let b = bx(x1, p.y1.max(fh * 0.05), x2, p.y2.min(fh));
    let mut g = f.clone();
    if n.is_multiple_of(2) {
        synth::shade(&mut g, &b, 0.55, 0.0);
    } else {
        synth::shade(&mut g, &b, 1.15, 45.0);
    }
    Some(Sample {
        group: Group::Negative,
        kind: "neg-beside",
        frame: g,
        edge_box: b,
    })
}
