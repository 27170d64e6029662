//! Upload over MQTT 3.1.1 (rumqttc) with TLS (rustls). The buffer is the source of truth:
//! `publish` is not delivery, and a PUBACK only means the broker has the crop. Each crop gets a
//! packet id from [`AckTracker`] (PUBACKs are flow control), and leaves the buffer only when the
//! analyzer's receipt names it ([`Deliveries`]; or on its PUBACK under `delivery = "puback"`).
//! Crops the broker acknowledged but no receipt named in time are sent again, and after every
//! reconnect everything still buffered is sent again (the analyzer folds duplicates by message id).
//!
//! Publishes are queued straight into the event loop's `pending` queue with our own packet ids,
//! between polls, so the mapping from packet id to record never depends on rumqttc's internals.

pub mod acks;
pub mod deliveries;
pub mod hint;
pub mod stored;
pub mod tls;

use cascade_shared::retry::Backoff;

use std::sync::Arc;
use std::time::Duration;

use cascade_shared::clock::{SharedClock, micros};
use cascade_shared::config::edge::{Delivery, UplinkConfig};
use cascade_shared::receipt::Receipt;
use cascade_shared::shutdown::Shutdown;
use cascade_shared::status::DeviceStatus;
use cascade_shared::topics;
use cascade_shared::verdict::Verdicts;
use cascade_shared::wire::CropEnvelope;
use prost::Message;
use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, Publish, QoS,
    Request, Subscribe, SubscribeFilter,
};
use tokio::sync::Notify;

pub use acks::{AckTracker, Slot};
pub use deliveries::{Deliveries, Done};
pub use stored::{store_body, store_crop};

use crate::buffer::{Buffer, Record};
use crate::telemetry::Telemetry;
use crate::track::CloudConfirmed;

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("uplink TLS: {0}")]
    Tls(#[from] cascade_shared::tls::TlsError),
}

pub struct Uplink {
    device_id: String,
    crops_topic: String,
    status_topic: String,
    receipts_topic: String,
    verdicts_topic: String,
    /// Where the analyzer's verdicts go (each camera's post stage reads its tracks there).
    confirmed: Arc<CloudConfirmed>,
    host: String,
    /// What the connection hints name (`hint`).
    endpoint: hint::Endpoint,
    buffer: Arc<Buffer>,
    telemetry: Arc<Telemetry>,
    clock: SharedClock,
    wake: Arc<Notify>,
    tracker: AckTracker,
    deliveries: Deliveries,
    /// The verdicts topic (and, under receipts, the receipts topic) is to be subscribed to: after
    /// each connect.
    subscribe_due: bool,
    backoff: Backoff,
    connected: bool,
    /// The retained status (online, each camera's state) is to be published: after each connect
    /// and whenever a camera's state changes.
    status_due: bool,
    /// A publish unacknowledged this long means a stuck session: reconnect and resend.
    ack_timeout: Duration,
}

impl Uplink {
    pub fn new(
        device_id: &str,
        cfg: &UplinkConfig,
        buffer: Arc<Buffer>,
        telemetry: Arc<Telemetry>,
        clock: SharedClock,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            device_id: device_id.to_string(),
            crops_topic: topics::crops(device_id),
            status_topic: topics::status(device_id),
            receipts_topic: topics::receipts(device_id),
            verdicts_topic: topics::verdicts(device_id),
            confirmed: Arc::default(),
            host: format!("{}:{}", cfg.host, cfg.port),
            endpoint: hint::Endpoint::of(cfg),
            buffer,
            telemetry,
            clock,
            wake,
            tracker: AckTracker::new(cfg.max_inflight),
            deliveries: Deliveries::new(
                cfg.delivery,
                cfg.receipt_window,
                micros(cfg.receipt_timeout),
            ),
            subscribe_due: false,
            backoff: Backoff::new(cfg.reconnect_max),
            connected: false,
            status_due: false,
            ack_timeout: cfg.ack_timeout,
        }
    }

    /// The analyzer's verdicts (tracks it confirmed) go to `confirmed`.
    pub fn verdicts_to(mut self, confirmed: Arc<CloudConfirmed>) -> Self {
        self.confirmed = confirmed;
        self
    }

    /// MQTT options: clean session, our in-flight window, larger packets, the offline last will.
    pub fn options(&self, cfg: &UplinkConfig) -> Result<MqttOptions, UplinkError> {
        let mut o = MqttOptions::new(self.device_id.clone(), cfg.host.clone(), cfg.port);
        o.set_keep_alive(cfg.keep_alive);
        o.set_clean_session(true);
        o.set_inflight(cfg.max_inflight.get());
        o.set_max_packet_size(cfg.max_packet_bytes, cfg.max_packet_bytes);
        o.set_last_will(LastWill::new(
            &self.status_topic,
            DeviceStatus::offline().encode(),
            QoS::AtLeastOnce,
            true,
        ));
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            o.set_credentials(u.clone(), p.clone());
        }
        if cfg.tls {
            o.set_transport(tls::transport(cfg)?);
        }
        Ok(o)
    }

    /// Runs until shutdown, reconnecting with backoff.
    pub async fn run(mut self, options: MqttOptions, shutdown: Shutdown) {
        // The client must outlive the loop (its channel keeps the event loop alive); we never send
        // through it: publishes go into `eventloop.pending` with our own packet ids.
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        loop {
            if self.connected {
                self.fill(&mut eventloop).await;
            }
            // Racing poll() is safe only while nothing is queued: then it waits on the socket or an
            // empty channel, where dropping it loses nothing.
            let idle = self.connected && eventloop.pending.is_empty();
            let can_wake = idle && self.tracker.room() > 0;
            let ack_wait = self.ack_wait().filter(|_| idle);
            let receipt_wait = self.receipt_wait().filter(|_| idle);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                ev = eventloop.poll() => match ev {
                    Ok(ev) => self.on_event(ev).await,
                    Err(e) => self.on_error(&e, &shutdown).await,
                },
                () = self.wake.notified(), if can_wake => {}
                () = self.telemetry.cameras().changed(), if idle => self.status_due = true,
                () = tokio::time::sleep(ack_wait.unwrap_or_default()), if ack_wait.is_some() => {
                    self.on_ack_timeout(&mut eventloop);
                }
                () = tokio::time::sleep(receipt_wait.unwrap_or_default()), if receipt_wait.is_some() => {
                    self.on_receipt_timeout();
                }
            }
        }
        self.goodbye(&mut eventloop).await;
        drop(client);
    }

    /// How long until the oldest unacknowledged publish times out (`None` when none is in flight).
    fn ack_wait(&self) -> Option<Duration> {
        let oldest = self.tracker.oldest_sent_us()?;
        let left = oldest.saturating_add(micros(self.ack_timeout)) - self.clock.monotonic_us();
        Some(Duration::from_micros(u64::try_from(left).unwrap_or(0)))
    }

    /// How long until the next awaited receipt is overdue (`None` when none is awaited).
    fn receipt_wait(&self) -> Option<Duration> {
        let left = self.deliveries.next_deadline()? - self.clock.monotonic_us();
        Some(Duration::from_micros(u64::try_from(left).unwrap_or(0)))
    }

    /// Receipts that did not come: those crops are sent again on the next fill.
    fn on_receipt_timeout(&mut self) {
        let timeout = self.deliveries.timeout_s();
        let overdue = self.deliveries.expire(self.clock.monotonic_us());
        if overdue > 0 {
            self.telemetry.receipts_overdue(overdue, timeout);
            self.telemetry.awaiting_receipt(self.deliveries.awaiting());
        }
    }

    /// A new session, or none: nothing is in flight any more, and everything still buffered is
    /// sent again from the oldest.
    fn forget_session(&mut self) {
        self.tracker.reset();
        self.deliveries.reset();
        self.telemetry.awaiting_receipt(0);
    }

    /// A PUBACK that never came: drop the connection; the next poll reconnects and everything
    /// unacknowledged is sent again.
    fn on_ack_timeout(&mut self, eventloop: &mut EventLoop) {
        if self.ack_wait().is_some_and(|w| !w.is_zero()) {
            return;
        }
        eventloop.clean();
        eventloop.network = None;
        self.connected = false;
        self.forget_session();
        let timeout = format!("no PUBACK for {} s", self.ack_timeout.as_secs_f64());
        self.telemetry
            .mqtt_disconnected("ack_timeout", &timeout, None, 0.0);
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Incoming(Incoming::ConnAck(_)) => {
                self.connected = true;
                self.forget_session();
                self.backoff.reset();
                self.telemetry.mqtt_connected(&self.host);
                self.status_due = true;
                self.subscribe_due = true;
            }
            Event::Incoming(Incoming::PubAck(ack)) => {
                if let Some(Slot::Record { key, .. }) = self.tracker.ack(ack.pkid) {
                    let done = self.deliveries.puback(key, self.clock.monotonic_us());
                    self.deliver(done.into_iter().collect()).await;
                    self.telemetry.awaiting_receipt(self.deliveries.awaiting());
                }
            }
            Event::Incoming(Incoming::Publish(p)) if p.topic == self.receipts_topic => {
                match Receipt::decode(&p.payload) {
                    Ok(r) => {
                        let done = self.deliveries.receipt(&r);
                        self.deliver(done).await;
                        self.telemetry.awaiting_receipt(self.deliveries.awaiting());
                    }
                    Err(e) => self.telemetry.bad_receipt(&e),
                }
            }
            Event::Incoming(Incoming::Publish(p)) if p.topic == self.verdicts_topic => {
                match Verdicts::decode(&p.payload) {
                    Ok(v) => {
                        for t in &v.confirmed {
                            self.confirmed.add(&t.camera_id, t.track_id);
                        }
                        self.telemetry.tracks_confirmed_by_cloud(v.confirmed.len());
                    }
                    Err(e) => self.telemetry.bad_verdict(&e),
                }
            }
            Event::Outgoing(Outgoing::Disconnect) => self.connected = false,
            _ => {}
        }
    }

    /// Removes delivered crops from the buffer (one transaction) and counts them.
    async fn deliver(&mut self, done: Vec<Done>) {
        if done.is_empty() {
            return;
        }
        let keys: Vec<u64> = done.iter().map(|d| d.key).collect();
        let buffer = self.buffer.clone();
        match tokio::task::spawn_blocking(move || buffer.remove(&keys)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return tracing::error!(error = %e, crops = done.len(), "delivered crops could not be removed; they will be sent again");
            }
            Err(e) => return tracing::error!(error = %e, "buffer task failed"),
        }
        let (stats, now) = (self.buffer.stats(), self.clock.now_utc_us());
        let refused = done.iter().filter(|d| d.rejected).count();
        for d in done.iter().filter(|d| !d.rejected) {
            if d.word {
                self.telemetry.track_word_delivered(d.key, d.bytes);
            } else {
                self.telemetry.crop_uploaded(d.key, d.bytes, stats, now);
            }
        }
        if refused > 0 {
            self.telemetry.crops_refused_by_cloud(refused);
            self.telemetry.buffer_stats(stats, now);
        }
    }

    async fn on_error(&mut self, e: &rumqttc::ConnectionError, shutdown: &Shutdown) {
        let kind = if self.connected { "lost" } else { "connect" };
        self.connected = false;
        self.forget_session();
        let delay = self.backoff.next_delay();
        let hint = hint::hint(&format!("{e} {e:?}"), &self.endpoint);
        self.telemetry
            .mqtt_disconnected(kind, e, hint.as_deref(), delay.as_secs_f64());
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(delay) => {}
        }
    }
}

impl Uplink {
    /// Queues the receipts subscription and the status (when due), then crops up to the windows:
    /// those to send again first, then new ones.
    async fn fill(&mut self, eventloop: &mut EventLoop) {
        if std::mem::take(&mut self.subscribe_due) {
            let mut topics = vec![self.verdicts_topic.clone()];
            if self.deliveries.mode() == Delivery::Receipt {
                topics.push(self.receipts_topic.clone());
            }
            let filters = topics
                .into_iter()
                .map(|t| SubscribeFilter::new(t, QoS::AtLeastOnce));
            let sub = Subscribe::new_many(filters);
            eventloop.pending.push_back(Request::Subscribe(sub));
        }
        if self.status_due
            && let Some(pkid) = self.tracker.send(Slot::Status, self.clock.monotonic_us())
        {
            let status = self.telemetry.cameras().device_status();
            let mut p = Publish::new(&self.status_topic, QoS::AtLeastOnce, status.encode());
            p.retain = true;
            p.pkid = pkid;
            eventloop.pending.push_back(Request::Publish(p));
            self.status_due = false;
        }
        let room = self.tracker.room().min(self.deliveries.room());
        if room == 0 {
            return;
        }
        let resend = self.deliveries.to_resend(room);
        let (buffer, after) = (self.buffer.clone(), self.tracker.cursor());
        let keys = resend.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut records = buffer.records(&keys)?;
            records.extend(buffer.pending(after, room - keys.len())?);
            Ok::<_, crate::buffer::BufferError>(records)
        });
        let records = match read.await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return tracing::error!(error = %e, "cannot read the buffer"),
            Err(e) => return tracing::error!(error = %e, "buffer task failed"),
        };
        for key in resend
            .iter()
            .filter(|k| !records.iter().any(|r| r.key == **k))
        {
            self.deliveries.forget(*key); // evicted meanwhile
        }
        let now = self.clock.now_utc_us();
        for rec in records {
            self.queue_record(eventloop, &rec, now);
        }
    }

    fn queue_record(&mut self, eventloop: &mut EventLoop, rec: &Record, now_us: i64) {
        let Some(stored) = stored::load(&rec.payload) else {
            tracing::error!(key = rec.key, "damaged buffer record skipped");
            return;
        };
        let payload = CropEnvelope::wrap(&stored.body, now_us).encode_to_vec();
        let slot = Slot::Record {
            key: rec.key,
            bytes: payload.len(),
        };
        let Some(pkid) = self.tracker.send(slot, self.clock.monotonic_us()) else {
            return;
        };
        self.deliveries
            .sent(rec.key, &stored.message_id, payload.len(), stored.word);
        let mut p = Publish::new(&self.crops_topic, QoS::AtLeastOnce, payload);
        p.pkid = pkid;
        eventloop.pending.push_back(Request::Publish(p));
    }

    /// On shutdown: publish offline (a clean disconnect does not fire the last will), then
    /// disconnect; at most two seconds.
    async fn goodbye(&mut self, eventloop: &mut EventLoop) {
        if !self.connected {
            return;
        }
        let offline = DeviceStatus::offline().encode();
        let mut p = Publish::new(&self.status_topic, QoS::AtMostOnce, offline);
        p.retain = true;
        eventloop.pending.push_back(Request::Publish(p));
        eventloop
            .pending
            .push_back(Request::Disconnect(rumqttc::Disconnect));
        let deadline = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => break,
                ev = eventloop.poll() => match ev {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(ev) => self.on_event(ev).await,
                },
            }
        }
        self.telemetry.mqtt_closed();
    }
}
