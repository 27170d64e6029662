//! Synthetic changes to decoded I420 frames for the evaluation set: windows (a narrower camera
//! whose frame edge cuts a person), occluders (a wall, a table, a door), and motion with no
//! person (shadows, light, a car, a pet, a moved object).

use cascade_infer::Frame;
use cascade_shared::wire::BoxPx;

/// `b` in whole even pixels (chroma is subsampled 2x2), clipped to a `w` x `h` frame.
pub fn even(b: &BoxPx, (w, h): (usize, usize)) -> (usize, usize, usize, usize) {
    let e = |v: f32, max: usize| ((v.max(0.0) as usize) & !1).min(max & !1);
    (e(b.x1, w), e(b.y1, h), e(b.x2 + 1.0, w), e(b.y2 + 1.0, h))
}

/// The part `b` of `f` as a frame of its own (a camera that sees only that much).
pub fn window(f: &Frame, b: &BoxPx) -> Frame {
    let (x0, y0, x1, y1) = even(b, (f.width, f.height));
    let (w, h) = (x1 - x0, y1 - y0);
    let mut out = Frame::filled(w, h, 0);
    for y in 0..h {
        out.y[y * w..][..w].copy_from_slice(&f.y[(y0 + y) * f.width + x0..][..w]);
    }
    let (cw, fcw) = (w / 2, f.width.div_ceil(2));
    for y in 0..h / 2 {
        let src = (y0 / 2 + y) * fcw + x0 / 2;
        out.u[y * cw..][..cw].copy_from_slice(&f.u[src..][..cw]);
        out.v[y * cw..][..cw].copy_from_slice(&f.v[src..][..cw]);
    }
    out.pts_us = f.pts_us;
    out
}

/// Sets the pixel (x, y) and its chroma sample.
fn put(f: &mut Frame, x: usize, y: usize, yuv: [u8; 3]) {
    let cw = f.width.div_ceil(2);
    f.y[y * f.width + x] = yuv[0];
    f.u[(y / 2) * cw + x / 2] = yuv[1];
    f.v[(y / 2) * cw + x / 2] = yuv[2];
}

/// A small deterministic hash noise in -n..=n.
fn noise(x: usize, y: usize, n: i32) -> i32 {
    let mut h = (x as u32).wrapping_mul(0x9E37_79B1) ^ (y as u32).wrapping_mul(0x85EB_CA77);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    (h % (2 * n as u32 + 1)) as i32 - n
}

fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// An occluder over `b`: a painted wall or furniture, `yuv` with a soft vertical shading, mild
/// grain and a darker outline, so it reads as an object rather than a hole.
pub fn occlude(f: &mut Frame, b: &BoxPx, yuv: [u8; 3]) {
    let (x0, y0, x1, y1) = even(b, (f.width, f.height));
    for y in y0..y1 {
        let shade = (y - y0) as i32 * 24 / (y1 - y0).max(1) as i32 - 12;
        for x in x0..x1 {
            let edge = x < x0 + 3 || x + 3 >= x1 || y < y0 + 3 || y + 3 >= y1;
            let l = i32::from(yuv[0]) + shade + noise(x, y, 4) - if edge { 40 } else { 0 };
            put(f, x, y, [clamp(l), yuv[1], yuv[2]]);
        }
    }
}

/// Inside-ness of (x, y) in the ellipse inscribed in `b`, 1 at its centre, 0 at its rim and beyond.
fn ellipse(b: &BoxPx, x: usize, y: usize) -> f32 {
    let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    let (rx, ry) = (b.width() / 2.0, b.height() / 2.0);
    let d = ((x as f32 - cx) / rx).powi(2) + ((y as f32 - cy) / ry).powi(2);
    (1.0 - d).max(0.0).sqrt()
}

/// Luma in the ellipse of `b` scaled by `gain` and shifted by `offset` (a soft-edged shadow when
/// `gain` < 1, a light when `offset` > 0); chroma stays (lighting changes brightness only).
pub fn shade(f: &mut Frame, b: &BoxPx, gain: f32, offset: f32) {
    let (x0, y0, x1, y1) = even(b, (f.width, f.height));
    for y in y0..y1 {
        for x in x0..x1 {
            let k = ellipse(b, x, y).min(0.5) * 2.0;
            let i = y * f.width + x;
            let v = f32::from(f.y[i]);
            let lit = v * gain + offset;
            f.y[i] = clamp((v + (lit - v) * k).round() as i32);
        }
    }
}

/// A car seen from the side over `b`: a coloured body, a darker cabin with windows, two wheels.
pub fn car(f: &mut Frame, b: &BoxPx, body: [u8; 3]) {
    let (w, h) = (b.width(), b.height());
    let part = |x1: f32, y1: f32, x2: f32, y2: f32| BoxPx {
        x1: b.x1 + x1 * w,
        y1: b.y1 + y1 * h,
        x2: b.x1 + x2 * w,
        y2: b.y1 + y2 * h,
    };
    occlude(f, &part(0.0, 0.4, 1.0, 0.85), body);
    occlude(
        f,
        &part(0.2, 0.0, 0.75, 0.42),
        [clamp(i32::from(body[0]) - 30), body[1], body[2]],
    );
    occlude(f, &part(0.26, 0.08, 0.46, 0.36), [70, 135, 120]);
    occlude(f, &part(0.5, 0.08, 0.7, 0.36), [70, 135, 120]);
    for cx in [0.2, 0.78] {
        let wheel = part(cx - 0.1, 0.68, cx + 0.1, 1.0);
        disc(f, &wheel, [30, 128, 128]);
    }
}

/// A filled ellipse over `b`.
pub fn disc(f: &mut Frame, b: &BoxPx, yuv: [u8; 3]) {
    let (x0, y0, x1, y1) = even(b, (f.width, f.height));
    for y in y0..y1 {
        for x in x0..x1 {
            if ellipse(b, x, y) > 0.0 {
                let l = i32::from(yuv[0]) + noise(x, y, 6);
                put(f, x, y, [clamp(l), yuv[1], yuv[2]]);
            }
        }
    }
}

/// A cat or small dog over `b` (wider than high): a body, a head, a tail.
pub fn pet(f: &mut Frame, b: &BoxPx, fur: [u8; 3]) {
    let (w, h) = (b.width(), b.height());
    let part = |x1: f32, y1: f32, x2: f32, y2: f32| BoxPx {
        x1: b.x1 + x1 * w,
        y1: b.y1 + y1 * h,
        x2: b.x1 + x2 * w,
        y2: b.y1 + y2 * h,
    };
    disc(f, &part(0.15, 0.3, 0.85, 0.85), fur);
    disc(f, &part(0.7, 0.0, 1.0, 0.45), fur);
    disc(f, &part(0.0, 0.35, 0.25, 0.5), fur);
    for lx in [0.25, 0.4, 0.6, 0.72] {
        occlude(f, &part(lx, 0.7, lx + 0.06, 1.0), fur);
    }
}

/// The picture inside `from` copied to `to` (its top-left corner): an object moved in the room.
pub fn moved(f: &mut Frame, from: &BoxPx, to: (f32, f32)) {
    let src = window(f, from);
    let (x0, y0) = ((to.0.max(0.0) as usize) & !1, (to.1.max(0.0) as usize) & !1);
    let cw = src.width.div_ceil(2);
    for y in 0..src.height.min(f.height.saturating_sub(y0)) {
        for x in 0..src.width.min(f.width.saturating_sub(x0)) {
            let c = (y / 2) * cw + x / 2;
            put(
                f,
                x0 + x,
                y0 + y,
                [src.y[y * src.width + x], src.u[c], src.v[c]],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_the_frame_part_it_names() {
        let mut f = Frame::filled(64, 32, 10);
        f.y[5 * 64 + 40] = 200;
        let w = window(
            &f,
            &BoxPx {
                x1: 32.0,
                y1: 4.0,
                x2: 63.0,
                y2: 31.0,
            },
        );
        assert_eq!((w.width, w.height), (32, 28));
        assert_eq!(w.y[w.width + 8], 200, "(40, 5) is (8, 1) in the window");
    }
}
