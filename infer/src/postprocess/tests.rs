use super::*;

fn spec(format: OutputFormat) -> OutputSpec {
    OutputSpec {
        format,
        boxes_normalized: false,
        ssd_outputs: None,
    }
}

const ALL: Filter = Filter {
    score_threshold: 0.25,
    class_id: None,
};
const PERSON: Filter = Filter {
    score_threshold: 0.25,
    class_id: Some(0),
};

#[test]
fn yolov8_layout_is_transposed() {
    // Two anchors, two classes: rows cx, cy, w, h, p0, p1.
    let data = [
        100.0, 300.0, // cx
        50.0, 60.0, // cy
        20.0, 40.0, // w
        10.0, 80.0, // h
        0.9, 0.1, // person
        0.05, 0.7, // other
    ];
    let t = Tensor {
        shape: &[1, 6, 2],
        data: &data,
    };
    let c = decode(&spec(OutputFormat::Yolov8), &[t], (640, 640), ALL).expect("decodes");
    assert_eq!(c.len(), 2);
    assert_eq!(
        c[0],
        Candidate {
            x1: 90.0,
            y1: 45.0,
            x2: 110.0,
            y2: 55.0,
            score: 0.9,
            class_id: 0
        }
    );
    assert_eq!((c[1].class_id, c[1].score), (1, 0.7));
    let p = decode(&spec(OutputFormat::Yolov8), &[t], (640, 640), PERSON).expect("decodes");
    assert_eq!(p.len(), 1, "class filter keeps people only");
}

#[test]
fn yolov5_multiplies_objectness() {
    let data = [
        50.0, 50.0, 10.0, 10.0, 0.5, 0.9, 0.1, 50.0, 50.0, 10.0, 10.0, 0.2, 0.9, 0.1,
    ];
    let t = Tensor {
        shape: &[1, 2, 7],
        data: &data,
    };
    let c = decode(&spec(OutputFormat::Yolov5), &[t], (640, 640), ALL).expect("decodes");
    assert_eq!(c.len(), 1, "0.2 * 0.9 is under the threshold");
    assert!((c[0].score - 0.45).abs() < 1e-6);
}

#[test]
fn normalised_boxes_are_scaled_to_the_input() {
    let data = [0.5, 0.5, 0.25, 0.5, 1.0, 1.0];
    let t = Tensor {
        shape: &[1, 1, 6],
        data: &data,
    };
    let s = OutputSpec {
        boxes_normalized: true,
        ..spec(OutputFormat::Yolov5)
    };
    let c = decode(&s, &[t], (640, 320), ALL).expect("decodes");
    assert_eq!(
        (c[0].x1, c[0].y1, c[0].x2, c[0].y2),
        (240.0, 80.0, 400.0, 240.0)
    );
}

#[test]
fn yolox_decodes_with_its_grid() {
    // 64x64 input: 8x8 + 4x4 + 2x2 = 84 rows. Put a box in cell (3, 2) of stride 8.
    let mut data = vec![0.0f32; 84 * 6];
    let row = 2 * 8 + 3;
    data[row * 6..row * 6 + 6].copy_from_slice(&[0.5, 0.5, 0.0, 1.0f32.ln(), 0.8, 1.0]);
    let t = Tensor {
        shape: &[1, 84, 6],
        data: &data,
    };
    let c = decode(&spec(OutputFormat::Yolox), &[t], (64, 64), ALL).expect("decodes");
    assert_eq!(c.len(), 1);
    let b = c[0];
    assert!((b.x1 - 24.0).abs() < 1e-4 && (b.x2 - 32.0).abs() < 1e-4 && (b.y1 - 16.0).abs() < 1e-4);
    let bad = Tensor {
        shape: &[1, 83, 6],
        data: &data[..83 * 6],
    };
    assert!(decode(&spec(OutputFormat::Yolox), &[bad], (64, 64), ALL).is_err());
}

#[test]
fn ssd_reads_three_outputs() {
    let boxes = [0.1, 0.2, 0.5, 0.4, 0.0, 0.0, 1.0, 1.0];
    let classes = [0.0, 1.0];
    let scores = [0.8, 0.9];
    let outs = [
        Tensor {
            shape: &[1, 2, 4],
            data: &boxes,
        },
        Tensor {
            shape: &[1, 2],
            data: &classes,
        },
        Tensor {
            shape: &[1, 2],
            data: &scores,
        },
    ];
    let c = decode(&spec(OutputFormat::Ssd), &outs, (100, 200), PERSON).expect("decodes");
    assert_eq!(
        c,
        vec![Candidate {
            x1: 20.0,
            y1: 20.0,
            x2: 40.0,
            y2: 100.0,
            score: 0.8,
            class_id: 0
        }]
    );
    assert!(decode(&spec(OutputFormat::Ssd), &outs[..2], (100, 200), PERSON).is_err());
}

#[test]
fn wrong_shapes_are_errors_not_panics() {
    let data = [1.0; 10];
    for shape in [&[1, 5, 3][..], &[2, 5], &[1, 1, 1, 10], &[1, -1, 10]] {
        let t = Tensor { shape, data: &data };
        for f in [
            OutputFormat::Yolov8,
            OutputFormat::Yolov5,
            OutputFormat::Yolox,
        ] {
            assert!(
                decode(&spec(f), &[t], (64, 64), ALL).is_err(),
                "{f:?} {shape:?}"
            );
        }
    }
}

#[test]
fn nms_keeps_the_best_of_overlapping_boxes_per_class() {
    let a = Candidate {
        x1: 0.0,
        y1: 0.0,
        x2: 10.0,
        y2: 10.0,
        score: 0.9,
        class_id: 0,
    };
    let b = Candidate {
        x1: 1.0,
        y1: 1.0,
        x2: 11.0,
        y2: 11.0,
        score: 0.8,
        class_id: 0,
    };
    let c = Candidate {
        x1: 1.0,
        y1: 1.0,
        x2: 11.0,
        y2: 11.0,
        score: 0.7,
        class_id: 1,
    };
    let d = Candidate {
        x1: 50.0,
        y1: 50.0,
        x2: 60.0,
        y2: 60.0,
        score: 0.6,
        class_id: 0,
    };
    let kept = nms(vec![b, d, c, a], 0.45);
    assert_eq!(kept, vec![a, c, d]);
}
