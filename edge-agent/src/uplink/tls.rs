//! The uplink's TLS transport: the shared rustls client configuration (`cascade_shared::tls`) for
//! the `[uplink]` section.

use std::sync::Arc;

use cascade_shared::config::edge::UplinkConfig;
use cascade_shared::tls::TlsError;
use rumqttc::{TlsConfiguration, Transport};
use rustls::ClientConfig;

/// The rustls client configuration the uplink uses (also run by `edge-agent check`).
pub fn client_config(cfg: &UplinkConfig) -> Result<ClientConfig, TlsError> {
    let (cert, key) = (
        cfg.client_cert_file.as_deref(),
        cfg.client_key_file.as_deref(),
    );
    cascade_shared::tls::client_config("uplink", cfg.ca_file.as_deref(), cert.zip(key))
}

pub fn transport(cfg: &UplinkConfig) -> Result<Transport, TlsError> {
    Ok(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(client_config(cfg)?),
    )))
}
