//! The durable offline buffer (redb). A crop counts as buffered only once its write transaction has
//! committed with `Durability::Immediate` (fsync). Crops of one frame share a transaction (group
//! commit bounded by one frame). Bounded by bytes and age; the oldest go first; every eviction is
//! reported with its reason. A record leaves only once delivered (see `uplink`) or by eviction.
//! `stats()` never waits on a commit: each write publishes its stats after committing (see `txn`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{PoisonError, RwLock};

use redb::{Database, Durability, ReadableDatabase};

pub mod recover;
pub mod space;
mod txn;

use recover::{Recovery, Reservations};
use space::Space;
#[cfg(test)]
use txn::RECORD_OVERHEAD;
use txn::{Published, RECORDS, Tx, cost, decode};

const FILE: &str = "crops.redb";

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("buffer {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
    /// A write failed; `payloads` hands back the records it had built (empty if it built none).
    /// [`BufferError::is_disk_full`] tells a full disk (the buffer is degraded, see [`space`]).
    #[error("buffer write failed, {len} bytes not buffered: {source}")]
    Write {
        len: usize,
        #[source]
        source: redb::Error,
        payloads: Vec<Vec<u8>>,
    },
    #[error("buffer read failed: {0}")]
    Read(#[from] redb::Error),
}

impl BufferError {
    /// The disk is full (or the database's handle died of it and is being reopened).
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Write { source, .. } | Self::Read(source) => space::is_full(source),
            Self::Open { source, .. } => space::is_full(source),
        }
    }
}

/// A stored crop: its key (global, increasing) and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: u64,
    pub created_us: i64,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictReason {
    MaxBytes,
    MaxAge,
    /// The disk is full: the buffer runs below what it held (see [`space`]).
    DiskFull,
}

impl EvictReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::MaxBytes => "max_bytes",
            Self::MaxAge => "max_age",
            Self::DiskFull => "disk_full",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    pub key: u64,
    pub bytes: u64,
    pub reason: EvictReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_age_us: i64,
}

/// What the buffer holds as of the latest published commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub records: u64,
    pub bytes: u64,
    pub oldest_created_us: Option<i64>,
}

/// What a push committed: `(key, sequence)` of each new record, and what it evicted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    pub added: Vec<(u64, u64)>,
    pub evicted: Vec<Eviction>,
}

/// One new record: the camera whose sequence it takes, and a builder given that sequence number.
/// The builder runs inside the write transaction.
pub struct NewRecord<'a> {
    pub camera: &'a str,
    pub build: Box<dyn FnOnce(u64) -> Vec<u8> + 'a>,
}

pub struct Buffer {
    /// `None` between a failed write's dead handle and its reopening (see [`Buffer::reopen`]).
    db: RwLock<Option<Database>>,
    path: PathBuf,
    space: Space,
    limits: Limits,
    /// Generation of the latest write transaction begun (see `txn`).
    generation: AtomicU64,
    /// Stats of the latest committed write and its generation; locked only to copy them.
    published: RwLock<Published>,
    /// Sequence numbers reserved outside the database file.
    reservations: Reservations,
    /// Set when the file was damaged and recreated at open.
    recovery: Option<Recovery>,
}

fn write_failed(source: redb::Error) -> BufferError {
    BufferError::Write {
        len: 0,
        source,
        payloads: Vec::new(),
    }
}

impl Buffer {
    /// Opens (or creates) the buffer in `dir`, recovering after a crash if needed. A damaged file
    /// is salvaged, moved aside and replaced (see [`recover`]); [`Buffer::recovery`] tells.
    pub fn open(dir: &Path, limits: Limits) -> Result<Self, BufferError> {
        let failed = |source: redb::Error| BufferError::Open {
            path: dir.to_path_buf(),
            source,
        };
        cascade_shared::private::dir(dir).map_err(|e| failed(e.into()))?;
        let path = dir.join(FILE);
        let open = || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                Self::open_file(&path, limits, Reservations::load(dir))
            }))
        };
        let mut opened = open();
        if let Ok(Err(e)) = &opened
            && space::is_full(e)
        {
            // A full disk: the reserve of the last run makes room to open, drain and delete.
            if Space::new(dir, limits.max_bytes).release() {
                opened = open();
                if let Ok(Ok(b)) = &opened {
                    b.space.full(b.stats().bytes);
                }
            }
        }
        let reason = match opened {
            Ok(Ok(buffer)) => return Ok(buffer.degraded_if_full(dir)),
            Ok(Err(e)) if !recover::is_damage(&e) => return Err(failed(e)),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "redb panicked while opening it".to_string(),
        };
        Self::recreate(dir, &path, limits, reason).map_err(failed)
    }

    fn open_file(
        path: &Path,
        limits: Limits,
        reservations: Reservations,
    ) -> Result<Self, redb::Error> {
        let db = Database::create(path)?;
        cascade_shared::private::file(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let buffer = Self {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            space: Space::new(dir, limits.max_bytes),
            limits,
            generation: AtomicU64::new(0),
            published: RwLock::default(),
            reservations,
            recovery: None,
        };
        // Count the records themselves: the file may come from a crash or an older version.
        buffer.write(Durability::Immediate, |t| t.recount())?;
        Ok(buffer)
    }

    /// Salvages what `path` still holds, moves it aside and starts a fresh buffer with it.
    fn recreate(
        dir: &Path,
        path: &Path,
        limits: Limits,
        reason: String,
    ) -> Result<Self, redb::Error> {
        let salvage = recover::salvage(path);
        let reservations = Reservations::load(dir);
        reservations.raise(&salvage.sequences)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let moved_to = recover::move_aside(path, now)?;
        let mut buffer = Self::open_file(path, limits, reservations)?;
        let salvaged = salvage.records.len();
        buffer.write(Durability::Immediate, |t| {
            for (created_us, payload) in &salvage.records {
                t.insert(*created_us, payload)?;
            }
            Ok(())
        })?;
        buffer.recovery = Some(Recovery {
            reason,
            moved_to,
            salvaged,
        });
        Ok(buffer)
    }

    /// Starts degraded on a disk with (almost) no room left: the reserve of the last run is given
    /// back so that draining can delete.
    fn degraded_if_full(self, dir: &Path) -> Self {
        if !self.space.degraded() && space::free_bytes(dir).is_some_and(|f| f < space::LOW_WATER) {
            self.space.full(self.stats().bytes);
        }
        self
    }

    /// What opening did to a damaged file, if it was damaged.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// The stats as of the latest published commit. Never waits on a write in progress.
    pub fn stats(&self) -> Stats {
        self.published_stats()
    }

    /// Commits `records` in one durable transaction, assigning each the next sequence number of its
    /// camera. Evicts the oldest records first when the byte bound would be passed.
    /// Returns the new keys with their sequence numbers, and the evictions.
    pub fn push(&self, now_us: i64, records: Vec<NewRecord<'_>>) -> Result<Pushed, BufferError> {
        let mut built = Vec::with_capacity(records.len());
        self.write(Durability::Immediate, |t| {
            self.add(t, now_us, records, &mut built)
        })
        .map_err(|source| BufferError::Write {
            len: built.iter().map(Vec::len).sum(),
            source,
            payloads: built,
        })
    }

    fn add(
        &self,
        t: &mut Tx<'_>,
        now_us: i64,
        records: Vec<NewRecord<'_>>,
        built: &mut Vec<Vec<u8>>,
    ) -> Result<Pushed, redb::Error> {
        let mut pushed = Pushed::default();
        for rec in records {
            let seq = t.next_seq(rec.camera, self.reservations.floor(rec.camera))?;
            self.reservations.cover(rec.camera, seq)?;
            let payload = (rec.build)(seq);
            let c = cost(payload.len());
            let bound = self.space.bound(self.limits.max_bytes);
            while t.stats.bytes + c > bound {
                let Some((key, bytes)) = t.pop_oldest()? else {
                    break;
                };
                let reason = if bound < self.limits.max_bytes {
                    EvictReason::DiskFull
                } else {
                    EvictReason::MaxBytes
                };
                pushed.evicted.push(Eviction { key, bytes, reason });
            }
            let key = t.insert(now_us, &payload);
            built.push(payload);
            pushed.added.push((key?, seq));
        }
        Ok(pushed)
    }

    /// Up to `limit` records with keys above `after`, oldest first.
    pub fn pending(&self, after: u64, limit: usize) -> Result<Vec<Record>, BufferError> {
        self.read(|table| {
            let mut out = Vec::new();
            for item in table.range(after.saturating_add(1)..)?.take(limit) {
                let (k, v) = item?;
                out.extend(decode(k.value(), v.value()));
            }
            Ok(out)
        })
    }

    /// The records of `keys` still held, in key order (evicted ones are left out).
    pub fn records(&self, keys: &[u64]) -> Result<Vec<Record>, BufferError> {
        self.read(|table| {
            let mut out = Vec::new();
            for &key in keys {
                if let Some(v) = table.get(key)? {
                    out.extend(decode(key, v.value()));
                }
            }
            out.sort_by_key(|r| r.key);
            Ok(out)
        })
    }

    /// Runs `f` on the records table in one read transaction.
    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<u64, &'static [u8]>) -> Result<T, redb::StorageError>,
    ) -> Result<T, BufferError> {
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let db = db.as_ref().ok_or(redb::Error::PreviousIo)?;
        let tx = db.begin_read().map_err(redb::Error::from)?;
        let table = tx.open_table(RECORDS).map_err(redb::Error::from)?;
        Ok(f(&table).map_err(redb::Error::from)?)
    }

    /// Removes acknowledged records. Not fsynced on its own: a removal lost to a crash only means
    /// the record is sent again (receivers de-duplicate), and the next durable commit persists it.
    pub fn remove(&self, keys: &[u64]) -> Result<u64, BufferError> {
        self.delete(keys, Durability::None)
    }

    /// Persists everything (call on clean shutdown).
    pub fn flush(&self) -> Result<(), BufferError> {
        self.delete(&[], Durability::Immediate).map(|_| ())
    }

    fn delete(&self, keys: &[u64], durability: Durability) -> Result<u64, BufferError> {
        self.write(durability, |t| {
            let mut removed = 0;
            for &key in keys {
                removed += u64::from(t.remove(key)?);
            }
            Ok(removed)
        })
        .map_err(write_failed)
    }

    /// The folder the buffer lives in.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Whether the disk is full and the buffer runs below what it held (see [`space`]).
    pub fn degraded(&self) -> bool {
        self.space.degraded()
    }

    /// Keeps the disk reserve in place, and leaves degraded mode once the disk has room again
    /// (reopening the database if its handle is still dead). Returns whether it left degraded mode.
    pub fn check_space(&self) -> bool {
        if self
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
        {
            let _ = self.reopen();
        }
        if self.space.degraded() {
            return self.space.try_recover();
        }
        self.space.ensure_reserve();
        false
    }

    /// The disk filled up under a write: give the reserve back, bound the buffer below what it
    /// holds (the next pushes evict the oldest and reuse their pages), and reopen the database,
    /// whose handle is dead after a failed write.
    fn on_full(&self) {
        self.space.full(self.stats().bytes);
        if let Err(e) = self.reopen() {
            tracing::debug!(error = %e, "buffer not reopened yet; retried on the next write");
        }
    }

    /// Drops the database handle and opens the file again.
    fn reopen(&self) -> Result<(), redb::Error> {
        let mut db = self.db.write().unwrap_or_else(PoisonError::into_inner);
        db.take(); // releases the file lock before opening again
        let path = self.path.clone();
        let opened = recover::caught(|| Ok(Database::create(&path)?));
        *db = Some(opened.map_err(|e| redb::Error::Io(std::io::Error::other(e)))?);
        Ok(())
    }

    /// Evicts records older than the age bound.
    pub fn evict_expired(&self, now_us: i64) -> Result<Vec<Eviction>, BufferError> {
        let cutoff = now_us.saturating_sub(self.limits.max_age_us);
        // No write transaction (and fsync) when nothing has expired. The published oldest may lag a
        // commit in flight; that commit can only remove records or add new ones to an empty buffer,
        // and the next call catches up.
        let oldest = self.stats().oldest_created_us;
        if oldest.is_none_or(|oldest| oldest >= cutoff) {
            return Ok(Vec::new());
        }
        self.write(Durability::Immediate, |t| {
            let mut evicted = Vec::new();
            while t.oldest()?.is_some_and(|oldest| oldest < cutoff) {
                let Some((key, bytes)) = t.pop_oldest()? else {
                    break;
                };
                let reason = EvictReason::MaxAge;
                evicted.push(Eviction { key, bytes, reason });
            }
            Ok(evicted)
        })
        .map_err(write_failed)
    }
}

#[cfg(test)]
mod tests;
