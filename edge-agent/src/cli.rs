//! The command line: `run`, `check`, `--version`.

use std::path::{Path, PathBuf};

use cascade_infer::backend::providers::{self, GpuOptions, Provider};
use cascade_shared::config::edge::{DetectorConfig, EdgeConfig, SourceConfig, raw};
use cascade_shared::config::effective::{Effective, Origin};
use cascade_shared::config::{BackendKind, ConfigFile};
use cascade_shared::manifest::ModelManifest;
use cascade_shared::profile::{Arch, HardwareProfile};
use cascade_shared::{Problems, checks};
use clap::{Parser, Subcommand};

pub mod machine;

use crate::source::rtsp::StreamInfo;
use crate::source::v4l2::caps::Choice;
use crate::source::v4l2::{self, DeviceInfo, V4l2Settings};
use crate::source::{self, SourceError};

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
    ///
    /// Example: edge-agent run --config /etc/cascade/edge-agent.toml
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Exit once every input has ended and every crop is acknowledged (file inputs).
        #[arg(long)]
        exit_when_done: bool,
        /// Power management only says what it would switch (as `power.dry_run = true`).
        #[arg(long)]
        power_dry_run: bool,
    },
    /// Check a config, its model, files, certificates and buffer folder; print every problem.
    ///
    /// Example: edge-agent check --config /etc/cascade/edge-agent.toml
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Ask a camera what it offers and print it: an RTSP camera (DESCRIBE only) or a V4L2
    /// device (its driver, formats, sizes and frame rates).
    ///
    /// Example: edge-agent probe rtsp://192.168.1.20:554/stream1 --username admin --password-env
    /// CAM_PASSWORD (the password in $CAM_PASSWORD), or: edge-agent probe /dev/video0
    Probe {
        /// `rtsp://host:port/path`, or a V4L2 device such as `/dev/video0`.
        #[arg(value_name = "URL|DEVICE")]
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
    /// The input sides the detector will run, and the sizes in force the model has no file for.
    pub ladder: (Vec<u32>, Vec<u32>),
    /// The hardware profile the config names.
    pub profile: Option<HardwareProfile>,
    /// The execution providers ONNX Runtime will try, in order; None: another backend.
    pub providers: Option<Vec<Provider>>,
}

impl Checked {
    /// The power plan in force (`power manager = ...`, sensors, dry run).
    pub fn power_report(&self, dry_run: bool) -> String {
        crate::power::plan::describe(&self.config.power, self.profile.as_ref(), dry_run)
    }

    /// This machine against the profile: `machine = x86_64, 2 cores, ...` and notes.
    pub fn machine_report(&self) -> String {
        machine::report(
            &machine::Machine::this(),
            self.profile.as_ref(),
            Path::new("/"),
        )
    }

    /// The execution providers the detector will try: `detector providers = tensorrt (fp16,
    /// engine cache /var/lib/cascade/trt-cache) -> cuda -> cpu`.
    pub fn providers_report(&self) -> String {
        providers_report(self.providers.as_deref())
    }

    /// The input-size ladder the detector will run: `detector ladder = [640, 416, 320]`, with the
    /// sizes in force that the model has no file for.
    pub fn ladder_report(&self) -> String {
        let (sides, skipped) = &self.ladder;
        if skipped.is_empty() {
            format!("detector ladder = {sides:?}\n")
        } else {
            format!(
                "detector ladder = {sides:?} ({skipped:?} skipped: the model has no file for them)\n"
            )
        }
    }
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
    let mut ladder = (Vec::new(), Vec::new());
    let mut providers = None;
    let mut manifest_backend = None;
    match ModelManifest::load(&file.detector.manifest) {
        Ok((m, model)) => {
            manifest_backend = m.backend;
            if let Err(e) = m.verify_file(&model) {
                p.push("detector.manifest", e);
            }
            if let Ok(eff) = &effective {
                ladder = check_ladder(&m, &file.detector, eff, &mut p);
            }
        }
        Err(e) => p.extend(e),
    }
    if let Ok(eff) = &effective {
        let configured = cascade_infer::backend::BackendOptions {
            kind: eff.backend.value,
            library: crate::agent::onnxruntime_library(&file.detector, eff),
            threads: 1,
            spin: false,
            edge_tpu: crate::agent::edge_tpu_options(&file.detector, eff),
            gpu: crate::agent::gpu_options(&file.detector, &file.buffer.dir, eff),
        };
        // A manifest that names its backend (a .tflite model: litert) wins over the config's.
        let backend = match manifest_backend {
            Some(kind) if kind != configured.kind => cascade_infer::backend::BackendOptions {
                kind,
                library: None,
                ..configured
            },
            _ => configured,
        };
        if let Err(e) = cascade_infer::backend::locate_runtime(&backend) {
            let field = match (backend.kind, e.backend) {
                (_, "edgetpu") => "detector.edgetpu (profile accelerator = \"edge_tpu\")",
                (BackendKind::Onnxruntime, _) => "detector.onnxruntime",
                (BackendKind::Litert, _) => "detector.manifest (backend = \"litert\")",
                (BackendKind::Hailo, _) => "detector.manifest (backend = \"hailo\")",
            };
            p.push(field, e.reason);
        }
        if backend.kind == BackendKind::Onnxruntime {
            providers = Some(check_providers(backend.gpu.as_ref(), &mut p));
        }
    }
    let u = &file.uplink;
    let mut pem = Problems::new();
    checks::pem_files(
        &[
            ("uplink.ca_file", u.ca_file.as_deref()),
            ("uplink.client_cert_file", u.client_cert_file.as_deref()),
            ("uplink.client_key_file", u.client_key_file.as_deref()),
        ],
        &mut pem,
    );
    // A file already reported missing or unreadable is not reported again by the TLS set-up.
    let files_ok = pem.is_empty();
    p.extend(pem);
    let client = (u.client_cert_file.as_deref()).zip(u.client_key_file.as_deref());
    if u.tls
        && files_ok
        && let Err(e) = crate::uplink::tls::client_config(u.ca_file.as_deref(), client)
    {
        p.push("uplink", e);
    }
    checks::writable_dir("buffer.dir", &file.buffer.dir, &mut p);

    match (cfg, effective) {
        (Some(config), Ok(effective)) if p.is_empty() => Ok(Checked {
            config,
            effective,
            ladder,
            profile,
            providers,
        }),
        (_, effective) => {
            if let Err(e) = effective {
                p.extend(e);
            }
            Err(p)
        }
    }
}

/// `detector providers = ...`: ONNX Runtime's chain (None: LiteRT).
fn providers_report(chain: Option<&[Provider]>) -> String {
    match chain {
        Some(chain) if chain.len() > 1 => format!(
            "detector providers = {} (tried in this order at start; one that is missing falls \
             back to the next with a warning)\n",
            providers::describe(chain)
        ),
        Some(chain) => format!("detector providers = {}\n", providers::describe(chain)),
        None => "detector providers = cpu (litert: xnnpack)\n".to_string(),
    }
}

/// The ONNX Runtime provider chain in force; TensorRT's engine cache must be writable.
fn check_providers(gpu: Option<&GpuOptions>, p: &mut Problems) -> Vec<Provider> {
    let chain = providers::chain(gpu);
    for provider in &chain {
        if let Provider::TensorRt { engine_cache, .. } = provider {
            checks::writable_dir("detector.engine_cache", engine_cache, p);
        }
    }
    chain
}

/// The input sizes in force must be ones the model has a file for when the config names them
/// (a profile's ladder is cut to the model's sizes); each size's file must match its sha256.
/// Returns the ladder in force and the sizes skipped.
fn check_ladder(
    m: &ModelManifest,
    d: &DetectorConfig,
    eff: &Effective,
    p: &mut Problems,
) -> (Vec<u32>, Vec<u32>) {
    let manifest = &d.manifest;
    let (sides, missing) = crate::agent::ladder_in_force(m, d, eff);
    if eff.input_sizes.from == Origin::Config && !missing.is_empty() {
        p.push(
            "detector.input_sizes",
            format!(
                "{missing:?}: {} has no model file for these sizes (it has {:?})",
                manifest.display(),
                m.sides().collect::<Vec<_>>()
            ),
        );
    }
    let dir = manifest.parent().unwrap_or(Path::new("."));
    for &side in &sides {
        let Some(at) = m.at_side(side).filter(|at| at.file != m.file) else {
            continue;
        };
        if let Err(e) = at.verify_file(&dir.join(&at.file)) {
            p.push("detector.manifest", e);
        }
    }
    (sides, missing)
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
        // A V4L2 camera may be unplugged when the agent starts: its supervisor waits for it.
        // `check` asks each device (`describe_cameras`).
        SourceConfig::Rtsp { .. } | SourceConfig::V4l2 { .. } => {}
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

/// What `check` found at a camera.
#[derive(Debug)]
pub enum Found {
    /// The streams an RTSP camera offers.
    Rtsp(Vec<StreamInfo>),
    /// A V4L2 device, and the format, size and rate the agent would ask it for.
    V4l2 {
        info: DeviceInfo,
        choice: Choice,
        asked: V4l2Settings,
    },
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rtsp(streams) => {
                let list: Vec<String> = streams.iter().map(ToString::to_string).collect();
                f.write_str(&list.join(", "))
            }
            Self::V4l2 {
                info,
                choice: c,
                asked: a,
            } => write!(
                f,
                "{} (driver {}): would ask for {} {}x{} @ {} fps (config: {} {}x{} @ {} fps); \
                 the driver may adjust it{}",
                info.card,
                info.driver,
                v4l2::caps::fourcc_str(c.fourcc),
                c.width,
                c.height,
                c.interval
                    .map_or_else(|| a.fps.to_string(), |i| i.to_string()),
                a.format,
                a.width,
                a.height,
                a.fps,
                v4l2::caps::list(&info.formats)
            ),
        }
    }
}

/// Asks every live camera of a checked config once: RTSP cameras are DESCRIBEd, V4L2 devices
/// queried (and the format choice made). `(camera, what it offers or why not)`. Only `check`
/// does this; `run` starts even when a camera is down (its supervisor retries).
pub fn describe_cameras(cfg: &EdgeConfig) -> Vec<(String, Result<Found, SourceError>)> {
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
            let found = if let Some(settings) = source::rtsp_settings(source) {
                settings
                    .and_then(|s| rt.block_on(source::rtsp::probe(&s)))
                    .map(Found::Rtsp)
            } else {
                describe_device(source::v4l2_settings(source)?)
            };
            Some((name, found))
        })
        .collect()
}

/// What a V4L2 device offers, and what the agent would ask it for.
fn describe_device(asked: V4l2Settings) -> Result<Found, SourceError> {
    let info = v4l2::probe(&asked.device, (asked.width, asked.height))?;
    let choice = v4l2::caps::choose(
        &info.formats,
        asked.format,
        (asked.width, asked.height),
        asked.fps,
    )
    .map_err(|e| SourceError::Format {
        device: asked.device.clone(),
        reason: e.to_string(),
    })?;
    Ok(Found::V4l2 {
        info,
        choice,
        asked,
    })
}

#[cfg(test)]
mod tests {
    use cascade_shared::config::edge::V4l2Format;

    use super::*;
    use crate::source::v4l2::caps::{FormatCaps, Interval, PixelFormat, Rates, SizeCaps, Sizes};

    fn jetson_gpu(engine_cache: &Path) -> GpuOptions {
        GpuOptions {
            spec: toml::from_str("providers = [\"tensorrt\", \"cuda\"]\nfp16 = true").expect("gpu"),
            engine_cache: engine_cache.to_path_buf(),
        }
    }

    #[test]
    fn check_prints_the_provider_chain_and_needs_a_writable_engine_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("trt-cache");
        let mut p = Problems::new();
        let chain = check_providers(Some(&jetson_gpu(&cache)), &mut p);
        assert!(p.is_empty(), "{p}");
        assert!(cache.is_dir());
        let report = providers_report(Some(&chain));
        let want = format!(
            "detector providers = tensorrt (fp16, engine cache {}) -> cuda -> cpu (tried",
            cache.display()
        );
        assert!(report.starts_with(&want), "{report}");
        assert_eq!(
            providers_report(Some(&check_providers(None, &mut p))),
            "detector providers = cpu\n"
        );
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        check_providers(Some(&jetson_gpu(&file.join("trt"))), &mut p);
        assert_eq!(p.len(), 1, "{p}");
        assert!(
            p.iter().all(|l| l.starts_with("detector.engine_cache: ")),
            "{p}"
        );
    }

    #[test]
    fn check_asks_each_v4l2_device_and_names_a_missing_one() {
        let text = "[device]\nid = \"d\"\n[[camera]]\nid = \"usb\"\n\
                    source = { kind = \"v4l2\", device = \"/dev/video-cascade-missing\" }\n\
                    [[camera]]\nid = \"clip\"\nsource = { kind = \"file\", path = \"/x.mp4\" }\n\
                    [detector]\nmanifest = \"m.toml\"\n[buffer]\ndir = \"b\"\n\
                    [uplink]\nhost = \"h\"\nport = 1883\ntls = false\n";
        let raw: raw::EdgeConfig = toml::from_str(text).expect("parses");
        let found = describe_cameras(&raw.validated().expect("valid"));
        assert_eq!(found.len(), 1, "files are not asked");
        let (camera, result) = &found[0];
        assert_eq!(camera, "usb");
        let e = result.as_ref().expect_err("no such device");
        assert_eq!(e.label(), "unplugged");
        assert!(
            e.to_string().starts_with("/dev/video-cascade-missing: "),
            "{e}"
        );
    }

    #[test]
    fn a_found_device_says_what_would_be_asked_and_what_it_offers() {
        let mjpeg = FormatCaps {
            fourcc: *b"MJPG",
            description: "Motion-JPEG".into(),
            sizes: vec![SizeCaps {
                sizes: Sizes::Discrete {
                    width: 1280,
                    height: 720,
                },
                rates: Rates::Discrete(vec![Interval { num: 1, den: 30 }]),
            }],
        };
        let found = Found::V4l2 {
            info: DeviceInfo {
                path: "/dev/video0".into(),
                driver: "uvcvideo".into(),
                card: "HD Webcam".into(),
                bus: "usb-0000:00:14.0-1".into(),
                formats: vec![mjpeg],
            },
            choice: Choice {
                fourcc: *b"MJPG",
                pixel: PixelFormat::Mjpeg,
                width: 1280,
                height: 720,
                interval: Some(Interval { num: 1, den: 30 }),
            },
            asked: V4l2Settings {
                device: "/dev/video0".into(),
                format: V4l2Format::Auto,
                width: 1280,
                height: 720,
                fps: 15.0,
            },
        };
        assert_eq!(
            found.to_string(),
            "HD Webcam (driver uvcvideo): would ask for MJPG 1280x720 @ 30 fps (config: auto \
             1280x720 @ 15 fps); the driver may adjust it\n  MJPG (Motion-JPEG): 1280x720 @ 30 fps"
        );
    }
}
