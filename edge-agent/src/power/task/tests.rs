//! The power task with a fake `nvpmodel` on a temp `PATH`, a fake sysfs tree and a manual clock.

use std::path::Path;
use std::time::Duration;

use cascade_shared::clock::{Clock, ManualClock, SharedClock};
use cascade_shared::config::edge::PowerConfig;
use cascade_shared::profile::PowerSpec;
use cascade_tests::metric_value;

use super::*;
use crate::detect::ladder::{Ladder, LadderConfig};
use crate::power::io::{SystemIo, testing};
use crate::power::sensors::testing as sysfs;

fn spec(root: &Path) -> PowerSpec {
    toml::from_str(&format!(
        "manager = \"nvpmodel\"\nhigh_mode = 0\nlow_mode = 1\nthermal_zones = \"{}/thermal\"\n\
         mode = [{{ id = 0, name = \"15W\", watts = 15.0 }}, {{ id = 1, name = \"7W\", watts = 7.0 }}, \
         {{ id = 2, name = \"10W\", watts = 10.0 }}]",
        root.display()
    ))
    .expect("spec")
}

struct Rig {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    activity: Arc<Activity>,
    throttled: Arc<AtomicBool>,
    telemetry: Arc<Telemetry>,
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::fake_nvpmodel(dir.path(), 2);
        sysfs::zone(
            &dir.path().join("thermal"),
            0,
            "cpu-thermal",
            50_000,
            90_000,
        );
        Self {
            dir,
            clock: ManualClock::new(0),
            activity: Arc::default(),
            throttled: Arc::default(),
            telemetry: Telemetry::new("dev"),
        }
    }

    fn task(&self, dry_run: bool) -> PowerTask {
        let cfg = PowerConfig {
            idle: Duration::from_secs(60),
            min_dwell: Duration::from_secs(10),
            ..PowerConfig::default()
        };
        let spec = spec(self.dir.path());
        PowerTask {
            manager: crate::power::choose(Some(&spec), &cfg),
            sensors: Sensors::from_spec(Some(&spec)),
            io: Arc::new(SystemIo {
                path: Some(self.dir.path().as_os_str().to_owned()),
            }),
            policy: PolicyConfig {
                idle: cfg.idle,
                min_dwell: cfg.min_dwell,
            },
            sensors_every: Duration::from_secs(5),
            dry_run,
            activity: self.activity.clone(),
            throttled: self.throttled.clone(),
            telemetry: self.telemetry.clone(),
            clock: self.clock.clone() as SharedClock,
        }
    }

    fn calls(&self) -> Vec<String> {
        testing::calls(self.dir.path())
    }

    async fn wait_calls(&self, n: usize) {
        for _ in 0..1500 {
            if self.calls().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{n} calls expected, got {:?}", self.calls());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_goes_low_motion_goes_high_and_the_mode_found_is_restored() {
    let rig = Rig::new();
    let stop = Shutdown::new();
    let task = tokio::spawn(rig.task(false).run(stop.clone()));
    rig.wait_calls(1).await;
    assert_eq!(
        rig.calls(),
        vec!["-q"],
        "nothing switched before the idle time"
    );
    rig.clock.advance(Duration::from_secs(61));
    rig.wait_calls(2).await;
    assert_eq!(rig.calls()[1], "-m 1", "idle -> low");
    rig.clock.advance(Duration::from_secs(1));
    rig.activity.saw(rig.clock.monotonic_us());
    rig.wait_calls(3).await;
    assert_eq!(rig.calls()[2], "-m 0", "motion -> high at once");
    stop.cancel();
    task.await.expect("task");
    assert_eq!(rig.calls(), vec!["-q", "-m 1", "-m 0", "-m 2"], "restored");
    let m = rig.telemetry.render();
    let changes = |level, reason| {
        let labels = [("level", level), ("reason", reason), ("dry_run", "false")];
        metric_value(&m, "cascade_edge_power_mode_changes_total", &labels)
    };
    assert_eq!(changes("low", "idle"), 1.0, "{m}");
    assert_eq!(changes("high", "activity"), 1.0, "{m}");
    assert_eq!(changes("restore", "shutdown"), 1.0, "{m}");
    let zone = [("zone", "cpu-thermal")];
    assert_eq!(
        metric_value(&m, "cascade_edge_thermal_zone_celsius", &zone),
        50.0
    );
    assert_eq!(
        metric_value(&m, "cascade_edge_power_mode", &[]),
        2.0,
        "restored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_only_queries() {
    let rig = Rig::new();
    let stop = Shutdown::new();
    let task = tokio::spawn(rig.task(true).run(stop.clone()));
    rig.wait_calls(1).await;
    rig.clock.advance(Duration::from_secs(61));
    let labels = [("level", "low"), ("reason", "idle"), ("dry_run", "true")];
    let changes = || {
        let m = rig.telemetry.render();
        metric_value(&m, "cascade_edge_power_mode_changes_total", &labels)
    };
    for _ in 0..1500 {
        if changes() >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    task.await.expect("task");
    assert_eq!(rig.calls(), vec!["-q"], "only the query runs");
    assert_eq!(changes(), 1.0, "{}", rig.telemetry.render());
}

/// End to end at the unit level: a hot zone in the fake sysfs tree sets the flag the detector
/// service hands each camera's ladder, and the ladder steps down for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thermal_throttling_lowers_the_input_size() {
    let rig = Rig::new();
    sysfs::zone(
        &rig.dir.path().join("thermal"),
        1,
        "gpu-thermal",
        91_000,
        90_000,
    );
    let stop = Shutdown::new();
    let task = tokio::spawn(rig.task(false).run(stop.clone()));
    for _ in 0..1500 {
        if rig.throttled.load(Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    task.await.expect("task");
    assert!(
        rig.throttled.load(Ordering::Relaxed),
        "the hot zone throttles"
    );
    let cfg = LadderConfig::new(vec![640, 416, 320], Duration::from_millis(200));
    let window = cascade_shared::clock::micros(cfg.window);
    let mut ladder = Ladder::new(cfg, 0).expect("ladder");
    ladder.throttled(0, rig.throttled.load(Ordering::Relaxed));
    let change = ladder.tick(window).expect("steps down");
    assert_eq!(
        (change.from, change.to, change.reason.label()),
        (640, 416, "thermal")
    );
}
