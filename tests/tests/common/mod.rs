//! Crop messages the end-to-end tests publish as a device would.

#![allow(dead_code)] // each test binary uses a part

/// A valid crop message of the walker (a real JPEG the confirm model finds a person-like blob in).
pub fn good_crop(device: &str, id: &str) -> cascade_shared::wire::Crop {
    use cascade_shared::wire::BoxPx;
    let mut frame = edge_agent::decode::Frame::filled(320, 240, 48);
    for y in 70..166 {
        for x in 100..136 {
            frame.y[y * 320 + x] = 235;
        }
    }
    let bbox = BoxPx {
        x1: 100.0,
        y1: 70.0,
        x2: 136.0,
        y2: 166.0,
    };
    let c = edge_agent::crop::make(
        &frame,
        &bbox,
        &cascade_shared::config::edge::CropConfig::default(),
    )
    .expect("crop");
    cascade_shared::wire::Crop {
        message_id: id.into(),
        device_id: device.into(),
        camera_id: "cam-1".into(),
        sequence: 1,
        capture_time_us: 1_700_000_000_000_000,
        frame_width: 320,
        frame_height: 240,
        r#box: Some(bbox),
        crop_region: Some(c.region),
        class_id: 0,
        class_name: "person".into(),
        score: 0.9,
        model_name: "test".into(),
        model_version: "1".into(),
        track_id: 7,
        jpeg: c.jpeg,
        event: 0,
    }
}

pub fn envelope(crop: &cascade_shared::wire::Crop) -> Vec<u8> {
    use prost::Message;
    let body = crop.encode_body(cascade_shared::wire::Compression::None);
    cascade_shared::wire::CropEnvelope::wrap(&body, 1_700_000_000_100_000).encode_to_vec()
}

/// A valid crop of `bytes` or more: a noise picture (which JPEG cannot shrink) of `side` pixels.
pub fn large_crop(device: &str, id: &str, side: u16) -> cascade_shared::wire::Crop {
    let pixels = noise(usize::from(side) * usize::from(side) * 3, 0x2545_F491);
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 90)
        .encode(&pixels, side, side, jpeg_encoder::ColorType::Rgb)
        .expect("encodes");
    let s = f32::from(side);
    let whole = cascade_shared::wire::BoxPx {
        x1: 0.0,
        y1: 0.0,
        x2: s,
        y2: s,
    };
    cascade_shared::wire::Crop {
        frame_width: u32::from(side),
        frame_height: u32::from(side),
        r#box: Some(whole),
        crop_region: Some(whole),
        jpeg,
        event: 0,
        ..good_crop(device, id)
    }
}

/// `len` pseudo-random bytes (xorshift32 from `seed`, not zero): reproducible noise.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Every `every`-th decoded frame of the H.264 `.mp4` at `clip`, at most `n`.
pub fn frames(clip: &std::path::Path, every: usize, n: usize) -> Vec<cascade_infer::Frame> {
    use edge_agent::decode::{H264Decoder, VideoDecoder};
    use edge_agent::source::{Container, Mp4File};
    let mut src = Mp4File::open(clip).expect("clip opens");
    let mut dec = H264Decoder::new().expect("decoder");
    let (mut decoded, mut out, mut i) = (Vec::new(), Vec::new(), 0usize);
    while let Some(au) = src.next_unit().expect("reads") {
        dec.decode(&au, &mut decoded).expect("decodes");
        for f in decoded.drain(..) {
            if i.is_multiple_of(every) && out.len() < n {
                out.push(f);
            }
            i += 1;
        }
        if out.len() == n {
            break;
        }
    }
    out
}

/// The same detections, frame by frame, within float tolerance; the number found.
pub fn assert_same(
    a: &[Vec<cascade_infer::Detection>],
    b: &[Vec<cascade_infer::Detection>],
) -> usize {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.len(), y.len(), "frame {i}: {x:?} vs {y:?}");
        for (p, q) in x.iter().zip(y) {
            let d = [
                p.bbox.x1 - q.bbox.x1,
                p.bbox.y1 - q.bbox.y1,
                p.bbox.x2 - q.bbox.x2,
                p.bbox.y2 - q.bbox.y2,
            ];
            assert!(
                d.iter().all(|v| v.abs() < 1e-2),
                "frame {i}: {p:?} vs {q:?}"
            );
            assert!(
                (p.score - q.score).abs() < 1e-4,
                "frame {i}: {p:?} vs {q:?}"
            );
            assert_eq!(p.class_id, q.class_id);
        }
    }
    a.iter().map(Vec::len).sum()
}
