//! The motion gate on the real sample clip (`../shared/samples/one-by-one-person-detection.mp4`,
//! skipped with a note when absent), default settings: every person visit reaches the detector
//! on most of its frames, and the empty room before the first visit (compression flicker only)
//! never does. Between visits people walk in and out before and after the person detector sees
//! them, so those frames are counted and shown, not judged.
//!
//! The visits are where the INT8 YOLOv8n person detector (score >= 0.5) sees a person, sampled
//! every 5th frame (0.5 s) and joined across gaps shorter than 2 s; `design/motion.md` has the
//! figures, before and after one row per band.

use std::path::{Path, PathBuf};

use cascade_shared::config::edge::MotionConfig;
use edge_agent::decode::{Frame, H264Decoder, VideoDecoder};
use edge_agent::motion::{BackgroundMotion, MotionDetector};
use edge_agent::source::{Container, Mp4File};

/// Person visits, in seconds of the clip (first and last sampled frame with a person).
const VISITS: [(f64, f64); 6] = [
    (6.5, 19.0),
    (23.0, 44.5),
    (51.0, 69.5),
    (74.5, 86.5),
    (92.5, 119.5),
    (123.5, 135.5),
];

fn sample() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/samples/one-by-one-person-detection.mp4");
    p.is_file().then_some(p)
}

/// The frame scaled to `w` x `h` by nearest neighbour (a 1080p view of the same scene).
fn upscale(f: &Frame, w: usize, h: usize) -> Frame {
    let mut out = Frame::filled(w, h, 0);
    let xs: Vec<usize> = (0..w).map(|x| x * f.width / w).collect();
    for (y, row) in out.y.chunks_exact_mut(w).enumerate() {
        let src = &f.y[y * f.height / h * f.width..][..f.width];
        for (p, &x) in row.iter_mut().zip(&xs) {
            *p = src[x];
        }
    }
    out.pts_us = f.pts_us;
    out
}

/// (seconds, motion boxes found) for every frame of the clip, at its size or scaled to `size`.
fn motion_per_frame(clip: &Path, size: Option<(usize, usize)>) -> Vec<(f64, bool)> {
    let mut src = Mp4File::open(clip).expect("the clip opens");
    let mut dec = H264Decoder::new().expect("decoder");
    let mut motion = BackgroundMotion::new(MotionConfig::default());
    let (mut frames, mut out) = (Vec::new(), Vec::new());
    let mut step = |frames: &mut Vec<Frame>| {
        for f in frames.drain(..) {
            let m = match size {
                Some((w, h)) => motion.detect(&upscale(&f, w, h)),
                None => motion.detect(&f),
            };
            out.push((f.pts_us as f64 / 1e6, !m.boxes.is_empty()));
        }
    };
    while let Some(au) = src.next_unit().expect("reads") {
        dec.decode(&au, &mut frames).expect("decodes");
        step(&mut frames);
    }
    dec.flush(&mut frames).expect("flushes");
    step(&mut frames);
    out
}

/// Frames with motion among those whose time satisfies `keep`, and how many those are.
fn count(frames: &[(f64, bool)], keep: impl Fn(f64) -> bool) -> (usize, usize) {
    let kept = frames.iter().filter(|(t, _)| keep(*t));
    let moving = kept.clone().filter(|(_, m)| *m).count();
    (moving, kept.count())
}

#[test]
fn person_visits_reach_the_detector() {
    let Some(clip) = sample() else {
        eprintln!("SKIPPED: ../shared/samples/one-by-one-person-detection.mp4 is not present");
        return;
    };
    // 768x432: cells of 2x2 pixels, all sampled; 1280x720: cells of 4x4; 1920x1080: cells of
    // 6x6; four pixels of each sampled.
    for size in [None, Some((1280, 720)), Some((1920, 1080))] {
        let (w, h) = size.unwrap_or((768, 432));
        eprintln!("{w}x{h}:");
        check_visits(&motion_per_frame(&clip, size));
    }
}

fn check_visits(frames: &[(f64, bool)]) {
    assert!(frames.len() > 1000, "{} frames", frames.len());
    for (i, &(a, b)) in VISITS.iter().enumerate() {
        let (moving, n) = count(frames, |t| (a..=b).contains(&t));
        eprintln!(
            "visit {} ({a:.1}-{b:.1} s): motion in {moving} of {n} frames",
            i + 1
        );
        assert!(
            moving * 3 >= n * 2,
            "visit {} ({a}-{b} s): motion in only {moving} of {n} frames",
            i + 1
        );
    }
    let between = |t: f64| VISITS.windows(2).any(|w| t > w[0].1 && t < w[1].0);
    let (moving, n) = count(frames, between);
    eprintln!("between visits (people walking in and out): motion in {moving} of {n} frames");
    // The room is empty until a second before the first person is seen.
    let (moving, n) = count(frames, |t| t < VISITS[0].0 - 1.0);
    eprintln!("empty room before the first visit: motion in {moving} of {n} frames");
    assert!(moving <= 1, "empty room: motion in {moving} of {n} frames");
}
