//! The supervisor against fake camera runs (the `CameraRun` trait boundary), on a manual clock for
//! the watchdog. Waits are eventually-style (bounded polls), never fixed sleeps.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cascade_shared::clock::{Clock, ManualClock};

use super::*;
use crate::source::SourceError;

/// What the fake's next run does.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The source cannot be opened.
    Fail,
    /// Panics.
    Panic,
    /// Delivers one frame, then nothing until stopped.
    Stall,
    /// Delivers frames until stopped.
    Stream,
    /// Delivers a frame and ends (a file played once).
    End,
    /// An error retrying cannot fix.
    Permanent,
}

struct Fake {
    steps: Mutex<VecDeque<Step>>,
    runs: AtomicU64,
    clock: Arc<ManualClock>,
}

impl CameraRun for Fake {
    fn id(&self) -> &str {
        "cam"
    }

    fn run_once(
        &self,
        _run: u64,
        stop: &Shutdown,
        beat: &Heartbeat,
    ) -> Result<RunEnd, CameraError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let step = self
            .steps
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(Step::Stream);
        match step {
            Step::Fail => Err(CameraError::Source(SourceError::Io {
                path: "cam.mp4".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })),
            Step::Panic => panic!("decoder exploded"),
            Step::Permanent => Err(CameraError::Source(SourceError::NoH264 {
                path: "cam.mkv".into(),
            })),
            Step::End => {
                beat.beat(self.clock.monotonic_us());
                Ok(RunEnd::Ended)
            }
            Step::Stall | Step::Stream => {
                beat.beat(self.clock.monotonic_us());
                while !stop.is_cancelled() {
                    if matches!(step, Step::Stream) {
                        beat.beat(self.clock.monotonic_us());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(RunEnd::Stopped)
            }
        }
    }
}

fn policy() -> Policy {
    Policy {
        backoff_min: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        stall_timeout: Duration::from_secs(10),
        check_every: Duration::from_millis(2),
        stop_grace: Duration::from_secs(5),
        healthy_after: Duration::from_secs(3600),
        retry_permanent: true,
    }
}

struct Running {
    fake: Arc<Fake>,
    telemetry: Arc<Telemetry>,
    clock: Arc<ManualClock>,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<Outcome>,
}

fn start(steps: &[Step], policy: Policy) -> Running {
    let clock = ManualClock::new(1_000_000);
    let fake = Arc::new(Fake {
        steps: Mutex::new(steps.iter().copied().collect()),
        runs: AtomicU64::new(0),
        clock: clock.clone(),
    });
    let telemetry = Telemetry::new("dev");
    let shutdown = Shutdown::new();
    let task = tokio::spawn(supervise(
        fake.clone(),
        policy,
        telemetry.clone(),
        clock.clone(),
        shutdown.clone(),
    ));
    Running {
        fake,
        telemetry,
        clock,
        shutdown,
        task,
    }
}

/// Polls `cond` every 5 ms for up to 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn a_failing_source_is_restarted_with_backoff_then_streams() {
    let r = start(&[Step::Fail, Step::Fail, Step::Panic], policy());
    eventually("streaming after three failures", || {
        r.telemetry.camera_state_of("cam") == Some(CameraState::Streaming)
    })
    .await;
    assert_eq!(r.fake.runs.load(Ordering::SeqCst), 4);
    assert_eq!(r.telemetry.camera_reconnects("cam", "source_io"), 2);
    assert_eq!(
        r.telemetry.camera_reconnects("cam", "panic"),
        1,
        "a panic is reported as a panic"
    );
    assert!(
        r.telemetry
            .render()
            .contains("cascade_edge_camera_up{camera=\"cam\",device=\"dev\"} 1")
    );
    r.shutdown.cancel();
    assert!(matches!(r.task.await, Ok(Outcome::Stopped)));
}

#[tokio::test]
async fn the_watchdog_restarts_a_stalled_run() {
    let r = start(&[Step::Stall], policy());
    eventually("the first frame", || {
        r.telemetry.camera_state_of("cam") == Some(CameraState::Streaming)
    })
    .await;
    // Nothing for longer than the stall timeout (on the injected clock).
    r.clock.advance(Duration::from_secs(11));
    eventually("a stall restart", || {
        r.telemetry.camera_reconnects("cam", "stall") == 1
    })
    .await;
    eventually("a second run", || r.fake.runs.load(Ordering::SeqCst) == 2).await;
    eventually("streaming again", || {
        r.telemetry.camera_state_of("cam") == Some(CameraState::Streaming)
    })
    .await;
    r.shutdown.cancel();
    assert!(matches!(r.task.await, Ok(Outcome::Stopped)));
}

#[tokio::test]
async fn an_ended_input_ends_supervision() {
    let r = start(&[Step::End], policy());
    assert!(matches!(r.task.await, Ok(Outcome::Ended)));
    assert_eq!(r.telemetry.camera_state_of("cam"), Some(CameraState::Ended));
}

#[tokio::test]
async fn a_permanent_failure_fails_once_or_retries_slowly() {
    let r = start(
        &[Step::Permanent],
        Policy {
            retry_permanent: false,
            ..policy()
        },
    );
    match r.task.await {
        Ok(Outcome::Failed(e)) => assert!(e.to_string().contains("H.264"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        r.telemetry.camera_state_of("cam"),
        Some(CameraState::Failed { .. })
    ));

    let r = start(&[Step::Permanent], policy());
    eventually("retried, then streaming", || {
        r.telemetry.camera_state_of("cam") == Some(CameraState::Streaming)
    })
    .await;
    assert_eq!(
        r.telemetry.camera_reconnects("cam", "source_unsupported"),
        1
    );
    r.shutdown.cancel();
    let _ = r.task.await;
}
