//! Home Assistant MQTT discovery from a real run (analyzer with its embedded broker, the edge agent
//! on the walker clip): the retained configs a late subscriber gets are checked against the schema
//! Home Assistant documents for MQTT discovery (home-assistant.io: integrations/mqtt "Discovery
//! topic", binary_sensor.mqtt and image.mqtt "Configuration Variables"), and every topic they name
//! must be one the analyzer or the agent actually published in the run, with payloads the config
//! understands.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cascade_tests::*;
use serde_json::Value;

/// binary_sensor.mqtt's documented keys, with the type each must have.
const BINARY_SENSOR: &[(&str, Kind)] = &[
    ("state_topic", Kind::Str),
    ("payload_on", Kind::Str),
    ("payload_off", Kind::Str),
    ("device_class", Kind::Str),
    ("value_template", Kind::Str),
    ("expire_after", Kind::Int),
    ("force_update", Kind::Bool),
    ("off_delay", Kind::Int),
];

/// image.mqtt's documented keys.
const IMAGE: &[(&str, Kind)] = &[
    ("url_topic", Kind::Str),
    ("url_template", Kind::Str),
    ("image_topic", Kind::Str),
    ("content_type", Kind::Str),
    ("image_encoding", Kind::Str),
];

/// Keys every MQTT entity documents.
const COMMON: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("unique_id", Kind::Str),
    ("availability", Kind::List),
    ("availability_mode", Kind::Str),
    ("device", Kind::Map),
    ("origin", Kind::Map),
    ("enabled_by_default", Kind::Bool),
    ("encoding", Kind::Str),
    ("entity_category", Kind::Str),
    ("icon", Kind::Str),
    ("json_attributes_topic", Kind::Str),
    ("json_attributes_template", Kind::Str),
    ("qos", Kind::Int),
    ("default_entity_id", Kind::Str),
];

const DEVICE: &[(&str, Kind)] = &[
    ("identifiers", Kind::List),
    ("connections", Kind::List),
    ("name", Kind::Str),
    ("manufacturer", Kind::Str),
    ("model", Kind::Str),
    ("sw_version", Kind::Str),
    ("hw_version", Kind::Str),
    ("suggested_area", Kind::Str),
    ("via_device", Kind::Str),
    ("configuration_url", Kind::Str),
];

const AVAILABILITY: &[(&str, Kind)] = &[
    ("topic", Kind::Str),
    ("payload_available", Kind::Str),
    ("payload_not_available", Kind::Str),
    ("value_template", Kind::Str),
];

const ORIGIN: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("sw_version", Kind::Str),
    ("support_url", Kind::Str),
];

/// The binary sensor device classes Home Assistant documents.
const DEVICE_CLASSES: &[&str] = &[
    "battery",
    "battery_charging",
    "carbon_monoxide",
    "cold",
    "connectivity",
    "door",
    "garage_door",
    "gas",
    "heat",
    "light",
    "lock",
    "moisture",
    "motion",
    "moving",
    "occupancy",
    "opening",
    "plug",
    "power",
    "presence",
    "problem",
    "running",
    "safety",
    "smoke",
    "sound",
    "tamper",
    "update",
    "vibration",
    "window",
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    List,
    Map,
}

/// Every key of `v` is documented in one of `schemas`, with its documented type.
fn check_keys(what: &str, v: &Value, schemas: &[&[(&str, Kind)]]) {
    let map = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is a map: {v}"));
    for (key, value) in map {
        let kind = schemas
            .iter()
            .flat_map(|s| s.iter())
            .find(|(k, _)| k == key)
            .map(|(_, t)| *t)
            .unwrap_or_else(|| panic!("{what}: {key} is not a documented key"));
        let ok = match kind {
            Kind::Str => value.is_string(),
            Kind::Int => value.is_u64(),
            Kind::Bool => value.is_boolean(),
            Kind::List => value.is_array(),
            Kind::Map => value.is_object(),
        };
        assert!(ok, "{what}: {key} must be {kind:?}, is {value}");
    }
}

/// `<prefix>/<component>/[<node_id>/]<object_id>/config`, ids of `[a-zA-Z0-9_-]`: the component.
fn component_of(topic: &str) -> &str {
    let levels: Vec<&str> = topic.split('/').collect();
    assert!(matches!(levels.len(), 4 | 5), "{topic}");
    assert_eq!(levels[0], "homeassistant", "{topic}");
    assert_eq!(levels.last(), Some(&"config"), "{topic}");
    let id_ok = |l: &&str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    assert!(levels[2..levels.len() - 1].iter().all(id_ok), "{topic}");
    levels[1]
}

/// The config's own rules beyond key types; the topics it reads, each with what it expects there.
fn check_config(topic: &str, c: &Value) -> Vec<(String, &'static str)> {
    let mut reads = Vec::new();
    match component_of(topic) {
        "binary_sensor" => {
            check_keys(topic, c, &[COMMON, BINARY_SENSOR]);
            let class = c["device_class"].as_str().unwrap_or("");
            assert!(
                DEVICE_CLASSES.contains(&class),
                "{topic}: device_class {class}"
            );
            assert!(
                matches!(class, "occupancy" | "motion"),
                "{topic}: a person sensor"
            );
            assert_eq!(
                (&c["payload_on"], &c["payload_off"]),
                (&"ON".into(), &"OFF".into())
            );
            reads.push((
                c["state_topic"]
                    .as_str()
                    .expect("state_topic required")
                    .into(),
                "ON/OFF",
            ));
        }
        "image" => {
            check_keys(topic, c, &[COMMON, IMAGE]);
            let url = c.get("url_topic").is_some();
            assert!(
                url != c.get("image_topic").is_some(),
                "{topic}: one of url_topic, image_topic"
            );
            assert!(
                url && c.get("content_type").is_none(),
                "{topic}: content_type only with image_topic"
            );
            assert_eq!(c["url_template"], "{{ value_json.crop_url }}", "{topic}");
            reads.push((c["url_topic"].as_str().expect("url_topic").into(), "alert"));
        }
        other => panic!("{topic}: unexpected component {other}"),
    }
    assert!(
        c["unique_id"].as_str().is_some_and(|u| !u.is_empty()),
        "{topic}: unique_id"
    );
    assert!(c["name"].is_string(), "{topic}: name");
    let device = &c["device"];
    check_keys(topic, device, &[DEVICE]);
    assert!(
        device["identifiers"]
            .as_array()
            .is_some_and(|i| !i.is_empty() && i.iter().all(Value::is_string))
    );
    for k in ["name", "manufacturer", "model"] {
        assert!(device[k].is_string(), "{topic}: device.{k}");
    }
    check_keys(topic, &c["origin"], &[ORIGIN]);
    assert!(
        c["origin"]["name"].is_string(),
        "{topic}: origin.name is required"
    );
    assert!(
        c.get("availability_topic").is_none(),
        "{topic}: availability is the list form"
    );
    for a in c["availability"].as_array().expect("availability") {
        check_keys(topic, a, &[AVAILABILITY]);
        assert_eq!(
            (&a["payload_available"], &a["payload_not_available"]),
            (&"online".into(), &"offline".into())
        );
        assert_eq!(
            a["value_template"],
            "{{ value_json.state if value_json is defined else value }}"
        );
        reads.push((
            a["topic"].as_str().expect("topic required").into(),
            "status",
        ));
    }
    if let Some(t) = c.get("json_attributes_topic") {
        reads.push((t.as_str().expect("string").into(), "alert"));
    }
    if let Some(q) = c.get("qos") {
        assert!(q.as_u64().is_some_and(|q| q <= 2), "{topic}: qos");
    }
    reads
}

/// A payload on a topic a config reads, as the config's templates see it.
fn understood(expect: &str, payload: &[u8]) -> bool {
    let json: Option<Value> = serde_json::from_slice(payload).ok();
    match expect {
        "ON/OFF" => payload == b"ON" || payload == b"OFF",
        // `value_json.state if value_json is defined else value`
        "status" => {
            let state = json.as_ref().map_or_else(
                || String::from_utf8_lossy(payload).to_string(),
                |j| j["state"].as_str().unwrap_or("").to_string(),
            );
            state == "online" || state == "offline"
        }
        // json_attributes_topic takes a JSON map; url_template reads its crop_url.
        _ => json.is_some_and(|j| {
            j.is_object()
                && j["crop_url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("http"))
        }),
    }
}

#[test]
fn discovery_configs_follow_home_assistants_schema_and_name_published_topics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let certs = make_certs(dir).expect("certs");
    let port = free_port();
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = analyzer_config(
        dir,
        &repo_root(),
        &embedded_broker_toml(port, &certs),
        api,
        1.0,
    );
    let analyzer = AnalyzerProcess::start(dir, &config, api).expect("analyzer starts");
    let all = subscribe(port, &certs, "cascade/v1/#");
    eventually(Duration::from_secs(10), || all.is_subscribed()).expect("subscriber");
    run_edge(&edge_config(dir, &repo_root(), port, &certs, "", false)).expect("edge agent runs");
    eventually(Duration::from_secs(30), || {
        all.messages()
            .iter()
            .any(|(t, p)| t.ends_with("/state") && p == b"OFF")
    })
    .unwrap_or_else(|_| panic!("no alert ended; analyzer log:\n{}", analyzer.log_text()));

    // A late subscriber gets the configs: they are retained.
    let ha = subscribe(port, &certs, "homeassistant/#");
    eventually(Duration::from_secs(10), || ha.len() >= 2).expect("retained discovery configs");
    std::thread::sleep(Duration::from_millis(300));
    let configs: BTreeMap<String, Value> = ha
        .messages()
        .into_iter()
        .map(|(t, p)| (t, serde_json::from_slice(&p).expect("a config is JSON")))
        .collect();
    let components: BTreeSet<&str> = configs.keys().map(|t| component_of(t)).collect();
    assert_eq!(
        components,
        BTreeSet::from(["binary_sensor", "image"]),
        "{configs:?}"
    );
    let ids: BTreeSet<&str> = configs
        .values()
        .filter_map(|c| c["unique_id"].as_str())
        .collect();
    assert_eq!(ids.len(), configs.len(), "unique_ids are unique");

    let published = all.messages();
    for (topic, c) in &configs {
        for (read, expect) in check_config(topic, c) {
            let payloads: Vec<&Vec<u8>> = published
                .iter()
                .filter(|(t, _)| *t == read)
                .map(|(_, p)| p)
                .collect();
            assert!(
                !payloads.is_empty(),
                "{topic} reads {read}, which nobody published"
            );
            for p in payloads {
                assert!(
                    understood(expect, p),
                    "{read}: {}",
                    String::from_utf8_lossy(p)
                );
            }
        }
    }
    assert_eq!(
        api_metric(api, "cascade_cloud_ha_discovery_published_total", &[]),
        2.0,
        "one camera, announced once"
    );
}
