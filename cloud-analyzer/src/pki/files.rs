//! Writing the PKI's files: each one whole or not at all (a temporary file renamed over it),
//! private keys 0600 from their creation, certificates and the CRL 0644, new folders 0700.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::PkiError;

/// Who may read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// 0600: private keys and the CA's bookkeeping.
    Private,
    /// 0644: certificates and the CRL (the broker reads them).
    Public,
}

/// Replaces `path` with `bytes` atomically: readers see the old file or the new one, never a part.
pub fn write(path: &Path, bytes: &[u8], access: Access) -> Result<(), PkiError> {
    let tmp = temporary(path);
    let written = write_new(&tmp, bytes, access).and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        PkiError::io(path, e)
    })
}

fn write_new(path: &Path, bytes: &[u8], access: Access) -> std::io::Result<()> {
    let mut file = match access {
        Access::Private => cascade_shared::private::create(path)?,
        Access::Public => std::fs::File::create_new(path)?,
    };
    #[cfg(unix)]
    if access == Access::Public {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".to_string(), |n| n.to_string_lossy().into_owned());
    let tag: u64 = rand::random();
    path.with_file_name(format!(".{name}.{tag:016x}.tmp"))
}

/// Creates `dir` 0700 if it is missing; an existing folder is left as it is (it may be the
/// broker's, shared with its service user).
pub fn ensure_dir(dir: &Path) -> Result<(), PkiError> {
    if dir.is_dir() {
        return Ok(());
    }
    cascade_shared::private::dir(dir).map_err(|e| PkiError::io(dir, e))
}

/// An exclusive lock on the CA folder for one command: two commands never interleave their
/// index updates. Released when dropped (or when the process ends).
#[derive(Debug)]
pub struct Lock {
    _file: std::fs::File,
}

impl Lock {
    pub fn take(dir: &Path) -> Result<Lock, PkiError> {
        let path = dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| PkiError::io(&path, e))?;
        file.lock().map_err(|e| PkiError::io(&path, e))?;
        Ok(Lock { _file: file })
    }
}
