//! The I/O of power management behind one trait: commands (`nvpmodel`, `jetson_clocks`,
//! `vcgencmd`) and sysfs files. [`SystemIo`] is the real one; tests give it a `PATH` holding fake
//! commands and read a fake sysfs tree in a temp dir.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::PowerError;

pub trait PowerIo: Send + Sync {
    /// Runs `program` with `args`; its standard output when it exits with 0.
    fn run(&self, program: &str, args: &[&str]) -> Result<String, PowerError>;
    fn read(&self, path: &Path) -> io::Result<String>;
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
    /// The entries of `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
}

/// Commands and files of this machine.
#[derive(Debug, Clone, Default)]
pub struct SystemIo {
    /// A `PATH` for the commands (tests); default: the agent's own.
    pub path: Option<OsString>,
}

impl PowerIo for SystemIo {
    fn run(&self, program: &str, args: &[&str]) -> Result<String, PowerError> {
        let command = format!("{program} {}", args.join(" "));
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(std::process::Stdio::null());
        if let Some(path) = &self.path {
            cmd.env("PATH", path);
        }
        let out = cmd.output().map_err(|e| PowerError::Command {
            command: command.clone(),
            reason: e.to_string(),
        })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(PowerError::Command {
                command,
                reason: format!("{}: {}", out.status, stderr.trim()),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        std::fs::write(path, value)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
            .flatten()
            .map(|e| e.path())
            .collect();
        out.sort();
        Ok(out)
    }
}

/// `path` with each component holding a `*` replaced by the first entry (sorted) matching it
/// (`.../hwmon/hwmon*/in1_input`); `None` when one matches nothing.
pub fn resolve(io: &dyn PowerIo, path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        let name = part.as_os_str().to_string_lossy();
        let Some((before, after)) = name.split_once('*') else {
            out.push(part);
            continue;
        };
        let found = io.list(&out).ok()?.into_iter().find(|p| {
            p.file_name().map(|n| n.to_string_lossy()).is_some_and(|n| {
                n.starts_with(before) && n.ends_with(after) && n.len() >= name.len() - 1
            })
        })?;
        out = found;
    }
    Some(out)
}

#[cfg(test)]
pub mod testing {
    //! A fake command on a temp `PATH` that records its calls.

    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    /// Writes an executable `name` into `dir` running `body` (sh).
    pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// A fake `nvpmodel` in `dir`: `-q` prints the mode in `dir/mode` (starting at `mode`), `-m N`
    /// stores N; every call is appended to `dir/calls`. Shell built-ins only: `dir` may be the
    /// whole `PATH`.
    pub fn fake_nvpmodel(dir: &Path, mode: u32) {
        std::fs::write(dir.join("mode"), mode.to_string()).expect("mode");
        let d = dir.display();
        script(
            dir,
            "nvpmodel",
            &format!(
                "echo \"$*\" >> {d}/calls\n\
                 if [ \"$1\" = -q ]; then read -r m < {d}/mode; echo \"NV Power Mode: MODE_$m\"; echo \"$m\"; fi\n\
                 if [ \"$1\" = -m ]; then echo \"$2\" > {d}/mode; fi"
            ),
        );
    }

    /// The recorded calls.
    pub fn calls(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_command_on_the_given_path_runs_and_failures_say_which() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::fake_nvpmodel(dir.path(), 2);
        let io = SystemIo {
            path: Some(dir.path().as_os_str().to_owned()),
        };
        let out = io.run("nvpmodel", &["-q"]).expect("runs");
        assert!(out.ends_with("2\n"), "{out}");
        assert_eq!(testing::calls(dir.path()), vec!["-q"]);
        let e = io
            .run("cascade-no-such-command", &["x"])
            .expect_err("missing");
        assert!(
            e.to_string().starts_with("cascade-no-such-command x: "),
            "{e}"
        );
    }

    #[test]
    fn a_star_takes_the_first_matching_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        for n in ["hwmon3", "hwmon1"] {
            std::fs::create_dir_all(dir.path().join("hwmon").join(n)).expect("mkdir");
        }
        let io = SystemIo::default();
        let got = resolve(&io, &dir.path().join("hwmon/hwmon*/in1_input")).expect("found");
        assert_eq!(got, dir.path().join("hwmon/hwmon1/in1_input"));
        assert!(resolve(&io, &dir.path().join("none*/x")).is_none());
    }
}
