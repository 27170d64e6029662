//! Checks the binaries' `check` commands share: PEM files that parse, folders that are writable.

use std::path::Path;

use crate::Problems;

/// Each `(field, file)` that is set must be a readable PEM file.
pub fn pem_files(files: &[(&str, Option<&Path>)], p: &mut Problems) {
    for (field, file) in files {
        if let Some(f) = file {
            match std::fs::read_to_string(f) {
                Ok(text) if text.contains("-----BEGIN ") => {}
                Ok(_) => p.push(field, format!("{}: not a PEM file", f.display())),
                Err(e) => p.push(field, format!("{}: {e}", f.display())),
            }
        }
    }
}

/// `dir` exists (or can be made) and a file can be written in it.
pub fn writable_dir(field: &str, dir: &Path, p: &mut Problems) {
    let probe = dir.join(".cascade-write-check");
    let ok = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    if let Err(e) = ok {
        p.push(field, format!("{}: not writable: {e}", dir.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_non_pem_files_are_named() {
        let dir = std::env::temp_dir().join(format!("cascade-checks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "hello").expect("write");
        let mut p = Problems::new();
        pem_files(
            &[
                ("a.ca_file", Some(&junk)),
                ("a.client_cert_file", Some(Path::new("/nonexistent.pem"))),
                ("a.client_key_file", None),
            ],
            &mut p,
        );
        let all: Vec<&str> = p.iter().collect();
        assert_eq!(all.len(), 2, "{p}");
        assert!(all[0].starts_with("a.ca_file") && all[0].contains("not a PEM file"));
        assert!(all[1].contains("/nonexistent.pem"));
        let mut p = Problems::new();
        writable_dir("x.dir", &dir.join("sub"), &mut p);
        assert!(p.is_empty(), "{p}");
        writable_dir("x.dir", &junk.join("under-a-file"), &mut p);
        assert!(p.iter().any(|l| l.starts_with("x.dir")), "{p}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
