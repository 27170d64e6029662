//! The cascade edge agent: capture -> decode -> motion -> detect -> track -> crop -> buffer -> uplink.
//!
//! Each pipeline stage is a module with a small trait at its edge (`source::Source`,
//! `decode::VideoDecoder`, `motion::MotionDetector`, `detect::Detect`). `camera` runs one camera's
//! stages on blocking threads under a supervisor; `detect::service` shares one detector between
//! every camera; `agent` wires the cameras, the buffer, the uplink and the telemetry endpoint.

pub mod agent;
pub mod buffer;
pub mod camera;
pub mod cli;
pub mod crop;
pub mod decode;
pub mod detect;
pub mod motion;
pub mod power;
pub mod progress;
pub mod record;
pub mod source;
pub mod telemetry;
pub mod thermal;
pub mod track;
pub mod uplink;
