//! Config schemas: strict TOML (`deny_unknown_fields`) read into raw structs, then validated into
//! the types the binaries run on. Validation reports every problem at once.

pub mod cloud;
pub mod edge;

use std::path::{Path, PathBuf};

use crate::Problems;

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
