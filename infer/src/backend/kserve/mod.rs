//! A model on an inference server speaking the KServe v2 (Open Inference) protocol over
//! HTTP/REST: Triton, OpenVINO Model Server, MLServer, KServe (`design/inference-server.md`).
//!
//! The [`Detector`](crate::Detector) around it does the same letterboxing and output decoding as
//! for a local model; this backend only moves tensors: one `POST .../infer` per batch (one
//! request for the whole batch when the server's model has a dynamic batch dimension), with
//! retries on failures worth retrying and a circuit breaker that stops calling a server that is
//! down. The server's metadata (input name, shapes, whether the batch is dynamic, whether it takes
//! binary tensors) is read on the first contact, which may come after start: a server that is
//! down at start is not an error, its requests fail (and are retried by the caller) until it
//! answers. [`ServerStatus`] holds what the analyzer's `/readyz` and metrics show.

pub mod breaker;
mod http;
pub mod protocol;
mod status;

use std::sync::Arc;
use std::time::Instant;

use cascade_shared::config::cloud::ServerConfig;

use self::breaker::Breaker;
use self::http::{Http, HttpError};
use self::protocol::ModelMetadata;
use super::{Backend, BackendError, BackendInfo, DType, InputData, InputTensor, OutputTensor};

pub use self::breaker::CircuitState;
pub use self::status::{Outcome, ServerHealth, ServerObserver, ServerStatus};

const NAME: &str = "kserve";

/// What went wrong with one request, after its retries. Either way the caller's crops wait and
/// are tried again: a server that refuses (a model not loaded yet, a batch over its limit) may
/// accept later, and `/readyz` says why meanwhile.
#[derive(Debug)]
struct Failure {
    message: String,
    /// The server answered (4xx, or a body that makes no sense), as opposed to no answer, a
    /// timeout or a 5xx/429.
    refused: bool,
}

impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Self {
        Self {
            refused: !e.retryable(),
            message: e.to_string(),
        }
    }
}

fn refused(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        refused: true,
    }
}

/// The server's model, as its metadata describes it.
#[derive(Debug, Clone)]
struct Model {
    input: String,
    /// Output names requested, in the order the detector expects them.
    outputs: Vec<String>,
}

pub struct KserveBackend {
    cfg: ServerConfig,
    http: Http,
    breaker: Breaker,
    status: Arc<ServerStatus>,
    /// `(width, height)` the manifest says the model takes.
    input_size: (u32, u32),
    /// The outputs the manifest names (SSD), else empty: the model's first output.
    wanted: Vec<String>,
    model: Option<Model>,
    binary: bool,
    info: BackendInfo,
}

impl KserveBackend {
    /// A client for the model `cfg` names, taking `input_size` FP32 images and giving `outputs`
    /// (the names the output decoder needs; empty: the model's first output). Tries the server
    /// once; one that does not answer yet is not an error (see the module's description). Fails
    /// only on a config the server can never work with (an unreadable CA file).
    pub fn connect(
        cfg: &ServerConfig,
        input_size: (u32, u32),
        outputs: Vec<String>,
        status: Arc<ServerStatus>,
    ) -> Result<Self, BackendError> {
        let http = Http::new(cfg).map_err(err)?;
        let provisional = if outputs.is_empty() {
            vec!["output0".to_string()]
        } else {
            outputs.clone()
        };
        let mut backend = Self {
            cfg: cfg.clone(),
            http,
            breaker: Breaker::new(cfg.breaker_failures, cfg.breaker_cooldown),
            status,
            input_size,
            wanted: outputs,
            model: None,
            binary: false,
            info: BackendInfo {
                name: format!("{NAME} {} model {}", cfg.base_url(), cfg.model),
                dtype: DType::F32,
                input_size: None,
                input_quant: None,
                dynamic_batch: false,
                outputs: provisional,
                provider: super::ProviderKind::Cpu,
                fallbacks: Vec::new(),
            },
        };
        let started = Instant::now();
        let first = backend.ensure_model();
        // A server that is down now is reported (status, metrics), not an error.
        let _ = backend.record(first, started);
        Ok(backend)
    }

    /// Reads the server's and the model's metadata, once, and checks the model against the
    /// manifest.
    fn ensure_model(&mut self) -> Result<(), Failure> {
        if self.model.is_some() {
            return Ok(());
        }
        let server = self.with_retries(|h| h.get("/v2"))?;
        let server: protocol::ServerMetadata =
            serde_json::from_slice(&server.body).map_err(|e| refused(format!("GET /v2: {e}")))?;
        let path = self.cfg.model_path();
        let meta = self.with_retries(|h| h.get(&path))?;
        let meta: ModelMetadata =
            serde_json::from_slice(&meta.body).map_err(|e| refused(format!("GET {path}: {e}")))?;
        let model = self.check_model(&meta).map_err(refused)?;
        self.binary = self.cfg.binary && server.binary_tensors();
        let dynamic = meta.inputs[0].shape.first().is_some_and(|d| *d < 0);
        self.info.dynamic_batch = dynamic;
        self.info.input_size = Some(self.input_size);
        tracing::info!(
            server = %self.http.base(),
            software = %format!("{} {}", server.name, server.version),
            model = %meta.name,
            input = %model.input,
            dynamic_batch = dynamic,
            binary_tensors = self.binary,
            "inference server model found"
        );
        self.model = Some(model);
        Ok(())
    }

    /// The model's input is one FP32 image of the manifest's size (NCHW or NHWC) and it has the
    /// outputs the decoder needs.
    fn check_model(&self, meta: &ModelMetadata) -> Result<Model, String> {
        let input = match meta.inputs.as_slice() {
            [one] => one,
            other => {
                return Err(format!(
                    "{} inputs; one image input is supported",
                    other.len()
                ));
            }
        };
        if input.datatype != "FP32" {
            return Err(format!(
                "input {} is {}; FP32 is supported",
                input.name, input.datatype
            ));
        }
        let (w, h) = self.input_size;
        let (w, h) = (i64::from(w), i64::from(h));
        let fits = |d: i64, want: i64| d == want || d < 0;
        let ok = match input.shape.as_slice() {
            [_, 3, hh, ww] | [_, hh, ww, 3] => fits(*hh, h) && fits(*ww, w),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "input {} has shape {:?}; the manifest says a {w}x{h} image",
                input.name, input.shape
            ));
        }
        let names: Vec<&str> = meta.outputs.iter().map(|o| o.name.as_str()).collect();
        let outputs = if self.wanted.is_empty() {
            vec![names.first().ok_or("the model has no outputs")?.to_string()]
        } else {
            for w in &self.wanted {
                if !names.contains(&w.as_str()) {
                    return Err(format!("has no output named {w:?} (outputs: {names:?})"));
                }
            }
            self.wanted.clone()
        };
        Ok(Model {
            input: input.name.clone(),
            outputs,
        })
    }

    /// Runs `f`, trying again after failures worth retrying, with doubling waits.
    fn with_retries<T>(
        &self,
        mut f: impl FnMut(&Http) -> Result<T, HttpError>,
    ) -> Result<T, HttpError> {
        let mut attempt = 0;
        loop {
            match f(&self.http) {
                Err(e) if e.retryable() && attempt < self.cfg.retries => {
                    std::thread::sleep(http::backoff(self.cfg.retry_backoff, attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn infer(&mut self, input: &InputTensor<'_>) -> Result<Vec<OutputTensor>, Failure> {
        let data = match input.data {
            InputData::F32(d) => d,
            _ => {
                return Err(refused(
                    "the inference server backend sends FP32 inputs only",
                ));
            }
        };
        self.ensure_model()?;
        let model = self.model.clone().ok_or_else(|| refused("no model"))?;
        let body = protocol::infer_request(
            &model.input,
            &input.shape,
            data,
            &model.outputs,
            self.binary,
        );
        let path = format!("{}/infer", self.cfg.model_path());
        let reply = self.with_retries(|h| h.post(&path, &body.bytes, body.header_len))?;
        let mut outs = protocol::infer_response(&reply.body, reply.header_len).map_err(refused)?;
        let mut ordered = Vec::with_capacity(model.outputs.len());
        for (name, as_name) in model.outputs.iter().zip(&self.info.outputs) {
            let i = outs
                .iter()
                .position(|o| &o.name == name)
                .ok_or_else(|| refused(format!("the response has no output {name:?}")))?;
            let o = outs.swap_remove(i);
            ordered.push(OutputTensor {
                name: as_name.clone(),
                shape: o.shape,
                data: o.data,
            });
        }
        Ok(ordered)
    }

    /// Feeds a request's result to the breaker, the status and the observer.
    fn record<T>(
        &mut self,
        result: Result<T, Failure>,
        started: Instant,
    ) -> Result<T, BackendError> {
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(v) => {
                self.breaker.success();
                self.status.request(Outcome::Ok, seconds);
                self.status.set(&self.breaker, None);
                Ok(v)
            }
            Err(f) => {
                self.breaker.failure(Instant::now());
                let outcome = if f.refused {
                    Outcome::Refused
                } else {
                    Outcome::Failed
                };
                self.status.request(outcome, seconds);
                self.status.set(&self.breaker, Some(f.message.clone()));
                Err(err(f.message))
            }
        }
    }
}

fn err(reason: impl Into<String>) -> BackendError {
    BackendError {
        backend: NAME,
        reason: reason.into(),
    }
}

impl Backend for KserveBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn run(&mut self, input: InputTensor<'_>) -> Result<Vec<OutputTensor>, BackendError> {
        let now = Instant::now();
        if let Err(wait) = self.breaker.admit(now) {
            self.status.request(Outcome::CircuitOpen, 0.0);
            return Err(err(format!(
                "circuit open, next probe in {:.1} s",
                wait.as_secs_f64()
            )));
        }
        // An open circuit whose cool-down ended lets this request through as its probe.
        self.status.set_state(&self.breaker);
        let result = self.infer(&input);
        self.record(result, now)
    }
}

/// For `check`: the server is ready (`GET /v2/health/ready`), the model is ready
/// (`GET .../ready`) and its metadata reads; a line describing it, or what is wrong.
pub fn probe(cfg: &ServerConfig) -> Result<String, String> {
    let http = Http::new(cfg)?;
    let at = |path: &str, e: HttpError| format!("{}{path}: {e}", cfg.base_url());
    http.get("/v2/health/ready")
        .map_err(|e| at("/v2/health/ready", e))?;
    let model = cfg.model_path();
    let ready = format!("{model}/ready");
    http.get(&ready).map_err(|e| at(&ready, e))?;
    let meta = http.get(&model).map_err(|e| at(&model, e))?;
    let meta: ModelMetadata =
        serde_json::from_slice(&meta.body).map_err(|e| format!("GET {model}: {e}"))?;
    let server = http
        .get("/v2")
        .ok()
        .and_then(|r| serde_json::from_slice::<protocol::ServerMetadata>(&r.body).ok());
    Ok(format!(
        "model {} on {} ({}): inputs {:?}, outputs {:?}, binary tensors {}",
        meta.name,
        cfg.base_url(),
        server
            .as_ref()
            .map_or_else(|| "?".to_string(), |s| format!("{} {}", s.name, s.version)),
        meta.inputs
            .iter()
            .map(|t| format!("{} {} {:?}", t.name, t.datatype, t.shape))
            .collect::<Vec<_>>(),
        meta.outputs
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        cfg.binary && server.is_some_and(|s| s.binary_tensors()),
    ))
}
