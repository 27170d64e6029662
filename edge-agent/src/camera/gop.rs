//! The main-stream cache: the coded access units of the last two groups of pictures (from a key
//! frame on), each with its capture time. A crop at full resolution decodes only the units from
//! the key frame before the wanted picture up to it; nothing else of the main stream is ever
//! decoded, so it costs memory for coded bytes (a few MB) and CPU only when a crop is uploaded.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use crate::decode::{Frame, H264Decoder, VideoDecoder};
use crate::source::{AccessUnit, split_nal_units};

/// Why no main-stream frame could be had (the crop then comes from the sub-stream, counted by
/// this reason in `main_stream_fallbacks_total`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MainMiss {
    #[error("the main stream has delivered no key frame yet")]
    Empty,
    #[error("the nearest main-stream picture is {gap_ms} ms away from the detected one")]
    TooFar { gap_ms: i64 },
    #[error("the main stream's picture did not decode: {0}")]
    Decode(String),
}

impl MainMiss {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooFar { .. } => "too_far",
            Self::Decode(_) => "decode",
        }
    }
}

#[derive(Debug)]
struct Cached {
    capture_us: i64,
    au: AccessUnit,
    key: bool,
    picture: bool,
}

#[derive(Debug, Default)]
struct Inner {
    units: VecDeque<Cached>,
    bytes: usize,
    /// The latest SPS and PPS (Annex B), put in front of key frames that come without them (MP4
    /// files keep them out of band).
    params: Vec<u8>,
}

#[derive(Debug)]
pub struct GopCache {
    inner: Mutex<Inner>,
    max_bytes: usize,
    /// The farthest a main-stream picture may be from the detected one, microseconds.
    tolerance_us: i64,
}

impl GopCache {
    pub fn new(max_bytes: usize, tolerance_us: i64) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_bytes,
            tolerance_us,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `au` (captured at `capture_us`). Units before the first key frame are useless and
    /// dropped; a new key frame drops every group but the one before it; over `max_bytes` the
    /// oldest group goes too.
    pub fn push(&self, capture_us: i64, mut au: AccessUnit) {
        let (mut key, mut picture, mut params) = (false, false, Vec::new());
        for nal in split_nal_units(&au.data) {
            match nal[0] & 0x1F {
                5 => (key, picture) = (true, true),
                1 => picture = true,
                7 | 8 => {
                    params.extend_from_slice(&[0, 0, 0, 1]);
                    params.extend_from_slice(nal);
                }
                _ => {}
            }
        }
        let mut inner = self.lock();
        if !params.is_empty() {
            inner.params = params;
        } else if key && !inner.params.is_empty() {
            let mut data = inner.params.clone();
            data.extend_from_slice(&au.data);
            au.data = data;
        }
        if inner.units.is_empty() && !key {
            return;
        }
        if key {
            let keys = inner.units.iter().filter(|u| u.key).count();
            if keys >= 2 {
                drop_oldest_group(&mut inner);
            }
        }
        inner.bytes += au.data.len();
        inner.units.push_back(Cached {
            capture_us,
            au,
            key,
            picture,
        });
        while inner.bytes > self.max_bytes && inner.units.iter().filter(|u| u.key).count() > 1 {
            drop_oldest_group(&mut inner);
        }
    }

    /// Forgets everything (the main stream reconnected: its old units cannot be continued).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.units.clear();
        inner.bytes = 0;
        inner.params.clear();
    }

    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The main-stream picture nearest to `capture_us`, decoded from its group's key frame.
    pub fn frame_at(&self, capture_us: i64) -> Result<Frame, MainMiss> {
        let (units, pts) = self.units_for(capture_us)?;
        let mut dec = H264Decoder::new().map_err(|e| MainMiss::Decode(e.to_string()))?;
        let mut out = Vec::new();
        for au in &units {
            dec.decode(au, &mut out)
                .map_err(|e| MainMiss::Decode(e.to_string()))?;
            if let Some(f) = out.iter().position(|f| f.pts_us == pts) {
                return Ok(out.swap_remove(f));
            }
        }
        dec.flush(&mut out)
            .map_err(|e| MainMiss::Decode(e.to_string()))?;
        out.into_iter()
            .find(|f| f.pts_us == pts)
            .ok_or_else(|| MainMiss::Decode("the picture was not output".into()))
    }

    /// Copies of the units to decode (from the wanted picture's key frame on) and its timestamp.
    fn units_for(&self, capture_us: i64) -> Result<(Vec<AccessUnit>, i64), MainMiss> {
        let inner = self.lock();
        let nearest = inner
            .units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.picture)
            .min_by_key(|(_, u)| (u.capture_us - capture_us).abs())
            .ok_or(MainMiss::Empty)?;
        let (at, unit) = nearest;
        let gap = (unit.capture_us - capture_us).abs();
        if gap > self.tolerance_us {
            return Err(MainMiss::TooFar { gap_ms: gap / 1000 });
        }
        let key = inner
            .units
            .iter()
            .take(at + 1)
            .rposition(|u| u.key)
            .unwrap_or(0);
        // Later units too: with B-frames the wanted picture may be output only after them.
        let units = inner.units.iter().skip(key).map(|u| u.au.clone()).collect();
        Ok((units, unit.au.pts_us))
    }
}

fn drop_oldest_group(inner: &mut Inner) {
    while let Some(u) = inner.units.pop_front() {
        inner.bytes -= u.au.data.len();
        if inner.units.front().is_some_and(|n| n.key) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::source::{Container, Mp4File};

    const WALKER_480: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/walker_480.mp4"
    );

    /// The 480x360 walker clip (10 fps, key frame every 30) cached with capture = 1e9 + pts.
    fn cached(max_bytes: usize) -> GopCache {
        let cache = GopCache::new(max_bytes, 150_000);
        let mut src = Mp4File::open(Path::new(WALKER_480)).expect("opens");
        while let Some(au) = src.next_unit().expect("reads") {
            cache.push(1_000_000_000 + au.pts_us, au);
        }
        cache
    }

    #[test]
    fn the_nearest_picture_decodes_from_its_key_frame() {
        let cache = cached(usize::MAX);
        // The clip's last two groups (frames 30-79) are kept: 4.0 s is in them.
        let f = cache.frame_at(1_000_000_000 + 4_030_000).expect("a frame");
        assert_eq!((f.width, f.height, f.pts_us), (480, 360, 4_000_000));
        assert!(f.y[177 * 480 + 237] > 200, "the walker is in the picture");
    }

    #[test]
    fn old_groups_are_dropped_and_misses_are_told_apart() {
        let cache = cached(usize::MAX);
        assert_eq!(
            cache.frame_at(1_000_000_000 + 1_000_000).map(|f| f.pts_us),
            Err(MainMiss::TooFar { gap_ms: 2_000 }),
            "frames before the previous key frame are gone"
        );
        assert_eq!(
            GopCache::new(1 << 20, 1).frame_at(0).map(|f| f.pts_us),
            Err(MainMiss::Empty)
        );
        let before = cache.bytes();
        cache.clear();
        assert_eq!((cache.bytes(), before > 0), (0, true));
    }

    #[test]
    fn the_byte_cap_keeps_only_the_newest_group() {
        let cache = cached(1);
        assert!(cache.frame_at(1_000_000_000 + 7_900_000).is_ok());
        assert!(matches!(
            cache.frame_at(1_000_000_000 + 5_000_000),
            Err(MainMiss::TooFar { .. })
        ));
    }
}
