//! The cascade cloud analyzer: ingest crops from MQTT, confirm them with a large FP32 model in
//! dynamic batches, raise alerts, store everything, and serve an HTTP API.

pub mod alert;
mod alerting;
pub mod analyzer;
pub mod api;
pub mod batch;
pub mod broker;
pub mod budget;
pub mod cli;
pub mod confirm;
pub mod discovery;
mod fold;
pub mod ingest;
mod intake;
pub mod pki;
pub mod receipts;
pub mod store;
pub mod telemetry;
