//! Region-of-interest detection: the model runs on parts of an image (each letterboxed on its
//! own, at its native scale when it is no larger than the model's input), and what it finds maps
//! back to the whole image, merged across regions.

use cascade_shared::wire::BoxPx;

use crate::detector::{Detection, Detector, InferError};
use crate::image::{Region, RgbSource};

/// One image and the regions of it to run on; no regions means the whole image.
#[derive(Debug, Clone, Copy)]
pub struct Look<'a, I: RgbSource> {
    pub image: &'a I,
    pub regions: &'a [BoxPx],
}

impl Detector {
    /// Runs the model on every region of every image (one batched run when the model allows),
    /// then per image: boxes in image pixels, duplicates across regions merged, boxes smaller than
    /// `min_box_area` of the *image* dropped. Results are in input order.
    pub fn detect_looks<I: RgbSource>(
        &mut self,
        looks: &[Look<'_, I>],
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        let mut views = Vec::new();
        let mut owner = Vec::new();
        for (i, look) in looks.iter().enumerate() {
            let (w, h) = look.image.size();
            let whole = [BoxPx {
                x1: 0.0,
                y1: 0.0,
                x2: w as f32,
                y2: h as f32,
            }];
            let regions = if look.regions.is_empty() {
                &whole[..]
            } else {
                look.regions
            };
            for r in regions {
                views.push(Region::new(look.image, r));
                owner.push(i);
            }
        }
        let found = self.detect_batch(&views)?;
        let mut per_look: Vec<Vec<(usize, Detection)>> = vec![Vec::new(); looks.len()];
        for (k, ((view, dets), &i)) in views.iter().zip(found).zip(&owner).enumerate() {
            per_look[i].extend(dets.into_iter().map(|d| {
                let bbox = view.to_image(&d.bbox);
                (k, Detection { bbox, ..d })
            }));
        }
        let params = *self.params();
        Ok(per_look
            .into_iter()
            .zip(looks)
            .map(|(dets, look)| merge(dets, look.image.size(), params.nms_iou, params.min_box_area))
            .collect())
    }
}

/// Greedy merge of detections from several regions of one image, each tagged with its region: a
/// box is dropped when a higher-scoring box of its class overlaps it by more than `iou`, or, when
/// the two come from different regions, contains most (80 %) of it (the same person cut by one
/// region's edge and whole in another's; within one region a box inside another is a second
/// person, partly hidden, and stays). Boxes under `min_area` of the image are dropped.
pub fn merge(
    mut dets: Vec<(usize, Detection)>,
    image: (usize, usize),
    iou: f32,
    min_area: f32,
) -> Vec<Detection> {
    let min_px = min_area * image.0 as f32 * image.1 as f32;
    dets.retain(|(_, d)| d.bbox.area() >= min_px);
    dets.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
    let mut kept: Vec<(usize, Detection)> = Vec::with_capacity(dets.len());
    for (region, d) in dets {
        let dup = kept.iter().any(|(r, k)| {
            k.class_id == d.class_id && {
                let inter = k.bbox.intersection(&d.bbox);
                let own = d.bbox.area();
                let union = k.bbox.area() + own - inter;
                inter > iou * union || (*r != region && inter > 0.8 * own)
            }
        });
        if !dup {
            kept.push((region, d));
        }
    }
    kept.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Detection {
        Detection {
            bbox: BoxPx { x1, y1, x2, y2 },
            score,
            class_id: 0,
        }
    }

    #[test]
    fn a_person_cut_by_one_region_and_whole_in_another_is_kept_once() {
        let whole = det(100.0, 50.0, 160.0, 250.0, 0.9);
        let cut = det(100.0, 50.0, 160.0, 120.0, 0.6);
        let other = det(300.0, 50.0, 360.0, 250.0, 0.7);
        let kept = merge(
            vec![(0, cut), (0, other), (1, whole)],
            (640, 480),
            0.45,
            0.0,
        );
        assert_eq!(kept, vec![whole, other]);
    }

    #[test]
    fn a_person_partly_hidden_behind_another_in_one_region_is_kept() {
        let front = det(100.0, 50.0, 200.0, 300.0, 0.9);
        let behind = det(120.0, 60.0, 170.0, 160.0, 0.6);
        let kept = merge(vec![(0, front), (0, behind)], (640, 480), 0.45, 0.0);
        assert_eq!(kept, vec![front, behind]);
    }

    #[test]
    fn small_boxes_are_judged_against_the_whole_image() {
        // 20x20 px is 0.13 % of 640x480: dropped at 0.2 %, kept at 0.1 %.
        let d = det(0.0, 0.0, 20.0, 20.0, 0.9);
        assert!(merge(vec![(0, d)], (640, 480), 0.45, 0.002).is_empty());
        assert_eq!(merge(vec![(0, d)], (640, 480), 0.45, 0.001), vec![d]);
    }

    #[test]
    fn other_classes_do_not_suppress_each_other() {
        let a = det(0.0, 0.0, 50.0, 50.0, 0.9);
        let b = Detection {
            class_id: 1,
            ..det(0.0, 0.0, 50.0, 50.0, 0.8)
        };
        assert_eq!(merge(vec![(0, a), (1, b)], (100, 100), 0.45, 0.0).len(), 2);
    }
}
