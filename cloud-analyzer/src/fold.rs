//! Alert folding for both stores. SQLite (one analyzer): this process's [`AlertEngine`] steps and
//! the store records what changed. PostgreSQL (replicas): the step runs in the store's own
//! transaction on the state the database holds (`store/postgres/fold.rs`), so replicas fold as
//! one; the engine here stays empty. Also the task that takes over what silent replicas left.

use std::time::Duration;

use cascade_shared::shutdown::Shutdown;
use tokio::sync::mpsc;

use crate::alert::{AlertEngine, Changes, Step};
use crate::analyzer::{Ctx, Held};
use crate::store::{Event, Pending, StoreError, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("store task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs `step` at cloud time `now` (with a crop's verdict when given) and records it; returns
/// the events to publish and what changed. Nothing to record (a word that changed nothing) skips
/// the SQLite store.
pub(crate) async fn step(
    ctx: &Ctx,
    engine: &mut AlertEngine,
    step: Step,
    decided: Option<(String, Verdict)>,
    now: i64,
) -> Result<(Vec<Event>, Changes), FoldError> {
    let store = ctx.store.clone();
    if store.folds_alerts() {
        let folded = tokio::task::spawn_blocking(move || {
            let decided = decided.as_ref().map(|(id, v)| (id.as_str(), *v));
            store.fold(&step, decided, now)
        });
        return Ok(folded.await??);
    }
    let changes = engine.apply(&step, now);
    if decided.is_none() && changes.events.is_empty() && changes.states.is_empty() {
        return Ok((Vec::new(), changes));
    }
    let recorded = tokio::task::spawn_blocking(move || {
        let events = match &decided {
            Some((id, v)) => store.decide(id, *v, now, &changes)?,
            None => store.record(&changes)?,
        };
        Ok::<_, StoreError>((events, changes))
    });
    Ok(recorded.await??)
}

/// How often a replica looks for what silent replicas left (their claims last `lease`).
fn orphan_interval(lease: Duration) -> Duration {
    (lease / 3).clamp(Duration::from_millis(200), Duration::from_secs(10))
}

/// PostgreSQL: takes over, every third of the lease, the crops and events of replicas whose
/// claims ran out (a replica killed mid-run): crops go to the batcher, events are published.
pub(crate) async fn adopt_orphans(
    ctx: Ctx,
    batch: mpsc::UnboundedSender<(Pending, Option<Held>)>,
    lease: Duration,
    shutdown: Shutdown,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(orphan_interval(lease)) => {}
        }
        let store = ctx.store.clone();
        let (crops, events) = match tokio::task::spawn_blocking(move || store.orphans()).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not look for other replicas' orphans");
                continue;
            }
            Err(e) => return tracing::error!(error = %e, "store task failed"),
        };
        if !crops.is_empty() || !events.is_empty() {
            tracing::info!(
                crops = crops.len(),
                events = events.len(),
                "took over what a silent replica left"
            );
        }
        for p in crops {
            if batch.send((p, None)).is_err() {
                return;
            }
        }
        for (seq, topic, payload) in events {
            crate::alerting::publish_event(&ctx, seq, topic, payload).await;
        }
    }
}
