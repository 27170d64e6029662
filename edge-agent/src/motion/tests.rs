use super::*;

struct Noise(u32);

impl Noise {
    /// Roughly Gaussian sensor noise in -range..=range (sum of three uniforms).
    fn next(&mut self, range: i32) -> i32 {
        let mut sum = 0;
        for _ in 0..3 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            sum += (self.0 % (2 * range as u32 + 1)) as i32 - range;
        }
        sum / 3
    }
}

/// A 640x360 grey room with noise, and optionally a bright 40x100 block at (bx, 120).
fn scene(noise: &mut Noise, base: i32, block_x: Option<usize>) -> Frame {
    let (w, h) = (640, 360);
    let mut f = Frame::filled(w, h, 0);
    for y in 0..h {
        for x in 0..w {
            let inside =
                block_x.is_some_and(|bx| (bx..bx + 40).contains(&x) && (120..220).contains(&y));
            let v = if inside { 220 } else { base } + noise.next(12);
            f.y[y * w + x] = v.clamp(0, 255) as u8;
        }
    }
    f
}

fn detector() -> BackgroundMotion {
    BackgroundMotion::new(MotionConfig::default())
}

#[test]
fn static_noisy_scene_has_no_motion() {
    let (mut m, mut n) = (detector(), Noise(7));
    for i in 0..60 {
        let r = m.detect(&scene(&mut n, 80, None));
        assert!(r.boxes.is_empty(), "frame {i}: {:?}", r.boxes);
    }
}

#[test]
fn moving_block_is_boxed() {
    let (mut m, mut n) = (detector(), Noise(9));
    for _ in 0..10 {
        m.detect(&scene(&mut n, 80, None));
    }
    for step in 0..10 {
        let bx = 100 + step * 20;
        let r = m.detect(&scene(&mut n, 80, Some(bx)));
        assert_eq!(r.boxes.len(), 1, "step {step}: {:?}", r.boxes);
        let b = r.boxes[0];
        // The box covers the block, give or take the downscale and the dilation.
        assert!(
            b.x1 <= bx as f32 + 2.0 && b.x2 >= (bx + 38) as f32,
            "{b:?} vs x {bx}"
        );
        assert!(b.y1 <= 122.0 && b.y2 >= 218.0, "{b:?}");
        assert!(b.width() < 120.0 && b.height() < 140.0, "too loose: {b:?}");
    }
}

#[test]
fn global_brightness_change_recalibrates_instead_of_firing() {
    let (mut m, mut n) = (detector(), Noise(3));
    for _ in 0..10 {
        m.detect(&scene(&mut n, 60, None));
    }
    let r = m.detect(&scene(&mut n, 160, None));
    assert!(r.recalibrated && r.boxes.is_empty(), "{r:?}");
    for _ in 0..20 {
        assert!(m.detect(&scene(&mut n, 160, None)).boxes.is_empty());
    }
}

#[test]
fn masked_region_is_ignored() {
    let cfg = MotionConfig {
        masks: vec![vec![[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]],
        ..MotionConfig::default()
    };
    let (mut m, mut n) = (BackgroundMotion::new(cfg), Noise(5));
    for _ in 0..10 {
        m.detect(&scene(&mut n, 80, None));
    }
    assert!(
        m.detect(&scene(&mut n, 80, Some(100))).boxes.is_empty(),
        "left half is masked"
    );
    assert_eq!(
        m.detect(&scene(&mut n, 80, Some(500))).boxes.len(),
        1,
        "right half is not"
    );
}

#[test]
fn polygon_test_uses_even_odd_rule() {
    let tri = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]];
    assert!(point_in_polygon(0.2, 0.2, &tri));
    assert!(!point_in_polygon(0.8, 0.8, &tri));
}
