//! A buffer that survives a damaged file, and sequence numbers that never go backwards.
//!
//! On open, a file redb cannot open (truncated, garbage, bit flips; redb's own panics are caught)
//! is salvaged read-only (every record that still reads, every camera's sequence number), moved
//! aside as `crops.redb.corrupt-{unix seconds}`, and a fresh buffer takes the salvaged records.
//!
//! Sequence numbers are also reserved in a small file beside the database, in blocks of
//! [`SEQ_BLOCK`]: a camera's numbers continue from its reservation whenever the database has none
//! for it (a recreated, emptied or zero-length file), so they only ever increase. The file is
//! rewritten (atomically, fsynced) once per block, not per crop.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::txn::{RECORDS, decode};

/// Sequence numbers reserved at a time.
pub const SEQ_BLOCK: u64 = 1000;
const SEQ_FILE: &str = "sequences";
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// What opening a damaged buffer did; the agent reports it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub reason: String,
    pub moved_to: PathBuf,
    /// Records read back from the damaged file and kept.
    pub salvaged: usize,
}

/// Whether an open failure means a damaged file (rather than, say, a permission or disk error
/// that moving the file aside would not fix).
pub fn is_damage(e: &redb::Error) -> bool {
    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    match e {
        // redb reports a file that is not a database (or is cut short) as I/O errors of these
        // kinds; a full disk, a read-only file system or a permission problem are not damage.
        redb::Error::Io(io) => matches!(io.kind(), InvalidData | InvalidInput | UnexpectedEof),
        redb::Error::DatabaseAlreadyOpen => false,
        _ => true,
    }
}

/// Runs `f`, turning a panic inside redb into an error.
pub fn caught<T>(f: impl FnOnce() -> Result<T, redb::Error>) -> Result<T, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(p) => Err(p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .map_or_else(|| "redb panicked".into(), |m| format!("redb panicked: {m}"))),
    }
}

/// What could be read back from a damaged file: (created, payload) oldest first, and sequences.
#[derive(Debug, Default)]
pub struct Salvage {
    pub records: Vec<(i64, Vec<u8>)>,
    pub sequences: BTreeMap<String, u64>,
}

/// Reads what it can of `path`, read-only, stopping at the first unreadable entry of each table.
pub fn salvage(path: &Path) -> Salvage {
    let mut out = Salvage::default();
    let _ = caught(|| {
        let db = Database::open(path)?;
        let tx = db.begin_read()?;
        if let Ok(meta) = tx.open_table(META) {
            for (k, v) in meta.iter()?.map_while(Result::ok) {
                if let Some(camera) = k.value().strip_prefix("seq/") {
                    out.sequences.insert(camera.to_string(), v.value());
                }
            }
        }
        let table = tx.open_table(RECORDS)?;
        for (k, v) in table.iter()?.map_while(Result::ok) {
            if let Some(r) = decode(k.value(), v.value()) {
                out.records.push((r.created_us, r.payload));
            }
        }
        Ok(())
    });
    out
}

/// For `check`: why the buffer file in `dir` cannot be opened as it is (`None` when it opens,
/// or there is none yet). Read-only; never changes the file.
pub fn inspect(dir: &Path) -> Option<String> {
    let path = dir.join(super::FILE);
    if !path.is_file() {
        return None;
    }
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
        return Some(format!("{}: empty (zero bytes)", path.display()));
    }
    let opened = caught(|| {
        let db = match Database::open(&path) {
            // The running agent holds it: it opened, so it is not damaged.
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Ok(()),
            r => r?,
        };
        let tx = db.begin_read()?;
        if let Ok(table) = tx.open_table(RECORDS) {
            for item in table.iter()? {
                item?;
            }
        }
        Ok(())
    });
    opened
        .err()
        .map(|e| format!("{}: damaged ({e})", path.display()))
}

/// Moves the damaged file aside; returns where it went.
pub fn move_aside(path: &Path, now_unix_s: u64) -> std::io::Result<PathBuf> {
    let mut to = path.as_os_str().to_owned();
    to.push(format!(".corrupt-{now_unix_s}"));
    let to = PathBuf::from(to);
    std::fs::rename(path, &to)?;
    Ok(to)
}

/// The reservations file: `camera reserved_up_to` per line.
#[derive(Debug)]
pub struct Reservations {
    path: PathBuf,
    map: Mutex<BTreeMap<String, u64>>,
}

impl Reservations {
    /// Reads `dir`'s reservations (none when the file is missing or unreadable lines).
    pub fn load(dir: &Path) -> Self {
        let path = dir.join(SEQ_FILE);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let map = text
            .lines()
            .filter_map(|l| {
                let (cam, n) = l.rsplit_once(' ')?;
                Some((cam.to_string(), n.trim().parse().ok()?))
            })
            .collect();
        Self {
            path,
            map: Mutex::new(map),
        }
    }

    /// The first sequence number `camera` may take when the database has none for it.
    pub fn floor(&self, camera: &str) -> u64 {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(camera).copied().unwrap_or(1)
    }

    /// Makes sure `seq` is covered by a reservation written to disk.
    pub fn cover(&self, camera: &str, seq: u64) -> std::io::Result<()> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.get(camera).is_some_and(|r| seq < *r) {
            return Ok(());
        }
        map.insert(camera.to_string(), seq + SEQ_BLOCK);
        let text: String = map.iter().map(|(c, n)| format!("{c} {n}\n")).collect();
        let tmp = self.path.with_extension("tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
    }

    /// Raises reservations to at least `seqs` + 1 (sequences salvaged from a damaged file).
    pub fn raise(&self, seqs: &BTreeMap<String, u64>) -> std::io::Result<()> {
        for (camera, seq) in seqs {
            if self.floor(camera) <= *seq {
                self.cover(camera, *seq)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_tells_a_damaged_file_without_touching_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(inspect(dir.path()), None, "no file yet");
        let path = dir.path().join(super::super::FILE);
        drop(Database::create(&path).expect("a healthy buffer"));
        assert_eq!(inspect(dir.path()), None);
        std::fs::write(&path, b"").expect("write");
        assert!(inspect(dir.path()).is_some_and(|m| m.contains("empty")));
        std::fs::write(&path, vec![0x5A; 8192]).expect("write");
        let msg = inspect(dir.path()).expect("damaged");
        assert!(msg.contains("damaged"), "{msg}");
        assert_eq!(std::fs::read(&path).expect("still there").len(), 8192);
    }

    #[test]
    fn reservations_survive_a_reload_and_are_written_once_per_block() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Reservations::load(dir.path());
        assert_eq!(r.floor("cam"), 1);
        r.cover("cam", 1).expect("written");
        let written = std::fs::metadata(dir.path().join(SEQ_FILE)).expect("file");
        r.cover("cam", 500).expect("covered already");
        assert_eq!(
            std::fs::metadata(dir.path().join(SEQ_FILE))
                .expect("file")
                .modified()
                .ok(),
            written.modified().ok()
        );
        assert_eq!(Reservations::load(dir.path()).floor("cam"), 1 + SEQ_BLOCK);
        let mut salvaged = BTreeMap::new();
        salvaged.insert("cam".to_string(), 5_000);
        r.raise(&salvaged).expect("raised");
        assert_eq!(
            Reservations::load(dir.path()).floor("cam"),
            5_000 + SEQ_BLOCK
        );
    }
}
