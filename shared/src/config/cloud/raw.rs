//! The analyzer's config file as written (strict serde), and [`CloudConfig::validated`], the one
//! place it becomes the [`super::CloudConfig`] the analyzer runs on.

use std::num::{NonZeroU16, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{
    AlertConfig, ApiConfig, BrokerConfig, ConfirmConfig, HomeAssistantConfig, ServerConfig,
    StoreConfig,
};
use crate::Problems;
use crate::config::ConfigFile;
use crate::topics::valid_id;

/// The longest `batch.max_wait_ms`.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// The file as written. Sections left out take the defaults their fields document.
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
    #[serde(default)]
    pub home_assistant: HomeAssistantConfig,
}

/// `[ingest]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// MQTT client id; the broker keeps this session (and its queued crops) while the analyzer is
    /// down. Default: `"cascade-cloud-analyzer"`.
    pub client_id: String,
    /// The environment variable holding the client id instead (`HOSTNAME`: a Kubernetes pod's or
    /// a container's name), so replicas started from one config differ. Default: none.
    pub client_id_env: Option<String>,
    /// Shared subscription group: replicas with the same group split the crops
    /// (`$share/GROUP/...`). Default: none (this analyzer gets every crop).
    pub share_group: Option<String>,
    /// Crops delivered and not yet acknowledged at once; at least 1. Default: 32.
    pub max_inflight: u16,
    /// Larger than the largest valid crop, so an oversized one is received, counted and
    /// acknowledged instead of breaking the connection again and again. Limit it at the broker
    /// too. At least 4 MiB. Default: 16 MiB (16777216).
    pub max_packet_bytes: u32,
    /// Crops per second one device may send, sustained (bursts of 10 seconds' worth pass); the
    /// rest are acknowledged to the broker but neither stored nor receipted, so the device keeps
    /// them and sends them again later. Positive. Default: 20.
    pub device_crops_per_s: f64,
    /// Bytes per second one device may send, sustained, likewise. At least 64 KiB. Default: 8 MiB
    /// (8388608).
    pub device_bytes_per_s: f64,
}

impl IngestConfig {
    /// The client id: `client_id`, or the value of the variable `client_id_env` names (`None`,
    /// with its problem recorded, when that variable is not set).
    fn resolved_client_id(&self, p: &mut Problems) -> Option<String> {
        let Some(var) = &self.client_id_env else {
            return Some(self.client_id.clone());
        };
        let value = std::env::var(var).ok();
        p.check(
            value.is_some(),
            "ingest.client_id_env",
            format!("the environment variable {var} is not set"),
        );
        value
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            client_id: "cascade-cloud-analyzer".into(),
            client_id_env: None,
            share_group: None,
            max_inflight: 32,
            max_packet_bytes: 16 * 1024 * 1024,
            device_crops_per_s: 20.0,
            device_bytes_per_s: 8.0 * 1024.0 * 1024.0,
        }
    }
}

/// `[model]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The confirm model's manifest (see `models/`). No default: `manifest` must be set.
    pub manifest: PathBuf,
    /// `libonnxruntime.so`. Default: `$ORT_DYLIB_PATH`, then `.cache/onnxruntime/libonnxruntime.so`
    /// near the executable or in the working directory.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// Threads one inference may use, 1 to 64. Default: 2.
    #[serde(default = "two")]
    pub threads: u32,
    /// `[model.server]`: run the model on a KServe v2 inference server (Triton, OpenVINO Model
    /// Server, MLServer, KServe) instead of in-process; `onnxruntime` and `threads` are then
    /// unused. Default: none (ONNX Runtime in-process).
    #[serde(default)]
    pub server: Option<ServerConfig>,
}

fn two() -> u32 {
    2
}

/// `[batch]` as written: dynamic batching for the confirm model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Crops confirmed in one model run, 1 to 256. Default: 1 (on a CPU batching costs
    /// throughput and latency, measured in design/cloud-analyzer.md; raise it with a
    /// dynamic-batch model on a GPU).
    pub max_batch: usize,
    /// `max_wait_ms`, in whole milliseconds: the longest a crop waits for its batch to fill, at
    /// most 10000. Default: 0 (a crop never waits for others).
    #[serde(rename = "max_wait_ms", with = "super::millis")]
    pub max_wait: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch: 1,
            max_wait: Duration::ZERO,
        }
    }
}

impl CloudConfig {
    /// The config the analyzer runs on, or every problem at once, each naming its field.
    pub fn validated(&self) -> Result<super::CloudConfig, Problems> {
        let mut p = Problems::new();
        self.broker.check(&mut p);

        let i = &self.ingest;
        let client_id = i.resolved_client_id(&mut p);
        p.check(
            client_id.as_deref().is_none_or(valid_id),
            if i.client_id_env.is_some() {
                "ingest.client_id_env"
            } else {
                "ingest.client_id"
            },
            "must be 1-64 characters of A-Z a-z 0-9 - _ .",
        );
        if let Some(g) = &i.share_group {
            p.check(
                valid_id(g),
                "ingest.share_group",
                "must be 1-64 characters of A-Z a-z 0-9 - _ .",
            );
        }
        let max_inflight = NonZeroU16::new(i.max_inflight);
        p.check(
            max_inflight.is_some(),
            "ingest.max_inflight",
            "must be at least 1",
        );
        let max_packet_bytes = usize::try_from(i.max_packet_bytes)
            .ok()
            .filter(|n| *n >= crate::wire::MAX_ENVELOPE_BYTES);
        p.check(
            max_packet_bytes.is_some(),
            "ingest.max_packet_bytes",
            "must be at least 4 MiB (the largest valid crop)",
        );

        let threads = usize::try_from(self.model.threads)
            .ok()
            .filter(|n| *n <= 64)
            .and_then(NonZeroUsize::new);
        p.check(threads.is_some(), "model.threads", "must be 1..=64");
        if let Some(server) = &self.model.server {
            server.validate(&mut p);
        }

        let max_batch = NonZeroUsize::new(self.batch.max_batch).filter(|n| n.get() <= 256);
        p.check(max_batch.is_some(), "batch.max_batch", "must be 1..=256");
        p.check(
            self.batch.max_wait <= MAX_WAIT,
            "batch.max_wait_ms",
            "must be at most 10000",
        );

        p.check(
            i.device_crops_per_s.is_finite() && i.device_crops_per_s > 0.0,
            "ingest.device_crops_per_s",
            "must be positive",
        );
        p.check(
            i.device_bytes_per_s.is_finite() && i.device_bytes_per_s >= 65536.0,
            "ingest.device_bytes_per_s",
            "must be at least 65536",
        );
        self.confirm.validate(&mut p);
        p.check(
            !self.alerts.cooldown.is_zero(),
            "alerts.cooldown_s",
            "must be positive",
        );
        self.store.validate(&mut p);
        self.api.validate(&mut p);
        self.home_assistant.validate(&mut p);

        // Each `None` above recorded its problem, so no problem means every value is there.
        match (max_inflight, max_packet_bytes, threads, max_batch) {
            (Some(max_inflight), Some(max_packet_bytes), Some(threads), Some(max_batch))
                if p.is_empty() =>
            {
                Ok(super::CloudConfig {
                    broker: self.broker.clone(),
                    ingest: super::IngestConfig {
                        client_id: client_id.unwrap_or_default(),
                        share_group: i.share_group.clone(),
                        max_inflight,
                        max_packet_bytes,
                        device_crops_per_s: i.device_crops_per_s,
                        device_bytes_per_s: i.device_bytes_per_s,
                    },
                    model: super::ModelConfig {
                        manifest: self.model.manifest.clone(),
                        onnxruntime: self.model.onnxruntime.clone(),
                        threads,
                        server: self.model.server.clone(),
                    },
                    batch: super::BatchConfig {
                        max_batch,
                        max_wait: self.batch.max_wait,
                    },
                    confirm: self.confirm.clone(),
                    alerts: self.alerts.clone(),
                    store: self.store.clone(),
                    api: self.api.clone(),
                    home_assistant: self.home_assistant.clone(),
                })
            }
            _ => Err(p),
        }
    }
}

impl ConfigFile for CloudConfig {
    fn resolve_paths(&mut self, base: &Path) {
        use crate::config::resolve;
        self.broker.resolve_paths(base);
        self.model.manifest = resolve(base, &self.model.manifest);
        if let Some(p) = &mut self.model.onnxruntime {
            *p = resolve(base, p);
        }
        if let Some(p) = self.model.server.as_mut().and_then(|s| s.ca_file.as_mut()) {
            *p = resolve(base, p);
        }
        if let Some(dir) = &mut self.store.dir {
            *dir = resolve(base, dir);
        }
    }

    /// The problems [`CloudConfig::validated`] reports.
    fn validate(&self) -> Problems {
        self.validated().err().unwrap_or_default()
    }
}
