//! Output decoders for the detector families people run (and HailoRT's NMS on chip, `hailo_nms`),
//! and non-maximum suppression.
//! Decoders work in model-input pixels; the caller maps boxes back through the letterbox.

use cascade_shared::manifest::{OutputFormat, OutputSpec};

mod hailo_nms;

/// A candidate in model-input pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
    pub class_id: u32,
}

impl Candidate {
    fn from_center(cx: f32, cy: f32, w: f32, h: f32, score: f32, class_id: u32) -> Self {
        Self {
            x1: cx - w / 2.0,
            y1: cy - h / 2.0,
            x2: cx + w / 2.0,
            y2: cy + h / 2.0,
            score,
            class_id,
        }
    }

    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    pub fn iou(&self, o: &Self) -> f32 {
        let iw = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let ih = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + o.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// A raw output tensor: its shape and data.
#[derive(Debug, Clone, Copy)]
pub struct Tensor<'a> {
    pub shape: &'a [i64],
    pub data: &'a [f32],
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("model output does not fit the {format:?} format: {reason}")]
pub struct OutputError {
    pub format: OutputFormat,
    pub reason: String,
}

/// What to keep while decoding.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub score_threshold: f32,
    /// Keep only this class (the person class), or every class.
    pub class_id: Option<u32>,
}

impl Filter {
    fn best(&self, scores: impl Iterator<Item = f32>) -> Option<(u32, f32)> {
        let best = match self.class_id {
            Some(c) => scores.enumerate().nth(c as usize).map(|(_, s)| (c, s)),
            None => scores
                .enumerate()
                .fold(None, |acc: Option<(u32, f32)>, (i, s)| match acc {
                    Some((_, b)) if b >= s => acc,
                    _ => Some((i as u32, s)),
                }),
        };
        best.filter(|(_, s)| *s >= self.score_threshold && s.is_finite())
    }
}

/// Decodes a model's outputs into candidates in model-input pixels.
pub fn decode(
    spec: &OutputSpec,
    outputs: &[Tensor<'_>],
    input: (u32, u32),
    filter: Filter,
) -> Result<Vec<Candidate>, OutputError> {
    let err = |reason: String| OutputError {
        format: spec.format,
        reason,
    };
    let first = outputs.first().ok_or_else(|| err("no outputs".into()))?;
    let (sx, sy) = if spec.boxes_normalized {
        (input.0 as f32, input.1 as f32)
    } else {
        (1.0, 1.0)
    };
    match spec.format {
        OutputFormat::Yolov8 => {
            let (rows, n) = dims3(first)
                .ok_or_else(|| err(format!("expected [1, 4+C, N], got {:?}", first.shape)))?;
            if rows < 5 {
                return Err(err(format!("{rows} rows cannot hold a box and a class")));
            }
            let at = |r: usize, i: usize| first.data[r * n + i];
            Ok((0..n)
                .filter_map(|i| {
                    let (c, s) = filter.best((4..rows).map(|r| at(r, i)))?;
                    Some(Candidate::from_center(
                        at(0, i) * sx,
                        at(1, i) * sy,
                        at(2, i) * sx,
                        at(3, i) * sy,
                        s,
                        c,
                    ))
                })
                .collect())
        }
        OutputFormat::Yolov5 | OutputFormat::Yolox => {
            let (n, cols) = dims3(first)
                .ok_or_else(|| err(format!("expected [1, N, 5+C], got {:?}", first.shape)))?;
            if cols < 6 {
                return Err(err(format!(
                    "{cols} columns cannot hold a box, objectness and a class"
                )));
            }
            let grid = if spec.format == OutputFormat::Yolox {
                Some(yolox_grid(input, n).ok_or_else(|| {
                    err(format!(
                        "{n} rows do not match the stride 8/16/32 grids of a {}x{} input",
                        input.0, input.1
                    ))
                })?)
            } else {
                None
            };
            Ok((0..n)
                .filter_map(|i| {
                    let row = &first.data[i * cols..(i + 1) * cols];
                    let obj = row[4];
                    let (c, s) = filter.best(row[5..].iter().map(|p| p * obj))?;
                    let (cx, cy, w, h) = match &grid {
                        Some(g) => {
                            let (gx, gy, stride) = g[i];
                            (
                                (row[0] + gx) * stride,
                                (row[1] + gy) * stride,
                                row[2].exp() * stride,
                                row[3].exp() * stride,
                            )
                        }
                        None => (row[0] * sx, row[1] * sy, row[2] * sx, row[3] * sy),
                    };
                    Some(Candidate::from_center(cx, cy, w, h, s, c))
                })
                .collect())
        }
        OutputFormat::Ssd => decode_ssd(outputs, input, filter).map_err(err),
        OutputFormat::HailoNms => hailo_nms::decode(first, input, filter).map_err(err),
    }
}

fn decode_ssd(
    outputs: &[Tensor<'_>],
    input: (u32, u32),
    filter: Filter,
) -> Result<Vec<Candidate>, String> {
    let [boxes, classes, scores] = outputs else {
        return Err(format!(
            "expected 3 outputs (boxes, classes, scores), got {}",
            outputs.len()
        ));
    };
    let n = scores.data.len();
    if boxes.data.len() != n * 4 || classes.data.len() != n {
        return Err(format!(
            "sizes disagree: boxes {:?}, classes {:?}, scores {:?}",
            boxes.shape, classes.shape, scores.shape
        ));
    }
    let (w, h) = (input.0 as f32, input.1 as f32);
    Ok((0..n)
        .filter_map(|i| {
            let class_id = classes.data[i].round().max(0.0) as u32;
            let s = scores.data[i];
            let wanted = filter.class_id.is_none_or(|c| c == class_id);
            if !wanted || s.is_nan() || s < filter.score_threshold {
                return None;
            }
            let b = &boxes.data[i * 4..i * 4 + 4];
            Some(Candidate {
                x1: b[1] * w,
                y1: b[0] * h,
                x2: b[3] * w,
                y2: b[2] * h,
                score: s,
                class_id,
            })
        })
        .collect())
}

/// `[1, a, b]` (or `[a, b]`) -> `(a, b)`, checking the data length.
fn dims3(t: &Tensor<'_>) -> Option<(usize, usize)> {
    let dims: Vec<usize> = t
        .shape
        .iter()
        .map(|d| usize::try_from(*d).ok())
        .collect::<Option<_>>()?;
    let (a, b) = match dims.as_slice() {
        [1, a, b] | [a, b] => (*a, *b),
        _ => return None,
    };
    (a.checked_mul(b)? == t.data.len()).then_some((a, b))
}

/// Grid cell and stride of each YOLOX output row (strides 8, 16, 32, row-major).
fn yolox_grid(input: (u32, u32), rows: usize) -> Option<Vec<(f32, f32, f32)>> {
    let mut g = Vec::with_capacity(rows);
    for stride in [8u32, 16, 32] {
        let (gw, gh) = (input.0 / stride, input.1 / stride);
        for y in 0..gh {
            for x in 0..gw {
                g.push((x as f32, y as f32, stride as f32));
            }
        }
    }
    (g.len() == rows).then_some(g)
}

/// Greedy per-class non-maximum suppression; highest scores first.
pub fn nms(mut cands: Vec<Candidate>, iou: f32) -> Vec<Candidate> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in cands {
        if kept
            .iter()
            .all(|k| k.class_id != c.class_id || k.iou(&c) <= iou)
        {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests;
