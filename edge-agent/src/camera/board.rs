//! The state of every camera in one place: `/readyz` reads it, and the uplink publishes it in the
//! device's retained status message whenever it changes in a way the cloud should hear about.
//! A camera that fails and retries keeps showing its failure (with the reason) while it
//! reconnects, until it streams again: the status never flaps to `connecting` and back.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use cascade_shared::status::{AgentInfo, CameraPhase, CameraStatus, DeviceStatus, Presence};
use tokio::sync::Notify;

use super::CameraState;

#[derive(Debug, Default)]
struct Inner {
    states: BTreeMap<String, CameraState>,
    /// What runs (version, profile, models), once the detector is loaded.
    agent: Option<AgentInfo>,
    /// Bumped on every change worth publishing.
    version: u64,
}

#[derive(Debug, Default)]
pub struct CameraBoard {
    inner: Mutex<Inner>,
    changed: Notify,
}

impl CameraBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `camera`'s state; returns the previous one (`Some(None)` for a new camera), or `None`
    /// when nothing changed.
    pub fn set(&self, camera: &str, state: CameraState) -> Option<Option<CameraState>> {
        let mut inner = self.lock();
        let old = inner.states.get(camera).cloned();
        if old.as_ref() == Some(&state) {
            return None;
        }
        // Retrying after a failure is not news: the failure stays shown until the camera streams.
        let retrying = matches!(
            (&old, &state),
            (
                Some(CameraState::Backoff { .. } | CameraState::Failed { .. }),
                CameraState::Connecting
            )
        );
        if retrying {
            return None;
        }
        inner.states.insert(camera.to_string(), state);
        inner.version += 1;
        self.changed.notify_one();
        Some(old)
    }

    pub fn get(&self, camera: &str) -> Option<CameraState> {
        self.lock().states.get(camera).cloned()
    }

    /// Every camera and its state, by id.
    pub fn all(&self) -> Vec<(String, CameraState)> {
        let inner = self.lock();
        inner
            .states
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Resolves after the next change worth publishing.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// Records what the agent runs (its version, profile and models), published with the cameras.
    pub fn set_agent(&self, agent: AgentInfo) {
        let mut inner = self.lock();
        inner.agent = Some(agent);
        inner.version += 1;
        self.changed.notify_one();
    }

    /// The device's status message: online, with what runs and each camera's state.
    pub fn device_status(&self) -> DeviceStatus {
        let inner = self.lock();
        DeviceStatus {
            state: Presence::Online,
            agent: inner.agent.clone(),
            cameras: inner
                .states
                .iter()
                .map(|(id, s)| camera_status(id, s))
                .collect(),
        }
    }
}

fn camera_status(id: &str, s: &CameraState) -> CameraStatus {
    let (state, reason) = match s {
        CameraState::Connecting => (CameraPhase::Connecting, None),
        CameraState::Streaming => (CameraPhase::Streaming, None),
        CameraState::Ended => (CameraPhase::Ended, None),
        CameraState::Backoff { reason } => (CameraPhase::Backoff, Some(reason.clone())),
        CameraState::Failed { reason } => (CameraPhase::Failed, Some(reason.clone())),
    };
    CameraStatus {
        id: id.to_string(),
        state,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(r: &str) -> CameraState {
        CameraState::Backoff { reason: r.into() }
    }

    #[test]
    fn the_status_keeps_a_failure_while_the_camera_retries() {
        let b = CameraBoard::default();
        b.set("a", CameraState::Connecting);
        b.set("a", CameraState::Streaming);
        b.set("b", CameraState::Connecting);
        let v = b.version();
        b.set("b", backoff("refused"));
        assert_eq!(b.version(), v + 1, "a failure is news");
        assert_eq!(b.set("b", CameraState::Connecting), None, "retrying is not");
        assert_eq!(b.version(), v + 1);
        let s = b.device_status();
        assert_eq!(s.cameras.len(), 2);
        assert_eq!(s.cameras[0].state, CameraPhase::Streaming);
        assert_eq!(s.cameras[1].state, CameraPhase::Backoff);
        assert_eq!(s.cameras[1].reason.as_deref(), Some("refused"));
        b.set("b", CameraState::Streaming);
        assert_eq!(b.device_status().cameras_down(), 0);
    }

    #[test]
    fn what_runs_is_news_and_goes_out_with_the_cameras() {
        let b = CameraBoard::default();
        b.set("a", CameraState::Streaming);
        assert_eq!(b.device_status().agent, None);
        let v = b.version();
        let info = AgentInfo {
            version: "1.2.3".into(),
            profile: None,
            models: vec![],
        };
        b.set_agent(info.clone());
        assert_eq!(b.version(), v + 1);
        let s = b.device_status();
        assert_eq!(s.agent, Some(info));
        assert_eq!(s.cameras.len(), 1);
    }

    #[test]
    fn unchanged_states_are_not_news() {
        let b = CameraBoard::default();
        assert_eq!(b.set("a", CameraState::Streaming), Some(None));
        assert_eq!(b.set("a", CameraState::Streaming), None);
        assert_eq!(b.version(), 1);
    }

    #[tokio::test]
    async fn a_change_wakes_the_waiter_even_if_it_came_first() {
        let b = CameraBoard::default();
        b.set("a", backoff("x"));
        tokio::time::timeout(std::time::Duration::from_secs(1), b.changed())
            .await
            .expect("woken");
    }
}
