//! One telemetry event per happening: each method writes a log line (at a level fit for its rate)
//! and updates a Prometheus metric (base units: `_seconds`, `_bytes`, `_total`). Also serves
//! `/metrics`, `/livez` and `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use cascade_shared::shutdown::Shutdown;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

mod cameras;
mod delivery;
mod detector;
mod power;
mod progress;

use crate::buffer::{Eviction, Stats};
use crate::camera::CameraState;
use crate::camera::board::CameraBoard;

pub struct Telemetry {
    registry: Registry,
    frames: IntCounterVec,
    decode_errors: IntCounterVec,
    input_bytes: IntCounterVec,
    motion_frames: IntCounterVec,
    recalibrations: IntCounterVec,
    detector_runs: IntCounterVec,
    detector_dropped: IntCounterVec,
    detector_latency: Histogram,
    detections: IntCounterVec,
    crops_buffered: IntCounterVec,
    crops_buffered_bytes: IntCounterVec,
    delivery: delivery::DeliveryMetrics,
    detector: detector::DetectorMetrics,
    power: power::PowerMetrics,
    progress: progress::ProgressMetrics,
    evicted: IntCounterVec,
    buffer_bytes: IntGauge,
    buffer_records: IntGauge,
    buffer_oldest_age: Gauge,
    mqtt_connected: IntGauge,
    mqtt_disconnects: IntCounterVec,
    camera_reconnects: IntCounterVec,
    camera_up: IntGaugeVec,
    capture_clock: IntGaugeVec,
    main_failures: IntCounterVec,
    main_crops: IntCounterVec,
    main_fallbacks: IntCounterVec,
    model_loads: IntCounterVec,
    detector_errors: IntCounterVec,
    crops_lost: IntCounterVec,
    buffer_recoveries: IntCounterVec,
    cameras: CameraBoard,
    mqtt_up: AtomicBool,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(c.clone())).expect("unique metric name");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric definition");
    r.register(Box::new(g.clone())).expect("unique metric name");
    g
}

impl Telemetry {
    pub fn new(device: &str) -> Arc<Self> {
        let registry = Registry::new_custom(
            Some("cascade_edge".into()),
            Some([("device".to_string(), device.to_string())].into()),
        )
        .expect("valid registry");
        let r = &registry;
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "detector_latency_seconds",
                "Detector inference time per run, pre- and post-processing included",
            )
            .buckets(vec![
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
            ]),
        )
        .expect("valid histogram");
        r.register(Box::new(latency.clone()))
            .expect("unique metric name");
        let oldest = Gauge::new(
            "buffer_oldest_age_seconds",
            "Age of the oldest buffered crop",
        )
        .expect("valid gauge");
        r.register(Box::new(oldest.clone()))
            .expect("unique metric name");
        Arc::new(Self {
            frames: counter(r, "frames_decoded_total", "Frames decoded", &["camera"]),
            decode_errors: counter(
                r,
                "decode_errors_total",
                "Corrupt or truncated access units skipped",
                &["camera"],
            ),
            input_bytes: counter(
                r,
                "input_bytes_total",
                "Coded video bytes read from sources",
                &["camera"],
            ),
            motion_frames: counter(r, "motion_frames_total", "Frames with motion", &["camera"]),
            recalibrations: counter(
                r,
                "motion_recalibrations_total",
                "Background resets after a global change",
                &["camera"],
            ),
            detector_runs: counter(r, "detector_runs_total", "Detector runs", &["camera"]),
            detector_dropped: counter(
                r,
                "detector_dropped_frames_total",
                "Motion frames not detected on (detector busy or rate limit)",
                &["camera", "reason"],
            ),
            detector_latency: latency,
            detections: counter(r, "detections_total", "Person detections", &["camera"]),
            crops_buffered: counter(
                r,
                "crops_buffered_total",
                "Crops committed to the buffer",
                &["camera"],
            ),
            crops_buffered_bytes: counter(
                r,
                "crops_buffered_bytes_total",
                "Bytes of crops committed to the buffer",
                &["camera"],
            ),
            delivery: delivery::DeliveryMetrics::new(r),
            detector: detector::DetectorMetrics::new(r),
            power: power::PowerMetrics::new(r),
            progress: progress::ProgressMetrics::new(r),
            evicted: counter(
                r,
                "crops_evicted_total",
                "Crops evicted from the buffer unsent",
                &["reason"],
            ),
            buffer_bytes: gauge(r, "buffer_bytes", "Bytes held in the buffer"),
            buffer_records: gauge(r, "buffer_records", "Crops held in the buffer"),
            buffer_oldest_age: oldest,
            mqtt_connected: gauge(r, "mqtt_connected", "1 while connected to the broker"),
            mqtt_disconnects: counter(
                r,
                "mqtt_disconnects_total",
                "Broker connections lost or refused",
                &["kind"],
            ),
            camera_reconnects: counter(
                r,
                "camera_reconnects_total",
                "Camera runs restarted after a failure, stall or panic",
                &["camera", "reason"],
            ),
            camera_up: {
                let g = IntGaugeVec::new(
                    Opts::new("camera_up", "1 while the camera delivers frames"),
                    &["camera"],
                )
                .expect("valid metric definition");
                r.register(Box::new(g.clone())).expect("unique metric name");
                g
            },
            capture_clock: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "camera_capture_clock",
                        "1 for the clock a camera's capture times come from now (rtcp: the \
                         camera's sender reports; wall: this device's clock; driver: a V4L2 \
                         driver's buffer timestamps)",
                    ),
                    &["camera", "clock"],
                )
                .expect("valid metric definition");
                r.register(Box::new(g.clone())).expect("unique metric name");
                g
            },
            main_failures: counter(
                r,
                "main_stream_reconnects_total",
                "Main-stream sessions that ended or failed and were reconnected",
                &["camera"],
            ),
            main_crops: counter(
                r,
                "main_stream_crops_total",
                "Crops cut from a camera's main stream at full resolution",
                &["camera"],
            ),
            main_fallbacks: counter(
                r,
                "main_stream_fallbacks_total",
                "Crops cut from the sub-stream because no main-stream picture could be had",
                &["camera", "reason"],
            ),
            model_loads: counter(
                r,
                "detector_model_loads_total",
                "Detector models loaded (one per accelerator, shared by every camera)",
                &["model", "backend"],
            ),
            detector_errors: counter(
                r,
                "detector_errors_total",
                "Detector runs that failed",
                &["camera"],
            ),
            crops_lost: counter(
                r,
                "crops_lost_total",
                "Crops that could not be committed to the buffer (disk_full, io_error)",
                &["camera", "reason"],
            ),
            buffer_recoveries: counter(
                r,
                "buffer_recoveries_total",
                "Damaged buffer files moved aside and replaced at start",
                &[],
            ),
            registry,
            cameras: CameraBoard::default(),
            mqtt_up: AtomicBool::new(false),
        })
    }

    pub fn unit_read(&self, camera: &str, unit_bytes: usize) {
        tracing::trace!(camera, unit_bytes, "access unit read");
        self.input_bytes
            .with_label_values(&[camera])
            .inc_by(unit_bytes as u64);
    }

    pub fn frame_decoded(&self, camera: &str, pts_us: i64) {
        tracing::trace!(camera, pts_us, "frame decoded");
        self.frames.with_label_values(&[camera]).inc();
    }

    pub fn decode_error(&self, camera: &str, err: &dyn std::fmt::Display) {
        tracing::warn!(camera, error = %err, "skipping corrupt access unit");
        self.decode_errors.with_label_values(&[camera]).inc();
    }

    pub fn motion(&self, camera: &str, boxes: usize, recalibrated: bool) {
        if recalibrated {
            tracing::info!(
                camera,
                "most of the frame changed at once: motion background recalibrated"
            );
            self.recalibrations.with_label_values(&[camera]).inc();
        }
        if boxes > 0 {
            tracing::trace!(camera, boxes, "motion");
            self.motion_frames.with_label_values(&[camera]).inc();
        }
    }

    pub fn detector_dropped(&self, camera: &str, reason: &'static str) {
        tracing::debug!(camera, reason, "motion frame not sent to the detector");
        self.detector_dropped
            .with_label_values(&[camera, reason])
            .inc();
    }

    pub fn detector_ran(&self, camera: &str, seconds: f64, people: usize) {
        tracing::debug!(camera, seconds, people, "detector run");
        self.detector_runs.with_label_values(&[camera]).inc();
        self.detector_latency.observe(seconds);
        self.detections
            .with_label_values(&[camera])
            .inc_by(people as u64);
    }

    pub fn detector_failed(&self, camera: &str, err: &dyn std::fmt::Display) {
        tracing::error!(camera, error = %err, "detector failed on a frame");
        self.detector_errors.with_label_values(&[camera]).inc();
    }

    pub fn model_loaded(
        &self,
        model: &str,
        backend: &str,
        sides: &[u32],
        seconds: f64,
        cameras: usize,
    ) {
        tracing::info!(
            model,
            backend,
            input_sides = ?sides,
            seconds,
            cameras,
            "detector model loaded, shared by every camera"
        );
        self.model_loads.with_label_values(&[model, backend]).inc();
    }

    /// Crops refused by the buffer. Logged on the first refusal and then every 100th, so a full
    /// disk does not flood the log.
    pub fn crops_lost(
        &self,
        camera: &str,
        count: usize,
        reason: &str,
        err: &dyn std::fmt::Display,
    ) {
        let c = self.crops_lost.with_label_values(&[camera, reason]);
        let before = c.get();
        c.inc_by(count as u64);
        if before == 0 || before / 100 != c.get() / 100 {
            let lost_so_far = c.get();
            tracing::error!(camera, count, reason, lost_so_far, error = %err, "crops could not be buffered and are lost");
        }
    }

    pub fn crops_buffered(
        &self,
        camera: &str,
        count: usize,
        bytes: usize,
        stats: Stats,
        now_us: i64,
    ) {
        tracing::info!(
            camera,
            count,
            bytes,
            buffered = stats.records,
            "crops committed to the buffer"
        );
        self.crops_buffered
            .with_label_values(&[camera])
            .inc_by(count as u64);
        self.crops_buffered_bytes
            .with_label_values(&[camera])
            .inc_by(bytes as u64);
        self.buffer_stats(stats, now_us);
    }

    pub fn evicted(&self, evictions: &[Eviction]) {
        for e in evictions {
            tracing::warn!(
                key = e.key,
                bytes = e.bytes,
                reason = e.reason.label(),
                "crop evicted from the buffer unsent"
            );
            self.evicted.with_label_values(&[e.reason.label()]).inc();
        }
    }

    /// The buffer file was damaged: moved aside, salvaged, replaced.
    pub fn buffer_recovered(&self, r: &crate::buffer::recover::Recovery) {
        tracing::error!(
            reason = %r.reason,
            moved_to = %r.moved_to.display(),
            salvaged = r.salvaged,
            "the buffer file was damaged: moved aside, what could be read was kept, a fresh buffer started"
        );
        self.buffer_recoveries.with_label_values::<&str>(&[]).inc();
    }

    pub fn buffer_stats(&self, s: Stats, now_us: i64) {
        self.buffer_bytes
            .set(i64::try_from(s.bytes).unwrap_or(i64::MAX));
        self.buffer_records
            .set(i64::try_from(s.records).unwrap_or(i64::MAX));
        let age = s
            .oldest_created_us
            .map_or(0.0, |t| (now_us - t).max(0) as f64 / 1e6);
        self.buffer_oldest_age.set(age);
    }

    pub fn mqtt_connected(&self, host: &str) {
        tracing::info!(host, "connected to the broker");
        self.mqtt_connected.set(1);
        self.mqtt_up.store(true, Ordering::SeqCst);
    }

    pub fn mqtt_disconnected(
        &self,
        kind: &'static str,
        err: &dyn std::fmt::Display,
        hint: Option<&str>,
        retry_in_s: f64,
    ) {
        match hint {
            Some(hint) => {
                tracing::warn!(kind, error = %err, hint, retry_in_s, "broker connection lost; crops stay buffered")
            }
            None => {
                tracing::warn!(kind, error = %err, retry_in_s, "broker connection lost; crops stay buffered")
            }
        }
        self.mqtt_down(kind);
    }

    /// The uplink closed its connection on shutdown: nothing needs a person.
    pub fn mqtt_closed(&self) {
        tracing::info!("disconnected from the broker (shutting down)");
        self.mqtt_down("shutdown");
    }

    fn mqtt_down(&self, kind: &'static str) {
        self.mqtt_connected.set(0);
        self.mqtt_up.store(false, Ordering::SeqCst);
        self.mqtt_disconnects.with_label_values(&[kind]).inc();
    }

    /// Ready: connected to the broker, and every camera streaming (or its file played out).
    /// The body names each camera's state.
    pub fn readiness(&self) -> (bool, String) {
        let mqtt = self.mqtt_up.load(Ordering::SeqCst);
        let cams = self.cameras.all();
        let cams_ok = !cams.is_empty()
            && cams
                .iter()
                .all(|(_, s)| matches!(s, CameraState::Streaming | CameraState::Ended));
        let mut body = format!(
            "{}\nbroker: {}\n",
            if mqtt && cams_ok {
                "ready"
            } else {
                "not ready"
            },
            if mqtt { "connected" } else { "disconnected" }
        );
        for (id, state) in &cams {
            body.push_str(&format!("camera {id}: {state}\n"));
        }
        (mqtt && cams_ok, body)
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Sum of a counter across its labels (for summaries and tests).
    pub fn total(&self, name: &str) -> f64 {
        cascade_shared::telemetry::metric_total(&self.registry, &format!("cascade_edge_{name}"))
    }
}

/// Serves the endpoint until shutdown; returns the bound address through `bound`.
pub async fn serve(
    telemetry: Arc<Telemetry>,
    addr: SocketAddr,
    shutdown: Shutdown,
    bound: tokio::sync::oneshot::Sender<SocketAddr>,
) -> std::io::Result<()> {
    let t_metrics = telemetry.clone();
    let t_ready = telemetry;
    let app = Router::new()
        .route("/metrics", get(move || async move { t_metrics.render() }))
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                let (ready, body) = t_ready.readiness();
                let code = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (code, body)
            }),
        );
    cascade_shared::http::serve(
        app,
        addr,
        shutdown,
        bound,
        "telemetry endpoint: /metrics /livez /readyz",
    )
    .await
}
