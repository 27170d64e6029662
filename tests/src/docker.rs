//! The local Docker engine for tests that need a throwaway root: whether one answers, images built
//! from the project's local base (`scripts/base-image.sh`: no registry can be reached here), and
//! containers removed when their guard drops, also when the test fails.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The local Debian 12 base every test image starts from.
pub const BASE_IMAGE: &str = "cascade/debian:bookworm";

/// Why Docker tests cannot run here, or `None` when the engine answers and the base image is there.
pub fn unavailable() -> Option<String> {
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match info {
        Err(e) => return Some(format!("no docker command ({e})")),
        Ok(s) if !s.success() => return Some("no Docker engine answers (docker info)".into()),
        Ok(_) => {}
    }
    if !image_exists(BASE_IMAGE) {
        return Some(format!(
            "the base image {BASE_IMAGE} is absent: run scripts/base-image.sh (scripts/setup.sh does)"
        ));
    }
    None
}

pub fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds `image` from `dockerfile` (text; no build context) unless it exists.
pub fn build_once(image: &str, dockerfile: &str) -> anyhow::Result<()> {
    if image_exists(image) {
        return Ok(());
    }
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", image, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, dockerfile.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker build {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A running container, force-removed on drop.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d --name NAME ARGS... IMAGE`; the name is unique to this process and `tag`.
    pub fn run(tag: &str, args: &[&str], image: &str) -> anyhow::Result<Self> {
        let name = format!("cascade-test-{tag}-{}", std::process::id());
        let _ = Command::new("docker").args(["rm", "-f", &name]).output();
        let out = Command::new("docker")
            .args(["run", "-d", "--name", &name])
            .args(args)
            .arg(image)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "docker run {image}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(Self { name })
    }

    /// `sh -c SCRIPT` inside the container.
    pub fn sh(&self, script: &str) -> anyhow::Result<Output> {
        Ok(Command::new("docker")
            .args(["exec", &self.name, "sh", "-c", script])
            .output()?)
    }

    /// `sh -c SCRIPT` that must succeed; its stdout.
    pub fn ok(&self, script: &str) -> anyhow::Result<String> {
        let out = self.sh(script)?;
        anyhow::ensure!(
            out.status.success(),
            "in {}: `{script}` failed: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Copies a host file to `dest` inside the container.
    pub fn copy_in(&self, src: &Path, dest: &str) -> anyhow::Result<()> {
        let out = Command::new("docker")
            .arg("cp")
            .arg(src)
            .arg(format!("{}:{dest}", self.name))
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "docker cp {} -> {dest}: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// Writes `text` to `dest` inside the container.
    pub fn write(&self, dest: &str, text: &str) -> anyhow::Result<()> {
        let tmp = tempfile::NamedTempFile::new()?;
        std::fs::write(tmp.path(), text)?;
        self.copy_in(tmp.path(), dest)
    }

    /// The container's own log (its PID 1's output).
    pub fn logs(&self) -> String {
        Command::new("docker")
            .args(["logs", "--tail", "50", &self.name])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
    }
}
