//! The PostgreSQL store's plain reads and writes: crops in, dead letters, devices, the API's
//! queries and retention.

use std::time::Duration;

use cascade_shared::clock::micros;
use cascade_shared::wire::Crop;
use postgres::Row;
use postgres::types::ToSql;

use super::{PgStore, big, now_us};
use crate::alert::{Active, AlertEvent};
use crate::store::{
    AlertQuery, AlertRow, DeviceRow, Inserted, StoreError, agent_from, cameras_from, f4,
};

const ALERT_COLUMNS: &str = "alert_id, device_id, camera_id, track_id, started_us, last_seen_us, \
                             ended_us, crops, last_event";

impl PgStore {
    /// Stores a valid crop once (claimed by this replica until decided); a message id seen
    /// before, by any replica, is a duplicate.
    pub fn insert_crop(
        &self,
        crop: &Crop,
        upload_time_us: i64,
        received_us: i64,
    ) -> Result<Inserted, StoreError> {
        let (bbox, region) = (
            serde_json::to_string(&f4(crop.r#box))?,
            serde_json::to_string(&f4(crop.crop_region))?,
        );
        let model = format!("{} {}", crop.model_name, crop.model_version);
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        let params: [&(dyn ToSql + Sync); 17] = [
            &crop.message_id,
            &crop.device_id,
            &crop.camera_id,
            &big(crop.sequence),
            &big(crop.track_id),
            &crop.capture_time_us,
            &upload_time_us,
            &received_us,
            &f64::from(crop.score),
            &model,
            &i64::from(crop.frame_width),
            &i64::from(crop.frame_height),
            &bbox,
            &region,
            &crop.jpeg,
            &self.replica,
            &now_us(),
        ];
        let n = tx.execute(
            "INSERT INTO messages (message_id, device_id, camera_id, sequence, track_id, capture_time_us,
                upload_time_us, received_us, edge_score, edge_model, frame_width, frame_height, box, region,
                status, jpeg, claimed_by, claimed_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending', $15, $16, $17)
             ON CONFLICT (message_id) DO NOTHING",
            &params,
        )?;
        if n == 1 {
            tx.execute(
                "INSERT INTO devices (device_id, last_seen_us, crops) VALUES ($1, $2, 1)
                 ON CONFLICT (device_id) DO UPDATE SET
                    last_seen_us = GREATEST(devices.last_seen_us, EXCLUDED.last_seen_us),
                    crops = devices.crops + 1",
                &[&crop.device_id, &received_us],
            )?;
        }
        tx.commit()?;
        Ok(if n == 1 {
            Inserted::New
        } else {
            Inserted::Duplicate
        })
    }

    pub fn mark_published(&self, seq: i64) -> Result<(), StoreError> {
        self.client()?.execute(
            "UPDATE alert_events SET published = TRUE WHERE seq = $1",
            &[&seq],
        )?;
        Ok(())
    }

    /// Alerts still running (every replica's).
    pub fn active_alerts(&self) -> Result<Vec<Active>, StoreError> {
        let rows = self.client()?.query(
            "SELECT alert_id, started_us, last_seen_us, crops, last_event FROM alerts
             WHERE ended_us IS NULL",
            &[],
        )?;
        rows.iter().map(active_row).collect()
    }

    pub fn dead_letter(
        &self,
        received_us: i64,
        topic: &str,
        device_id: Option<&str>,
        reason: &str,
        detail: &str,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        self.client()?.execute(
            "INSERT INTO dead_letters (received_us, topic, device_id, reason, detail, payload)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&received_us, &topic, &device_id, &reason, &detail, &payload],
        )?;
        Ok(())
    }

    pub fn dead_letters(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows = self.client()?.query(
            "SELECT reason, device_id FROM dead_letters ORDER BY id",
            &[],
        )?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// A device's status message (`cameras` and `agent` as JSON; `None` keeps what is stored).
    pub fn device_status(
        &self,
        device_id: &str,
        state: &str,
        cameras: Option<String>,
        agent: Option<String>,
        now_us: i64,
    ) -> Result<(), StoreError> {
        self.client()?.execute(
            "INSERT INTO devices (device_id, last_seen_us, last_status, cameras, agent)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (device_id) DO UPDATE SET
                last_seen_us = GREATEST(devices.last_seen_us, EXCLUDED.last_seen_us),
                last_status = EXCLUDED.last_status,
                cameras = COALESCE(EXCLUDED.cameras, devices.cameras),
                agent = COALESCE(EXCLUDED.agent, devices.agent)",
            &[&device_id, &now_us, &state, &cameras, &agent],
        )?;
        Ok(())
    }

    pub fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRow>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts
             WHERE ($1::text IS NULL OR device_id = $1) AND ($2::text IS NULL OR camera_id = $2)
               AND ($3::bigint IS NULL OR started_us >= $3) AND ($4::bigint IS NULL OR started_us < $4)
             ORDER BY started_us DESC, alert_id LIMIT $5 OFFSET $6"
        );
        let rows = self.client()?.query(
            &sql,
            &[
                &q.device_id,
                &q.camera_id,
                &q.since_us,
                &q.until_us,
                &i64::from(q.limit),
                &i64::from(q.offset),
            ],
        )?;
        rows.iter().map(alert_row).collect()
    }

    pub fn alert(&self, alert_id: &str) -> Result<Option<AlertRow>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_id = $1");
        let row = self.client()?.query_opt(&sql, &[&alert_id])?;
        row.as_ref().map(alert_row).transpose()
    }

    pub fn alert_events(&self, alert_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.client()?.query(
            "SELECT payload FROM alert_events WHERE alert_id = $1 ORDER BY seq",
            &[&alert_id],
        )?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    pub fn alert_cameras(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .client()?
            .query("SELECT DISTINCT device_id, camera_id FROM alerts", &[])?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, ::postgres::Error>>()?)
    }

    pub fn crop_jpeg(&self, message_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self.client()?.query_opt(
            "SELECT jpeg FROM messages WHERE message_id = $1 AND jpeg IS NOT NULL",
            &[&message_id],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Drops a crop's JPEG; false when there was none.
    pub fn erase_crop(&self, message_id: &str) -> Result<bool, StoreError> {
        let n = self.client()?.execute(
            "UPDATE messages SET jpeg = NULL WHERE message_id = $1 AND jpeg IS NOT NULL",
            &[&message_id],
        )?;
        Ok(n > 0)
    }

    pub fn devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        let rows = self.client()?.query(
            "SELECT device_id, last_seen_us, last_status, crops, alerts, cameras, agent FROM devices
             ORDER BY device_id",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(DeviceRow {
                    device_id: r.try_get(0)?,
                    last_seen_us: r.try_get(1)?,
                    last_status: r.try_get(2)?,
                    crops: r.try_get::<_, i64>(3)?.max(0) as u64,
                    alerts: r.try_get::<_, i64>(4)?.max(0) as u64,
                    cameras: cameras_from(r.try_get(5)?),
                    agent: agent_from(r.try_get(6)?),
                })
            })
            .collect()
    }

    /// Counts of messages by status.
    pub fn message_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self.client()?.query(
            "SELECT status, COUNT(*) FROM messages GROUP BY status ORDER BY status",
            &[],
        )?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)?.max(0) as u64)))
            .collect()
    }

    /// Drops crops (JPEG) and dead letters older than `retention`; message ids stay for
    /// de-duplication until twice the retention.
    pub fn apply_retention(&self, now_us: i64, retention: Duration) -> Result<usize, StoreError> {
        let retention_us = micros(retention);
        let cutoff = now_us.saturating_sub(retention_us);
        let ids_cutoff = now_us.saturating_sub(retention_us.saturating_mul(2));
        let mut c = self.client()?;
        let mut n = c.execute(
            "UPDATE messages SET jpeg = NULL WHERE received_us < $1 AND jpeg IS NOT NULL",
            &[&cutoff],
        )?;
        n += c.execute(
            "DELETE FROM messages WHERE received_us < $1",
            &[&ids_cutoff],
        )?;
        n += c.execute(
            "DELETE FROM dead_letters WHERE received_us < $1",
            &[&cutoff],
        )?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

/// An open alert as the engine keeps it.
pub(super) fn active_row(r: &Row) -> Result<Active, StoreError> {
    let event: String = r.try_get(4)?;
    let best: AlertEvent = serde_json::from_str(&event)?;
    Ok(Active {
        alert_id: r.try_get(0)?,
        started_us: r.try_get(1)?,
        last_seen_us: r.try_get(2)?,
        crops: u32::try_from(r.try_get::<_, i64>(3)?).unwrap_or(u32::MAX),
        best,
    })
}

fn alert_row(r: &Row) -> Result<AlertRow, StoreError> {
    let event: String = r.try_get(8)?;
    Ok(AlertRow {
        alert_id: r.try_get(0)?,
        device_id: r.try_get(1)?,
        camera_id: r.try_get(2)?,
        track_id: r.try_get::<_, i64>(3)? as u64,
        started_us: r.try_get(4)?,
        last_seen_us: r.try_get(5)?,
        ended_us: r.try_get(6)?,
        crops: u32::try_from(r.try_get::<_, i64>(7)?).unwrap_or(u32::MAX),
        last_event: serde_json::from_str(&event).unwrap_or(serde_json::Value::Null),
    })
}
