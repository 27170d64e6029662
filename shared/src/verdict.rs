//! Verdicts: the analyzer tells each device which of its tracks the cloud has confirmed, on
//! `cascade/v1/{device}/verdicts` (QoS 1, JSON), so the device stops sending a track's crops close
//! together and slows to its re-upload interval.
//!
//! `{"confirmed":[{"camera_id":"front","track_id":17}]}`. Unknown fields are ignored (a newer
//! analyzer may say more; an older device must still read what it knows). Decoding untrusted
//! bytes never panics and bounds every size.

use serde::{Deserialize, Serialize};

/// Largest verdict message accepted.
pub const MAX_VERDICT_BYTES: usize = 64 * 1024;
/// Most tracks named in one message.
pub const MAX_VERDICT_TRACKS: usize = 256;

/// One track of one camera.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TrackRef {
    pub camera_id: String,
    pub track_id: u64,
}

/// Tracks the cloud has confirmed (a person, by the confirm model).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    #[serde(default)]
    pub confirmed: Vec<TrackRef>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerdictError {
    #[error("verdicts of {0} bytes are over the {MAX_VERDICT_BYTES} byte limit")]
    TooLarge(usize),
    #[error("verdicts are not valid JSON: {0}")]
    Malformed(String),
    #[error("verdicts name {0} tracks, over the {MAX_VERDICT_TRACKS} limit")]
    TooMany(usize),
    #[error("verdicts name camera {0:?}, which is not a valid camera id")]
    BadCamera(String),
}

impl Verdicts {
    pub fn encode(&self) -> Vec<u8> {
        // A struct of strings and integers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, VerdictError> {
        if bytes.len() > MAX_VERDICT_BYTES {
            return Err(VerdictError::TooLarge(bytes.len()));
        }
        let v: Self =
            serde_json::from_slice(bytes).map_err(|e| VerdictError::Malformed(e.to_string()))?;
        if v.confirmed.len() > MAX_VERDICT_TRACKS {
            return Err(VerdictError::TooMany(v.confirmed.len()));
        }
        if let Some(bad) = v
            .confirmed
            .iter()
            .find(|t| !crate::topics::valid_id(&t.camera_id))
        {
            return Err(VerdictError::BadCamera(bad.camera_id.clone()));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trips_and_ignores_unknown_fields() {
        let v = Verdicts {
            confirmed: vec![TrackRef {
                camera_id: "front".into(),
                track_id: 17,
            }],
        };
        assert_eq!(Verdicts::decode(&v.encode()), Ok(v.clone()));
        let newer = br#"{"confirmed":[{"camera_id":"front","track_id":17,"score":0.9}],"x":1}"#;
        assert_eq!(Verdicts::decode(newer), Ok(v));
    }

    #[test]
    fn refuses_what_it_cannot_trust() {
        assert!(matches!(
            Verdicts::decode(&vec![b' '; MAX_VERDICT_BYTES + 1]),
            Err(VerdictError::TooLarge(_))
        ));
        assert!(matches!(
            Verdicts::decode(b"{\"confirmed\":3}"),
            Err(VerdictError::Malformed(_))
        ));
        let bad = br#"{"confirmed":[{"camera_id":"a/b","track_id":1}]}"#;
        assert_eq!(
            Verdicts::decode(bad),
            Err(VerdictError::BadCamera("a/b".into()))
        );
        let many = Verdicts {
            confirmed: (0..=MAX_VERDICT_TRACKS as u64)
                .map(|track_id| TrackRef {
                    camera_id: "c".into(),
                    track_id,
                })
                .collect(),
        };
        assert_eq!(
            Verdicts::decode(&many.encode()),
            Err(VerdictError::TooMany(MAX_VERDICT_TRACKS + 1))
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Verdicts::decode(&bytes);
        }
    }
}
