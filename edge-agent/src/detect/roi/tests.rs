use proptest::prelude::*;

use super::*;

fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> BoxPx {
    BoxPx { x1, y1, x2, y2 }
}

fn no_periodic() -> RegionsConfig {
    RegionsConfig {
        whole_frame_every_s: 0.0,
        ..RegionsConfig::default()
    }
}

#[test]
fn a_small_motion_gets_a_square_of_the_model_side_around_it() {
    let plan = regions(
        &no_periodic(),
        (1920, 1080),
        320.0,
        [b(1000.0, 500.0, 1040.0, 600.0)],
    );
    let Plan::Regions(r) = plan else {
        panic!("{plan:?}")
    };
    assert_eq!(r, vec![b(860.0, 390.0, 1180.0, 710.0)]);
}

#[test]
fn a_square_at_the_edge_is_moved_inside_not_shrunk() {
    let plan = regions(
        &no_periodic(),
        (1920, 1080),
        320.0,
        [b(0.0, 1000.0, 30.0, 1080.0)],
    );
    assert_eq!(plan, Plan::Regions(vec![b(0.0, 760.0, 320.0, 1080.0)]));
}

#[test]
fn a_big_box_grows_by_its_margin() {
    // 200 px tall, margin 0.25 each side: a 300 px square.
    let plan = regions(
        &no_periodic(),
        (1920, 1080),
        256.0,
        [b(100.0, 100.0, 150.0, 300.0)],
    );
    assert_eq!(plan, Plan::Regions(vec![b(0.0, 50.0, 300.0, 350.0)]));
}

#[test]
fn nearby_motion_merges_into_one_region() {
    let plan = regions(
        &no_periodic(),
        (1920, 1080),
        320.0,
        [b(500.0, 500.0, 520.0, 540.0), b(600.0, 520.0, 620.0, 560.0)],
    );
    let Plan::Regions(r) = plan else {
        panic!("{plan:?}")
    };
    assert_eq!(r.len(), 1);
    assert!(r[0].x1 <= 500.0 && r[0].x2 >= 620.0, "{r:?}");
}

#[test]
fn motion_over_most_of_the_frame_or_a_model_as_big_as_the_frame_runs_whole() {
    let cfg = no_periodic();
    // A 640 input on a 768x432 frame: one region would be 640x432, 83 % of the frame.
    assert_eq!(
        regions(&cfg, (768, 432), 640.0, [b(300.0, 100.0, 340.0, 200.0)]),
        Plan::Whole
    );
    let spread: Vec<BoxPx> = (0..6)
        .map(|i| b(i as f32 * 320.0, 0.0, i as f32 * 320.0 + 10.0, 10.0))
        .collect();
    assert_eq!(regions(&cfg, (1920, 1080), 320.0, spread), Plan::Whole);
    let disabled = RegionsConfig {
        enabled: false,
        ..no_periodic()
    };
    let mut p = Planner::new(disabled);
    assert_eq!(
        p.plan(0, (1920, 1080), 320, [b(0.0, 0.0, 9.0, 9.0)]),
        Plan::Whole
    );
}

#[test]
fn the_whole_frame_is_looked_at_periodically() {
    let mut p = Planner::new(RegionsConfig {
        whole_frame_every_s: 10.0,
        ..RegionsConfig::default()
    });
    let small = || [b(1000.0, 500.0, 1040.0, 600.0)];
    let mut at = |t_s: i64| p.plan(t_s * 1_000_000, (1920, 1080), 320, small());
    assert_eq!(at(0), Plan::Whole, "the first run sees everything");
    assert!(matches!(at(1), Plan::Regions(_)));
    assert!(matches!(at(9), Plan::Regions(_)));
    assert_eq!(at(10), Plan::Whole);
    assert!(matches!(at(11), Plan::Regions(_)));
}

fn case() -> impl Strategy<Value = ((usize, usize), u32, Vec<BoxPx>)> {
    let sides = prop::sample::select(vec![160u32, 256, 320, 416, 640]);
    (64usize..2000, 64usize..1200, sides).prop_flat_map(|(fw, fh, side)| {
        let (w, h) = (fw as f32, fh as f32);
        let one = (0.0..w, 0.0..h, 1.0..w / 2.0, 1.0..h / 2.0)
            .prop_map(move |(x, y, bw, bh)| b(x, y, (x + bw).min(w), (y + bh).min(h)));
        (Just((fw, fh)), Just(side), prop::collection::vec(one, 1..8))
    })
}

proptest! {
    /// Every motion box lies inside one region; regions lie in the frame, do not overlap, and are
    /// at least the model's side (or the frame's) wide and tall.
    #[test]
    fn regions_cover_every_box_inside_the_frame(((fw, fh), side, input) in case()) {
        let (w, h) = (fw as f32, fh as f32);
        let Plan::Regions(regs) = regions(&no_periodic(), (fw, fh), side as f32, input.clone()) else {
            return Ok(());
        };
        let eps = 1e-2;
        for r in &regs {
            prop_assert!(r.x1 >= -eps && r.y1 >= -eps && r.x2 <= w + eps && r.y2 <= h + eps, "{r:?}");
            prop_assert!(r.width() + eps >= (side as f32).min(w), "{r:?}");
            prop_assert!(r.height() + eps >= (side as f32).min(h), "{r:?}");
        }
        for (i, a) in regs.iter().enumerate() {
            for c in &regs[i + 1..] {
                prop_assert!(!overlaps(a, c), "{a:?} {c:?}");
            }
        }
        for m in &input {
            prop_assert!(regs.iter().any(|r| r.x1 <= m.x1 + eps && r.y1 <= m.y1 + eps
                && r.x2 + eps >= m.x2 && r.y2 + eps >= m.y2), "{m:?} not in {regs:?}");
        }
    }
}
