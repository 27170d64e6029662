//! Capture: where H.264 access units come from. Every source yields Annex-B access units in
//! decode order, with presentation timestamps in microseconds from the start of the stream.
//! RTSP (`retina`, AVC length-prefixed NALs converted to Annex B) and V4L2 (`v4l`) slot in here
//! behind the same trait.

mod annexb;
mod mp4;

use std::path::{Path, PathBuf};

pub use annexb::{AnnexBFile, split_nal_units};
pub use mp4::Mp4File;

/// One coded picture (all its NAL units), Annex B, with start codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub data: Vec<u8>,
    /// Presentation time, microseconds from the stream's start.
    pub pts_us: i64,
    /// Duration of this picture, microseconds (used for real-time pacing).
    pub duration_us: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a usable MP4: {reason}")]
    Mp4 { path: PathBuf, reason: String },
    #[error("{path}: has no H.264 (avc1) video track; cascade decodes H.264 only")]
    NoH264 { path: PathBuf },
    #[error("{path}: unsupported file type (expected .mp4, .m4v, .h264 or .264)")]
    UnknownType { path: PathBuf },
}

/// A stream of access units.
pub trait Source: Send {
    /// The next access unit in decode order, or `None` at the end of the stream.
    fn next_unit(&mut self) -> Result<Option<AccessUnit>, SourceError>;
    /// Starts again from the beginning (for looping file sources).
    fn rewind(&mut self) -> Result<(), SourceError>;
    /// Bytes of coded video read so far.
    fn bytes_read(&self) -> u64;
}

/// Opens a file source by its extension.
pub fn open_file(path: &Path, fps: f64) -> Result<Box<dyn Source>, SourceError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("mp4" | "m4v" | "mov") => Ok(Box::new(Mp4File::open(path)?)),
        Some("h264" | "264" | "avc") => Ok(Box::new(AnnexBFile::open(path, fps)?)),
        _ => Err(SourceError::UnknownType {
            path: path.to_path_buf(),
        }),
    }
}
