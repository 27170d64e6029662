use super::*;

fn every(fps: &[u32]) -> Rates {
    Rates::Discrete(fps.iter().map(|&f| Interval { num: 1, den: f }).collect())
}

fn size(width: u32, height: u32, fps: &[u32]) -> SizeCaps {
    SizeCaps {
        sizes: Sizes::Discrete { width, height },
        rates: every(fps),
    }
}

fn format(fourcc: &[u8; 4], description: &str, sizes: Vec<SizeCaps>) -> FormatCaps {
    FormatCaps {
        fourcc: *fourcc,
        description: description.into(),
        sizes,
    }
}

/// A typical USB 2 webcam: raw YUYV is slow at 720p, MJPEG is not.
fn webcam() -> Vec<FormatCaps> {
    vec![
        format(
            b"YUYV",
            "YUYV 4:2:2",
            vec![size(640, 480, &[30, 15]), size(1280, 720, &[10, 5])],
        ),
        format(
            b"MJPG",
            "Motion-JPEG",
            vec![
                size(640, 480, &[30]),
                size(1280, 720, &[30, 15]),
                size(1920, 1080, &[30]),
            ],
        ),
    ]
}

fn pick(formats: &[FormatCaps], wanted: V4l2Format, w: u32, h: u32, fps: f64) -> Choice {
    choose(formats, wanted, (w, h), fps).expect("a choice")
}

#[test]
fn auto_takes_a_raw_format_that_has_the_size_and_rate() {
    let c = pick(&webcam(), V4l2Format::Auto, 640, 480, 15.0);
    assert_eq!((c.pixel, c.width, c.height), (PixelFormat::Yuyv, 640, 480));
    assert_eq!(c.interval, Some(Interval { num: 1, den: 15 }));
}

#[test]
fn auto_passes_over_a_raw_format_too_slow_at_the_size() {
    let c = pick(&webcam(), V4l2Format::Auto, 1280, 720, 15.0);
    assert_eq!(c.pixel, PixelFormat::Mjpeg);
    assert_eq!(&c.fourcc, b"MJPG");
    assert_eq!((c.width, c.height), (1280, 720));
    assert_eq!(c.interval.map(Interval::fps), Some(15.0));
}

#[test]
fn auto_prefers_h264_then_nv12() {
    let mut formats = webcam();
    formats.push(format(b"NV12", "Y/UV 4:2:0", vec![size(1280, 720, &[30])]));
    let c = pick(&formats, V4l2Format::Auto, 1280, 720, 15.0);
    assert_eq!(c.pixel, PixelFormat::Nv12);
    formats.push(format(b"H264", "H.264", vec![size(1280, 720, &[30])]));
    let c = pick(&formats, V4l2Format::Auto, 1280, 720, 15.0);
    assert_eq!(c.pixel, PixelFormat::H264);
    assert_eq!(c.interval.map(Interval::fps), Some(30.0));
}

#[test]
fn auto_falls_back_to_the_preferred_format_when_none_satisfies() {
    let c = pick(&webcam(), V4l2Format::Auto, 3840, 2160, 60.0);
    assert_eq!(
        c.pixel,
        PixelFormat::Yuyv,
        "no format has 4K: preference wins"
    );
    assert_eq!((c.width, c.height), (1280, 720), "the nearest size");
    assert_eq!(c.interval.map(Interval::fps), Some(10.0), "the fastest");
}

#[test]
fn an_explicit_format_gets_the_nearest_size_and_rate() {
    let c = pick(&webcam(), V4l2Format::Yuyv, 1280, 720, 15.0);
    assert_eq!((c.pixel, c.width, c.height), (PixelFormat::Yuyv, 1280, 720));
    assert_eq!(c.interval.map(Interval::fps), Some(10.0));
    let c = pick(&webcam(), V4l2Format::Mjpeg, 1300, 700, 20.0);
    assert_eq!((c.width, c.height), (1280, 720));
    assert_eq!(
        c.interval.map(Interval::fps),
        Some(30.0),
        "the slowest >= 20"
    );
}

#[test]
fn a_missing_format_is_named_with_everything_the_camera_offers() {
    let e = choose(&webcam(), V4l2Format::Nv12, (1280, 720), 15.0).expect_err("no NV12");
    let text = e.to_string();
    assert!(text.contains("format = \"nv12\""), "{text}");
    assert!(
        text.contains("YUYV (YUYV 4:2:2): 640x480 @ 30, 15 fps; 1280x720 @ 10, 5 fps"),
        "{text}"
    );
    assert!(
        text.contains(
            "MJPG (Motion-JPEG): 640x480 @ 30 fps; 1280x720 @ 30, 15 fps; 1920x1080 @ 30 fps"
        ),
        "{text}"
    );
    assert_eq!(e.offered, webcam());
}

#[test]
fn a_camera_with_nothing_usable_says_so() {
    let formats = vec![format(
        b"GREY",
        "8-bit Greyscale",
        vec![size(640, 480, &[60])],
    )];
    let text = choose(&formats, V4l2Format::Auto, (640, 480), 15.0)
        .expect_err("nothing usable")
        .to_string();
    assert!(
        text.contains("none of H.264, NV12, YUYV or MJPEG"),
        "{text}"
    );
    assert!(
        text.contains("GREY (8-bit Greyscale) [not usable by cascade]"),
        "{text}"
    );
    let none = choose(&[], V4l2Format::Auto, (640, 480), 15.0).expect_err("empty");
    assert!(none.to_string().ends_with("no formats"), "{none}");
}

#[test]
fn stepwise_sizes_snap_to_their_grid_and_rates_clamp() {
    let stepwise = SizeCaps {
        sizes: Sizes::Stepwise {
            min: (16, 16),
            max: (1920, 1080),
            step: (8, 8),
        },
        rates: Rates::Stepwise {
            min: Interval { num: 1, den: 60 },
            max: Interval { num: 1, den: 1 },
        },
    };
    let formats = vec![format(b"NV12", "Y/UV 4:2:0", vec![stepwise.clone()])];
    let c = pick(&formats, V4l2Format::Nv12, 1283, 721, 15.0);
    assert_eq!((c.width, c.height), (1280, 720));
    assert_eq!(c.interval.map(Interval::fps), Some(15.0));
    let c = pick(&formats, V4l2Format::Nv12, 4000, 8, 100.0);
    assert_eq!((c.width, c.height), (1920, 16));
    assert_eq!(c.interval.map(Interval::fps), Some(60.0));
    assert_eq!(
        stepwise.to_string(),
        "16x16 to 1920x1080 in steps of 8x8 @ 1 to 60 fps"
    );
    let zero_step = Sizes::Stepwise {
        min: (2, 2),
        max: (10, 10),
        step: (0, 0),
    };
    assert_eq!(fit(&zero_step, (7, 99)), (7, 10), "a zero step counts as 1");
}

#[test]
fn a_driver_that_lists_nothing_gets_what_was_asked() {
    let formats = vec![format(b"YUYV", "YUYV 4:2:2", Vec::new())];
    let c = pick(&formats, V4l2Format::Auto, 800, 600, 12.5);
    assert_eq!((c.width, c.height, c.interval), (800, 600, None));
    assert_eq!(
        formats[0].to_string(),
        "YUYV (YUYV 4:2:2): sizes not listed"
    );
    assert_eq!(
        rate(&Rates::Discrete(vec![Interval { num: 0, den: 0 }]), 5.0),
        None
    );
}

#[test]
fn fractional_rates_and_odd_fourccs_print_readably() {
    assert_eq!(
        Interval {
            num: 1001,
            den: 30000
        }
        .to_string(),
        "29.97"
    );
    assert_eq!(
        Interval::from_fps(7.5),
        Interval {
            num: 1000,
            den: 7500
        }
    );
    assert_eq!(fourcc_str(*b"Y10 "), "Y10 ");
    assert_eq!(fourcc_str([b'A', 0, 0xff, b'1']), "A??1");
    assert_eq!(PixelFormat::from_fourcc(*b"JPEG"), Some(PixelFormat::Mjpeg));
    assert_eq!(PixelFormat::from_fourcc(*b"YU12"), None);
}
