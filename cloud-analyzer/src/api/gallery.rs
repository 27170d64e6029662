//! The alert gallery: one HTML page (inline CSS and JS, no build step) at `/` and `/gallery`, the
//! live alert stream it follows (`/api/events`, server-sent events), and each alert's crops
//! (`/api/alerts/{id}/crops`).
//!
//! The page is static and holds no data, so it is served without a token; everything it shows
//! comes from `/api/` with the token from the page's fragment (`/gallery#token=...`, never sent to
//! the server or written to its logs) as a bearer header. Crops are fetched with it too (as blobs),
//! and the stream is read with `fetch` rather than `EventSource`, which cannot send headers.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cascade_shared::config::cloud::TokenScope;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, ApiState, authorize, blocking};
use crate::alert::{AlertEvent, EventType};

const PAGE: &str = include_str!("gallery.html");

/// What the page may load: itself, the API, and crops as blobs.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'";

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(page))
        .route("/gallery", get(page))
        .route("/api/events", get(events))
        .route("/api/alerts/{id}/crops", get(alert_crops))
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

/// Counts a browser following the stream while it does.
struct Following(std::sync::Arc<crate::telemetry::Telemetry>);

impl Following {
    fn new(t: std::sync::Arc<crate::telemetry::Telemetry>) -> Self {
        t.live_client(true);
        Self(t)
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.0.live_client(false);
    }
}

/// Server-sent events: `alert` with each committed alert event (the JSON published on
/// `cascade/v1/alerts/...`), `lagged` when this browser fell behind (it should reload the list).
/// Ends at shutdown.
async fn events(
    State(s): State<ApiState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    authorize(&s, &headers, TokenScope::Read)?;
    let rx = s.live.subscribe();
    let following = Following::new(s.telemetry.clone());
    let hello = Event::default().event("hello").data("following");
    let first = futures_util::stream::once(async move { Ok(hello) });
    let rest = futures_util::stream::unfold(
        (rx, s.shutdown, following),
        |(mut rx, shutdown, following)| async move {
            let event = tokio::select! {
                () = shutdown.cancelled() => return None,
                got = rx.recv() => match got {
                    Ok(json) => Event::default().event("alert").data(json),
                    Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
                    Err(RecvError::Closed) => return None,
                },
            };
            Some((Ok(event), (rx, shutdown, following)))
        },
    );
    Ok(Sse::new(futures_util::StreamExt::chain(first, rest)).keep_alive(KeepAlive::default()))
}

/// An alert's crops, oldest first: `{"crops": [{message_id, url, capture_time_us, cloud_score,
/// edge_score}]}` (a crop past retention is listed; its URL answers 404).
async fn alert_crops(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, TokenScope::Read)?;
    let store = s.store.clone();
    let lookup = id.clone();
    let events = blocking(move || store.alert_events(&lookup)).await?;
    if events.is_empty() {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no alert {id}")));
    }
    let crops: Vec<serde_json::Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str::<AlertEvent>(e).ok())
        .filter(|e| e.kind != EventType::End)
        .map(|e| {
            serde_json::json!({
                "message_id": e.message_id,
                "url": format!("/api/crops/{}.jpg", e.message_id),
                "capture_time_us": e.capture_time_us,
                "cloud_score": e.cloud_score,
                "edge_score": e.edge_score,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "alert_id": id, "crops": crops })).into_response())
}
