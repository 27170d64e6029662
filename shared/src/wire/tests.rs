use super::*;
use proptest::prelude::*;

pub(crate) fn sample_crop() -> Crop {
    Crop {
        message_id: "0190f1a2-7c3b-7d3e-9c1a-123456789abc".into(),
        device_id: "dev-1".into(),
        camera_id: "cam-1".into(),
        sequence: 7,
        capture_time_us: 1_700_000_000_000_000,
        frame_width: 320,
        frame_height: 240,
        r#box: Some(BoxPx {
            x1: 10.0,
            y1: 20.0,
            x2: 50.0,
            y2: 120.0,
        }),
        crop_region: Some(BoxPx {
            x1: 4.0,
            y1: 5.0,
            x2: 56.0,
            y2: 135.0,
        }),
        class_id: 0,
        class_name: "person".into(),
        score: 0.9,
        model_name: "blob-yolov8".into(),
        model_version: "1".into(),
        track_id: 3,
        jpeg: vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9],
        event: TrackEvent::Crop as i32,
    }
}

fn envelope_bytes(body: &EncodedBody) -> Vec<u8> {
    CropEnvelope::wrap(body, 42).encode_to_vec()
}

#[test]
fn round_trips_raw_and_zstd() {
    let crop = sample_crop();
    for c in [Compression::None, Compression::Zstd, Compression::Auto] {
        let body = crop.encode_body(c);
        let (env, back) = decode(&envelope_bytes(&body)).expect("decodes");
        assert_eq!(back, crop);
        assert_eq!(env.upload_time_us, 42);
    }
    assert_eq!(
        crop.encode_body(Compression::Zstd).encoding,
        BodyEncoding::Zstd
    );
}

#[test]
fn auto_keeps_raw_when_zstd_does_not_pay() {
    let mut crop = sample_crop();
    // Incompressible bytes, like a JPEG's entropy-coded data.
    let mut x: u32 = 12345;
    crop.jpeg = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    assert_eq!(
        crop.encode_body(Compression::Auto).encoding,
        BodyEncoding::Raw
    );
    crop.jpeg = vec![7; 20_000];
    assert_eq!(
        crop.encode_body(Compression::Auto).encoding,
        BodyEncoding::Zstd
    );
}

#[test]
fn rejects_wrong_schema_version() {
    let mut env = CropEnvelope::wrap(&sample_crop().encode_body(Compression::None), 0);
    env.schema_version = 2;
    assert_eq!(
        decode(&env.encode_to_vec()),
        Err(WireError::SchemaVersion(2))
    );
}

#[test]
fn rejects_zstd_bomb_without_inflating_it() {
    // 64 MiB of zeros compresses to a few KiB; it declares a small size.
    let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 3).expect("compress");
    let env = CropEnvelope {
        schema_version: SCHEMA_VERSION,
        encoding: BodyEncoding::Zstd as i32,
        uncompressed_size: 1000,
        body: bomb.clone(),
        upload_time_us: 0,
    };
    let err = decode(&env.encode_to_vec()).expect_err("bomb refused");
    assert_eq!(err.reason(), "decompress");
    let env = CropEnvelope {
        uncompressed_size: u32::MAX,
        ..env
    };
    assert_eq!(
        decode(&env.encode_to_vec()).map_err(|e| e.reason()),
        Err("too_large")
    );
}

#[test]
fn rejects_truncated_and_oversized() {
    let bytes = envelope_bytes(&sample_crop().encode_body(Compression::None));
    assert!(decode(&bytes[..bytes.len() / 2]).is_err());
    assert_eq!(
        decode(&vec![0; MAX_ENVELOPE_BYTES + 1]),
        Err(WireError::TooLarge(MAX_ENVELOPE_BYTES + 1))
    );
}

#[test]
fn validation_names_the_field() {
    let mut crop = sample_crop();
    crop.r#box = Some(BoxPx {
        x1: 10.0,
        y1: 20.0,
        x2: 500.0,
        y2: 120.0,
    });
    let err = decode(&envelope_bytes(&crop.encode_body(Compression::None))).expect_err("invalid");
    assert!(
        matches!(err, WireError::Field { field: "box", .. }),
        "{err}"
    );
    let mut crop = sample_crop();
    crop.device_id = "a/b".into();
    let err = crop.validate().expect_err("invalid");
    assert!(
        matches!(
            err,
            WireError::Field {
                field: "device_id",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn track_words_carry_no_picture_and_crops_need_one() {
    let word = |event: TrackEvent| Crop {
        event: event as i32,
        jpeg: Vec::new(),
        crop_region: None,
        ..sample_crop()
    };
    for event in [TrackEvent::Seen, TrackEvent::Ended] {
        let (_, back) = decode(&envelope_bytes(&word(event).encode_body(Compression::None)))
            .expect("a track word is valid");
        assert_eq!(back.track_event(), event);
    }
    let with_picture = Crop {
        jpeg: vec![1, 2, 3],
        ..word(TrackEvent::Ended)
    };
    let err = with_picture.validate().expect_err("a word with a picture");
    assert!(
        matches!(err, WireError::Field { field: "jpeg", .. }),
        "{err}"
    );
    let no_region = Crop {
        crop_region: None,
        ..sample_crop()
    };
    let err = no_region.validate().expect_err("a crop without its region");
    assert!(
        matches!(
            err,
            WireError::Field {
                field: "crop_region",
                ..
            }
        ),
        "{err}"
    );
    let unknown = Crop {
        event: 9,
        ..sample_crop()
    };
    let err = unknown.validate().expect_err("an unknown event");
    assert!(
        matches!(err, WireError::Field { field: "event", .. }),
        "{err}"
    );
    assert_eq!(
        sample_crop().track_event(),
        TrackEvent::Crop,
        "absent is a crop"
    );
}

prop_compose! {
    fn arb_word()(crop in arb_crop(), ended in any::<bool>()) -> Crop {
        let event = if ended { TrackEvent::Ended } else { TrackEvent::Seen };
        Crop { event: event as i32, jpeg: Vec::new(), crop_region: None, ..crop }
    }
}

prop_compose! {
    fn arb_crop()(seq in any::<u64>(), t in any::<i64>(), w in 1u32..4000, h in 1u32..4000,
                  fx in 0f32..0.5, fy in 0f32..0.5, score in 0f32..=1.0, track in any::<u64>(),
                  jpeg in proptest::collection::vec(any::<u8>(), 1..2000),
                  cam in "[a-z0-9_-]{1,16}") -> Crop {
        let b = BoxPx { x1: fx * w as f32, y1: fy * h as f32, x2: w as f32, y2: h as f32 };
        Crop { sequence: seq, capture_time_us: t, frame_width: w, frame_height: h,
               r#box: Some(b), crop_region: Some(b), score, track_id: track, jpeg,
               camera_id: cam, ..sample_crop() }
    }
}

proptest! {
    #[test]
    fn any_valid_crop_round_trips(crop in arb_crop(), zstd in any::<bool>()) {
        let c = if zstd { Compression::Zstd } else { Compression::None };
        let (_, back) = decode(&envelope_bytes(&crop.encode_body(c))).expect("round trip");
        prop_assert_eq!(back, crop);
    }

    #[test]
    fn any_valid_track_word_round_trips(word in arb_word()) {
        let (_, back) = decode(&envelope_bytes(&word.encode_body(Compression::None))).expect("round trip");
        prop_assert_eq!(back, word);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn bit_flips_never_panic(crop in arb_crop(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = envelope_bytes(&crop.encode_body(Compression::Zstd));
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let _ = decode(&bytes);
    }
}

#[test]
fn box_overlap_measures() {
    let a = BoxPx {
        x1: 0.0,
        y1: 0.0,
        x2: 10.0,
        y2: 10.0,
    };
    let b = BoxPx {
        x1: 5.0,
        y1: 0.0,
        x2: 15.0,
        y2: 10.0,
    };
    assert_eq!((a.area(), a.intersection(&b)), (100.0, 50.0));
    assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
    let far = BoxPx {
        x1: 20.0,
        x2: 30.0,
        ..a
    };
    assert_eq!(a.iou(&far), 0.0);
    let empty = BoxPx { x2: 0.0, ..a };
    assert_eq!(empty.iou(&empty), 0.0, "no area, no division by zero");
}
