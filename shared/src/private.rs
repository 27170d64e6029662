//! State is private to the service's user: directories 0700, files 0600 (crops, keys, the store).
//! A no-op where Unix permissions do not exist.

use std::path::Path;

/// Creates `dir` (and parents) and makes it 0700.
pub fn dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)
}

/// Creates a new file (refused if `path` exists) that is 0600 from its creation: a private key
/// written into it is never readable by others, not even between its creation and a `chmod`.
pub fn create(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Makes an existing file 0600.
pub fn file(path: &Path) -> std::io::Result<()> {
    set_mode(path, 0o600)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn state_is_private() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path().join("state/buffer");
        super::dir(&d).expect("dir");
        let f = d.join("crops.redb");
        std::fs::write(&f, b"x").expect("write");
        super::file(&f).expect("file");
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!((mode(&d), mode(&f)), (0o700, 0o600));
    }

    #[test]
    fn created_files_are_private_and_new() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = tmp.path().join("key.pem");
        drop(super::create(&f).expect("create"));
        let mode = std::fs::metadata(&f).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(super::create(&f).is_err(), "an existing file is not reused");
    }
}
