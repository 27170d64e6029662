//! Debian packages in a throwaway root: the packages made by `scripts/package-deb.sh` from the
//! debug binaries beside the tests, and a container of the local base image
//! (`scripts/base-image.sh`, Debian 12) to install them in, removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, bail};

use crate::{binary, repo_root};

/// The base image the package tests start from.
pub const IMAGE: &str = "cascade/debian:bookworm";

/// Why the container tests cannot run here (no Docker engine, or no base image), if so.
pub fn unavailable() -> Option<String> {
    match Command::new("docker").args(["info"]).output() {
        Err(e) => return Some(format!("docker is not installed ({e})")),
        Ok(o) if !o.status.success() => {
            return Some("no Docker engine answers (`docker info` failed)".into());
        }
        Ok(_) => {}
    }
    let image = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match image {
        Ok(s) if s.success() => None,
        _ => Some(format!(
            "the image {IMAGE} is absent (scripts/base-image.sh builds it)"
        )),
    }
}

/// Builds the three packages at `version` into `out` from the debug binaries of this build.
pub fn build_packages(out: &Path, version: &str) -> anyhow::Result<Vec<PathBuf>> {
    let bin_dir = binary("edge-agent")
        .parent()
        .context("binary folder")?
        .to_path_buf();
    binary("cloud-analyzer");
    let o = Command::new(repo_root().join("scripts/package-deb.sh"))
        .args(["--profile", "debug", "--version", version, "--out"])
        .arg(out)
        .arg("--bin-dir")
        .arg(&bin_dir)
        .output()?;
    if !o.status.success() {
        bail!(
            "package-deb.sh failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let mut debs: Vec<PathBuf> = std::fs::read_dir(out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort();
    anyhow::ensure!(debs.len() == 3, "three packages, got {debs:?}");
    Ok(debs)
}

/// A container of [`IMAGE`] that sleeps until dropped (then removed with its files).
pub struct Container {
    name: String,
}

impl Container {
    pub fn start(tag: &str) -> anyhow::Result<Self> {
        let name = format!("cascade-test-{tag}-{}", std::process::id());
        let _ = Command::new("docker").args(["rm", "-f", &name]).output();
        let o = Command::new("docker")
            .args(["run", "-d", "--name", &name, IMAGE, "sleep", "infinity"])
            .output()?;
        if !o.status.success() {
            bail!("docker run: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(Self { name })
    }

    /// Runs `script` with bash in the container: whether it succeeded, and its stdout + stderr.
    pub fn try_sh(&self, script: &str) -> (bool, String) {
        match self.exec(script) {
            Ok(o) => (
                o.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
            ),
            Err(e) => (false, format!("docker exec: {e}")),
        }
    }

    /// Runs `script`; its stdout, or an error with everything it printed.
    pub fn sh(&self, script: &str) -> anyhow::Result<String> {
        let o = self.exec(script)?;
        if !o.status.success() {
            bail!(
                "`{script}` failed ({}):\n{}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    fn exec(&self, script: &str) -> std::io::Result<Output> {
        Command::new("docker")
            .args(["exec", &self.name, "bash", "-c", script])
            .output()
    }

    /// Copies a host file or folder to `dest` in the container.
    pub fn copy_in(&self, src: &Path, dest: &str) -> anyhow::Result<()> {
        let o = Command::new("docker")
            .arg("cp")
            .arg(src)
            .arg(format!("{}:{dest}", self.name))
            .output()?;
        if !o.status.success() {
            bail!("docker cp: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
    }
}

/// The packaged edge agent's config edited as an operator would for a box with no camera or
/// broker: the sample clip as its camera (looping, in real time), the generated test model, plain
/// MQTT to a broker on loopback. Run in the container after copying the clip to `clip`.
pub fn configure_agent_script(clip: &str, manifest: &str) -> String {
    format!(
        r#"set -e
f=/etc/cascade/edge-agent.toml
sed -i 's|^source = {{ kind = "v4l2", device = "/dev/video0" }}|source = {{ kind = "file", path = "{clip}", realtime = true, loop = true }}|' $f
sed -i 's|^manifest = "/var/lib/cascade/models/edge/manifest.toml"|manifest = "{manifest}"|' $f
sed -i 's|^port = 8883|port = 1883\ntls = false|; /^ca_file = /d; /^client_cert_file = /d; /^client_key_file = /d' $f
grep -q 'path = "{clip}"' $f && grep -q 'tls = false' $f && grep -q '"{manifest}"' $f
"#
    )
}
