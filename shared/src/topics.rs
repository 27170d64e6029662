//! MQTT topic scheme, version 1.
//!
//! - `cascade/v1/{device_id}/crops`   QoS 1, [`crate::wire::CropEnvelope`] payloads.
//! - `cascade/v1/{device_id}/status`  retained [`crate::status::DeviceStatus`] JSON: online with
//!   each camera's state, or offline (the last will).
//! - `cascade/v1/{device_id}/receipts` QoS 1, [`crate::receipt::Receipt`] JSON from the analyzer:
//!   the crops it holds; the device deletes a crop only on its receipt.
//! - `cascade/v1/{device_id}/verdicts` QoS 1, [`crate::verdict::Verdicts`] JSON from the analyzer:
//!   the device's tracks the cloud confirmed (the device then slows its uploads of them).
//! - `cascade/v1/alerts/{device_id}/{camera_id}`        alert events (JSON), QoS 1.
//! - `cascade/v1/alerts/{device_id}/{camera_id}/state`  retained `ON` / `OFF`.
//! - `{prefix}/binary_sensor|image/cascade_{device_id}/{camera_id}_person|_crop/config`  retained
//!   Home Assistant discovery (prefix `homeassistant`; `cloud-analyzer/src/discovery.rs`).

pub const PREFIX: &str = "cascade/v1";
/// Longest id accepted for devices and cameras.
pub const MAX_ID_LEN: usize = 64;
/// Words that are topic levels of their own under [`PREFIX`] (or kept for them), and the broker
/// identities of the analyzer and the alert consumers (`deploy/mosquitto.acl`): no device may be
/// called so, or its topics would land in theirs (`cascade/v1/alerts/...`) or its certificate
/// would carry their rights.
pub const RESERVED_DEVICE_IDS: &[&str] = &[
    "alerts",
    "receipts",
    "commands",
    "cloud",
    "analyzer",
    "cascade-analyzer",
    "cascade-alerts",
];

pub fn crops(device_id: &str) -> String {
    format!("{PREFIX}/{device_id}/crops")
}

pub fn status(device_id: &str) -> String {
    format!("{PREFIX}/{device_id}/status")
}

/// Receipts for one device's crops, from the analyzer.
pub fn receipts(device_id: &str) -> String {
    format!("{PREFIX}/{device_id}/receipts")
}

/// Verdicts on one device's tracks, from the analyzer.
pub fn verdicts(device_id: &str) -> String {
    format!("{PREFIX}/{device_id}/verdicts")
}

/// Subscription filter for every device's crops.
pub fn all_crops() -> String {
    format!("{PREFIX}/+/crops")
}

/// Alert events for one camera: `new`, `update`, `end` (JSON, QoS 1).
pub fn alerts(device_id: &str, camera_id: &str) -> String {
    format!("{PREFIX}/alerts/{device_id}/{camera_id}")
}

/// Retained `ON` / `OFF` per camera (a Home Assistant binary sensor).
pub fn camera_state(device_id: &str, camera_id: &str) -> String {
    format!("{PREFIX}/alerts/{device_id}/{camera_id}/state")
}

/// The device id of a crops topic, if the topic is one.
pub fn device_of_crops_topic(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix(PREFIX)?.strip_prefix('/')?;
    let device = rest.strip_suffix("/crops")?;
    valid_device_id(device).then_some(device)
}

/// A device id: a [`valid_id`] that is not one of the [`RESERVED_DEVICE_IDS`] (in any case).
pub fn valid_device_id(id: &str) -> bool {
    valid_id(id)
        && !RESERVED_DEVICE_IDS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(id))
}

/// Ids are 1-64 characters of `A-Z a-z 0-9 - _ .`: safe inside a topic level and a file name.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && id != "."
        && id != ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        assert_eq!(crops("dev-1"), "cascade/v1/dev-1/crops");
        assert_eq!(status("dev-1"), "cascade/v1/dev-1/status");
        assert_eq!(receipts("dev-1"), "cascade/v1/dev-1/receipts");
        assert_eq!(
            device_of_crops_topic("cascade/v1/dev-1/crops"),
            Some("dev-1")
        );
        assert_eq!(device_of_crops_topic("cascade/v1/a/b/crops"), None);
        assert_eq!(device_of_crops_topic("cascade/v2/dev/crops"), None);
    }

    #[test]
    fn reserved_words_are_not_device_ids() {
        assert!(valid_device_id("edge-01"));
        for bad in [
            "alerts",
            "Alerts",
            "receipts",
            "commands",
            "a/b",
            "cascade-analyzer",
        ] {
            assert!(!valid_device_id(bad), "{bad}");
        }
        assert_eq!(device_of_crops_topic("cascade/v1/alerts/crops"), None);
    }

    #[test]
    fn ids_are_topic_safe() {
        assert!(valid_id("cam_1.front-door"));
        for bad in ["", "a/b", "+", "#", "..", "é", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
