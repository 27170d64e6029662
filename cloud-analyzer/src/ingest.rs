//! Validating crops from the wire: topic, envelope (schema version, sizes, zstd bombs), fields,
//! device id in the payload against the topic, and a JPEG that decodes. Never panics.

use cascade_infer::RgbImage;
use cascade_shared::topics;
use cascade_shared::wire::{self, Crop, CropEnvelope, TrackEvent};

/// Largest JPEG pixel count accepted (guards the decoder's allocation).
const MAX_JPEG_PIXELS: usize = 4096 * 4096;

/// A crop that passed every check.
#[derive(Debug, Clone)]
pub struct Valid {
    pub envelope: CropEnvelope,
    pub crop: Crop,
}

impl Valid {
    /// The stored form waiting for the confirm model.
    pub fn into_pending(self) -> crate::store::Pending {
        let c = self.crop;
        let f = |b: Option<cascade_shared::wire::BoxPx>| {
            b.map_or([0.0; 4], |b| [b.x1, b.y1, b.x2, b.y2])
        };
        crate::store::Pending {
            bbox: f(c.r#box),
            region: f(c.crop_region),
            message_id: c.message_id,
            device_id: c.device_id,
            camera_id: c.camera_id,
            track_id: c.track_id,
            capture_time_us: c.capture_time_us,
            upload_time_us: self.envelope.upload_time_us,
            edge_score: c.score,
            jpeg: c.jpeg,
        }
    }
}

/// A word of the edge about a track (no picture): still in view, or left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub message_id: String,
    pub device_id: String,
    pub camera_id: String,
    pub track_id: u64,
    pub event: TrackEvent,
}

impl Valid {
    /// The word this message is, when it is one rather than a crop.
    pub fn word(&self) -> Option<Word> {
        let c = &self.crop;
        let event = c.track_event();
        (event != TrackEvent::Crop).then(|| Word {
            message_id: c.message_id.clone(),
            device_id: c.device_id.clone(),
            camera_id: c.camera_id.clone(),
            track_id: c.track_id,
            event,
        })
    }
}

/// Why a message was refused. `parsed`: the payload was a well-formed crop message (it goes to
/// the dead letters).
#[derive(Debug, Clone)]
pub struct Rejection {
    pub reason: &'static str,
    pub detail: String,
    pub device_id: Option<String>,
    pub parsed: bool,
    /// The crop's message id, when the payload was a crop message (its receipt names it).
    pub message_id: Option<String>,
}

pub fn validate(topic: &str, payload: &[u8]) -> Result<Valid, Rejection> {
    let reject = |reason, detail: String, device_id: Option<String>, parsed| Rejection {
        reason,
        detail,
        device_id,
        parsed,
        message_id: None,
    };
    let Some(topic_device) = topics::device_of_crops_topic(topic) else {
        return Err(reject(
            "topic",
            format!("{topic:?} is not cascade/v1/{{device}}/crops"),
            None,
            false,
        ));
    };
    let (envelope, crop) = wire::decode(payload).map_err(|e| {
        reject(
            e.reason(),
            e.to_string(),
            Some(topic_device.to_string()),
            false,
        )
    })?;
    if crop.device_id != topic_device {
        let detail = format!(
            "payload device_id {:?} is not the topic's {:?}",
            crop.device_id, topic_device
        );
        return Err(Rejection {
            message_id: Some(crop.message_id),
            ..reject(
                "device_mismatch",
                detail,
                Some(topic_device.to_string()),
                true,
            )
        });
    }
    if crop.track_event() == TrackEvent::Crop
        && let Err(e) = decode_jpeg(&crop.jpeg)
    {
        return Err(Rejection {
            message_id: Some(crop.message_id),
            ..reject("jpeg", e.to_string(), Some(topic_device.to_string()), true)
        });
    }
    Ok(Valid { envelope, crop })
}

/// Why a crop's JPEG was refused.
#[derive(Debug, thiserror::Error)]
pub enum JpegError {
    #[error("not a JPEG: {0}")]
    Headers(#[source] zune_jpeg::errors::DecodeErrors),
    #[error("JPEG without dimensions")]
    NoDimensions,
    #[error("JPEG of {width}x{height} pixels is out of range")]
    Size { width: usize, height: usize },
    #[error("corrupt JPEG: {0}")]
    Corrupt(#[source] zune_jpeg::errors::DecodeErrors),
    #[error("JPEG decoded to {got} bytes, expected {expected}")]
    Length { got: usize, expected: usize },
    #[error(
        "JPEG of {width}x{height} pixels carries {scan_bytes} bytes of picture data, fewer than its \
         {blocks} 8x8 blocks need (a header without a picture)"
    )]
    NoPicture {
        width: usize,
        height: usize,
        scan_bytes: usize,
        blocks: usize,
    },
    #[error("JPEG does not end with its end-of-image marker (cut short)")]
    Truncated,
}

/// Bytes between the first start-of-scan segment and the end-of-image marker, or `None` when the
/// file has no scan or does not end with EOI. Only marker structure is read, never pixels.
fn scan_bytes(bytes: &[u8]) -> Option<usize> {
    if !bytes.starts_with(&[0xFF, 0xD8]) || !bytes.ends_with(&[0xFF, 0xD9]) {
        return None;
    }
    // Walk the header's segments (marker, big-endian length) up to the first start of scan.
    let mut at = 2;
    loop {
        while bytes.get(at..at + 2)? == [0xFF, 0xFF] {
            at += 1; // fill bytes before a marker
        }
        let seg = bytes.get(at..at + 4)?;
        if seg[0] != 0xFF {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([seg[2], seg[3]]));
        if seg[1] == 0xDA {
            return (bytes.len() - 2).checked_sub(at + 2 + len);
        }
        at += 2 + len;
    }
}

/// Decodes a JPEG to RGB, refusing absurd dimensions before allocating.
pub fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage, JpegError> {
    use zune_jpeg::JpegDecoder;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut d = JpegDecoder::new_with_options(std::io::Cursor::new(bytes), options);
    d.decode_headers().map_err(JpegError::Headers)?;
    let (w, h) = d.dimensions().ok_or(JpegError::NoDimensions)?;
    if w == 0 || h == 0 || w.saturating_mul(h) > MAX_JPEG_PIXELS {
        return Err(JpegError::Size {
            width: w,
            height: h,
        });
    }
    // Every 8x8 block costs at least a bit (its DC and end-of-block codes): a forged header
    // announcing a large picture with nothing behind it is refused before any allocation.
    let scan = scan_bytes(bytes).ok_or(JpegError::Truncated)?;
    let blocks = w.div_ceil(8) * h.div_ceil(8);
    if scan * 8 < blocks {
        return Err(JpegError::NoPicture {
            width: w,
            height: h,
            scan_bytes: scan,
            blocks,
        });
    }
    let data = d.decode().map_err(JpegError::Corrupt)?;
    if data.len() != w * h * 3 {
        return Err(JpegError::Length {
            got: data.len(),
            expected: w * h * 3,
        });
    }
    Ok(RgbImage {
        width: w,
        height: h,
        data,
    })
}

#[cfg(test)]
mod tests {
    use cascade_shared::wire::{BoxPx, Compression};
    use prost::Message;

    use super::*;

    /// A real 16x16 JPEG.
    fn jpeg() -> Vec<u8> {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 80)
            .encode(&[200u8; 16 * 16 * 3], 16, 16, jpeg_encoder::ColorType::Rgb)
            .expect("encodes");
        out
    }

    fn crop(device: &str, jpeg: Vec<u8>) -> Crop {
        Crop {
            message_id: "m-1".into(),
            device_id: device.into(),
            camera_id: "c".into(),
            frame_width: 100,
            frame_height: 100,
            r#box: Some(BoxPx {
                x1: 1.0,
                y1: 1.0,
                x2: 10.0,
                y2: 10.0,
            }),
            crop_region: Some(BoxPx {
                x1: 0.0,
                y1: 0.0,
                x2: 16.0,
                y2: 16.0,
            }),
            score: 0.5,
            jpeg,
            event: 0,
            ..Crop::default()
        }
    }

    fn payload(c: &Crop) -> Vec<u8> {
        CropEnvelope::wrap(&c.encode_body(Compression::None), 1).encode_to_vec()
    }

    #[test]
    fn a_track_word_passes_without_a_picture_and_says_what_it_is() {
        let word = Crop {
            event: TrackEvent::Ended as i32,
            crop_region: None,
            ..crop("dev", Vec::new())
        };
        let v = validate("cascade/v1/dev/crops", &payload(&word)).expect("valid");
        let w = v.word().expect("a word");
        assert_eq!((w.event, w.track_id), (TrackEvent::Ended, word.track_id));
        let c = validate("cascade/v1/dev/crops", &payload(&crop("dev", jpeg()))).expect("valid");
        assert_eq!(c.word(), None, "a crop is no word");
    }

    #[test]
    fn a_good_crop_passes() {
        let v = validate("cascade/v1/dev/crops", &payload(&crop("dev", jpeg()))).expect("valid");
        assert_eq!(v.crop.device_id, "dev");
    }

    #[test]
    fn each_bad_input_has_its_reason() {
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("cascade/v1/dev/crops", vec![0xFF; 64], "malformed"),
            (
                "cascade/v1/dev/crops",
                payload(&crop("other", jpeg())),
                "device_mismatch",
            ),
            (
                "cascade/v1/dev/crops",
                payload(&crop("dev", vec![1, 2, 3])),
                "jpeg",
            ),
            (
                "cascade/v1/dev/status",
                payload(&crop("dev", jpeg())),
                "topic",
            ),
            (
                "cascade/v1/dev/crops",
                vec![0; wire::MAX_ENVELOPE_BYTES + 1],
                "too_large",
            ),
        ];
        for (topic, bytes, reason) in cases {
            let r = validate(topic, &bytes).expect_err("refused");
            assert_eq!(r.reason, reason, "{}", r.detail);
        }
        let mut truncated = payload(&crop("dev", jpeg()));
        truncated.truncate(truncated.len() / 2);
        assert!(validate("cascade/v1/dev/crops", &truncated).is_err());
    }

    #[test]
    fn a_forged_header_without_a_picture_is_refused_before_decoding() {
        // A real JPEG's header, its frame size patched to 4096x4096, its scan data cut to 4 bytes.
        let real = jpeg();
        let sof = real
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("baseline SOF");
        let mut forged = real.clone();
        forged[sof + 5..sof + 9].copy_from_slice(&[0x10, 0x00, 0x10, 0x00]);
        let sos = forged
            .windows(2)
            .rposition(|w| w == [0xFF, 0xDA])
            .expect("SOS");
        let len = usize::from(u16::from_be_bytes([forged[sos + 2], forged[sos + 3]]));
        forged.truncate(sos + 2 + len + 4);
        forged.extend_from_slice(&[0xFF, 0xD9]);
        let e = decode_jpeg(&forged).expect_err("refused");
        assert!(matches!(e, JpegError::NoPicture { width: 4096, .. }), "{e}");
        let mut cut = real.clone();
        cut.truncate(real.len() - 2); // the end-of-image marker
        assert!(matches!(decode_jpeg(&cut), Err(JpegError::Truncated)));
        assert!(decode_jpeg(&real).is_ok(), "the real one still passes");
    }

    #[test]
    fn parseable_rejections_carry_the_crop_for_the_dead_letters() {
        let r = validate("cascade/v1/dev/crops", &payload(&crop("other", jpeg())))
            .expect_err("refused");
        assert!(r.parsed);
        let r = validate("cascade/v1/dev/crops", &[0xFF; 10]).expect_err("refused");
        assert!(!r.parsed);
    }
}
