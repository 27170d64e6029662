//! `[uplink]`, validated: the MQTT connection crops leave by, and when a crop counts as delivered.

use std::num::NonZeroU16;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::wire::Compression;

/// What lets a crop leave the buffer.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The analyzer's receipt on `cascade/v1/{device}/receipts`: it has stored the crop (or refused
    /// it for good). Crops the broker acknowledged but no receipt named are sent again.
    #[default]
    Receipt,
    /// The broker's PUBACK: it has the crop. Only for consumers that send no receipts; a broker
    /// restarted without persistence, or one whose ACL drops the publish, loses crops this way.
    Puback,
}

/// `[uplink]`, validated (the file's form is [`raw::UplinkConfig`], which documents the
/// defaults).
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    /// Not empty.
    pub host: String,
    /// Not 0.
    pub port: u16,
    pub tls: bool,
    /// Set only with `tls`.
    pub ca_file: Option<PathBuf>,
    /// Both or neither of `client_cert_file` and `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// 5 s to 65535 s (MQTT's limit).
    pub keep_alive: Duration,
    /// At least 384 KiB.
    pub max_packet_bytes: usize,
    /// Publishes awaiting PUBACK at once, at most 60000.
    pub max_inflight: NonZeroU16,
    /// At least 1 s.
    pub reconnect_max: Duration,
    /// At least 5 s.
    pub ack_timeout: Duration,
    pub compression: Compression,
    pub delivery: Delivery,
    /// At least 5 s.
    pub receipt_timeout: Duration,
    /// Crops sent and not yet delivered at once, 1 to 10000.
    pub receipt_window: usize,
}
