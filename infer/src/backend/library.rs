//! Finding a runtime library loaded at run time (ONNX Runtime, LiteRT): the configured path, else
//! an environment variable, then the project's `.cache/` folder next to (or above) the executable
//! and the working directory.

use std::path::{Path, PathBuf};

/// Where one runtime's library is looked for.
pub struct RuntimeLibrary {
    /// The file name, for messages (`libonnxruntime.so`).
    pub name: &'static str,
    /// The environment variable that names it.
    pub env: &'static str,
    /// Its place under the project (`.cache/onnxruntime/libonnxruntime.so`).
    pub rel: &'static str,
    /// What to do when it is missing, after "run scripts/setup.sh or ".
    pub hint: &'static str,
}

impl RuntimeLibrary {
    /// The paths to try, in order.
    pub fn candidates(&self, configured: Option<&Path>) -> Vec<PathBuf> {
        if let Some(p) = configured {
            return vec![p.to_path_buf()];
        }
        let mut out = Vec::new();
        if let Some(p) = std::env::var_os(self.env) {
            out.push(PathBuf::from(p));
        }
        let rel = Path::new(self.rel);
        if let Ok(exe) = std::env::current_exe() {
            out.extend(exe.ancestors().skip(1).take(4).map(|d| d.join(rel)));
        }
        out.push(rel.to_path_buf());
        out
    }

    /// The first candidate that exists.
    pub fn locate(&self, configured: Option<&Path>) -> Result<PathBuf, String> {
        let tried = self.candidates(configured);
        tried.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
            let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
            format!(
                "{} not found (tried {}); run scripts/setup.sh or {}",
                self.name,
                list.join(", "),
                self.hint
            )
        })
    }
}
