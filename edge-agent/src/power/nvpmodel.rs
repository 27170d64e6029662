//! NVIDIA Jetson: `nvpmodel -q` reads the mode (its last line is the id), `nvpmodel -m <id>`
//! switches; `jetson_clocks` (optional) pins the clocks at the high mode's maximum.

use cascade_shared::profile::{PowerMode, PowerSpec};

use super::{Action, Level, PowerError, PowerIo, PowerManager, Step, Target};

#[derive(Debug, Clone)]
pub struct Nvpmodel {
    command: String,
    jetson_clocks: Option<String>,
    modes: Vec<PowerMode>,
    high: u32,
    low: u32,
    found: Option<u32>,
}

impl Nvpmodel {
    /// From a profile's `[power]` with `manager = "nvpmodel"` (validated: both modes exist).
    pub fn from_spec(spec: &PowerSpec, jetson_clocks: bool) -> Option<Self> {
        let (high, low) = spec.nvpmodel_modes()?;
        Some(Self {
            command: spec.nvpmodel.clone(),
            jetson_clocks: jetson_clocks.then(|| spec.jetson_clocks.clone()),
            modes: spec.modes.clone(),
            high,
            low,
            found: None,
        })
    }

    /// `mode 1 (7W)`, with the mode's watts.
    fn target(&self, id: u32) -> Target {
        let mode = self.modes.iter().find(|m| m.id == id);
        Target {
            label: match mode {
                Some(m) => format!("mode {id} ({})", m.name),
                None => format!("mode {id}"),
            },
            mode: Some(id),
            watts: mode.and_then(|m| m.watts),
        }
    }

    fn set(&self, id: u32) -> Action {
        Action::Run {
            program: self.command.clone(),
            args: vec!["-m".into(), id.to_string()],
        }
    }
}

/// The mode id in `nvpmodel -q`'s output: its last line that is a number
/// (`NV Power Mode: 15W` then `0`).
pub fn parse_query(output: &str) -> Option<u32> {
    output.lines().rev().find_map(|l| l.trim().parse().ok())
}

impl PowerManager for Nvpmodel {
    fn kind(&self) -> &'static str {
        "nvpmodel"
    }

    fn found(&mut self, io: &dyn PowerIo) -> Result<(Target, Level), PowerError> {
        let output = io.run(&self.command, &["-q"])?;
        let id = parse_query(&output).ok_or_else(|| PowerError::Parse {
            command: format!("{} -q", self.command),
            output: output.clone(),
        })?;
        self.found = Some(id);
        let level = if id == self.low {
            Level::Low
        } else {
            Level::High
        };
        Ok((self.target(id), level))
    }

    fn to(&self, level: Level) -> Step {
        let id = match level {
            Level::High => self.high,
            Level::Low => self.low,
        };
        let mut actions = vec![self.set(id)];
        if let (Level::High, Some(clocks)) = (level, &self.jetson_clocks) {
            actions.push(Action::Run {
                program: clocks.clone(),
                args: Vec::new(),
            });
        }
        Step {
            target: self.target(id),
            actions,
        }
    }

    fn restore(&self) -> Option<Step> {
        let id = self.found?;
        Some(Step {
            target: self.target(id),
            actions: vec![self.set(id)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::io::{SystemIo, testing};

    fn spec() -> PowerSpec {
        toml::from_str(
            "manager = \"nvpmodel\"\nhigh_mode = 0\nlow_mode = 1\n\
             mode = [{ id = 0, name = \"15W\", watts = 15.0 }, { id = 1, name = \"7W\", watts = 7.0 }, \
             { id = 2, name = \"10W\", watts = 10.0 }]",
        )
        .expect("spec")
    }

    #[test]
    fn the_query_output_gives_the_mode() {
        assert_eq!(parse_query("NV Power Mode: 15W\n0\n"), Some(0));
        assert_eq!(parse_query("NVPM WARN: ...\nNV Power Mode: 7W\n1"), Some(1));
        assert_eq!(parse_query("NV Power Mode: 7W\n"), None);
    }

    #[test]
    fn reads_the_mode_found_switches_and_restores_it_with_a_fake_nvpmodel() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::fake_nvpmodel(dir.path(), 2);
        let io = SystemIo {
            path: Some(dir.path().as_os_str().to_owned()),
        };
        let mut m = Nvpmodel::from_spec(&spec(), true).expect("nvpmodel");
        let (found, level) = m.found(&io).expect("queried");
        assert_eq!((found.label.as_str(), level), ("mode 2 (10W)", Level::High));
        let low = m.to(Level::Low);
        assert_eq!(low.target.watts, Some(7.0));
        crate::power::apply(&io, &low).expect("low");
        let high = m.to(Level::High);
        assert_eq!(high.actions.len(), 2, "nvpmodel, then jetson_clocks");
        assert_eq!(high.actions[1].to_string(), "jetson_clocks ");
        crate::power::apply(&io, &m.restore().expect("found")).expect("restored");
        assert_eq!(testing::calls(dir.path()), vec!["-q", "-m 1", "-m 2"]);
    }

    #[test]
    fn an_unreadable_query_says_what_it_printed() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::script(dir.path(), "nvpmodel", "echo garbage");
        let io = SystemIo {
            path: Some(dir.path().as_os_str().to_owned()),
        };
        let mut m = Nvpmodel::from_spec(&spec(), false).expect("nvpmodel");
        let e = m.found(&io).expect_err("no mode");
        assert!(e.to_string().contains("garbage"), "{e}");
        assert!(m.restore().is_none(), "nothing found, nothing to restore");
    }
}
