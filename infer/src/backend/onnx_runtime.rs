//! Loads `libonnxruntime.so` once per process (`ort` with `load-dynamic`): where to find it, and the
//! process-wide environment.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;

use super::library::RuntimeLibrary;

static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Where the library is looked for when the config names none: `$ORT_DYLIB_PATH`, then the project's
/// `.cache/onnxruntime/` next to (or above) the executable and the working directory.
const LIBRARY: RuntimeLibrary = RuntimeLibrary {
    name: "libonnxruntime.so",
    env: "ORT_DYLIB_PATH",
    rel: ".cache/onnxruntime/libonnxruntime.so",
    hint: "set detector.onnxruntime",
};

/// The paths tried for the library, in order.
pub fn candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    LIBRARY.candidates(configured)
}

/// The first candidate that exists.
pub fn locate(configured: Option<&Path>) -> Result<PathBuf, String> {
    LIBRARY.locate(configured)
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
