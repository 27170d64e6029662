//! File sources: MP4 and Annex-B H.264, played as fast as possible or at the stream's own pace,
//! once or in a loop (a stand-in for a live camera). Looping and pacing live here, not in the
//! capture loop. Each loop pass opens the file again, so a replaced file is picked up and a
//! deleted or damaged one fails like a camera that went away (the supervisor restarts it).

mod annexb;
mod mp4;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cascade_shared::clock::SharedClock;
use cascade_shared::shutdown::Shutdown;

pub use annexb::{AnnexBFile, group_access_units, split_nal_units};
pub use mp4::Mp4File;

use super::{AccessUnit, Packet, Source, SourceError};

/// A demuxed file: access units in decode order.
pub trait Container: Send {
    /// The next access unit, or `None` at the end of the file.
    fn next_unit(&mut self) -> Result<Option<AccessUnit>, SourceError>;
    /// Bytes of coded video read so far.
    fn bytes_read(&self) -> u64;
}

/// Opens a container by the file's extension.
pub fn open_container(path: &Path, fps: f64) -> Result<Box<dyn Container>, SourceError> {
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

/// How a file is played.
#[derive(Debug, Clone, PartialEq)]
pub struct Playback {
    /// At the stream's own pace (on the injected clock) rather than as fast as possible.
    pub realtime: bool,
    /// Start again at the end.
    pub looped: bool,
    /// As fast as possible without waiting for a busy detector (see the config's `skim`).
    pub skim: bool,
    /// Frame rate for Annex-B files, which carry no timestamps.
    pub fps: f64,
}

pub struct FileSource {
    path: PathBuf,
    playback: Playback,
    clock: SharedClock,
    container: Box<dyn Container>,
    /// Added to the file's timestamps: the end of the passes played before this one.
    offset_us: i64,
    /// End (pts + duration) of the latest unit handed out, offset included.
    end_us: i64,
    /// Units handed out in this pass (an empty file must not loop forever).
    pass_units: u64,
    /// Monotonic time at which stream time 0 is due (real-time playback).
    origin_us: Option<i64>,
    /// The file's size, for the share read.
    len: u64,
}

impl FileSource {
    pub fn open(path: &Path, playback: Playback, clock: SharedClock) -> Result<Self, SourceError> {
        Ok(Self {
            container: open_container(path, playback.fps)?,
            path: path.to_path_buf(),
            playback,
            clock,
            offset_us: 0,
            end_us: 0,
            pass_units: 0,
            origin_us: None,
            len: std::fs::metadata(path).map_or(0, |m| m.len()),
        })
    }

    /// Waits (on the injected clock) until stream time `pts_us` is due, or stop.
    fn pace(&mut self, pts_us: i64, stop: &Shutdown) {
        let origin = *self
            .origin_us
            .get_or_insert_with(|| self.clock.monotonic_us() - pts_us);
        loop {
            let left = origin + pts_us - self.clock.monotonic_us();
            if left <= 0 || stop.is_cancelled() {
                return;
            }
            self.clock
                .sleep_blocking(Duration::from_micros(left.min(200_000) as u64));
        }
    }

    /// The next pass: the file opened again, its timestamps after the previous pass's.
    fn next_pass(&mut self) -> Result<(), SourceError> {
        if self.pass_units == 0 {
            return Err(SourceError::Empty {
                path: self.path.clone(),
            });
        }
        self.container = open_container(&self.path, self.playback.fps)?;
        self.offset_us = self.end_us;
        self.pass_units = 0;
        Ok(())
    }
}

impl Source for FileSource {
    fn next(&mut self, stop: &Shutdown) -> Result<Option<Packet>, SourceError> {
        loop {
            if stop.is_cancelled() {
                return Ok(None);
            }
            let Some(mut au) = self.container.next_unit()? else {
                if !self.playback.looped {
                    return Ok(None);
                }
                self.next_pass()?;
                continue;
            };
            au.pts_us += self.offset_us;
            self.end_us = self.end_us.max(au.pts_us + au.duration_us.max(1));
            self.pass_units += 1;
            if self.playback.realtime {
                self.pace(au.pts_us, stop);
            }
            return Ok(Some(Packet::Coded(au)));
        }
    }

    fn is_live(&self) -> bool {
        self.playback.realtime
    }

    fn waits_for_detector(&self) -> bool {
        !self.playback.realtime && !self.playback.skim
    }

    fn progress(&self) -> Option<f64> {
        (!self.playback.looped && self.len > 0)
            .then(|| self.container.bytes_read() as f64 / self.len as f64)
    }
}

#[cfg(test)]
mod tests {
    use cascade_shared::clock::{Clock, ManualClock};

    use super::*;

    fn walker() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/walker.h264")
    }

    fn drain(src: &mut FileSource, n: usize) -> Vec<i64> {
        let stop = Shutdown::new();
        (0..n)
            .map_while(|_| match src.next(&stop).expect("reads") {
                Some(Packet::Coded(au)) => Some(au.pts_us),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_looped_file_plays_on_with_increasing_timestamps() {
        let clock = ManualClock::new(0);
        let mut once = FileSource::open(
            &walker(),
            Playback {
                realtime: false,
                looped: false,
                skim: false,
                fps: 10.0,
            },
            clock.clone(),
        )
        .expect("opens");
        let n = drain(&mut once, 10_000).len();
        assert!(n > 5);
        let mut looped = FileSource::open(
            &walker(),
            Playback {
                realtime: false,
                looped: true,
                skim: false,
                fps: 10.0,
            },
            clock,
        )
        .expect("opens");
        let pts = drain(&mut looped, 3 * n);
        assert_eq!(pts.len(), 3 * n, "three passes");
        assert!(pts.windows(2).all(|w| w[1] > w[0]), "{pts:?}");
    }

    #[test]
    fn only_a_file_played_as_fast_as_possible_unskimmed_waits_for_the_detector() {
        let open = |realtime, skim| {
            let playback = Playback {
                realtime,
                looped: false,
                skim,
                fps: 10.0,
            };
            FileSource::open(&walker(), playback, ManualClock::new(0)).expect("opens")
        };
        assert!(
            open(false, false).waits_for_detector(),
            "the same result on any CPU"
        );
        assert!(
            !open(false, true).waits_for_detector(),
            "skimmed: drops when busy"
        );
        assert!(
            !open(true, false).waits_for_detector(),
            "real time: drops when busy"
        );
    }

    #[test]
    fn realtime_playback_waits_on_the_injected_clock() {
        let clock = ManualClock::new(0);
        let mut src = FileSource::open(
            &walker(),
            Playback {
                realtime: true,
                looped: false,
                skim: false,
                fps: 10.0,
            },
            clock.clone(),
        )
        .expect("opens");
        let pts = drain(&mut src, 11);
        // The manual clock advances only by the sleeps: 10 frames at 10 fps = 1 s.
        assert_eq!(pts[10] - pts[0], 1_000_000);
        assert_eq!(clock.monotonic_us(), 1_000_000);
    }

    #[test]
    fn a_file_deleted_between_passes_fails_the_next_pass() {
        let dir = std::env::temp_dir().join(format!("cascade-file-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let copy = dir.join("cam.h264");
        std::fs::copy(walker(), &copy).expect("copy");
        let mut src = FileSource::open(
            &copy,
            Playback {
                realtime: false,
                looped: true,
                skim: false,
                fps: 10.0,
            },
            ManualClock::new(0),
        )
        .expect("opens");
        std::fs::remove_file(&copy).expect("rm");
        let stop = Shutdown::new();
        let err = loop {
            match src.next(&stop) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a looped file does not end"),
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("cam.h264"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
