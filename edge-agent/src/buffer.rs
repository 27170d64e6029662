//! The durable offline buffer (redb). A crop counts as buffered only once its write transaction has
//! committed with `Durability::Immediate` (fsync). Crops of one frame share a transaction (group
//! commit bounded by one frame). Bounded by bytes and age; the oldest go first; every eviction is
//! reported with its reason. A record leaves only on its PUBACK (see `uplink`) or by eviction.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_KEY: &str = "next_key";
/// Bytes a record costs beyond its payload (key, timestamp, b-tree share), for the byte bound.
const RECORD_OVERHEAD: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("buffer {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("buffer write failed, {len} bytes not buffered: {reason}")]
    Write {
        len: usize,
        reason: String,
        payloads: Vec<Vec<u8>>,
    },
    #[error("buffer read failed: {0}")]
    Read(String),
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
}

impl EvictReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::MaxBytes => "max_bytes",
            Self::MaxAge => "max_age",
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
pub struct NewRecord<'a> {
    pub camera: &'a str,
    pub build: Box<dyn FnOnce(u64) -> Vec<u8> + 'a>,
}

pub struct Buffer {
    db: Database,
    limits: Limits,
    stats: Mutex<Stats>,
}

fn cost(payload_len: usize) -> u64 {
    payload_len as u64 + RECORD_OVERHEAD
}

fn encode(created_us: i64, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&created_us.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

fn decode(key: u64, value: &[u8]) -> Option<Record> {
    let (ts, payload) = value.split_at_checked(8)?;
    let created_us = i64::from_le_bytes(ts.try_into().ok()?);
    Some(Record {
        key,
        created_us,
        payload: payload.to_vec(),
    })
}

fn seq_key(camera: &str) -> String {
    format!("seq/{camera}")
}

impl Buffer {
    /// Opens (or creates) the buffer in `dir`, recovering after a crash if needed.
    pub fn open(dir: &Path, limits: Limits) -> Result<Self, BufferError> {
        let bad = |reason: String| BufferError::Open {
            path: dir.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| bad(format!("cannot create: {e}")))?;
        let db = Database::create(dir.join("crops.redb")).map_err(|e| bad(e.to_string()))?;
        let tx = db.begin_write().map_err(|e| bad(e.to_string()))?;
        tx.open_table(RECORDS).map_err(|e| bad(e.to_string()))?;
        tx.open_table(META).map_err(|e| bad(e.to_string()))?;
        tx.commit().map_err(|e| bad(e.to_string()))?;
        let buffer = Self {
            db,
            limits,
            stats: Mutex::new(Stats::default()),
        };
        let stats = buffer.scan().map_err(|e| bad(e.to_string()))?;
        *buffer.lock() = stats;
        Ok(buffer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn scan(&self) -> Result<Stats, BufferError> {
        let r = |e: &dyn std::fmt::Display| BufferError::Read(e.to_string());
        let tx = self.db.begin_read().map_err(|e| r(&e))?;
        let table = tx.open_table(RECORDS).map_err(|e| r(&e))?;
        let mut s = Stats::default();
        for item in table.iter().map_err(|e| r(&e))? {
            let (k, v) = item.map_err(|e| r(&e))?;
            s.records += 1;
            s.bytes += cost(v.value().len().saturating_sub(8));
            if s.oldest_created_us.is_none() {
                s.oldest_created_us = decode(k.value(), v.value()).map(|rec| rec.created_us);
            }
        }
        Ok(s)
    }

    pub fn stats(&self) -> Stats {
        *self.lock()
    }

    /// Commits `records` in one durable transaction, assigning each the next sequence number of its
    /// camera. Evicts the oldest records first when the byte bound would be passed.
    /// Returns the new keys with their sequence numbers, and the evictions.
    pub fn push(&self, now_us: i64, records: Vec<NewRecord<'_>>) -> Result<Pushed, BufferError> {
        let mut stats = self.lock();
        let mut built = Vec::with_capacity(records.len());
        let res = self.push_tx(now_us, records, &mut built, &mut stats);
        res.map_err(|reason| {
            let len = built.iter().map(Vec::len).sum();
            BufferError::Write {
                len,
                reason,
                payloads: built,
            }
        })
    }

    fn push_tx(
        &self,
        now_us: i64,
        records: Vec<NewRecord<'_>>,
        built: &mut Vec<Vec<u8>>,
        stats: &mut Stats,
    ) -> Result<Pushed, String> {
        let s = |e: &dyn std::fmt::Display| e.to_string();
        let mut tx = self.db.begin_write().map_err(|e| s(&e))?;
        tx.set_durability(Durability::Immediate)
            .map_err(|e| s(&e))?;
        let mut added = Vec::new();
        let mut new_stats = *stats;
        let mut evicted = Vec::new();
        {
            let mut meta = tx.open_table(META).map_err(|e| s(&e))?;
            let mut table = tx.open_table(RECORDS).map_err(|e| s(&e))?;
            let mut next_key = meta
                .get(NEXT_KEY)
                .map_err(|e| s(&e))?
                .map_or(1, |g| g.value());
            for rec in records {
                let sk = seq_key(rec.camera);
                let seq = meta
                    .get(sk.as_str())
                    .map_err(|e| s(&e))?
                    .map_or(1, |g| g.value() + 1);
                meta.insert(sk.as_str(), seq).map_err(|e| s(&e))?;
                let payload = (rec.build)(seq);
                let c = cost(payload.len());
                while new_stats.bytes + c > self.limits.max_bytes {
                    let Some((k, v)) = table.pop_first().map_err(|e| s(&e))? else {
                        break;
                    };
                    let bytes = cost(v.value().len().saturating_sub(8));
                    new_stats.bytes -= bytes;
                    new_stats.records -= 1;
                    evicted.push(Eviction {
                        key: k.value(),
                        bytes,
                        reason: EvictReason::MaxBytes,
                    });
                }
                table
                    .insert(next_key, encode(now_us, &payload).as_slice())
                    .map_err(|e| s(&e))?;
                added.push((next_key, seq));
                built.push(payload);
                new_stats.records += 1;
                new_stats.bytes += c;
                next_key += 1;
            }
            meta.insert(NEXT_KEY, next_key).map_err(|e| s(&e))?;
            new_stats.oldest_created_us = match table.first().map_err(|e| s(&e))? {
                Some((k, v)) => decode(k.value(), v.value()).map(|r| r.created_us),
                None => None,
            };
        }
        tx.commit().map_err(|e| s(&e))?;
        *stats = new_stats;
        Ok(Pushed { added, evicted })
    }

    /// Up to `limit` records with keys above `after`, oldest first.
    pub fn pending(&self, after: u64, limit: usize) -> Result<Vec<Record>, BufferError> {
        let r = |e: &dyn std::fmt::Display| BufferError::Read(e.to_string());
        let tx = self.db.begin_read().map_err(|e| r(&e))?;
        let table = tx.open_table(RECORDS).map_err(|e| r(&e))?;
        let mut out = Vec::new();
        for item in table
            .range(after.saturating_add(1)..)
            .map_err(|e| r(&e))?
            .take(limit)
        {
            let (k, v) = item.map_err(|e| r(&e))?;
            if let Some(rec) = decode(k.value(), v.value()) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Removes acknowledged records. Not fsynced on its own: a removal lost to a crash only means
    /// the record is sent again (receivers de-duplicate), and the next durable commit persists it.
    pub fn remove(&self, keys: &[u64]) -> Result<u64, BufferError> {
        self.delete(keys, Durability::None).map(|(n, _)| n)
    }

    /// Persists everything (call on clean shutdown).
    pub fn flush(&self) -> Result<(), BufferError> {
        self.delete(&[], Durability::Immediate).map(|_| ())
    }

    fn delete(&self, keys: &[u64], durability: Durability) -> Result<(u64, u64), BufferError> {
        let w = |e: &dyn std::fmt::Display| BufferError::Write {
            len: 0,
            reason: e.to_string(),
            payloads: Vec::new(),
        };
        let mut stats = self.lock();
        let mut tx = self.db.begin_write().map_err(|e| w(&e))?;
        tx.set_durability(durability).map_err(|e| w(&e))?;
        let (mut removed, mut bytes) = (0, 0);
        let oldest;
        {
            let mut table = tx.open_table(RECORDS).map_err(|e| w(&e))?;
            for k in keys {
                if let Some(v) = table.remove(k).map_err(|e| w(&e))? {
                    removed += 1;
                    bytes += cost(v.value().len().saturating_sub(8));
                }
            }
            oldest = table
                .first()
                .map_err(|e| w(&e))?
                .and_then(|(k, v)| decode(k.value(), v.value()))
                .map(|r| r.created_us);
        }
        tx.commit().map_err(|e| w(&e))?;
        stats.records -= removed;
        stats.bytes -= bytes;
        stats.oldest_created_us = oldest;
        Ok((removed, bytes))
    }

    /// Evicts records older than the age bound.
    pub fn evict_expired(&self, now_us: i64) -> Result<Vec<Eviction>, BufferError> {
        let cutoff = now_us.saturating_sub(self.limits.max_age_us);
        let old: Vec<Record> = {
            let r = |e: &dyn std::fmt::Display| BufferError::Read(e.to_string());
            let tx = self.db.begin_read().map_err(|e| r(&e))?;
            let table = tx.open_table(RECORDS).map_err(|e| r(&e))?;
            let mut out = Vec::new();
            for item in table.iter().map_err(|e| r(&e))? {
                let (k, v) = item.map_err(|e| r(&e))?;
                match decode(k.value(), v.value()) {
                    Some(rec) if rec.created_us < cutoff => out.push(rec),
                    _ => break,
                }
            }
            out
        };
        if old.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<u64> = old.iter().map(|r| r.key).collect();
        self.delete(&keys, Durability::Immediate)?;
        Ok(old
            .iter()
            .map(|r| Eviction {
                key: r.key,
                bytes: cost(r.payload.len()),
                reason: EvictReason::MaxAge,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
