//! Raspberry Pi: the CPU governor of every cpufreq policy (`policy*/scaling_governor`), written
//! only when the config allows it (`power.governor = true`), and the firmware's throttled bits
//! (read by [`super::sensors`]).

use std::path::PathBuf;

use cascade_shared::profile::PowerSpec;

use super::{Action, Level, PowerError, PowerIo, PowerManager, Step, Target};

#[derive(Debug, Clone)]
pub struct Governor {
    cpufreq: PathBuf,
    high: String,
    low: String,
    /// Each policy's governor file and the governor found in it.
    found: Vec<(PathBuf, String)>,
}

impl Governor {
    pub fn from_spec(spec: &PowerSpec) -> Option<Self> {
        let g = spec.governors.as_ref()?;
        Some(Self {
            cpufreq: spec.cpufreq.clone(),
            high: g.high.clone(),
            low: g.low.clone(),
            found: Vec::new(),
        })
    }

    fn target(governor: &str) -> Target {
        Target {
            label: format!("governor {governor}"),
            mode: None,
            watts: None,
        }
    }
}

impl PowerManager for Governor {
    fn kind(&self) -> &'static str {
        "governor"
    }

    fn found(&mut self, io: &dyn PowerIo) -> Result<(Target, Level), PowerError> {
        let file = |source| PowerError::File {
            path: self.cpufreq.clone(),
            source,
        };
        let policies = io.list(&self.cpufreq).map_err(file)?;
        self.found.clear();
        for dir in policies {
            let is_policy = dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("policy"));
            let path = dir.join("scaling_governor");
            if let (true, Ok(g)) = (is_policy, io.read(&path)) {
                self.found.push((path, g.trim().to_string()));
            }
        }
        let Some((_, first)) = self.found.first() else {
            return Err(file(std::io::Error::other("no policy*/scaling_governor")));
        };
        let level = if self.found.iter().all(|(_, g)| *g == self.low) {
            Level::Low
        } else {
            Level::High
        };
        Ok((Self::target(first), level))
    }

    fn to(&self, level: Level) -> Step {
        let governor = match level {
            Level::High => &self.high,
            Level::Low => &self.low,
        };
        Step {
            target: Self::target(governor),
            actions: self
                .found
                .iter()
                .map(|(path, _)| Action::Write {
                    path: path.clone(),
                    value: governor.clone(),
                })
                .collect(),
        }
    }

    fn restore(&self) -> Option<Step> {
        let (_, first) = self.found.first()?;
        Some(Step {
            target: Self::target(first),
            actions: self
                .found
                .iter()
                .map(|(path, g)| Action::Write {
                    path: path.clone(),
                    value: g.clone(),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::io::SystemIo;

    #[test]
    fn writes_each_policys_governor_and_puts_back_what_it_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (n, g) in [("policy0", "ondemand"), ("policy4", "schedutil")] {
            std::fs::create_dir_all(dir.path().join(n)).expect("mkdir");
            std::fs::write(
                dir.path().join(n).join("scaling_governor"),
                format!("{g}\n"),
            )
            .expect("gov");
        }
        let spec: PowerSpec = toml::from_str(&format!(
            "manager = \"raspberry_pi\"\ncpufreq = \"{}\"\n\
             governors = {{ high = \"ondemand\", low = \"powersave\" }}",
            dir.path().display()
        ))
        .expect("spec");
        let mut g = Governor::from_spec(&spec).expect("governor");
        let io = SystemIo::default();
        assert_eq!(g.found(&io).expect("found").1, Level::High);
        crate::power::apply(&io, &g.to(Level::Low)).expect("low");
        let read = |n: &str| {
            std::fs::read_to_string(dir.path().join(n).join("scaling_governor")).expect("read")
        };
        assert_eq!(
            (read("policy0"), read("policy4")),
            ("powersave".into(), "powersave".into())
        );
        crate::power::apply(&io, &g.restore().expect("found")).expect("restore");
        assert_eq!(read("policy4"), "schedutil");
    }
}
