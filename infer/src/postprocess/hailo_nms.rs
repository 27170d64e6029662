//! HailoRT's NMS on chip, as a HEF with YOLOv8's NMS post-process gives it to the host
//! (`HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS`, float32; HailoRT 4.20's `hailort.h`): for each of
//! `classes` classes, packed one after the other, a box count `n` (a float), then `n` boxes of five
//! floats `[y_min, x_min, y_max, x_max, score]`, 0-1 of the model input. The backend reports the
//! tensor as `[1, classes, 1 + 5 * max_boxes]` (HailoRT's `hailo_nms_shape_t`); the part after the
//! last class is unused.
//!
//! The buffer comes from a device driver: every count is checked (a whole number, at most
//! `max_boxes`, inside the buffer), so a corrupt buffer is an error, never a panic.

use super::{Candidate, Filter, Tensor};

/// Floats per box: y_min, x_min, y_max, x_max, score.
const BOX: usize = 5;

/// Decodes an NMS-by-class buffer into candidates in model-input pixels.
pub(super) fn decode(
    t: &Tensor<'_>,
    input: (u32, u32),
    filter: Filter,
) -> Result<Vec<Candidate>, String> {
    let (classes, per_class) = super::dims3(t).ok_or_else(|| {
        format!(
            "expected [1, classes, 1 + 5 * max_boxes] holding {} floats, got {:?}",
            t.data.len(),
            t.shape
        )
    })?;
    if per_class == 0 || (per_class - 1) % BOX != 0 {
        return Err(format!(
            "{per_class} floats per class is not a count and whole boxes"
        ));
    }
    let max_boxes = (per_class - 1) / BOX;
    let (w, h) = (input.0 as f32, input.1 as f32);
    let mut out = Vec::new();
    let mut at = 0usize;
    for class in 0..classes {
        let n = count(t.data.get(at).copied(), max_boxes)
            .map_err(|why| format!("class {class}: box count {why}"))?;
        at += 1;
        let end = at
            .checked_add(n * BOX)
            .filter(|end| *end <= t.data.len())
            .ok_or_else(|| format!("class {class}: {n} boxes run past the buffer"))?;
        let class_id = u32::try_from(class).map_err(|_| format!("class {class} out of range"))?;
        if filter.class_id.is_none_or(|c| c == class_id) {
            out.extend(
                t.data[at..end]
                    .chunks_exact(BOX)
                    .filter_map(|b| candidate(b, (w, h), class_id, filter.score_threshold)),
            );
        }
        at = end;
    }
    Ok(out)
}

/// A box count: a whole number from 0 to `max`.
fn count(v: Option<f32>, max: usize) -> Result<usize, String> {
    let v = v.ok_or("missing (the buffer ends)")?;
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= max as f32) {
        return Err(format!("{v} is not a whole number from 0 to {max}"));
    }
    Ok(v as usize)
}

/// One box, normalised `[y_min, x_min, y_max, x_max, score]`, in input pixels when its score passes.
fn candidate(b: &[f32], (w, h): (f32, f32), class_id: u32, threshold: f32) -> Option<Candidate> {
    let &[y1, x1, y2, x2, score] = b else {
        return None;
    };
    (score.is_finite() && score >= threshold && [y1, x1, y2, x2].iter().all(|v| v.is_finite()))
        .then_some(Candidate {
            x1: x1 * w,
            y1: y1 * h,
            x2: x2 * w,
            y2: y2 * h,
            score,
            class_id,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Three classes, at most two boxes each: a person and a weak person, no cars, one dog.
    fn recorded() -> Vec<f32> {
        let mut d = vec![
            2.0, // person: 2 boxes
            0.25, 0.5, 0.75, 0.625, 0.9, // y_min, x_min, y_max, x_max, score
            0.0, 0.0, 0.5, 0.5, 0.1, //
            0.0, // car: none
            1.0, // dog: 1 box
            0.5, 0.5, 1.0, 1.0, 0.8,
        ];
        d.resize(3 * (1 + 2 * BOX), 0.0);
        d
    }

    fn decode_all(
        data: &[f32],
        shape: &[i64],
        class_id: Option<u32>,
    ) -> Result<Vec<Candidate>, String> {
        let t = Tensor { shape, data };
        let filter = Filter {
            score_threshold: 0.25,
            class_id,
        };
        decode(&t, (640, 480), filter)
    }

    #[test]
    fn boxes_are_read_per_class_in_input_pixels() {
        let d = recorded();
        let people = decode_all(&d, &[1, 3, 11], Some(0)).expect("decodes");
        assert_eq!(
            people,
            vec![Candidate {
                x1: 320.0,
                y1: 120.0,
                x2: 400.0,
                y2: 360.0,
                score: 0.9,
                class_id: 0
            }],
            "the weak person is below the threshold"
        );
        let all = decode_all(&d, &[1, 3, 11], None).expect("decodes");
        assert_eq!(all.len(), 2);
        assert_eq!((all[1].class_id, all[1].x1, all[1].y2), (2, 320.0, 480.0));
        assert!(
            decode_all(&d, &[1, 3, 11], Some(1))
                .expect("decodes")
                .is_empty()
        );
    }

    #[test]
    fn a_corrupt_buffer_is_an_error_naming_what_is_wrong() {
        let bad = |i: usize, v: f32| {
            let mut d = recorded();
            d[i] = v;
            decode_all(&d, &[1, 3, 11], None).expect_err("corrupt")
        };
        assert!(bad(0, 3.0).contains("class 0: box count 3 is not a whole number from 0 to 2"));
        assert!(bad(0, -1.0).contains("class 0: box count -1"));
        assert!(bad(0, 1.5).contains("1.5"));
        assert!(bad(11, f32::NAN).contains("class 1: box count NaN"));
        // The shape disagrees with the data, or holds no whole boxes.
        let d = recorded();
        assert!(decode_all(&d, &[1, 3, 12], None).is_err());
        assert!(
            decode_all(&d[..30], &[1, 3, 10], None)
                .expect_err("9 floats")
                .contains("whole boxes")
        );
        assert!(decode_all(&[], &[1, 0, 0], None).is_err());
    }

    #[test]
    fn a_full_buffer_decodes_every_box() {
        // Two classes of at most two boxes, both full: the whole buffer is counts and boxes.
        let one = [2.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 0.5];
        let d = [one, one].concat();
        let all = decode_all(&d, &[1, 2, 11], None).expect("full");
        assert_eq!(
            all.iter().map(|c| c.class_id).collect::<Vec<_>>(),
            [0, 0, 1, 1]
        );
        assert_eq!(
            (all[3].x1, all[3].y1, all[3].x2, all[3].y2),
            (320.0, 240.0, 640.0, 480.0)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            classes in 0i64..6,
            per in -1i64..24,
            person in proptest::option::of(0u32..6),
        ) {
            let data: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let _ = decode_all(&data, &[1, classes, per], person);
            let n = data.len() as i64;
            let _ = decode_all(&data, &[1, 1, n], person);
        }

        #[test]
        fn small_counts_always_decode_inside_the_input(
            counts in proptest::collection::vec(0u8..3, 1..5),
            v in 0.0f32..1.0,
        ) {
            let mut data = Vec::new();
            for c in &counts {
                data.push(f32::from(*c));
                data.extend(std::iter::repeat_n(v, usize::from(*c) * BOX));
            }
            let classes = counts.len();
            data.resize(classes * (1 + 2 * BOX), 0.0);
            let shape = [1, classes as i64, 1 + 2 * BOX as i64];
            let all = decode_all(&data, &shape, None).expect("valid");
            let boxes: usize = counts.iter().map(|c| usize::from(*c)).sum();
            prop_assert_eq!(all.len(), if v >= 0.25 { boxes } else { 0 });
            for c in all {
                prop_assert!(c.x2 <= 640.0 && c.y2 <= 480.0);
            }
        }
    }
}
