//! The command line: `run`, `check`, `--version`.

use std::path::{Path, PathBuf};

use cascade_shared::Problems;
use cascade_shared::config::ConfigFile;
use cascade_shared::config::cloud::{BrokerConfig, CloudConfig};
use cascade_shared::manifest::ModelManifest;
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
    if let Err(e) = edge_agent::detect::runtime::locate(cfg.model.onnxruntime.as_deref()) {
        p.push("model.onnxruntime", e);
    }
    let files: Vec<(&str, &Option<PathBuf>)> = match &cfg.broker {
        BrokerConfig::External {
            ca_file,
            client_cert_file,
            client_key_file,
            ..
        } => {
            vec![
                ("broker.ca_file", ca_file),
                ("broker.client_cert_file", client_cert_file),
                ("broker.client_key_file", client_key_file),
            ]
        }
        BrokerConfig::Embedded {
            cert_file,
            key_file,
            ca_file,
            ..
        } => {
            vec![
                ("broker.cert_file", cert_file),
                ("broker.key_file", key_file),
                ("broker.ca_file", ca_file),
            ]
        }
    };
    for (field, file) in files {
        if let Some(f) = file {
            match std::fs::read_to_string(f) {
                Ok(text) if text.contains("-----BEGIN ") => {}
                Ok(_) => p.push(field, format!("{}: not a PEM file", f.display())),
                Err(e) => p.push(field, format!("{}: {e}", f.display())),
            }
        }
    }
    if let BrokerConfig::External {
        tls: true,
        ca_file,
        client_cert_file,
        client_key_file,
        ..
    } = &cfg.broker
    {
        let client = client_cert_file.as_deref().zip(client_key_file.as_deref());
        if let Err(e) =
            edge_agent::uplink::tls::tls_client_config("broker", ca_file.as_deref(), client)
        {
            p.push("broker", e);
        }
    }
    let probe = cfg.store.dir.join(".cascade-write-check");
    let ok = std::fs::create_dir_all(&cfg.store.dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    if let Err(e) = ok {
        p.push(
            "store.dir",
            format!("{}: not writable: {e}", cfg.store.dir.display()),
        );
    }
    p.into_result(cfg)
}
