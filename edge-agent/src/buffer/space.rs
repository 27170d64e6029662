//! Running out of disk. A reserve file beside the database (preallocated with real blocks) is
//! given back the moment the disk is full, so redb can still reopen, delete and reuse pages; the
//! buffer then runs degraded: its byte bound drops below what it holds, so each push evicts the
//! oldest crops first and new ones reuse their pages instead of growing the file. When the disk has
//! room again (the reserve can be written anew, with as much to spare), the bound is lifted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const RESERVE_FILE: &str = "reserve";
/// Free bytes below which a buffer opens degraded.
pub const LOW_WATER: u64 = 1 << 20;
/// The reserve: 1 % of the byte bound, between these.
const MIN_RESERVE: u64 = 4 << 20;
const MAX_RESERVE: u64 = 64 << 20;

/// Whether `e` means the disk (or the database's handle after a failed write) is unusable for
/// writing: a full disk, a quota, or redb's "a previous I/O error" latch.
pub fn is_full(e: &redb::Error) -> bool {
    match e {
        redb::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::StorageFull
                || io.kind() == std::io::ErrorKind::QuotaExceeded
                || io.raw_os_error() == Some(28)
        }
        redb::Error::PreviousIo => true,
        _ => false,
    }
}

/// Free bytes for an unprivileged writer on the file system of `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[derive(Debug)]
pub(super) struct Space {
    reserve: PathBuf,
    reserve_bytes: u64,
    degraded: AtomicBool,
    /// While degraded, the byte bound pushes evict down to.
    limit: AtomicU64,
}

impl Space {
    pub fn new(dir: &Path, max_bytes: u64) -> Self {
        Self {
            reserve: dir.join(RESERVE_FILE),
            reserve_bytes: (max_bytes / 100).clamp(MIN_RESERVE, MAX_RESERVE),
            degraded: AtomicBool::new(false),
            limit: AtomicU64::new(u64::MAX),
        }
    }

    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// The byte bound in force: `max_bytes`, or lower while degraded.
    pub fn bound(&self, max_bytes: u64) -> u64 {
        max_bytes.min(self.limit.load(Ordering::Acquire))
    }

    /// The disk is full while the buffer holds `held` bytes: give the reserve back and bound the
    /// buffer to 3/4 of what it holds. Returns whether the reserve was there to give.
    pub fn full(&self, held: u64) -> bool {
        let released = self.release();
        let limit = held / 4 * 3;
        self.limit.fetch_min(limit, Ordering::AcqRel);
        self.degraded.store(true, Ordering::Release);
        released
    }

    /// Deletes the reserve; returns whether it was there.
    pub fn release(&self) -> bool {
        std::fs::remove_file(&self.reserve).is_ok()
    }

    /// Writes the reserve when it is missing and the disk has room for it and as much again.
    /// Returns whether the reserve is in place.
    pub fn ensure_reserve(&self) -> bool {
        if std::fs::metadata(&self.reserve).is_ok_and(|m| m.len() >= self.reserve_bytes) {
            return true;
        }
        let dir = self.reserve.parent().unwrap_or(Path::new("."));
        if free_bytes(dir).is_none_or(|free| free < 2 * self.reserve_bytes) {
            return false;
        }
        let written = write_zeros(&self.reserve, self.reserve_bytes);
        if written.is_err() {
            let _ = std::fs::remove_file(&self.reserve);
        }
        written.is_ok()
    }

    /// Leaves degraded mode when the reserve is back in place; returns whether it left.
    pub fn try_recover(&self) -> bool {
        if !self.degraded() || !self.ensure_reserve() {
            return false;
        }
        self.limit.store(u64::MAX, Ordering::Release);
        self.degraded.store(false, Ordering::Release);
        true
    }
}

/// Real zeros, not a sparse file: the blocks must be allocated to be given back later.
fn write_zeros(path: &Path, bytes: u64) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    let block = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_written_given_back_and_written_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Space::new(dir.path(), 1 << 30);
        assert_eq!(s.reserve_bytes, (1u64 << 30) / 100);
        assert!(s.ensure_reserve());
        let len = std::fs::metadata(dir.path().join(RESERVE_FILE)).map(|m| m.len());
        assert_eq!(len.ok(), Some(s.reserve_bytes));
        assert_eq!(s.bound(1000), 1000);
        assert!(s.full(800), "the reserve was there to give back");
        assert!(!dir.path().join(RESERVE_FILE).exists());
        assert!(s.degraded());
        assert_eq!(s.bound(1000), 600, "3/4 of what it held");
        assert!(s.try_recover(), "room again: the reserve is back");
        assert!(!s.degraded());
        assert_eq!(s.bound(1000), 1000);
    }

    #[test]
    fn disk_full_errors_are_told_apart() {
        let full = std::io::Error::from_raw_os_error(28);
        assert!(is_full(&redb::Error::Io(full)));
        assert!(is_full(&redb::Error::PreviousIo));
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!is_full(&redb::Error::Io(denied)));
    }
}
