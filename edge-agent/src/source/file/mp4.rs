//! MP4 files, demuxed with `re_mp4`; AVC length-prefixed samples are converted to Annex B.

use std::path::{Path, PathBuf};

use super::Container;
use crate::source::{AccessUnit, SourceError};

pub struct Mp4File {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Parameter sets from the avcC box, Annex B, sent before the first sample and after a rewind.
    parameter_sets: Vec<u8>,
    length_size: usize,
    samples: Vec<re_mp4::Sample>,
    next: usize,
    bytes_read: u64,
}

impl Mp4File {
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let bytes = std::fs::read(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, bytes)
    }

    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, SourceError> {
        let bad = |reason: String| SourceError::Mp4 {
            path: path.to_path_buf(),
            reason,
        };
        let mp4 = re_mp4::Mp4::read_bytes(&bytes).map_err(|e| bad(e.to_string()))?;
        let (track, avcc) = mp4
            .tracks()
            .values()
            .find_map(|t| match &t.trak(&mp4).mdia.minf.stbl.stsd.contents {
                re_mp4::StsdBoxContent::Avc1(avc1) => Some((t, avc1.avcc.contents.clone())),
                _ => None,
            })
            .ok_or_else(|| SourceError::NoH264 {
                path: path.to_path_buf(),
            })?;
        let mut parameter_sets = Vec::new();
        for nal in avcc
            .sequence_parameter_sets
            .iter()
            .chain(&avcc.picture_parameter_sets)
        {
            parameter_sets.extend_from_slice(&[0, 0, 0, 1]);
            parameter_sets.extend_from_slice(&nal.bytes);
        }
        let samples = track.samples.clone();
        if let Some(s) = samples
            .iter()
            .find(|s| s.offset.saturating_add(s.size) > bytes.len() as u64)
        {
            return Err(bad(format!(
                "sample {} lies past the end of the file",
                s.id
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            parameter_sets,
            length_size: usize::from(avcc.length_size_minus_one & 3) + 1,
            samples,
            next: 0,
            bytes_read: 0,
        })
    }

    /// Converts one AVC sample (length-prefixed NAL units) to Annex B.
    fn to_annex_b(&self, sample: &[u8], out: &mut Vec<u8>) -> Result<(), SourceError> {
        let mut rest = sample;
        while !rest.is_empty() {
            if rest.len() < self.length_size {
                return Err(self.bad("truncated NAL length prefix"));
            }
            let (len_bytes, tail) = rest.split_at(self.length_size);
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len > tail.len() {
                return Err(self.bad("NAL unit runs past the end of its sample"));
            }
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(&tail[..len]);
            rest = &tail[len..];
        }
        Ok(())
    }

    fn bad(&self, reason: &str) -> SourceError {
        SourceError::Mp4 {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }
}

fn to_us(t: i64, timescale: u64) -> i64 {
    let ts = i128::from(timescale.max(1));
    i64::try_from(i128::from(t) * 1_000_000 / ts).unwrap_or(i64::MAX)
}

impl Container for Mp4File {
    fn next_unit(&mut self) -> Result<Option<AccessUnit>, SourceError> {
        let Some(sample) = self.samples.get(self.next).copied() else {
            return Ok(None);
        };
        let mut data = Vec::with_capacity(sample.size as usize + 64);
        if self.next == 0 {
            data.extend_from_slice(&self.parameter_sets);
        }
        self.next += 1;
        self.to_annex_b(&self.bytes[sample.byte_range()], &mut data)?;
        self.bytes_read += sample.size;
        Ok(Some(AccessUnit {
            data,
            pts_us: to_us(sample.composition_timestamp, sample.timescale),
            duration_us: to_us(
                i64::try_from(sample.duration).unwrap_or(0),
                sample.timescale,
            ),
        }))
    }

    fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
}
