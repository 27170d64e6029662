//! The cloud analyzer's config (see `deploy/cloud-analyzer.toml` for a starter), in two layers:
//!
//! - [`raw::CloudConfig`], the file as written: strict serde (`deny_unknown_fields`), durations
//!   already read into [`Duration`]s, counts as plain integers, so that a zero is reported together
//!   with every other problem instead of as the one parse error that would hide them;
//! - [`CloudConfig`], what the analyzer runs on, made from it in one place,
//!   [`raw::CloudConfig::validated`], which reports every problem at once, naming each field:
//!   durations as [`Duration`], counts that must be positive as `NonZero` integers, nothing left to
//!   convert or check again where the values are used.
//!
//! Sections that need no conversion ([`BrokerConfig`], [`ConfirmConfig`], [`AlertConfig`],
//! [`StoreConfig`], [`ApiConfig`], [`HomeAssistantConfig`]) are the same type in both layers.

mod confirm;
mod home_assistant;
pub mod raw;
mod server;
mod store;

use std::net::SocketAddr;
use std::num::{NonZeroU16, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::Problems;

pub use confirm::ConfirmConfig;
pub use home_assistant::HomeAssistantConfig;
pub use server::ServerConfig;
pub use store::{StoreConfig, StoreKind};

/// The analyzer's config, validated. Made by [`raw::CloudConfig::validated`].
#[derive(Debug, Clone)]
pub struct CloudConfig {
    pub broker: BrokerConfig,
    pub ingest: IngestConfig,
    pub model: ModelConfig,
    pub batch: BatchConfig,
    pub confirm: ConfirmConfig,
    pub alerts: AlertConfig,
    pub store: StoreConfig,
    pub api: ApiConfig,
    pub home_assistant: HomeAssistantConfig,
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

/// Where crops come from: an external broker (Mosquitto in production), or a broker embedded in
/// the analyzer for a single machine. No default: `broker` must be set.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum BrokerConfig {
    External {
        /// No default.
        host: String,
        /// Not 0. No default.
        port: u16,
        /// TLS is on unless explicitly turned off (for a broker on loopback only). Default: true.
        #[serde(default = "yes")]
        tls: bool,
        /// CA certificate (PEM) the broker's certificate must chain to. Default: the system's roots.
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// Client certificate and key (PEM), for brokers that require them; both or neither.
        /// Default: none.
        #[serde(default)]
        client_cert_file: Option<PathBuf>,
        /// Default: none.
        #[serde(default)]
        client_key_file: Option<PathBuf>,
        /// Sent only together with `password`. Default: none (no credentials are sent).
        #[serde(default)]
        username: Option<String>,
        /// Default: none.
        #[serde(default)]
        password: Option<String>,
    },
    /// rumqttd inside the analyzer. It shares the analyzer's fate: crops it acknowledged but the
    /// analyzer had not stored are lost if the process dies. Use Mosquitto where that matters.
    Embedded {
        /// Where devices connect. No default.
        listen: SocketAddr,
        /// TLS when both are given (with `ca_file`, clients must present certificates).
        /// Default: none (plain MQTT).
        #[serde(default)]
        cert_file: Option<PathBuf>,
        /// Default: none.
        #[serde(default)]
        key_file: Option<PathBuf>,
        /// Default: none (no client certificates asked for).
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
}

fn yes() -> bool {
    true
}

impl BrokerConfig {
    /// The files it names, each with its field, for path resolution and `check`.
    pub fn files(&self) -> Vec<(&'static str, Option<&Path>)> {
        match self {
            Self::External {
                ca_file,
                client_cert_file,
                client_key_file,
                ..
            } => vec![
                ("broker.ca_file", ca_file.as_deref()),
                ("broker.client_cert_file", client_cert_file.as_deref()),
                ("broker.client_key_file", client_key_file.as_deref()),
            ],
            Self::Embedded {
                cert_file,
                key_file,
                ca_file,
                ..
            } => vec![
                ("broker.cert_file", cert_file.as_deref()),
                ("broker.key_file", key_file.as_deref()),
                ("broker.ca_file", ca_file.as_deref()),
            ],
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        let files: Vec<&mut Option<PathBuf>> = match self {
            Self::External {
                ca_file,
                client_cert_file,
                client_key_file,
                ..
            } => vec![ca_file, client_cert_file, client_key_file],
            Self::Embedded {
                cert_file,
                key_file,
                ca_file,
                ..
            } => vec![cert_file, key_file, ca_file],
        };
        for p in files.into_iter().flatten() {
            *p = super::resolve(base, p);
        }
    }

    fn check(&self, p: &mut Problems) {
        match self {
            Self::External {
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
            Self::Embedded {
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
    }
}

/// `[ingest]`, validated (the file's form is [`raw::IngestConfig`], which documents the defaults).
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub client_id: String,
    pub share_group: Option<String>,
    /// Crops delivered and not yet acknowledged at once.
    pub max_inflight: NonZeroU16,
    /// At least [`crate::wire::MAX_ENVELOPE_BYTES`].
    pub max_packet_bytes: usize,
    /// Positive.
    pub device_crops_per_s: f64,
    /// At least 64 KiB.
    pub device_bytes_per_s: f64,
}

/// `[model]`, validated (the file's form is [`raw::ModelConfig`], which documents the defaults).
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub manifest: PathBuf,
    pub onnxruntime: Option<PathBuf>,
    /// 1 to 64.
    pub threads: NonZeroUsize,
    /// `[model.server]`: the model runs on a KServe v2 inference server instead of in-process.
    pub server: Option<ServerConfig>,
}

/// `[batch]`, validated (the file's form is [`raw::BatchConfig`], which documents the defaults).
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// 1 to 256.
    pub max_batch: NonZeroUsize,
    /// At most 10 s.
    pub max_wait: Duration,
}

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// `cooldown_s`, in seconds: detections of the same track within this fold into one alert;
    /// silence this long ends it. Positive. Default: 30 s.
    #[serde(rename = "cooldown_s", with = "crate::config::seconds")]
    pub cooldown: Duration,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            cooldown: Duration::from_secs(30),
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Where the HTTP API listens (port 0 picks one). Default: `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Base URL put into alerts for fetching crops. Default: `http://{listen}` (as bound).
    pub public_url: Option<String>,
    /// `[[api.token]]`: bearer tokens, kept as the SHA-256 of the token (hex), never the token
    /// itself (`cloud-analyzer token` makes one). With none, `/api/` is open, which is allowed only
    /// on a loopback address. Default: none.
    #[serde(rename = "token")]
    pub tokens: Vec<ApiToken>,
    /// `/metrics` without a token (a Prometheus on the same network). Default: true.
    pub metrics_public: bool,
}

/// One `[[api.token]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it (for logs). No default.
    pub name: String,
    /// SHA-256 of the token, 64 hex digits. No default.
    pub sha256: String,
    /// `read` (alerts, crops, devices) or `admin` (also erasing crops). No default.
    pub scope: TokenScope,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    Read,
    Admin,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            tokens: Vec::new(),
            metrics_public: true,
        }
    }
}

impl ApiConfig {
    /// Range and consistency problems.
    pub fn validate(&self, p: &mut Problems) {
        for (i, t) in self.tokens.iter().enumerate() {
            p.check(
                t.sha256.len() == 64 && t.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                format!("api.token[{i}].sha256"),
                "must be 64 hex digits (the SHA-256 of the token; `cloud-analyzer token` makes one)",
            );
            p.check(
                self.tokens.iter().filter(|o| o.name == t.name).count() == 1,
                format!("api.token[{i}].name"),
                format!("{:?} is used by more than one token", t.name),
            );
        }
        p.check(
            !self.tokens.is_empty() || self.listen.ip().is_loopback(),
            "api.listen",
            format!(
                "{} is not a loopback address: an API reachable from other machines needs at least \
                 one [[api.token]]",
                self.listen.ip()
            ),
        );
    }
}

/// Durations written as whole milliseconds (`max_wait_ms = 50`), read straight into a
/// [`Duration`]; negative or fractional values are refused with the field named by the TOML error.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Durations written in days (`retention_days = 30`, fractions allowed), read straight into a
/// [`Duration`] like [`crate::config::seconds`]; negative, NaN and absurdly large values are
/// refused with the field named by the TOML error.
pub(crate) mod days {
    use std::time::Duration;

    use serde::Deserializer;

    /// A century: larger values are typos.
    const MAX_DAYS: f64 = 100.0 * 365.0;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        crate::config::seconds::in_units(d, 86_400.0, "days", MAX_DAYS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    const MINIMAL: &str = r#"
        broker = { mode = "embedded", listen = "127.0.0.1:1883" }
        [model]
        manifest = "m.toml"
        [store]
        dir = "store"
    "#;

    fn validated(text: &str) -> Result<CloudConfig, Problems> {
        toml::from_str::<raw::CloudConfig>(text)
            .expect("parses")
            .validated()
    }

    #[test]
    fn minimal_config_is_valid_with_the_documented_defaults() {
        let cfg = validated(MINIMAL).expect("valid");
        assert_eq!(cfg.crops_filter(), "cascade/v1/+/crops");
        assert_eq!(cfg.ingest.client_id, "cascade-cloud-analyzer");
        assert_eq!(cfg.ingest.max_inflight.get(), 32);
        assert_eq!(cfg.ingest.max_packet_bytes, 16 * 1024 * 1024);
        assert_eq!(cfg.model.threads.get(), 2);
        assert_eq!(cfg.batch.max_batch.get(), 1);
        assert_eq!(cfg.batch.max_wait, Duration::ZERO);
        assert_eq!(
            (cfg.confirm.min_score, cfg.confirm.min_box_area),
            (0.5, 0.0)
        );
        assert_eq!(cfg.alerts.cooldown, Duration::from_secs(30));
        assert_eq!(cfg.store.retention, Duration::from_secs(30 * 86_400));
        assert_eq!(cfg.api.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
    }

    /// The starter config validates as written and shows the defaults its fields document.
    #[test]
    fn the_starter_config_is_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/cloud-analyzer.toml");
        let text = std::fs::read_to_string(path).expect("starter");
        let starter = validated(&text).expect("valid");
        let defaults = validated(MINIMAL).expect("valid");
        assert_eq!(
            format!("{:?}", (&starter.ingest, &starter.batch, &starter.confirm)),
            format!(
                "{:?}",
                (&defaults.ingest, &defaults.batch, &defaults.confirm)
            )
        );
        assert_eq!(starter.model.threads, defaults.model.threads);
        assert_eq!(starter.model.onnxruntime, None);
        assert_eq!(starter.alerts.cooldown, defaults.alerts.cooldown);
        assert_eq!(starter.store.retention, defaults.store.retention);
        assert_eq!(
            (starter.api.listen, &starter.api.public_url),
            (defaults.api.listen, &defaults.api.public_url)
        );
    }

    #[test]
    fn durations_keep_their_field_names_and_units() {
        let text = MINIMAL.replace(
            "[store]",
            "[batch]\nmax_wait_ms = 20\n[alerts]\ncooldown_s = 0.5\n[store]\nretention_days = 1.5",
        );
        let cfg = validated(&text).expect("valid");
        assert_eq!(cfg.batch.max_wait, Duration::from_millis(20));
        assert_eq!(cfg.alerts.cooldown, Duration::from_millis(500));
        assert_eq!(cfg.store.retention, Duration::from_secs(36 * 3600));
        for (bad, field) in [
            ("[batch]\nmax_wait_ms = -1", "max_wait_ms"),
            ("[batch]\nmax_wait_ms = 2.5", "max_wait_ms"),
            ("[alerts]\ncooldown_s = -3", "cooldown_s"),
            ("[store]\nretention_days = -1", "retention_days"),
            ("[store]\nretention_days = 1e9", "retention_days"),
        ] {
            let text = if bad.starts_with("[store]") {
                MINIMAL.replace("[store]", bad)
            } else {
                MINIMAL.replace("[store]", &format!("{bad}\n[store]"))
            };
            let e = toml::from_str::<raw::CloudConfig>(&text)
                .expect_err(bad)
                .to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
    }

    #[test]
    fn problems_are_reported_together_naming_each_field() {
        let text = MINIMAL
            .replace(
                "[store]",
                "[batch]\nmax_batch = 0\nmax_wait_ms = 20000\n[ingest]\nshare_group = \"a/b\"\n\
                 max_inflight = 0\nmax_packet_bytes = 1024\n[alerts]\ncooldown_s = 0\n[store]\n\
                 retention_days = 0",
            )
            .replace(
                "manifest = \"m.toml\"",
                "manifest = \"m.toml\"\nthreads = 0",
            );
        let p = validated(&text).expect_err("invalid");
        let fields = [
            "batch.max_batch",
            "batch.max_wait_ms",
            "ingest.share_group",
            "ingest.max_inflight",
            "ingest.max_packet_bytes",
            "model.threads",
            "alerts.cooldown_s",
            "store.retention_days",
        ];
        assert_eq!(p.len(), fields.len(), "{p}");
        for f in fields {
            assert!(p.iter().any(|l| l.starts_with(f)), "{f} not named:\n{p}");
        }
        let file: raw::CloudConfig = toml::from_str(&text).expect("parses");
        assert_eq!(file.validate(), p, "validate() reports the same problems");

        let shared = MINIMAL.replace("[store]", "[ingest]\nshare_group = \"g1\"\n[store]");
        let cfg = validated(&shared).expect("valid");
        assert_eq!(cfg.crops_filter(), "$share/g1/cascade/v1/+/crops");
    }

    #[test]
    fn the_client_id_can_come_from_the_environment() {
        let unset = MINIMAL.replace(
            "[store]",
            "[ingest]\nclient_id_env = \"CASCADE_TEST_SURELY_UNSET_VAR\"\n[store]",
        );
        let p = validated(&unset).expect_err("unset variable");
        assert_eq!(p.len(), 1, "{p}");
        assert!(p.iter().any(|l| l.contains("ingest.client_id_env")), "{p}");
        // PATH is set, and its value (with slashes) is no client id.
        let invalid = unset.replace("CASCADE_TEST_SURELY_UNSET_VAR", "PATH");
        let p = validated(&invalid).expect_err("invalid value");
        assert!(
            p.iter().any(|l| l.starts_with("ingest.client_id_env")),
            "{p}"
        );
    }

    #[test]
    fn broker_consistency_is_checked() {
        let text = MINIMAL.replace(
            r#"{ mode = "embedded", listen = "127.0.0.1:1883" }"#,
            r#"{ mode = "external", host = "", port = 0, client_cert_file = "c.pem" }"#,
        );
        let p = validated(&text).expect_err("invalid");
        assert_eq!(p.len(), 3, "{p}");
    }
}
