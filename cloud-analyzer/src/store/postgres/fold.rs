//! Alert folding in the database, so that replicas agree: each step (a confirmed crop, a word
//! about a track, the cooldown's expiry) runs in one transaction that
//!
//! 1. takes the camera's advisory lock (`pg_advisory_xact_lock`, released at commit): steps of
//!    one camera run one at a time across replicas, steps of different cameras in parallel;
//! 2. records the crop's verdict only while the crop is still pending (a crop decided by another
//!    replica folds nothing);
//! 3. loads the camera's open alerts and the track's `ended` mark into an [`AlertEngine`] (the
//!    same I/O-free engine SQLite's single analyzer keeps in memory), steps it, and writes back
//!    what changed: alerts, the track's mark, `seen` times and the events (the outbox).
//!
//! The unique index on a track's open alert is the backstop: a second open alert for a track
//! cannot commit.

use postgres::Transaction;

use super::queries::active_row;
use super::{PgStore, big};
use crate::alert::{AlertEngine, Changes, ENDED_MEMORY_US, EventType, Key, Step};
use crate::store::{Event, StoreError, Verdict};

impl PgStore {
    /// Runs `step` (with a crop's verdict when given) in one transaction per camera; returns the
    /// events to publish and what changed.
    pub fn fold(
        &self,
        step: &Step,
        decided: Option<(&str, Verdict)>,
        now_us: i64,
    ) -> Result<(Vec<Event>, Changes), StoreError> {
        if matches!(step, Step::Expire) {
            return self.expire(now_us);
        }
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        if let Some((device, camera)) = step.camera() {
            lock_camera(&mut tx, device, camera)?;
        }
        if let Some((id, verdict)) = decided
            && !record_verdict(&mut tx, id, verdict, now_us)?
        {
            // Another replica decided this crop first: it folded it.
            tx.commit()?;
            return Ok((Vec::new(), Changes::default()));
        }
        let changes = self.step_camera(&mut tx, step, now_us)?;
        let events = self.record_changes(&mut tx, &changes)?;
        tx.commit()?;
        Ok((events, changes))
    }

    /// Records a verdict and alert changes folded elsewhere (this process's engine), in one
    /// transaction.
    pub fn decide(
        &self,
        message_id: &str,
        verdict: Verdict,
        decided_us: i64,
        changes: &Changes,
    ) -> Result<Vec<Event>, StoreError> {
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        record_verdict(&mut tx, message_id, verdict, decided_us)?;
        let events = self.record_changes(&mut tx, changes)?;
        tx.commit()?;
        Ok(events)
    }

    /// Records alert changes folded elsewhere.
    pub fn record(&self, changes: &Changes) -> Result<Vec<Event>, StoreError> {
        let mut c = self.client()?;
        let mut tx = c.transaction()?;
        let events = self.record_changes(&mut tx, changes)?;
        tx.commit()?;
        Ok(events)
    }

    /// Ends the alerts silent for longer than the cooldown: one transaction per camera that has
    /// one; forgets `ended` marks past the engine's memory.
    fn expire(&self, now_us: i64) -> Result<(Vec<Event>, Changes), StoreError> {
        let cameras = self.client()?.query(
            "SELECT DISTINCT device_id, camera_id FROM alerts
             WHERE ended_us IS NULL AND last_seen_us < $1",
            &[&(now_us - self.cooldown_us)],
        )?;
        let (mut events, mut changes) = (Vec::new(), Changes::default());
        for row in cameras {
            let (device, camera): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            let mut c = self.client()?;
            let mut tx = c.transaction()?;
            lock_camera(&mut tx, &device, &camera)?;
            let ch = self
                .camera_engine(&mut tx, &device, &camera, None)?
                .expire(now_us);
            events.extend(self.record_changes(&mut tx, &ch)?);
            tx.commit()?;
            changes.events.extend(ch.events);
            changes.states.extend(ch.states);
        }
        let memory = self.cooldown_us.max(ENDED_MEMORY_US);
        self.client()?.execute(
            "DELETE FROM ended_tracks WHERE ended_us < $1",
            &[&(now_us - memory)],
        )?;
        Ok((events, changes))
    }

    /// Steps the engine of the step's camera, as the database holds it, and writes back the
    /// track's state (its `ended` mark, its `seen` time).
    fn step_camera(
        &self,
        tx: &mut Transaction<'_>,
        step: &Step,
        now_us: i64,
    ) -> Result<Changes, StoreError> {
        let Some(key) = step.track() else {
            return Ok(Changes::default());
        };
        let mut engine = self.camera_engine(tx, &key.0, &key.1, Some(&key))?;
        let changes = engine.apply(step, now_us);
        if let Some((at, alerted)) = engine.ended(&key) {
            tx.execute(
                "INSERT INTO ended_tracks (device_id, camera_id, track_id, ended_us, alerted)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (device_id, camera_id, track_id)
                 DO UPDATE SET ended_us = EXCLUDED.ended_us, alerted = EXCLUDED.alerted",
                &[&key.0, &key.1, &big(key.2), &at, &alerted],
            )?;
        }
        if let Some(a) = engine.active().find(|a| a.best.track_id == key.2) {
            tx.execute(
                "UPDATE alerts SET last_seen_us = GREATEST(last_seen_us, $2) WHERE alert_id = $1",
                &[&a.alert_id, &a.last_seen_us],
            )?;
        }
        Ok(changes)
    }

    /// An engine holding the camera's open alerts and, for `track`, its `ended` mark.
    fn camera_engine(
        &self,
        tx: &mut Transaction<'_>,
        device: &str,
        camera: &str,
        track: Option<&Key>,
    ) -> Result<AlertEngine, StoreError> {
        let rows = tx.query(
            "SELECT alert_id, started_us, last_seen_us, crops, last_event FROM alerts
             WHERE device_id = $1 AND camera_id = $2 AND ended_us IS NULL",
            &[&device, &camera],
        )?;
        let open = rows.iter().map(active_row).collect::<Result<_, _>>()?;
        let mut engine = AlertEngine::new(self.cooldown_us, open);
        if let Some(key) = track {
            let mark = tx.query_opt(
                "SELECT ended_us, alerted FROM ended_tracks
                 WHERE device_id = $1 AND camera_id = $2 AND track_id = $3",
                &[&key.0, &key.1, &big(key.2)],
            )?;
            if let Some(r) = mark {
                engine.remember_ended(key.clone(), r.try_get(0)?, r.try_get(1)?);
            }
        }
        Ok(engine)
    }

    /// Writes the alerts' changes and their events (claimed by this replica, on its clock, until
    /// published).
    fn record_changes(
        &self,
        tx: &mut Transaction<'_>,
        changes: &Changes,
    ) -> Result<Vec<Event>, StoreError> {
        let claimed_us = super::now_us();
        let mut out = Vec::new();
        for e in &changes.events {
            let payload = serde_json::to_string(e)?;
            let crops = i64::from(e.crops);
            let t = e.cloud_decision_time_us;
            match e.kind {
                EventType::New => {
                    tx.execute(
                        "INSERT INTO alerts (alert_id, device_id, camera_id, track_id, started_us,
                            last_seen_us, crops, last_event) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        &[&e.alert_id, &e.device_id, &e.camera_id, &big(e.track_id), &e.started_us, &t, &crops, &payload],
                    )?;
                    tx.execute(
                        "UPDATE devices SET alerts = alerts + 1 WHERE device_id = $1",
                        &[&e.device_id],
                    )?;
                }
                EventType::Update => {
                    tx.execute(
                        "UPDATE alerts SET last_seen_us = GREATEST(last_seen_us, $2), crops = $3,
                            last_event = $4 WHERE alert_id = $1",
                        &[&e.alert_id, &t, &crops, &payload],
                    )?;
                }
                EventType::End => {
                    tx.execute(
                        "UPDATE alerts SET ended_us = $2 WHERE alert_id = $1",
                        &[&e.alert_id, &t],
                    )?;
                }
            }
            let topic = cascade_shared::topics::alerts(&e.device_id, &e.camera_id);
            let row = tx.query_one(
                "INSERT INTO alert_events (alert_id, topic, payload, claimed_by, claimed_us)
                 VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                &[&e.alert_id, &topic, &payload, &self.replica, &claimed_us],
            )?;
            out.push((row.try_get(0)?, topic, payload));
        }
        Ok(out)
    }
}

/// Waits for the camera's lock, held until the transaction ends.
fn lock_camera(tx: &mut Transaction<'_>, device: &str, camera: &str) -> Result<(), StoreError> {
    let name = format!("{device}/{camera}");
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&name],
    )?;
    Ok(())
}

/// Records a crop's verdict if it is still pending; false when it was decided already.
fn record_verdict(
    tx: &mut Transaction<'_>,
    message_id: &str,
    verdict: Verdict,
    decided_us: i64,
) -> Result<bool, StoreError> {
    let status = if verdict.confirmed {
        "confirmed"
    } else {
        "rejected"
    };
    let n = tx.execute(
        "UPDATE messages SET status = $2, cloud_score = $3, decided_us = $4
         WHERE message_id = $1 AND status = 'pending'",
        &[
            &message_id,
            &status,
            &f64::from(verdict.cloud_score),
            &decided_us,
        ],
    )?;
    Ok(n == 1)
}
