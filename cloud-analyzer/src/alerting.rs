//! From verdicts to alerts: each decided crop and each word of the edge about a track goes through
//! the alert engine; what changed is committed to the store, then published (events QoS 1, camera
//! states retained), and a confirmed crop's track is named to its device (a verdict) so it slows
//! its uploads. A sweeper ends silent alerts and applies retention.

use std::time::Duration;

use cascade_shared::shutdown::Shutdown;
use cascade_shared::topics;
use cascade_shared::verdict::{TrackRef, Verdicts};
use cascade_shared::wire::TrackEvent;
use rumqttc::QoS;

use crate::alert::{AlertEngine, Changes, Step};
use crate::analyzer::Ctx;
use crate::fold;
use crate::ingest::Word;
use crate::store::{Pending, Verdict};

/// Records a crop's verdict and the alert changes it makes, publishes them, and names a confirmed
/// crop's track to its device.
pub(crate) async fn decide(ctx: &Ctx, p: Pending, verdict: Verdict) {
    let mut engine = ctx.engine.lock().await;
    let now = ctx.clock.now_utc_us();
    let step = if verdict.confirmed {
        let c = p.confirmed(verdict.cloud_score);
        let url = format!("{}/api/crops/{}.jpg", ctx.public_url, p.message_id);
        Step::Confirm(c, url)
    } else {
        Step::Nothing
    };
    let decided = Some((p.message_id.clone(), verdict));
    match fold::step(ctx, &mut engine, step, decided, now).await {
        Ok((events, ch)) => {
            ctx.telemetry.decided(
                &p.message_id,
                verdict.confirmed,
                verdict.cloud_score,
                (now - p.capture_time_us) as f64 / 1e6,
            );
            publish(ctx, events, &ch).await;
            if verdict.confirmed {
                tell_device(ctx, &p).await;
            }
        }
        Err(e) => {
            tracing::error!(error = %e, message_id = %p.message_id, "verdict not recorded")
        }
    }
}

/// Hands one committed event to the broker (QoS 1) and marks it published.
pub(crate) async fn publish_event(ctx: &Ctx, seq: i64, topic: String, payload: String) -> bool {
    if ctx
        .client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .await
        .is_err()
    {
        return false;
    }
    let store = ctx.store.clone();
    let _ = tokio::task::spawn_blocking(move || store.mark_published(seq)).await;
    true
}

/// Publishes committed alert events and camera states (retained).
async fn publish(ctx: &Ctx, events: Vec<(i64, String, String)>, changes: &Changes) {
    for ((seq, topic, payload), e) in events.into_iter().zip(&changes.events) {
        // No browser following is no error.
        let _ = ctx.live.send(payload.clone());
        if publish_event(ctx, seq, topic, payload).await {
            ctx.telemetry
                .alert(e.kind.label(), &e.alert_id, &e.device_id, &e.camera_id);
        }
    }
    let first_seen = changes.states.iter().filter(|s| s.2);
    let cameras = first_seen.map(|(d, c, _)| (d.clone(), c.clone())).collect();
    crate::discovery::announce(ctx, cameras).await;
    for (device, camera, on) in &changes.states {
        let state = if *on { "ON" } else { "OFF" };
        let _ = ctx
            .client
            .publish(
                topics::camera_state(device, camera),
                QoS::AtLeastOnce,
                true,
                state,
            )
            .await;
    }
}

/// After (re)connecting: events committed but never handed to the broker, and the ON states.
pub(crate) async fn republish(ctx: Ctx) {
    let store = ctx.store.clone();
    if let Ok(Ok(events)) = tokio::task::spawn_blocking(move || store.unpublished()).await {
        for (seq, topic, payload) in events {
            publish_event(&ctx, seq, topic, payload).await;
        }
    }
    // From the store, which holds every replica's open alerts (the engine only this one's).
    let _engine = ctx.engine.lock().await;
    let store = ctx.store.clone();
    let Ok(Ok(cameras)) = tokio::task::spawn_blocking(move || store.cameras_on()).await else {
        return;
    };
    for (d, c) in cameras {
        let _ = ctx
            .client
            .publish(topics::camera_state(&d, &c), QoS::AtLeastOnce, true, "ON")
            .await;
    }
}

/// Ends silent alerts every second; applies retention hourly.
pub(crate) async fn sweeper(ctx: Ctx, retention: Duration, shutdown: Shutdown) {
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let mut engine = ctx.engine.lock().await;
        let now = ctx.clock.now_utc_us();
        commit(&ctx, &mut engine, Step::Expire, now).await;
        drop(engine);
        ticks += 1;
        if ticks % 3600 == 1 {
            let store = ctx.store.clone();
            let _ =
                tokio::task::spawn_blocking(move || store.apply_retention(now, retention)).await;
        }
    }
}

/// A word of the edge about a track (`seen`, `ended`) at cloud time `now`: through the engine,
/// committed, published. False when the store failed (the word stays unacknowledged).
pub(crate) async fn word(ctx: &Ctx, w: Word, now: i64) -> bool {
    let mut engine = ctx.engine.lock().await;
    let key = (w.device_id.clone(), w.camera_id.clone(), w.track_id);
    let step = match w.event {
        TrackEvent::Ended => Step::Left(key),
        _ => Step::Seen(key),
    };
    ctx.telemetry.track_word(&w.camera_id, w.event);
    commit(ctx, &mut engine, step, now).await
}

/// Runs `step` through the alerts, records what changed and publishes it; true when it was
/// recorded (or changed nothing).
async fn commit(ctx: &Ctx, engine: &mut AlertEngine, step: Step, now: i64) -> bool {
    match fold::step(ctx, engine, step, None, now).await {
        Ok((events, changes)) => {
            publish(ctx, events, &changes).await;
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "alert changes not recorded");
            false
        }
    }
}

/// Tells the device that the cloud confirmed its track (it then slows that track's crops).
async fn tell_device(ctx: &Ctx, p: &Pending) {
    let v = Verdicts {
        confirmed: vec![TrackRef {
            camera_id: p.camera_id.clone(),
            track_id: p.track_id,
        }],
    };
    let _ = ctx
        .client
        .publish(
            topics::verdicts(&p.device_id),
            QoS::AtLeastOnce,
            false,
            v.encode(),
        )
        .await;
}
