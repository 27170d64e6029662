//! Config schemas: strict TOML (`deny_unknown_fields`) read into raw structs, then validated into
//! the types the binaries run on. Validation reports every problem at once.

pub mod cloud;
pub mod edge;
pub mod effective;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Problems;

/// The inference runtime a model runs on. One backend per variant in `cascade-infer`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// ONNX Runtime (`libonnxruntime.so`), CPU execution provider.
    Onnxruntime,
    /// LiteRT (`libLiteRt.so`, TFLite models), CPU accelerator (XNNPACK).
    Litert,
    /// HailoRT (`libhailort.so`, HEF models) on a Hailo-8/8L (`/dev/hailo0`).
    Hailo,
}

impl BackendKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Onnxruntime => "onnxruntime",
            Self::Litert => "litert",
            Self::Hailo => "hailo",
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

/// Serde helpers for durations written as seconds (`30`, `0.5`): read straight into
/// [`std::time::Duration`], so no code converts float seconds by hand. Negative, NaN and
/// absurdly large values are refused with the field named by the TOML error.
pub mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// A century: larger values are typos.
    const MAX_S: f64 = 100.0 * 365.0 * 24.0 * 3600.0;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        in_units(d, 1.0, "seconds", MAX_S)
    }

    /// A non-negative number (integer or fraction) of `unit_s`-second units, at most `max`, as a
    /// [`Duration`]; shared by the readers of other units (milliseconds, days).
    pub(crate) fn in_units<'de, D: Deserializer<'de>>(
        d: D,
        unit_s: f64,
        unit: &str,
        max: f64,
    ) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Num {
            Int(u64),
            Float(f64),
        }
        let n = match Num::deserialize(d)? {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        };
        if !(0.0..=max).contains(&n) {
            return Err(serde::de::Error::custom(format!(
                "{n} is not a duration in {unit} (0 to {max})"
            )));
        }
        Ok(Duration::from_secs_f64(n * unit_s))
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// The same for `Option<Duration>`.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserializer, Serializer};

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use std::time::Duration;

        #[derive(Debug, serde::Deserialize)]
        struct T {
            #[serde(with = "super")]
            t: Duration,
            #[serde(default, with = "super::option")]
            o: Option<Duration>,
        }

        #[test]
        fn integers_and_fractions_are_seconds() {
            let t: T = toml::from_str("t = 2").expect("int");
            assert_eq!((t.t, t.o), (Duration::from_secs(2), None));
            let t: T = toml::from_str("t = 0.25\no = 7").expect("float");
            assert_eq!(t.t, Duration::from_millis(250));
            assert_eq!(t.o, Some(Duration::from_secs(7)));
        }

        #[test]
        fn negative_and_nan_are_refused_with_the_field() {
            for bad in ["t = -1", "t = nan", "t = \"5s\""] {
                let e = toml::from_str::<T>(bad).expect_err(bad).to_string();
                assert!(e.contains('t'), "{bad}: {e}");
            }
        }
    }
}
