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

fn roots(prefix: &str, ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let field = format!("{prefix}.ca_file");
    match ca_file {
        Some(ca) => {
            for c in certificates(&field, ca)? {
                roots
                    .add(c)
                    .map_err(|e| format!("{field}: {}: {e}", ca.display()))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(format!(
                    "{field}: not set, and no system CA certificates were found"
                ));
            }
        }
    }
    Ok(roots)
}

/// The rustls client configuration the uplink uses (also run by `edge-agent check`).
pub fn client_config(cfg: &UplinkConfig) -> Result<ClientConfig, String> {
    let (cert, key) = (
        cfg.client_cert_file.as_deref(),
        cfg.client_key_file.as_deref(),
    );
    tls_client_config("uplink", cfg.ca_file.as_deref(), cert.zip(key))
}

/// A rustls client configuration: the CA file's certificates or the system's roots, and an optional
/// client certificate and key. Errors name `{prefix}.ca_file` and the like, and the file.
pub fn tls_client_config(
    prefix: &str,
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<ClientConfig, String> {
    install_crypto_provider();
    let builder = ClientConfig::builder().with_root_certificates(roots(prefix, ca_file)?);
    match client {
        Some((cert, key)) => {
            let chain = certificates(&format!("{prefix}.client_cert_file"), cert)?;
            let key_field = format!("{prefix}.client_key_file");
            let key = PrivateKeyDer::from_pem_slice(&read(&key_field, key)?)
                .map_err(|e| format!("{key_field}: {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{prefix}.client_cert_file: {e}"))
        }
        None => Ok(builder.with_no_client_auth()),
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
