//! The SQLite store (embedded, WAL, `synchronous = FULL`): one analyzer. Messages seen (the unique
//! message id is the de-duplication key, across restarts), their crops (JPEG in the row, so a crop
//! and its message commit together), alerts and their events, dead letters and devices.
//! Schema migrations are numbered and tracked in `PRAGMA user_version`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cascade_shared::clock::micros;
use cascade_shared::wire::Crop;
use rusqlite::{Connection, OptionalExtension, params};

mod schema;

#[cfg(test)]
pub(super) use schema::MIGRATIONS;
use schema::migrate;

use super::{
    AlertQuery, AlertRow, DeviceRow, Event, Inserted, Pending, StoreError, Verdict, agent_from,
    cameras_from, f4,
};
use crate::alert::{Active, AlertEvent, Changes};

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        // The store holds every crop's JPEG: private to the service (0700 directory, 0600 file).
        cascade_shared::private::dir(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("cascade.sqlite");
        let mut conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        cascade_shared::private::file(&path).map_err(|source| StoreError::CreateDir {
            path: path.clone(),
            source,
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a write transaction can start (for `/readyz`).
    pub fn writable(&self) -> bool {
        let conn = self.lock();
        conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok()
    }

    pub fn schema_version(&self) -> Result<usize, StoreError> {
        Ok(self
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize)
    }

    /// Stores a valid crop once; a message id seen before is a duplicate.
    pub fn insert_crop(
        &self,
        crop: &Crop,
        upload_time_us: i64,
        received_us: i64,
    ) -> Result<Inserted, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO messages (message_id, device_id, camera_id, sequence, track_id, capture_time_us,
                upload_time_us, received_us, edge_score, edge_model, frame_width, frame_height, box, region, status, jpeg)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'pending', ?15)",
            params![
                crop.message_id,
                crop.device_id,
                crop.camera_id,
                crop.sequence as i64,
                crop.track_id as i64,
                crop.capture_time_us,
                upload_time_us,
                received_us,
                f64::from(crop.score),
                format!("{} {}", crop.model_name, crop.model_version),
                crop.frame_width,
                crop.frame_height,
                serde_json::to_string(&f4(crop.r#box))?,
                serde_json::to_string(&f4(crop.crop_region))?,
                crop.jpeg,
            ],
        )?;
        if n == 1 {
            tx.execute(
                "INSERT INTO devices (device_id, last_seen_us, crops) VALUES (?1, ?2, 1)
                 ON CONFLICT(device_id) DO UPDATE SET last_seen_us = MAX(last_seen_us, ?2), crops = crops + 1",
                params![crop.device_id, received_us],
            )?;
        }
        tx.commit()?;
        Ok(if n == 1 {
            Inserted::New
        } else {
            Inserted::Duplicate
        })
    }

    /// Crops stored but not yet decided (after a restart, these are inferred again).
    pub fn pending(&self) -> Result<Vec<Pending>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT message_id, device_id, camera_id, track_id, capture_time_us, upload_time_us, edge_score, box, region, jpeg
             FROM messages WHERE status = 'pending' ORDER BY received_us",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, f64>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Vec<u8>>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                message_id,
                device_id,
                camera_id,
                track,
                capture,
                upload,
                score,
                bbox,
                region,
                jpeg,
            ) = row?;
            out.push(Pending {
                message_id,
                device_id,
                camera_id,
                track_id: track as u64,
                capture_time_us: capture,
                upload_time_us: upload,
                edge_score: score as f32,
                bbox: serde_json::from_str(&bbox)?,
                region: serde_json::from_str(&region)?,
                jpeg,
            });
        }
        Ok(out)
    }

    /// Records a verdict and the alert changes it caused, in one transaction. Returns the events
    /// to publish as `(seq, topic, payload)`.
    pub fn decide(
        &self,
        message_id: &str,
        verdict: Verdict,
        decided_us: i64,
        changes: &Changes,
    ) -> Result<Vec<Event>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let status = if verdict.confirmed {
            "confirmed"
        } else {
            "rejected"
        };
        tx.execute(
            "UPDATE messages SET status = ?2, cloud_score = ?3, decided_us = ?4 WHERE message_id = ?1",
            params![message_id, status, f64::from(verdict.cloud_score), decided_us],
        )?;
        let events = record_changes(&tx, changes)?;
        tx.commit()?;
        Ok(events)
    }

    /// Records alert changes not tied to a crop (alerts ending).
    pub fn record(&self, changes: &Changes) -> Result<Vec<Event>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let events = record_changes(&tx, changes)?;
        tx.commit()?;
        Ok(events)
    }

    pub fn mark_published(&self, seq: i64) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE alert_events SET published = 1 WHERE seq = ?1",
            [seq],
        )?;
        Ok(())
    }

    /// Events committed but not yet handed to the broker (after a crash).
    pub fn unpublished(&self) -> Result<Vec<Event>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT seq, topic, payload FROM alert_events WHERE published = 0 ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Alerts still running, to restore the alert engine after a restart.
    pub fn active_alerts(&self) -> Result<Vec<Active>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT alert_id, started_us, last_seen_us, crops, last_event FROM alerts WHERE ended_us IS NULL")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (alert_id, started_us, last_seen_us, crops, event) = row?;
            let best: AlertEvent = serde_json::from_str(&event)?;
            out.push(Active {
                alert_id,
                started_us,
                last_seen_us,
                crops: crops as u32,
                best,
            });
        }
        Ok(out)
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
        self.lock().execute(
            "INSERT INTO dead_letters (received_us, topic, device_id, reason, detail, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                received_us,
                topic,
                device_id,
                reason,
                detail,
                payload
            ],
        )?;
        Ok(())
    }

    pub fn dead_letters(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT reason, device_id FROM dead_letters ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
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
        self.lock().execute(
            "INSERT INTO devices (device_id, last_seen_us, last_status, cameras, agent) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(device_id) DO UPDATE SET last_seen_us = MAX(last_seen_us, ?2), last_status = ?3,
                cameras = COALESCE(?4, cameras), agent = COALESCE(?5, agent)",
            params![device_id, now_us, state, cameras, agent],
        )?;
        Ok(())
    }

    pub fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT alert_id, device_id, camera_id, track_id, started_us, last_seen_us, ended_us, crops, last_event FROM alerts
             WHERE (?1 IS NULL OR device_id = ?1) AND (?2 IS NULL OR camera_id = ?2)
               AND (?3 IS NULL OR started_us >= ?3) AND (?4 IS NULL OR started_us < ?4)
             ORDER BY started_us DESC, alert_id LIMIT ?5 OFFSET ?6",
        )?;
        let rows = stmt.query_map(
            params![
                q.device_id,
                q.camera_id,
                q.since_us,
                q.until_us,
                q.limit,
                q.offset
            ],
            alert_row,
        )?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    pub fn alert(&self, alert_id: &str) -> Result<Option<AlertRow>, StoreError> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT alert_id, device_id, camera_id, track_id, started_us, last_seen_us, ended_us, crops, last_event FROM alerts WHERE alert_id = ?1",
                [alert_id],
                alert_row,
            )
            .optional()?)
    }

    pub fn alert_events(&self, alert_id: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT payload FROM alert_events WHERE alert_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([alert_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn alert_cameras(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT DISTINCT device_id, camera_id FROM alerts")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn crop_jpeg(&self, message_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT jpeg FROM messages WHERE message_id = ?1 AND jpeg IS NOT NULL",
                [message_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Drops a crop's JPEG; false when there was none.
    pub fn erase_crop(&self, message_id: &str) -> Result<bool, StoreError> {
        let n = self.lock().execute(
            "UPDATE messages SET jpeg = NULL WHERE message_id = ?1 AND jpeg IS NOT NULL",
            [message_id],
        )?;
        Ok(n > 0)
    }

    pub fn devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT device_id, last_seen_us, last_status, crops, alerts, cameras, agent FROM devices ORDER BY device_id")?;
        let rows = stmt.query_map([], |r| {
            let cameras: Option<String> = r.get(5)?;
            let agent: Option<String> = r.get(6)?;
            Ok(DeviceRow {
                device_id: r.get(0)?,
                last_seen_us: r.get(1)?,
                last_status: r.get(2)?,
                cameras: cameras_from(cameras),
                agent: agent_from(agent),
                crops: r.get::<_, i64>(3)? as u64,
                alerts: r.get::<_, i64>(4)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Counts of messages by status (for tests and the summary).
    pub fn message_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT status, COUNT(*) FROM messages GROUP BY status ORDER BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Drops crops (JPEG) and dead letters older than `retention`; message ids stay for
    /// de-duplication until twice the retention.
    pub fn apply_retention(&self, now_us: i64, retention: Duration) -> Result<usize, StoreError> {
        let retention_us = micros(retention);
        let conn = self.lock();
        let cutoff = now_us.saturating_sub(retention_us);
        let mut n = conn.execute(
            "UPDATE messages SET jpeg = NULL WHERE received_us < ?1 AND jpeg IS NOT NULL",
            [cutoff],
        )?;
        n += conn.execute(
            "DELETE FROM messages WHERE received_us < ?1",
            [now_us.saturating_sub(retention_us.saturating_mul(2))],
        )?;
        n += conn.execute("DELETE FROM dead_letters WHERE received_us < ?1", [cutoff])?;
        Ok(n)
    }
}

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    let event: String = r.get(8)?;
    Ok(AlertRow {
        alert_id: r.get(0)?,
        device_id: r.get(1)?,
        camera_id: r.get(2)?,
        track_id: r.get::<_, i64>(3)? as u64,
        started_us: r.get(4)?,
        last_seen_us: r.get(5)?,
        ended_us: r.get(6)?,
        crops: r.get::<_, i64>(7)? as u32,
        last_event: serde_json::from_str(&event).unwrap_or(serde_json::Value::Null),
    })
}

fn record_changes(
    tx: &rusqlite::Transaction<'_>,
    changes: &Changes,
) -> Result<Vec<Event>, StoreError> {
    use crate::alert::EventType;
    let mut out = Vec::new();
    for e in &changes.events {
        let payload = serde_json::to_string(e)?;
        match e.kind {
            EventType::New => {
                tx.execute(
                    "INSERT INTO alerts (alert_id, device_id, camera_id, track_id, started_us, last_seen_us, crops, last_event)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![e.alert_id, e.device_id, e.camera_id, e.track_id as i64, e.started_us, e.cloud_decision_time_us, e.crops, payload],
                )?;
                tx.execute(
                    "UPDATE devices SET alerts = alerts + 1 WHERE device_id = ?1",
                    [&e.device_id],
                )?;
            }
            EventType::Update => {
                tx.execute(
                    "UPDATE alerts SET last_seen_us = ?2, crops = ?3, last_event = ?4 WHERE alert_id = ?1",
                    params![e.alert_id, e.cloud_decision_time_us, e.crops, payload],
                )?;
            }
            EventType::End => {
                tx.execute(
                    "UPDATE alerts SET ended_us = ?2 WHERE alert_id = ?1",
                    params![e.alert_id, e.cloud_decision_time_us],
                )?;
            }
        }
        let topic = cascade_shared::topics::alerts(&e.device_id, &e.camera_id);
        tx.execute(
            "INSERT INTO alert_events (alert_id, topic, payload) VALUES (?1, ?2, ?3)",
            params![e.alert_id, topic, payload],
        )?;
        out.push((tx.last_insert_rowid(), topic, payload));
    }
    Ok(out)
}
