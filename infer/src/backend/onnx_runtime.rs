//! Loads `libonnxruntime.so` once per process (`ort` with `load-dynamic`): where to find it, and the
//! process-wide environment.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;

static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Where to look for the library when the config names none: `$ORT_DYLIB_PATH`, then the project's
/// `.cache/onnxruntime/` next to (or above) the executable and the working directory.
pub fn candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = configured {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        out.push(PathBuf::from(p));
    }
    let rel = Path::new(".cache/onnxruntime/libonnxruntime.so");
    if let Ok(exe) = std::env::current_exe() {
        out.extend(exe.ancestors().skip(1).take(4).map(|d| d.join(rel)));
    }
    out.push(rel.to_path_buf());
    out
}

/// The first candidate that exists.
pub fn locate(configured: Option<&Path>) -> Result<PathBuf, String> {
    let tried = candidates(configured);
    tried.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        format!(
            "libonnxruntime.so not found (tried {}); run scripts/setup.sh or set detector.onnxruntime",
            list.join(", ")
        )
    })
}

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment(configured: Option<&Path>) -> Result<Environment, String> {
    ENV.get_or_init(|| {
        let path = locate(configured)?;
        let builder = ort::init_from(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        builder
            .with_name("cascade")
            .build()
            .map_err(|e| format!("{}: {e}", path.display()))
    })
    .clone()
}
