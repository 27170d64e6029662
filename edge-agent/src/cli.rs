//! The command line: `run`, `check`, `--version`.

use std::path::{Path, PathBuf};

use cascade_shared::config::ConfigFile;
use cascade_shared::config::edge::{EdgeConfig, SourceConfig};
use cascade_shared::manifest::ModelManifest;
use cascade_shared::profile::HardwareProfile;
use cascade_shared::{Problems, checks};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "edge-agent",
    version,
    about = "cascade edge agent: camera -> motion -> person detector -> crops -> MQTT"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Exit once every input has ended and every crop is acknowledged (file inputs).
        #[arg(long)]
        exit_when_done: bool,
    },
    /// Check a config, its model, files, certificates and buffer folder; print every problem.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// Every problem with a config file and what it points to. Loads nothing heavy.
pub fn check(path: &Path) -> Result<EdgeConfig, Problems> {
    let cfg = EdgeConfig::read(path)?;
    let mut p = cfg.validate();
    for (i, cam) in cfg.cameras.iter().enumerate() {
        let SourceConfig::File { path, .. } = &cam.source;
        p.check(
            path.is_file(),
            format!("camera[{i}].source.path"),
            format!("{}: no such file", path.display()),
        );
    }
    match ModelManifest::load(&cfg.detector.manifest) {
        Ok((m, model)) => {
            if let Err(e) = m.verify_file(&model) {
                p.push("detector.manifest", e);
            }
        }
        Err(e) => p.extend(e),
    }
    let backend = cascade_infer::backend::BackendOptions {
        kind: cascade_shared::config::BackendKind::Onnxruntime,
        library: cfg.detector.onnxruntime.clone(),
        threads: 1,
    };
    if let Err(e) = cascade_infer::backend::locate_runtime(&backend) {
        p.push("detector.onnxruntime", e.reason);
    }
    let u = &cfg.uplink;
    checks::pem_files(
        &[
            ("uplink.ca_file", u.ca_file.as_deref()),
            ("uplink.client_cert_file", u.client_cert_file.as_deref()),
            ("uplink.client_key_file", u.client_key_file.as_deref()),
        ],
        &mut p,
    );
    if cfg.uplink.tls
        && let Err(e) = crate::uplink::tls::client_config(&cfg.uplink)
    {
        p.push("uplink", e);
    }
    checks::writable_dir("buffer.dir", &cfg.buffer.dir, &mut p);
    if let Some(profile) = &cfg.device.profile
        && let Err(e) = HardwareProfile::load(profile)
    {
        p.extend(e);
    }
    p.into_result(cfg)
}
