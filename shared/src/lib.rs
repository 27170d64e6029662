//! Shared pieces of cascade: the wire protocol, MQTT topics, config and profile schemas, model
//! manifests, and the cross-cutting primitives both binaries use (shutdown, clock, retry, TLS,
//! HTTP serving, telemetry helpers, problem lists and checks). No pixels and no pipeline stages.

pub mod checks;
pub mod clock;
pub mod config;
pub mod http;
pub mod manifest;
pub mod private;
pub mod problems;
pub mod profile;
pub mod receipt;
pub mod retry;
pub mod sd_notify;
pub mod shutdown;
pub mod status;
pub mod telemetry;
pub mod tls;
pub mod topics;
pub mod verdict;
pub mod wire;

pub use problems::Problems;
