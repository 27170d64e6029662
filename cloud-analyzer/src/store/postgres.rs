//! The PostgreSQL store, shared by analyzer replicas (`[store] kind = "postgres"`). The same
//! tables as SQLite, plus what replicas need to agree:
//!
//! - `messages.message_id` is the primary key, so a crop delivered to two replicas is stored once;
//! - alerts are folded in the database (`fold.rs`): one transaction per step, serialised per
//!   camera by a transaction-scoped advisory lock, with a unique index on the open alert of a
//!   track as the backstop;
//! - crops stored but not decided and events committed but not published carry the replica that
//!   holds them (`claimed_by`, `claimed_us`); another replica takes them over once that claim is
//!   older than the lease (`claims.rs`), and deciding a crop twice folds nothing twice.
//!
//! Crops' JPEGs stay in the row (`bytea`), as in SQLite: a crop and its message commit together,
//! and every replica's API serves every crop without a shared folder.
//!
//! One connection per replica behind a mutex (the store is called from blocking threads), made
//! again when the server dropped it. No TLS to the server (`NoTls`): run it on loopback, a Unix
//! socket or a private network (`sslmode=require` is refused).

mod claims;
mod fold;
mod queries;
mod schema;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cascade_shared::clock::micros;
use postgres::{Client, NoTls};

use super::StoreError;

/// A PostgreSQL store for one replica.
pub struct PgStore {
    config: postgres::Config,
    client: Mutex<Client>,
    /// This replica's name in claims (its MQTT client id).
    replica: String,
    cooldown_us: i64,
    lease_us: i64,
}

impl PgStore {
    /// Connects to `url` (a libpq connection string or URL) and brings the schema up to date.
    /// Errors never show the connection string (it may hold a password).
    pub fn connect(
        url: &str,
        replica: &str,
        cooldown: Duration,
        lease: Duration,
    ) -> Result<Self, StoreError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Url(e.to_string()))?;
        let mut client = config.connect(NoTls).map_err(StoreError::Connect)?;
        schema::migrate(&mut client)?;
        Ok(Self {
            config,
            client: Mutex::new(client),
            replica: replica.to_string(),
            cooldown_us: micros(cooldown),
            lease_us: micros(lease),
        })
    }

    /// The connection, made again when the server closed it.
    fn client(&self) -> Result<MutexGuard<'_, Client>, StoreError> {
        let mut c = self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.is_closed() {
            *c = self.config.connect(NoTls).map_err(StoreError::Connect)?;
        }
        Ok(c)
    }

    /// Whether a write transaction can start (for `/readyz`).
    pub fn writable(&self) -> bool {
        self.client()
            .and_then(|mut c| Ok(c.batch_execute("BEGIN READ WRITE; ROLLBACK;")?))
            .is_ok()
    }

    pub fn schema_version(&self) -> Result<usize, StoreError> {
        schema::version(&mut *self.client()?)
    }
}

/// Microseconds since the Unix epoch on this machine's clock (claims and leases; replicas'
/// clocks are assumed within a small part of the lease of each other).
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, micros)
}

/// A `u64` from the wire as a PostgreSQL `bigint` (ids beyond `i64::MAX` wrap, as in SQLite).
fn big(v: u64) -> i64 {
    v as i64
}

#[cfg(test)]
mod tests;
