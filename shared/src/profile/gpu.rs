//! `[gpu]` of a hardware profile: which of ONNX Runtime's GPU execution providers the detector
//! tries, in order (the CPU provider always comes last), and TensorRT's precision flags. Only for
//! `accelerator = "cuda"` (the Jetsons). Strict: unknown keys are errors, problems name the field.

use serde::Deserialize;

use crate::Problems;

/// `[gpu]`: e.g. `providers = ["tensorrt", "cuda"]`, `fp16 = true`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// ONNX Runtime execution providers to try, in this order, before the CPU provider (which
    /// always follows): `"tensorrt"`, `"cuda"`. Non-empty, no repeats, `tensorrt` before `cuda`
    /// (TensorRT hands the nodes it cannot run to the providers after it).
    pub providers: Vec<GpuProvider>,
    /// TensorRT may build FP16 kernels (`trt_fp16_enable`). Needs `tensorrt` in `providers`.
    /// Default: false.
    #[serde(default)]
    pub fp16: bool,
    /// TensorRT may build INT8 kernels (`trt_int8_enable`): for a QDQ (statically quantised)
    /// model, whose scales are in the file; there is no calibration table. Needs `tensorrt` in
    /// `providers`. Default: false.
    #[serde(default)]
    pub int8: bool,
}

/// A GPU execution provider of ONNX Runtime.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GpuProvider {
    /// `TensorrtExecutionProvider`: builds a TensorRT engine per model (minutes, cached).
    Tensorrt,
    /// `CUDAExecutionProvider`: cuDNN/cuBLAS kernels, no build step.
    Cuda,
}

impl GpuProvider {
    pub fn label(self) -> &'static str {
        match self {
            Self::Tensorrt => "tensorrt",
            Self::Cuda => "cuda",
        }
    }
}

impl GpuSpec {
    /// Checks the table; `cuda_accelerator`: the profile's `accelerator` is `cuda`.
    pub fn validate(&self, at: &str, cuda_accelerator: bool, p: &mut Problems) {
        let field = |f: &str| format!("{at}: gpu.{f}");
        p.check(
            cuda_accelerator,
            format!("{at}: gpu"),
            "only for accelerator = \"cuda\"",
        );
        let mut seen = Vec::new();
        for provider in &self.providers {
            p.check(
                !seen.contains(provider),
                field("providers"),
                format!("\"{}\" is named twice", provider.label()),
            );
            seen.push(*provider);
        }
        p.check(
            !self.providers.is_empty(),
            field("providers"),
            "must name at least one of \"tensorrt\", \"cuda\"",
        );
        let at_of = |x| self.providers.iter().position(|p| *p == x);
        if let (Some(trt), Some(cuda)) = (at_of(GpuProvider::Tensorrt), at_of(GpuProvider::Cuda)) {
            p.check(
                trt < cuda,
                field("providers"),
                "\"tensorrt\" must come before \"cuda\" (CUDA would take every node first)",
            );
        }
        let trt = at_of(GpuProvider::Tensorrt).is_some();
        for (name, on) in [("fp16", self.fp16), ("int8", self.int8)] {
            p.check(
                trt || !on,
                field(name),
                "needs \"tensorrt\" in gpu.providers (a TensorRT flag)",
            );
        }
    }

    /// `tensorrt, cuda (fp16)`, for `check` and the start-up log.
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.providers.iter().map(|p| p.label()).collect();
        let flags: Vec<&str> = [("fp16", self.fp16), ("int8", self.int8)]
            .into_iter()
            .filter_map(|(name, on)| on.then_some(name))
            .collect();
        if flags.is_empty() {
            names.join(", ")
        } else {
            format!("{} ({})", names.join(", "), flags.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> GpuSpec {
        toml::from_str(text).expect("gpu spec")
    }

    fn problems(text: &str, cuda: bool) -> Problems {
        let mut p = Problems::new();
        spec(text).validate("p.toml", cuda, &mut p);
        p
    }

    #[test]
    fn a_jetson_table_reads_and_validates() {
        let s = spec("providers = [\"tensorrt\", \"cuda\"]\nfp16 = true");
        assert_eq!(s.providers, vec![GpuProvider::Tensorrt, GpuProvider::Cuda]);
        assert!(s.fp16 && !s.int8);
        assert!(problems("providers = [\"tensorrt\", \"cuda\"]\nfp16 = true", true).is_empty());
        assert_eq!(s.describe(), "tensorrt, cuda (fp16)");
        assert_eq!(spec("providers = [\"cuda\"]").describe(), "cuda");
    }

    #[test]
    fn every_problem_names_its_field() {
        let p = problems("providers = [\"cuda\", \"tensorrt\", \"cuda\"]", true);
        assert_eq!(p.len(), 2, "{p}");
        assert!(
            p.iter().all(|l| l.starts_with("p.toml: gpu.providers")),
            "{p}"
        );
        let p = problems("providers = []\nfp16 = true\nint8 = true", false);
        assert_eq!(p.len(), 4, "{p}");
        for f in ["gpu:", "gpu.providers", "gpu.fp16", "gpu.int8"] {
            assert!(p.iter().any(|l| l.contains(f)), "{f} not named:\n{p}");
        }
        assert!(toml::from_str::<GpuSpec>("providers = [\"rocm\"]").is_err());
        assert!(toml::from_str::<GpuSpec>("providers = [\"cuda\"]\nbf16 = true").is_err());
    }

    #[test]
    fn the_jetpack_6_jetsons_try_tensorrt_then_cuda() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware-profiles");
        for (name, want) in [
            ("jetson-orin-nano", true),
            ("jetson-orin-nx", true),
            ("jetson-agx-orin", true),
            ("jetson-nano", false),
            ("x86_64-cpu", false),
        ] {
            let path = dir.join(format!("{name}.toml"));
            let profile = crate::profile::HardwareProfile::load(&path)
                .unwrap_or_else(|p| panic!("{}: {p}", path.display()));
            let providers = profile.gpu.map(|g| g.providers);
            let jetpack_6 = Some(vec![GpuProvider::Tensorrt, GpuProvider::Cuda]);
            assert_eq!(providers == jetpack_6, want, "{name}");
        }
    }
}
