//! Camera events: states, reconnects, capture clocks and main streams.

use std::time::Duration;

use super::Telemetry;
use crate::camera::CameraState;
use crate::camera::board::CameraBoard;
use crate::camera::gop::MainMiss;
use crate::source::CaptureClock;

impl Telemetry {
    /// A camera's state changed (`camera_up` is 1 while it streams). Retrying after a failure
    /// keeps the failure shown until the camera streams again.
    pub fn camera_state(&self, camera: &str, state: CameraState) {
        let up = i64::from(state == CameraState::Streaming);
        if self.cameras.set(camera, state.clone()).is_none() {
            return;
        }
        self.camera_up.with_label_values(&[camera]).set(up);
        match &state {
            CameraState::Streaming | CameraState::Ended => {
                tracing::info!(camera, state = %state, "camera state");
            }
            CameraState::Connecting => tracing::debug!(camera, state = %state, "camera state"),
            _ => tracing::warn!(camera, state = %state, "camera state"),
        }
    }

    /// Capture times of `camera` now come from `clock`; stream time 0 is `stream_zero_utc_us`.
    pub fn capture_clock(&self, camera: &str, clock: CaptureClock, stream_zero_utc_us: i64) {
        tracing::info!(
            camera,
            clock = clock.label(),
            stream_zero_utc_us,
            "capture times from this clock"
        );
        for c in CaptureClock::ALL {
            self.capture_clock
                .with_label_values(&[camera, c.label()])
                .set(i64::from(c == clock));
        }
    }

    pub fn main_stream_failed(&self, camera: &str, err: &dyn std::fmt::Display, delay: Duration) {
        tracing::warn!(
            camera,
            error = %err,
            retry_in_s = delay.as_secs_f64(),
            "main stream reconnecting; crops come from the sub-stream meanwhile"
        );
        self.main_failures.with_label_values(&[camera]).inc();
    }

    /// A crop was cut from the main stream (`seconds` to decode its picture), or from the
    /// sub-stream because of `miss`.
    pub fn main_stream_crop(&self, camera: &str, seconds: f64, miss: Option<&MainMiss>) {
        match miss {
            None => {
                tracing::debug!(camera, seconds, "crop cut from the main stream");
                self.main_crops.with_label_values(&[camera]).inc();
            }
            Some(m) => {
                tracing::info!(camera, reason = %m, "crop cut from the sub-stream");
                self.main_fallbacks
                    .with_label_values(&[camera, m.label()])
                    .inc();
            }
        }
    }

    pub fn camera_state_of(&self, camera: &str) -> Option<CameraState> {
        self.cameras.get(camera)
    }

    /// Every camera's state, for the device's status message.
    pub fn cameras(&self) -> &CameraBoard {
        &self.cameras
    }

    /// A camera run failed and restarts after `delay`.
    pub fn camera_reconnect(
        &self,
        camera: &str,
        reason: &'static str,
        err: &dyn std::fmt::Display,
        delay: Duration,
    ) {
        tracing::warn!(
            camera,
            reason,
            error = %err,
            retry_in_s = delay.as_secs_f64(),
            "camera restarting"
        );
        self.camera_reconnects
            .with_label_values(&[camera, reason])
            .inc();
    }

    pub fn camera_reconnects(&self, camera: &str, reason: &str) -> u64 {
        self.camera_reconnects
            .with_label_values(&[camera, reason])
            .get()
    }
}
