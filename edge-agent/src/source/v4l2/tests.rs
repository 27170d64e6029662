use std::path::Path;

use v4l::timestamp::Timestamp;

use super::*;

const MONO: u32 = 0x2000; // V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC
const COPY: u32 = 0x4000; // V4L2_BUF_FLAG_TIMESTAMP_COPY

#[test]
fn driver_stamps_are_used_when_monotonic_and_plausible() {
    let now = 100_000_000;
    let at = |us: u64| Duration::from_micros(us);
    assert_eq!(
        frame_time_us(at(99_990_000), MONO, now),
        (99_990_000, Stamp::Driver)
    );
    assert_eq!(
        frame_time_us(at(99_990_000), MONO | 0x8, now).1,
        Stamp::Driver
    );
    for (stamp, flags, why) in [
        (at(99_990_000), COPY, "a copied stamp"),
        (at(99_990_000), 0, "an unknown clock"),
        (Duration::ZERO, MONO, "no stamp"),
        (at(100_000_001), MONO, "from the future"),
        (at(90_000_000), MONO, "10 s old"),
    ] {
        assert_eq!(
            frame_time_us(stamp, flags, now),
            (now, Stamp::Arrival),
            "{why}"
        );
    }
}

#[test]
fn the_kernel_monotonic_clock_moves_forward() {
    let a = monotonic_now_us();
    std::thread::sleep(Duration::from_millis(2));
    let b = monotonic_now_us();
    assert!(a > 0 && b - a >= 2_000, "{a} {b}");
}

#[test]
fn key_units_are_idr_or_parameter_sets() {
    assert!(is_key(&[
        0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 4
    ]));
    assert!(is_key(&[0, 0, 1, 0x65, 0x88]));
    assert!(!is_key(&[0, 0, 0, 1, 0x41, 0x9a]), "a P slice");
    assert!(!is_key(&[]));
    assert!(!is_key(&[0, 0, 1]));
}

fn frames(pixel: PixelFormat, width: u32, height: u32) -> Frames {
    Frames {
        device: "/dev/video9".into(),
        granted: Granted {
            pixel,
            fourcc: *b"YUYV",
            width,
            height,
            stride: 0,
            fps: Some(15.0),
        },
        origin_us: monotonic_now_us() - 1_000_000,
        base: Arc::new(TimeBase::anchored(0, CaptureClock::Driver)),
        keyframe_seen: false,
        bad_in_row: 0,
        stamp: None,
        sequence: None,
    }
}

fn meta(bytesused: usize, flags: u32, sequence: u32) -> Metadata {
    Metadata {
        bytesused: u32::try_from(bytesused).expect("small"),
        flags: Flags::from(flags),
        field: 1,
        timestamp: Timestamp::from(Duration::from_micros(
            u64::try_from(monotonic_now_us() - 10_000).expect("positive"),
        )),
        sequence,
    }
}

#[test]
fn raw_buffers_become_frames_timed_from_the_open() {
    let mut f = frames(PixelFormat::Yuyv, 4, 2);
    let mut buf = vec![128u8; 16];
    buf.extend([0xAA; 100]); // the rest of the mmap buffer, beyond bytesused
    let Some(Packet::Raw(frame)) = f.packet(&buf, &meta(16, MONO, 0)).expect("ok") else {
        panic!("a raw frame");
    };
    assert_eq!((frame.width, frame.height), (4, 2));
    assert!(
        (980_000..1_200_000).contains(&frame.pts_us),
        "about 1 s after the origin: {}",
        frame.pts_us
    );
    assert_eq!(f.stamp, Some(Stamp::Driver));
    assert_eq!(f.base.clock(), CaptureClock::Driver);
    let copied = meta(16, COPY, 1);
    assert!(f.packet(&buf, &copied).expect("ok").is_some());
    assert_eq!(
        (f.stamp, f.base.clock()),
        (Some(Stamp::Arrival), CaptureClock::Wall),
        "a driver without monotonic stamps: timed on arrival, named as the wall clock"
    );
}

#[test]
fn damaged_frames_are_skipped_and_a_run_of_them_ends_the_stream() {
    let mut f = frames(PixelFormat::Yuyv, 4, 2);
    let good = vec![128u8; 16];
    assert!(
        f.packet(&good, &meta(16, MONO | 0x40, 1))
            .expect("skipped")
            .is_none()
    );
    assert!(
        f.packet(&good, &meta(0, MONO, 2))
            .expect("skipped")
            .is_none()
    );
    assert!(
        f.packet(&good, &meta(15, MONO, 3))
            .expect("skipped")
            .is_none()
    );
    assert!(f.packet(&good, &meta(16, MONO, 4)).expect("ok").is_some());
    assert_eq!(f.bad_in_row, 0, "a good frame ends the run of bad ones");
    let mut err = None;
    for i in 0..BAD_STORM {
        match f.packet(&good, &meta(3, MONO, 5 + i)) {
            Ok(p) => assert!(p.is_none()),
            Err(e) => err = Some((i, e)),
        }
    }
    let (i, e) = err.expect("the storm ends the stream");
    assert_eq!(i, BAD_STORM - 1);
    assert_eq!(e.label(), "v4l2_error");
    let text = e.to_string();
    assert!(
        text.starts_with("/dev/video9: 30 damaged frames in a row"),
        "{text}"
    );
    assert!(text.contains("short buffer"), "{text}");
}

#[test]
fn h264_waits_for_a_key_frame() {
    let mut f = frames(PixelFormat::H264, 640, 480);
    let p_slice = [0, 0, 0, 1, 0x41, 0x9a, 0x22];
    let idr = [0, 0, 0, 1, 0x65, 0x88, 0x84];
    assert!(f.packet(&p_slice, &meta(7, MONO, 0)).expect("ok").is_none());
    let Some(Packet::Coded(au)) = f.packet(&idr, &meta(7, MONO, 1)).expect("ok") else {
        panic!("an access unit");
    };
    assert_eq!(au.data, idr);
    assert!(matches!(
        f.packet(&p_slice, &meta(7, MONO, 2)),
        Ok(Some(Packet::Coded(_)))
    ));
    let mut g = frames(PixelFormat::H264, 640, 480);
    let flagged = g.packet(&p_slice, &meta(7, MONO | 0x8, 0)).expect("ok");
    assert!(flagged.is_some(), "the driver's key-frame flag counts");
}

#[test]
fn errors_tell_unplugged_permission_and_busy_apart() {
    let dev = Path::new("/dev/video7");
    let os = |n: i32| std::io::Error::from_raw_os_error(n);
    let e = device::io_error(dev, "read a frame", &os(libc::ENODEV));
    assert_eq!((e.label(), e.is_permanent()), ("unplugged", false));
    assert!(
        e.to_string()
            .starts_with("/dev/video7: no camera there (read a frame"),
        "{e}"
    );
    assert_eq!(
        device::io_error(dev, "open", &os(libc::ENOENT)).label(),
        "unplugged"
    );
    let e = device::io_error(dev, "open", &os(libc::EACCES));
    assert_eq!((e.label(), e.is_permanent()), ("permission", true));
    assert!(e.to_string().contains("video"), "{e}");
    let e = device::io_error(dev, "open", &os(libc::EBUSY));
    assert_eq!((e.label(), e.is_permanent()), ("v4l2_error", false));
    assert!(e.to_string().contains("in use by another program"), "{e}");
    let e = device::io_error(dev, "query capabilities", &os(libc::ENOTTY));
    assert_eq!((e.label(), e.is_permanent()), ("format", true));
    assert!(e.to_string().contains("is not a V4L2 device"), "{e}");
    let e = device::io_error(dev, "read a frame", &os(libc::EIO));
    assert_eq!(e.label(), "v4l2_error");
}

#[test]
fn a_missing_device_is_unplugged_and_named() {
    let s = V4l2Settings {
        device: "/dev/video-cascade-test-missing".into(),
        format: V4l2Format::Auto,
        width: 640,
        height: 480,
        fps: 15.0,
    };
    let clock: SharedClock = Arc::new(cascade_shared::clock::SystemClock);
    let e = V4l2Source::open(&s, &clock).err().expect("no such device");
    assert_eq!(e.label(), "unplugged");
    assert!(
        e.to_string().contains("/dev/video-cascade-test-missing"),
        "{e}"
    );
    assert!(probe(&s.device, (640, 480)).is_err());
}

/// What happens at one wait of [`FakeQueue`].
#[derive(Debug, Clone, Copy)]
enum Arrival {
    /// A frame arrives (a 4x2 YUYV picture of this value).
    Frame(u8),
    Nothing,
    /// The camera is unplugged.
    Gone,
}

/// A driver's buffer queue driven the way `v4l`'s mmap stream drives it: queueing a buffer the
/// driver already has is `EINVAL`, as in the kernel. Each wait takes the next [`Arrival`]; when
/// they run out, `stop` is cancelled.
struct FakeQueue {
    arrivals: std::collections::VecDeque<Arrival>,
    queued: std::collections::VecDeque<usize>,
    filled: std::collections::VecDeque<usize>,
    data: Vec<Vec<u8>>,
    meta: Metadata,
    last: usize,
    active: bool,
    stop: Shutdown,
}

impl FakeQueue {
    fn new(arrivals: &[Arrival], stop: &Shutdown) -> Self {
        Self {
            arrivals: arrivals.iter().copied().collect(),
            queued: Default::default(),
            filled: Default::default(),
            data: vec![Vec::new(); 4],
            meta: meta(16, MONO, 0),
            last: 0,
            active: false,
            stop: stop.clone(),
        }
    }

    fn tick(&mut self) -> std::io::Result<()> {
        match self.arrivals.pop_front() {
            Some(Arrival::Frame(v)) => {
                if let Some(i) = self.queued.pop_front() {
                    self.data[i] = vec![v; 16];
                    self.filled.push_back(i);
                }
            }
            Some(Arrival::Gone) => return Err(std::io::Error::from_raw_os_error(libc::ENODEV)),
            Some(Arrival::Nothing) => {}
            None => self.stop.cancel(),
        }
        Ok(())
    }

    fn queue(&mut self, i: usize) -> std::io::Result<()> {
        if self.queued.contains(&i) || self.filled.contains(&i) {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.queued.push_back(i);
        Ok(())
    }

    fn take(&mut self) -> std::io::Result<usize> {
        self.tick()?;
        self.filled
            .pop_front()
            .ok_or_else(|| std::io::Error::new(ErrorKind::TimedOut, "VIDIOC_DQBUF"))
    }
}

impl Buffers for FakeQueue {
    fn ready(&mut self) -> std::io::Result<bool> {
        self.tick()?;
        Ok(!self.filled.is_empty())
    }

    fn next(&mut self) -> std::io::Result<(&[u8], &Metadata)> {
        if self.active {
            self.queue(self.last)?;
        } else {
            for i in 0..self.data.len() {
                self.queue(i)?;
            }
            self.active = true;
        }
        self.last = self.take()?;
        self.meta.sequence += 1;
        Ok((&self.data[self.last], &self.meta))
    }

    fn dequeue(&mut self) -> std::io::Result<()> {
        self.last = self.take()?;
        Ok(())
    }
}

/// The frames (their value) a source over [`FakeQueue`] delivers, and the error that ended it.
fn play(arrivals: &[Arrival]) -> (Vec<u8>, Option<SourceError>) {
    let stop = Shutdown::new();
    let queue = Box::new(FakeQueue::new(arrivals, &stop));
    let granted = frames(PixelFormat::Yuyv, 4, 2).granted;
    let mut src = V4l2Source::with_buffers(queue, Path::new("/dev/video9"), granted, 7_000);
    let base = src.time_base().expect("a V4L2 source knows its time base");
    assert_eq!(
        (base.offset_us(), base.clock()),
        (Some(7_000), CaptureClock::Driver)
    );
    let mut got = Vec::new();
    loop {
        match src.next(&stop) {
            Ok(Some(Packet::Raw(f))) => got.push(f.y[0]),
            Ok(Some(Packet::Coded(_))) => panic!("YUYV gives raw frames"),
            Ok(None) => return (got, None),
            Err(e) => return (got, Some(e)),
        }
    }
}

#[test]
fn frames_flow_through_gaps_without_a_buffer_queued_twice() {
    use Arrival::{Frame, Nothing};
    let (got, err) = play(&[Frame(1), Frame(2), Nothing, Nothing, Frame(3), Frame(4)]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, [1, 2, 3, 4]);
}

#[test]
fn a_slow_first_frame_costs_one_frame_not_the_stream() {
    use Arrival::{Frame, Nothing};
    // The first wait inside `next` times out; the buffer it would hand back is still queued.
    let (got, err) = play(&[
        Nothing,
        Nothing,
        Frame(1),
        Nothing,
        Frame(2),
        Nothing,
        Frame(3),
    ]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, [2, 3], "the frame taken back to recover is dropped");
}

#[test]
fn unplugging_ends_the_stream_as_unplugged() {
    use Arrival::{Frame, Gone};
    let (got, err) = play(&[Frame(1), Gone]);
    assert_eq!(got, [1]);
    let err = err.expect("an error");
    assert_eq!(err.label(), "unplugged");
    assert!(err.to_string().contains("wait for a frame"), "{err}");
}

/// The `/dev/video*` nodes of this machine.
fn video_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("video"))
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    nodes
}

/// Runs against every real capture device; says it skipped when there is none (no camera, no
/// `v4l2loopback`).
#[test]
fn a_real_device_streams_frames() {
    let nodes = video_nodes();
    if nodes.is_empty() {
        println!("skipped: no /dev/video* device on this machine");
        return;
    }
    let mut streamed = 0;
    for node in nodes {
        match probe(&node, (640, 480)) {
            Ok(info) => println!("{info}"),
            Err(e) => {
                println!("{}: skipped: {e}", node.display());
                continue;
            }
        }
        let s = V4l2Settings {
            device: node.clone(),
            format: V4l2Format::Auto,
            width: 640,
            height: 480,
            fps: 15.0,
        };
        let clock: SharedClock = Arc::new(cascade_shared::clock::SystemClock);
        let mut src = match V4l2Source::open(&s, &clock) {
            Ok(src) => src,
            Err(e) => {
                println!("{}: skipped: {e}", node.display());
                continue;
            }
        };
        read_some(&mut src, &node);
        streamed += 1;
    }
    if streamed == 0 {
        println!("skipped: no /dev/video* node streams in a format cascade reads");
    }
}

/// Reads up to ten packets within ten seconds; raw frames have the granted size and rising times.
fn read_some(src: &mut V4l2Source, node: &Path) {
    let stop = Shutdown::new();
    let timer = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(10));
        timer.cancel();
    });
    let g = src.granted();
    let mut last = i64::MIN;
    let mut n = 0;
    while n < 10 {
        match src.next(&stop) {
            Ok(Some(Packet::Raw(f))) => {
                assert_eq!((f.width, f.height), (g.width as usize, g.height as usize));
                assert!(f.pts_us > last, "{} then {}", last, f.pts_us);
                last = f.pts_us;
            }
            Ok(Some(Packet::Coded(au))) => assert!(!au.data.is_empty()),
            Ok(None) => break,
            Err(e) => panic!("{}: {e}", node.display()),
        }
        n += 1;
    }
    println!("{}: {n} packets of {g:?}", node.display());
    assert!(n > 0, "{}: no frame in 10 s", node.display());
}
