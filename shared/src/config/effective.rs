//! The settings in force: the config's value where it sets one, else the hardware profile's, else
//! the built-in default, each with where it came from (for `check` and the start-up log).

use std::fmt;

use super::BackendKind;
use super::edge::DetectorConfig;
use crate::Problems;
use crate::profile::{Accelerator, GpuSpec, HardwareProfile};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Config,
    Profile(String),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config => f.write_str("config"),
            Self::Profile(name) => write!(f, "profile {name}"),
            Self::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub from: Origin,
}

fn pick<T>(config: Option<T>, profile: Option<(&str, T)>, default: T) -> Setting<T> {
    match (config, profile) {
        (Some(value), _) => Setting {
            value,
            from: Origin::Config,
        },
        (None, Some((name, value))) => Setting {
            value,
            from: Origin::Profile(name.to_string()),
        },
        (None, None) => Setting {
            value: default,
            from: Origin::Default,
        },
    }
}

/// The detector and power settings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub backend: Setting<BackendKind>,
    pub threads: Setting<u32>,
    /// Empty: the model's own input size.
    pub input_sizes: Setting<Vec<u32>>,
    /// Power modes the agent steps between (nvpmodel ids: high, then low); empty: none.
    pub power_modes: Setting<Vec<u32>>,
    /// The Edge TPU runs the model (LiteRT with the `libedgetpu` delegate): the profile's
    /// accelerator is `edge_tpu` and the backend in force is LiteRT.
    pub edge_tpu: bool,
    /// ONNX Runtime's GPU execution providers and TensorRT flags (the profile's `[gpu]`); None:
    /// the CPU provider alone.
    pub gpu: Setting<Option<GpuSpec>>,
}

impl Effective {
    /// Applies `profile` under the config's `[detector]` section (the same type in the file as
    /// written and in the validated config). An accelerator with no backend in this build is a
    /// problem unless the config names a backend.
    pub fn resolve(
        d: &DetectorConfig,
        profile: Option<&HardwareProfile>,
    ) -> Result<Self, Problems> {
        let name = profile.map(|p| p.name.as_str());
        let mut problems = Problems::new();
        let profile_backend = match profile.map(|p| p.accelerator.backend()) {
            Some(Ok(b)) => name.map(|n| (n, b)),
            Some(Err(why)) if d.backend.is_none() => {
                problems.push("device.profile", why);
                None
            }
            _ => None,
        };
        let backend = pick(d.backend, profile_backend, BackendKind::Onnxruntime);
        let edge_tpu = backend.value == BackendKind::Litert
            && profile.is_some_and(|p| p.accelerator == Accelerator::EdgeTpu);
        let effective = Self {
            backend,
            edge_tpu,
            threads: pick(
                d.threads,
                profile.map(|p| (p.name.as_str(), p.detector_threads)),
                1,
            ),
            input_sizes: pick(
                d.input_sizes.clone(),
                profile.map(|p| (p.name.as_str(), p.detector_input_sizes.clone())),
                Vec::new(),
            ),
            power_modes: pick(
                None,
                profile.and_then(|p| {
                    let (high, low) = p.power.as_ref()?.nvpmodel_modes()?;
                    Some((p.name.as_str(), vec![high, low]))
                }),
                Vec::new(),
            ),
            gpu: pick(
                None,
                profile.and_then(|p| Some((p.name.as_str(), Some(p.gpu.clone()?)))),
                None,
            ),
        };
        problems.into_result(effective)
    }

    /// One line per setting: `detector.threads = 2 (profile x86_64-cpu)`.
    pub fn report(&self) -> String {
        let sizes = |v: &[u32]| {
            if v.is_empty() {
                "the model's".to_string()
            } else {
                format!("{v:?}")
            }
        };
        let delegate = if self.edge_tpu {
            " with the Edge TPU delegate"
        } else {
            ""
        };
        format!(
            "detector.backend = {}{delegate} ({})\ndetector.threads = {} ({})\ndetector.input_sizes = {} ({})\ndetector.gpu = {} ({})\npower modes = {} ({})\n",
            self.backend.value.label(),
            self.backend.from,
            self.threads.value,
            self.threads.from,
            sizes(&self.input_sizes.value),
            self.input_sizes.from,
            self.gpu
                .value
                .as_ref()
                .map_or_else(|| "none (the CPU)".to_string(), GpuSpec::describe),
            self.gpu.from,
            if self.power_modes.value.is_empty() {
                "none".to_string()
            } else {
                format!("{:?}", self.power_modes.value)
            },
            self.power_modes.from,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Arch, PowerSpec};

    fn power() -> PowerSpec {
        toml::from_str(
            "manager = \"nvpmodel\"\nhigh_mode = 0\nlow_mode = 1\n\
             mode = [{ id = 0, name = \"15W\", watts = 15.0 }, { id = 1, name = \"7W\", watts = 7.0 }]",
        )
        .expect("power spec")
    }

    fn config(detector_extra: &str) -> DetectorConfig {
        toml::from_str(&format!("manifest = \"m.toml\"\n{detector_extra}")).expect("config")
    }

    fn profile(accelerator: Accelerator) -> HardwareProfile {
        HardwareProfile {
            name: "jetson".into(),
            description: String::new(),
            arch: Arch::Aarch64,
            accelerator,
            cpu_cores: 6,
            memory_mib: 8000,
            detector_threads: 4,
            detector_input_sizes: vec![640, 416, 320],
            power: Some(power()),
            gpu: Some(
                toml::from_str("providers = [\"tensorrt\", \"cuda\"]\nfp16 = true").expect("gpu"),
            ),
        }
    }

    #[test]
    fn the_profile_fills_what_the_config_omits() {
        let e = Effective::resolve(&config(""), Some(&profile(Accelerator::Cuda))).expect("ok");
        let from_profile = Origin::Profile("jetson".into());
        assert_eq!(e.threads.value, 4);
        assert_eq!(e.threads.from, from_profile);
        assert_eq!(e.input_sizes.value, vec![640, 416, 320]);
        assert_eq!(e.backend.value, BackendKind::Onnxruntime);
        assert_eq!(e.backend.from, from_profile);
        assert_eq!(e.power_modes.value, vec![0, 1]);
        assert_eq!(e.gpu.from, from_profile);
        assert!(
            e.report()
                .contains("detector.gpu = tensorrt, cuda (fp16) (profile jetson)"),
            "{}",
            e.report()
        );
        assert!(
            e.report().contains("detector.threads = 4 (profile jetson)"),
            "{}",
            e.report()
        );
    }

    #[test]
    fn the_config_overrides_the_profile() {
        let cfg = config("threads = 1\ninput_sizes = [320]\nbackend = \"onnxruntime\"");
        let e = Effective::resolve(&cfg, Some(&profile(Accelerator::Cuda))).expect("ok");
        assert_eq!((e.threads.value, e.threads.from), (1, Origin::Config));
        assert_eq!(e.input_sizes.value, vec![320]);
        assert_eq!(e.backend.from, Origin::Config);
    }

    #[test]
    fn without_a_profile_the_defaults_apply() {
        let e = Effective::resolve(&config(""), None).expect("ok");
        let report = e.report();
        assert_eq!((e.threads.value, e.threads.from), (1, Origin::Default));
        assert!(e.input_sizes.value.is_empty());
        assert!(e.power_modes.value.is_empty());
        assert!(report.contains("detector.gpu = none (the CPU) (default)"));
        assert_eq!((e.gpu.value, e.gpu.from), (None, Origin::Default));
    }

    #[test]
    fn an_edge_tpu_profile_runs_litert_with_the_delegate_unless_the_config_says_otherwise() {
        let e = Effective::resolve(&config(""), Some(&profile(Accelerator::EdgeTpu))).expect("ok");
        assert_eq!(e.backend.value, BackendKind::Litert);
        assert!(e.edge_tpu);
        assert!(e.report().contains("Edge TPU"), "{}", e.report());
        let cfg = config("backend = \"onnxruntime\"");
        let e = Effective::resolve(&cfg, Some(&profile(Accelerator::EdgeTpu))).expect("ok");
        assert!(!e.edge_tpu, "the CPU on the config's word");
        let e = Effective::resolve(&config(""), Some(&profile(Accelerator::Cuda))).expect("ok");
        assert!(!e.edge_tpu);
    }
}
