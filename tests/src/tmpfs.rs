//! A small real file system that fills up: a tmpfs mounted for one test (root only; the caller
//! skips, saying so, elsewhere), and a filler that takes its free space.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at `path`, unmounted on drop.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (such as `16m`) at `at`; `None`, after saying so, when this
    /// process may not mount.
    pub fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (disk-full tests need root)");
            return None;
        }
        Some(Self {
            path: at.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Writes zeros to `path` until its file system is full or `limit` bytes are written; returns
/// the bytes written.
pub fn fill(path: &Path, limit: u64) -> u64 {
    use std::io::Write;
    let Ok(mut f) = std::fs::File::create(path) else {
        return 0;
    };
    let block = vec![0u8; 64 * 1024];
    let mut n = 0;
    while n < limit && f.write_all(&block).is_ok() {
        n += block.len() as u64;
    }
    let _ = f.sync_all();
    n
}
