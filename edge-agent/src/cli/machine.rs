//! `check`'s look at the machine it runs on against the hardware profile: processor, cores,
//! memory and the accelerator's device nodes. A processor of the wrong architecture is a problem
//! (`check_arch`); the rest are notes, printed by `check` and logged at start: a profile may be
//! used on a bigger box, and an accelerator's runtime reports its own device errors when loaded.

use std::path::Path;

use cascade_shared::profile::{Accelerator, HardwareProfile};

/// What this machine has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub arch: &'static str,
    pub cores: usize,
    /// `MemTotal` of /proc/meminfo, when readable.
    pub memory_mib: Option<u64>,
}

impl Machine {
    pub fn this() -> Self {
        Self {
            arch: std::env::consts::ARCH,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_mib: std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| mem_total_mib(&m)),
        }
    }
}

fn mem_total_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Device nodes that show an accelerator is there, and what to do when none is.
fn accelerator_nodes(a: Accelerator) -> Option<(&'static [&'static str], &'static str)> {
    match a {
        Accelerator::Cpu => None,
        Accelerator::Cuda => Some((
            &[
                "/dev/nvhost-ctrl-gpu",
                "/dev/nvgpu/igpu0/ctrl",
                "/dev/nvidia0",
            ],
            "the GPU driver (JetPack on a Jetson, the NVIDIA driver elsewhere)",
        )),
        // The USB Accelerator has no node of its own: the Edge TPU runtime lists it (`check`
        // reports its error under detector.edgetpu).
        Accelerator::EdgeTpu => None,
        Accelerator::Hailo => Some((
            &["/dev/hailo0"],
            "the hailo-all package (HailoRT and its PCIe driver) and a reboot: design/hailo.md",
        )),
    }
}

/// One line per fact and one per mismatch: `machine = x86_64, 2 cores, 23975 MiB` then notes.
pub fn report(m: &Machine, profile: Option<&HardwareProfile>, root: &Path) -> String {
    let mem = m
        .memory_mib
        .map_or_else(|| "memory unknown".to_string(), |v| format!("{v} MiB"));
    let mut out = format!("machine = {}, {} cores, {mem}\n", m.arch, m.cores);
    let Some(p) = profile else {
        return out;
    };
    let mut note = |s: String| out += &format!("note: profile {}: {s}\n", p.name);
    if m.cores < p.cpu_cores as usize {
        note(format!(
            "made for {} cores; this machine has {}: the detector's threads and the ladder may not keep up",
            p.cpu_cores, m.cores
        ));
    }
    if let Some(have) = m.memory_mib
        && have * 10 < u64::from(p.memory_mib) * 9
    {
        note(format!(
            "made for {} MiB of memory; this machine has {have} MiB",
            p.memory_mib
        ));
    }
    if let Some((nodes, what)) = accelerator_nodes(p.accelerator)
        && !nodes
            .iter()
            .any(|n| root.join(n.trim_start_matches('/')).exists())
    {
        note(format!(
            "its {} accelerator has no device here (none of {}): install {what}",
            p.accelerator.label(),
            nodes.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_shared::profile::Arch;

    fn profile(accelerator: Accelerator) -> HardwareProfile {
        HardwareProfile {
            name: "box".into(),
            description: String::new(),
            arch: Arch::Aarch64,
            accelerator,
            cpu_cores: 4,
            memory_mib: 8192,
            detector_threads: 2,
            detector_input_sizes: vec![640],
            power: None,
            gpu: None,
        }
    }

    #[test]
    fn meminfo_gives_the_total_in_mib() {
        let m = "MemTotal:       24550000 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total_mib(m), Some(23974));
        assert_eq!(mem_total_mib("garbage"), None);
    }

    #[test]
    fn a_smaller_machine_and_a_missing_accelerator_are_noted() {
        let small = Machine {
            arch: "aarch64",
            cores: 2,
            memory_mib: Some(1024),
        };
        let root = tempfile::tempdir().expect("tmp");
        let r = report(&small, Some(&profile(Accelerator::Hailo)), root.path());
        assert!(
            r.starts_with("machine = aarch64, 2 cores, 1024 MiB\n"),
            "{r}"
        );
        assert!(r.contains("made for 4 cores; this machine has 2"), "{r}");
        assert!(r.contains("made for 8192 MiB"), "{r}");
        assert!(
            r.contains("none of /dev/hailo0") && r.contains("hailo-all"),
            "{r}"
        );

        std::fs::create_dir_all(root.path().join("dev")).expect("dev");
        std::fs::write(root.path().join("dev/hailo0"), "").expect("node");
        let big = Machine {
            arch: "aarch64",
            cores: 8,
            memory_mib: Some(16000),
        };
        let r = report(&big, Some(&profile(Accelerator::Hailo)), root.path());
        assert!(!r.contains("note:"), "{r}");
        let r = report(&big, None, root.path());
        assert_eq!(r.lines().count(), 1, "{r}");
    }
}
