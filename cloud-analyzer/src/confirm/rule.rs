//! The confirm rule: the cloud's people, mapped from the crop's pixels back to the camera's frame
//! through the crop's region, are matched to the edge's box by IoU; a match at `min_score`
//! confirms, and a strong match (IoU at least `strong_match_iou`) already at `strong_min_score`.

use cascade_infer::Detection;
use cascade_shared::config::cloud::ConfirmConfig;
use cascade_shared::wire::BoxPx;

use crate::store::Verdict;

/// Where a crop's picture sits in its camera's frame (both in frame pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Place {
    /// The edge's detection.
    pub edge_box: BoxPx,
    /// The part of the frame the JPEG shows.
    pub region: BoxPx,
}

impl Place {
    /// From the stored `[x1, y1, x2, y2]` arrays of a pending crop.
    pub fn from_arrays(edge_box: [f32; 4], region: [f32; 4]) -> Self {
        let b = |[x1, y1, x2, y2]: [f32; 4]| BoxPx { x1, y1, x2, y2 };
        Self {
            edge_box: b(edge_box),
            region: b(region),
        }
    }

    /// A box in the pixels of a `image`-sized picture of the region -> frame pixels (the JPEG
    /// may be the region scaled down). `None` when the picture or the region is empty.
    pub fn to_frame(&self, b: &BoxPx, image: (usize, usize)) -> Option<BoxPx> {
        let (iw, ih) = (image.0 as f32, image.1 as f32);
        let r = &self.region;
        if iw < 1.0 || ih < 1.0 || !(r.width() > 0.0 && r.height() > 0.0) {
            return None;
        }
        let (sx, sy) = (r.width() / iw, r.height() / ih);
        Some(BoxPx {
            x1: r.x1 + b.x1 * sx,
            y1: r.y1 + b.y1 * sy,
            x2: r.x1 + b.x2 * sx,
            y2: r.y1 + b.y2 * sy,
        })
    }

    /// How well `b` (crop pixels of an `image`-sized picture) overlaps the edge's box in the
    /// frame; 0 when it cannot be placed.
    pub fn iou(&self, b: &BoxPx, image: (usize, usize)) -> f32 {
        self.to_frame(b, image)
            .map_or(0.0, |f| f.iou(&self.edge_box))
    }
}

/// The confirm rule (see the module's description and [`ConfirmConfig`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub class_id: u32,
    pub min_score: f32,
    pub min_box_area: f32,
    pub match_iou: f32,
    pub strong_match_iou: f32,
    pub strong_min_score: f32,
}

impl Rule {
    pub fn new(cfg: &ConfirmConfig, class_id: u32) -> Self {
        Self {
            class_id,
            min_score: cfg.min_score,
            min_box_area: cfg.min_box_area,
            match_iou: cfg.match_iou,
            strong_match_iou: cfg.strong_match_iou,
            strong_min_score: cfg.strong_min_score,
        }
    }

    /// Judges the detections of one crop (boxes in the pixels of its `image`-sized picture):
    /// the cloud score is the best person that matches the edge's box; the crop is confirmed when
    /// a match reaches `min_score`, or `strong_min_score` with a strong overlap.
    pub fn judge(&self, dets: &[Detection], image: (usize, usize), place: &Place) -> Verdict {
        let min_area = self.min_box_area * (image.0 * image.1) as f32;
        let matched = dets
            .iter()
            .filter(|d| d.class_id == self.class_id && d.bbox.area() >= min_area)
            .map(|d| (d.score, place.iou(&d.bbox, image)))
            .filter(|&(_, iou)| iou >= self.match_iou);
        let (mut best, mut confirmed) = (0.0f32, false);
        for (score, iou) in matched {
            best = best.max(score);
            let floor = if iou >= self.strong_match_iou {
                self.strong_min_score
            } else {
                self.min_score
            };
            confirmed |= score >= floor && score > 0.0;
        }
        Verdict {
            cloud_score: best,
            confirmed,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bx(x1: f32, y1: f32, x2: f32, y2: f32) -> BoxPx {
        BoxPx { x1, y1, x2, y2 }
    }

    fn det(class_id: u32, score: f32, bbox: BoxPx) -> Detection {
        Detection {
            bbox,
            score,
            class_id,
        }
    }

    fn rule() -> Rule {
        Rule::new(&ConfirmConfig::default(), 0)
    }

    /// A 200x100 JPEG of the frame's region 400..800 x 100..300 (scaled down by 2), the edge's box
    /// 500..560 x 150..290 in the frame: 50..80 x 25..95 in the JPEG.
    fn place() -> Place {
        Place {
            edge_box: bx(500.0, 150.0, 560.0, 290.0),
            region: bx(400.0, 100.0, 800.0, 300.0),
        }
    }

    const JPEG: (usize, usize) = (200, 100);

    #[test]
    fn crop_boxes_map_back_to_the_frame_through_the_region_and_the_jpeg_scale() {
        let p = place();
        let f = p
            .to_frame(&bx(50.0, 25.0, 80.0, 95.0), JPEG)
            .expect("placed");
        assert_eq!(f, p.edge_box);
        assert!((p.iou(&bx(50.0, 25.0, 80.0, 95.0), JPEG) - 1.0).abs() < 1e-6);
        let native = Place {
            region: bx(10.0, 20.0, 210.0, 120.0),
            ..p
        };
        let f = native
            .to_frame(&bx(0.0, 0.0, 5.0, 5.0), JPEG)
            .expect("placed");
        assert_eq!(
            f,
            bx(10.0, 20.0, 15.0, 25.0),
            "a JPEG at the region's own scale"
        );
        let empty = Place {
            region: bx(5.0, 5.0, 5.0, 9.0),
            ..p
        };
        assert_eq!(empty.to_frame(&bx(0.0, 0.0, 1.0, 1.0), JPEG), None);
        assert_eq!(p.to_frame(&bx(0.0, 0.0, 1.0, 1.0), (0, 10)), None);
        assert_eq!(empty.iou(&bx(0.0, 0.0, 1.0, 1.0), JPEG), 0.0);
    }

    #[test]
    fn only_a_person_on_the_edge_box_confirms() {
        let r = rule();
        let on_box = bx(50.0, 25.0, 80.0, 95.0);
        let elsewhere = bx(130.0, 10.0, 170.0, 95.0);
        assert!(r.judge(&[det(0, 0.8, on_box)], JPEG, &place()).confirmed);
        let v = r.judge(&[det(0, 0.9, elsewhere)], JPEG, &place());
        assert!(!v.confirmed, "a person elsewhere in the crop");
        assert_eq!(v.cloud_score, 0.0);
        assert!(
            !r.judge(&[det(1, 0.9, on_box)], JPEG, &place()).confirmed,
            "wrong class"
        );
        assert!(!r.judge(&[], JPEG, &place()).confirmed);
        let small = Rule {
            min_box_area: 0.2,
            ..r
        };
        assert!(
            !small
                .judge(&[det(0, 0.9, on_box)], JPEG, &place())
                .confirmed,
            "box too small"
        );
    }

    #[test]
    fn a_strong_match_confirms_at_the_lower_score() {
        let r = Rule {
            min_box_area: 0.0,
            ..rule()
        };
        let exact = bx(50.0, 25.0, 80.0, 95.0);
        // IoU 0.4: the left 40 % of the edge's box.
        let loose = bx(50.0, 25.0, 62.0, 95.0);
        let iou = place().iou(&loose, JPEG);
        assert!(iou >= r.match_iou && iou < r.strong_match_iou, "{iou}");
        let v = r.judge(&[det(0, 0.3, exact)], JPEG, &place());
        assert!(v.confirmed && (v.cloud_score - 0.3).abs() < 1e-6);
        assert!(
            !r.judge(&[det(0, 0.3, loose)], JPEG, &place()).confirmed,
            "loose needs 0.5"
        );
        assert!(r.judge(&[det(0, 0.55, loose)], JPEG, &place()).confirmed);
        assert!(
            !r.judge(&[det(0, 0.2, exact)], JPEG, &place()).confirmed,
            "under the floor"
        );
    }

    #[test]
    fn match_iou_zero_is_the_rule_before_matching() {
        let r = Rule::new(&ConfirmConfig::default().any_person(), 0);
        let elsewhere = bx(130.0, 10.0, 170.0, 95.0);
        let v = r.judge(&[det(0, 0.9, elsewhere)], JPEG, &place());
        assert!(v.confirmed, "any person in the crop");
        assert!(!r.judge(&[det(0, 0.4, elsewhere)], JPEG, &place()).confirmed);
    }

    proptest! {
        /// Mapping a frame box into any JPEG of a region (any scale) and back gives the box.
        #[test]
        fn mapping_into_the_jpeg_and_back_is_the_identity(
            (rx, ry, rw, rh) in (0.0f32..2000.0, 0.0f32..2000.0, 1.0f32..2000.0, 1.0f32..2000.0),
            (iw, ih) in (1usize..2000, 1usize..2000),
            (a, b, c, d) in (0.0f32..1.0, 0.0f32..1.0, 0.0f32..1.0, 0.0f32..1.0),
        ) {
            let p = Place { edge_box: bx(0.0, 0.0, 1.0, 1.0), region: bx(rx, ry, rx + rw, ry + rh) };
            let frame = bx(rx + a * rw, ry + b * rh, rx + (a + c * (1.0 - a)) * rw, ry + (b + d * (1.0 - b)) * rh);
            let (sx, sy) = (iw as f32 / rw, ih as f32 / rh);
            let in_jpeg = bx((frame.x1 - rx) * sx, (frame.y1 - ry) * sy, (frame.x2 - rx) * sx, (frame.y2 - ry) * sy);
            let back = p.to_frame(&in_jpeg, (iw, ih)).expect("placed");
            for (u, v) in [(back.x1, frame.x1), (back.y1, frame.y1), (back.x2, frame.x2), (back.y2, frame.y2)] {
                prop_assert!((u - v).abs() <= 1e-3 * (1.0 + v.abs()), "{back:?} vs {frame:?}");
            }
        }

        /// Raising a matched person's score never turns a confirmation into a rejection.
        #[test]
        fn confirming_is_monotonic_in_the_score(s in 0.0f32..1.0, t in 0.0f32..1.0, w in 1.0f32..60.0) {
            let (lo, hi) = (s.min(t), s.max(t));
            let b = bx(50.0, 25.0, 50.0 + w, 95.0);
            let r = rule();
            prop_assert!(!r.judge(&[det(0, lo, b)], JPEG, &place()).confirmed
                || r.judge(&[det(0, hi, b)], JPEG, &place()).confirmed);
        }
    }
}
