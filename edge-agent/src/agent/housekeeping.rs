//! The agent's housekeeping: buffer maintenance, the power task's wiring, and the summary logged
//! at exit.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use cascade_shared::clock::SharedClock;
use cascade_shared::config::edge::EdgeConfig;
use cascade_shared::shutdown::Shutdown;

use super::RunOptions;
use crate::buffer::Buffer;
use crate::power::sensors::Sensors;
use crate::power::task::PowerTask;
use crate::power::{self, Activity, PolicyConfig, SystemIo};
use crate::telemetry::Telemetry;

/// One line with the run's totals (used by the demo and the whole-agent benchmark).
pub(super) fn log_summary(t: &Telemetry) {
    let peak_rss_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    tracing::info!(
        frames = count(t, "frames_decoded_total"),
        motion_frames = count(t, "motion_frames_total"),
        detector_runs = count(t, "detector_runs_total"),
        detector_dropped = count(t, "detector_dropped_frames_total"),
        crops_buffered = count(t, "crops_buffered_total"),
        crops_uploaded = count(t, "crops_uploaded_total"),
        crops_resent = count(t, "crops_resent_total"),
        input_bytes = count(t, "input_bytes_total"),
        uploaded_bytes = count(t, "uploaded_bytes_total"),
        camera_reconnects = count(t, "camera_reconnects_total"),
        peak_rss_bytes,
        cpu_seconds = cpu_seconds().unwrap_or(0.0),
        input_side_changes = count(t, "detector_input_side_changes_total"),
        "summary"
    );
}

/// A counter's total as the whole number it is (the registry keeps floats).
fn count(t: &Telemetry, name: &str) -> u64 {
    t.total(name).max(0.0).round() as u64
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (in USER_HZ = 100
/// ticks per second, the unit Linux reports there on every architecture).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3; utime is 14.
    let rest = stat.rsplit_once(')')?.1;
    let mut f = rest.split_whitespace().skip(11);
    let utime: f64 = f.next()?.parse().ok()?;
    let stime: f64 = f.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The power task: the manager the profile and config choose, the sensors, the policy.
pub(super) fn power_task(
    cfg: &EdgeConfig,
    opts: &RunOptions,
    activity: Arc<Activity>,
    throttled: Arc<AtomicBool>,
    telemetry: &Arc<Telemetry>,
    clock: &SharedClock,
) -> PowerTask {
    let p = &cfg.power;
    let spec = opts.power.as_ref();
    PowerTask {
        manager: power::choose(spec, p),
        sensors: Sensors::from_spec(spec),
        io: Arc::new(SystemIo::default()),
        policy: PolicyConfig {
            idle: p.idle,
            min_dwell: p.min_dwell,
        },
        sensors_every: p.sensors,
        dry_run: p.dry_run || opts.power_dry_run,
        activity,
        throttled,
        telemetry: telemetry.clone(),
        clock: clock.clone(),
    }
}

/// Every 5 s: watches the buffer's disk (degraded mode in and out, the reserve); every minute:
/// evicts expired crops.
pub(super) async fn maintain(
    buffer: Arc<Buffer>,
    telemetry: Arc<Telemetry>,
    clock: SharedClock,
    shutdown: Shutdown,
) {
    let mut degraded = false;
    for tick in 0u64.. {
        let now = clock.now_utc_us();
        if tick % 12 == 0 {
            let b = buffer.clone();
            match tokio::task::spawn_blocking(move || b.evict_expired(now)).await {
                Ok(Ok(ev)) => telemetry.evicted(&ev),
                Ok(Err(e)) => tracing::error!(error = %e, "age eviction failed"),
                Err(_) => {}
            }
        }
        let b = buffer.clone();
        let checked = tokio::task::spawn_blocking(move || {
            (b.check_space(), crate::buffer::space::free_bytes(b.dir()))
        });
        let (recovered, free) = checked.await.unwrap_or((false, None));
        if recovered {
            telemetry.disk_space_back(free);
        } else if buffer.degraded() && !degraded {
            telemetry.disk_full(buffer.stats(), free);
        }
        degraded = buffer.degraded();
        telemetry.buffer_stats(buffer.stats(), now);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
