use cascade_infer::image::RgbSource;
use proptest::prelude::*;

use super::*;

/// BT.601 limited range, by hand: `(Y, Cb, Cr)` and the RGB they stand for.
const RED: ([u8; 3], [u8; 3]) = ([81, 90, 240], [255, 0, 0]);
const GREEN: ([u8; 3], [u8; 3]) = ([145, 54, 34], [0, 255, 0]);
const BLUE: ([u8; 3], [u8; 3]) = ([41, 240, 110], [0, 0, 255]);
const WHITE: ([u8; 3], [u8; 3]) = ([235, 128, 128], [255, 255, 255]);

/// The quadrant a pixel of a `side` x `side` test picture is in: red, green / blue, white.
fn quadrant(x: usize, y: usize, side: usize) -> ([u8; 3], [u8; 3]) {
    match (x < side / 2, y < side / 2) {
        (true, true) => RED,
        (false, true) => GREEN,
        (true, false) => BLUE,
        (false, false) => WHITE,
    }
}

fn assert_rgb_near(frame: &Frame, x: usize, y: usize, want: [u8; 3], tol: u8) {
    let got = frame.rgb(x, y);
    let off = got.iter().zip(want).map(|(g, w)| g.abs_diff(w)).max();
    assert!(off <= Some(tol), "({x}, {y}): {got:?}, want {want:?}");
}

/// The 4x4 quadrant picture as YUYV in `stride`-byte rows; the chroma of the two rows of each
/// pair differs by -2 and +2, so their average is the quadrant's value.
fn yuyv_4x4(stride: usize) -> Vec<u8> {
    let mut data = vec![0xEE; stride * 4];
    for y in 0..4 {
        let d = if y % 2 == 0 { -2i16 } else { 2 };
        let shift = |c: u8| u8::try_from(i16::from(c) + d).expect("in range");
        for m in 0..2 {
            let ([luma, cb, cr], _) = quadrant(2 * m, y, 4);
            let at = y * stride + 4 * m;
            data[at..at + 4].copy_from_slice(&[luma, shift(cb), luma, shift(cr)]);
        }
    }
    data
}

fn expected_planes() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let y = (0..16).map(|i| quadrant(i % 4, i / 4, 4).0[0]).collect();
    let u = vec![RED.0[1], GREEN.0[1], BLUE.0[1], WHITE.0[1]];
    let v = vec![RED.0[2], GREEN.0[2], BLUE.0[2], WHITE.0[2]];
    (y, u, v)
}

#[test]
fn yuyv_gives_the_hand_computed_planes_and_colours() {
    for stride in [0, 8, 12] {
        let data = yuyv_4x4(stride.max(8));
        let l = Layout {
            width: 4,
            height: 4,
            stride,
        };
        let f = yuyv(&data, l, 7).expect("converts");
        let (y, u, v) = expected_planes();
        assert_eq!((f.width, f.height, f.pts_us), (4, 4, 7));
        assert_eq!((f.y, f.u, f.v), (y, u, v), "stride {stride}");
    }
    let f = yuyv(
        &yuyv_4x4(8),
        Layout {
            width: 4,
            height: 4,
            stride: 8,
        },
        0,
    )
    .expect("converts");
    for (x, y) in [(0, 0), (3, 0), (0, 3), (3, 3), (1, 2)] {
        assert_rgb_near(&f, x, y, quadrant(x, y, 4).1, 1);
    }
}

/// The 4x4 quadrant picture as NV12 with `stride`-byte rows, padding filled with garbage.
fn nv12_4x4(stride: usize) -> Vec<u8> {
    let mut data = vec![0xEE; stride * 6];
    for y in 0..4 {
        for x in 0..4 {
            data[y * stride + x] = quadrant(x, y, 4).0[0];
        }
    }
    for cy in 0..2 {
        for cx in 0..2 {
            let ([_, cb, cr], _) = quadrant(2 * cx, 2 * cy, 4);
            let at = (4 + cy) * stride + 2 * cx;
            data[at..at + 2].copy_from_slice(&[cb, cr]);
        }
    }
    data
}

#[test]
fn nv12_gives_the_hand_computed_planes_and_colours() {
    for stride in [4, 6, 16] {
        let l = Layout {
            width: 4,
            height: 4,
            stride,
        };
        let f = nv12(&nv12_4x4(stride), l, 9).expect("converts");
        let (y, u, v) = expected_planes();
        assert_eq!((f.width, f.height, f.pts_us), (4, 4, 9));
        assert_eq!((&f.y, &f.u, &f.v), (&y, &u, &v), "stride {stride}");
        for (x, y) in [(0, 0), (3, 0), (0, 3), (3, 3)] {
            assert_rgb_near(&f, x, y, quadrant(x, y, 4).1, 1);
        }
    }
}

#[test]
fn odd_sizes_keep_their_last_column_and_row() {
    // 3x3: two macropixels (8 bytes) a row; the second macropixel's Y1 is padding.
    let grey = [100u8, 128, 100, 128, 100, 128, 0, 128];
    let data: Vec<u8> = grey.iter().copied().cycle().take(24).collect();
    let f = yuyv(
        &data,
        Layout {
            width: 3,
            height: 3,
            stride: 0,
        },
        0,
    )
    .expect("3x3 YUYV");
    assert_eq!((f.y.len(), f.u.len(), f.v.len()), (9, 4, 4));
    assert!(f.y.iter().all(|&y| y == 100) && f.u.iter().all(|&u| u == 128));
    // 3x3 NV12: rows of 4 bytes (two U V pairs), 3 luma rows and 2 chroma rows.
    let mut data = vec![100u8; 4 * 3];
    data.extend([128u8; 4 * 2]);
    let f = nv12(
        &data,
        Layout {
            width: 3,
            height: 3,
            stride: 4,
        },
        0,
    )
    .expect("3x3 NV12");
    assert_eq!((f.y.len(), f.u.len(), f.v.len()), (9, 4, 4));
    assert!(f.y.iter().all(|&y| y == 100) && f.v.iter().all(|&v| v == 128));
}

#[test]
fn bad_strides_short_buffers_and_bad_sizes_are_errors() {
    let l = |width, height, stride| Layout {
        width,
        height,
        stride,
    };
    let data = yuyv_4x4(8);
    assert_eq!(
        yuyv(&data, l(4, 4, 6), 0),
        Err(ConvertError::Stride {
            format: "YUYV",
            width: 4,
            stride: 6,
            min: 8
        })
    );
    let short = yuyv(&data[..31], l(4, 4, 8), 0).expect_err("short");
    assert!(
        matches!(
            short,
            ConvertError::Short {
                need: 32,
                got: 31,
                ..
            }
        ),
        "{short}"
    );
    assert!(short.to_string().contains("YUYV 4x4: 31 bytes"), "{short}");
    let nv = nv12_4x4(4);
    assert!(matches!(
        nv12(&nv[..23], l(4, 4, 4), 0),
        Err(ConvertError::Short { need: 24, .. })
    ));
    assert!(matches!(
        nv12(&nv, l(4, 4, 3), 0),
        Err(ConvertError::Stride { .. })
    ));
    for (w, h) in [(0, 4), (4, 0), (MAX_SIDE + 2, 2), (10_000, 10_000)] {
        assert_eq!(
            yuyv(&data, l(w, h, 0), 0),
            Err(ConvertError::Size {
                width: w,
                height: h
            })
        );
        assert!(matches!(
            nv12(&data, l(w, h, 0), 0),
            Err(ConvertError::Size { .. })
        ));
        assert!(matches!(
            mjpeg(&data, w, h, 0),
            Err(ConvertError::Size { .. })
        ));
    }
    let huge_stride = nv12(&nv, l(4, 4, usize::MAX / 2), 0).expect_err("no overflow");
    assert!(
        matches!(huge_stride, ConvertError::Short { .. }),
        "{huge_stride}"
    );
}

/// A `side` x `side` JPEG of the quadrant picture, as a camera would send it.
fn quadrant_jpeg(side: usize) -> Vec<u8> {
    let rgb: Vec<u8> = (0..side * side)
        .flat_map(|i| quadrant(i % side, i / side, side).1)
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(&rgb, side as u16, side as u16, jpeg_encoder::ColorType::Rgb)
        .expect("encodes");
    out
}

fn assert_quadrants(f: &Frame, side: usize) {
    let q = side / 4;
    for (x, y) in [(q, q), (3 * q, q), (q, 3 * q), (3 * q, 3 * q)] {
        let (yuv, rgb) = quadrant(x, y, side);
        let luma = f.y[y * side + x];
        assert!(
            luma.abs_diff(yuv[0]) <= 3,
            "({x}, {y}): Y {luma}, want {}",
            yuv[0]
        );
        assert_rgb_near(f, x, y, rgb, 10);
    }
}

#[test]
fn mjpeg_decodes_to_limited_range_luma_and_the_right_colours() {
    let jpeg = quadrant_jpeg(32);
    let f = mjpeg(&jpeg, 32, 32, 11).expect("decodes");
    assert_eq!((f.width, f.height, f.pts_us), (32, 32, 11));
    assert_eq!((f.y.len(), f.u.len(), f.v.len()), (1024, 256, 256));
    assert_quadrants(&f, 32);
}

/// UVC cameras send MJPEG without Huffman tables (DHT segments): the standard ones apply.
#[test]
fn mjpeg_without_huffman_tables_decodes() {
    let jpeg = quadrant_jpeg(32);
    let mut stripped = Vec::new();
    let mut i = 0;
    while i < jpeg.len() {
        if jpeg[i] == 0xFF && jpeg.get(i + 1) == Some(&0xC4) {
            let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
            i += 2 + len;
            continue;
        }
        if jpeg[i] == 0xFF && jpeg.get(i + 1) == Some(&0xDA) {
            stripped.extend_from_slice(&jpeg[i..]);
            break;
        }
        stripped.push(jpeg[i]);
        i += 1;
    }
    assert!(stripped.len() < jpeg.len(), "the DHT segments were removed");
    assert!(has_huffman_tables(&jpeg) && !has_huffman_tables(&stripped));
    let f = mjpeg(&stripped, 32, 32, 0).expect("decodes with the standard tables");
    assert_quadrants(&f, 32);
    assert!(
        matches!(with_huffman_tables(&jpeg), Cow::Borrowed(_)),
        "no copy when not needed"
    );
    assert!(
        !has_huffman_tables(&[0xFF, 0xD8, 0xFF]),
        "a truncated frame"
    );
}

#[test]
fn a_grey_jpeg_has_neutral_chroma() {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(&[128u8; 16 * 16], 16, 16, jpeg_encoder::ColorType::Luma)
        .expect("encodes");
    let f = mjpeg(&out, 16, 16, 0).expect("decodes");
    let want = 16 + (128 * 219 + 127) / 255;
    assert!(
        f.y.iter().all(|&y| y.abs_diff(want as u8) <= 2),
        "{:?}",
        &f.y[..4]
    );
    assert!(f.u.iter().chain(&f.v).all(|&c| c == 128));
}

#[test]
fn a_jpeg_of_another_size_or_damaged_is_an_error() {
    let jpeg = quadrant_jpeg(32);
    assert_eq!(
        mjpeg(&jpeg, 64, 48, 0),
        Err(ConvertError::JpegSize {
            width: 64,
            height: 48,
            got_width: 32,
            got_height: 32
        })
    );
    assert!(
        mjpeg(&jpeg, 16, 16, 0).is_err(),
        "larger than the camera's size"
    );
    assert!(matches!(
        mjpeg(b"not a jpeg", 32, 32, 0),
        Err(ConvertError::Jpeg(_))
    ));
    assert!(matches!(mjpeg(&[], 32, 32, 0), Err(ConvertError::Jpeg(_))));
    for cut in [2, 20, jpeg.len() / 2, jpeg.len() - 2] {
        let _ = mjpeg(&jpeg[..cut], 32, 32, 0); // an error or a partial picture, never a panic
    }
}

#[test]
fn range_tables_map_full_range_ends_to_limited_range_ends() {
    let (luma, chroma) = range_tables();
    assert_eq!((luma[0], luma[255]), (16, 235));
    assert_eq!((chroma[0], chroma[128], chroma[255]), (16, 128, 240));
}

fn frame_is_consistent(f: &Frame) -> bool {
    let c = f.width.div_ceil(2) * f.height.div_ceil(2);
    f.y.len() == f.width * f.height && f.u.len() == c && f.v.len() == c
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any bytes with any layout: a consistent frame or an error, never a panic.
    #[test]
    fn arbitrary_buffers_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        width in 0usize..24,
        height in 0usize..24,
        stride in 0usize..80,
    ) {
        let l = Layout { width, height, stride };
        if let Ok(f) = yuyv(&data, l, 0) {
            prop_assert!(frame_is_consistent(&f));
        }
        if let Ok(f) = nv12(&data, l, 0) {
            prop_assert!(frame_is_consistent(&f));
        }
        if let Ok(f) = mjpeg(&data, width, height, 0) {
            prop_assert!(frame_is_consistent(&f));
        }
    }

    /// A real MJPEG frame damaged in transit (bytes changed, cut short): a consistent frame of the
    /// camera's size or an error, never a panic.
    #[test]
    fn damaged_jpegs_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut jpeg = quadrant_jpeg(32);
        for (at, byte) in flips {
            let i = at % jpeg.len();
            jpeg[i] = byte;
        }
        jpeg.truncate(cut % (jpeg.len() + 1));
        if let Ok(f) = mjpeg(&jpeg, 32, 32, 0) {
            prop_assert!(frame_is_consistent(&f));
            prop_assert_eq!((f.width, f.height), (32, 32));
        }
    }
}
