//! One detector per accelerator, shared by every camera of the agent. Each camera has a one-slot
//! mailbox: a live camera whose slot is taken drops (and counts) its frame instead of waiting, so a
//! busy detector never blocks capture. A slot stays taken until the camera's post stage (track,
//! crop, buffer) has consumed the result, so no queue grows behind a slow disk. When the model
//! takes a batch, frames of several cameras run as one tensor. Where the detector looks in each
//! frame (regions of interest) and at which input size (the adaptive ladder) is decided here, per
//! camera, by [`serve`].

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cascade_shared::shutdown::Shutdown;
use cascade_shared::wire::BoxPx;

use super::{Detect, Detection};
use crate::decode::Frame;
use crate::telemetry::Telemetry;

mod serve;

pub use serve::Options;

/// A frame on its way to the detector.
#[derive(Debug)]
pub struct Job {
    pub frame: Frame,
    /// UTC capture time, microseconds.
    pub capture_us: i64,
    /// Which run of the camera it came from (a restart starts a new run; trackers reset).
    pub run: u64,
    /// Motion boxes and the boxes of people being tracked, frame pixels: where to look.
    pub boxes: Vec<BoxPx>,
}

/// A job and what the detector found in it.
#[derive(Debug)]
pub struct Detected {
    pub job: Job,
    pub result: Result<Vec<Detection>, String>,
}

struct Slot {
    queued: Option<Job>,
    /// Taken by the detector, or its result not yet consumed by the post stage.
    busy: bool,
    results: Sender<Detected>,
    /// Frames offered by a live camera since the service last looked, and how many of them were
    /// dropped because the slot was busy (the ladder steps down on drops).
    offered: u32,
    dropped: u32,
}

impl Slot {
    fn free(&self) -> bool {
        self.queued.is_none() && !self.busy
    }
}

struct Shared {
    slots: Mutex<Vec<Slot>>,
    /// Signalled when a job is queued (the service waits on it).
    work: Condvar,
    /// Signalled when a slot frees (cameras playing files as fast as possible wait on it).
    freed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A camera's handle on the detector service.
#[derive(Clone)]
pub struct CameraSlot {
    shared: Arc<Shared>,
    index: usize,
}

impl CameraSlot {
    /// Queues `job` if the slot is free; hands it back if not (the caller drops and counts it).
    pub fn try_submit(&self, job: Job) -> Result<(), Box<Job>> {
        let mut slots = self.shared.lock();
        let slot = &mut slots[self.index];
        slot.offered = slot.offered.saturating_add(1);
        if !slot.free() {
            slot.dropped = slot.dropped.saturating_add(1);
            return Err(Box::new(job));
        }
        slot.queued = Some(job);
        self.shared.work.notify_one();
        Ok(())
    }

    /// Waits for the slot to free, then queues `job` (files played as fast as possible: results
    /// do not depend on CPU speed). False when stopped first.
    pub fn submit_wait(&self, job: Job, stop: &Shutdown) -> bool {
        let Some(mut slots) = self.wait_free(stop) else {
            return false;
        };
        slots[self.index].queued = Some(job);
        self.shared.work.notify_one();
        true
    }

    /// Waits until no frame of this camera is queued, in the detector or in its post stage
    /// (`--exit-when-done`: every crop of a finished file is buffered). False when stopped first.
    pub fn wait_idle(&self, stop: &Shutdown) -> bool {
        self.wait_free(stop).is_some()
    }

    /// The slots, locked, once this camera's slot is free; `None` when stopped first.
    fn wait_free(&self, stop: &Shutdown) -> Option<MutexGuard<'_, Vec<Slot>>> {
        let mut slots = self.shared.lock();
        while !slots[self.index].free() {
            if stop.is_cancelled() {
                return None;
            }
            slots = self
                .shared
                .freed
                .wait_timeout(slots, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Some(slots)
    }

    /// The post stage has consumed the last result: the slot takes the next frame.
    pub fn done(&self) {
        self.shared.lock()[self.index].busy = false;
        self.shared.freed.notify_all();
    }
}

/// The service: its slots are handed to cameras by [`DetectorService::start`].
pub struct DetectorService;

impl DetectorService {
    /// Starts the detector thread for `cameras` over `ladder` (one detector per input size,
    /// largest first; at least one); returns each camera's slot and result receiver (in order),
    /// and the thread, which ends on `shutdown`.
    #[allow(clippy::type_complexity)]
    pub fn start(
        ladder: Vec<Box<dyn Detect>>,
        cameras: &[String],
        opts: Options,
        telemetry: Arc<Telemetry>,
        shutdown: Shutdown,
    ) -> std::io::Result<(
        Vec<(CameraSlot, Receiver<Detected>)>,
        std::thread::JoinHandle<()>,
    )> {
        let mut receivers = Vec::new();
        let slots = cameras
            .iter()
            .map(|_| {
                let (tx, rx) = std::sync::mpsc::channel();
                receivers.push(rx);
                Slot {
                    queued: None,
                    busy: false,
                    results: tx,
                    offered: 0,
                    dropped: 0,
                }
            })
            .collect();
        let shared = Arc::new(Shared {
            slots: Mutex::new(slots),
            work: Condvar::new(),
            freed: Condvar::new(),
        });
        let s = shared.clone();
        let ids = cameras.to_vec();
        let thread = std::thread::Builder::new()
            .name("detector".into())
            .spawn(move || serve::serve(&s, ladder, &ids, &opts, &telemetry, &shutdown))?;
        let handles = receivers
            .into_iter()
            .enumerate()
            .map(|(index, rx)| {
                (
                    CameraSlot {
                        shared: shared.clone(),
                        index,
                    },
                    rx,
                )
            })
            .collect();
        Ok((handles, thread))
    }
}

/// Takes up to `max` queued jobs, starting after the slot served last (round robin).
fn take_jobs(slots: &mut [Slot], max: usize, cursor: &mut usize) -> Vec<(usize, Job)> {
    let n = slots.len();
    let mut jobs = Vec::new();
    for k in 0..n {
        let i = (*cursor + k) % n;
        if let Some(job) = slots[i].queued.take() {
            slots[i].busy = true;
            jobs.push((i, job));
            if jobs.len() == max {
                break;
            }
        }
    }
    if let Some((last, _)) = jobs.last() {
        *cursor = (last + 1) % n;
    }
    jobs
}

#[cfg(test)]
mod tests;
