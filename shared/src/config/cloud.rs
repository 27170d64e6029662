//! The cloud analyzer's config file (see `deploy/cloud-analyzer.toml` for a starter).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigFile;
use crate::Problems;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    pub broker: BrokerConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub confirm: ConfirmConfig,
    #[serde(default)]
    pub alerts: AlertConfig,
    pub store: StoreConfig,
    #[serde(default)]
    pub api: ApiConfig,
}

/// Where crops come from: an external broker (Mosquitto in production), or a broker embedded in
/// the analyzer for a single machine.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum BrokerConfig {
    External {
        host: String,
        port: u16,
        #[serde(default = "yes")]
        tls: bool,
        #[serde(default)]
        ca_file: Option<PathBuf>,
        #[serde(default)]
        client_cert_file: Option<PathBuf>,
        #[serde(default)]
        client_key_file: Option<PathBuf>,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
    },
    /// rumqttd inside the analyzer. It shares the analyzer's fate: crops it acknowledged but the
    /// analyzer had not stored are lost if the process dies. Use Mosquitto where that matters.
    Embedded {
        listen: SocketAddr,
        /// TLS when both are given (with `ca_file`, clients must present certificates).
        #[serde(default)]
        cert_file: Option<PathBuf>,
        #[serde(default)]
        key_file: Option<PathBuf>,
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// MQTT client id; the broker keeps this session (and its queued crops) while the analyzer is down.
    pub client_id: String,
    /// Shared subscription group: replicas with the same group split the crops (`$share/GROUP/...`).
    pub share_group: Option<String>,
    pub max_inflight: u16,
    /// Larger than the largest valid crop, so an oversized one is received, counted and
    /// acknowledged instead of breaking the connection again and again. Limit it at the broker too.
    pub max_packet_bytes: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            client_id: "cascade-cloud-analyzer".into(),
            share_group: None,
            max_inflight: 32,
            max_packet_bytes: 16 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub manifest: PathBuf,
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    #[serde(default = "two")]
    pub threads: u32,
}

fn two() -> u32 {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    pub max_batch: usize,
    pub max_wait_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch: 8,
            max_wait_ms: 50,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfirmConfig {
    pub min_score: f32,
    /// Smallest confirmed box, as a fraction of the crop's area.
    pub min_box_area: f32,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        Self {
            min_score: 0.5,
            min_box_area: 0.05,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// Detections of the same track within this fold into one alert; silence this long ends it.
    pub cooldown_s: f64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self { cooldown_s: 30.0 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub dir: PathBuf,
    #[serde(default = "default_retention")]
    pub retention_days: f64,
}

fn default_retention() -> f64 {
    30.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// Base URL put into alerts for fetching crops; defaults to `http://{listen}`.
    pub public_url: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
        }
    }
}

impl CloudConfig {
    /// The crops subscription, with the shared-subscription prefix when a group is set.
    pub fn crops_filter(&self) -> String {
        match &self.ingest.share_group {
            Some(g) => format!("$share/{g}/{}", crate::topics::all_crops()),
            None => crate::topics::all_crops(),
        }
    }
}

impl ConfigFile for CloudConfig {
    fn resolve_paths(&mut self, base: &Path) {
        use super::resolve;
        let files: Vec<&mut Option<PathBuf>> = match &mut self.broker {
            BrokerConfig::External {
                ca_file,
                client_cert_file,
                client_key_file,
                ..
            } => vec![ca_file, client_cert_file, client_key_file],
            BrokerConfig::Embedded {
                cert_file,
                key_file,
                ca_file,
                ..
            } => vec![cert_file, key_file, ca_file],
        };
        for p in files.into_iter().flatten() {
            *p = resolve(base, p);
        }
        self.model.manifest = resolve(base, &self.model.manifest);
        if let Some(p) = &mut self.model.onnxruntime {
            *p = resolve(base, p);
        }
        self.store.dir = resolve(base, &self.store.dir);
    }

    fn validate(&self) -> Problems {
        let mut p = Problems::new();
        match &self.broker {
            BrokerConfig::External {
                host,
                port,
                client_cert_file,
                client_key_file,
                ..
            } => {
                p.check(!host.is_empty(), "broker.host", "must not be empty");
                p.check(*port != 0, "broker.port", "must not be 0");
                p.check(
                    client_cert_file.is_some() == client_key_file.is_some(),
                    "broker.client_cert_file",
                    "client_cert_file and client_key_file go together",
                );
            }
            BrokerConfig::Embedded {
                cert_file,
                key_file,
                ca_file,
                ..
            } => {
                p.check(
                    cert_file.is_some() == key_file.is_some(),
                    "broker.cert_file",
                    "cert_file and key_file go together",
                );
                p.check(
                    ca_file.is_none() || cert_file.is_some(),
                    "broker.ca_file",
                    "needs cert_file and key_file (TLS)",
                );
            }
        }
        let i = &self.ingest;
        p.check(
            crate::topics::valid_id(&i.client_id),
            "ingest.client_id",
            "must be 1-64 characters of A-Z a-z 0-9 - _ .",
        );
        if let Some(g) = &i.share_group {
            p.check(
                crate::topics::valid_id(g),
                "ingest.share_group",
                "must be 1-64 characters of A-Z a-z 0-9 - _ .",
            );
        }
        p.check(
            i.max_inflight >= 1,
            "ingest.max_inflight",
            "must be at least 1",
        );
        p.check(
            i.max_packet_bytes as usize >= crate::wire::MAX_ENVELOPE_BYTES,
            "ingest.max_packet_bytes",
            "must be at least 4 MiB (the largest valid crop)",
        );
        p.check(
            (1..=64).contains(&self.model.threads),
            "model.threads",
            "must be 1..=64",
        );
        p.check(
            (1..=256).contains(&self.batch.max_batch),
            "batch.max_batch",
            "must be 1..=256",
        );
        p.check(
            self.batch.max_wait_ms <= 10_000,
            "batch.max_wait_ms",
            "must be at most 10000",
        );
        p.check(
            (0.0..=1.0).contains(&self.confirm.min_score),
            "confirm.min_score",
            "must be within 0..=1",
        );
        p.check(
            (0.0..1.0).contains(&self.confirm.min_box_area),
            "confirm.min_box_area",
            "must be within 0..1",
        );
        p.check(
            self.alerts.cooldown_s > 0.0,
            "alerts.cooldown_s",
            "must be positive",
        );
        p.check(
            self.store.retention_days > 0.0,
            "store.retention_days",
            "must be positive",
        );
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        broker = { mode = "embedded", listen = "127.0.0.1:1883" }
        [model]
        manifest = "m.toml"
        [store]
        dir = "store"
    "#;

    #[test]
    fn minimal_config_is_valid() {
        let cfg: CloudConfig = toml::from_str(MINIMAL).expect("parses");
        assert!(cfg.validate().is_empty(), "{}", cfg.validate());
        assert_eq!(cfg.crops_filter(), "cascade/v1/+/crops");
    }

    #[test]
    fn problems_are_reported_together() {
        let text = MINIMAL.replace(
            "[store]",
            "[batch]\nmax_batch = 0\n[ingest]\nshare_group = \"a/b\"\n[store]",
        );
        let cfg: CloudConfig = toml::from_str(&text).expect("parses");
        let p = cfg.validate();
        assert_eq!(p.len(), 2, "{p}");
        let shared = MINIMAL.replace("[store]", "[ingest]\nshare_group = \"g1\"\n[store]");
        let cfg: CloudConfig = toml::from_str(&shared).expect("parses");
        assert_eq!(cfg.crops_filter(), "$share/g1/cascade/v1/+/crops");
    }
}
