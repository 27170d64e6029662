//! The PostgreSQL schema: numbered migrations tracked in `cascade_schema`, applied under a
//! session advisory lock so replicas starting together migrate once.

use postgres::Client;

use crate::store::StoreError;

/// The advisory lock key held while migrating ("casc").
const MIGRATION_LOCK: i64 = 0x6361_7363;

/// Each entry moves the schema one version up; never edit a released one, append. Version 1 is
/// SQLite's versions 1 and 2 plus what replicas need (claims, ended tracks, the open-alert index).
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE messages (
        message_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        sequence BIGINT NOT NULL,
        track_id BIGINT NOT NULL,
        capture_time_us BIGINT NOT NULL,
        upload_time_us BIGINT NOT NULL,
        received_us BIGINT NOT NULL,
        edge_score DOUBLE PRECISION NOT NULL,
        edge_model TEXT NOT NULL,
        frame_width BIGINT NOT NULL,
        frame_height BIGINT NOT NULL,
        box TEXT NOT NULL,
        region TEXT NOT NULL,
        status TEXT NOT NULL,
        cloud_score DOUBLE PRECISION,
        decided_us BIGINT,
        jpeg BYTEA,
        claimed_by TEXT NOT NULL,
        claimed_us BIGINT NOT NULL
     );
     CREATE INDEX messages_pending ON messages(claimed_us) WHERE status = 'pending';
     CREATE INDEX messages_received ON messages(received_us);
     CREATE TABLE alerts (
        alert_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        track_id BIGINT NOT NULL,
        started_us BIGINT NOT NULL,
        last_seen_us BIGINT NOT NULL,
        ended_us BIGINT,
        crops BIGINT NOT NULL,
        last_event TEXT NOT NULL
     );
     CREATE INDEX alerts_started ON alerts(started_us);
     CREATE UNIQUE INDEX alerts_open_track ON alerts(device_id, camera_id, track_id)
        WHERE ended_us IS NULL;
     CREATE TABLE ended_tracks (
        device_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        track_id BIGINT NOT NULL,
        ended_us BIGINT NOT NULL,
        alerted BOOLEAN NOT NULL,
        PRIMARY KEY (device_id, camera_id, track_id)
     );
     CREATE INDEX ended_tracks_at ON ended_tracks(ended_us);
     CREATE TABLE alert_events (
        seq BIGSERIAL PRIMARY KEY,
        alert_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload TEXT NOT NULL,
        published BOOLEAN NOT NULL DEFAULT FALSE,
        claimed_by TEXT NOT NULL,
        claimed_us BIGINT NOT NULL
     );
     CREATE INDEX alert_events_unpublished ON alert_events(claimed_us) WHERE NOT published;
     CREATE TABLE dead_letters (
        id BIGSERIAL PRIMARY KEY,
        received_us BIGINT NOT NULL,
        topic TEXT NOT NULL,
        device_id TEXT,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        payload BYTEA NOT NULL
     );
     CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        last_seen_us BIGINT NOT NULL,
        last_status TEXT,
        crops BIGINT NOT NULL DEFAULT 0,
        alerts BIGINT NOT NULL DEFAULT 0,
        cameras TEXT
     );",
    // 2: what the device runs (agent version, profile, models), from its status message (JSON).
    "ALTER TABLE devices ADD COLUMN agent TEXT;",
];

/// Brings the schema up to date, one transaction per migration.
pub(super) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let done = migrate_locked(client);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    done?;
    unlocked?;
    Ok(())
}

fn migrate_locked(client: &mut Client) -> Result<(), StoreError> {
    client.batch_execute("CREATE TABLE IF NOT EXISTS cascade_schema (version INTEGER NOT NULL)")?;
    let current = version(client)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let mut tx = client.transaction()?;
        tx.batch_execute(sql)?;
        let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute("DELETE FROM cascade_schema", &[])?;
        tx.execute("INSERT INTO cascade_schema (version) VALUES ($1)", &[&v])?;
        tx.commit()?;
        tracing::info!(version = i + 1, "store schema migrated (PostgreSQL)");
    }
    Ok(())
}

/// The schema's version (0 before the first migration).
pub(super) fn version(client: &mut Client) -> Result<usize, StoreError> {
    let row = client.query_opt("SELECT max(version) FROM cascade_schema", &[])?;
    let v: Option<i32> = row.and_then(|r| r.get(0));
    Ok(v.map_or(0, |v| usize::try_from(v).unwrap_or(0)))
}
