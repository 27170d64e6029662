//! One run of a camera, on its capture thread: source -> decode -> motion -> the detector slot.
//! Frames with motion, or while people are tracked, go to the shared detector with the motion and
//! track boxes (where to look): at most `max_rate_hz` (by stream time) while a tracked person
//! moves, `motion_rate_hz` otherwise. A live
//! source never waits for the detector (the frame is dropped and counted), nor does a skimmed
//! file; a file played as fast as possible does (results then do not depend on CPU speed).

use std::time::Duration;

use cascade_shared::shutdown::Shutdown;

use super::{Camera, CameraError, Heartbeat, RunEnd};
use crate::decode::{Frame, H264Decoder, VideoDecoder};
use crate::detect::service::Job;
use crate::motion::{BackgroundMotion, MotionDetector};
use crate::source::{self, Packet, Stamper};

/// Corrupt access units in a row after which the stream counts as broken (the run restarts).
const DECODE_STORM: u32 = 100;

/// Runs the camera until its input ends, it fails, or `stop` is cancelled. `run` numbers this run.
pub fn run_once(
    cam: &Camera,
    run: u64,
    stop: &Shutdown,
    beat: &Heartbeat,
) -> Result<RunEnd, CameraError> {
    let mut src = source::open(&cam.source, &cam.clock, &cam.runtime, stop)?;
    let mut decoder = H264Decoder::new()?;
    let live = src.is_live();
    let mut dispatch = Dispatch {
        cam,
        run,
        waits: src.waits_for_detector(),
        stamper: Stamper::new(src.time_base(), live, cam.clock.now_utc_us()),
        size: None,
        track_gap_us: (1e6 / f64::from(cam.max_rate_hz)) as i64,
        motion_gap_us: (1e6 / f64::from(cam.motion_rate_hz)) as i64,
        last_sent: i64::MIN / 2,
        motion: BackgroundMotion::new(cam.motion.clone()),
    };
    let (mut frames, mut corrupt) = (Vec::new(), 0u32);
    loop {
        let packet = src.next(stop)?;
        if stop.is_cancelled() {
            return Ok(RunEnd::Stopped);
        }
        match packet {
            None => {
                if src.progress().is_some() {
                    cam.telemetry.input_progress(&cam.id, 1.0);
                }
                decoder.flush(&mut frames)?;
                dispatch.frames(&mut frames, beat, stop);
                // Nobody is watched any more: once the last result is consumed, the post stage
                // ends the run's tracks (the cloud's alerts end now, not at their timeout).
                if cam.slot.wait_idle(stop) {
                    cam.tracked.input_ended(run);
                    cam.tracked.wait_tracks_ended(stop, Duration::from_secs(2));
                }
                return Ok(RunEnd::Ended);
            }
            Some(Packet::Raw(frame)) => frames.push(frame),
            Some(Packet::Coded(au)) => {
                cam.telemetry.unit_read(&cam.id, au.data.len());
                if let Some(p) = src.progress() {
                    cam.telemetry.input_progress(&cam.id, p);
                }
                match decoder.decode(&au, &mut frames) {
                    Ok(()) => corrupt = 0,
                    Err(e) if e.is_recoverable() => {
                        cam.telemetry.decode_error(&cam.id, &e);
                        corrupt += 1;
                        if corrupt >= DECODE_STORM {
                            return Err(CameraError::DecodeStorm { count: corrupt });
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        dispatch.frames(&mut frames, beat, stop);
    }
}

/// Motion on each decoded frame, then motion frames to the detector slot.
struct Dispatch<'a> {
    cam: &'a Camera,
    run: u64,
    /// Frames wait for a busy detector rather than being dropped.
    waits: bool,
    stamper: Stamper,
    /// The picture size of this run's frames so far.
    size: Option<(usize, usize)>,
    track_gap_us: i64,
    motion_gap_us: i64,
    last_sent: i64,
    motion: BackgroundMotion,
}

impl Dispatch<'_> {
    /// A camera that changes its picture size mid-stream (a firmware update, a new profile) is
    /// told in the log; motion detection starts over on the new size by itself (as the decoder did).
    fn check_size(&mut self, frame: &Frame) {
        let size = (frame.width, frame.height);
        if self.size.is_some_and(|s| s != size) {
            tracing::info!(
                camera = %self.cam.id,
                width = size.0,
                height = size.1,
                "the picture size changed: motion detection starts over"
            );
        }
        self.size = Some(size);
    }

    fn frames(&mut self, frames: &mut Vec<Frame>, beat: &Heartbeat, stop: &Shutdown) {
        let (cam, t) = (self.cam.id.as_str(), &self.cam.telemetry);
        for frame in frames.drain(..) {
            let now = self.cam.clock.monotonic_us();
            beat.beat(now);
            t.frame_decoded(cam, frame.pts_us);
            self.check_size(&frame);
            let (capture_us, clock) = self
                .stamper
                .stamp(frame.pts_us, self.cam.clock.now_utc_us());
            if let Some(clock) = clock {
                t.capture_clock(cam, clock, capture_us - frame.pts_us);
            }
            let m = self.motion.detect(&frame);
            t.motion(cam, m.boxes.len(), m.recalibrated);
            let tracked = self.cam.tracked.get();
            if m.boxes.is_empty() && tracked.is_empty() {
                continue;
            }
            self.cam.activity.saw(now);
            let gap = if !m.boxes.is_empty() && !tracked.is_empty() {
                self.track_gap_us
            } else {
                self.motion_gap_us
            };
            if frame.pts_us - self.last_sent < gap {
                t.detector_dropped(cam, "rate_limit");
                continue;
            }
            let pts = frame.pts_us;
            let mut boxes = m.boxes;
            boxes.extend(tracked);
            let job = Job {
                frame,
                capture_us,
                run: self.run,
                boxes,
            };
            let sent = if self.waits {
                self.cam.slot.submit_wait(job, stop)
            } else {
                let sent = self.cam.slot.try_submit(job).is_ok();
                if !sent {
                    t.detector_dropped(cam, "busy");
                }
                sent
            };
            if sent {
                self.last_sent = pts;
            }
        }
    }
}
