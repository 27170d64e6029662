//! `[power]` of the agent's config: whether and how the agent manages the device's power modes
//! (the modes, commands and sensor paths come from the hardware profile's `[power]`).

use std::time::Duration;

use serde::Deserialize;

use crate::Problems;

/// `[power]`. The same type in the file as written and in the validated config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PowerConfig {
    /// Switch power modes when the profile names a manager; `false` only reads the sensors.
    /// Default: true.
    pub manage: bool,
    /// Only log (and count) what would be switched; nothing is written or run but the queries.
    /// `edge-agent run --power-dry-run` sets it too. Default: false.
    pub dry_run: bool,
    /// `idle_s`, in seconds: without motion or a tracked person for this long, the low mode.
    /// At least 1 ms. Default: 300 s.
    #[serde(rename = "idle_s", with = "crate::config::seconds")]
    pub idle: Duration,
    /// `min_dwell_s`, in seconds: the least time in the high mode before going low again (motion
    /// always switches to the high mode at once). Default: 60 s.
    #[serde(rename = "min_dwell_s", with = "crate::config::seconds")]
    pub min_dwell: Duration,
    /// `sensors_s`, in seconds: how often thermal zones, rails and throttling are read.
    /// 0.1 to 600. Default: 5 s.
    #[serde(rename = "sensors_s", with = "crate::config::seconds")]
    pub sensors: Duration,
    /// Run the profile's `jetson_clocks` after each switch to the high mode. Default: false.
    pub jetson_clocks: bool,
    /// Let the agent write the CPU governor (Raspberry Pi: the profile's `governors`).
    /// Default: false.
    pub governor: bool,
}

impl Default for PowerConfig {
    fn default() -> Self {
        Self {
            manage: true,
            dry_run: false,
            idle: Duration::from_secs(300),
            min_dwell: Duration::from_secs(60),
            sensors: Duration::from_secs(5),
            jetson_clocks: false,
            governor: false,
        }
    }
}

impl PowerConfig {
    pub fn validate(&self, p: &mut Problems) {
        p.check(
            self.idle >= Duration::from_millis(1),
            "power.idle_s",
            "must be positive",
        );
        p.check(
            (Duration::from_millis(100)..=Duration::from_secs(600)).contains(&self.sensors),
            "power.sensors_s",
            "must be 0.1 to 600",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_problems_name_the_field() {
        let c: PowerConfig = toml::from_str("").expect("defaults");
        assert_eq!(c, PowerConfig::default());
        let c: PowerConfig = toml::from_str("idle_s = 0\nsensors_s = 0.01").expect("parses");
        let mut p = Problems::new();
        c.validate(&mut p);
        let text = p.to_string();
        assert!(
            text.contains("power.idle_s") && text.contains("power.sensors_s"),
            "{text}"
        );
        assert!(
            toml::from_str::<PowerConfig>("idle = 3").is_err(),
            "unknown key"
        );
    }
}
