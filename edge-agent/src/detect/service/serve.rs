//! The detector thread: takes queued frames round robin, decides per camera where to look
//! (regions of interest) and at which rung of the input-size ladder (each camera's
//! [`Ladder`] controller, fed with its runs' latency, its dropped frames and the thermal state),
//! runs each rung's detector once on its frames, and hands every camera its result.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use cascade_infer::Look;
use cascade_shared::clock::SharedClock;
use cascade_shared::config::edge::RegionsConfig;
use cascade_shared::shutdown::Shutdown;

use super::{Detected, Job, Shared, Slot, take_jobs};
use crate::detect::ladder::{Ladder, LadderConfig};
use crate::detect::roi::Planner;
use crate::detect::{Detect, Detection};
use crate::telemetry::Telemetry;

/// How the service decides where and at which size to look.
#[derive(Clone)]
pub struct Options {
    pub regions: RegionsConfig,
    /// Time for the region planner (its periodic whole-frame look) and the ladder.
    pub clock: SharedClock,
    /// The ladder controller's settings; its sizes are replaced by the ladder's detectors' sides.
    pub ladder: LadderConfig,
    /// Set while the device is thermally throttled (every camera's ladder steps down).
    pub throttled: Arc<AtomicBool>,
}

/// What the service keeps per camera.
struct Cam {
    id: String,
    planner: Planner,
    /// Picks the rung this camera's frames run at (0: the largest input size).
    ladder: Ladder,
}

impl Cam {
    fn rung(&self) -> usize {
        self.ladder.index()
    }
}

type Outcome = Result<Vec<Detection>, String>;

pub(super) fn serve(
    shared: &Shared,
    mut ladder: Vec<Box<dyn Detect>>,
    cameras: &[String],
    opts: &Options,
    telemetry: &Telemetry,
    shutdown: &Shutdown,
) {
    let max_batch = if ladder.iter().all(|d| d.batches_natively()) {
        cameras.len().clamp(1, 8)
    } else {
        1
    };
    let sides: Vec<u32> = ladder.iter().map(|d| side(d.as_ref())).collect();
    let Some(mut cams) = cams(cameras, &sides, opts, telemetry) else {
        return;
    };
    let mut cursor = 0;
    while !shutdown.is_cancelled() {
        let now = opts.clock.monotonic_us();
        let jobs = next_jobs(shared, max_batch, &mut cursor, &mut cams, now);
        let throttled = opts.throttled.load(Ordering::Relaxed);
        steer(&mut cams, now, throttled, telemetry);
        let Some(mut jobs) = jobs else {
            continue;
        };
        jobs.sort_by_key(|(i, _)| cams[*i].rung());
        let mut done = Vec::with_capacity(jobs.len());
        while !jobs.is_empty() {
            // A camera's rung indexes its ladder, whose sizes are these detectors' sides.
            let rung = cams[jobs[0].0].rung();
            let n = jobs
                .iter()
                .take_while(|(i, _)| cams[*i].rung() == rung)
                .count();
            let group: Vec<(usize, Job)> = jobs.drain(..n).collect();
            let det = ladder[rung].as_mut();
            done.extend(run_group(
                det,
                sides[rung],
                group,
                &mut cams,
                &opts.clock,
                telemetry,
            ));
        }
        deliver(shared, done);
    }
}

/// Each camera's planner and ladder (starting at the largest size); `None` if even a one-size
/// ladder cannot be made (no detector).
fn cams(cameras: &[String], sides: &[u32], opts: &Options, t: &Telemetry) -> Option<Vec<Cam>> {
    let now = opts.clock.monotonic_us();
    let cfg = LadderConfig {
        sizes: sides.to_vec(),
        ..opts.ladder.clone()
    };
    let ladder = match Ladder::new(cfg.clone(), now) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "the size ladder is invalid; running the largest size only");
            Ladder::new(LadderConfig::new(sides.get(..1)?.to_vec(), cfg.budget), now).ok()?
        }
    };
    let out = cameras
        .iter()
        .map(|id| {
            t.detector_side(id, ladder.size());
            Cam {
                id: id.clone(),
                planner: Planner::new(opts.regions.clone()),
                ladder: ladder.clone(),
            }
        })
        .collect();
    Some(out)
}

/// The input side of a detector's model (the larger of width and height).
fn side(d: &dyn Detect) -> u32 {
    let input = &d.manifest().input;
    input.width.max(input.height)
}

/// Each camera's ladder decides (one step at most); every change is logged and counted.
fn steer(cams: &mut [Cam], now_us: i64, throttled: bool, t: &Telemetry) {
    for c in cams {
        c.ladder.throttled(now_us, throttled);
        if let Some(change) = c.ladder.tick(now_us) {
            let why = change.reason;
            t.detector_side_changed(&c.id, change.from, change.to, why.label(), &why.to_string());
        }
    }
}

/// Tells each camera's ladder the frames it offered since the last look and how many of them
/// were dropped because the detector was busy.
fn count_offers(slots: &mut [Slot], cams: &mut [Cam], now_us: i64) {
    for (slot, cam) in slots.iter_mut().zip(cams) {
        for k in 0..slot.offered {
            cam.ladder.offered(now_us, k < slot.dropped);
        }
        (slot.offered, slot.dropped) = (0, 0);
    }
}

/// Up to `max` queued jobs, or `None` after waiting a while for one.
fn next_jobs(
    shared: &Shared,
    max: usize,
    cursor: &mut usize,
    cams: &mut [Cam],
    now_us: i64,
) -> Option<Vec<(usize, Job)>> {
    let mut slots = shared.lock();
    count_offers(&mut slots, cams, now_us);
    let jobs = take_jobs(&mut slots, max, cursor);
    if jobs.is_empty() {
        let _ = shared
            .work
            .wait_timeout(slots, Duration::from_millis(100))
            .unwrap_or_else(PoisonError::into_inner);
        return None;
    }
    Some(jobs)
}

/// Plans where to look in each job's frame, runs `det` once on all of them, and reports.
fn run_group(
    det: &mut dyn Detect,
    side: u32,
    group: Vec<(usize, Job)>,
    cams: &mut [Cam],
    clock: &SharedClock,
    telemetry: &Telemetry,
) -> Vec<(usize, Job, Outcome)> {
    let now_us = clock.monotonic_us();
    let plans: Vec<_> = group
        .iter()
        .map(|(i, job)| {
            let size = (job.frame.width, job.frame.height);
            cams[*i]
                .planner
                .plan(now_us, size, side, job.boxes.iter().copied())
        })
        .collect();
    let looks: Vec<Look<'_, _>> = group
        .iter()
        .zip(&plans)
        .map(|((_, job), plan)| Look {
            image: &job.frame,
            regions: plan.regions(),
        })
        .collect();
    let t0 = clock.monotonic_us();
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| det.detect_looks(&looks)));
    let done_us = clock.monotonic_us();
    let latency = Duration::from_micros(u64::try_from(done_us - t0).unwrap_or(0));
    let n = group.len();
    let results: Vec<Outcome> = match out {
        Ok(Ok(r)) if r.len() == n => r.into_iter().map(Ok).collect(),
        Ok(Ok(r)) => vec![Err(format!("{} results for {n} frames", r.len())); n],
        Ok(Err(e)) => vec![Err(e.to_string()); n],
        Err(_) => vec![Err("the detector panicked".to_string()); n],
    };
    for (((i, _), plan), result) in group.iter().zip(&plans).zip(&results) {
        let cam = &mut cams[*i];
        match result {
            Ok(people) => {
                telemetry.detector_ran(&cam.id, latency.as_secs_f64(), people.len());
                telemetry.detector_looked(&cam.id, plan.regions().len());
                cam.ladder.ran(done_us, side, latency);
            }
            Err(e) => telemetry.detector_failed(&cam.id, e),
        }
    }
    group
        .into_iter()
        .zip(results)
        .map(|((i, job), r)| (i, job, r))
        .collect()
}

/// Hands each camera its result; a camera whose post stage is gone frees its slot here.
fn deliver(shared: &Shared, done: Vec<(usize, Job, Outcome)>) {
    let mut slots = shared.lock();
    for (i, job, result) in done {
        let slot = &mut slots[i];
        if slot.results.send(Detected { job, result }).is_err() {
            slot.busy = false;
        }
    }
    shared.freed.notify_all();
}
