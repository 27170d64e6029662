//! Intake: each message from the broker is validated and stored (a crop), applied to the alerts
//! (a word about a track) or kept (a device's status), then acknowledged; a store failure leaves
//! it unacknowledged, so the broker delivers it again after a reconnect.

use cascade_shared::status::DeviceStatus;
use cascade_shared::topics;
use rumqttc::Publish;
use tokio::sync::mpsc;

use crate::alerting;
use crate::analyzer::{Ctx, Held};
use crate::ingest::{self, Rejection};
use crate::receipts::Receipted;
use crate::store::{Inserted, Pending, Store, StoreError};

/// What intake did with one message.
enum Outcome {
    New(Pending),
    /// Stored before: (device, message id).
    Duplicate(String, String),
    Rejected(Rejection),
    Status(String, DeviceStatus),
    /// A word about a track (no picture): applied to the alerts, never stored (applying it twice
    /// changes nothing).
    Word(ingest::Word),
    Failed(StoreError),
}

fn intake_one(store: &Store, topic: &str, payload: &[u8], now_us: i64) -> Outcome {
    let status_of = topic
        .strip_prefix(&format!("{}/", topics::PREFIX))
        .and_then(|t| t.strip_suffix("/status"));
    if let Some(device) = status_of.filter(|d| topics::valid_device_id(d)) {
        return device_status(store, topic, device, payload, now_us);
    }
    match ingest::validate(topic, payload) {
        Ok(v) => match v.word() {
            Some(word) => Outcome::Word(word),
            None => match store.insert_crop(&v.crop, v.envelope.upload_time_us, now_us) {
                Ok(Inserted::New) => Outcome::New(v.into_pending()),
                Ok(Inserted::Duplicate) => Outcome::Duplicate(v.crop.device_id, v.crop.message_id),
                Err(e) => Outcome::Failed(e),
            },
        },
        Err(r) if r.parsed => match store.dead_letter(
            now_us,
            topic,
            r.device_id.as_deref(),
            r.reason,
            &r.detail,
            payload,
        ) {
            Ok(()) => Outcome::Rejected(r),
            Err(e) => Outcome::Failed(e),
        },
        Err(r) => Outcome::Rejected(r),
    }
}

/// A device's status message: stored, or dead-lettered when it cannot be read.
fn device_status(store: &Store, topic: &str, device: &str, payload: &[u8], now_us: i64) -> Outcome {
    match DeviceStatus::decode(payload) {
        Ok(status) => match store.device_status(device, &status, now_us) {
            Ok(()) => Outcome::Status(device.to_string(), status),
            Err(e) => Outcome::Failed(e),
        },
        Err(e) => {
            let r = Rejection {
                parsed: true,
                message_id: None,
                device_id: Some(device.to_string()),
                reason: "bad_status",
                detail: e.to_string(),
            };
            match store.dead_letter(now_us, topic, Some(device), r.reason, &r.detail, payload) {
                Ok(()) => Outcome::Rejected(r),
                Err(e) => Outcome::Failed(e),
            }
        }
    }
}

/// Validates and stores each message, then acknowledges it. A store failure leaves it
/// unacknowledged: the broker delivers it again after a reconnect.
pub(crate) async fn intake(
    ctx: Ctx,
    mut rx: mpsc::Receiver<(Publish, Held)>,
    batch: mpsc::UnboundedSender<(Pending, Option<Held>)>,
) {
    while let Some((p, held)) = rx.recv().await {
        let (store, now) = (ctx.store.clone(), ctx.clock.now_utc_us());
        let (topic, payload) = (p.topic.clone(), p.payload.clone());
        let outcome =
            tokio::task::spawn_blocking(move || intake_one(&store, &topic, &payload, now)).await;
        let ack = match outcome {
            Ok(Outcome::New(pending)) => {
                ctx.telemetry.received();
                receipt(&ctx, &pending.device_id, &pending.message_id, false);
                let _ = batch.send((pending, Some(held)));
                true
            }
            Ok(Outcome::Duplicate(device, id)) => {
                ctx.telemetry.received();
                ctx.telemetry.duplicate(&id);
                receipt(&ctx, &device, &id, false);
                true
            }
            Ok(Outcome::Rejected(r)) => {
                ctx.telemetry.received();
                ctx.telemetry
                    .rejected(r.device_id.as_deref(), r.reason, &r.detail);
                if let (Some(device), Some(id)) = (&r.device_id, &r.message_id) {
                    receipt(&ctx, device, id, true);
                }
                true
            }
            Ok(Outcome::Status(device, status)) => {
                ctx.telemetry.device_status(&device, &status);
                let cameras = status
                    .cameras
                    .iter()
                    .map(|c| (device.clone(), c.id.clone()));
                crate::discovery::announce(&ctx, cameras.collect()).await;
                true
            }
            Ok(Outcome::Word(w)) => {
                let (device, id) = (w.device_id.clone(), w.message_id.clone());
                let applied = alerting::word(&ctx, w, now).await;
                if applied {
                    receipt(&ctx, &device, &id, false);
                }
                applied
            }
            Ok(Outcome::Failed(e)) => {
                tracing::error!(error = %e, topic = %p.topic, "could not store a message; it stays unacknowledged");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "intake task failed");
                false
            }
        };
        if ack {
            let _ = ctx.client.ack(&p).await;
        }
    }
}

/// The crop `id` of `device` is held now (stored, or refused for good): its receipt is due.
fn receipt(ctx: &Ctx, device: &str, id: &str, rejected: bool) {
    let _ = ctx.receipts.send(Receipted {
        device: device.to_string(),
        message_id: id.to_string(),
        rejected,
    });
}
