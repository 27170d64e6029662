//! Capture time in UTC. A live stream's timestamps count from its own start; an RTSP camera's
//! RTCP sender reports tie them to its NTP clock, which maps them to UTC. Until a report arrives,
//! or when the camera's clock is far from ours, a live stream falls back to the wall clock at the
//! first frame's arrival; a file to the time it was opened. A V4L2 camera's stream time is the
//! kernel's monotonic clock, anchored to UTC when the device opened. Which one is in force is a
//! metric.

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

/// Farther than this from our clock, a camera's clock is not trusted (it lost NTP, or never had
/// it): capture times then come from our wall clock.
pub const MAX_CAMERA_SKEW_US: i64 = 10_000_000;

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp (32.32 fixed point seconds since 1900) in microseconds since 1970.
pub fn ntp_to_unix_us(ntp: u64) -> i64 {
    let secs = (ntp >> 32).wrapping_sub(NTP_UNIX_OFFSET_S) as u32;
    let frac_us = ((ntp & 0xFFFF_FFFF) * 1_000_000) >> 32;
    i64::from(secs) * 1_000_000 + frac_us as i64
}

/// Where capture times come from, for `camera_capture_clock{camera,clock}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureClock {
    /// The camera's RTCP sender reports.
    Rtcp,
    /// Our own wall clock.
    Wall,
    /// A V4L2 driver's buffer timestamps (the kernel's monotonic clock, anchored to UTC).
    Driver,
}

impl CaptureClock {
    /// Every clock, for metrics that show one at a time.
    pub const ALL: [Self; 3] = [Self::Rtcp, Self::Wall, Self::Driver];

    pub fn label(self) -> &'static str {
        match self {
            Self::Rtcp => "rtcp",
            Self::Wall => "wall",
            Self::Driver => "driver",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Wall,
            2 => Self::Driver,
            _ => Self::Rtcp,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Rtcp => 0,
            Self::Wall => 1,
            Self::Driver => 2,
        }
    }
}

/// The offset from stream time to UTC a live source learned, shared with the capture thread, and
/// the clock it comes from (RTCP unless the source says otherwise).
#[derive(Debug)]
pub struct TimeBase {
    /// UTC microseconds at stream time 0; `i64::MIN` until learned.
    offset_us: AtomicI64,
    clock: AtomicU8,
}

impl Default for TimeBase {
    fn default() -> Self {
        Self {
            offset_us: AtomicI64::new(i64::MIN),
            clock: AtomicU8::new(CaptureClock::Rtcp.to_u8()),
        }
    }
}

/// What a sender report told.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Learned {
    /// The camera's clock agrees with ours: capture times follow it.
    Trusted,
    /// The camera's clock is this many seconds off ours: ignored.
    Skewed(f64),
}

impl TimeBase {
    /// A sender report said stream time `pts_us` is `utc_us` on the camera's clock; `now_utc_us`
    /// is our clock when it arrived.
    pub fn learn(&self, utc_us: i64, pts_us: i64, now_utc_us: i64) -> Learned {
        let skew = utc_us - now_utc_us;
        if skew.abs() > MAX_CAMERA_SKEW_US {
            return Learned::Skewed(skew as f64 / 1e6);
        }
        self.offset_us.store(utc_us - pts_us, Ordering::Relaxed);
        Learned::Trusted
    }

    pub fn offset_us(&self) -> Option<i64> {
        Some(self.offset_us.load(Ordering::Relaxed)).filter(|o| *o != i64::MIN)
    }

    /// A base known from the start: stream time 0 is `offset_us` in UTC, on `clock`.
    pub fn anchored(offset_us: i64, clock: CaptureClock) -> Self {
        Self {
            offset_us: AtomicI64::new(offset_us),
            clock: AtomicU8::new(clock.to_u8()),
        }
    }

    /// The clock the stream's times come from.
    pub fn clock(&self) -> CaptureClock {
        CaptureClock::from_u8(self.clock.load(Ordering::Relaxed))
    }

    /// The source now times its frames by `clock` (a V4L2 driver without timestamps: `Wall`).
    pub fn set_clock(&self, clock: CaptureClock) {
        self.clock.store(clock.to_u8(), Ordering::Relaxed);
    }
}

/// Stamps frames of one run with capture times.
#[derive(Debug)]
pub struct Stamper {
    base: Option<std::sync::Arc<TimeBase>>,
    live: bool,
    /// UTC at stream time 0 by the wall clock (set on the first frame of a live stream).
    wall_offset_us: Option<i64>,
    current: Option<CaptureClock>,
}

impl Stamper {
    /// `opened_utc_us`: when the source was opened (a file's stream time 0).
    pub fn new(base: Option<std::sync::Arc<TimeBase>>, live: bool, opened_utc_us: i64) -> Self {
        Self {
            base,
            live,
            wall_offset_us: (!live).then_some(opened_utc_us),
            current: None,
        }
    }

    /// The capture time of the frame at `pts_us`, arriving at `now_utc_us`; and the clock used
    /// when it changed since the last frame (to report once).
    pub fn stamp(&mut self, pts_us: i64, now_utc_us: i64) -> (i64, Option<CaptureClock>) {
        let known = (self.base.as_ref()).and_then(|b| Some((b.offset_us()?, b.clock())));
        let (utc, clock) = match known {
            Some((offset, clock)) => (offset + pts_us, clock),
            None => {
                let live = self.live;
                let offset = *self.wall_offset_us.get_or_insert_with(|| {
                    if live {
                        now_utc_us - pts_us
                    } else {
                        now_utc_us
                    }
                });
                (offset + pts_us, CaptureClock::Wall)
            }
        };
        let changed = (self.current != Some(clock)).then_some(clock);
        self.current = Some(clock);
        (utc, changed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn ntp_timestamps_map_to_unix_time() {
        let unix_s = 1_700_000_000u64;
        let ntp = ((unix_s + NTP_UNIX_OFFSET_S) << 32) | (1u64 << 31);
        assert_eq!(ntp_to_unix_us(ntp), unix_s as i64 * 1_000_000 + 500_000);
    }

    #[test]
    fn a_live_stream_uses_the_wall_clock_until_a_trusted_report_arrives() {
        let base = Arc::new(TimeBase::default());
        let mut s = Stamper::new(Some(base.clone()), true, 0);
        let now = 1_700_000_000_000_000;
        // First frame at stream time 2 s arrives now: wall clock anchored there.
        assert_eq!(s.stamp(2_000_000, now), (now, Some(CaptureClock::Wall)));
        assert_eq!(s.stamp(2_100_000, now + 500_000), (now + 100_000, None));
        // A camera 60 s off is ignored.
        assert_eq!(
            base.learn(now + 60_000_000, 2_200_000, now),
            Learned::Skewed(60.0)
        );
        assert_eq!(s.stamp(2_200_000, now).1, None);
        // A report saying stream time 2.2 s was now - 0.3 s on the camera's clock is used.
        assert_eq!(base.learn(now - 300_000, 2_200_000, now), Learned::Trusted);
        let (t, changed) = s.stamp(2_300_000, now);
        assert_eq!((t, changed), (now - 200_000, Some(CaptureClock::Rtcp)));
    }

    #[test]
    fn an_anchored_base_stamps_from_the_first_frame_on_its_own_clock() {
        let base = Arc::new(TimeBase::anchored(1_000_000, CaptureClock::Driver));
        let mut s = Stamper::new(Some(base.clone()), true, 0);
        assert_eq!(
            s.stamp(40_000, 5_000_000),
            (1_040_000, Some(CaptureClock::Driver))
        );
        base.set_clock(CaptureClock::Wall);
        assert_eq!(
            s.stamp(80_000, 5_000_000),
            (1_080_000, Some(CaptureClock::Wall))
        );
        assert_eq!(s.stamp(120_000, 5_000_000).1, None);
    }

    #[test]
    fn a_file_counts_from_when_it_was_opened() {
        let mut s = Stamper::new(None, false, 1_000);
        assert_eq!(s.stamp(0, 99_999), (1_000, Some(CaptureClock::Wall)));
        assert_eq!(s.stamp(40_000, 99_999), (41_000, None));
    }
}
