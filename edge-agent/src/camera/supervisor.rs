//! Keeps a camera running: `supervise` retries `run_once` on a child of the shutdown token, with
//! capped, jittered backoff. A failure or panic is counted by reason
//! (`camera_reconnects_total{camera,reason}`), a stall watchdog restarts a run that delivers no frame
//! for `stall_timeout`, and the camera's state feeds `camera_up{camera}` and `/readyz`.
//! Each run is a blocking thread; the supervisor is a task and never blocks the runtime.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use cascade_shared::clock::{SharedClock, micros};
use cascade_shared::retry::Backoff;
use cascade_shared::shutdown::Shutdown;

use super::{Camera, CameraError, CameraState, Heartbeat, RunEnd};
use crate::telemetry::Telemetry;

/// Restart and watchdog settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A run with no frame for this long is stopped and restarted.
    pub stall_timeout: Duration,
    /// How often the watchdog looks.
    pub check_every: Duration,
    /// How long a stopped run may take to return before its thread is abandoned.
    pub stop_grace: Duration,
    /// A run that delivered frames for this long counts as healthy: the backoff starts over.
    pub healthy_after: Duration,
    /// Retry failures that need a person to fix (live cameras, at `backoff_max`); when false the
    /// camera gives up on them (file runs with `--exit-when-done`).
    pub retry_permanent: bool,
}

/// One run of a camera. `Camera` runs its pipeline; tests stand fakes here.
pub trait CameraRun: Send + Sync + 'static {
    fn id(&self) -> &str;
    fn run_once(&self, run: u64, stop: &Shutdown, beat: &Heartbeat) -> Result<RunEnd, CameraError>;
}

impl CameraRun for Camera {
    fn id(&self) -> &str {
        &self.id
    }

    fn run_once(&self, run: u64, stop: &Shutdown, beat: &Heartbeat) -> Result<RunEnd, CameraError> {
        super::pipeline::run_once(self, run, stop, beat)
    }
}

/// How supervision ended.
#[derive(Debug)]
pub enum Outcome {
    /// The camera's input ended.
    Ended,
    /// Shutdown.
    Stopped,
    /// A failure retrying cannot fix, with `retry_permanent` off.
    Failed(CameraError),
}

/// Runs `cam` until its input ends or shutdown, restarting it after every failure.
pub async fn supervise(
    cam: Arc<dyn CameraRun>,
    policy: Policy,
    telemetry: Arc<Telemetry>,
    clock: SharedClock,
    shutdown: Shutdown,
) -> Outcome {
    let id = cam.id().to_string();
    let mut backoff = Backoff::between(policy.backoff_min, policy.backoff_max);
    let mut run = 0u64;
    loop {
        run += 1;
        telemetry.camera_state(&id, CameraState::Connecting);
        let started = clock.monotonic_us();
        let (result, beat) = one_run(&cam, run, &policy, &telemetry, &clock, &shutdown).await;
        if shutdown.is_cancelled() {
            return Outcome::Stopped;
        }
        let err = match result {
            Ok(RunEnd::Ended) => {
                telemetry.camera_state(&id, CameraState::Ended);
                return Outcome::Ended;
            }
            Ok(RunEnd::Stopped) => CameraError::Panic("stopped without being asked".into()),
            Err(e) => e,
        };
        let ran = Duration::from_micros((clock.monotonic_us() - started).max(0) as u64);
        if beat.frames() > 0 && ran >= policy.healthy_after {
            backoff.reset();
        }
        let permanent = err.is_permanent();
        let reason = err.to_string();
        if permanent && !policy.retry_permanent {
            telemetry.camera_state(&id, CameraState::Failed { reason });
            return Outcome::Failed(err);
        }
        let delay = if permanent {
            policy.backoff_max
        } else {
            backoff.next_delay()
        };
        telemetry.camera_reconnect(&id, err.label(), &err, delay);
        telemetry.camera_state(
            &id,
            if permanent {
                CameraState::Failed { reason }
            } else {
                CameraState::Backoff { reason }
            },
        );
        tokio::select! {
            () = shutdown.cancelled() => return Outcome::Stopped,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One run on its own thread, watched: marks the camera streaming on its first frame, stops it
/// when it stalls, and abandons a thread that does not stop within the grace period.
async fn one_run(
    cam: &Arc<dyn CameraRun>,
    run: u64,
    policy: &Policy,
    telemetry: &Telemetry,
    clock: &SharedClock,
    shutdown: &Shutdown,
) -> (Result<RunEnd, CameraError>, Arc<Heartbeat>) {
    let stop = shutdown.child_token();
    let beat = Arc::new(Heartbeat::new(clock.monotonic_us()));
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let (c, s, b) = (cam.clone(), stop.clone(), beat.clone());
    let spawned = std::thread::Builder::new()
        .name(format!("camera-{}", cam.id()))
        .spawn(move || {
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| c.run_once(run, &s, &b)));
            let _ = tx.send(r.unwrap_or_else(|p| Err(CameraError::Panic(panic_message(&*p)))));
        });
    if let Err(e) = spawned {
        return (Err(CameraError::Thread(e)), beat);
    }
    let (mut streaming, mut stalled, mut deadline) = (false, None, None);
    let result = loop {
        tokio::select! {
            r = &mut rx => break r.unwrap_or_else(|_| Err(CameraError::Panic("the run ended without a result".into()))),
            () = tokio::time::sleep(policy.check_every) => {}
        }
        let idle = beat.idle_us(clock.monotonic_us());
        if !streaming && beat.frames() > 0 && idle < micros(policy.stall_timeout) {
            streaming = true;
            telemetry.camera_state(cam.id(), CameraState::Streaming);
        }
        if stalled.is_none() && idle > micros(policy.stall_timeout) {
            stalled = Some(idle as f64 / 1e6);
            stop.cancel();
        }
        if stop.is_cancelled() {
            let due =
                *deadline.get_or_insert_with(|| tokio::time::Instant::now() + policy.stop_grace);
            if tokio::time::Instant::now() >= due {
                tracing::error!(
                    camera = cam.id(),
                    "the camera's thread did not stop; abandoned"
                );
                break Ok(RunEnd::Stopped);
            }
        }
    };
    match stalled {
        Some(seconds) if !shutdown.is_cancelled() => (Err(CameraError::Stalled { seconds }), beat),
        _ => (result, beat),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests;
