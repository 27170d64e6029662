//! Claims: each crop stored but not decided and each alert event committed but not published
//! belongs to the replica that stored or committed it (`claimed_by`, `claimed_us`). A replica
//! takes over, with `FOR UPDATE SKIP LOCKED` (two replicas never take the same row at once),
//! its own rows at start-up and any row whose claim is older than the lease: a replica SIGKILLed
//! mid-run loses nothing. Taking a crop over twice costs a second inference, never a second fold
//! (its verdict is recorded only while it is still pending).

use postgres::Row;

use super::{PgStore, now_us};
use crate::store::{Event, Pending, StoreError};

/// The most rows one claim takes (the rest wait for the next one).
const CLAIM_BATCH: i64 = 512;

impl PgStore {
    /// Crops not yet decided that this replica stored (before a restart) or whose replica's lease
    /// ran out, claimed for this one.
    pub fn pending(&self) -> Result<Vec<Pending>, StoreError> {
        self.claim_crops(true)
    }

    /// Events not yet published that this replica committed (before a restart) or whose
    /// replica's lease ran out, claimed for this one.
    pub fn unpublished(&self) -> Result<Vec<Event>, StoreError> {
        self.claim_events(true)
    }

    /// What replicas that went silent left behind: crops to decide and events to publish whose
    /// lease ran out (never this replica's own, which it is still working on).
    pub fn orphans(&self) -> Result<(Vec<Pending>, Vec<Event>), StoreError> {
        Ok((self.claim_crops(false)?, self.claim_events(false)?))
    }

    fn claim_crops(&self, own: bool) -> Result<Vec<Pending>, StoreError> {
        let now = now_us();
        let rows = self.client()?.query(
            "UPDATE messages SET claimed_by = $1, claimed_us = $2
             WHERE message_id IN (
                SELECT message_id FROM messages
                WHERE status = 'pending' AND (($4::boolean AND claimed_by = $1::text) OR claimed_us < $2::bigint - $3::bigint)
                ORDER BY received_us LIMIT $5 FOR UPDATE SKIP LOCKED)
             RETURNING message_id, device_id, camera_id, track_id, capture_time_us, upload_time_us,
                edge_score, box, region, jpeg, received_us",
            &[&self.replica, &now, &self.lease_us, &own, &CLAIM_BATCH],
        )?;
        let mut out = rows
            .iter()
            .map(|r| Ok((r.try_get::<_, i64>(10)?, pending_row(r)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|(received, _)| *received);
        Ok(out.into_iter().map(|(_, p)| p).collect())
    }

    fn claim_events(&self, own: bool) -> Result<Vec<Event>, StoreError> {
        let now = now_us();
        let rows = self.client()?.query(
            "UPDATE alert_events SET claimed_by = $1, claimed_us = $2
             WHERE seq IN (
                SELECT seq FROM alert_events
                WHERE NOT published AND (($4::boolean AND claimed_by = $1::text) OR claimed_us < $2::bigint - $3::bigint)
                ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED)
             RETURNING seq, topic, payload",
            &[&self.replica, &now, &self.lease_us, &own, &CLAIM_BATCH],
        )?;
        let mut out = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<Event>, StoreError>>()?;
        out.sort_by_key(|e| e.0);
        Ok(out)
    }
}

fn pending_row(r: &Row) -> Result<Pending, StoreError> {
    let bbox: String = r.try_get(7)?;
    let region: String = r.try_get(8)?;
    Ok(Pending {
        message_id: r.try_get(0)?,
        device_id: r.try_get(1)?,
        camera_id: r.try_get(2)?,
        track_id: r.try_get::<_, i64>(3)? as u64,
        capture_time_us: r.try_get(4)?,
        upload_time_us: r.try_get(5)?,
        edge_score: r.try_get::<_, f64>(6)? as f32,
        bbox: serde_json::from_str(&bbox)?,
        region: serde_json::from_str(&region)?,
        jpeg: r.try_get(9)?,
    })
}
