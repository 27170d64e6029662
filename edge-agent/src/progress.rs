//! The progress line of a long run on a terminal: frames, frame rate, motion share, crops up and
//! buffered, the uplink's state and, for files played to an end, how far and how long to go.
//! Redrawn four times a second on standard error, only when it is a terminal
//! (`cascade_shared::telemetry::status_line`): logs to journald, containers and pipes stay clean.
//! The line is made by a pure function of two snapshots of the run's figures.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use cascade_shared::clock::SharedClock;
use cascade_shared::shutdown::Shutdown;
use cascade_shared::telemetry::status_line;

use crate::telemetry::Telemetry;

/// How often the line is redrawn.
const EVERY: Duration = Duration::from_millis(250);
/// The frame rate is measured over about this long.
const RATE_WINDOW_US: i64 = 2_000_000;

/// The run's figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Monotonic microseconds.
    pub at_us: i64,
    pub frames: u64,
    pub motion_frames: u64,
    pub crops_uploaded: u64,
    /// Crops held in the buffer now.
    pub buffered: u64,
    pub connected: bool,
    /// The least advanced file's share read (0 to 1), when cameras play files to an end.
    pub input: Option<f64>,
}

/// The line for `now`, with `since` an earlier snapshot for the rate and `start` the first one
/// (for the time to go).
pub fn line(start: &Snapshot, since: &Snapshot, now: &Snapshot) -> String {
    let secs = |a: &Snapshot, b: &Snapshot| (b.at_us - a.at_us) as f64 / 1e6;
    let window = secs(since, now);
    let fps = if window > 0.0 {
        now.frames.saturating_sub(since.frames) as f64 / window
    } else {
        0.0
    };
    let motion = 100.0 * now.motion_frames as f64 / now.frames.max(1) as f64;
    let uplink = if now.connected {
        "connected"
    } else {
        "disconnected"
    };
    let mut out = format!(
        "{} frames  {fps:.0} fps  motion {motion:.0} %  crops {} up, {} buffered  uplink {uplink}",
        now.frames, now.crops_uploaded, now.buffered
    );
    if let Some(p) = now.input {
        out += &format!("  {:.0} %", 100.0 * p);
        if let Some(eta) = eta(start, now) {
            out += &format!("  ETA {}", clock(eta));
        }
    }
    out
}

/// Seconds to go at the pace since `start`, once there is a pace to go by.
fn eta(start: &Snapshot, now: &Snapshot) -> Option<f64> {
    let (p0, p) = (start.input.unwrap_or(0.0), now.input?);
    let elapsed = (now.at_us - start.at_us) as f64 / 1e6;
    (p > p0 && elapsed >= 1.0).then(|| (1.0 - p).max(0.0) * elapsed / (p - p0))
}

/// `m:ss`, or `h:mm:ss` past an hour.
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Redraws the line until `stop`, then clears it. Does nothing unless standard error is a
/// terminal.
pub async fn run(telemetry: Arc<Telemetry>, clock: SharedClock, stop: Shutdown) {
    if !status_line::available() {
        return;
    }
    let start = telemetry.snapshot(clock.monotonic_us());
    let mut recent = VecDeque::from([start]);
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = telemetry.snapshot(clock.monotonic_us());
        while recent.len() > 1 && now.at_us - recent[1].at_us >= RATE_WINDOW_US {
            recent.pop_front();
        }
        status_line::draw(&line(&start, &recent[0], &now));
        recent.push_back(now);
    }
    status_line::clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: f64, frames: u64, input: Option<f64>) -> Snapshot {
        Snapshot {
            at_us: (s * 1e6) as i64,
            frames,
            motion_frames: frames / 4,
            crops_uploaded: 12,
            buffered: 3,
            connected: true,
            input,
        }
    }

    #[test]
    fn a_file_shows_its_share_and_time_to_go() {
        let start = at(0.0, 0, Some(0.0));
        let l = line(&start, &at(8.0, 800, Some(0.4)), &at(10.0, 1000, Some(0.5)));
        assert_eq!(
            l,
            "1000 frames  100 fps  motion 25 %  crops 12 up, 3 buffered  uplink connected  50 %  ETA 0:10"
        );
    }

    #[test]
    fn a_live_camera_shows_no_share_and_no_eta_and_nothing_divides_by_zero() {
        let s = at(0.0, 0, None);
        let mut now = at(0.0, 0, None);
        now.connected = false;
        assert_eq!(
            line(&s, &s, &now),
            "0 frames  0 fps  motion 0 %  crops 12 up, 3 buffered  uplink disconnected"
        );
        // A file that has not moved yet: its share, but no time to go.
        let l = line(&s, &s, &at(0.5, 10, Some(0.0)));
        assert!(l.ends_with("  0 %"), "{l}");
    }

    #[test]
    fn long_waits_read_as_hours() {
        assert_eq!(clock(59.6), "1:00");
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
