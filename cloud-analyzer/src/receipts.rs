//! Receipts: the analyzer tells each device which of its crops it holds: stored (or stored
//! before: a duplicate, whose first receipt may have been lost) or refused for good (kept among
//! the dead letters). Batched per device for `LINGER`, published QoS 1 on
//! `cascade/v1/{device}/receipts`; a device deletes a crop only on its receipt, so a receipt is
//! sent only after the store has committed the crop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cascade_shared::receipt::{MAX_RECEIPT_IDS, Receipt};
use cascade_shared::shutdown::Shutdown;
use cascade_shared::topics;
use rumqttc::{AsyncClient, QoS};
use tokio::sync::mpsc;

use crate::telemetry::Telemetry;

/// How long ids wait for others of their device before the receipt goes out.
pub const LINGER: Duration = Duration::from_millis(50);

/// One crop the analyzer now holds (or refused for good).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipted {
    pub device: String,
    pub message_id: String,
    pub rejected: bool,
}

/// Receipts being gathered, per device. I/O-free.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: BTreeMap<String, Receipt>,
}

impl Outbox {
    /// Adds one; `true` when its device's receipt is full and should go out now.
    pub fn push(&mut self, r: Receipted) -> bool {
        let receipt = self.pending.entry(r.device).or_default();
        if r.rejected {
            receipt.rejected.push(r.message_id);
        } else {
            receipt.stored.push(r.message_id);
        }
        receipt.len() >= MAX_RECEIPT_IDS
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Every receipt gathered, as (topic, payload, crops named), each within the receipt limits.
    pub fn drain(&mut self) -> Vec<(String, Vec<u8>, usize)> {
        let pending = std::mem::take(&mut self.pending);
        pending
            .into_iter()
            .flat_map(|(device, r)| {
                let topic = topics::receipts(&device);
                r.split()
                    .into_iter()
                    .map(move |part| (topic.clone(), part.encode(), part.len()))
            })
            .collect()
    }
}

/// Gathers receipts from `rx` and publishes them until shutdown (then sends what is gathered).
pub async fn run(
    client: AsyncClient,
    mut rx: mpsc::UnboundedReceiver<Receipted>,
    telemetry: Arc<Telemetry>,
    shutdown: Shutdown,
) {
    let mut outbox = Outbox::default();
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => break,
            r = rx.recv() => r,
        };
        let Some(first) = first else { break };
        let mut full = outbox.push(first);
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        while !full {
            tokio::select! {
                () = &mut linger => break,
                r = rx.recv() => match r {
                    Some(r) => full = outbox.push(r),
                    None => break,
                },
            }
        }
        send(&client, &mut outbox, &telemetry).await;
    }
    while let Ok(r) = rx.try_recv() {
        outbox.push(r);
    }
    send(&client, &mut outbox, &telemetry).await;
}

async fn send(client: &AsyncClient, outbox: &mut Outbox, telemetry: &Telemetry) {
    for (topic, payload, crops) in outbox.drain() {
        let bytes = payload.len();
        match client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
        {
            Ok(()) => telemetry.receipt_sent(crops, bytes),
            // The client is gone (shutting down): the devices send these crops again.
            Err(e) => tracing::debug!(error = %e, crops, "receipt not sent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(device: &str, id: &str, rejected: bool) -> Receipted {
        Receipted {
            device: device.into(),
            message_id: id.into(),
            rejected,
        }
    }

    #[test]
    fn receipts_are_gathered_per_device() {
        let mut o = Outbox::default();
        assert!(!o.push(r("a", "1", false)));
        o.push(r("b", "2", false));
        o.push(r("a", "3", true));
        let out = o.drain();
        assert!(o.is_empty());
        let a = Receipt::decode(&out[0].1).expect("decodes");
        assert_eq!(out[0].0, "cascade/v1/a/receipts");
        assert_eq!((a.stored, a.rejected), (vec!["1".into()], vec!["3".into()]));
        assert_eq!((out[1].0.as_str(), out[1].2), ("cascade/v1/b/receipts", 1));
    }

    #[test]
    fn a_full_receipt_says_so_and_goes_out_in_parts_within_the_limits() {
        let mut o = Outbox::default();
        let full: Vec<bool> = (0..MAX_RECEIPT_IDS + 1)
            .map(|i| o.push(r("a", &format!("{i:036}"), false)))
            .collect();
        assert_eq!(full.iter().position(|f| *f), Some(MAX_RECEIPT_IDS - 1));
        let out = o.drain();
        let named: usize = out.iter().map(|(_, _, n)| n).sum();
        assert_eq!(named, MAX_RECEIPT_IDS + 1);
        assert!(out.iter().all(|(_, p, _)| Receipt::decode(p).is_ok()));
    }
}
