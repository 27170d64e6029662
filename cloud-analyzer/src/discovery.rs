//! Home Assistant MQTT discovery: for each camera, a retained config for a person `binary_sensor`
//! and an `image` entity (the latest confirmed crop), both pointing at topics that are published
//! already, so nothing new has to be kept in step:
//!
//! - state: `cascade/v1/alerts/{device}/{camera}/state`, retained `ON` / `OFF` (the analyzer);
//! - attributes and image URL: `cascade/v1/alerts/{device}/{camera}`, the alert events (JSON with
//!   `crop_url`; the analyzer);
//! - availability: `cascade/v1/{device}/status`, the device's retained status (`{"state":
//!   "online", ...}` or the last will `{"state":"offline"}`; the agent).
//!
//! A camera is announced when first seen (in its device's status, or by its first alert), and
//! every known camera again after each (re)connection to the broker. The analyzer has no way to
//! delete a device, so no config is ever removed (an empty retained payload would do it).

use std::collections::HashSet;
use std::sync::Mutex;

use cascade_shared::config::cloud::HomeAssistantConfig;
use cascade_shared::topics;
use rumqttc::QoS;
use serde_json::{Value, json};

use crate::analyzer::Ctx;

/// The availability template: the JSON status's `state`, or the plain `online` / `offline` of
/// earlier agents.
pub const AVAILABILITY_TEMPLATE: &str =
    "{{ value_json.state if value_json is defined else value }}";

/// Which cameras have their configs on the broker, since the last connection.
#[derive(Debug)]
pub struct Discovery {
    prefix: String,
    announced: Mutex<HashSet<(String, String)>>,
}

impl Discovery {
    /// None when `[home_assistant] discovery` is off.
    pub fn new(cfg: &HomeAssistantConfig) -> Option<Self> {
        cfg.discovery.then(|| Self {
            prefix: cfg.discovery_prefix.clone(),
            announced: Mutex::new(HashSet::new()),
        })
    }

    /// Of `cameras`, those not announced yet (now marked announced).
    fn fresh(&self, cameras: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut seen = self
            .announced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cameras
            .into_iter()
            .filter(|c| seen.insert(c.clone()))
            .collect()
    }

    /// After a (re)connection: every camera is announced again.
    pub fn forget_all(&self) {
        self.announced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// A topic level HA accepts (`[a-zA-Z0-9_-]`): ids may also hold `.`, written `_`.
fn level(id: &str) -> String {
    id.replace('.', "_")
}

/// The device block shared by a device's entities (one HA device per edge device).
fn device_block(device: &str) -> Value {
    json!({
        "identifiers": [format!("cascade_{device}")],
        "name": device,
        "manufacturer": "cascade",
        "model": "edge-agent",
    })
}

/// What every entity of a camera shares: availability, device, origin.
fn common(device: &str) -> Value {
    json!({
        "availability": [{
            "topic": topics::status(device),
            "value_template": AVAILABILITY_TEMPLATE,
            "payload_available": "online",
            "payload_not_available": "offline",
        }],
        "device": device_block(device),
        "origin": {
            "name": "cascade cloud-analyzer",
            "sw_version": env!("CARGO_PKG_VERSION"),
        },
        "qos": 1,
    })
}

fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// The discovery configs of one camera: (topic, JSON payload), to publish retained.
pub fn configs(prefix: &str, device: &str, camera: &str) -> Vec<(String, Value)> {
    let node = format!("cascade_{}", level(device));
    let cam = level(camera);
    let sensor = json!({
        "name": format!("{camera} person"),
        "unique_id": format!("cascade_{device}_{camera}_person"),
        "state_topic": topics::camera_state(device, camera),
        "payload_on": "ON",
        "payload_off": "OFF",
        "device_class": "occupancy",
        "json_attributes_topic": topics::alerts(device, camera),
    });
    let image = json!({
        "name": format!("{camera} last person"),
        "unique_id": format!("cascade_{device}_{camera}_crop"),
        "url_topic": topics::alerts(device, camera),
        "url_template": "{{ value_json.crop_url }}",
    });
    vec![
        (
            format!("{prefix}/binary_sensor/{node}/{cam}_person/config"),
            merged(common(device), sensor),
        ),
        (
            format!("{prefix}/image/{node}/{cam}_crop/config"),
            merged(common(device), image),
        ),
    ]
}

/// Publishes the configs of the cameras not announced since the last connection (retained, QoS 1).
pub(crate) async fn announce(ctx: &Ctx, cameras: Vec<(String, String)>) {
    let Some(d) = &ctx.discovery else {
        return;
    };
    for (device, camera) in d.fresh(cameras) {
        let mut published = 0;
        for (topic, payload) in configs(&d.prefix, &device, &camera) {
            let sent = ctx
                .client
                .publish(topic, QoS::AtLeastOnce, true, payload.to_string())
                .await;
            published += usize::from(sent.is_ok());
        }
        ctx.telemetry.discovery(&device, &camera, published);
    }
}

/// After (re)connecting: every camera the store knows (from status messages and alerts).
pub(crate) async fn announce_known(ctx: Ctx) {
    let Some(d) = &ctx.discovery else {
        return;
    };
    d.forget_all();
    let store = ctx.store.clone();
    let known = tokio::task::spawn_blocking(move || -> Result<_, crate::store::StoreError> {
        let mut cams: Vec<(String, String)> = store
            .devices()?
            .into_iter()
            .flat_map(|d| {
                let id = d.device_id;
                d.cameras.into_iter().map(move |c| (id.clone(), c.id))
            })
            .collect();
        cams.extend(store.alert_cameras()?);
        Ok(cams)
    })
    .await;
    match known {
        Ok(Ok(cams)) => announce(&ctx, cams).await,
        Ok(Err(e)) => tracing::error!(error = %e, "cameras for discovery not read"),
        Err(e) => tracing::error!(error = %e, "store task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_point_at_the_published_topics() {
        let c = configs("homeassistant", "dev.1", "front");
        assert_eq!(
            c[0].0,
            "homeassistant/binary_sensor/cascade_dev_1/front_person/config"
        );
        assert_eq!(
            c[1].0,
            "homeassistant/image/cascade_dev_1/front_crop/config"
        );
        let s = &c[0].1;
        assert_eq!(s["state_topic"], "cascade/v1/alerts/dev.1/front/state");
        assert_eq!(s["json_attributes_topic"], "cascade/v1/alerts/dev.1/front");
        assert_eq!(s["availability"][0]["topic"], "cascade/v1/dev.1/status");
        assert_eq!(s["unique_id"], "cascade_dev.1_front_person");
        assert_eq!(c[1].1["url_topic"], "cascade/v1/alerts/dev.1/front");
        assert_eq!(
            s["device"], c[1].1["device"],
            "one HA device per edge device"
        );
    }

    #[test]
    fn each_camera_is_announced_once_per_connection() {
        let d = Discovery::new(&HomeAssistantConfig::default()).expect("on by default");
        let cam = |c: &str| ("dev".to_string(), c.to_string());
        assert_eq!(d.fresh(vec![cam("a"), cam("b")]).len(), 2);
        assert_eq!(d.fresh(vec![cam("a"), cam("c")]), vec![cam("c")]);
        d.forget_all();
        assert_eq!(d.fresh(vec![cam("a")]).len(), 1);
        let off = HomeAssistantConfig {
            discovery: false,
            ..HomeAssistantConfig::default()
        };
        assert!(Discovery::new(&off).is_none());
    }
}
