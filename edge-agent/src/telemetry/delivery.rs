//! Delivery and buffer-space events: crops delivered (on their receipt, or PUBACK under `delivery = "puback"`),
//! refused by the cloud, sent again for want of a receipt, and receipts that could not be read.

use prometheus::{IntCounterVec, IntGauge, Registry};

use super::{Telemetry, counter, gauge};
use crate::buffer::Stats;

/// The delivery metrics, registered with the agent's others.
pub(super) struct DeliveryMetrics {
    crops_uploaded: IntCounterVec,
    uploaded_bytes: IntCounterVec,
    refused: IntCounterVec,
    resent: IntCounterVec,
    bad_receipts: IntCounterVec,
    confirmed: IntCounterVec,
    words: IntCounterVec,
    bad_verdicts: IntCounterVec,
    awaiting: IntGauge,
    degraded: IntGauge,
    disk_full: IntCounterVec,
}

impl DeliveryMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        Self {
            crops_uploaded: counter(
                r,
                "crops_uploaded_total",
                "Crops delivered: named by the analyzer's receipt (or acknowledged by the broker \
                 under delivery = puback), then removed from the buffer",
                &[],
            ),
            uploaded_bytes: counter(
                r,
                "uploaded_bytes_total",
                "Payload bytes of the crops delivered",
                &[],
            ),
            refused: counter(
                r,
                "crops_refused_by_cloud_total",
                "Crops the analyzer refused for good (kept among its dead letters), removed",
                &[],
            ),
            resent: counter(
                r,
                "crops_resent_total",
                "Crops sent again because no receipt named them in time",
                &["reason"],
            ),
            bad_receipts: counter(
                r,
                "receipts_invalid_total",
                "Messages on the receipts topic that could not be read",
                &[],
            ),
            confirmed: counter(
                r,
                "tracks_confirmed_by_cloud_total",
                "Tracks the analyzer's verdicts named as confirmed (their crops then slow down)",
                &[],
            ),
            words: counter(
                r,
                "track_words_delivered_total",
                "Words about tracks (still in view, left) the analyzer holds, removed from the buffer",
                &[],
            ),
            bad_verdicts: counter(
                r,
                "verdicts_invalid_total",
                "Messages on the verdicts topic that could not be read",
                &[],
            ),
            awaiting: gauge(
                r,
                "crops_awaiting_receipt",
                "Crops the broker acknowledged whose receipt has not come yet",
            ),
            degraded: gauge(
                r,
                "buffer_degraded",
                "1 while the disk is full: the buffer runs below what it held, oldest crops first",
            ),
            disk_full: counter(
                r,
                "buffer_disk_full_total",
                "Times the buffer's disk filled up",
                &[],
            ),
        }
    }
}

impl Telemetry {
    /// A crop's journey ended: the cloud holds it.
    pub fn crop_uploaded(&self, key: u64, bytes: usize, stats: Stats, now_us: i64) {
        tracing::debug!(key, bytes, "crop delivered");
        let m = &self.delivery;
        m.crops_uploaded.with_label_values::<&str>(&[]).inc();
        m.uploaded_bytes
            .with_label_values::<&str>(&[])
            .inc_by(bytes as u64);
        self.buffer_stats(stats, now_us);
    }

    /// A word about a track (still here, ended) reached the cloud.
    pub fn track_word_delivered(&self, key: u64, bytes: usize) {
        tracing::debug!(key, bytes, "track word delivered");
        let m = &self.delivery.words;
        m.with_label_values::<&str>(&[]).inc();
    }

    /// The analyzer refused `n` crops for good (its dead letters say why).
    pub fn crops_refused_by_cloud(&self, n: usize) {
        tracing::warn!(
            crops = n,
            "the analyzer refused crops for good (see its dead letters); removed from the buffer"
        );
        let refused = self.delivery.refused.with_label_values::<&str>(&[]);
        refused.inc_by(n as u64);
    }

    /// `n` crops got no receipt within `timeout_s`: sent again.
    pub fn receipts_overdue(&self, n: usize, timeout_s: f64) {
        tracing::warn!(
            crops = n,
            timeout_s,
            "no receipt from the analyzer in time; sending these crops again"
        );
        let resent = self.delivery.resent.with_label_values(&["receipt_timeout"]);
        resent.inc_by(n as u64);
    }

    /// A message on the receipts topic could not be read.
    pub fn bad_receipt(&self, error: &dyn std::fmt::Display) {
        tracing::warn!(error = %error, "unreadable receipt ignored");
        self.delivery
            .bad_receipts
            .with_label_values::<&str>(&[])
            .inc();
    }

    /// The analyzer's verdicts named `n` tracks as confirmed.
    pub fn tracks_confirmed_by_cloud(&self, n: usize) {
        tracing::debug!(tracks = n, "the cloud confirmed tracks");
        let m = &self.delivery.confirmed;
        m.with_label_values::<&str>(&[]).inc_by(n as u64);
    }

    /// A message on the verdicts topic could not be read.
    pub fn bad_verdict(&self, error: &dyn std::fmt::Display) {
        tracing::warn!(error = %error, "unreadable verdicts ignored");
        self.delivery
            .bad_verdicts
            .with_label_values::<&str>(&[])
            .inc();
    }

    /// The buffer's disk filled up: degraded mode (logged once per episode).
    pub fn disk_full(&self, held: Stats, free_bytes: Option<u64>) {
        tracing::error!(
            buffered_bytes = held.bytes,
            free_bytes,
            "the buffer's disk is full: keeping the newest crops within what the disk holds, \
             delivering what is buffered; free space to resume"
        );
        self.delivery.degraded.set(1);
        self.delivery.disk_full.with_label_values::<&str>(&[]).inc();
    }

    /// The disk has room again: the buffer is back to its configured bound.
    pub fn disk_space_back(&self, free_bytes: Option<u64>) {
        tracing::info!(
            free_bytes,
            "the buffer's disk has room again; buffering as configured"
        );
        self.delivery.degraded.set(0);
    }

    /// Crops awaiting their receipt now.
    pub fn awaiting_receipt(&self, n: usize) {
        self.delivery
            .awaiting
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}
