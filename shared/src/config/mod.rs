//! Config schemas: strict TOML (`deny_unknown_fields`) read into raw structs, then validated into
//! the types the binaries run on. Validation reports every problem at once.

pub mod cloud;
pub mod edge;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Problems;

/// The inference runtime a model runs on. One backend per variant in `cascade-infer`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// ONNX Runtime (`libonnxruntime.so`), CPU execution provider.
    Onnxruntime,
}

impl BackendKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Onnxruntime => "onnxruntime",
        }
    }
}

/// A config file: strict TOML, relative paths resolved against its folder, then validated.
pub trait ConfigFile: serde::de::DeserializeOwned {
    /// Makes relative paths relative to `base`, the config file's folder.
    fn resolve_paths(&mut self, base: &Path);

    /// Every range and consistency problem (files are checked by the binaries' `check`).
    fn validate(&self) -> Problems;

    /// Parses (strictly) and resolves paths, without [`ConfigFile::validate`]: `check` reports
    /// both kinds of problem together.
    fn read(path: &Path) -> Result<Self, Problems> {
        let mut cfg: Self = read_toml(path)?;
        cfg.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(cfg)
    }

    /// Reads and validates.
    fn load(path: &Path) -> Result<Self, Problems> {
        let cfg = Self::read(path)?;
        cfg.validate().into_result(cfg)
    }
}

/// Reads a TOML file into `T`, naming the file in any error.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Problems> {
    let at = path.display().to_string();
    let mut p = Problems::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            p.push(at, format!("cannot read: {e}"));
            return Err(p);
        }
    };
    toml::from_str(&text).map_err(|e| {
        p.push(at, e.to_string().trim_end());
        p
    })
}

/// Resolves `path` against the folder of the config file it came from.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}
