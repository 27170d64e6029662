use std::path::Path;

use super::*;
use crate::source::{AnnexBFile, Container, Mp4File};

const WALKER_MP4: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/walker.mp4");
const WALKER_H264: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/walker.h264");

/// Decodes a whole source, returning frames and the errors met on the way.
pub(crate) fn decode_all(src: &mut dyn Container) -> (Vec<Frame>, Vec<DecodeError>) {
    let mut dec = H264Decoder::new().expect("decoder");
    let (mut frames, mut errors) = (Vec::new(), Vec::new());
    while let Some(au) = src.next_unit().expect("source") {
        if let Err(e) = dec.decode(&au, &mut frames) {
            errors.push(e);
        }
    }
    dec.flush(&mut frames).expect("flush");
    (frames, errors)
}

fn luma_at(f: &Frame, x: usize, y: usize) -> u8 {
    f.y[y * f.width + x]
}

#[test]
fn decodes_mp4_with_b_frames_in_presentation_order() {
    let mut src = Mp4File::open(Path::new(WALKER_MP4)).expect("opens");
    let (frames, errors) = decode_all(&mut src);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(frames.len(), 80);
    assert!(
        frames.windows(2).all(|w| w[0].pts_us < w[1].pts_us),
        "pts not increasing"
    );
    assert_eq!((frames[0].width, frames[0].height), (320, 240));
    // At t = 4.0 s the walker spans x 140..176, y 70..166 (see tests/fixtures/make_clips.sh).
    let f = frames
        .iter()
        .find(|f| f.pts_us == 4_000_000)
        .expect("frame at 4 s");
    assert!(
        luma_at(f, 158, 118) > 200,
        "walker missing: {}",
        luma_at(f, 158, 118)
    );
    assert!(luma_at(f, 60, 118) < 90, "background too bright");
    // Before t = 2 s the room is empty.
    assert!(luma_at(&frames[5], 158, 118) < 90);
}

#[test]
fn decodes_annex_b_file() {
    let mut src = AnnexBFile::open(Path::new(WALKER_H264), 10.0).expect("opens");
    let (frames, errors) = decode_all(&mut src);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(frames.len(), 80);
    // Start codes are normalised to 4 bytes, so the count may exceed the file size slightly.
    let file_len = std::fs::metadata(WALKER_H264).expect("meta").len();
    assert!(src.bytes_read() >= file_len && src.bytes_read() < file_len + 4 * 200);
}

#[test]
fn corrupt_bytes_mid_stream_do_not_stop_decoding() {
    let bytes = std::fs::read(WALKER_H264).expect("read");
    let mut src = AnnexBFile::from_bytes(Path::new("walker.h264"), &bytes, 10.0);
    let mut dec = H264Decoder::new().expect("decoder");
    let (mut frames, mut errors) = (Vec::new(), Vec::new());
    let mut i = 0;
    while let Some(mut au) = src.next_unit().expect("source") {
        if (40..44).contains(&i) {
            // Garble the slice data and cut the unit short.
            let n = au.data.len();
            for b in &mut au.data[6..n] {
                *b = b.wrapping_mul(31).wrapping_add(7);
            }
            au.data.truncate(n / 2 + 6);
        }
        if let Err(e) = dec.decode(&au, &mut frames) {
            assert!(e.is_recoverable(), "{e}");
            errors.push(e);
        }
        i += 1;
    }
    dec.flush(&mut frames).expect("flush");
    // Pictures that refer to the damaged ones may be lost until the next IDR (every 30 frames);
    // everything from there on decodes again.
    assert!(!errors.is_empty(), "the damage went unnoticed");
    assert!(frames.len() >= 55, "only {} frames survived", frames.len());
    let tail: Vec<i64> = frames.iter().rev().take(5).map(|f| f.pts_us).collect();
    let (n, e) = (frames.len(), errors.len());
    assert!(
        tail[0] >= 7_000_000,
        "stream stopped at the damage: {n} frames, {e} errors, last {tail:?}"
    );
}

#[test]
fn interlaced_stream_is_refused_clearly() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/interlaced.h264"
    );
    let mut src = AnnexBFile::open(Path::new(path), 10.0).expect("opens");
    let mut dec = H264Decoder::new().expect("decoder");
    let au = src.next_unit().expect("source").expect("one unit");
    let err = dec.decode(&au, &mut Vec::new()).expect_err("refused");
    assert!(!err.is_recoverable());
    let msg = err.to_string();
    assert!(
        msg.contains("interlaced") && msg.contains("progressive"),
        "{msg}"
    );
}

#[test]
fn a_new_picture_size_mid_stream_restarts_the_decoder() {
    let walker_480 = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/walker_480.h264"
    );
    // A camera that switched from 320x240 to 480x360: one stream, two sequences.
    let mut bytes = std::fs::read(WALKER_H264).expect("read");
    bytes.extend(std::fs::read(walker_480).expect("read"));
    let mut src = AnnexBFile::from_bytes(Path::new("switch.h264"), &bytes, 10.0);
    let (frames, errors) = decode_all(&mut src);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(frames.len(), 160, "every picture of both sequences");
    let sizes: Vec<(usize, usize)> = frames.iter().map(|f| (f.width, f.height)).collect();
    assert!(sizes[..80].iter().all(|s| *s == (320, 240)), "{sizes:?}");
    assert!(sizes[80..].iter().all(|s| *s == (480, 360)), "{sizes:?}");
    assert!(frames.iter().all(|f| f.y.len() == f.width * f.height));
    // The walker is where the scaled scene puts it: at 4.0 s into the second sequence.
    let f = &frames[80 + 40];
    assert!(
        luma_at(f, 237, 177) > 200,
        "walker missing after the switch"
    );
}
