//! Upload over MQTT 3.1.1 (rumqttc) with TLS (rustls). The buffer is the source of truth:
//! `publish` is not delivery, so each crop gets a packet id from [`AckTracker`] and leaves the
//! buffer only on its PUBACK; after every reconnect all unacknowledged crops are sent again.
//!
//! Publishes are queued straight into the event loop's `pending` queue with our own packet ids,
//! between polls, so the mapping from packet id to record never depends on rumqttc's internals.

pub mod acks;
pub mod tls;

use cascade_shared::retry::Backoff;

use std::sync::Arc;
use std::time::Duration;

use cascade_shared::clock::{SharedClock, micros};
use cascade_shared::config::edge::UplinkConfig;
use cascade_shared::shutdown::Shutdown;
use cascade_shared::status::DeviceStatus;
use cascade_shared::topics;
use cascade_shared::wire::{BodyEncoding, CropEnvelope, EncodedBody};
use prost::Message;
use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, Publish, QoS, Request,
};
use tokio::sync::Notify;

pub use acks::{AckTracker, Slot};

use crate::buffer::{Buffer, Record};
use crate::telemetry::Telemetry;

/// Stores an encoded crop body in a buffer record: `[encoding u8][uncompressed u32 le][body]`.
pub fn store_body(body: &EncodedBody) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + body.body.len());
    v.push(body.encoding as u8);
    v.extend_from_slice(&body.uncompressed_size.to_le_bytes());
    v.extend_from_slice(&body.body);
    v
}

/// The inverse of [`store_body`]; `None` for a damaged record.
pub fn load_body(stored: &[u8]) -> Option<EncodedBody> {
    let (&enc, rest) = stored.split_first()?;
    let (size, body) = rest.split_at_checked(4)?;
    let encoding = BodyEncoding::try_from(i32::from(enc)).ok()?;
    Some(EncodedBody {
        encoding,
        uncompressed_size: u32::from_le_bytes(size.try_into().ok()?),
        body: body.to_vec(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("uplink TLS: {0}")]
    Tls(#[from] cascade_shared::tls::TlsError),
}

pub struct Uplink {
    device_id: String,
    crops_topic: String,
    status_topic: String,
    host: String,
    buffer: Arc<Buffer>,
    telemetry: Arc<Telemetry>,
    clock: SharedClock,
    wake: Arc<Notify>,
    tracker: AckTracker,
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
            host: format!("{}:{}", cfg.host, cfg.port),
            buffer,
            telemetry,
            clock,
            wake,
            tracker: AckTracker::new(cfg.max_inflight),
            backoff: Backoff::new(cfg.reconnect_max),
            connected: false,
            status_due: false,
            ack_timeout: cfg.ack_timeout,
        }
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

    /// A PUBACK that never came: drop the connection; the next poll reconnects and everything
    /// unacknowledged is sent again.
    fn on_ack_timeout(&mut self, eventloop: &mut EventLoop) {
        if self.ack_wait().is_some_and(|w| !w.is_zero()) {
            return;
        }
        eventloop.clean();
        eventloop.network = None;
        self.connected = false;
        self.tracker.reset();
        let timeout = format!("no PUBACK for {} s", self.ack_timeout.as_secs_f64());
        self.telemetry
            .mqtt_disconnected("ack_timeout", &timeout, 0.0);
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Incoming(Incoming::ConnAck(_)) => {
                self.connected = true;
                self.tracker.reset();
                self.backoff.reset();
                self.telemetry.mqtt_connected(&self.host);
                self.status_due = true;
            }
            Event::Incoming(Incoming::PubAck(ack)) => {
                if let Some(Slot::Record { key, bytes }) = self.tracker.ack(ack.pkid) {
                    let buffer = self.buffer.clone();
                    let removed = tokio::task::spawn_blocking(move || buffer.remove(&[key])).await;
                    match removed {
                        Ok(Ok(_)) => self.telemetry.crop_uploaded(
                            key,
                            bytes,
                            self.buffer.stats(),
                            self.clock.now_utc_us(),
                        ),
                        Ok(Err(e)) => {
                            tracing::error!(key, error = %e, "acknowledged crop could not be removed; it will be sent again")
                        }
                        Err(e) => tracing::error!(key, error = %e, "buffer task failed"),
                    }
                }
            }
            Event::Outgoing(Outgoing::Disconnect) => self.connected = false,
            _ => {}
        }
    }

    async fn on_error(&mut self, e: &rumqttc::ConnectionError, shutdown: &Shutdown) {
        let kind = if self.connected { "lost" } else { "connect" };
        self.connected = false;
        self.tracker.reset();
        let delay = self.backoff.next_delay();
        self.telemetry
            .mqtt_disconnected(kind, e, delay.as_secs_f64());
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(delay) => {}
        }
    }
}

impl Uplink {
    /// Queues the status (when due) and buffered crops up to the in-flight window.
    async fn fill(&mut self, eventloop: &mut EventLoop) {
        if self.status_due
            && let Some(pkid) = self.tracker.send(Slot::Status, self.clock.monotonic_us())
        {
            {
                let status = self.telemetry.cameras().device_status();
                let mut p = Publish::new(&self.status_topic, QoS::AtLeastOnce, status.encode());
                p.retain = true;
                p.pkid = pkid;
                eventloop.pending.push_back(Request::Publish(p));
                self.status_due = false;
            }
        }
        let room = self.tracker.room();
        if room == 0 {
            return;
        }
        let (buffer, after) = (self.buffer.clone(), self.tracker.cursor());
        let records = match tokio::task::spawn_blocking(move || buffer.pending(after, room)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return tracing::error!(error = %e, "cannot read the buffer"),
            Err(e) => return tracing::error!(error = %e, "buffer task failed"),
        };
        let now = self.clock.now_utc_us();
        for rec in records {
            self.queue_record(eventloop, &rec, now);
        }
    }

    fn queue_record(&mut self, eventloop: &mut EventLoop, rec: &Record, now_us: i64) {
        let Some(body) = load_body(&rec.payload) else {
            tracing::error!(key = rec.key, "damaged buffer record skipped");
            return;
        };
        let payload = CropEnvelope::wrap(&body, now_us).encode_to_vec();
        let slot = Slot::Record {
            key: rec.key,
            bytes: payload.len(),
        };
        let Some(pkid) = self.tracker.send(slot, self.clock.monotonic_us()) else {
            return;
        };
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
        self.telemetry
            .mqtt_disconnected("shutdown", &"clean shutdown", 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_body_round_trips() {
        let b = EncodedBody {
            encoding: BodyEncoding::Zstd,
            uncompressed_size: 77,
            body: vec![1, 2, 3],
        };
        assert_eq!(load_body(&store_body(&b)), Some(b));
        assert_eq!(load_body(&[9, 0, 0, 0, 0]), None, "unknown encoding");
        assert_eq!(load_body(&[0, 1]), None, "truncated");
    }
}
