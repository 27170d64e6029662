//! Docker for the container tests (design/containers.md): whether an engine answers and the local
//! base image is there (else the tests skip, saying so), the analyzer's image built by
//! `scripts/build-image.sh` from the debug binary the suite built, and guards that remove their
//! containers, images and compose projects when dropped, on failure too.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{binary, repo_root};

/// The local Debian 12 base image (`scripts/base-image.sh`).
pub const BASE: &str = "cascade/debian:bookworm";

/// `Some(())` when a Docker engine answers and the base image is in it; otherwise prints
/// `skipped: <why>` and returns `None`.
pub fn available() -> Option<()> {
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    if !engine.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no Docker engine answers here (docker info failed)");
        return None;
    }
    if docker(&["image", "inspect", BASE]).is_err() {
        eprintln!(
            "skipped: the base image {BASE} is not in the engine (run scripts/base-image.sh)"
        );
        return None;
    }
    Some(())
}

/// Runs `docker ARGS`: its stdout (trimmed), or an error with its stderr.
pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    run(Command::new("docker").args(args))
}

/// Runs a command: its stdout (trimmed), or an error naming it, with its output.
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Builds `image` from `dockerfile` (text, no build context) unless the engine has it.
pub fn build_once(image: &str, dockerfile: &str) -> anyhow::Result<()> {
    if docker(&["image", "inspect", image]).is_ok() {
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

/// A name unique to this test process and `what` (containers, images, compose projects).
pub fn unique(what: &str) -> String {
    format!("cascade-test-{what}-{}", std::process::id())
}

/// An image, removed on drop.
#[derive(Debug)]
pub struct Image {
    pub tag: String,
}

impl Image {
    /// The analyzer's image from the workspace's (debug) `cloud-analyzer` binary, through
    /// `scripts/build-image.sh`.
    pub fn analyzer(name: &str) -> anyhow::Result<Self> {
        let tag = format!("cascade/cloud-analyzer:{name}");
        let image = Self { tag };
        let bin = binary("cloud-analyzer");
        run(Command::new(repo_root().join("scripts/build-image.sh"))
            .arg("--binary")
            .arg(&bin)
            .args(["--tag", image.tag.as_str()]))?;
        Ok(image)
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.tag]);
    }
}

/// A running container, removed (with its anonymous volumes) on drop.
#[derive(Debug)]
pub struct Container {
    pub name: String,
    /// Removed on drop (a compose project's containers are removed by its `down`).
    owned: bool,
}

impl Container {
    /// `docker run -d --name NAME ARGS` (ARGS end with the image and its arguments).
    pub fn run(name: &str, args: &[&str]) -> anyhow::Result<Self> {
        let c = Self {
            name: name.into(),
            owned: true,
        };
        let _ = docker(&["rm", "-f", "-v", name]);
        let mut all = vec!["run", "-d", "--name", name];
        all.extend_from_slice(args);
        docker(&all)?;
        Ok(c)
    }

    /// The loopback address the container's `port` (TCP) is published on.
    pub fn host_port(&self, port: u16) -> anyhow::Result<SocketAddr> {
        let out = docker(&["port", &self.name, &format!("{port}/tcp")])?;
        let first = out.lines().next().unwrap_or_default();
        first
            .parse()
            .map_err(|e| anyhow::anyhow!("port {port} of {}: {first:?}: {e}", self.name))
    }

    /// Its log (stdout and stderr).
    pub fn logs(&self) -> String {
        Command::new("docker")
            .args(["logs", &self.name])
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

    /// A container of the base image that sleeps until dropped: a throwaway root to install in.
    pub fn throwaway(what: &str) -> anyhow::Result<Self> {
        Self::run(&unique(what), &[BASE, "sleep", "infinity"])
    }

    /// Runs `script` with bash in the container: its stdout, or an error with all it printed.
    pub fn sh(&self, script: &str) -> anyhow::Result<String> {
        let (ok, out) = self.try_sh(script);
        anyhow::ensure!(ok, "in {}: `{script}` failed:\n{out}", self.name);
        Ok(out)
    }

    /// Runs `script` with bash in the container: whether it succeeded, and its stdout + stderr.
    pub fn try_sh(&self, script: &str) -> (bool, String) {
        match Command::new("docker")
            .args(["exec", &self.name, "bash", "-c", script])
            .output()
        {
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

    /// Copies a host file to `dest` inside the container (its mode and owner as on the host).
    pub fn copy_in(&self, src: &Path, dest: &str) -> anyhow::Result<()> {
        run(Command::new("docker")
            .arg("cp")
            .arg(src)
            .arg(format!("{}:{dest}", self.name)))
        .map(drop)
    }

    /// Writes `text` to `dest` inside the container.
    pub fn write(&self, dest: &str, text: &str) -> anyhow::Result<()> {
        let tmp = tempfile::NamedTempFile::new()?;
        std::fs::write(tmp.path(), text)?;
        self.copy_in(tmp.path(), dest)
    }

    /// `docker inspect -f FORMAT`.
    pub fn inspect(&self, format: &str) -> String {
        docker(&["inspect", "-f", format, &self.name]).unwrap_or_default()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let _ = docker(&["rm", "-f", "-v", &self.name]);
    }
}

/// How compose is run here: the `docker compose` plugin, else `docker-compose` (v1, Debian's
/// package); `None` (said on stderr as a skip) when neither answers.
pub fn compose_command() -> Option<Vec<String>> {
    let works = |cmd: &[&str]| {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let found = [&["docker", "compose"][..], &["docker-compose"][..]]
        .into_iter()
        .find(|c| works(c))
        .map(|c| c.iter().map(|s| (*s).to_string()).collect());
    if found.is_none() {
        eprintln!(
            "skipped: neither `docker compose` nor `docker-compose` works here (apt-get install docker-compose)"
        );
    }
    found
}

/// A compose project, `down -v` on drop.
#[derive(Debug)]
pub struct Compose {
    command: Vec<String>,
    file: std::path::PathBuf,
    pub project: String,
    env: Vec<(String, String)>,
}

impl Compose {
    /// A project named `project` of `file`, run with `env` added to its environment.
    pub fn new(command: Vec<String>, file: &Path, project: &str, env: &[(&str, &str)]) -> Self {
        Self {
            command,
            file: file.to_path_buf(),
            project: project.into(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        }
    }

    /// `compose -p PROJECT -f FILE ARGS`.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut cmd = Command::new(&self.command[0]);
        cmd.args(&self.command[1..])
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(&self.file)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        run(&mut cmd)
    }

    /// The container of `service` (its first replica).
    pub fn container(&self, service: &str) -> anyhow::Result<Container> {
        let id = self.run(&["ps", "-q", service])?;
        let id = id.lines().next().unwrap_or_default().to_string();
        anyhow::ensure!(!id.is_empty(), "no container for {service}");
        Ok(Container {
            name: id,
            owned: false,
        })
    }

    /// Every service's log.
    pub fn logs(&self) -> String {
        self.run(&["logs", "--no-color"])
            .unwrap_or_else(|e| e.to_string())
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "--remove-orphans", "-t", "5"]);
    }
}

/// A token from the workspace's `cloud-analyzer token`: (the token, its `[[api.token]]` lines).
pub fn api_token(name: &str, scope: &str) -> anyhow::Result<(String, String)> {
    let out = Command::new(binary("cloud-analyzer"))
        .args(["token", "--name", name, "--scope", scope])
        .output()?;
    anyhow::ensure!(out.status.success(), "cloud-analyzer token: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = stderr
        .split_once("add to the analyzer's config:\n")
        .map(|(_, l)| l.to_string())
        .ok_or_else(|| anyhow::anyhow!("no config lines in {stderr}"))?;
    Ok((
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        lines,
    ))
}

/// A shipped analyzer config (`rel` to the repository) for a test: the generated test detector
/// instead of the real model, and `token_lines` instead of its locked `[[api.token]]`.
pub fn test_config(rel: &str, token_lines: &str) -> anyhow::Result<String> {
    let shipped = std::fs::read_to_string(repo_root().join(rel))?;
    // The table's header on a line of its own (comments name it too).
    let (head, _) = shipped
        .split_once("\n[[api.token]]\n")
        .ok_or_else(|| anyhow::anyhow!("{rel} has no [[api.token]] table"))?;
    Ok(head.replace("yolov8n-fp32.toml", "blob-yolov8-fp32.toml") + "\n" + token_lines)
}

/// Makes `path` readable (and a folder enterable) by the images' non-root users.
pub fn world_readable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if path.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}
