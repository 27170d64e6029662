//! The detector service against a fake detector (the `Detect` trait boundary).

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use cascade_infer::{InferError, Look};
use cascade_shared::clock::ManualClock;
use cascade_shared::config::edge::RegionsConfig;

use crate::detect::ladder::LadderConfig;
use cascade_shared::manifest::ModelManifest;

use super::*;

/// Records each batch's size; the first run says it started, then waits for `gate` (so jobs pile
/// up behind it).
struct Fake {
    entered: SyncSender<()>,
    batches: SyncSender<usize>,
    gate: Option<Receiver<()>>,
    native: bool,
    manifest: ModelManifest,
}

impl Detect for Fake {
    fn detect_looks(
        &mut self,
        looks: &[Look<'_, Frame>],
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        if let Some(g) = self.gate.take() {
            let _ = self.entered.send(());
            let _ = g.recv();
        }
        let _ = self.batches.send(looks.len());
        Ok(looks.iter().map(|_| Vec::new()).collect())
    }

    fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    fn batches_natively(&self) -> bool {
        self.native
    }
}

fn manifest() -> ModelManifest {
    toml::from_str(
        r#"
        name = "fake"
        version = "1"
        file = "f.onnx"
        sha256 = "00"
        licence = "none"
        labels = ["person"]
        person_class_id = 0
        [input]
        width = 8
        height = 8
        [output]
        format = "yolov8"
        "#,
    )
    .expect("manifest")
}

fn job(run: u64) -> Job {
    Job {
        frame: Frame::filled(4, 4, 0),
        capture_us: 0,
        run,
        boxes: Vec::new(),
    }
}

struct Started {
    handles: Vec<(CameraSlot, Receiver<Detected>)>,
    entered: Receiver<()>,
    batches: Receiver<usize>,
    gate: SyncSender<()>,
    shutdown: Shutdown,
}

fn start(cameras: usize, native: bool) -> Started {
    let (btx, batches) = sync_channel(64);
    let (gate, grx) = sync_channel(1);
    let (etx, entered) = sync_channel(1);
    let fake = Fake {
        entered: etx,
        batches: btx,
        gate: Some(grx),
        native,
        manifest: manifest(),
    };
    let ids: Vec<String> = (0..cameras).map(|i| format!("cam-{i}")).collect();
    let shutdown = Shutdown::new();
    let opts = Options {
        regions: RegionsConfig::default(),
        clock: ManualClock::new(0),
        ladder: LadderConfig::new(vec![8], Duration::from_millis(100)),
        throttled: Arc::default(),
    };
    let (handles, _thread) = DetectorService::start(
        vec![Box::new(fake)],
        &ids,
        opts,
        Telemetry::new("dev"),
        shutdown.clone(),
    )
    .expect("starts");
    Started {
        handles,
        entered,
        batches,
        gate,
        shutdown,
    }
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_busy_slot_hands_the_frame_back_until_its_result_is_consumed() {
    let Started {
        handles,
        gate,
        shutdown,
        ..
    } = start(1, false);
    let (slot, results) = &handles[0];
    slot.try_submit(job(1)).expect("free");
    assert!(slot.try_submit(job(1)).is_err(), "queued or running: busy");
    gate.send(()).expect("release");
    let d = results.recv_timeout(WAIT).expect("a result");
    assert_eq!(d.job.run, 1);
    assert!(
        slot.try_submit(job(2)).is_err(),
        "still busy until the post stage says done"
    );
    slot.done();
    slot.try_submit(job(2)).expect("free again");
    assert!(results.recv_timeout(WAIT).is_ok());
    shutdown.cancel();
}

#[test]
fn cameras_share_one_detector_and_batch_when_the_model_allows() {
    let Started {
        handles,
        entered,
        batches,
        gate,
        shutdown,
    } = start(3, true);
    handles[0].0.try_submit(job(1)).expect("free");
    // The detector is now held at the gate with camera 0's frame; 1 and 2 queue behind it.
    entered
        .recv_timeout(WAIT)
        .expect("the detector took camera 0's frame");
    handles[1].0.try_submit(job(1)).expect("free");
    handles[2].0.try_submit(job(1)).expect("free");
    gate.send(()).expect("release");
    let sizes: Vec<usize> = (0..2)
        .map(|_| batches.recv_timeout(WAIT).expect("a batch"))
        .collect();
    assert_eq!(sizes, vec![1, 2], "cameras 1 and 2 ran as one batch");
    for (slot, results) in &handles {
        assert!(results.recv_timeout(WAIT).is_ok());
        slot.done();
    }
    shutdown.cancel();
}

#[test]
fn without_native_batching_cameras_take_turns() {
    let Started {
        handles,
        batches,
        gate,
        shutdown,
        ..
    } = start(2, false);
    handles[0].0.try_submit(job(1)).expect("free");
    handles[1].0.try_submit(job(1)).expect("free");
    gate.send(()).expect("release");
    let sizes: Vec<usize> = (0..2)
        .map(|_| batches.recv_timeout(WAIT).expect("a batch"))
        .collect();
    assert_eq!(sizes, vec![1, 1]);
    for (_, results) in &handles {
        assert!(results.recv_timeout(WAIT).is_ok(), "each camera served");
    }
    shutdown.cancel();
}

#[test]
fn submit_wait_waits_for_the_slot_and_gives_up_on_stop() {
    let Started {
        handles,
        gate,
        shutdown,
        ..
    } = start(1, false);
    let (slot, results) = &handles[0];
    slot.try_submit(job(1)).expect("free");
    let s = slot.clone();
    let stop = Shutdown::new();
    let stop2 = stop.clone();
    let waiter = std::thread::spawn(move || s.submit_wait(job(2), &stop2));
    gate.send(()).expect("release");
    let _ = results.recv_timeout(WAIT).expect("first result");
    slot.done();
    assert!(waiter.join().expect("joins"), "queued once free");
    let _ = results.recv_timeout(WAIT).expect("second result");
    // Busy again (not done): a stopped waiter gives up.
    let s = slot.clone();
    stop.cancel();
    assert!(!s.submit_wait(job(3), &stop));
    shutdown.cancel();
}

/// A detector whose every run "takes" `cost` on the manual clock and tells its side.
struct Timed {
    clock: Arc<ManualClock>,
    cost: Duration,
    ran: SyncSender<u32>,
    manifest: ModelManifest,
}

impl Detect for Timed {
    fn detect_looks(
        &mut self,
        looks: &[Look<'_, Frame>],
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        self.clock.advance(self.cost);
        let _ = self.ran.send(self.manifest.input.width);
        Ok(looks.iter().map(|_| Vec::new()).collect())
    }

    fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    fn batches_natively(&self) -> bool {
        false
    }
}

fn sized(side: u32) -> ModelManifest {
    let mut m = manifest();
    (m.input.width, m.input.height) = (side, side);
    m
}

/// Runs at the large size blow the budget: the camera's ladder steps down to the small one, and
/// the step is counted on the camera.
#[test]
fn a_camera_over_its_latency_budget_steps_down_the_ladder() {
    let clock = ManualClock::new(0);
    let (tx, ran) = sync_channel(1024);
    let timed = |side, ms| -> Box<dyn Detect> {
        Box::new(Timed {
            clock: clock.clone(),
            cost: Duration::from_millis(ms),
            ran: tx.clone(),
            manifest: sized(side),
        })
    };
    let mut ladder = LadderConfig::new(vec![], Duration::from_millis(20));
    (ladder.window, ladder.min_samples) = (Duration::from_secs(1), 5);
    let opts = Options {
        regions: RegionsConfig::default(),
        clock: clock.clone(),
        ladder,
        throttled: Arc::default(),
    };
    let telemetry = Telemetry::new("dev");
    let shutdown = Shutdown::new();
    let ids = vec!["cam-0".to_string()];
    let (handles, _thread) = DetectorService::start(
        vec![timed(16, 50), timed(8, 5)],
        &ids,
        opts,
        telemetry.clone(),
        shutdown.clone(),
    )
    .expect("starts");
    let (slot, results) = &handles[0];
    let mut sides = Vec::new();
    for _ in 0..60 {
        slot.try_submit(job(1)).expect("free");
        results.recv_timeout(WAIT).expect("a result");
        sides.push(ran.recv_timeout(WAIT).expect("ran"));
        slot.done();
    }
    shutdown.cancel();
    let first_small = sides.iter().position(|s| *s == 8).expect("stepped down");
    assert!(sides[..first_small].iter().all(|s| *s == 16), "{sides:?}");
    assert!(
        sides[first_small..].iter().all(|s| *s == 8),
        "stays down: {sides:?}"
    );
    let text = telemetry.render();
    assert!(
        text.contains(
            "detector_input_side_changes_total{camera=\"cam-0\",reason=\"latency\",device=\"dev\"} 1"
        ) && text.contains("detector_input_side_pixels{camera=\"cam-0\",device=\"dev\"} 8"),
        "{text}"
    );
}
