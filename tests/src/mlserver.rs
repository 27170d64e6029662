//! A real KServe v2 inference server for the tests and the benchmark: MLServer (from PyPI, in the
//! `.venv-mlserver` that `scripts/setup.sh` makes) running an ONNX model with ONNX Runtime through
//! the small runtime in `tests/kserve/onnx_runtime.py`, on free loopback ports in a temp dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{eventually, free_port, http_get, repo_root};

/// The venv's `mlserver`, or why there is none (the caller prints `skipped: <why>`).
pub fn mlserver_binary() -> Result<PathBuf, String> {
    let bin = repo_root().join(".venv-mlserver/bin/mlserver");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is absent (scripts/setup.sh makes .venv-mlserver from scripts/requirements-mlserver.txt)",
            bin.display()
        ))
    }
}

/// How the server runs its model.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// The model's name on the server.
    pub name: String,
    pub onnx: PathBuf,
    /// MLServer's adaptive batching: requests merged into one run, up to this many (1: off).
    pub max_batch_size: usize,
    /// The longest a request waits for others to merge with, in seconds.
    pub max_batch_time: f64,
    /// ONNX Runtime's intra-op threads in the server.
    pub threads: usize,
}

impl ModelSettings {
    pub fn new(name: &str, onnx: &Path) -> Self {
        Self {
            name: name.into(),
            onnx: onnx.to_path_buf(),
            max_batch_size: 1,
            max_batch_time: 0.0,
            threads: 2,
        }
    }
}

/// A running MLServer (killed on drop).
#[derive(Debug)]
pub struct MlServer {
    pub port: u16,
    dir: PathBuf,
    threads: usize,
    child: Option<Child>,
}

impl MlServer {
    /// Writes the settings into `dir` and starts the server; waits until `/v2/health/ready` and
    /// the model's `/ready` answer 200.
    pub fn start(dir: &Path, model: &ModelSettings) -> anyhow::Result<Self> {
        let models = dir.join("models");
        let model_dir = models.join(&model.name);
        std::fs::create_dir_all(&model_dir)?;
        std::fs::copy(
            repo_root().join("tests/kserve/onnx_runtime.py"),
            models.join("onnx_runtime.py"),
        )?;
        let settings = serde_json::json!({
            "name": model.name,
            "implementation": "onnx_runtime.OnnxRuntimeModel",
            "max_batch_size": model.max_batch_size,
            "max_batch_time": model.max_batch_time,
            "parameters": { "uri": model.onnx },
        });
        std::fs::write(model_dir.join("model-settings.json"), settings.to_string())?;
        let port = free_port();
        let server = serde_json::json!({
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "parallel_workers": 0,
            "host": "127.0.0.1",
        });
        std::fs::write(models.join("settings.json"), server.to_string())?;
        let mut s = Self {
            port,
            dir: dir.to_path_buf(),
            threads: model.threads,
            child: None,
        };
        s.restart()?;
        Ok(s)
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("mlserver.log")).unwrap_or_default()
    }

    /// Starts it again (after [`MlServer::kill`]) on the same port and waits until it is ready.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let bin = mlserver_binary().map_err(anyhow::Error::msg)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mlserver.log"))?;
        let child = Command::new(bin)
            .arg("start")
            .arg(self.dir.join("models"))
            .current_dir(self.dir.join("models"))
            .env("ORT_THREADS", self.threads.to_string())
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let addr = self.addr();
        let ready = |path: &str| http_get(addr, path).is_ok_and(|(s, _)| s == 200);
        eventually(Duration::from_secs(90), || {
            ready("/v2/health/ready") && ready("/v2/health/live")
        })
        .map_err(|_| anyhow::anyhow!("MLServer not ready; log:\n{}", self.log_text()))
    }

    /// SIGKILL: the server is gone at once (connections refused).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for MlServer {
    fn drop(&mut self) {
        self.kill();
    }
}
