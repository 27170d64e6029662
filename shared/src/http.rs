//! Serving an axum router with graceful shutdown (the edge's telemetry endpoint, the analyzer's API).

use std::net::SocketAddr;

use axum::Router;

use crate::shutdown::Shutdown;

/// Binds `addr` (port 0 picks one), reports the bound address through `bound`, and serves `app`
/// until shutdown.
pub async fn serve(
    app: Router,
    addr: SocketAddr,
    shutdown: Shutdown,
    bound: tokio::sync::oneshot::Sender<SocketAddr>,
    what: &str,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "{what}");
    let _ = bound.send(local);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
