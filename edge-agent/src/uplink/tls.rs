//! TLS for the uplink: rustls with the ring provider, the configured CA or the system's roots, and
//! an optional client certificate.

use std::path::Path;
use std::sync::Arc;

use cascade_shared::config::edge::UplinkConfig;
use rumqttc::{TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Installs the process-wide rustls crypto provider (once; later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read(field: &str, p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{field}: {}: {e}", p.display()))
}

fn certificates(field: &str, p: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(field, p)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{field}: {}: {e}", p.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{field}: {}: no PEM certificate in it",
            p.display()
        ));
    }
    Ok(certs)
}

fn roots(cfg: &UplinkConfig) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match &cfg.ca_file {
        Some(ca) => {
            for c in certificates("uplink.ca_file", ca)? {
                roots
                    .add(c)
                    .map_err(|e| format!("uplink.ca_file: {}: {e}", ca.display()))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(
                    "uplink.ca_file: not set, and no system CA certificates were found".into(),
                );
            }
        }
    }
    Ok(roots)
}

/// The rustls client configuration the uplink uses (also run by `edge-agent check`).
pub fn client_config(cfg: &UplinkConfig) -> Result<ClientConfig, String> {
    install_crypto_provider();
    let builder = ClientConfig::builder().with_root_certificates(roots(cfg)?);
    match (&cfg.client_cert_file, &cfg.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = certificates("uplink.client_cert_file", cert)?;
            let key = PrivateKeyDer::from_pem_slice(&read("uplink.client_key_file", key)?)
                .map_err(|e| format!("uplink.client_key_file: {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("uplink.client_cert_file: {e}"))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

pub fn transport(cfg: &UplinkConfig) -> Result<Transport, String> {
    Ok(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(client_config(cfg)?),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> UplinkConfig {
        toml::from_str(&format!("host = \"h\"\nport = 8883\n{extra}")).expect("config")
    }

    #[test]
    fn bad_certificate_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let err = client_config(&cfg(&format!("ca_file = {:?}", junk.display().to_string())))
            .expect_err("refused");
        assert!(
            err.starts_with("uplink.ca_file") && err.contains("junk.pem"),
            "{err}"
        );
        let missing =
            client_config(&cfg("ca_file = \"/nonexistent/ca.pem\"")).expect_err("refused");
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
    }
}
