//! Runs the whole edge agent: telemetry endpoint, buffer, uplink, maintenance, one detector
//! service shared by every camera, and one supervised pipeline (plus post stage) per camera.
//! One shutdown token reaches every task and thread.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use cascade_infer::backend::{BackendOptions, EdgeTpuOptions, GpuOptions};
use cascade_shared::clock::{SharedClock, SystemClock, micros};
use cascade_shared::config::edge::{CameraConfig, DetectorConfig, EdgeConfig};
use cascade_shared::config::effective::Effective;
use cascade_shared::manifest::ModelManifest;
use cascade_shared::profile::PowerSpec;
use cascade_shared::shutdown::Shutdown;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::buffer::{Buffer, Limits};
use crate::camera::main_stream::{self, MainStream};
use crate::camera::post::Post;
use crate::camera::supervisor::{self, Outcome, Policy};
use crate::camera::{Camera, CameraError, Tracked};
use crate::detect::ladder::LadderConfig;
use crate::detect::service::{CameraSlot, DetectorService, Options as ServiceOptions};
use crate::detect::{Detect, Detector};
use crate::power::Activity;
use crate::telemetry::{self, Telemetry};
use crate::track::CloudConfirmed;
use crate::uplink::Uplink;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Detect(#[from] cascade_infer::model::LoadError),
    #[error(transparent)]
    Buffer(#[from] crate::buffer::BufferError),
    #[error(transparent)]
    Uplink(#[from] crate::uplink::UplinkError),
    #[error("camera {camera}: {error}")]
    Camera { camera: String, error: CameraError },
    #[error("telemetry endpoint: {0}")]
    Telemetry(std::io::Error),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("a start-up task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("no detector model loaded")]
    NoDetector,
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop once every camera's input has ended and the buffer is empty (files, demos, tests).
    pub exit_when_done: bool,
    /// The hardware profile's `[power]`, if any.
    pub power: Option<PowerSpec>,
    /// Power mode changes are only logged (`--power-dry-run`, or `power.dry_run`).
    pub power_dry_run: bool,
    /// The hardware profile's name, reported in the status message.
    pub profile: Option<String>,
}

/// ONNX Runtime's GPU providers in force: the profile's `[gpu]` and the engine cache folder
/// (`detector.engine_cache`, else beside the buffer). None: the CPU alone.
pub fn gpu_options(d: &DetectorConfig, buffer_dir: &Path, eff: &Effective) -> Option<GpuOptions> {
    eff.gpu.value.clone().map(|spec| GpuOptions {
        spec,
        engine_cache: d.engine_cache_dir(buffer_dir),
    })
}

/// The options to load the config's detector with the settings in force.
fn load_options(cfg: &EdgeConfig, eff: &Effective) -> cascade_infer::LoadOptions {
    let d = &cfg.detector;
    cascade_infer::LoadOptions {
        manifest: d.manifest.clone(),
        model_file: None,
        backend: BackendOptions {
            kind: eff.backend.value,
            library: onnxruntime_library(d, eff),
            threads: eff.threads.value as usize,
            spin: false,
            edge_tpu: edge_tpu_options(d, eff),
            gpu: gpu_options(d, &cfg.buffer.dir, eff),
        },
        score_threshold: d.score_threshold,
        nms_iou: d.nms_iou,
        min_box_area: d.min_box_area,
        classes: cascade_infer::Classes::Person,
    }
}

/// `detector.onnxruntime` names ONNX Runtime's library: for another backend in force the
/// runtime's own default places are searched.
pub fn onnxruntime_library(d: &DetectorConfig, eff: &Effective) -> Option<std::path::PathBuf> {
    (eff.backend.value == cascade_shared::config::BackendKind::Onnxruntime)
        .then(|| d.onnxruntime.clone())
        .flatten()
}

/// The Edge TPU to use, when the settings in force say so.
pub fn edge_tpu_options(d: &DetectorConfig, eff: &Effective) -> Option<EdgeTpuOptions> {
    eff.edge_tpu.then(|| EdgeTpuOptions {
        library: d.edgetpu.library.clone(),
        device: d.edgetpu.device(),
    })
}

/// Loads the detector a config names with the settings in force, checking the model against its
/// manifest. Blocking.
pub fn load_detector(cfg: &EdgeConfig, eff: &Effective) -> Result<Detector, AgentError> {
    Ok(cascade_infer::load_detector(&load_options(cfg, eff))?)
}

/// Loads one detector per input side of the ladder in force (largest first): the sizes the
/// config or profile asks for that the model has a file for (`edge-agent check` reports the
/// others). Blocking.
pub fn load_ladder(cfg: &EdgeConfig, eff: &Effective) -> Result<Vec<Detector>, AgentError> {
    let opts = load_options(cfg, eff);
    // Only read here: `cascade_infer::load_ladder` checks each size's file against its sha256.
    let (manifest, _) =
        ModelManifest::load(&opts.manifest).map_err(cascade_infer::model::LoadError::Manifest)?;
    let (sides, missing) = ladder_in_force(&manifest, &cfg.detector, eff);
    if !missing.is_empty() {
        tracing::info!(
            model = %manifest.name,
            skipped = ?missing,
            ladder = ?sides,
            "the model has no file for some input sizes in force; they are skipped"
        );
    }
    Ok(cascade_infer::load_ladder(&opts, &sides)?)
}

/// The input sides the detector runs (largest first) and the sizes in force the model has no
/// file for: the config's or profile's sizes cut to the model's, only the largest with
/// `adapt = false`.
pub fn ladder_in_force(
    m: &ModelManifest,
    d: &DetectorConfig,
    eff: &Effective,
) -> (Vec<u32>, Vec<u32>) {
    let (mut sides, missing) = m.ladder(&eff.input_sizes.value);
    if !d.adapt {
        sides.truncate(1);
    }
    (sides, missing)
}

/// The supervisor's policy from the config.
fn policy(cfg: &EdgeConfig, opts: &RunOptions) -> Policy {
    let s = &cfg.supervisor;
    Policy {
        backoff_min: s.restart_backoff_min,
        backoff_max: s.restart_backoff_max,
        stall_timeout: s.stall_timeout,
        check_every: (s.stall_timeout / 10)
            .clamp(Duration::from_millis(50), Duration::from_secs(1)),
        stop_grace: Duration::from_secs(10),
        healthy_after: Duration::from_secs(60),
        retry_permanent: !opts.exit_when_done,
    }
}

pub async fn run(
    cfg: EdgeConfig,
    eff: Effective,
    shutdown: Shutdown,
    opts: RunOptions,
) -> Result<(), AgentError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let telemetry = Telemetry::new(&cfg.device.id);
    tracing::info!(settings = %eff.report().trim_end().replace('\n', "; "), "settings in force");
    let buffer = open_buffer(&cfg, &telemetry, &clock).await?;
    let server = start_telemetry(&cfg, &telemetry, &shutdown).await?;

    let wake = Arc::new(Notify::new());
    let confirmed = Arc::new(CloudConfirmed::default());
    let uplink = Uplink::new(
        &cfg.device.id,
        &cfg.uplink,
        buffer.clone(),
        telemetry.clone(),
        clock.clone(),
        wake.clone(),
    )
    .verdicts_to(confirmed.clone());
    let options = uplink.options(&cfg.uplink)?;
    let uplink_task = tokio::spawn(uplink.run(options, shutdown.clone()));
    let throttled = Arc::new(AtomicBool::new(false));
    let maintenance = tokio::spawn(maintain(
        buffer.clone(),
        telemetry.clone(),
        clock.clone(),
        shutdown.clone(),
    ));
    let activity = Arc::new(Activity::default());
    let progress = tokio::spawn(crate::progress::run(
        telemetry.clone(),
        clock.clone(),
        shutdown.clone(),
    ));

    let stages = Stages {
        throttled: throttled.clone(),
        activity: activity.clone(),
        buffer: buffer.clone(),
        telemetry: telemetry.clone(),
        clock: clock.clone(),
        wake,
        confirmed,
        shutdown: shutdown.clone(),
        profile: opts.profile.clone(),
    };
    let started = start_cameras(&cfg, &eff, &stages, policy(&cfg, &opts))?;
    let (mut supervisors, threads, slots) = started;
    let systemd = tokio::spawn(systemd::run(telemetry.clone(), shutdown.clone()));
    let power = tokio::spawn(
        power_task(&cfg, &opts, activity, throttled, &telemetry, &clock).run(shutdown.clone()),
    );
    let result = wait_cameras(&mut supervisors, &shutdown).await;
    if opts.exit_when_done && !shutdown.is_cancelled() {
        let stop = shutdown.clone();
        tokio::task::spawn_blocking(move || slots.iter().all(|s| s.wait_idle(&stop))).await?;
        tracing::info!("input finished; waiting for the buffer to drain");
        while buffer.stats().records > 0 && !shutdown.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
    } else {
        shutdown.cancelled().await;
    }
    supervisors.shutdown().await;
    let _ = uplink_task.await;
    let _ = maintenance.await;
    let _ = power.await;
    let _ = progress.await;
    let _ = systemd.await;
    let _ = server.await;
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
    let b = buffer.clone();
    let _ = tokio::task::spawn_blocking(move || b.flush()).await;
    log_summary(&telemetry);
    let left = buffer.stats().records;
    tracing::info!(
        crops_left_buffered = left,
        "stopped; {left} messages left buffered (sent at the next start)"
    );
    result
}

async fn open_buffer(
    cfg: &EdgeConfig,
    telemetry: &Telemetry,
    clock: &SharedClock,
) -> Result<Arc<Buffer>, AgentError> {
    let limits = Limits {
        max_bytes: cfg.buffer.max_bytes,
        max_age_us: micros(cfg.buffer.max_age),
    };
    let dir = cfg.buffer.dir.clone();
    let buffer = Arc::new(tokio::task::spawn_blocking(move || Buffer::open(&dir, limits)).await??);
    if let Some(r) = buffer.recovery() {
        telemetry.buffer_recovered(r);
    }
    let stats = buffer.stats();
    telemetry.buffer_stats(stats, clock.now_utc_us());
    tracing::info!(
        records = stats.records,
        bytes = stats.bytes,
        "buffer opened"
    );
    Ok(buffer)
}

async fn start_telemetry(
    cfg: &EdgeConfig,
    telemetry: &Arc<Telemetry>,
    shutdown: &Shutdown,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, AgentError> {
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
    let server = tokio::spawn(telemetry::serve(
        telemetry.clone(),
        cfg.telemetry.listen,
        shutdown.clone(),
        bound_tx,
    ));
    if bound_rx.await.is_err() {
        return Err(match server.await {
            Ok(Err(e)) => AgentError::Telemetry(e),
            _ => AgentError::Telemetry(std::io::Error::other("telemetry server stopped")),
        });
    }
    Ok(server)
}

/// What every camera's stages share.
struct Stages {
    /// Set by the power task from the sensors; read by the detector's ladder.
    throttled: Arc<AtomicBool>,
    /// Motion or tracked people, any camera: the pipelines write, the power task reads.
    activity: Arc<Activity>,
    buffer: Arc<Buffer>,
    telemetry: Arc<Telemetry>,
    clock: SharedClock,
    wake: Arc<Notify>,
    /// Tracks the cloud confirmed: the uplink writes, the post stages read.
    confirmed: Arc<CloudConfirmed>,
    shutdown: Shutdown,
    /// The hardware profile's name, for the status message.
    profile: Option<String>,
}

type Supervisors = JoinSet<(String, Outcome)>;

type Started = (
    Supervisors,
    Vec<std::thread::JoinHandle<()>>,
    Vec<CameraSlot>,
);

/// Starts the reader of `cam`'s main stream, when it has one.
fn start_main_stream(
    cam: &CameraConfig,
    s: &Stages,
    policy: &Policy,
) -> Result<Option<main_stream::Started>, AgentError> {
    let Some(source) = &cam.main_source else {
        return Ok(None);
    };
    let main = MainStream {
        camera_id: cam.id.clone(),
        source: source.clone(),
        telemetry: s.telemetry.clone(),
        clock: s.clock.clone(),
        runtime: tokio::runtime::Handle::current(),
        backoff_min: policy.backoff_min,
        backoff_max: policy.backoff_max,
    };
    main.spawn(s.shutdown.clone())
        .map(Some)
        .map_err(AgentError::Thread)
}

/// Loads the one detector, starts its service, each camera's post stage, and each camera's
/// supervisor. Returns the supervisors, the blocking threads to join at the end, and the slots.
fn start_cameras(
    cfg: &EdgeConfig,
    eff: &Effective,
    s: &Stages,
    policy: Policy,
) -> Result<Started, AgentError> {
    let t0 = Instant::now();
    let ladder = tokio::task::block_in_place(|| load_ladder(cfg, eff))?;
    let Some(first) = ladder.first() else {
        return Err(AgentError::NoDetector);
    };
    let model = first.manifest().clone();
    version::publish(&s.telemetry, s.profile.clone(), &ladder);
    s.telemetry.model_loaded(
        &model.name,
        first.backend_name(),
        &ladder
            .iter()
            .map(|d| d.manifest().input.width)
            .collect::<Vec<_>>(),
        t0.elapsed().as_secs_f64(),
        cfg.cameras.len(),
    );
    let ids: Vec<String> = cfg.cameras.iter().map(|c| c.id.clone()).collect();
    let boxed: Vec<Box<dyn Detect>> = ladder
        .into_iter()
        .map(|d| Box::new(d) as Box<dyn Detect>)
        .collect();
    let sides: Vec<u32> = boxed.iter().map(|d| d.manifest().input.width).collect();
    let rates = cfg.cameras.iter().map(|c| cfg.max_rate_of(c));
    let opts = ServiceOptions {
        regions: cfg.detector.regions.clone(),
        clock: s.clock.clone(),
        ladder: LadderConfig::from_detector(&cfg.detector, &sides, model.input.width, rates),
        throttled: s.throttled.clone(),
    };
    let (handles, service) =
        DetectorService::start(boxed, &ids, opts, s.telemetry.clone(), s.shutdown.clone())
            .map_err(AgentError::Thread)?;
    let mut threads = vec![service];
    let mut supervisors = JoinSet::new();
    let mut slots = Vec::new();
    for (cam, (slot, results)) in cfg.cameras.iter().zip(handles) {
        let main = match start_main_stream(cam, s, &policy)? {
            Some((cache, thread)) => {
                threads.push(thread);
                Some(cache)
            }
            None => None,
        };
        let tracked = Arc::new(Tracked::default());
        let post = Post {
            device_id: cfg.device.id.clone(),
            camera_id: cam.id.clone(),
            model: model.clone(),
            tracker: cfg.tracker.clone(),
            crops: cfg.crops.clone(),
            compression: cfg.uplink.compression,
            buffer: s.buffer.clone(),
            telemetry: s.telemetry.clone(),
            clock: s.clock.clone(),
            wake: s.wake.clone(),
            main,
            tracked: tracked.clone(),
            confirmed: s.confirmed.clone(),
        };
        let (post_slot, stop) = (slot.clone(), s.shutdown.clone());
        slots.push(slot.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("post-{}", cam.id))
                .spawn(move || post.run(&results, &post_slot, &stop))
                .map_err(AgentError::Thread)?,
        );
        let camera = Arc::new(Camera {
            id: cam.id.clone(),
            source: cam.source.clone(),
            motion: cfg.motion_of(cam),
            max_rate_hz: cfg.max_rate_of(cam),
            motion_rate_hz: cfg.motion_rate_of(cam),
            tracked,
            activity: s.activity.clone(),
            telemetry: s.telemetry.clone(),
            clock: s.clock.clone(),
            slot,
            runtime: tokio::runtime::Handle::current(),
        });
        let id = cam.id.clone();
        supervisors.spawn(supervise_named(
            id,
            camera,
            policy.clone(),
            s.telemetry.clone(),
            s.clock.clone(),
            s.shutdown.clone(),
        ));
        tracing::info!(camera = %cam.id, "camera started");
    }
    Ok((supervisors, threads, slots))
}

async fn supervise_named(
    id: String,
    camera: Arc<Camera>,
    policy: Policy,
    telemetry: Arc<Telemetry>,
    clock: SharedClock,
    shutdown: Shutdown,
) -> (String, Outcome) {
    let outcome = supervisor::supervise(camera, policy, telemetry, clock, shutdown).await;
    (id, outcome)
}

/// Waits until every camera's supervision ends (inputs ended, or shutdown). The first camera that
/// failed for good is the run's error; the others go on.
async fn wait_cameras(
    supervisors: &mut Supervisors,
    shutdown: &Shutdown,
) -> Result<(), AgentError> {
    let mut first_error = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            next = supervisors.join_next() => match next {
                None => break,
                Some(Ok((_, Outcome::Ended | Outcome::Stopped))) => {}
                Some(Ok((camera, Outcome::Failed(error)))) => {
                    tracing::error!(camera = %camera, error = %error, "camera failed");
                    first_error.get_or_insert(AgentError::Camera { camera, error });
                }
                Some(Err(e)) => {
                    first_error.get_or_insert(AgentError::Join(e));
                }
            },
        }
    }
    first_error.map_or(Ok(()), Err)
}

mod housekeeping;
pub mod systemd;

use housekeeping::{log_summary, maintain, power_task};
mod version;
