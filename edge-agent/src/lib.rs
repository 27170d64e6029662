//! The cascade edge agent: capture -> decode -> motion -> detect -> track -> crop -> buffer -> uplink.
//!
//! Each pipeline stage is a module with a small trait at its edge; `pipeline` wires them together
//! on blocking threads, and `agent` runs the pipeline, the uplink and the telemetry endpoint.

pub mod agent;
pub mod buffer;
pub mod cli;
pub mod crop;
pub mod decode;
pub mod detect;
pub mod motion;
pub mod pipeline;
pub mod source;
pub mod telemetry;
pub mod track;
pub mod uplink;
