//! One shutdown token, cloned into every task. Cancelling it asks everything to stop.

pub use tokio_util::sync::CancellationToken as Shutdown;

/// Cancels `token` on SIGINT or SIGTERM. Spawn once at the binary edge.
pub async fn on_signals(token: Shutdown) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        () = token.cancelled() => {}
    }
    token.cancel();
}
