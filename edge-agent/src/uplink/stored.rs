//! How a crop is kept in a buffer record: its message id (receipts name it) and its encoded body.
//!
//! `[0xC2][id length u8][id][encoding u8][uncompressed size u32 le][body]` for a crop;
//! `[0xC3][id length u8][id][encoding u8][size u32 le][body]` for a word about a track (`seen`,
//! `ended`: counted apart from crops). Records written before receipts existed
//! (`[encoding u8][size u32][body]`) are still read: their id comes from the body.

use cascade_shared::wire::{
    self, BodyEncoding, Compression, Crop, CropEnvelope, EncodedBody, TrackEvent,
};
use prost::Message;

/// The format tag of records that carry their message id (no encoding byte is this large).
const WITH_ID: u8 = 0xC2;
/// The same for a word about a track.
const WORD_WITH_ID: u8 = 0xC3;

/// A buffered crop, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub message_id: String,
    pub body: EncodedBody,
    /// A word about a track (no picture), not a crop.
    pub word: bool,
}

/// The record for `crop`, its body encoded with `compression`.
pub fn store_crop(crop: &Crop, compression: Compression) -> Vec<u8> {
    let mut v = store_body(&crop.message_id, &crop.encode_body(compression));
    if crop.track_event() != TrackEvent::Crop {
        v[0] = WORD_WITH_ID;
    }
    v
}

/// The record for an encoded body and its message id (ids over 255 bytes are cut: the wire
/// protocol allows 128).
pub fn store_body(message_id: &str, body: &EncodedBody) -> Vec<u8> {
    let id = &message_id.as_bytes()[..message_id.len().min(255)];
    let mut v = Vec::with_capacity(7 + id.len() + body.body.len());
    v.push(WITH_ID);
    v.push(id.len() as u8);
    v.extend_from_slice(id);
    v.push(body.encoding as u8);
    v.extend_from_slice(&body.uncompressed_size.to_le_bytes());
    v.extend_from_slice(&body.body);
    v
}

/// The inverse of [`store_body`] (and of the older format); `None` for a damaged record.
pub fn load(stored: &[u8]) -> Option<Stored> {
    match stored.split_first()? {
        (&tag @ (WITH_ID | WORD_WITH_ID), rest) => {
            let (&len, rest) = rest.split_first()?;
            let (id, rest) = rest.split_at_checked(usize::from(len))?;
            Some(Stored {
                message_id: String::from_utf8(id.to_vec()).ok()?,
                body: load_body(rest)?,
                word: tag == WORD_WITH_ID,
            })
        }
        _ => {
            let body = load_body(stored)?;
            let envelope = CropEnvelope::wrap(&body, 0).encode_to_vec();
            let (_, crop) = wire::decode(&envelope).ok()?;
            Some(Stored {
                message_id: crop.message_id,
                body,
                word: false,
            })
        }
    }
}

fn load_body(stored: &[u8]) -> Option<EncodedBody> {
    let (&enc, rest) = stored.split_first()?;
    let (size, body) = rest.split_at_checked(4)?;
    let encoding = BodyEncoding::try_from(i32::from(enc)).ok()?;
    Some(EncodedBody {
        encoding,
        uncompressed_size: u32::from_le_bytes(size.try_into().ok()?),
        body: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crop() -> Crop {
        Crop {
            message_id: "0190-abc".into(),
            device_id: "dev".into(),
            camera_id: "cam".into(),
            frame_width: 100,
            frame_height: 100,
            r#box: Some(wire::BoxPx {
                x1: 1.0,
                y1: 1.0,
                x2: 10.0,
                y2: 10.0,
            }),
            crop_region: Some(wire::BoxPx {
                x1: 0.0,
                y1: 0.0,
                x2: 16.0,
                y2: 16.0,
            }),
            score: 0.5,
            jpeg: vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9],
            ..Crop::default()
        }
    }

    #[test]
    fn records_round_trip_with_their_id() {
        for compression in [Compression::None, Compression::Zstd] {
            let body = crop().encode_body(compression);
            let s = load(&store_crop(&crop(), compression)).expect("loads");
            assert!(!s.word);
            assert_eq!((s.message_id.as_str(), s.body), ("0190-abc", body));
        }
    }

    #[test]
    fn words_are_told_apart_from_crops() {
        let word = Crop {
            event: TrackEvent::Ended as i32,
            jpeg: Vec::new(),
            crop_region: None,
            ..crop()
        };
        let s = load(&store_crop(&word, Compression::None)).expect("loads");
        assert!(s.word);
        assert_eq!(s.body, word.encode_body(Compression::None));
    }

    #[test]
    fn records_of_the_older_format_are_read_and_their_id_recovered() {
        let body = crop().encode_body(Compression::Zstd);
        let mut old = vec![body.encoding as u8];
        old.extend_from_slice(&body.uncompressed_size.to_le_bytes());
        old.extend_from_slice(&body.body);
        let s = load(&old).expect("loads");
        assert_eq!((s.message_id.as_str(), s.body), ("0190-abc", body));
    }

    #[test]
    fn damaged_records_are_refused() {
        assert_eq!(load(&[]), None);
        assert_eq!(load(&[9, 0, 0, 0, 0]), None, "unknown encoding");
        assert_eq!(load(&[0, 1]), None, "truncated");
        assert_eq!(load(&[WITH_ID, 200, b'a']), None, "id cut short");
        assert_eq!(
            load(&[WITH_ID, 1, 0xFF, 0, 0, 0, 0, 0]),
            None,
            "id not UTF-8"
        );
        assert_eq!(
            load(&[0, 3, 0, 0, 0, 1, 2, 3]),
            None,
            "old format, body not a crop"
        );
    }
}
