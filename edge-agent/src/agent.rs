//! Runs the whole edge agent: telemetry endpoint, buffer, uplink, maintenance and one pipeline per
//! camera. One shutdown token reaches every task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cascade_shared::clock::{SharedClock, SystemClock};
use cascade_shared::config::edge::EdgeConfig;
use cascade_shared::shutdown::Shutdown;
use tokio::sync::Notify;

use crate::buffer::{Buffer, Limits};
use crate::detect::{Detect, Detector};
use crate::motion::BackgroundMotion;
use crate::pipeline::{self, Context};
use crate::telemetry::{self, Telemetry};
use crate::uplink::Uplink;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Model(String),
    #[error(transparent)]
    Detect(#[from] cascade_infer::model::LoadError),
    #[error(transparent)]
    Buffer(#[from] crate::buffer::BufferError),
    #[error(transparent)]
    Uplink(#[from] crate::uplink::UplinkError),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    #[error("telemetry endpoint: {0}")]
    Telemetry(std::io::Error),
}

/// Options of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Stop once every camera's input has ended and the buffer is empty (files, demos, tests).
    pub exit_when_done: bool,
}

/// Loads the detector a config names, checking the model against its manifest.
pub fn load_detector(cfg: &EdgeConfig) -> Result<Detector, AgentError> {
    let d = &cfg.detector;
    let opts = cascade_infer::LoadOptions {
        manifest: d.manifest.clone(),
        model_file: None,
        backend: cascade_infer::backend::BackendOptions {
            kind: cascade_shared::config::BackendKind::Onnxruntime,
            library: d.onnxruntime.clone(),
            threads: d.threads as usize,
        },
        score_threshold: d.score_threshold,
        nms_iou: d.nms_iou,
        min_box_area: d.min_box_area,
        classes: cascade_infer::Classes::Person,
    };
    Ok(cascade_infer::load_detector(&opts)?)
}

pub async fn run(cfg: EdgeConfig, shutdown: Shutdown, opts: RunOptions) -> Result<(), AgentError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let telemetry = Telemetry::new(&cfg.device.id);
    let limits = Limits {
        max_bytes: cfg.buffer.max_bytes,
        max_age_us: i64::try_from(cfg.buffer.max_age_s).unwrap_or(i64::MAX / 2_000_000) * 1_000_000,
    };
    let dir = cfg.buffer.dir.clone();
    let buffer = Arc::new(
        tokio::task::spawn_blocking(move || Buffer::open(&dir, limits))
            .await
            .map_err(|e| AgentError::Model(e.to_string()))??,
    );
    telemetry.buffer_stats(buffer.stats(), clock.now_utc_us());
    tracing::info!(
        records = buffer.stats().records,
        bytes = buffer.stats().bytes,
        "buffer opened"
    );

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

    let wake = Arc::new(Notify::new());
    let uplink = Uplink::new(
        &cfg.device.id,
        &cfg.uplink,
        buffer.clone(),
        telemetry.clone(),
        clock.clone(),
        wake.clone(),
    );
    let options = uplink.options(&cfg.uplink)?;
    let uplink_task = tokio::spawn(uplink.run(options, shutdown.clone()));
    let maintenance = tokio::spawn(maintain(
        buffer.clone(),
        telemetry.clone(),
        clock.clone(),
        shutdown.clone(),
    ));

    let mut handles = Vec::new();
    for cam in &cfg.cameras {
        let detector: Box<dyn Detect> =
            Box::new(tokio::task::block_in_place(|| load_detector(&cfg))?);
        let ctx = Context {
            device_id: cfg.device.id.clone(),
            camera_id: cam.id.clone(),
            telemetry: telemetry.clone(),
            buffer: buffer.clone(),
            clock: clock.clone(),
            wake: wake.clone(),
            shutdown: shutdown.clone(),
            crops: cfg.crops.clone(),
            compression: cfg.uplink.compression,
            max_rate_hz: cfg.detector.max_rate_hz,
            live: true,
        };
        let motion = Box::new(BackgroundMotion::new(cfg.motion.clone()));
        handles.extend(pipeline::start(
            ctx,
            &cam.source,
            motion,
            detector,
            cfg.tracker.clone(),
        )?);
        tracing::info!(camera = %cam.id, "camera pipeline started");
    }
    telemetry.set_pipeline_up(true);

    let result = wait_pipelines(handles, &shutdown).await;
    if opts.exit_when_done && !shutdown.is_cancelled() {
        tracing::info!("input finished; waiting for the buffer to drain");
        while buffer.stats().records > 0 && !shutdown.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
    } else {
        shutdown.cancelled().await;
    }
    telemetry.set_pipeline_up(false);
    let _ = uplink_task.await;
    let _ = maintenance.await;
    let _ = server.await;
    let b = buffer.clone();
    let _ = tokio::task::spawn_blocking(move || b.flush()).await;
    log_summary(&telemetry);
    result
}

/// One line with the run's totals (used by the demo and the whole-agent benchmark).
fn log_summary(t: &Telemetry) {
    let peak_rss_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    tracing::info!(
        frames = t.total("frames_decoded_total"),
        motion_frames = t.total("motion_frames_total"),
        detector_runs = t.total("detector_runs_total"),
        detector_dropped = t.total("detector_dropped_frames_total"),
        crops_buffered = t.total("crops_buffered_total"),
        crops_uploaded = t.total("crops_uploaded_total"),
        input_bytes = t.total("input_bytes_total"),
        uploaded_bytes = t.total("uploaded_bytes_total"),
        peak_rss_bytes,
        "summary"
    );
}

async fn wait_pipelines(
    handles: Vec<std::thread::JoinHandle<Result<(), pipeline::PipelineError>>>,
    shutdown: &Shutdown,
) -> Result<(), AgentError> {
    let joined = tokio::task::spawn_blocking(move || {
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    let results = joined.await.map_err(|e| AgentError::Model(e.to_string()))?;
    for r in results {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "camera pipeline stopped");
                shutdown.cancel();
                return Err(e.into());
            }
            Err(_) => return Err(AgentError::Model("a pipeline thread panicked".into())),
        }
    }
    Ok(())
}

/// Evicts expired crops once a minute.
async fn maintain(
    buffer: Arc<Buffer>,
    telemetry: Arc<Telemetry>,
    clock: SharedClock,
    shutdown: Shutdown,
) {
    loop {
        let b = buffer.clone();
        let now = clock.now_utc_us();
        match tokio::task::spawn_blocking(move || b.evict_expired(now)).await {
            Ok(Ok(ev)) => telemetry.evicted(&ev),
            Ok(Err(e)) => tracing::error!(error = %e, "age eviction failed"),
            Err(_) => {}
        }
        telemetry.buffer_stats(buffer.stats(), now);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}
