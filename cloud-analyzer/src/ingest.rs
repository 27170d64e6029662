//! Validating crops from the wire: topic, envelope (schema version, sizes, zstd bombs), fields,
//! device id in the payload against the topic, and a JPEG that decodes. Never panics.

use cascade_infer::RgbImage;
use cascade_shared::topics;
use cascade_shared::wire::{self, Crop, CropEnvelope};

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

/// Why a message was refused. `parsed`: the payload was a well-formed crop message (it goes to
/// the dead letters).
#[derive(Debug, Clone)]
pub struct Rejection {
    pub reason: &'static str,
    pub detail: String,
    pub device_id: Option<String>,
    pub parsed: bool,
}

pub fn validate(topic: &str, payload: &[u8]) -> Result<Valid, Rejection> {
    let reject = |reason, detail: String, device_id: Option<String>, parsed| Rejection {
        reason,
        detail,
        device_id,
        parsed,
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
        return Err(reject(
            "device_mismatch",
            detail,
            Some(topic_device.to_string()),
            true,
        ));
    }
    if let Err(e) = decode_jpeg(&crop.jpeg) {
        return Err(reject(
            "jpeg",
            e.to_string(),
            Some(topic_device.to_string()),
            true,
        ));
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
            ..Crop::default()
        }
    }

    fn payload(c: &Crop) -> Vec<u8> {
        CropEnvelope::wrap(&c.encode_body(Compression::None), 1).encode_to_vec()
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
    fn parseable_rejections_carry_the_crop_for_the_dead_letters() {
        let r = validate("cascade/v1/dev/crops", &payload(&crop("other", jpeg())))
            .expect_err("refused");
        assert!(r.parsed);
        let r = validate("cascade/v1/dev/crops", &[0xFF; 10]).expect_err("refused");
        assert!(!r.parsed);
    }
}
