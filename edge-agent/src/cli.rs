//! The command line: `run`, `check`, `--version`.

use std::path::{Path, PathBuf};

use cascade_shared::config::ConfigFile;
use cascade_shared::config::edge::{EdgeConfig, SourceConfig, raw};
use cascade_shared::config::effective::Effective;
use cascade_shared::manifest::ModelManifest;
use cascade_shared::profile::{Arch, HardwareProfile};
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
    /// Ask an RTSP camera what it offers (DESCRIBE only) and print it.
    Probe {
        /// `rtsp://host:port/path`.
        url: String,
        #[arg(long)]
        username: Option<String>,
        /// An environment variable holding the password.
        #[arg(long)]
        password_env: Option<String>,
        /// Seconds to wait for the camera.
        #[arg(long, default_value_t = 10.0)]
        timeout_s: f64,
    },
}

/// A checked config and the settings in force (config over hardware profile over defaults).
#[derive(Debug)]
pub struct Checked {
    pub config: EdgeConfig,
    pub effective: Effective,
}

/// Reads and validates the config, and checks what it names (profile, sources, model, runtime,
/// certificates, buffer folder): every problem at once, or the config the agent runs on with the
/// settings in force. Loads nothing heavy.
pub fn check(path: &Path) -> Result<Checked, Problems> {
    let file = raw::EdgeConfig::read(path)?;
    let (cfg, mut p) = match file.validated() {
        Ok(cfg) => (Some(cfg), Problems::new()),
        Err(p) => (None, p),
    };
    let profile = match &file.device.profile {
        Some(file) => match HardwareProfile::load(file) {
            Ok(profile) => {
                check_arch(&profile, &mut p);
                Some(profile)
            }
            Err(e) => {
                p.extend(e);
                None
            }
        },
        None => None,
    };
    let effective = Effective::resolve(&file.detector, profile.as_ref());
    for (i, cam) in file.cameras.iter().enumerate() {
        check_source(&format!("camera[{i}].source"), &cam.source, &mut p);
        if let Some(main) = &cam.main_source {
            check_source(&format!("camera[{i}].main_source"), main, &mut p);
        }
    }
    match ModelManifest::load(&file.detector.manifest) {
        Ok((m, model)) => {
            if let Err(e) = m.verify_file(&model) {
                p.push("detector.manifest", e);
            }
        }
        Err(e) => p.extend(e),
    }
    if let Ok(eff) = &effective {
        let backend = cascade_infer::backend::BackendOptions {
            kind: eff.backend.value,
            library: file.detector.onnxruntime.clone(),
            threads: 1,
        };
        if let Err(e) = cascade_infer::backend::locate_runtime(&backend) {
            p.push("detector.onnxruntime", e.reason);
        }
    }
    let u = &file.uplink;
    checks::pem_files(
        &[
            ("uplink.ca_file", u.ca_file.as_deref()),
            ("uplink.client_cert_file", u.client_cert_file.as_deref()),
            ("uplink.client_key_file", u.client_key_file.as_deref()),
        ],
        &mut p,
    );
    let client = (u.client_cert_file.as_deref()).zip(u.client_key_file.as_deref());
    if u.tls
        && let Err(e) = crate::uplink::tls::client_config(u.ca_file.as_deref(), client)
    {
        p.push("uplink", e);
    }
    checks::writable_dir("buffer.dir", &file.buffer.dir, &mut p);
    match (cfg, effective) {
        (Some(config), Ok(effective)) if p.is_empty() => Ok(Checked { config, effective }),
        (_, effective) => {
            if let Err(e) = effective {
                p.extend(e);
            }
            Err(p)
        }
    }
}

/// What can be checked of a source without connecting to it.
fn check_source(field: &str, source: &SourceConfig, p: &mut Problems) {
    match source {
        SourceConfig::File { path, .. } => p.check(
            path.is_file(),
            format!("{field}.path"),
            format!("{}: no such file", path.display()),
        ),
        SourceConfig::Rtsp {
            password_env: Some(var),
            ..
        } => p.check(
            std::env::var_os(var).is_some(),
            format!("{field}.password_env"),
            format!("{var} is not set"),
        ),
        SourceConfig::Rtsp { .. } => {}
    }
}

/// A profile made for another processor is a mistake in the config.
fn check_arch(profile: &HardwareProfile, p: &mut Problems) {
    let want = match profile.arch {
        Arch::X86_64 => "x86_64",
        Arch::Aarch64 => "aarch64",
    };
    p.check(
        want == std::env::consts::ARCH,
        "device.profile",
        format!(
            "{} is for {want} machines; this one is {}",
            profile.name,
            std::env::consts::ARCH
        ),
    );
}

/// DESCRIBEs every RTSP camera of a checked config once: `(camera, what it offers or why not)`.
/// Only `check` does this; `run` starts even when a camera is down (its supervisor retries).
pub fn describe_cameras(
    cfg: &EdgeConfig,
) -> Vec<(
    String,
    Result<Vec<crate::source::rtsp::StreamInfo>, crate::source::SourceError>,
)> {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let sources = cfg.cameras.iter().flat_map(|cam| {
        let main = cam
            .main_source
            .as_ref()
            .map(|m| (format!("{} (main)", cam.id), m));
        std::iter::once((cam.id.clone(), &cam.source)).chain(main)
    });
    sources
        .filter_map(|(name, source)| {
            let found = match crate::source::rtsp_settings(source)? {
                Ok(s) => rt.block_on(crate::source::rtsp::probe(&s)),
                Err(e) => Err(e),
            };
            Some((name, found))
        })
        .collect()
}
