//! The command line: `run`, `check`, `--version`.

use std::path::{Path, PathBuf};

use cascade_shared::config::ConfigFile;
use cascade_shared::config::cloud::{BrokerConfig, CloudConfig};
use cascade_shared::manifest::ModelManifest;
use cascade_shared::{Problems, checks};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cloud-analyzer",
    version,
    about = "cascade cloud analyzer: confirms edge crops and raises alerts"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the analyzer.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config, its model, certificates and store folder; print every problem.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
}

pub fn check(path: &Path) -> Result<CloudConfig, Problems> {
    let cfg = CloudConfig::read(path)?;
    let mut p = cfg.validate();
    match ModelManifest::load(&cfg.model.manifest) {
        Ok((m, model)) => {
            if let Err(e) = m.verify_file(&model) {
                p.push("model.manifest", e);
            }
        }
        Err(e) => p.extend(e),
    }
    if let Err(e) = cascade_infer::backend::locate_runtime(&crate::analyzer::backend_options(&cfg))
    {
        p.push("model.onnxruntime", e.reason);
    }
    let files: Vec<(&str, Option<&Path>)> = match &cfg.broker {
        BrokerConfig::External {
            ca_file,
            client_cert_file,
            client_key_file,
            ..
        } => {
            vec![
                ("broker.ca_file", ca_file.as_deref()),
                ("broker.client_cert_file", client_cert_file.as_deref()),
                ("broker.client_key_file", client_key_file.as_deref()),
            ]
        }
        BrokerConfig::Embedded {
            cert_file,
            key_file,
            ca_file,
            ..
        } => {
            vec![
                ("broker.cert_file", cert_file.as_deref()),
                ("broker.key_file", key_file.as_deref()),
                ("broker.ca_file", ca_file.as_deref()),
            ]
        }
    };
    checks::pem_files(&files, &mut p);
    if let BrokerConfig::External {
        tls: true,
        ca_file,
        client_cert_file,
        client_key_file,
        ..
    } = &cfg.broker
    {
        let client = client_cert_file.as_deref().zip(client_key_file.as_deref());
        if let Err(e) = cascade_shared::tls::client_config("broker", ca_file.as_deref(), client) {
            p.push("broker", e);
        }
    }
    checks::writable_dir("store.dir", &cfg.store.dir, &mut p);
    p.into_result(cfg)
}
