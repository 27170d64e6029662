//! `[model.server]`: the confirm model on an inference server speaking the KServe v2 (Open
//! Inference) protocol over HTTP/REST: Triton, OpenVINO Model Server, MLServer, KServe. The
//! manifest still describes the model (input size, normalisation, output format): pre- and
//! post-processing stay in the analyzer, only the model runs on the server
//! (`design/inference-server.md`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::Problems;

/// `[model.server]`. Debug never shows the token (only the variable that holds it).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The server's base URL, `http://` or `https://` (e.g. `http://triton:8000`). No default.
    pub url: String,
    /// The model's name on the server. No default.
    pub model: String,
    /// The model's version on the server. Default: none (the server's choice).
    #[serde(default)]
    pub version: Option<String>,
    /// `connect_timeout_s`: the longest a connection may take to open. Positive. Default: 2 s.
    #[serde(
        rename = "connect_timeout_s",
        default = "default_connect",
        with = "crate::config::seconds"
    )]
    pub connect_timeout: Duration,
    /// `request_timeout_s`: the longest one request may take, sending to last byte. Positive.
    /// Default: 30 s.
    #[serde(
        rename = "request_timeout_s",
        default = "default_request",
        with = "crate::config::seconds"
    )]
    pub request_timeout: Duration,
    /// Tries again after a failed request (connection refused or reset, timeout, HTTP 5xx/429),
    /// 0 to 10, waiting `retry_backoff_ms` then twice that and so on. Default: 2.
    #[serde(default = "two")]
    pub retries: u32,
    /// `retry_backoff_ms`: the first wait between tries, 1 to 60000 ms. Default: 200 ms.
    #[serde(
        rename = "retry_backoff_ms",
        default = "default_backoff",
        with = "super::millis"
    )]
    pub retry_backoff: Duration,
    /// The circuit opens after this many failed requests in a row (each after its retries), 1 to
    /// 1000: crops then wait without calling the server. Default: 3.
    #[serde(default = "three")]
    pub breaker_failures: u32,
    /// `breaker_cooldown_s`: how long an open circuit waits before one probe request (half-open);
    /// a success closes it, a failure opens it again. Positive. Default: 5 s.
    #[serde(
        rename = "breaker_cooldown_s",
        default = "default_cooldown",
        with = "crate::config::seconds"
    )]
    pub breaker_cooldown: Duration,
    /// CA certificate (PEM) an `https` server's certificate must chain to. Default: the system's
    /// roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The environment variable holding a bearer token sent as `Authorization: Bearer ...`.
    /// Default: none (no token is sent).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Send tensors in the binary tensor data extension when the server lists
    /// `binary_tensor_data` among its extensions (`GET /v2`); false: always JSON. Default: true.
    #[serde(default = "yes")]
    pub binary: bool,
}

fn default_connect() -> Duration {
    Duration::from_secs(2)
}

fn default_request() -> Duration {
    Duration::from_secs(30)
}

fn default_backoff() -> Duration {
    Duration::from_millis(200)
}

fn default_cooldown() -> Duration {
    Duration::from_secs(5)
}

fn two() -> u32 {
    2
}

fn three() -> u32 {
    3
}

fn yes() -> bool {
    true
}

impl ServerConfig {
    /// Records every problem of this section (fields named `model.server.*`).
    pub fn validate(&self, p: &mut Problems) {
        let f = |name: &str| format!("model.server.{name}");
        let scheme = self
            .url
            .strip_prefix("http://")
            .or_else(|| self.url.strip_prefix("https://"));
        p.check(
            scheme.is_some_and(|rest| !rest.trim_end_matches('/').is_empty()),
            f("url"),
            format!(
                "{:?} must be an http:// or https:// URL with a host",
                self.url
            ),
        );
        p.check(
            self.ca_file.is_none() || self.url.starts_with("https://"),
            f("ca_file"),
            "is for an https:// url",
        );
        for (name, value) in [
            ("model", Some(&self.model)),
            ("version", self.version.as_ref()),
        ] {
            if let Some(v) = value {
                p.check(
                    !v.is_empty()
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                    f(name),
                    "must be 1 or more characters of A-Z a-z 0-9 - _ .",
                );
            }
        }
        for (name, d) in [
            ("connect_timeout_s", self.connect_timeout),
            ("request_timeout_s", self.request_timeout),
            ("breaker_cooldown_s", self.breaker_cooldown),
        ] {
            p.check(!d.is_zero(), f(name), "must be positive");
        }
        p.check(self.retries <= 10, f("retries"), "must be 0..=10");
        p.check(
            (Duration::from_millis(1)..=Duration::from_secs(60)).contains(&self.retry_backoff),
            f("retry_backoff_ms"),
            "must be 1..=60000",
        );
        p.check(
            (1..=1000).contains(&self.breaker_failures),
            f("breaker_failures"),
            "must be 1..=1000",
        );
        if let Some(var) = &self.token_env {
            p.check(
                std::env::var_os(var).is_some(),
                f("token_env"),
                format!("the environment variable {var} is not set"),
            );
        }
    }

    /// The base URL without a trailing `/`.
    pub fn base_url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// `/v2/models/{model}[/versions/{version}]`.
    pub fn model_path(&self) -> String {
        match &self.version {
            Some(v) => format!("/v2/models/{}/versions/{v}", self.model),
            None => format!("/v2/models/{}", self.model),
        }
    }

    /// The bearer token from `token_env`, when set.
    pub fn token(&self) -> Option<String> {
        self.token_env.as_ref().and_then(|v| std::env::var(v).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, toml::de::Error> {
        toml::from_str(text)
    }

    fn problems(text: &str) -> Vec<String> {
        let mut p = Problems::new();
        parse(text).expect("parses").validate(&mut p);
        p.iter().map(str::to_string).collect()
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = parse("url = \"http://triton:8000/\"\nmodel = \"yolov8n\"").expect("parses");
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!((c.retries, c.breaker_failures), (2, 3));
        assert_eq!(c.retry_backoff, Duration::from_millis(200));
        assert_eq!(c.breaker_cooldown, Duration::from_secs(5));
        assert!(c.binary && c.token_env.is_none() && c.ca_file.is_none());
        assert_eq!(c.base_url(), "http://triton:8000");
        assert_eq!(c.model_path(), "/v2/models/yolov8n");
        assert!(problems("url = \"http://triton:8000/\"\nmodel = \"yolov8n\"").is_empty());
        let v = parse("url = \"http://h\"\nmodel = \"m\"\nversion = \"2\"").expect("parses");
        assert_eq!(v.model_path(), "/v2/models/m/versions/2");
    }

    #[test]
    fn every_problem_is_reported_naming_its_field() {
        let p = problems(
            "url = \"triton:8000\"\nmodel = \"a/b\"\nversion = \"\"\nconnect_timeout_s = 0\n\
             request_timeout_s = 0\nretries = 11\nretry_backoff_ms = 0\nbreaker_failures = 0\n\
             breaker_cooldown_s = 0\nca_file = \"ca.pem\"\n\
             token_env = \"CASCADE_TEST_SURELY_UNSET_TOKEN\"",
        );
        for field in [
            "url",
            "ca_file",
            "model",
            "version",
            "connect_timeout_s",
            "request_timeout_s",
            "retries",
            "retry_backoff_ms",
            "breaker_failures",
            "breaker_cooldown_s",
            "token_env",
        ] {
            let name = format!("model.server.{field}");
            assert!(p.iter().any(|m| m.starts_with(&name)), "{name}: {p:?}");
        }
        assert_eq!(p.len(), 11, "{p:?}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = parse("url = \"http://h\"\nmodel = \"m\"\ntimeout = 3").expect_err("unknown");
        assert!(e.to_string().contains("timeout"), "{e}");
    }
}
