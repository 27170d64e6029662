//! The SQLite schema: numbered migrations tracked in `PRAGMA user_version`.

use rusqlite::Connection;

use crate::store::StoreError;

/// Each entry moves the schema one version up; never edit a released one, append.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE messages (
        message_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        track_id INTEGER NOT NULL,
        capture_time_us INTEGER NOT NULL,
        upload_time_us INTEGER NOT NULL,
        received_us INTEGER NOT NULL,
        edge_score REAL NOT NULL,
        edge_model TEXT NOT NULL,
        frame_width INTEGER NOT NULL,
        frame_height INTEGER NOT NULL,
        box TEXT NOT NULL,
        region TEXT NOT NULL,
        status TEXT NOT NULL,
        cloud_score REAL,
        decided_us INTEGER,
        jpeg BLOB
     );
     CREATE INDEX messages_pending ON messages(status) WHERE status = 'pending';
     CREATE INDEX messages_received ON messages(received_us);
     CREATE TABLE alerts (
        alert_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        track_id INTEGER NOT NULL,
        started_us INTEGER NOT NULL,
        last_seen_us INTEGER NOT NULL,
        ended_us INTEGER,
        crops INTEGER NOT NULL,
        last_event TEXT NOT NULL
     );
     CREATE INDEX alerts_started ON alerts(started_us);
     CREATE TABLE alert_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload TEXT NOT NULL,
        published INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_us INTEGER NOT NULL,
        topic TEXT NOT NULL,
        device_id TEXT,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        payload BLOB NOT NULL
     );
     CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        last_seen_us INTEGER NOT NULL,
        last_status TEXT,
        crops INTEGER NOT NULL DEFAULT 0,
        alerts INTEGER NOT NULL DEFAULT 0
     );",
    // 2: each device's cameras and their states, from its status message (JSON).
    "ALTER TABLE devices ADD COLUMN cameras TEXT;",
    // 3: what the device runs (agent version, profile, models), from its status message (JSON).
    "ALTER TABLE devices ADD COLUMN agent TEXT;",
];

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "store schema migrated");
    }
    Ok(())
}
