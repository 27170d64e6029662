//! The uplink's TLS transport: the shared rustls client configuration (`cascade_shared::tls`) for
//! the `[uplink]` section.

use std::path::Path;
use std::sync::Arc;

use cascade_shared::config::edge::UplinkConfig;
use cascade_shared::tls::TlsError;
use rumqttc::{TlsConfiguration, Transport};
use rustls::ClientConfig;

/// The rustls client configuration the uplink uses for `ca_file` and the client certificate and
/// key (also run by `edge-agent check`, on the file as written).
pub fn client_config(
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<ClientConfig, TlsError> {
    cascade_shared::tls::client_config("uplink", ca_file, client)
}

pub fn transport(cfg: &UplinkConfig) -> Result<Transport, TlsError> {
    let client = (cfg.client_cert_file.as_deref()).zip(cfg.client_key_file.as_deref());
    Ok(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(client_config(cfg.ca_file.as_deref(), client)?),
    )))
}
