//! The command line: `run`, `check`, `token`, `pki`, `--version`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cascade_infer::backend::BackendOptions;
use cascade_shared::config::cloud::{BrokerConfig, CloudConfig, StoreConfig, StoreKind, raw};
use cascade_shared::config::{BackendKind, ConfigFile};
use cascade_shared::manifest::ModelManifest;
use cascade_shared::{Problems, checks};
use clap::{Args, Parser, Subcommand};

use crate::pki::{self, Identity, IssueOptions, PkiError};

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
    ///
    /// Example: cloud-analyzer run --config /etc/cascade/cloud-analyzer.toml
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config, its model, certificates and store folder; print every problem.
    ///
    /// Example: cloud-analyzer check --config /etc/cascade/cloud-analyzer.toml
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
    /// The fleet's certificates: a CA, device, analyzer, alert-consumer and broker certificates
    /// (the CN is the identity `deploy/mosquitto.acl` knows), and revocation through a CRL.
    ///
    /// Example: cloud-analyzer pki init --dir /etc/cascade/pki
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create a CA in DIR (made 0700): ca.pem, ca.key (0600), an empty crl.pem, index.txt.
    /// Refuses to touch a folder that has a CA already.
    ///
    /// Example: cloud-analyzer pki init --dir /etc/cascade/pki
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// The CA's CN.
        #[arg(long, default_value = "cascade fleet CA")]
        name: String,
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// A device's client certificate: CN and DNS name = the device id; writes ID.pem and ID.key.
    ///
    /// Example: cloud-analyzer pki issue-device edge-01 --dir /etc/cascade/pki --out ./edge-01
    IssueDevice {
        /// The device id (as in the edge's config): A-Z a-z 0-9 - _ . only.
        id: String,
        #[command(flatten)]
        issue: IssueArgs,
    },
    /// The analyzer's client certificate (CN cascade-analyzer): cascade-analyzer.pem and .key.
    ///
    /// Example: cloud-analyzer pki issue-analyzer --dir /etc/cascade/pki
    IssueAnalyzer {
        #[command(flatten)]
        issue: IssueArgs,
    },
    /// A read-only alert consumer's client certificate (CN cascade-alerts).
    ///
    /// Example: cloud-analyzer pki issue-alerts --dir /etc/cascade/pki --out ./home-assistant
    IssueAlerts {
        #[command(flatten)]
        issue: IssueArgs,
    },
    /// The broker's server certificate for the given names (DNS names or IP addresses):
    /// server.pem and server.key.
    ///
    /// Example: cloud-analyzer pki issue-server --dir /etc/cascade/pki --host broker.example.com --host 10.0.0.5
    IssueServer {
        /// A name clients connect to (repeat, or give several).
        #[arg(long = "host", required = true, num_args = 1..)]
        hosts: Vec<String>,
        #[command(flatten)]
        issue: IssueArgs,
    },
    /// Revoke every certificate with this serial or CN (a device id) and rewrite crl.pem; the
    /// broker refuses them once it has read the new CRL (restart it).
    ///
    /// Example: cloud-analyzer pki revoke edge-01 --dir /etc/cascade/pki
    Revoke {
        /// A device id (or other CN), or a serial number in hex.
        target: String,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Sign crl.pem again from the index (after a failed write).
    ///
    /// Example: cloud-analyzer pki crl --dir /etc/cascade/pki
    Crl {
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Where the CA is, and how to issue.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The CA's folder (made by `pki init`).
    #[arg(long)]
    pub dir: PathBuf,
    /// Lifetime in days (never beyond the CA's).
    #[arg(long, default_value_t = 730)]
    pub days: u32,
    /// Folder for the certificate and key (made 0700 if missing); default: the CA's folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Issue although the identity has a live certificate (the old one stays valid until
    /// revoked), and replace existing files.
    #[arg(long)]
    pub force: bool,
}

impl IssueArgs {
    fn options(self) -> IssueOptions {
        IssueOptions {
            dir: self.dir,
            days: self.days,
            out: self.out,
            force: self.force,
        }
    }
}

/// Runs a `pki` subcommand: what it did, to print.
pub fn pki(command: PkiCommand) -> Result<String, PkiError> {
    let issued = |identity: Identity, args: IssueArgs| {
        let i = pki::issue(&identity, &args.options())?;
        Ok(format!(
            "issued {} certificate for {} (serial {}, valid until {})\n  {}\n  {} (private key, 0600)",
            i.entry.kind,
            i.entry.cn,
            i.entry.serial,
            pki::rfc3339(i.entry.not_after),
            i.cert.display(),
            i.key.display()
        ))
    };
    match command {
        PkiCommand::Init { dir, name, days } => {
            let ca = pki::init(&dir, &name, days)?;
            Ok(format!(
                "created CA {:?} in {} (serial {}, valid until {})",
                ca.cn,
                dir.display(),
                ca.serial,
                pki::rfc3339(ca.not_after)
            ))
        }
        PkiCommand::IssueDevice { id, issue } => issued(Identity::Device(id), issue),
        PkiCommand::IssueAnalyzer { issue } => issued(Identity::Analyzer, issue),
        PkiCommand::IssueAlerts { issue } => issued(Identity::Alerts, issue),
        PkiCommand::IssueServer { hosts, issue } => issued(Identity::Server(hosts), issue),
        PkiCommand::Revoke { target, dir } => {
            let revoked = pki::revoke(&dir, &target)?;
            let lines: Vec<String> = revoked
                .iter()
                .map(|e| {
                    format!(
                        "revoked {} certificate {} (serial {})",
                        e.kind, e.cn, e.serial
                    )
                })
                .collect();
            Ok(format!(
                "{}\nwrote {}: give it to the broker (crlfile) and restart it",
                lines.join("\n"),
                dir.join(pki::CRL).display()
            ))
        }
        PkiCommand::Crl { dir } => {
            let path = pki::refresh_crl(&dir)?;
            Ok(format!("wrote {}", path.display()))
        }
    }
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
    match &file.model.server {
        None => check_local_model(&file.model, &mut p),
        // The server is asked in `check` only (`server_answers`): `run` starts without it.
        Some(_) => {
            if let Err(e) = ModelManifest::load(&file.model.manifest) {
                p.extend(e);
            }
        }
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
    check_store(&file.store, &mut p);
    match cfg {
        Some(cfg) if p.is_empty() => Ok(cfg),
        _ => Err(p),
    }
}

/// The in-process model: its file matches the manifest, and ONNX Runtime's library is found.
fn check_local_model(model: &raw::ModelConfig, p: &mut Problems) {
    match ModelManifest::load(&model.manifest) {
        Ok((m, file)) => {
            if let Err(e) = m.verify_file(&file) {
                p.push("model.manifest", e);
            }
        }
        Err(e) => p.extend(e),
    }
    // Only the library is looked for: `threads` plays no part (and is checked above).
    let runtime = BackendOptions {
        kind: BackendKind::Onnxruntime,
        library: model.onnxruntime.clone(),
        threads: 1,
        spin: false,
        edge_tpu: None,
        gpu: None,
    };
    if let Err(e) = cascade_infer::backend::locate_runtime(&runtime) {
        p.push("model.onnxruntime", e.reason);
    }
}

/// For `check` (not `run`, which starts without the server and waits for it): the inference
/// server of `[model.server]` and its model answer ready. A line describing the model, none
/// without a server, or the problem.
pub fn server_answers(cfg: &CloudConfig) -> Result<Option<String>, Problems> {
    let Some(server) = &cfg.model.server else {
        return Ok(None);
    };
    cascade_infer::backend::kserve::probe(server)
        .map(Some)
        .map_err(|e| {
            let mut p = Problems::new();
            p.push("model.server.url", format!("not usable now: {e}"));
            p
        })
}

/// The store: SQLite's folder is writable; PostgreSQL's server answers (and its schema is
/// migrated, as the analyzer would at start). The connection string is never printed.
fn check_store(store: &StoreConfig, p: &mut Problems) {
    match store.kind {
        StoreKind::Sqlite => {
            if let Some(dir) = &store.dir {
                checks::writable_dir("store.dir", dir, p);
            }
        }
        StoreKind::Postgres => {
            if store.postgres_url().is_none() {
                return; // reported by validation
            }
            let replica = "cloud-analyzer-check";
            if let Err(e) = crate::store::Store::connect(store, replica, Duration::from_secs(30)) {
                p.push(
                    "store.url",
                    format!("the PostgreSQL server is not usable: {e}"),
                );
            }
        }
    }
}
