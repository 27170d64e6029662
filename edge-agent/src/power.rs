//! Power management: the device's power mode follows what the cameras see. A [`PowerManager`],
//! chosen by the hardware profile's `[power]` (`nvpmodel` on a Jetson, the CPU governor on a
//! Raspberry Pi), says how to reach the high or the low mode as [`Action`]s; the I/O-free
//! [`policy::Policy`] decides when (low after `idle_s` without motion or a tracked person, high at
//! once when one appears, at least `min_dwell_s` high); [`task`] clocks it, runs the actions
//! through [`io::PowerIo`] (or only logs them: dry run), reads the sensors (thermal zones, power
//! rails, firmware throttling) into metrics and the detector's `throttled` flag, and restores the
//! state it found when the agent stops. See `design/power.md`.

pub mod io;
pub mod nvpmodel;
pub mod pi;
pub mod plan;
pub mod policy;
pub mod sensors;
pub mod task;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};

use cascade_shared::config::edge::PowerConfig;
use cascade_shared::profile::{ManagerKind, PowerSpec};

pub use io::{PowerIo, SystemIo};
pub use policy::{Level, Policy, PolicyConfig, Reason};

/// When motion or a tracked person was last seen by any camera (monotonic microseconds): the
/// capture threads store, the power task reads. One relaxed atomic per motion frame.
#[derive(Debug)]
pub struct Activity(AtomicI64);

impl Default for Activity {
    fn default() -> Self {
        Self(AtomicI64::new(i64::MIN))
    }
}

impl Activity {
    /// Something was seen at `now_us`.
    pub fn saw(&self, now_us: i64) {
        self.0.fetch_max(now_us, Ordering::Relaxed);
    }

    /// The latest time something was seen, if ever.
    pub fn last(&self) -> Option<i64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|t| *t != i64::MIN)
    }
}

/// One thing to do to reach a state: a command or a sysfs write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run { program: String, args: Vec<String> },
    Write { path: PathBuf, value: String },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Run { program, args } => write!(f, "{program} {}", args.join(" ")),
            Self::Write { path, value } => write!(f, "write {value} to {}", path.display()),
        }
    }
}

/// A state a manager can put the device in, for logs and gauges.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `mode 1 (7W)`, `governor powersave`.
    pub label: String,
    /// The nvpmodel mode id.
    pub mode: Option<u32>,
    /// The mode's power budget.
    pub watts: Option<f32>,
}

/// How to reach a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub target: Target,
    pub actions: Vec<Action>,
}

#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error("{command}: {reason}")]
    Command { command: String, reason: String },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{command}: cannot read the mode from {output:?}")]
    Parse { command: String, output: String },
}

/// Switches the device between its high and low power states. Its edge is plain data: it reads
/// the state it found once, and describes the steps; the task runs them.
pub trait PowerManager: Send + Sync {
    /// `nvpmodel` or `governor`.
    fn kind(&self) -> &'static str;
    /// Reads the state the device is in now (once, at start) and remembers it for
    /// [`PowerManager::restore`]; returns it and the level it counts as.
    fn found(&mut self, io: &dyn PowerIo) -> Result<(Target, Level), PowerError>;
    /// How to reach `level`.
    fn to(&self, level: Level) -> Step;
    /// How to put back the state [`PowerManager::found`] read.
    fn restore(&self) -> Option<Step>;
}

/// The manager the profile's `[power]` and the config's `[power]` ask for, if any.
pub fn choose(spec: Option<&PowerSpec>, cfg: &PowerConfig) -> Option<Box<dyn PowerManager>> {
    let spec = spec.filter(|_| cfg.manage)?;
    match spec.manager {
        ManagerKind::Nvpmodel => nvpmodel::Nvpmodel::from_spec(spec, cfg.jetson_clocks)
            .map(|m| Box::new(m) as Box<dyn PowerManager>),
        ManagerKind::RaspberryPi => pi::Governor::from_spec(spec)
            .filter(|_| cfg.governor)
            .map(|m| Box::new(m) as Box<dyn PowerManager>),
        ManagerKind::None => None,
    }
}

/// Runs `step`'s actions in order; the first failure stops it.
pub fn apply(io: &dyn PowerIo, step: &Step) -> Result<(), PowerError> {
    for action in &step.actions {
        match action {
            Action::Run { program, args } => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                io.run(program, &args)?;
            }
            Action::Write { path, value } => {
                io.write(path, value).map_err(|source| PowerError::File {
                    path: path.clone(),
                    source,
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_keeps_the_latest_time() {
        let a = Activity::default();
        assert_eq!(a.last(), None);
        a.saw(5);
        a.saw(3);
        assert_eq!(a.last(), Some(5));
    }

    #[test]
    fn the_profile_and_config_choose_the_manager() {
        let spec: PowerSpec = toml::from_str(
            "manager = \"nvpmodel\"\nhigh_mode = 0\nlow_mode = 1\n\
             mode = [{ id = 0, name = \"15W\", watts = 15.0 }, { id = 1, name = \"7W\", watts = 7.0 }]",
        )
        .expect("spec");
        let cfg = PowerConfig::default();
        assert_eq!(
            choose(Some(&spec), &cfg).map(|m| m.kind()),
            Some("nvpmodel")
        );
        let off = PowerConfig {
            manage: false,
            ..PowerConfig::default()
        };
        assert!(choose(Some(&spec), &off).is_none());
        assert!(choose(None, &cfg).is_none());
        let pi: PowerSpec = toml::from_str(
            "manager = \"raspberry_pi\"\ngovernors = { high = \"ondemand\", low = \"powersave\" }",
        )
        .expect("spec");
        assert!(
            choose(Some(&pi), &cfg).is_none(),
            "the governor needs power.governor"
        );
        let allowed = PowerConfig {
            governor: true,
            ..PowerConfig::default()
        };
        assert_eq!(
            choose(Some(&pi), &allowed).map(|m| m.kind()),
            Some("governor")
        );
    }
}
