//! One write transaction of the buffer, the record encoding, and how stats reach `Buffer::stats`.
//!
//! No lock is held across a commit (an fsync for pushes). Ordering argument: redb runs one write
//! transaction at a time (`begin_write` blocks while another is live), so each transaction reads
//! the totals of the previous commit from the `meta` table (never from memory, which may not have
//! been published yet) and takes a generation number while it holds the write lock; generations
//! therefore follow commit order. After its commit returns, holding nothing else, the writer
//! publishes `(generation, stats)` under a lock held only for the copy, and an older generation
//! never replaces a newer one. So `stats()` never waits on I/O and never goes back to a stale
//! value; it may lag the latest commit by the moment between that commit and its publication.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use redb::{Durability, ReadableTable, StorageError, Table, TableDefinition};

use super::{Buffer, Record, Stats};

pub(super) const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_KEY: &str = "next_key";
const RECORDS_KEY: &str = "stats/records";
const BYTES_KEY: &str = "stats/bytes";
/// Bytes a record costs beyond its payload (key, timestamp, b-tree share), for the byte bound.
pub(super) const RECORD_OVERHEAD: u64 = 64;
/// The creation time ahead of each stored payload.
const HEADER: usize = 8;

pub(super) fn cost(payload_len: usize) -> u64 {
    payload_len as u64 + RECORD_OVERHEAD
}

fn stored_cost(value: &[u8]) -> u64 {
    cost(value.len().saturating_sub(HEADER))
}

fn encode(created_us: i64, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + payload.len());
    v.extend_from_slice(&created_us.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

pub(super) fn decode(key: u64, value: &[u8]) -> Option<Record> {
    let (ts, payload) = value.split_at_checked(HEADER)?;
    let created_us = i64::from_le_bytes(ts.try_into().ok()?);
    Some(Record {
        key,
        created_us,
        payload: payload.to_vec(),
    })
}

/// Stats as published, with the generation of the write that produced them.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Published {
    generation: u64,
    stats: Stats,
}

/// The tables of one write transaction. `stats` starts at the previous commit's totals and is kept
/// up to date by the methods below; the oldest creation time is filled in at the end.
pub(super) struct Tx<'t> {
    records: Table<'t, u64, &'static [u8]>,
    meta: Table<'t, &'static str, u64>,
    next_key: u64,
    pub stats: Stats,
}

impl Buffer {
    /// Runs `f` in one write transaction with `durability`, commits, then publishes the stats.
    /// A full disk puts the buffer in degraded mode (see `space`).
    pub(super) fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, redb::Error>,
    ) -> Result<T, redb::Error> {
        let written = self.try_write(durability, f);
        if let Err(e) = &written
            && super::space::is_full(e)
        {
            self.on_full();
        }
        written
    }

    fn try_write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, redb::Error>,
    ) -> Result<T, redb::Error> {
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let mut tx = db.as_ref().ok_or(redb::Error::PreviousIo)?.begin_write()?;
        tx.set_durability(durability)?;
        // Taken while the write transaction is held: the transactions order these increments.
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let (out, stats) = {
            let mut t = Tx::open(&tx)?;
            let (before, next_key) = (t.stats, t.next_key);
            let out = f(&mut t)?;
            t.stats.oldest_created_us = t.oldest()?;
            t.save(before, next_key)?;
            (out, t.stats)
        };
        tx.commit()?;
        self.publish(Published { generation, stats });
        Ok(out)
    }

    fn publish(&self, next: Published) {
        let mut published = self
            .published
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if next.generation > published.generation {
            *published = next;
        }
    }

    pub(super) fn published_stats(&self) -> Stats {
        self.published
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .stats
    }
}

impl<'t> Tx<'t> {
    fn open(tx: &'t redb::WriteTransaction) -> Result<Self, redb::Error> {
        let records = tx.open_table(RECORDS)?;
        let meta = tx.open_table(META)?;
        let get = |key: &str| -> Result<Option<u64>, StorageError> {
            Ok(meta.get(key)?.map(|g| g.value()))
        };
        let stats = Stats {
            records: get(RECORDS_KEY)?.unwrap_or(0),
            bytes: get(BYTES_KEY)?.unwrap_or(0),
            oldest_created_us: None,
        };
        let next_key = get(NEXT_KEY)?.unwrap_or(1);
        let mut t = Self {
            records,
            meta,
            next_key,
            stats,
        };
        t.stats.oldest_created_us = t.oldest()?;
        Ok(t)
    }

    /// Writes back the totals and the next key where they changed.
    fn save(&mut self, before: Stats, next_key: u64) -> Result<(), StorageError> {
        if (self.stats.records, self.stats.bytes) != (before.records, before.bytes) {
            self.meta.insert(RECORDS_KEY, self.stats.records)?;
            self.meta.insert(BYTES_KEY, self.stats.bytes)?;
        }
        if self.next_key != next_key {
            self.meta.insert(NEXT_KEY, self.next_key)?;
        }
        Ok(())
    }

    /// Sets the totals from the records themselves (on open).
    pub fn recount(&mut self) -> Result<(), redb::Error> {
        let mut s = Stats::default();
        for item in self.records.iter()? {
            let (_, v) = item?;
            s.records += 1;
            s.bytes += stored_cost(v.value());
        }
        self.stats = s;
        Ok(())
    }

    /// Creation time of the oldest record (`None` when empty or unreadable).
    pub fn oldest(&self) -> Result<Option<i64>, StorageError> {
        Ok(self
            .records
            .first()?
            .and_then(|(k, v)| decode(k.value(), v.value()))
            .map(|r| r.created_us))
    }

    /// Takes the next sequence number of `camera`; `floor` when the database has none for it.
    pub fn next_seq(&mut self, camera: &str, floor: u64) -> Result<u64, StorageError> {
        let key = format!("seq/{camera}");
        let seq = self
            .meta
            .get(key.as_str())?
            .map_or(floor, |g| g.value() + 1);
        self.meta.insert(key.as_str(), seq)?;
        Ok(seq)
    }

    /// Stores a record under the next key; returns the key.
    pub fn insert(&mut self, created_us: i64, payload: &[u8]) -> Result<u64, StorageError> {
        let key = self.next_key;
        self.records
            .insert(key, encode(created_us, payload).as_slice())?;
        self.next_key += 1;
        self.stats.records += 1;
        self.stats.bytes += cost(payload.len());
        Ok(key)
    }

    /// Removes the oldest record; returns its key and cost.
    pub fn pop_oldest(&mut self) -> Result<Option<(u64, u64)>, StorageError> {
        let popped = self.records.pop_first()?;
        let Some((key, bytes)) = popped.map(|(k, v)| (k.value(), stored_cost(v.value()))) else {
            return Ok(None);
        };
        self.count_out(bytes);
        Ok(Some((key, bytes)))
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: u64) -> Result<bool, StorageError> {
        let Some(bytes) = self.records.remove(key)?.map(|v| stored_cost(v.value())) else {
            return Ok(false);
        };
        self.count_out(bytes);
        Ok(true)
    }

    fn count_out(&mut self, bytes: u64) {
        self.stats.records = self.stats.records.saturating_sub(1);
        self.stats.bytes = self.stats.bytes.saturating_sub(bytes);
    }
}
