//! TLS transport for the uplink (rustls with the ring provider).

use cascade_shared::config::edge::UplinkConfig;
use rumqttc::{TlsConfiguration, Transport};

/// Installs the process-wide rustls crypto provider (once; later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// TLS with the configured CA and an optional client certificate.
pub fn transport(cfg: &UplinkConfig) -> Result<Transport, String> {
    install_crypto_provider();
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let client_auth = match (&cfg.client_cert_file, &cfg.client_key_file) {
        (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
        _ => None,
    };
    let tls = match &cfg.ca_file {
        Some(ca) => TlsConfiguration::Simple {
            ca: read(ca)?,
            alpn: None,
            client_auth,
        },
        None => return Err("uplink.ca_file is required when tls = true".into()),
    };
    Ok(Transport::tls_with_config(tls))
}
