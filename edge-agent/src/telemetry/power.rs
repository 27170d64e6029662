//! Power events: each mode change (log line + `power_mode_changes_total{level,reason,dry_run}`),
//! the mode in force, the sensors (`thermal_zone_celsius{zone}`, `power_rail_watts{rail}`,
//! `device_firmware_throttled_flags`) and failures (`power_errors_total{op}`).

use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, Opts, Registry};

use super::{Telemetry, counter, gauge};
use crate::power::policy::Change;
use crate::power::sensors::Readings;
use crate::power::{Step, Target};

pub(super) struct PowerMetrics {
    changes: IntCounterVec,
    errors: IntCounterVec,
    level: IntGauge,
    mode: IntGauge,
    budget: Gauge,
    zones: GaugeVec,
    rails: GaugeVec,
    firmware: IntGauge,
}

fn gauge_vec(r: &Registry, name: &str, help: &str, label: &str) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    r.register(Box::new(g.clone())).expect("registers once");
    g
}

impl PowerMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        let budget = Gauge::new(
            "power_mode_budget_watts",
            "The power budget of the mode in force (0: unknown or none, as MAXN)",
        )
        .expect("valid metric");
        r.register(Box::new(budget.clone()))
            .expect("registers once");
        Self {
            changes: counter(
                r,
                "power_mode_changes_total",
                "Power mode changes by level (high, low, restore) and reason (activity, idle, \
                 shutdown); dry_run = true ones were only logged",
                &["level", "reason", "dry_run"],
            ),
            errors: counter(
                r,
                "power_errors_total",
                "Power management failures by operation (query, switch, restore)",
                &["op"],
            ),
            level: gauge(
                r,
                "power_level",
                "1 in the high power mode, 0 in the low one",
            ),
            mode: gauge(
                r,
                "power_mode",
                "The nvpmodel mode id in force (-1: none or unknown)",
            ),
            budget,
            zones: gauge_vec(
                r,
                "thermal_zone_celsius",
                "Temperature of each thermal zone",
                "zone",
            ),
            rails: gauge_vec(r, "power_rail_watts", "Power drawn on each rail", "rail"),
            firmware: gauge(
                r,
                "device_firmware_throttled_flags",
                "The Raspberry Pi firmware's throttled bits (vcgencmd get_throttled)",
            ),
        }
    }

    fn show(&self, t: &Target) {
        self.mode.set(t.mode.map_or(-1, i64::from));
        self.budget.set(t.watts.map_or(0.0, f64::from));
    }
}

impl Telemetry {
    /// The state the power manager found at start.
    pub fn power_found(&self, manager: &str, found: &Target, high: bool) {
        tracing::info!(manager, found = %found.label, "power management: the device's mode read");
        self.power.show(found);
        self.power.level.set(i64::from(high));
    }

    /// A mode change made (or, in a dry run, only said).
    pub fn power_changed(&self, change: &Change, step: &Step, dry_run: bool) {
        let actions: Vec<String> = step.actions.iter().map(ToString::to_string).collect();
        let level = if change.reason == crate::power::Reason::Shutdown {
            "restore"
        } else {
            change.to.label()
        };
        if dry_run {
            tracing::info!(
                level,
                reason = change.reason.label(),
                detail = %change.reason,
                to = %step.target.label,
                would_run = %actions.join("; "),
                "power mode change (dry run: nothing done)"
            );
        } else {
            tracing::info!(
                level,
                reason = change.reason.label(),
                detail = %change.reason,
                to = %step.target.label,
                ran = %actions.join("; "),
                "power mode changed"
            );
            self.power.show(&step.target);
        }
        self.power
            .level
            .set(i64::from(change.to == crate::power::Level::High));
        self.power
            .changes
            .with_label_values(&[
                level,
                change.reason.label(),
                if dry_run { "true" } else { "false" },
            ])
            .inc();
    }

    /// A power operation failed.
    pub fn power_failed(&self, op: &str, error: &crate::power::PowerError) {
        tracing::warn!(op, error = %error, "power management failed");
        self.power.errors.with_label_values(&[op]).inc();
    }

    /// One reading of the sensors.
    pub fn power_readings(&self, r: &Readings) {
        for (zone, c) in &r.zones {
            self.power.zones.with_label_values(&[zone]).set(*c);
        }
        for (rail, w) in &r.rails {
            self.power.rails.with_label_values(&[rail]).set(*w);
        }
        if let Some(bits) = r.firmware {
            self.power.firmware.set(i64::from(bits));
        }
    }
}
