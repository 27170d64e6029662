//! Runs the analyzer: (embedded broker), store, confirm model, HTTP API, and three tasks joined by
//! channels: the MQTT loop, intake (`intake.rs`: validate, store, then acknowledge), and the batcher
//! (confirm; `alerting.rs`: alert, publish). One shutdown token reaches them all.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cascade_shared::clock::{SharedClock, SystemClock};
use cascade_shared::config::cloud::{BatchConfig, BrokerConfig, CloudConfig, ModelConfig};

use cascade_infer::backend::BackendOptions;
use cascade_infer::backend::kserve::ServerStatus;
use cascade_infer::{Classes, InferError, LoadOptions};
use cascade_shared::config::BackendKind;
use cascade_shared::retry::Backoff;
use cascade_shared::shutdown::Shutdown;
use cascade_shared::topics;
use rumqttc::{
    AsyncClient, Event, Incoming, MqttOptions, Publish, QoS, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;

use crate::alert::AlertEngine;
use crate::alerting;
use crate::api::{self, ApiState};
use crate::batch::Batcher;
use crate::budget::Budgets;
use crate::confirm::{Confirmer, CropInput, OnnxConfirmer, Place};
use crate::ingest;
use crate::receipts::Receipted;
use crate::store::{Pending, Store, Verdict};
use crate::telemetry::Telemetry;

#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error("model: {0}")]
    Model(#[from] cascade_infer::model::LoadError),
    #[error("broker TLS: {0}")]
    Tls(#[from] cascade_shared::tls::TlsError),
    /// The API could not listen.
    #[error("HTTP API: {0}")]
    Api(#[source] std::io::Error),
    /// The API's task panicked (or was cancelled) before it listened.
    #[error("HTTP API task: {0}")]
    ApiTask(#[source] tokio::task::JoinError),
}

/// Everything the tasks share.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) store: Arc<Store>,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) clock: SharedClock,
    pub(crate) client: AsyncClient,
    /// The alert engine. Held from an engine step until its changes are handed to the broker, so
    /// events and camera states go out in the order they were decided (an `OFF` never overtakes
    /// the `ON` of a newer alert).
    pub(crate) engine: Arc<tokio::sync::Mutex<AlertEngine>>,
    pub(crate) public_url: String,
    /// Crops now held, for the receipts task.
    pub(crate) receipts: mpsc::UnboundedSender<Receipted>,
    /// Home Assistant discovery; none when `[home_assistant] discovery` is off.
    pub(crate) discovery: Option<Arc<crate::discovery::Discovery>>,
    /// Each committed alert event (JSON), for the browsers following `/api/events`.
    pub(crate) live: tokio::sync::broadcast::Sender<String>,
}

/// Loads the confirm model its manifest describes: in-process, or on the inference server
/// `[model.server]` names (reporting to `telemetry`, which keeps its status for `/readyz`).
pub fn load_confirmer(
    cfg: &CloudConfig,
    telemetry: &Arc<Telemetry>,
) -> Result<OnnxConfirmer, AnalyzerError> {
    // Keep weak candidates: the confirm rule decides; NMS still needs a floor.
    let opts = LoadOptions {
        manifest: cfg.model.manifest.clone(),
        model_file: None,
        backend: backend_options(&cfg.model),
        score_threshold: 0.1,
        nms_iou: 0.45,
        min_box_area: 0.0,
        classes: Classes::Person,
    };
    let Some(server) = &cfg.model.server else {
        let det = cascade_infer::load_detector(&opts)?;
        return Ok(OnnxConfirmer::new(det, &cfg.confirm));
    };
    let status = Arc::new(ServerStatus::new(
        server.base_url(),
        telemetry.server_observer(),
    ));
    let _ = telemetry.server.set(status.clone());
    let det = cascade_infer::model::load_server_detector(&opts, server, status.clone())?;
    Ok(OnnxConfirmer::new(det, &cfg.confirm).on_server(status, server.retry_backoff))
}

/// The backend the `[model]` section asks for.
pub fn backend_options(model: &ModelConfig) -> BackendOptions {
    BackendOptions {
        kind: BackendKind::Onnxruntime,
        library: model.onnxruntime.clone(),
        threads: model.threads.get(),
        // One session on a box of its own: spinning buys latency and costs nobody.
        spin: true,
        edge_tpu: None,
        // The analyzer's GPU is not wired yet: ONNX Runtime's CPU provider.
        gpu: None,
    }
}

/// Connects the analyzer's MQTT client to its broker: the embedded one, started here (its plain
/// loopback listener for the analyzer), or the external one (TLS unless turned off).
///
/// The session is persistent (the broker queues crops while we are down) and acknowledgements are
/// manual (a crop is acknowledged only once stored or rejected for good).
fn mqtt_options(cfg: &CloudConfig) -> Result<MqttOptions, AnalyzerError> {
    let id = cfg.ingest.client_id.clone();
    let mut o = match &cfg.broker {
        BrokerConfig::Embedded {
            listen,
            cert_file,
            key_file,
            ca_file,
        } => {
            let tls = match (cert_file, key_file) {
                (Some(cert), Some(key)) => Some(crate::broker::Tls {
                    cert: cert.clone(),
                    key: key.clone(),
                    ca: ca_file.clone(),
                }),
                _ => None,
            };
            let internal = crate::broker::start(*listen, tls)?;
            MqttOptions::new(id, internal.ip().to_string(), internal.port())
        }
        BrokerConfig::External {
            host,
            port,
            tls,
            ca_file,
            client_cert_file,
            client_key_file,
            username,
            password,
        } => {
            let mut o = MqttOptions::new(id, host.clone(), *port);
            if *tls {
                let client = client_cert_file.as_deref().zip(client_key_file.as_deref());
                let tls = cascade_shared::tls::client_config("broker", ca_file.as_deref(), client)?;
                o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                    Arc::new(tls),
                )));
            }
            if let (Some(u), Some(p)) = (username, password) {
                o.set_credentials(u.clone(), p.clone());
            }
            o
        }
    };
    o.set_clean_session(false);
    o.set_manual_acks(true);
    o.set_keep_alive(Duration::from_secs(15));
    o.set_inflight(cfg.ingest.max_inflight.get());
    o.set_max_packet_size(cfg.ingest.max_packet_bytes, cfg.ingest.max_packet_bytes);
    Ok(o)
}

pub async fn run(cfg: CloudConfig, shutdown: Shutdown) -> Result<(), AnalyzerError> {
    let telemetry = Telemetry::new();
    let clock: SharedClock = Arc::new(SystemClock);
    let options = tokio::task::block_in_place(|| mqtt_options(&cfg))?;
    let store = Arc::new(tokio::task::block_in_place(|| {
        Store::connect(&cfg.store, &cfg.ingest.client_id, cfg.alerts.cooldown)
    })?);
    let confirmer: Arc<Mutex<dyn Confirmer>> =
        Arc::new(Mutex::new(tokio::task::block_in_place(|| {
            load_confirmer(&cfg, &telemetry)
        })?));
    telemetry
        .model_up
        .store(true, std::sync::atomic::Ordering::SeqCst);

    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (live, _) = tokio::sync::broadcast::channel(LIVE_CAPACITY);
    let api_state = ApiState {
        store: store.clone(),
        telemetry: telemetry.clone(),
        tokens: Arc::new(cfg.api.tokens.clone()),
        metrics_public: cfg.api.metrics_public,
        live: live.clone(),
        shutdown: shutdown.clone(),
    };
    let server = tokio::spawn(api::serve(
        api_state,
        cfg.api.listen,
        shutdown.clone(),
        bound_tx,
    ));
    let api_addr = match bound_rx.await {
        Ok(a) => a,
        // The API task ended without listening: its error says why.
        Err(_) => {
            return Err(match server.await {
                Ok(Err(e)) => AnalyzerError::Api(e),
                Ok(Ok(())) => AnalyzerError::Api(std::io::Error::other("stopped before listening")),
                Err(e) => AnalyzerError::ApiTask(e),
            });
        }
    };

    let (client, eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
    let (receipts_tx, receipts_rx) = mpsc::unbounded_channel();
    // A store that folds alerts itself (PostgreSQL) holds them: this engine stays empty.
    let restored = if store.folds_alerts() {
        Vec::new()
    } else {
        tokio::task::block_in_place(|| store.active_alerts())?
    };
    let ctx = Ctx {
        store: store.clone(),
        telemetry: telemetry.clone(),
        clock,
        client: client.clone(),
        engine: Arc::new(tokio::sync::Mutex::new(AlertEngine::with_cooldown(
            cfg.alerts.cooldown,
            restored,
        ))),
        public_url: cfg
            .api
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{api_addr}")),
        receipts: receipts_tx,
        discovery: crate::discovery::Discovery::new(&cfg.home_assistant).map(Arc::new),
        live,
    };

    let (intake_tx, intake_rx) = mpsc::channel::<(Publish, Held)>(256);
    let (batch_tx, batch_rx) = mpsc::unbounded_channel::<(Pending, Option<Held>)>();
    for p in tokio::task::block_in_place(|| store.pending())? {
        let _ = batch_tx.send((p, None));
    }
    let filter = cfg.crops_filter();
    let budgets = Budgets::new(cfg.ingest.device_crops_per_s, cfg.ingest.device_bytes_per_s);
    let mut tasks = vec![
        tokio::spawn(mqtt_loop(
            ctx.clone(),
            eventloop,
            (filter, budgets),
            intake_tx,
            shutdown.clone(),
        )),
        tokio::spawn(crate::intake::intake(
            ctx.clone(),
            intake_rx,
            batch_tx.clone(),
        )),
        tokio::spawn(batcher(
            ctx.clone(),
            confirmer,
            batch_rx,
            cfg.batch,
            shutdown.clone(),
        )),
        tokio::spawn(alerting::sweeper(
            ctx.clone(),
            cfg.store.retention,
            shutdown.clone(),
        )),
        tokio::spawn(crate::receipts::run(
            client.clone(),
            receipts_rx,
            telemetry.clone(),
            shutdown.clone(),
        )),
    ];
    if store.folds_alerts() {
        tasks.push(tokio::spawn(crate::fold::adopt_orphans(
            ctx.clone(),
            batch_tx,
            cfg.store.lease,
            shutdown.clone(),
        )));
    }
    shutdown.cancelled().await;
    let _ = client.disconnect().await;
    for t in tasks {
        let _ = t.await;
    }
    let _ = server.await;
    tracing::info!(
        received = telemetry.total("crops_received_total"),
        rejected = telemetry.total("crops_rejected_total"),
        duplicates = telemetry.total("crops_duplicate_total"),
        decided = telemetry.total("crops_decided_total"),
        alerts = telemetry.total("alerts_published_total"),
        "summary"
    );
    Ok(())
}

/// Alert events a slow browser may fall behind by before it is told to reload (`lagged`).
const LIVE_CAPACITY: usize = 256;

/// Bytes of crops the analyzer holds in memory between the broker and a decision, at most. When
/// they are all taken the MQTT loop stops reading (and acknowledging): the broker keeps the rest.
pub const INFLIGHT_BUDGET_BYTES: usize = 64 << 20;

/// Requests (acks, alert publishes) that can wait for the MQTT loop. The loop stops polling while
/// the in-flight budget is spent, and only deciding crops gives budget back: deciding must never
/// wait on the loop, so this holds every request the budget's crops can make (an ack and a few
/// alert events each; at least 1 KiB of budget per crop). The channel allocates as it fills.
const REQUEST_CAPACITY: usize = 4 * (INFLIGHT_BUDGET_BYTES / 1024) + 64;

/// A message's share of the in-flight budget, returned when the message is decided or dropped.
pub(crate) type Held = tokio::sync::OwnedSemaphorePermit;

/// The budget in KiB permits (a semaphore counts at most `u32::MAX` at once).
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024).clamp(1, INFLIGHT_BUDGET_BYTES / 1024)).unwrap_or(u32::MAX)
}

/// Takes `bytes` of the budget, waiting (and counting the wait) when it is spent.
async fn hold(ctx: &Ctx, budget: &Arc<tokio::sync::Semaphore>, bytes: usize) -> Option<Held> {
    let n = kib(bytes);
    if let Ok(held) = budget.clone().try_acquire_many_owned(n) {
        return Some(held);
    }
    ctx.telemetry.backpressure(bytes);
    budget.clone().acquire_many_owned(n).await.ok()
}

/// Reads the broker: crops within their device's budget go to intake (holding their share of the
/// memory budget), crops over it are acknowledged and dropped unreceipted (the device sends them
/// again later).
async fn mqtt_loop(
    ctx: Ctx,
    mut eventloop: rumqttc::EventLoop,
    (filter, mut budgets): (String, Budgets),
    intake: mpsc::Sender<(Publish, Held)>,
    shutdown: Shutdown,
) {
    let mut backoff = Backoff::new(Duration::from_secs(10));
    let budget = Arc::new(tokio::sync::Semaphore::new(INFLIGHT_BUDGET_BYTES / 1024));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            ev = eventloop.poll() => match ev {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    backoff.reset();
                    ctx.telemetry.mqtt(true, &"connected");
                    let _ = ctx.client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                    let _ = ctx.client.try_subscribe(format!("{}/+/status", topics::PREFIX), QoS::AtLeastOnce);
                    tokio::spawn(alerting::republish(ctx.clone()));
                    tokio::spawn(crate::discovery::announce_known(ctx.clone()));
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    if let Some(device) = topics::device_of_crops_topic(&p.topic)
                        && !budgets.admit(device, p.payload.len(), ctx.clock.monotonic_us())
                    {
                        ctx.telemetry.over_budget(device, p.payload.len());
                        let _ = ctx.client.try_ack(&p);
                        continue;
                    }
                    let Some(held) = hold(&ctx, &budget, p.payload.len()).await else {
                        return;
                    };
                    if intake.send((p, held)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    ctx.telemetry.mqtt(false, &e);
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
    }
}

async fn batcher(
    ctx: Ctx,
    confirmer: Arc<Mutex<dyn Confirmer>>,
    mut rx: mpsc::UnboundedReceiver<(Pending, Option<Held>)>,
    cfg: BatchConfig,
    shutdown: Shutdown,
) {
    let now_us = || ctx.clock.monotonic_us();
    let mut b = Batcher::new(cfg.max_batch, cfg.max_wait);
    // Each waiting crop's share of the in-flight budget, given back once it is decided.
    let mut held: std::collections::HashMap<String, Held> = std::collections::HashMap::new();
    loop {
        ctx.telemetry.set_pending(b.len() + rx.len());
        let wait = b
            .deadline_us()
            .map(|d| Duration::from_micros(u64::try_from(d - now_us()).unwrap_or(0)));
        let ready = tokio::select! {
            () = shutdown.cancelled() => return,
            item = rx.recv() => match item {
                Some((p, h)) => {
                    if let Some(h) = h {
                        held.insert(p.message_id.clone(), h);
                    }
                    b.push(p, now_us())
                }
                None => return,
            },
            () = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => b.poll(now_us()),
        };
        if let Some(batch) = ready {
            let ids: Vec<String> = batch.iter().map(|p| p.message_id.clone()).collect();
            process(&ctx, &confirmer, batch, &shutdown).await;
            for id in ids {
                held.remove(&id);
            }
        }
    }
}

/// Confirms a batch on a blocking thread, then records verdicts and alerts and publishes them.
/// While the model is unavailable (an inference server down or overloaded) the batch waits and
/// is tried again (until shutdown: its crops stay pending in the store, and the next start
/// queues them again); nothing behind it is read meanwhile beyond the in-flight budget.
async fn process(
    ctx: &Ctx,
    confirmer: &Arc<Mutex<dyn Confirmer>>,
    mut batch: Vec<Pending>,
    shutdown: &Shutdown,
) {
    let first_try = Instant::now();
    let mut tries = 0u32;
    loop {
        let c = confirmer.clone();
        let started = Instant::now();
        let judged = tokio::task::spawn_blocking(move || {
            let mut confirmer = c.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let crops = batch
                .iter()
                .map(|p| (p.jpeg.as_slice(), Place::from_arrays(p.bbox, p.region)));
            let verdicts = confirm_jpegs(&mut *confirmer, crops);
            let retry = verdicts.as_ref().err().and_then(|_| confirmer.retry_in());
            (batch, verdicts, retry)
        })
        .await;
        tries += 1;
        let verdicts = match judged {
            Ok((b, Ok(v), _)) => {
                batch = b;
                v
            }
            Ok((b, Err(e), Some(wait))) => {
                // The server's status logs each change once; each wait is only a debug line.
                tracing::debug!(error = %e, size = b.len(), wait_s = wait.as_secs_f64(), "confirm model unavailable; the batch waits");
                batch = b;
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
            Ok((b, Err(e), None)) => {
                return tracing::error!(error = %e, size = b.len(), "confirm model failed; the crops stay pending");
            }
            Err(e) => return tracing::error!(error = %e, "confirm task failed"),
        };
        if tries > 1 {
            tracing::debug!(
                size = batch.len(),
                tries,
                waited_s = first_try.elapsed().as_secs_f64(),
                "crops confirmed after waiting for the model"
            );
        }
        ctx.telemetry
            .batch(batch.len(), started.elapsed().as_secs_f64());
        for (p, verdict) in batch.into_iter().zip(verdicts) {
            alerting::decide(ctx, p, verdict).await;
        }
        return;
    }
}

/// Decodes and confirms a batch of JPEGs, each with where it sits in its frame; one that does not
/// decode is not confirmed.
fn confirm_jpegs<'a>(
    confirmer: &mut dyn Confirmer,
    jpegs: impl Iterator<Item = (&'a [u8], Place)>,
) -> Result<Vec<Verdict>, InferError> {
    let decoded: Vec<_> = jpegs
        .map(|(jpeg, place)| ingest::decode_jpeg(jpeg).map(|image| CropInput { image, place }))
        .collect();
    let ok: Vec<bool> = decoded.iter().map(Result::is_ok).collect();
    let inputs: Vec<_> = decoded.into_iter().filter_map(Result::ok).collect();
    let mut judged = confirmer.confirm(&inputs)?.into_iter();
    let rejected = Verdict {
        cloud_score: 0.0,
        confirmed: false,
    };
    Ok(ok
        .into_iter()
        .map(|ok| {
            if ok {
                judged.next().unwrap_or(rejected)
            } else {
                rejected
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_of_the_budget_are_whole_kib_within_the_budget() {
        assert_eq!(kib(0), 1, "an empty message still takes a share");
        assert_eq!(kib(1024), 1);
        assert_eq!(kib(1025), 2);
        let all = u32::try_from(INFLIGHT_BUDGET_BYTES / 1024).expect("fits");
        assert_eq!(
            kib(usize::MAX),
            all,
            "a huge message waits for the whole budget, not forever"
        );
    }

    #[tokio::test]
    async fn a_spent_budget_makes_the_reader_wait_until_a_crop_is_decided() {
        let budget = Arc::new(tokio::sync::Semaphore::new(INFLIGHT_BUDGET_BYTES / 1024));
        let first = budget
            .clone()
            .try_acquire_many_owned(kib(INFLIGHT_BUDGET_BYTES))
            .expect("the whole budget");
        assert!(budget.clone().try_acquire_many_owned(kib(10)).is_err());
        drop(first);
        assert!(budget.clone().try_acquire_many_owned(kib(10)).is_ok());
    }
}
