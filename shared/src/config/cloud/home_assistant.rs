//! `[home_assistant]`: MQTT discovery for Home Assistant. The analyzer publishes, retained, one
//! `binary_sensor` (person present) and one `image` (the latest confirmed crop) per camera under
//! `{discovery_prefix}/...`, pointing at the topics it and the devices already publish
//! (`design/cloud-analyzer.md`, "Home Assistant").

use serde::Deserialize;

use crate::Problems;

/// `[home_assistant]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HomeAssistantConfig {
    /// Publish the discovery configs. On by default: a few hundred retained bytes per camera,
    /// harmless without a Home Assistant, and the cameras' `ON`/`OFF` states (already published
    /// for it) become entities with no YAML. Turn it off where the broker refuses the analyzer
    /// the discovery topics or nobody wants the entities. Default: true.
    pub discovery: bool,
    /// Home Assistant's discovery prefix (its MQTT integration's setting): topic levels of
    /// `A-Z a-z 0-9 - _`, separated by `/`, no wildcards. Default: `"homeassistant"`.
    pub discovery_prefix: String,
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        Self {
            discovery: true,
            discovery_prefix: "homeassistant".into(),
        }
    }
}

impl HomeAssistantConfig {
    pub(super) fn validate(&self, p: &mut Problems) {
        let level_ok = |l: &str| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        };
        p.check(
            self.discovery_prefix.split('/').all(level_ok),
            "home_assistant.discovery_prefix",
            format!(
                "{:?} must be topic levels of A-Z a-z 0-9 - _ separated by '/' (no wildcards, \
                 no empty level)",
                self.discovery_prefix
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(prefix: &str) -> usize {
        let mut p = Problems::new();
        HomeAssistantConfig {
            discovery: true,
            discovery_prefix: prefix.into(),
        }
        .validate(&mut p);
        p.len()
    }

    /// The starter config shows the defaults.
    #[test]
    fn the_starter_config_is_the_default() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/cloud-analyzer.toml");
        let text = std::fs::read_to_string(path).expect("starter");
        let starter: super::super::raw::CloudConfig = toml::from_str(&text).expect("parses");
        assert_eq!(starter.home_assistant, HomeAssistantConfig::default());
        assert!(text.contains("[home_assistant]"), "shown in the starter");
    }

    #[test]
    fn the_prefix_is_plain_topic_levels() {
        for ok in ["homeassistant", "ha/discovery", "my-ha_2"] {
            assert_eq!(problems(ok), 0, "{ok}");
        }
        for bad in ["", "/homeassistant", "ha/", "ha/+", "#", "a//b", "hä"] {
            assert_eq!(problems(bad), 1, "{bad}");
        }
    }
}
