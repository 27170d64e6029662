//! `[power]` of a hardware profile: who switches the device's power modes (`nvpmodel` on a Jetson,
//! the CPU governor on a Raspberry Pi), the modes it has (ids, names, watts), the one used while
//! something is in view and the one used while idle, and where the thermal zones, power rails
//! and throttling state are read. Strict: unknown keys are errors, problems name the field.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Problems;

/// Thermal zones of Linux, when a profile names none.
pub const DEFAULT_THERMAL_ZONES: &str = "/sys/class/thermal";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PowerSpec {
    /// Who switches power modes.
    pub manager: ManagerKind,
    /// The device's power modes (`nvpmodel`): `{ id, name, watts }`, `watts` left out for MAXN
    /// (no budget).
    #[serde(default, rename = "mode")]
    pub modes: Vec<PowerMode>,
    /// The mode id used while motion or a tracked person is seen (`nvpmodel`).
    #[serde(default)]
    pub high_mode: Option<u32>,
    /// The mode id used after the configured idle time (`nvpmodel`).
    #[serde(default)]
    pub low_mode: Option<u32>,
    /// The `nvpmodel` command (looked up on `PATH` unless a path). Default: `nvpmodel`.
    #[serde(default = "default_nvpmodel")]
    pub nvpmodel: String,
    /// The `jetson_clocks` command, run after switching to the high mode when the config allows.
    #[serde(default = "default_jetson_clocks")]
    pub jetson_clocks: String,
    /// The `vcgencmd` command (Raspberry Pi), asked `get_throttled` when present.
    #[serde(default = "default_vcgencmd")]
    pub vcgencmd: String,
    /// The CPU governors (Raspberry Pi) while active and while idle, when the config allows it.
    #[serde(default)]
    pub governors: Option<Governors>,
    /// The cpufreq folder (its `policy*/scaling_governor` files). Default: the system's.
    #[serde(default = "default_cpufreq")]
    pub cpufreq: PathBuf,
    /// The folder of `thermal_zone*` (each `type`, `temp`, trip points).
    #[serde(default = "default_thermal")]
    pub thermal_zones: PathBuf,
    /// A file holding the firmware's throttled bits in hex (Raspberry Pi), read when present.
    #[serde(default)]
    pub throttled_file: Option<PathBuf>,
    /// Power rails read into `power_rail_watts{rail}`.
    #[serde(default, rename = "rail")]
    pub rails: Vec<Rail>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ManagerKind {
    /// NVIDIA Jetson: `nvpmodel -q` / `-m <id>`.
    Nvpmodel,
    /// Raspberry Pi: throttling from the firmware, the CPU governor when allowed.
    RaspberryPi,
    /// Sensors only.
    None,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PowerMode {
    pub id: u32,
    pub name: String,
    /// The mode's power budget; none for MAXN.
    #[serde(default)]
    pub watts: Option<f32>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Governors {
    pub high: String,
    pub low: String,
}

/// A power rail: either a `power` file (microwatts, hwmon `power*_input`) or a `voltage`
/// (millivolts, `in*_input`) and a `current` (milliamps, `curr*_input`) file, as the INA3221
/// monitors of a Jetson give. A `*` in a path takes the first match in sorted order (`hwmon*`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rail {
    pub name: String,
    #[serde(default)]
    pub power: Option<PathBuf>,
    #[serde(default)]
    pub voltage: Option<PathBuf>,
    #[serde(default)]
    pub current: Option<PathBuf>,
}

fn default_nvpmodel() -> String {
    "nvpmodel".into()
}

fn default_jetson_clocks() -> String {
    "jetson_clocks".into()
}

fn default_vcgencmd() -> String {
    "vcgencmd".into()
}

fn default_cpufreq() -> PathBuf {
    PathBuf::from("/sys/devices/system/cpu/cpufreq")
}

fn default_thermal() -> PathBuf {
    PathBuf::from(DEFAULT_THERMAL_ZONES)
}

impl ManagerKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Nvpmodel => "nvpmodel",
            Self::RaspberryPi => "raspberry_pi",
            Self::None => "none",
        }
    }
}

impl PowerSpec {
    /// The mode with `id`.
    pub fn mode(&self, id: u32) -> Option<&PowerMode> {
        self.modes.iter().find(|m| m.id == id)
    }

    /// `(high, low)` mode ids of an `nvpmodel` profile.
    pub fn nvpmodel_modes(&self) -> Option<(u32, u32)> {
        (self.manager == ManagerKind::Nvpmodel)
            .then_some(self.high_mode.zip(self.low_mode))
            .flatten()
    }

    /// Every problem, each naming its field under `at` (the profile file).
    pub fn validate(&self, at: &str, p: &mut Problems) {
        let field = |f: &str| format!("{at}: power.{f}");
        let mut ids: Vec<u32> = self.modes.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        ids.dedup();
        p.check(
            ids.len() == self.modes.len(),
            field("mode"),
            "mode ids must be unique",
        );
        for (i, m) in self.modes.iter().enumerate() {
            p.check(
                m.watts.is_none_or(|w| w.is_finite() && w > 0.0),
                field(&format!("mode[{i}].watts")),
                "must be positive",
            );
        }
        if self.manager == ManagerKind::Nvpmodel {
            for (name, id) in [("high_mode", self.high_mode), ("low_mode", self.low_mode)] {
                match id {
                    None => p.push(field(name), "required with manager = \"nvpmodel\""),
                    Some(id) => p.check(
                        self.mode(id).is_some(),
                        field(name),
                        format!("{id} is not one of the [[power.mode]] ids {ids:?}"),
                    ),
                }
            }
            p.check(
                self.high_mode.is_none() || self.high_mode != self.low_mode,
                field("low_mode"),
                "must differ from high_mode",
            );
        }
        if let Some(g) = &self.governors {
            let ok =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            p.check(
                ok(&g.high),
                field("governors.high"),
                "must be a governor name",
            );
            p.check(
                ok(&g.low),
                field("governors.low"),
                "must be a governor name",
            );
        }
        for (i, r) in self.rails.iter().enumerate() {
            let ok = matches!(
                (&r.power, &r.voltage, &r.current),
                (Some(_), None, None) | (None, Some(_), Some(_))
            );
            p.check(
                ok,
                field(&format!("rail[{i}]")),
                "needs either `power` or both `voltage` and `current`",
            );
            p.check(
                !r.name.is_empty(),
                field(&format!("rail[{i}].name")),
                "must not be empty",
            );
        }
    }
}

/// Where a profile without `[power]` reads its thermal zones.
pub fn thermal_zones(spec: Option<&PowerSpec>) -> &Path {
    spec.map_or(Path::new(DEFAULT_THERMAL_ZONES), |s| &s.thermal_zones)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PowerSpec {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn an_nvpmodel_spec_needs_its_high_and_low_modes_among_its_modes() {
        let spec = parse(
            "manager = \"nvpmodel\"\nhigh_mode = 0\nlow_mode = 3\n\
             mode = [{ id = 0, name = \"15W\", watts = 15.0 }, { id = 1, name = \"7W\", watts = -7.0 }]\n\
             rail = [{ name = \"VDD_IN\", voltage = \"/v\" }]",
        );
        let mut p = Problems::new();
        spec.validate("jetson.toml", &mut p);
        let text = p.to_string();
        for want in [
            "jetson.toml: power.low_mode",
            "jetson.toml: power.mode[1].watts",
            "jetson.toml: power.rail[0]",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert!(!text.contains("power.high_mode"), "{text}");
    }

    #[test]
    fn every_shipped_profile_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware-profiles");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("profiles") {
            let path = entry.expect("entry").path();
            let profile = crate::profile::HardwareProfile::load(&path)
                .unwrap_or_else(|p| panic!("{}: {p}", path.display()));
            if profile.name.starts_with("jetson") {
                assert!(
                    profile
                        .power
                        .as_ref()
                        .and_then(PowerSpec::nvpmodel_modes)
                        .is_some()
                );
            }
            n += 1;
        }
        assert!(n >= 9, "{n} profiles");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<PowerSpec>("manager = \"nvpmodel\"\nmodes = [0, 1]")
            .expect_err("`modes` is not a key");
        assert!(e.to_string().contains("modes"), "{e}");
    }

    #[test]
    fn a_valid_spec_has_no_problems_and_gives_its_modes() {
        let spec = parse(
            "manager = \"nvpmodel\"\nhigh_mode = 0\nlow_mode = 1\n\
             mode = [{ id = 0, name = \"15W\", watts = 15.0 }, { id = 1, name = \"7W\", watts = 7.0 }]",
        );
        let mut p = Problems::new();
        spec.validate("j", &mut p);
        assert!(p.is_empty(), "{p}");
        assert_eq!(spec.nvpmodel_modes(), Some((0, 1)));
        assert_eq!(spec.thermal_zones, Path::new(DEFAULT_THERMAL_ZONES));
    }
}
