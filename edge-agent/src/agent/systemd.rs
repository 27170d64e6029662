//! The agent under systemd (`Type=notify`, `WatchdogSec=`): `READY=1` once the buffer is open, the
//! model loaded and every camera has streamed or failed clearly (not before: `systemctl start`
//! and an update's health check wait for it); `WATCHDOG=1` at half the interval while the agent
//! is healthy: the async runtime runs this task, and no camera that says it streams has stopped
//! delivering frames (a wedged pipeline stops the pings, and systemd restarts the agent);
//! `STOPPING=1` at shutdown. Outside systemd it only waits for the shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cascade_shared::sd_notify;
use cascade_shared::shutdown::Shutdown;

use crate::camera::CameraState;
use crate::telemetry::Telemetry;

/// The longest wait for the cameras before `READY=1` is sent anyway (a camera still connecting
/// then shows in `STATUS=`).
const READY_WAIT: Duration = Duration::from_secs(60);

/// Every camera has streamed, ended or failed clearly (it is not still connecting).
pub fn settled(cams: &[(String, CameraState)]) -> bool {
    !cams.is_empty()
        && cams
            .iter()
            .all(|(_, s)| !matches!(s, CameraState::Connecting))
}

/// Cameras that say they stream but decoded no frame since the last look (`before`: frames per
/// camera then; `now`: frames per camera now).
pub fn stalled(
    cams: &[(String, CameraState)],
    before: &HashMap<String, u64>,
    now: &HashMap<String, u64>,
) -> Vec<String> {
    cams.iter()
        .filter(|(_, s)| matches!(s, CameraState::Streaming))
        .filter(|(id, _)| before.get(id).is_some_and(|b| now.get(id) <= Some(b)))
        .map(|(id, _)| id.clone())
        .collect()
}

fn status(cams: &[(String, CameraState)]) -> String {
    let list: Vec<String> = cams.iter().map(|(id, s)| format!("{id} {s}")).collect();
    format!("STATUS=cameras: {}", list.join(", "))
}

/// Tells systemd the agent is ready, then feeds its watchdog while healthy, until `stop`.
pub async fn run(telemetry: Arc<Telemetry>, stop: Shutdown) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let started = tokio::time::Instant::now();
    while !settled(&telemetry.camera_states()) && started.elapsed() < READY_WAIT {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    let cams = telemetry.camera_states();
    sd_notify::notify(&format!("READY=1\n{}", status(&cams)));
    tracing::info!(cameras = cams.len(), "told systemd: ready");
    let Some(interval) = sd_notify::watchdog_interval() else {
        stop.cancelled().await;
        sd_notify::notify("STOPPING=1");
        return;
    };
    let mut before = telemetry.frames_by_camera();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(interval / 2) => {}
        }
        let (cams, now) = (telemetry.camera_states(), telemetry.frames_by_camera());
        let stuck = stalled(&cams, &before, &now);
        if stuck.is_empty() {
            sd_notify::notify(&format!("WATCHDOG=1\n{}", status(&cams)));
        } else {
            tracing::warn!(cameras = ?stuck, "cameras streaming without frames: the systemd watchdog is not fed");
        }
        before = now;
    }
    sd_notify::notify("STOPPING=1");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cams(states: &[(&str, CameraState)]) -> Vec<(String, CameraState)> {
        states
            .iter()
            .map(|(i, s)| (i.to_string(), s.clone()))
            .collect()
    }

    fn frames(v: &[(&str, u64)]) -> HashMap<String, u64> {
        v.iter().map(|(i, n)| (i.to_string(), *n)).collect()
    }

    #[test]
    fn ready_once_no_camera_is_still_connecting() {
        assert!(!settled(&[]));
        let failing = CameraState::Backoff {
            reason: "refused".into(),
        };
        assert!(!settled(&cams(&[
            ("a", CameraState::Streaming),
            ("b", CameraState::Connecting)
        ])));
        assert!(settled(&cams(&[
            ("a", CameraState::Streaming),
            ("b", failing)
        ])));
    }

    #[test]
    fn a_streaming_camera_without_new_frames_is_stalled_and_others_are_not() {
        let c = cams(&[
            ("live", CameraState::Streaming),
            ("wedged", CameraState::Streaming),
            ("ended", CameraState::Ended),
            ("new", CameraState::Streaming),
        ]);
        let before = frames(&[("live", 10), ("wedged", 7), ("ended", 3)]);
        let now = frames(&[("live", 12), ("wedged", 7), ("ended", 3), ("new", 1)]);
        assert_eq!(stalled(&c, &before, &now), vec!["wedged".to_string()]);
    }
}
