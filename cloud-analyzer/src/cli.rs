//! The command line: `run`, `check`, `--version`.

use std::path::{Path, PathBuf};

use cascade_infer::backend::BackendOptions;
use cascade_shared::config::cloud::{BrokerConfig, CloudConfig, raw};
use cascade_shared::config::{BackendKind, ConfigFile};
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
    /// Make an API token: prints the token (give it to its holder) and the `[[api.token]]` lines
    /// for the config (only its SHA-256 is kept there).
    ///
    /// Example: cloud-analyzer token --name home-assistant --scope read
    Token {
        /// Who will hold it (shown in the config and in refusals).
        #[arg(long)]
        name: String,
        /// `read` (alerts, crops, devices) or `admin` (also erasing crops).
        #[arg(long, default_value = "read")]
        scope: String,
    },
}

/// A new random token and the config lines that accept it; `None` for an unknown scope.
pub fn new_token(name: &str, scope: &str) -> Option<(String, String)> {
    if !matches!(scope, "read" | "admin") {
        return None;
    }
    let bytes: [u8; 32] = rand::random();
    let token = hex::encode(bytes);
    let lines = format!(
        "[[api.token]]\nname = {name:?}\nsha256 = \"{}\"\nscope = \"{scope}\"\n",
        crate::api::token_hash(&token)
    );
    Some((token, lines))
}

/// Reads and validates the config, and checks what it names (model, runtime, certificates, store
/// folder): every problem at once, or the config the analyzer runs on.
pub fn check(path: &Path) -> Result<CloudConfig, Problems> {
    let file = raw::CloudConfig::read(path)?;
    let (cfg, mut p) = match file.validated() {
        Ok(cfg) => (Some(cfg), Problems::new()),
        Err(p) => (None, p),
    };
    match ModelManifest::load(&file.model.manifest) {
        Ok((m, model)) => {
            if let Err(e) = m.verify_file(&model) {
                p.push("model.manifest", e);
            }
        }
        Err(e) => p.extend(e),
    }
    // Only the library is looked for: `threads` plays no part (and is checked above).
    let runtime = BackendOptions {
        kind: BackendKind::Onnxruntime,
        library: file.model.onnxruntime.clone(),
        threads: 1,
    };
    if let Err(e) = cascade_infer::backend::locate_runtime(&runtime) {
        p.push("model.onnxruntime", e.reason);
    }
    checks::pem_files(&file.broker.files(), &mut p);
    if let BrokerConfig::External {
        tls: true,
        ca_file,
        client_cert_file,
        client_key_file,
        ..
    } = &file.broker
    {
        let client = client_cert_file.as_deref().zip(client_key_file.as_deref());
        if let Err(e) = cascade_shared::tls::client_config("broker", ca_file.as_deref(), client) {
            p.push("broker", e);
        }
    }
    checks::writable_dir("store.dir", &file.store.dir, &mut p);
    match cfg {
        Some(cfg) if p.is_empty() => Ok(cfg),
        _ => Err(p),
    }
}
