//! Shared pieces of cascade: the wire protocol, MQTT topics, config and profile schemas, model
//! manifests, and the cross-cutting primitives every task uses (shutdown, clock, problem lists).

pub mod clock;
pub mod config;
pub mod manifest;
pub mod problems;
pub mod profile;
pub mod shutdown;
pub mod telemetry;
pub mod topics;
pub mod wire;

pub use problems::Problems;
