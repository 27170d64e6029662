//! `[detector]`: the person detector's model, runtime, rates and thresholds.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{EdgeTpuConfig, RegionsConfig};
use crate::Problems;
use crate::config::BackendKind;

/// `[detector]`: the person detector. `backend`, `threads` and `input_sizes` are resolved against
/// the hardware profile by [`crate::config::effective::Effective`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// A model manifest (see `models/`). No default: `manifest` must be set.
    pub manifest: PathBuf,
    /// The inference runtime. Default: the hardware profile's accelerator's (`onnxruntime` for
    /// `cpu` and `cuda`), else `onnxruntime`.
    #[serde(default)]
    pub backend: Option<BackendKind>,
    /// `libonnxruntime.so`. Default: `$ORT_DYLIB_PATH`, then `.cache/onnxruntime/libonnxruntime.so`.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// TensorRT's engine (and timing) cache folder, used when the hardware profile's `[gpu]` names
    /// `tensorrt`: the first start with a model builds its engine (minutes on a Jetson) and keeps
    /// it here for the next starts; created when missing, must be writable, and must not be
    /// `buffer.dir` or inside it. Default: `trt-cache` beside `buffer.dir`
    /// (`/var/lib/cascade/trt-cache` for `/var/lib/cascade/buffer`).
    #[serde(default)]
    pub engine_cache: Option<PathBuf>,
    /// Detector input sides the agent may step between to keep up, largest first (multiples of
    /// 32). Default: the hardware profile's `detector_input_sizes`, else the model's input.
    #[serde(default)]
    pub input_sizes: Option<Vec<u32>>,
    /// Most detector runs per second per camera while a person is being tracked (so the best
    /// crop is found), in (0, 120]. Default: 5.
    #[serde(default = "default_rate")]
    pub max_rate_hz: f32,
    /// Most detector runs per second per camera while only motion is seen, in (0, 120], at most
    /// a camera's `max_rate_hz`. Default: 2.
    #[serde(default = "default_motion_rate")]
    pub motion_rate_hz: f32,
    /// `[detector.edgetpu]`: the Edge TPU runtime and device (profiles with `accelerator =
    /// "edge_tpu"`).
    #[serde(default)]
    pub edgetpu: EdgeTpuConfig,
    /// `[detector.regions]`: run on squares around the motion instead of the whole frame.
    #[serde(default)]
    pub regions: RegionsConfig,
    /// Lowest score kept, 0 to 1. Default: 0.5.
    #[serde(default = "default_score")]
    pub score_threshold: f32,
    /// IoU above which non-maximum suppression drops the weaker box, in (0, 1]. Default: 0.45.
    #[serde(default = "default_iou")]
    pub nms_iou: f32,
    /// Smallest detection kept, as a fraction (0 to below 1) of the frame area. Default: 0.001.
    #[serde(default = "default_min_box")]
    pub min_box_area: f32,
    /// Threads one inference may use, 1 to 64. Default: the hardware profile's
    /// `detector_threads`, else 1.
    #[serde(default)]
    pub threads: Option<u32>,
    /// The detector's p95 run time, in milliseconds, that the agent steps down `input_sizes` to
    /// stay under (and steps back up within, with headroom), 1 to 10000. Default: the interval
    /// that keeps every camera at its rate on the one shared detector, 1000 / (the sum of the
    /// cameras' rates) ms: 1000 / (`max_rate_hz` × number of cameras) when none sets its own.
    #[serde(default)]
    pub latency_budget_ms: Option<u32>,
    /// Step between `input_sizes` to keep within the budget (true), or always run the largest
    /// (false). Default: true.
    #[serde(default = "default_adapt")]
    pub adapt: bool,
}

fn default_rate() -> f32 {
    5.0
}
fn default_motion_rate() -> f32 {
    2.0
}
fn default_adapt() -> bool {
    true
}
fn default_score() -> f32 {
    0.5
}
fn default_iou() -> f32 {
    0.45
}
fn default_min_box() -> f32 {
    0.001
}

impl DetectorConfig {
    /// The TensorRT engine cache folder in force: `engine_cache`, else `trt-cache` beside
    /// `buffer_dir`.
    pub fn engine_cache_dir(&self, buffer_dir: &Path) -> PathBuf {
        self.engine_cache
            .clone()
            .unwrap_or_else(|| buffer_dir.parent().unwrap_or(buffer_dir).join("trt-cache"))
    }

    /// `engine_cache` must not be the buffer's folder or inside it (the crops' store).
    pub(super) fn validate_engine_cache(&self, buffer_dir: &Path, p: &mut Problems) {
        if let Some(cache) = &self.engine_cache {
            p.check(
                !cache.starts_with(buffer_dir),
                "detector.engine_cache",
                format!(
                    "{}: must not be buffer.dir ({}) or inside it",
                    cache.display(),
                    buffer_dir.display()
                ),
            );
        }
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(
            self.max_rate_hz > 0.0 && self.max_rate_hz <= 120.0,
            "detector.max_rate_hz",
            "must be in (0, 120]",
        );
        p.check(
            self.motion_rate_hz > 0.0 && self.motion_rate_hz <= self.max_rate_hz,
            "detector.motion_rate_hz",
            "must be in (0, max_rate_hz]",
        );
        self.regions.validate(p);
        self.edgetpu.validate(p);
        p.check(
            (0.0..=1.0).contains(&self.score_threshold),
            "detector.score_threshold",
            "must be within 0..=1",
        );
        p.check(
            self.nms_iou > 0.0 && self.nms_iou <= 1.0,
            "detector.nms_iou",
            "must be in (0, 1]",
        );
        p.check(
            (0.0..1.0).contains(&self.min_box_area),
            "detector.min_box_area",
            "must be within 0..1",
        );
        p.check(
            self.threads.is_none_or(|t| (1..=64).contains(&t)),
            "detector.threads",
            "must be 1..=64",
        );
        p.check(
            self.latency_budget_ms
                .is_none_or(|b| (1..=10_000).contains(&b)),
            "detector.latency_budget_ms",
            "must be 1..=10000",
        );
        if let Some(sizes) = &self.input_sizes {
            p.check(
                crate::profile::valid_input_sizes(sizes),
                "detector.input_sizes",
                "must be non-empty, strictly decreasing multiples of 32",
            );
        }
    }
}
