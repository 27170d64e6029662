//! The execution-provider chain of the ONNX Runtime backend, as data: which providers a session
//! tries, in order (the hardware profile's `[gpu]` providers, then always the CPU), with their
//! settings, and what fell back and why. Pure: registering them is `onnx_providers`.

use std::fmt;
use std::path::PathBuf;

use cascade_shared::profile::{GpuProvider, GpuSpec};

/// The GPU side of [`super::BackendOptions`]: the profile's `[gpu]` and where TensorRT keeps its
/// engines (the config's `detector.engine_cache`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuOptions {
    pub spec: GpuSpec,
    /// TensorRT's engine and timing cache folder (created when missing).
    pub engine_cache: PathBuf,
}

/// Which execution provider a session runs on (or tried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    TensorRt,
    Cuda,
    Cpu,
}

impl ProviderKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::TensorRt => "tensorrt",
            Self::Cuda => "cuda",
            Self::Cpu => "cpu",
        }
    }

    /// What a box needs for this provider, for the fallback warning.
    pub fn needs(self) -> &'static str {
        match self {
            Self::TensorRt => {
                "an ONNX Runtime GPU build (libonnxruntime_providers_tensorrt.so and \
                 libonnxruntime_providers_shared.so beside libonnxruntime.so: on a Jetson the \
                 onnxruntime-gpu wheel for its JetPack) and TensorRT's libnvinfer (JetPack)"
            }
            Self::Cuda => {
                "an ONNX Runtime GPU build (libonnxruntime_providers_cuda.so and \
                 libonnxruntime_providers_shared.so beside libonnxruntime.so: on a Jetson the \
                 onnxruntime-gpu wheel for its JetPack), CUDA and cuDNN (JetPack)"
            }
            Self::Cpu => "nothing more",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One provider of the chain, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    TensorRt {
        fp16: bool,
        int8: bool,
        engine_cache: PathBuf,
    },
    Cuda,
    Cpu,
}

impl Provider {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::TensorRt { .. } => ProviderKind::TensorRt,
            Self::Cuda => ProviderKind::Cuda,
            Self::Cpu => ProviderKind::Cpu,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TensorRt {
                fp16,
                int8,
                engine_cache,
            } => {
                f.write_str("tensorrt (")?;
                for (flag, on) in [("fp16", fp16), ("int8", int8)] {
                    if *on {
                        write!(f, "{flag}, ")?;
                    }
                }
                write!(f, "engine cache {})", engine_cache.display())
            }
            Self::Cuda | Self::Cpu => f.write_str(self.kind().label()),
        }
    }
}

/// The providers a session tries, in order: the `[gpu]` ones as the profile lists them, then the
/// CPU, which is always there (and alone without `[gpu]`).
pub fn chain(gpu: Option<&GpuOptions>) -> Vec<Provider> {
    let mut chain: Vec<Provider> = gpu
        .map(|g| {
            g.spec
                .providers
                .iter()
                .map(|p| match p {
                    GpuProvider::Tensorrt => Provider::TensorRt {
                        fp16: g.spec.fp16,
                        int8: g.spec.int8,
                        engine_cache: g.engine_cache.clone(),
                    },
                    GpuProvider::Cuda => Provider::Cuda,
                })
                .collect()
        })
        .unwrap_or_default();
    chain.push(Provider::Cpu);
    chain
}

/// `tensorrt (fp16, engine cache /var/lib/cascade/trt-cache) -> cuda -> cpu`.
pub fn describe(chain: &[Provider]) -> String {
    let names: Vec<String> = chain.iter().map(ToString::to_string).collect();
    names.join(" -> ")
}

/// A provider of the chain that could not be used, and why (ONNX Runtime's own words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub provider: ProviderKind,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(providers: &[GpuProvider], fp16: bool) -> GpuOptions {
        GpuOptions {
            spec: GpuSpec {
                providers: providers.to_vec(),
                fp16,
                int8: false,
            },
            engine_cache: "/var/lib/cascade/trt-cache".into(),
        }
    }

    #[test]
    fn the_profiles_providers_come_in_order_then_the_cpu() {
        let g = gpu(&[GpuProvider::Tensorrt, GpuProvider::Cuda], true);
        let c = chain(Some(&g));
        let kinds: Vec<_> = c.iter().map(Provider::kind).collect();
        assert_eq!(
            kinds,
            [
                ProviderKind::TensorRt,
                ProviderKind::Cuda,
                ProviderKind::Cpu
            ]
        );
        assert_eq!(
            c[0],
            Provider::TensorRt {
                fp16: true,
                int8: false,
                engine_cache: "/var/lib/cascade/trt-cache".into()
            }
        );
        assert_eq!(
            describe(&c),
            "tensorrt (fp16, engine cache /var/lib/cascade/trt-cache) -> cuda -> cpu"
        );
    }

    #[test]
    fn without_gpu_options_only_the_cpu_is_tried() {
        assert_eq!(chain(None), [Provider::Cpu]);
        assert_eq!(describe(&chain(None)), "cpu");
        let cuda_only = chain(Some(&gpu(&[GpuProvider::Cuda], false)));
        assert_eq!(cuda_only, [Provider::Cuda, Provider::Cpu]);
    }
}
