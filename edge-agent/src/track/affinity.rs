//! How well a detection continues a track: overlap with the track's last box or with where its
//! motion puts it now, and, for a person who moved further than their own width between two
//! detector runs (a slow detector, a fast walker), nearness to that predicted place. IoU alone
//! splits such a person into several tracks, and each track is an alert in the cloud.

use cascade_shared::wire::BoxPx;

/// Centre distance, as a share of the track box's larger side, within which a detection of a
/// similar size still continues the track when the boxes do not overlap enough.
const NEAR: f32 = 0.5;
/// Sizes (areas) of the detection and the track box within this ratio count as similar.
const SIZE_RATIO: f32 = 2.0;

/// A track's last box and its motion (pixels per second of the box centre).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Motion {
    pub last: BoxPx,
    pub velocity: (f32, f32),
}

impl Motion {
    /// The last box moved by the velocity over `dt_s` seconds.
    pub fn predicted(&self, dt_s: f32) -> BoxPx {
        let (dx, dy) = (self.velocity.0 * dt_s, self.velocity.1 * dt_s);
        BoxPx {
            x1: self.last.x1 + dx,
            y1: self.last.y1 + dy,
            x2: self.last.x2 + dx,
            y2: self.last.y2 + dy,
        }
    }

    /// The velocity after the box moved to `now` in `dt_s` seconds (smoothed with the previous).
    pub fn updated_velocity(&self, now: &BoxPx, dt_s: f32, first: bool) -> (f32, f32) {
        if dt_s <= 0.0 {
            return self.velocity;
        }
        let (a, b) = (centre(&self.last), centre(now));
        let v = ((b.0 - a.0) / dt_s, (b.1 - a.1) / dt_s);
        if first {
            v
        } else {
            (0.5 * (v.0 + self.velocity.0), 0.5 * (v.1 + self.velocity.1))
        }
    }
}

fn centre(b: &BoxPx) -> (f32, f32) {
    (0.5 * (b.x1 + b.x2), 0.5 * (b.y1 + b.y2))
}

/// The affinity of `det` for a track with motion `m`, `dt_s` after its last box: the better IoU
/// with the last or predicted box when at least `iou_match`; else, for a detection of similar
/// size near the predicted place, a value below `iou_match` (so overlaps are matched first);
/// else `None`.
pub fn affinity(det: &BoxPx, m: &Motion, dt_s: f32, iou_match: f32) -> Option<f32> {
    let predicted = m.predicted(dt_s);
    let iou = det.iou(&m.last).max(det.iou(&predicted));
    if iou >= iou_match {
        return Some(iou);
    }
    let (a, b) = (det.area(), m.last.area());
    if a <= 0.0 || b <= 0.0 || a.max(b) > SIZE_RATIO * a.min(b) {
        return None;
    }
    let (p, q) = (centre(det), centre(&predicted));
    let side = m.last.width().max(m.last.height());
    let d = ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt() / side;
    (d < NEAR).then(|| iou_match * 0.5 * (1.0 - d / NEAR))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, w: f32) -> BoxPx {
        BoxPx {
            x1: x,
            y1: 70.0,
            x2: x + w,
            y2: 166.0,
        }
    }

    #[test]
    fn overlap_wins_and_motion_predicts() {
        let still = Motion {
            last: b(100.0, 36.0),
            velocity: (0.0, 0.0),
        };
        assert!(affinity(&b(102.0, 36.0), &still, 0.2, 0.3).is_some_and(|a| a > 0.8));
        let walking = Motion {
            last: b(100.0, 36.0),
            velocity: (60.0, 0.0),
        };
        // One second later the walker is 60 px on: no overlap with the last box, but exactly
        // where the motion puts them.
        assert!(affinity(&b(160.0, 36.0), &walking, 1.0, 0.3).is_some_and(|a| a > 0.99));
    }

    #[test]
    fn a_near_detection_of_similar_size_continues_below_any_overlap() {
        let new_track = Motion {
            last: b(100.0, 36.0),
            velocity: (0.0, 0.0),
        };
        // 30 px on (a slow detector): IoU 0.09, centre 0.31 of the box's height away.
        let a = affinity(&b(130.0, 36.0), &new_track, 0.5, 0.3).expect("continues");
        assert!(a > 0.0 && a < 0.3, "{a}");
        assert_eq!(
            affinity(&b(250.0, 36.0), &new_track, 0.5, 0.3),
            None,
            "too far: another person"
        );
        assert_eq!(
            affinity(&b(120.0, 90.0), &new_track, 0.5, 0.3),
            None,
            "a much larger box: something else"
        );
    }

    #[test]
    fn velocity_is_smoothed() {
        let m = Motion {
            last: b(100.0, 36.0),
            velocity: (0.0, 0.0),
        };
        assert_eq!(m.updated_velocity(&b(130.0, 36.0), 0.5, true), (60.0, 0.0));
        assert_eq!(m.updated_velocity(&b(130.0, 36.0), 0.5, false), (30.0, 0.0));
        assert_eq!(m.updated_velocity(&b(130.0, 36.0), 0.0, false), (0.0, 0.0));
    }
}
