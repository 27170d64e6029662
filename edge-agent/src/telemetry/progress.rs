//! Where each camera's input is (files played to an end: `input_progress_ratio{camera}`, 0 to 1)
//! and the run's figures read back for the progress line of `crate::progress`.

use prometheus::{GaugeVec, Opts, Registry};

use super::Telemetry;
use crate::progress::Snapshot;

pub(super) struct ProgressMetrics {
    input: GaugeVec,
}

impl ProgressMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        let input = GaugeVec::new(
            Opts::new(
                "input_progress_ratio",
                "How far into its input a camera played to an end (a file, not looped) is, 0 to 1",
            ),
            &["camera"],
        )
        .expect("valid metric definition");
        r.register(Box::new(input.clone()))
            .expect("unique metric name");
        Self { input }
    }
}

impl Telemetry {
    /// How far into its input `camera` is (a share of the file read).
    pub fn input_progress(&self, camera: &str, ratio: f64) {
        self.progress
            .input
            .with_label_values(&[camera])
            .set(ratio.clamp(0.0, 1.0));
    }

    /// Each camera's state now.
    pub fn camera_states(&self) -> Vec<(String, crate::camera::CameraState)> {
        self.cameras.all()
    }

    /// Frames decoded so far, per camera.
    pub fn frames_by_camera(&self) -> std::collections::HashMap<String, u64> {
        let family = self.registry.gather();
        family
            .iter()
            .filter(|f| f.name() == "cascade_edge_frames_decoded_total")
            .flat_map(|f| f.get_metric().iter())
            .filter_map(|m| {
                let cam = m.get_label().iter().find(|l| l.name() == "camera")?;
                Some((cam.value().to_string(), m.get_counter().get_value() as u64))
            })
            .collect()
    }

    /// The run's figures now, at `at_us` on the monotonic clock (one gather of the registry).
    pub fn snapshot(&self, at_us: i64) -> Snapshot {
        let families = self.registry.gather();
        let total = |name: &str| {
            cascade_shared::telemetry::family_total(&families, &format!("cascade_edge_{name}"))
        };
        let count = |name: &str| total(name).max(0.0).round() as u64;
        let input = families
            .iter()
            .filter(|f| f.name() == "cascade_edge_input_progress_ratio")
            .flat_map(|f| f.get_metric().iter().map(|m| m.get_gauge().get_value()))
            // The slowest file sets the end of the run.
            .reduce(f64::min);
        Snapshot {
            at_us,
            frames: count("frames_decoded_total"),
            motion_frames: count("motion_frames_total"),
            crops_uploaded: count("crops_uploaded_total"),
            buffered: count("buffer_records"),
            connected: total("mqtt_connected") > 0.0,
            input,
        }
    }
}
