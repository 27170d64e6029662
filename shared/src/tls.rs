//! TLS client configuration for both binaries: rustls with the ring provider, a CA file or the
//! system's roots, and an optional client certificate. Errors name the config field and the file.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TlsError {
    #[error("{field}: {}: {reason}", path.display())]
    File {
        field: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{field}: not set, and no system CA certificates were found")]
    NoSystemRoots { field: String },
    #[error("{field}: {reason}")]
    Config { field: String, reason: String },
}

/// Installs the process-wide rustls crypto provider (once; later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn file_err(field: &str, path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        field: field.to_string(),
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn read(field: &str, p: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(p).map_err(|e| file_err(field, p, e))
}

/// The certificates of a PEM file; at least one.
pub fn certificates(field: &str, p: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(field, p)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(field, p, e))?;
    if certs.is_empty() {
        return Err(file_err(field, p, "no PEM certificate in it"));
    }
    Ok(certs)
}

fn roots(prefix: &str, ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let field = format!("{prefix}.ca_file");
    match ca_file {
        Some(ca) => {
            for c in certificates(&field, ca)? {
                roots.add(c).map_err(|e| file_err(&field, ca, e))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(TlsError::NoSystemRoots { field });
            }
        }
    }
    Ok(roots)
}

/// A rustls client configuration: the CA file's certificates or the system's roots, and an optional
/// client certificate and key. Errors name `{prefix}.ca_file` and the like, and the file.
pub fn client_config(
    prefix: &str,
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<ClientConfig, TlsError> {
    install_crypto_provider();
    let builder = ClientConfig::builder().with_root_certificates(roots(prefix, ca_file)?);
    match client {
        Some((cert, key)) => {
            let chain = certificates(&format!("{prefix}.client_cert_file"), cert)?;
            let key_field = format!("{prefix}.client_key_file");
            let key = PrivateKeyDer::from_pem_slice(&read(&key_field, key)?)
                .map_err(|e| file_err(&key_field, key, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Config {
                    field: format!("{prefix}.client_cert_file"),
                    reason: e.to_string(),
                })
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_certificate_files_are_named() {
        let dir = std::env::temp_dir().join(format!("cascade-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let err = client_config("uplink", Some(&junk), None)
            .expect_err("refused")
            .to_string();
        assert!(
            err.starts_with("uplink.ca_file") && err.contains("junk.pem"),
            "{err}"
        );
        let missing = client_config("broker", Some(Path::new("/nonexistent/ca.pem")), None)
            .expect_err("refused")
            .to_string();
        assert!(
            missing.starts_with("broker.ca_file") && missing.contains("/nonexistent/ca.pem"),
            "{missing}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
