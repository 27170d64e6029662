//! Hardware profiles (`hardware-profiles/*.toml`): what a device can do, read by the edge agent.

use std::path::Path;

use serde::Deserialize;

use crate::Problems;
use crate::config::BackendKind;

mod gpu;
mod power;

pub use gpu::{GpuProvider, GpuSpec};
pub use power::{
    DEFAULT_THERMAL_ZONES, Governors, ManagerKind, PowerMode, PowerSpec, Rail, thermal_zones,
};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HardwareProfile {
    pub name: String,
    pub description: String,
    pub arch: Arch,
    pub accelerator: Accelerator,
    pub cpu_cores: u32,
    pub memory_mib: u32,
    /// Threads ONNX Runtime may use for one inference.
    pub detector_threads: u32,
    /// Detector input sides the agent may step between to keep up, largest first.
    pub detector_input_sizes: Vec<u32>,
    #[serde(default)]
    pub power: Option<PowerSpec>,
    /// `[gpu]`: ONNX Runtime's GPU execution providers to try before the CPU (accelerator
    /// `cuda` only). None: the CPU provider alone.
    #[serde(default)]
    pub gpu: Option<GpuSpec>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Aarch64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Accelerator {
    Cpu,
    Cuda,
    EdgeTpu,
    Hailo,
}

impl HardwareProfile {
    pub fn load(path: &Path) -> Result<Self, Problems> {
        let at = path.display().to_string();
        let mut p = Problems::new();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                p.push(&at, format!("cannot read: {e}"));
                return Err(p);
            }
        };
        let profile: Self = match toml::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                p.push(&at, e.to_string().trim_end());
                return Err(p);
            }
        };
        p.check(
            profile.cpu_cores >= 1,
            format!("{at}: cpu_cores"),
            "must be at least 1",
        );
        p.check(
            (1..=profile.cpu_cores.max(1)).contains(&profile.detector_threads),
            format!("{at}: detector_threads"),
            "must be 1..=cpu_cores",
        );
        p.check(
            valid_input_sizes(&profile.detector_input_sizes),
            format!("{at}: detector_input_sizes"),
            "must be non-empty, strictly decreasing multiples of 32",
        );
        if let Some(power) = &profile.power {
            power.validate(&at, &mut p);
        }
        if let Some(gpu) = &profile.gpu {
            gpu.validate(&at, profile.accelerator == Accelerator::Cuda, &mut p);
        }
        p.into_result(profile)
    }
}

/// Non-empty, strictly decreasing multiples of 32.
pub fn valid_input_sizes(sizes: &[u32]) -> bool {
    !sizes.is_empty()
        && sizes.windows(2).all(|w| w[0] > w[1])
        && sizes.iter().all(|s| *s > 0 && s.is_multiple_of(32))
}

impl Accelerator {
    pub fn label(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::EdgeTpu => "edge_tpu",
            Self::Hailo => "hailo",
        }
    }

    /// The backend that drives this accelerator in this build, or why there is none.
    pub fn backend(self) -> Result<BackendKind, String> {
        match self {
            // ONNX Runtime; on `cuda`, with the GPU providers the profile's `[gpu]` names.
            Self::Cpu | Self::Cuda => Ok(BackendKind::Onnxruntime),
            // LiteRT with the libedgetpu delegate.
            Self::EdgeTpu => Ok(BackendKind::Litert),
            // HailoRT (cascade-infer's `hailo` feature; `not_built` says so when it is off).
            Self::Hailo => Ok(BackendKind::Hailo),
        }
    }
}
