//! The analyzer's store, behind one type for both backends: SQLite (`sqlite.rs`, embedded, the
//! default, one analyzer) and PostgreSQL (`postgres.rs`, shared by replicas). Call sites hold an
//! `Arc<Store>` and call the same methods on either; only alert folding differs (see
//! [`Store::folds_alerts`] and `crate::fold`). Both keep crops' JPEGs in the database, so a crop
//! and its message commit together. Migrations are numbered per backend.

mod postgres;
mod sqlite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cascade_shared::config::cloud::{StoreConfig, StoreKind};
use cascade_shared::status::{AgentInfo, CameraStatus, DeviceStatus};
use cascade_shared::wire::Crop;
use serde::Serialize;

use crate::alert::{Active, Changes, Confirmed, Step};

pub use self::postgres::PgStore;
pub use self::sqlite::SqliteStore;

/// A committed alert event to publish: (outbox sequence number, topic, payload).
pub type Event = (i64, String, String);

/// The most of a rejected payload a dead letter keeps.
pub const DEAD_LETTER_PREFIX_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {}: cannot create the folder: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store {}: cannot open the database: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The PostgreSQL server refused the connection (the message never holds the password).
    #[error("store: cannot connect to PostgreSQL: {0}")]
    Connect(#[source] ::postgres::Error),
    #[error("store: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("store: the PostgreSQL connection string: {0}")]
    Url(String),
    /// A step only a store that folds alerts itself can run (PostgreSQL).
    #[error("store: {0} needs the PostgreSQL store")]
    Unsupported(&'static str),
    #[error("store: {0}")]
    Json(#[from] serde_json::Error),
}

/// A stored crop still waiting for the confirm model.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub message_id: String,
    pub device_id: String,
    pub camera_id: String,
    pub track_id: u64,
    pub capture_time_us: i64,
    pub upload_time_us: i64,
    pub edge_score: f32,
    pub bbox: [f32; 4],
    pub region: [f32; 4],
    pub jpeg: Vec<u8>,
}

impl Pending {
    /// What this crop contributes to the alerts once the cloud confirmed it with `cloud_score`.
    pub fn confirmed(&self, cloud_score: f32) -> Confirmed {
        Confirmed {
            message_id: self.message_id.clone(),
            device_id: self.device_id.clone(),
            camera_id: self.camera_id.clone(),
            track_id: self.track_id,
            capture_time_us: self.capture_time_us,
            upload_time_us: self.upload_time_us,
            edge_score: self.edge_score,
            cloud_score,
            bbox: self.bbox,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    Duplicate,
}

/// The confirm model's verdict on one crop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub cloud_score: f32,
    pub confirmed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub device_id: Option<String>,
    pub camera_id: Option<String>,
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertRow {
    pub alert_id: String,
    pub device_id: String,
    pub camera_id: String,
    pub track_id: u64,
    pub started_us: i64,
    pub last_seen_us: i64,
    pub ended_us: Option<i64>,
    pub crops: u32,
    pub last_event: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceRow {
    pub device_id: String,
    pub last_seen_us: i64,
    pub last_status: Option<String>,
    /// Each camera's state as the device last reported it.
    pub cameras: Vec<CameraStatus>,
    /// What the device last said it runs (agent version, profile, models); None from agents
    /// that do not say.
    pub agent: Option<AgentInfo>,
    pub crops: u64,
    pub alerts: u64,
}

/// The store: one of the two backends. An enum rather than a trait object keeps every call site
/// as it was (`store.insert_crop(..)` on an `Arc<Store>`) and lets the alert path ask which it is.
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Calls the same method on whichever backend this is.
macro_rules! either {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Sqlite($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
}

pub(crate) fn f4(b: Option<cascade_shared::wire::BoxPx>) -> [f32; 4] {
    b.map_or([0.0; 4], |b| [b.x1, b.y1, b.x2, b.y2])
}

impl Store {
    /// The SQLite store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        SqliteStore::open(dir).map(Self::Sqlite)
    }

    /// The store `[store]` names. `replica` (the MQTT client id) names this analyzer's claims on
    /// crops and events in a shared store; `cooldown` is `alerts.cooldown_s`.
    pub fn connect(
        cfg: &StoreConfig,
        replica: &str,
        cooldown: Duration,
    ) -> Result<Self, StoreError> {
        match cfg.kind {
            StoreKind::Sqlite => match &cfg.dir {
                Some(dir) => Self::open(dir),
                None => Err(StoreError::Unsupported("a store without store.dir")),
            },
            StoreKind::Postgres => {
                let url = cfg
                    .postgres_url()
                    .ok_or_else(|| StoreError::Url("neither url nor url_env is set".into()))?;
                PgStore::connect(&url, replica, cooldown, cfg.lease).map(Self::Postgres)
            }
        }
    }

    /// Whether alerts are folded in the store's own transactions ([`Store::fold`], PostgreSQL:
    /// replicas agree) instead of in this process's engine (SQLite).
    pub fn folds_alerts(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Runs an alert step in the store, with a crop's verdict when given, in one transaction;
    /// returns the events to publish and what changed. A verdict found already recorded (another
    /// replica decided the crop) changes nothing. PostgreSQL only.
    pub fn fold(
        &self,
        step: &Step,
        decided: Option<(&str, Verdict)>,
        now_us: i64,
    ) -> Result<(Vec<Event>, Changes), StoreError> {
        match self {
            Self::Sqlite(_) => Err(StoreError::Unsupported("folding alerts in the store")),
            Self::Postgres(s) => s.fold(step, decided, now_us),
        }
    }

    /// Whether a write transaction can start (for `/readyz`).
    pub fn writable(&self) -> bool {
        either!(self, s => s.writable())
    }

    pub fn schema_version(&self) -> Result<usize, StoreError> {
        either!(self, s => s.schema_version())
    }

    /// Stores a valid crop once; a message id seen before is a duplicate.
    pub fn insert_crop(
        &self,
        crop: &Crop,
        upload_us: i64,
        received_us: i64,
    ) -> Result<Inserted, StoreError> {
        either!(self, s => s.insert_crop(crop, upload_us, received_us))
    }

    /// Crops stored but not yet decided, to infer again (after a restart). PostgreSQL: those this
    /// replica stored and those whose replica's lease ran out, claimed for this one.
    pub fn pending(&self) -> Result<Vec<Pending>, StoreError> {
        either!(self, s => s.pending())
    }

    /// Records a verdict and the alert changes it caused (folded by this process), in one
    /// transaction. Returns the events to publish.
    pub fn decide(
        &self,
        message_id: &str,
        verdict: Verdict,
        decided_us: i64,
        changes: &Changes,
    ) -> Result<Vec<Event>, StoreError> {
        either!(self, s => s.decide(message_id, verdict, decided_us, changes))
    }

    /// Records alert changes not tied to a crop (alerts ending).
    pub fn record(&self, changes: &Changes) -> Result<Vec<Event>, StoreError> {
        either!(self, s => s.record(changes))
    }

    pub fn mark_published(&self, seq: i64) -> Result<(), StoreError> {
        either!(self, s => s.mark_published(seq))
    }

    /// Events committed but not yet handed to the broker (after a crash). PostgreSQL: this
    /// replica's and those of replicas whose lease ran out, claimed for this one.
    pub fn unpublished(&self) -> Result<Vec<Event>, StoreError> {
        either!(self, s => s.unpublished())
    }

    /// What replicas that went silent left behind (crops to decide, events to publish), claimed
    /// for this one; nothing for SQLite (one analyzer).
    pub fn orphans(&self) -> Result<(Vec<Pending>, Vec<Event>), StoreError> {
        match self {
            Self::Sqlite(_) => Ok((Vec::new(), Vec::new())),
            Self::Postgres(s) => s.orphans(),
        }
    }

    /// Alerts still running, to restore the alert engine after a restart.
    pub fn active_alerts(&self) -> Result<Vec<Active>, StoreError> {
        either!(self, s => s.active_alerts())
    }

    /// Keeps a rejected message for inspection: its reason and at most the first
    /// [`DEAD_LETTER_PREFIX_BYTES`] of its payload.
    pub fn dead_letter(
        &self,
        received_us: i64,
        topic: &str,
        device_id: Option<&str>,
        reason: &str,
        detail: &str,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        let payload = &payload[..payload.len().min(DEAD_LETTER_PREFIX_BYTES)];
        either!(self, s => s.dead_letter(received_us, topic, device_id, reason, detail, payload))
    }

    pub fn dead_letters(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        either!(self, s => s.dead_letters())
    }

    /// A device's status message: online or offline, its cameras and what it runs (an offline
    /// message keeps the cameras and versions last reported).
    pub fn device_status(
        &self,
        device_id: &str,
        status: &DeviceStatus,
        now_us: i64,
    ) -> Result<(), StoreError> {
        let cameras = if status.cameras.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&status.cameras)?)
        };
        let agent = status
            .agent
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let state = status.state.as_str();
        either!(self, s => s.device_status(device_id, state, cameras, agent, now_us))
    }

    pub fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRow>, StoreError> {
        either!(self, s => s.alerts(q))
    }

    pub fn alert(&self, alert_id: &str) -> Result<Option<AlertRow>, StoreError> {
        either!(self, s => s.alert(alert_id))
    }

    /// The (device, camera) pairs with an alert running (their state is `ON`).
    pub fn cameras_on(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut on: Vec<(String, String)> = self
            .active_alerts()?
            .into_iter()
            .map(|a| (a.best.device_id, a.best.camera_id))
            .collect();
        on.sort();
        on.dedup();
        Ok(on)
    }

    /// The events of an alert (JSON, oldest first): each `new` and `update` names one of its crops.
    pub fn alert_events(&self, alert_id: &str) -> Result<Vec<String>, StoreError> {
        either!(self, s => s.alert_events(alert_id))
    }

    /// Every (device, camera) that has had an alert.
    pub fn alert_cameras(&self) -> Result<Vec<(String, String)>, StoreError> {
        either!(self, s => s.alert_cameras())
    }

    pub fn crop_jpeg(&self, message_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        either!(self, s => s.crop_jpeg(message_id))
    }

    /// Drops a crop's JPEG; false when there was none.
    pub fn erase_crop(&self, message_id: &str) -> Result<bool, StoreError> {
        either!(self, s => s.erase_crop(message_id))
    }

    pub fn devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        either!(self, s => s.devices())
    }

    /// Counts of messages by status (for tests and the summary).
    pub fn message_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        either!(self, s => s.message_counts())
    }

    /// Drops crops (JPEG) and dead letters older than `retention`; message ids stay for
    /// de-duplication until twice the retention.
    pub fn apply_retention(&self, now_us: i64, retention: Duration) -> Result<usize, StoreError> {
        either!(self, s => s.apply_retention(now_us, retention))
    }
}

/// The cameras' JSON as stored, back into cameras (an unreadable value reads as none).
pub(crate) fn cameras_from(json: Option<String>) -> Vec<CameraStatus> {
    json.and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default()
}

pub(crate) fn agent_from(json: Option<String>) -> Option<AgentInfo> {
    json.and_then(|a| serde_json::from_str(&a).ok())
}

#[cfg(test)]
pub(crate) mod tests;
