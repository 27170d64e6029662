//! One telemetry event per happening: a log line and a Prometheus metric (base units).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use cascade_infer::backend::kserve::{
    CircuitState, Outcome, ServerHealth, ServerObserver, ServerStatus,
};

use cascade_shared::status::DeviceStatus;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Telemetry {
    registry: Registry,
    received: IntCounterVec,
    rejected: IntCounterVec,
    duplicates: IntCounterVec,
    words: IntCounterVec,
    batch_size: Histogram,
    inference_latency: Histogram,
    verdicts: IntCounterVec,
    alerts: IntCounterVec,
    end_to_end: Histogram,
    pending: IntGauge,
    confirm_ratio: prometheus::Gauge,
    mqtt_connected: IntGauge,
    cameras_down: IntGaugeVec,
    /// 1 per device, labelled with the agent version and profile it last reported.
    agent_info: IntGaugeVec,
    /// The labels each device's `agent_info` series carries now (the old one is removed on change).
    agent_labels: Mutex<HashMap<String, [String; 2]>>,
    backpressure: IntCounterVec,
    receipts: IntCounterVec,
    receipted: IntCounterVec,
    over_budget: IntCounterVec,
    over_budget_bytes: IntCounterVec,
    discovery: IntCounterVec,
    live_clients: IntGauge,
    server_requests: IntCounterVec,
    server_latency: Histogram,
    circuit_state: IntGauge,
    /// The inference server the confirm model runs on (`[model.server]`), for `/readyz`.
    pub server: OnceLock<Arc<ServerStatus>>,
    /// Rejections already logged, per (device, reason): the first is logged, then every 100th.
    logged: Mutex<HashMap<(String, &'static str), u64>>,
    pub broker_up: AtomicBool,
    pub model_up: AtomicBool,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(c.clone())).expect("unique metric name");
    c
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("valid histogram");
    r.register(Box::new(h.clone())).expect("unique metric name");
    h
}

impl Telemetry {
    pub fn new() -> Arc<Self> {
        let registry =
            Registry::new_custom(Some("cascade_cloud".into()), None).expect("valid registry");
        let r = &registry;
        let pending = IntGauge::new(
            "pending_crops",
            "Crops stored and waiting for the confirm model (consumer lag)",
        )
        .expect("gauge");
        r.register(Box::new(pending.clone()))
            .expect("unique metric name");
        let ratio = prometheus::Gauge::new(
            "confirm_ratio",
            "Share of decided crops the confirm model confirmed",
        )
        .expect("gauge");
        r.register(Box::new(ratio.clone()))
            .expect("unique metric name");
        let mqtt =
            IntGauge::new("mqtt_connected", "1 while connected to the broker").expect("gauge");
        r.register(Box::new(mqtt.clone()))
            .expect("unique metric name");
        let live = IntGauge::new(
            "live_clients",
            "Browsers following alerts on /api/events (the gallery)",
        )
        .expect("gauge");
        r.register(Box::new(live.clone()))
            .expect("unique metric name");
        let circuit = IntGauge::new(
            "inference_server_circuit_state",
            "The inference server's circuit breaker: 0 closed, 1 half-open (probing), 2 open",
        )
        .expect("gauge");
        r.register(Box::new(circuit.clone()))
            .expect("unique metric name");
        let secs = vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        Arc::new(Self {
            received: counter(r, "crops_received_total", "Crop messages received", &[]),
            rejected: counter(
                r,
                "crops_rejected_total",
                "Crop messages rejected, by reason",
                &["reason"],
            ),
            duplicates: counter(
                r,
                "crops_duplicate_total",
                "Crop messages already seen (by message id)",
                &[],
            ),
            words: counter(
                r,
                "track_words_total",
                "Words of the edge about its tracks (seen: still in view; ended: left the view)",
                &["event"],
            ),
            batch_size: histogram(
                r,
                "batch_size",
                "Crops per confirm-model batch",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
            ),
            inference_latency: histogram(
                r,
                "inference_latency_seconds",
                "Confirm-model time per batch",
                secs.clone(),
            ),
            verdicts: counter(
                r,
                "crops_decided_total",
                "Crops decided by the confirm model",
                &["verdict"],
            ),
            alerts: counter(
                r,
                "alerts_published_total",
                "Alert events published",
                &["type"],
            ),
            end_to_end: histogram(
                r,
                "end_to_end_latency_seconds",
                "From frame capture on the edge to the cloud decision",
                secs,
            ),
            pending,
            confirm_ratio: ratio,
            mqtt_connected: mqtt,
            cameras_down: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "device_cameras_down",
                        "Cameras of a device that are failing or reconnecting, as it last reported",
                    ),
                    &["device"],
                )
                .expect("valid metric definition");
                r.register(Box::new(g.clone())).expect("unique metric name");
                g
            },
            agent_info: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "device_agent_info",
                        "1 per device, labelled with the agent version and hardware profile it \
                         last reported (a rollout's progress: count by version)",
                    ),
                    &["device", "version", "profile"],
                )
                .expect("valid metric definition");
                r.register(Box::new(g.clone())).expect("unique metric name");
                g
            },
            agent_labels: Mutex::new(HashMap::new()),
            backpressure: counter(
                r,
                "intake_backpressure_total",
                "Crops the MQTT loop waited to read because the in-flight memory budget was spent",
                &[],
            ),
            receipts: counter(
                r,
                "receipts_published_total",
                "Receipt messages handed to the broker",
                &[],
            ),
            receipted: counter(
                r,
                "crops_receipted_total",
                "Crops named in receipts (stored, stored before, or refused for good)",
                &[],
            ),
            over_budget: counter(
                r,
                "crops_over_budget_total",
                "Crops over their device's rate or byte budget: acknowledged, not stored or \
                 receipted (the device sends them again later)",
                &["device"],
            ),
            over_budget_bytes: counter(
                r,
                "crops_over_budget_bytes_total",
                "Bytes of the crops over their device's budget",
                &["device"],
            ),
            discovery: counter(
                r,
                "ha_discovery_published_total",
                "Home Assistant discovery configs handed to the broker (retained)",
                &[],
            ),
            live_clients: live,
            server_requests: counter(
                r,
                "inference_server_requests_total",
                "Requests to the inference server, by outcome (ok; failed: no answer, timeout or \
                 5xx after the retries; refused: 4xx or a bad answer; circuit_open: not sent)",
                &["outcome"],
            ),
            server_latency: histogram(
                r,
                "inference_server_request_seconds",
                "Inference server request time, retries included",
                vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            ),
            circuit_state: circuit,
            server: OnceLock::new(),
            registry,
            logged: Mutex::new(HashMap::new()),
            broker_up: AtomicBool::new(false),
            model_up: AtomicBool::new(false),
        })
    }

    pub fn received(&self) {
        self.received.with_label_values::<&str>(&[]).inc();
    }

    /// Counts every rejection; logs the first of each (device, reason) and then every 100th.
    pub fn rejected(&self, device: Option<&str>, reason: &'static str, detail: &str) {
        self.rejected.with_label_values(&[reason]).inc();
        let key = (device.unwrap_or("?").to_string(), reason);
        let n = {
            let mut logged = self
                .logged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = logged.entry(key).or_insert(0);
            *n += 1;
            *n
        };
        if n == 1 || n % 100 == 0 {
            tracing::warn!(
                device = device.unwrap_or("?"),
                reason,
                detail,
                count = n,
                "crop rejected"
            );
        }
    }

    /// A device reported its status: each camera that is down is logged with its reason.
    pub fn device_status(&self, device: &str, status: &DeviceStatus) {
        let down = status.cameras_down();
        let agent = status.agent.as_ref();
        tracing::info!(
            device,
            state = status.state.as_str(),
            cameras = status.cameras.len(),
            down,
            version = agent.map_or("", |a| a.version.as_str()),
            profile = agent.and_then(|a| a.profile.as_deref()).unwrap_or(""),
            models = agent.map_or(0, |a| a.models.len()),
            "device status"
        );
        if let Some(a) = agent {
            self.agent_info(
                device,
                [a.version.clone(), a.profile.clone().unwrap_or_default()],
            );
        }
        for c in status.cameras.iter().filter(|c| c.state.is_down()) {
            tracing::warn!(
                device,
                camera = %c.id,
                reason = c.reason.as_deref().unwrap_or(""),
                "camera down on the device"
            );
        }
        self.cameras_down
            .with_label_values(&[device])
            .set(i64::try_from(down).unwrap_or(i64::MAX));
    }

    /// `device_agent_info`: the device's series with its new labels, the old one removed.
    fn agent_info(&self, device: &str, labels: [String; 2]) {
        let mut known = self.agent_labels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = known.get(device)
            && *old != labels
        {
            let _ =
                self.agent_info
                    .remove_label_values(&[device, old[0].as_str(), old[1].as_str()]);
        }
        self.agent_info
            .with_label_values(&[device, labels[0].as_str(), labels[1].as_str()])
            .set(1);
        known.insert(device.to_string(), labels);
    }

    /// The in-flight budget is spent: reading from the broker waits (logged at debug: a burst
    /// makes many).
    pub fn backpressure(&self, bytes: usize) {
        tracing::debug!(
            bytes,
            "in-flight budget spent: reading from the broker waits"
        );
        self.backpressure.with_label_values::<&str>(&[]).inc();
    }

    /// A crop of `device` over its budget was dropped unreceipted. Logged on the first and then
    /// every 100th per device.
    pub fn over_budget(&self, device: &str, bytes: usize) {
        let c = self.over_budget.with_label_values(&[device]);
        c.inc();
        self.over_budget_bytes
            .with_label_values(&[device])
            .inc_by(bytes as u64);
        if c.get() % 100 == 1 {
            tracing::warn!(
                device,
                dropped_so_far = c.get(),
                "device over its crop budget; it will send these again"
            );
        }
    }

    /// A receipt naming `crops` crops (`bytes` long) was handed to the broker.
    pub fn receipt_sent(&self, crops: usize, bytes: usize) {
        tracing::debug!(crops, bytes, "receipt published");
        self.receipts.with_label_values::<&str>(&[]).inc();
        self.receipted
            .with_label_values::<&str>(&[])
            .inc_by(crops as u64);
    }

    pub fn duplicate(&self, message_id: &str) {
        tracing::debug!(message_id, "duplicate crop acknowledged and dropped");
        self.duplicates.with_label_values::<&str>(&[]).inc();
    }

    /// A word of the edge about a track went through the alert engine.
    pub fn track_word(&self, camera: &str, event: cascade_shared::wire::TrackEvent) {
        tracing::debug!(camera, event = event.label(), "track word");
        self.words.with_label_values(&[event.label()]).inc();
    }

    pub fn batch(&self, size: usize, seconds: f64) {
        tracing::debug!(size, seconds, "confirm batch");
        self.batch_size.observe(size as f64);
        self.inference_latency.observe(seconds);
    }

    pub fn decided(&self, message_id: &str, confirmed: bool, score: f32, latency_s: f64) {
        tracing::info!(message_id, confirmed, score, latency_s, "crop decided");
        self.verdicts
            .with_label_values(&[if confirmed {
                "confirmed"
            } else {
                "unconfirmed"
            }])
            .inc();
        self.end_to_end.observe(latency_s.max(0.0));
        let yes = self.verdicts.with_label_values(&["confirmed"]).get() as f64;
        let no = self.verdicts.with_label_values(&["unconfirmed"]).get() as f64;
        self.confirm_ratio.set(yes / (yes + no).max(1.0));
    }

    pub fn alert(&self, kind: &str, alert_id: &str, device: &str, camera: &str) {
        tracing::info!(kind, alert_id, device, camera, "alert published");
        self.alerts.with_label_values(&[kind]).inc();
    }

    /// A camera's Home Assistant discovery configs were published (`published` of them).
    pub fn discovery(&self, device: &str, camera: &str, published: usize) {
        tracing::info!(
            device,
            camera,
            published,
            "Home Assistant discovery published"
        );
        self.discovery
            .with_label_values::<&str>(&[])
            .inc_by(u64::try_from(published).unwrap_or(0));
    }

    /// A browser started (true) or stopped (false) following the alerts.
    pub fn live_client(&self, connected: bool) {
        if connected {
            self.live_clients.inc();
        } else {
            self.live_clients.dec();
        }
        tracing::debug!(
            connected,
            clients = self.live_clients.get(),
            "live alert stream"
        );
    }

    pub fn set_pending(&self, n: usize) {
        self.pending.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn mqtt(&self, up: bool, detail: &dyn std::fmt::Display) {
        if up {
            tracing::info!(%detail, "connected to the broker");
        } else {
            tracing::warn!(%detail, "broker connection lost; unacknowledged crops will be redelivered");
        }
        self.mqtt_connected.set(i64::from(up));
        self.broker_up.store(up, Ordering::SeqCst);
    }

    /// The observer an inference server's status reports to (held weakly: the status is kept
    /// in [`Telemetry::server`]).
    pub fn server_observer(self: &Arc<Self>) -> Box<dyn ServerObserver> {
        Box::new(ServerEvents(Arc::downgrade(self)))
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Sum of a metric across labels (counters and gauges), for summaries and tests.
    pub fn total(&self, name: &str) -> f64 {
        cascade_shared::telemetry::metric_total(&self.registry, &format!("cascade_cloud_{name}"))
    }
}

/// Inference server events as metrics, and a log line per change of its health.
struct ServerEvents(Weak<Telemetry>);

impl ServerObserver for ServerEvents {
    fn request(&self, outcome: Outcome, seconds: f64) {
        let Some(t) = self.0.upgrade() else { return };
        t.server_requests
            .with_label_values(&[outcome.label()])
            .inc();
        if outcome != Outcome::CircuitOpen {
            t.server_latency.observe(seconds);
        }
    }

    fn circuit(&self, state: CircuitState) {
        if let Some(t) = self.0.upgrade() {
            t.circuit_state.set(state.gauge());
        }
    }

    fn changed(&self, health: &ServerHealth) {
        match health.reason(std::time::Instant::now()) {
            None => tracing::info!(
                url = %health.url,
                circuit = health.state.label(),
                "inference server ready"
            ),
            Some(reason) => tracing::warn!(
                circuit = health.state.label(),
                %reason,
                "inference server unavailable; crops wait and are tried again"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use cascade_shared::status::{AgentInfo, Presence};

    use super::*;

    fn status(version: &str) -> DeviceStatus {
        DeviceStatus {
            state: Presence::Online,
            agent: Some(AgentInfo {
                version: version.into(),
                profile: Some("raspberry-pi-5".into()),
                models: vec![],
            }),
            cameras: vec![],
        }
    }

    #[test]
    fn a_device_shows_only_the_version_it_last_reported() {
        let t = Telemetry::new();
        t.device_status("dev", &status("0.1.0"));
        t.device_status("dev", &status("0.2.0"));
        let text = t.render();
        assert!(
            text.contains(
                r#"cascade_cloud_device_agent_info{device="dev",profile="raspberry-pi-5",version="0.2.0"} 1"#
            ),
            "{text}"
        );
        assert!(!text.contains(r#"version="0.1.0""#), "{text}");
    }
}
