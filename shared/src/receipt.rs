//! Delivery receipts: the analyzer's word that it holds a device's crops (stored, or refused for
//! good), published on `cascade/v1/{device}/receipts` (QoS 1, JSON). The edge deletes a crop
//! from its buffer only on a receipt naming its message id; a PUBACK only means the broker has it.
//!
//! `{"stored":["<message id>",...],"rejected":["<message id>",...]}`. Decoding untrusted bytes
//! never panics and bounds every size.

use serde::{Deserialize, Serialize};

/// Largest receipt accepted.
pub const MAX_RECEIPT_BYTES: usize = 64 * 1024;
/// Most ids in one receipt (both lists together); [`Receipt::split`] keeps under it.
pub const MAX_RECEIPT_IDS: usize = 512;
/// Longest message id (the wire protocol's text limit).
pub const MAX_ID_LEN: usize = 128;

/// One receipt: message ids the analyzer has stored, and ids it refused for good (malformed
/// pictures, a device mismatch): the edge stops sending both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    #[serde(default)]
    pub stored: Vec<String>,
    #[serde(default)]
    pub rejected: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("receipt of {0} bytes is over the {MAX_RECEIPT_BYTES} byte limit")]
    TooLarge(usize),
    #[error("receipt is not valid JSON: {0}")]
    Malformed(String),
    #[error("receipt names {0} ids, over the {MAX_RECEIPT_IDS} limit")]
    TooManyIds(usize),
    #[error("receipt holds an empty or over-long message id ({0} bytes)")]
    BadId(usize),
}

impl Receipt {
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty() && self.rejected.is_empty()
    }

    pub fn len(&self) -> usize {
        self.stored.len() + self.rejected.len()
    }

    pub fn encode(&self) -> Vec<u8> {
        // A struct of string lists always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ReceiptError> {
        if bytes.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::TooLarge(bytes.len()));
        }
        let r: Self =
            serde_json::from_slice(bytes).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        if r.len() > MAX_RECEIPT_IDS {
            return Err(ReceiptError::TooManyIds(r.len()));
        }
        if let Some(bad) = r
            .stored
            .iter()
            .chain(&r.rejected)
            .find(|id| id.is_empty() || id.len() > MAX_ID_LEN)
        {
            return Err(ReceiptError::BadId(bad.len()));
        }
        Ok(r)
    }

    /// Splits into receipts of at most [`MAX_RECEIPT_IDS`] ids each (which also keeps them under
    /// [`MAX_RECEIPT_BYTES`] for ids of up to 120 bytes), dropping ids no receipt may carry.
    pub fn split(self) -> Vec<Self> {
        let ok = |id: &String| !id.is_empty() && id.len() <= MAX_ID_LEN;
        let tagged = self
            .stored
            .into_iter()
            .filter(ok)
            .map(|id| (true, id))
            .chain(self.rejected.into_iter().filter(ok).map(|id| (false, id)));
        // `{"stored":[],"rejected":[]}`, then each id as a JSON string and a comma.
        const EMPTY: usize = 27;
        let mut out: Vec<Self> = Vec::new();
        let mut size = 0usize;
        for (stored, id) in tagged {
            let cost = serde_json::to_string(&id).map_or(usize::MAX, |j| j.len() + 1);
            let fits = out.last().is_some_and(|r| {
                r.len() < MAX_RECEIPT_IDS && size.saturating_add(cost) < MAX_RECEIPT_BYTES
            });
            if !fits {
                out.push(Self::default());
                size = EMPTY;
            }
            size = size.saturating_add(cost);
            if let Some(r) = out.last_mut() {
                if stored {
                    r.stored.push(id)
                } else {
                    r.rejected.push(id)
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_input() {
        let r = Receipt {
            stored: vec!["a".into(), "b".into()],
            rejected: vec!["c".into()],
        };
        assert_eq!(Receipt::decode(&r.encode()), Ok(r));
        assert_eq!(
            Receipt::decode(br#"{"stored":["x"]}"#).map(|r| r.len()),
            Ok(1)
        );
        assert!(matches!(
            Receipt::decode(b"{"),
            Err(ReceiptError::Malformed(_))
        ));
        assert!(matches!(
            Receipt::decode(br#"{"stored":[],"extra":1}"#),
            Err(ReceiptError::Malformed(_))
        ));
        assert_eq!(
            Receipt::decode(br#"{"stored":[""]}"#),
            Err(ReceiptError::BadId(0))
        );
        let big = vec![b' '; MAX_RECEIPT_BYTES + 1];
        assert_eq!(
            Receipt::decode(&big),
            Err(ReceiptError::TooLarge(big.len()))
        );
        let many = Receipt {
            stored: (0..=MAX_RECEIPT_IDS).map(|i| i.to_string()).collect(),
            rejected: vec![],
        };
        assert_eq!(
            Receipt::decode(&many.encode()),
            Err(ReceiptError::TooManyIds(MAX_RECEIPT_IDS + 1))
        );
    }

    proptest! {
        /// Splitting keeps every valid id exactly once, in its own list, and each part decodes.
        #[test]
        fn split_keeps_every_id_and_each_part_decodes(
            stored in proptest::collection::vec("[a-z0-9-]{1,120}", 0..1500),
            rejected in proptest::collection::vec("[a-z0-9-]{1,40}", 0..50),
        ) {
            let all = Receipt { stored: stored.clone(), rejected: rejected.clone() };
            let parts = all.split();
            let mut s = Vec::new();
            let mut r = Vec::new();
            for p in parts {
                prop_assert!(!p.is_empty());
                let bytes = p.encode();
                prop_assert_eq!(Receipt::decode(&bytes), Ok(p.clone()));
                s.extend(p.stored);
                r.extend(p.rejected);
            }
            prop_assert_eq!(s, stored);
            prop_assert_eq!(r, rejected);
        }

        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Receipt::decode(&bytes);
        }
    }
}
