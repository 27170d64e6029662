//! The power task on the async runtime: reads what it found, then every [`TICK`] asks the policy
//! (a relaxed atomic load of the cameras' activity), every `sensors_s` reads the sensors into
//! metrics and the detector's `throttled` flag; commands and sysfs run on blocking threads. On
//! shutdown it puts back the state it found, if it changed anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cascade_shared::clock::SharedClock;
use cascade_shared::shutdown::Shutdown;

use super::policy::Change;
use super::sensors::Sensors;
use super::{Activity, Level, Policy, PolicyConfig, PowerIo, PowerManager, Reason, Step};
use crate::telemetry::Telemetry;

/// How often the policy is asked: the delay from motion to the high mode, at most.
pub const TICK: Duration = Duration::from_millis(200);

pub struct PowerTask {
    pub manager: Option<Box<dyn PowerManager>>,
    pub sensors: Sensors,
    pub io: Arc<dyn PowerIo>,
    pub policy: PolicyConfig,
    pub sensors_every: Duration,
    pub dry_run: bool,
    pub activity: Arc<Activity>,
    /// Written here from the sensors; read by the detector's ladder.
    pub throttled: Arc<AtomicBool>,
    pub telemetry: Arc<Telemetry>,
    pub clock: SharedClock,
}

/// The manager with what it found.
struct Managed {
    manager: Box<dyn PowerManager>,
    policy: Policy,
    found: Level,
    changed: bool,
}

impl PowerTask {
    pub async fn run(mut self, shutdown: Shutdown) {
        let mut managed = self.start().await;
        let mut next_sensors = self.clock.monotonic_us();
        loop {
            let now = self.clock.monotonic_us();
            if now >= next_sensors {
                self.read_sensors().await;
                next_sensors = now + cascade_shared::clock::micros(self.sensors_every);
            }
            if let Some(m) = managed.as_mut()
                && let Some(change) = m.policy.tick(now, self.activity.last())
            {
                let step = m.manager.to(change.to);
                m.changed |= self.apply(&change, step, "switch").await;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(TICK) => {}
            }
        }
        if let Some(m) = managed.filter(|m| m.changed)
            && let Some(step) = m.manager.restore()
        {
            let change = Change {
                from: m.policy.level(),
                to: m.found,
                reason: Reason::Shutdown,
            };
            self.apply(&change, step, "restore").await;
        }
    }

    /// Reads the state the device is in; `None` (logged, counted) when there is no manager or
    /// it cannot be read: then nothing is switched, and nothing needs restoring.
    async fn start(&mut self) -> Option<Managed> {
        let mut manager = self.manager.take()?;
        let io = self.io.clone();
        let (manager, found) = tokio::task::spawn_blocking(move || {
            let found = manager.found(&*io);
            (manager, found)
        })
        .await
        .ok()?;
        match found {
            Ok((target, level)) => {
                self.telemetry
                    .power_found(manager.kind(), &target, level == Level::High);
                let policy = Policy::new(self.policy, level, self.clock.monotonic_us());
                Some(Managed {
                    manager,
                    policy,
                    found: level,
                    changed: false,
                })
            }
            Err(e) => {
                self.telemetry.power_failed("query", &e);
                None
            }
        }
    }

    /// Runs (or in a dry run only logs) `step`; whether the device may have changed.
    async fn apply(&self, change: &Change, step: Step, op: &str) -> bool {
        if self.dry_run {
            self.telemetry.power_changed(change, &step, true);
            return true;
        }
        let io = self.io.clone();
        let run = step.clone();
        let done = tokio::task::spawn_blocking(move || super::apply(&*io, &run)).await;
        match done {
            Ok(Ok(())) => self.telemetry.power_changed(change, &step, false),
            Ok(Err(e)) => self.telemetry.power_failed(op, &e),
            Err(_) => {}
        }
        true
    }

    async fn read_sensors(&mut self) {
        let (mut sensors, io) = (self.sensors.clone(), self.io.clone());
        let read = tokio::task::spawn_blocking(move || {
            let r = sensors.read(&*io);
            (sensors, r)
        });
        let Ok((sensors, readings)) = read.await else {
            return;
        };
        self.sensors = sensors;
        self.telemetry.power_readings(&readings);
        let hot = readings.throttled;
        if hot != self.throttled.swap(hot, Ordering::Relaxed) {
            self.telemetry.thermal(hot);
        }
    }
}

#[cfg(test)]
mod tests;
