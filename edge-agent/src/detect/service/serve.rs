//! The detector thread: takes queued frames round robin, decides per camera where to look
//! (regions of interest) and at which rung of the input-size ladder, runs each rung's detector
//! once on its frames, and hands every camera its result.

use std::panic::AssertUnwindSafe;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use cascade_infer::Look;
use cascade_shared::clock::SharedClock;
use cascade_shared::config::edge::RegionsConfig;
use cascade_shared::shutdown::Shutdown;

use super::{Detected, Job, Shared, take_jobs};
use crate::detect::roi::Planner;
use crate::detect::{Detect, Detection};
use crate::telemetry::Telemetry;

/// How the service decides where and at which size to look.
#[derive(Clone)]
pub struct Options {
    pub regions: RegionsConfig,
    /// Time for the region planner (its periodic whole-frame look) and the ladder.
    pub clock: SharedClock,
}

/// What the service keeps per camera.
struct Cam {
    id: String,
    planner: Planner,
    /// Index into the ladder: 0 is the largest input size.
    rung: usize,
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
    let mut cams: Vec<Cam> = cameras
        .iter()
        .map(|id| Cam {
            id: id.clone(),
            planner: Planner::new(opts.regions.clone()),
            rung: 0,
        })
        .collect();
    for c in &cams {
        telemetry.detector_side(&c.id, sides.first().copied().unwrap_or(0));
    }
    let mut cursor = 0;
    while !shutdown.is_cancelled() {
        let Some(mut jobs) = next_jobs(shared, max_batch, &mut cursor) else {
            continue;
        };
        jobs.sort_by_key(|(i, _)| cams[*i].rung);
        let mut done = Vec::with_capacity(jobs.len());
        while !jobs.is_empty() {
            let rung = cams[jobs[0].0].rung.min(ladder.len() - 1);
            let n = jobs
                .iter()
                .take_while(|(i, _)| cams[*i].rung == rung)
                .count();
            let group: Vec<(usize, Job)> = jobs.drain(..n).collect();
            let now = opts.clock.monotonic_us();
            let det = ladder[rung].as_mut();
            done.extend(run_group(
                det,
                sides[rung],
                group,
                &mut cams,
                now,
                telemetry,
            ));
        }
        deliver(shared, done);
    }
}

/// The input side of a detector's model (the larger of width and height).
fn side(d: &dyn Detect) -> u32 {
    let input = &d.manifest().input;
    input.width.max(input.height)
}

/// Up to `max` queued jobs, or `None` after waiting a while for one.
fn next_jobs(shared: &Shared, max: usize, cursor: &mut usize) -> Option<Vec<(usize, Job)>> {
    let mut slots = shared.lock();
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
    now_us: i64,
    telemetry: &Telemetry,
) -> Vec<(usize, Job, Outcome)> {
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
    let t0 = Instant::now();
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| det.detect_looks(&looks)));
    let seconds = t0.elapsed().as_secs_f64();
    let results: Vec<Outcome> = match out {
        Ok(Ok(r)) if r.len() == group.len() => r.into_iter().map(Ok).collect(),
        Ok(Ok(r)) => {
            vec![Err(format!("{} results for {} frames", r.len(), group.len())); group.len()]
        }
        Ok(Err(e)) => vec![Err(e.to_string()); group.len()],
        Err(_) => vec![Err("the detector panicked".to_string()); group.len()],
    };
    for (((i, _), plan), result) in group.iter().zip(&plans).zip(&results) {
        let cam = &cams[*i].id;
        match result {
            Ok(people) => {
                telemetry.detector_ran(cam, seconds, people.len());
                telemetry.detector_looked(cam, plan.regions().len());
            }
            Err(e) => telemetry.detector_failed(cam, e),
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
