//! Detector events beyond one run: where it looked (regions or the whole frame) and the input
//! side it runs at per camera (the adaptive-resolution ladder), with each change.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::{Telemetry, counter, gauge};

/// The detector's ladder and region metrics, registered with the agent's others.
pub(super) struct DetectorMetrics {
    throttled: IntGauge,
    looks: IntCounterVec,
    side: IntGaugeVec,
    changes: IntCounterVec,
}

impl DetectorMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        let side = IntGaugeVec::new(
            Opts::new(
                "detector_input_side_pixels",
                "The detector input side a camera's frames run at now (the adaptive ladder)",
            ),
            &["camera"],
        )
        .expect("valid metric");
        r.register(Box::new(side.clone())).expect("registers once");
        Self {
            throttled: gauge(
                r,
                "device_thermal_throttled",
                "1 while a thermal zone is at its passive trip point or near its critical one",
            ),
            looks: counter(
                r,
                "detector_looks_total",
                "Images the detector ran on: kind = region (a square around motion or a \
                 tracked person) or whole (the whole frame)",
                &["camera", "kind"],
            ),
            side,
            changes: counter(
                r,
                "detector_input_side_changes_total",
                "Steps of a camera along the detector's input-size ladder, by reason \
                 (latency, drops, thermal: down; headroom: up)",
                &["camera", "reason"],
            ),
        }
    }
}

impl Telemetry {
    /// The device became thermally throttled (or cooled down): the detector steps down.
    pub fn thermal(&self, throttled: bool) {
        if throttled {
            tracing::warn!(
                "the device is thermally throttled: the detector steps down its input size"
            );
        } else {
            tracing::info!("the device is no longer thermally throttled");
        }
        self.detector.throttled.set(i64::from(throttled));
    }

    /// One run of a camera's frame looked at `regions` regions (0: the whole frame).
    pub fn detector_looked(&self, camera: &str, regions: usize) {
        let m = &self.detector;
        if regions == 0 {
            m.looks.with_label_values(&[camera, "whole"]).inc();
        } else {
            m.looks
                .with_label_values(&[camera, "region"])
                .inc_by(regions as u64);
        }
    }

    /// The input side `camera` runs at, at start.
    pub fn detector_side(&self, camera: &str, side: u32) {
        self.detector
            .side
            .with_label_values(&[camera])
            .set(i64::from(side));
    }

    /// `camera` stepped along the ladder from `from` to `to` for `reason` (`detail` says more).
    pub fn detector_side_changed(
        &self,
        camera: &str,
        from: u32,
        to: u32,
        reason: &str,
        detail: &str,
    ) {
        tracing::info!(
            camera,
            from,
            to,
            reason,
            detail,
            "detector input size changed to keep up"
        );
        self.detector_side(camera, to);
        self.detector
            .changes
            .with_label_values(&[camera, reason])
            .inc();
    }
}
