//! The HTTP API: health, metrics, alerts, crops and devices. JSON errors with proper status codes.
//! With `[[api.token]]`s configured, `/api/` needs `Authorization: Bearer <token>` (read scope for
//! reading, admin for erasing), and `/metrics` too unless `metrics_public`; `/livez` and `/readyz`
//! stay open. Tokens are compared by their SHA-256, never kept in the clear. The gallery page and
//! the live alert stream are in [`gallery`].

mod gallery;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use cascade_shared::config::cloud::{ApiToken, TokenScope};
use cascade_shared::shutdown::Shutdown;
use serde::Deserialize;

use crate::store::{AlertQuery, Store};
use crate::telemetry::Telemetry;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<Store>,
    pub telemetry: Arc<Telemetry>,
    /// Accepted tokens; none: the API is open (loopback only, enforced by the config).
    pub tokens: Arc<Vec<ApiToken>>,
    pub metrics_public: bool,
    /// Committed alert events (JSON), for `/api/events`.
    pub live: tokio::sync::broadcast::Sender<String>,
    /// Ends the live streams, so a graceful shutdown does not wait on them.
    pub shutdown: Shutdown,
}

/// The hex SHA-256 of a token, as `[[api.token]] sha256` holds it.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Lets the request through when its bearer token has at least `need`.
fn authorize(s: &ApiState, headers: &HeaderMap, need: TokenScope) -> Result<(), ApiError> {
    if s.tokens.is_empty() {
        return Ok(());
    }
    let unauthorized = |why: &str| ApiError(StatusCode::UNAUTHORIZED, why.to_string());
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("a bearer token is required"))?;
    let hash = token_hash(token.trim());
    // Every configured hash is compared, so the time taken does not tell which one matched.
    let found = s.tokens.iter().fold(None, |found, t| {
        let same = t.sha256.eq_ignore_ascii_case(&hash);
        if same { Some(t) } else { found }
    });
    match found {
        None => Err(unauthorized("unknown token")),
        Some(t) if t.scope < need => Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("token {:?} may read, not change", t.name),
        )),
        Some(_) => Ok(()),
    }
}

/// An error answered as `{"error": "..."}` with its status.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "API request failed");
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
}

/// Runs a store query off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(internal)?
        .map_err(internal)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertParams {
    device: Option<String>,
    camera: Option<String>,
    /// Alerts started at or after this time (UTC microseconds).
    since_us: Option<i64>,
    until_us: Option<i64>,
    limit: Option<u32>,
    offset: Option<u32>,
}

async fn list_alerts(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<AlertParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, TokenScope::Read)?;
    let Query(p) = params.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "limit must be 1..=500".into(),
        ));
    }
    let q = AlertQuery {
        device_id: p.device,
        camera_id: p.camera,
        since_us: p.since_us,
        until_us: p.until_us,
        limit,
        offset: p.offset.unwrap_or(0),
    };
    let offset = q.offset;
    let store = s.store.clone();
    let rows = blocking(move || store.alerts(&q)).await?;
    let next = (rows.len() == limit as usize).then_some(offset + limit);
    Ok(Json(serde_json::json!({ "alerts": rows, "next_offset": next })).into_response())
}

async fn get_alert(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, TokenScope::Read)?;
    let store = s.store.clone();
    let lookup = id.clone();
    match blocking(move || store.alert(&lookup)).await? {
        Some(a) => Ok(Json(a).into_response()),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no alert {id}"))),
    }
}

/// `{message_id}.jpg` as a message id.
fn crop_id(file: &str) -> Result<String, ApiError> {
    file.strip_suffix(".jpg")
        .filter(|id| cascade_shared::topics::valid_id(id))
        .map(str::to_string)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no crop {file}")))
}

/// Erases a stored crop's JPEG (a person asked to be forgotten); the message and its verdict stay.
async fn erase_crop(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, TokenScope::Admin)?;
    let id = crop_id(&file)?;
    let store = s.store.clone();
    if blocking(move || store.erase_crop(&id)).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError(StatusCode::NOT_FOUND, format!("no crop {file}")))
    }
}

async fn get_crop(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, TokenScope::Read)?;
    let id = crop_id(&file)?;
    let store = s.store.clone();
    match blocking(move || store.crop_jpeg(&id)).await? {
        Some(jpeg) => Ok(([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no crop {file} (unknown, or past retention)"),
        )),
    }
}

async fn devices(State(s): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers, TokenScope::Read)?;
    let store = s.store.clone();
    Ok(
        Json(serde_json::json!({ "devices": blocking(move || store.devices()).await? }))
            .into_response(),
    )
}

async fn readyz(State(s): State<ApiState>) -> Response {
    let store = s.store.clone();
    let writable = tokio::task::spawn_blocking(move || store.writable())
        .await
        .unwrap_or(false);
    let broker = s.telemetry.broker_up.load(Ordering::SeqCst);
    let model = s.telemetry.model_up.load(Ordering::SeqCst);
    let mut body = serde_json::json!({ "broker_connected": broker, "store_writable": writable, "model_loaded": model });
    // The inference server the model runs on, when it does: not ready says why.
    let mut server_ok = true;
    if let Some(status) = s.telemetry.server.get() {
        let h = status.health();
        let reason = h.reason(std::time::Instant::now());
        server_ok = reason.is_none();
        body["inference_server"] = serde_json::json!({
            "url": h.url,
            "ready": server_ok,
            "circuit": h.state.label(),
            "reason": reason,
        });
    }
    let code = if broker && writable && model && server_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(s): State<ApiState>, headers: HeaderMap) -> Result<String, ApiError> {
    if !s.metrics_public {
        authorize(&s, &headers, TokenScope::Read)?;
    }
    Ok(s.telemetry.render())
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/alerts", get(list_alerts))
        .route("/api/alerts/{id}", get(get_alert))
        .route("/api/crops/{file}", get(get_crop).merge(delete(erase_crop)))
        .route("/api/devices", get(devices))
        .merge(gallery::routes())
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .with_state(state)
}

/// Serves until shutdown; reports the bound address.
pub async fn serve(
    state: ApiState,
    addr: SocketAddr,
    shutdown: Shutdown,
    bound: tokio::sync::oneshot::Sender<SocketAddr>,
) -> std::io::Result<()> {
    cascade_shared::http::serve(router(state), addr, shutdown, bound, "HTTP API listening").await
}
