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

#[test]
fn bits_are_packed_in_order() {
    let mut n = Noise(11);
    for _ in 0..50 {
        let bytes: [u8; 64] = std::array::from_fn(|_| u8::from(n.next(100) > 0));
        let want = (0..64).fold(0u64, |w, i| w | u64::from(bytes[i]) << i);
        assert_eq!(grid::pack_bits(&bytes), want, "{bytes:?}");
    }
}

/// Each cell against its definition: the rounded mean of four pixels of its block, on the middle
/// row for cells of 4x4 and more (at the block's eighths 1, 3, 5, 7), else on a 2x2 lattice at a
/// quarter and three quarters.
#[test]
fn cells_are_the_mean_of_their_samples() {
    let mut n = Noise(17);
    for (w, h) in [
        (640, 361),
        (1280, 720),
        (1925, 1083),
        (2560, 1440),
        (3840, 2160),
    ] {
        let mut f = Frame::filled(w, h, 0);
        f.y.iter_mut().for_each(|p| *p = (128 + n.next(127)) as u8);
        let g = grid::Geometry::new(w, h, 320);
        let mut grid = grid::Grid::new(g, &MotionConfig::default());
        grid.sample(&f.y);
        let k = g.factor;
        let (rows, cols) = if k >= 4 {
            (vec![k / 2; 4], [1, 3, 5, 7].map(|e| e * k / 8).to_vec())
        } else {
            (
                vec![k / 4, k / 4, 3 * k / 4, 3 * k / 4],
                vec![k / 4, 3 * k / 4, k / 4, 3 * k / 4],
            )
        };
        for (i, &got) in grid.cells().iter().enumerate() {
            let (x, y) = (i % g.w * k, i / g.w * k);
            let sum: u32 = rows
                .iter()
                .zip(&cols)
                .map(|(r, c)| u32::from(f.y[(y + r) * w + x + c]))
                .sum();
            assert_eq!(
                u32::from(got),
                (sum + 2) / 4,
                "{w}x{h}, factor {k}, cell {i}"
            );
        }
    }
}

/// The reference: dilation and 8-connected flood fill cell by cell, as (x1, y1, x2, y2, cells),
/// in the order of each component's first cell.
fn reference_blobs(cells: &[bool], w: usize, h: usize) -> Vec<(usize, usize, usize, usize, usize)> {
    let near = |i: usize| {
        let (x, y) = (i % w, i / w);
        let ys = y.saturating_sub(1)..=(y + 1).min(h - 1);
        ys.flat_map(move |ny| (x.saturating_sub(1)..=(x + 1).min(w - 1)).map(move |nx| ny * w + nx))
    };
    let mut left: Vec<bool> = (0..w * h).map(|i| near(i).any(|j| cells[j])).collect();
    let mut out = Vec::new();
    for start in 0..w * h {
        if !left[start] {
            continue;
        }
        left[start] = false;
        let (mut stack, mut b) = (vec![start], (w, h, 0, 0, 0));
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y), b.4 + 1);
            for j in near(i) {
                if left[j] {
                    left[j] = false;
                    stack.push(j);
                }
            }
        }
        out.push(b);
    }
    out
}

#[test]
fn blobs_match_a_cell_by_cell_flood_fill() {
    let mut n = Noise(21);
    let mut blobs = blobs::Blobs::default();
    // Widths around word boundaries; sparse to dense masks.
    for (w, h, density) in [
        (130, 40, 90),
        (64, 30, 60),
        (320, 20, 95),
        (70, 50, 80),
        (5, 5, 50),
    ] {
        let g = grid::Geometry::new(w, h, w as u32);
        let cells: Vec<bool> = (0..w * h).map(|_| n.next(100) > density - 50).collect();
        let mut mask = vec![0u64; g.words * h];
        for (i, _) in cells.iter().enumerate().filter(|(_, c)| **c) {
            mask[i / w * g.words + i % w / 64] |= 1 << (i % w % 64);
        }
        let got: Vec<_> = blobs
            .find(&mask, g)
            .map(|b| (b.x1, b.y1, b.x2, b.y2, b.cells))
            .collect();
        assert_eq!(
            got,
            reference_blobs(&cells, w, h),
            "{w}x{h}, density {density}"
        );
    }
}

#[test]
fn moving_block_is_boxed_at_1080p() {
    // Cells of 6x6 pixels, four sampled: the block still comes out, and noise does not.
    let mut n = Noise(13);
    let mut m = detector();
    let frame = |n: &mut Noise, bx: Option<usize>| {
        let mut f = Frame::filled(1920, 1080, 0);
        for (i, p) in f.y.iter_mut().enumerate() {
            let (x, y) = (i % 1920, i / 1920);
            let inside =
                bx.is_some_and(|bx| (bx..bx + 120).contains(&x) && (360..660).contains(&y));
            *p = (if inside { 200 } else { 90 } + n.next(10)) as u8;
        }
        f
    };
    for _ in 0..10 {
        assert!(m.detect(&frame(&mut n, None)).boxes.is_empty());
    }
    let r = m.detect(&frame(&mut n, Some(900)));
    assert_eq!(r.boxes.len(), 1, "{:?}", r.boxes);
    let b = r.boxes[0];
    assert!(
        b.x1 <= 906.0 && b.x2 >= 1014.0 && b.y1 <= 366.0 && b.y2 >= 654.0,
        "{b:?}"
    );
    assert!(b.width() < 160.0 && b.height() < 340.0, "too loose: {b:?}");
}
