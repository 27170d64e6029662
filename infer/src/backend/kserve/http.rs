//! Blocking HTTP/1.1 to the inference server (`ureq`: pooled keep-alive connections, rustls with
//! the ring provider, a CA file or the system's roots), with the config's timeouts and bearer
//! token. Failures are sorted into ones worth retrying (the server is down, slow or overloaded)
//! and refusals (the request itself is wrong).

use std::sync::Arc;
use std::time::Duration;

use cascade_shared::config::cloud::ServerConfig;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// The largest response read (a batch of 16 YOLOv8 outputs as JSON is about 120 MB).
const MAX_RESPONSE_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No answer: refused, reset, timed out, unresolvable.
    #[error("{0}")]
    Transport(String),
    /// An answer with an error status.
    #[error("HTTP {code}: {body}")]
    Status { code: u16, body: String },
}

impl HttpError {
    /// Worth another try: no answer, or the server is failing or overloaded (5xx, 429).
    pub fn retryable(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Status { code, .. } => *code >= 500 || *code == 429,
        }
    }
}

/// A response's body and its `Inference-Header-Content-Length`.
#[derive(Debug)]
pub struct Reply {
    pub body: Vec<u8>,
    pub header_len: Option<usize>,
}

pub struct Http {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
}

impl Http {
    /// The client for `cfg`; fails only on an unreadable `ca_file` (the error names the field).
    pub fn new(cfg: &ServerConfig) -> Result<Self, String> {
        let roots: Vec<Certificate<'static>> = match &cfg.ca_file {
            Some(ca) => cascade_shared::tls::certificates("model.server.ca_file", ca)
                .map_err(|e| e.to_string())?
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect(),
            None => rustls_native_certs::load_native_certs()
                .certs
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect(),
        };
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_global(Some(cfg.request_timeout))
            .http_status_as_error(false)
            .tls_config(tls)
            .build();
        Ok(Self {
            agent: ureq::Agent::new_with_config(config),
            base: cfg.base_url().to_string(),
            auth: cfg.token().map(|t| format!("Bearer {t}")),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET {base}{path}`.
    pub fn get(&self, path: &str) -> Result<Reply, HttpError> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        reply(req.call())
    }

    /// `POST {base}{path}` with `body` (JSON, or binary tensors after a JSON header of
    /// `header_len` bytes).
    pub fn post(
        &self,
        path: &str,
        body: &[u8],
        header_len: Option<usize>,
    ) -> Result<Reply, HttpError> {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        req = match header_len {
            Some(n) => req
                .header("Content-Type", "application/octet-stream")
                .header("Inference-Header-Content-Length", n.to_string()),
            None => req.header("Content-Type", "application/json"),
        };
        reply(req.send(body))
    }
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Reply, HttpError> {
    let mut resp = r.map_err(transport)?;
    let code = resp.status().as_u16();
    let header_len = resp
        .headers()
        .get("inference-header-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(transport)?;
    if (200..300).contains(&code) {
        return Ok(Reply { body, header_len });
    }
    let text = String::from_utf8_lossy(&body);
    Err(HttpError::Status {
        code,
        body: text.chars().take(300).collect(),
    })
}

/// A transport failure in words: "connection refused", "timed out after 30 s".
fn transport(e: ureq::Error) -> HttpError {
    let text = match &e {
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
            _ => io.to_string(),
        },
        ureq::Error::Timeout(what) => format!("timed out ({what:?})"),
        other => {
            let text = other.to_string();
            if text.to_ascii_lowercase().contains("connection refused") {
                "connection refused".to_string()
            } else {
                text
            }
        }
    };
    HttpError::Transport(text)
}

/// Doubling waits from `first`, for the tries after the first.
pub fn backoff(first: Duration, attempt: u32) -> Duration {
    first.saturating_mul(1u32 << attempt.min(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_no_answer_overload_and_server_errors_are_retried() {
        assert!(HttpError::Transport("connection refused".into()).retryable());
        for (code, retry) in [
            (500, true),
            (503, true),
            (429, true),
            (400, false),
            (404, false),
        ] {
            let e = HttpError::Status {
                code,
                body: String::new(),
            };
            assert_eq!(e.retryable(), retry, "{code}");
        }
    }

    #[test]
    fn backoff_doubles() {
        let ms = Duration::from_millis;
        assert_eq!(backoff(ms(200), 0), ms(200));
        assert_eq!(backoff(ms(200), 2), ms(800));
    }
}
