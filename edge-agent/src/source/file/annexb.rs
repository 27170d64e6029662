//! Annex-B `.h264` files: NAL units split on start codes and grouped into access units.

use std::path::{Path, PathBuf};

use super::Container;
use crate::source::{AccessUnit, SourceError};

/// Splits an Annex-B byte stream into NAL units (without their start codes).
pub fn split_nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(stream.len(), |n| n - 3);
        // Trailing zeros belong to the next 4-byte start code or are padding.
        while end > s && stream[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            units.push(&stream[s..end]);
        }
    }
    units
}

/// True when `nal` begins a new access unit (H.264 7.4.1.2.3, simplified): an AUD, SPS, PPS or
/// SEI, or a VCL slice whose first_mb_in_slice is 0.
fn starts_access_unit(nal: &[u8]) -> bool {
    let Some(&head) = nal.first() else {
        return false;
    };
    match head & 0x1F {
        6..=9 => true,
        1 | 5 => nal.get(1).is_some_and(|b| b & 0x80 != 0), // ue(v) first_mb == 0 is a single '1' bit
        _ => false,
    }
}

fn is_vcl(nal: &[u8]) -> bool {
    nal.first().is_some_and(|h| matches!(h & 0x1F, 1 | 5))
}

/// Groups NAL units into access units, each re-prefixed with 4-byte start codes.
pub fn group_access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut units: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut has_vcl = false;
    for nal in split_nal_units(stream) {
        if has_vcl && starts_access_unit(nal) {
            units.push(std::mem::take(&mut current));
            has_vcl = false;
        }
        current.extend_from_slice(&[0, 0, 0, 1]);
        current.extend_from_slice(nal);
        has_vcl |= is_vcl(nal);
    }
    if !current.is_empty() {
        units.push(current);
    }
    units
}

/// An Annex-B file, read whole and played at a configured frame rate (it carries no timestamps).
pub struct AnnexBFile {
    path: PathBuf,
    units: Vec<Vec<u8>>,
    next: usize,
    frame_us: i64,
    bytes_read: u64,
}

impl AnnexBFile {
    pub fn open(path: &Path, fps: f64) -> Result<Self, SourceError> {
        let bytes = std::fs::read(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::from_bytes(path, &bytes, fps))
    }

    pub fn from_bytes(path: &Path, bytes: &[u8], fps: f64) -> Self {
        Self {
            path: path.to_path_buf(),
            units: group_access_units(bytes),
            next: 0,
            frame_us: (1e6 / fps.max(0.001)).round() as i64,
            bytes_read: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Container for AnnexBFile {
    fn next_unit(&mut self) -> Result<Option<AccessUnit>, SourceError> {
        let Some(data) = self.units.get(self.next) else {
            return Ok(None);
        };
        // Frames are in decode order; without timestamps we number them as they come.
        let pts_us = self.next as i64 * self.frame_us;
        self.next += 1;
        self.bytes_read += data.len() as u64;
        Ok(Some(AccessUnit {
            data: data.clone(),
            pts_us,
            duration_us: self.frame_us,
        }))
    }

    fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let s = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 0x88, 4,
        ];
        let units = split_nal_units(&s);
        assert_eq!(
            units,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 0x88, 4][..]]
        );
    }

    #[test]
    fn groups_slices_into_access_units() {
        // SPS, PPS, IDR slice (first_mb 0), P slice (first_mb 0) -> two access units.
        let s = [
            0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 0x88, 0, 0, 1, 0x41, 0x9A,
        ];
        let aus = group_access_units(&s);
        assert_eq!(aus.len(), 2);
        assert_eq!(aus[1], vec![0, 0, 0, 1, 0x41, 0x9A]);
    }

    #[test]
    fn garbage_yields_no_panic() {
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) % 3).collect();
            let _ = group_access_units(&junk);
        }
    }
}
