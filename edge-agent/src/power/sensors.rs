//! What the device's sensors say: each thermal zone's temperature, each power rail's watts, and
//! whether it is throttled (a zone past its passive trip point or near its critical one,
//! [`crate::thermal`], or the Raspberry Pi firmware's throttled bits, from a sysfs file or
//! `vcgencmd get_throttled` when present). The detector's ladder steps down while throttled.

use std::path::{Path, PathBuf};

use cascade_shared::profile::{ManagerKind, PowerSpec, Rail, thermal_zones};

use super::PowerIo;
use super::io::resolve;

/// Firmware bits that mean throttled now: under-voltage, ARM frequency capped, throttled, soft
/// temperature limit (bits 16-19 say the same since boot).
pub const THROTTLED_NOW: u32 = 0xF;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Readings {
    /// `(zone, degrees Celsius)`.
    pub zones: Vec<(String, f64)>,
    /// `(rail, watts)`.
    pub rails: Vec<(String, f64)>,
    /// The Raspberry Pi firmware's throttled bits, when read.
    pub firmware: Option<u32>,
    pub throttled: bool,
}

#[derive(Debug, Clone)]
pub struct Sensors {
    thermal: PathBuf,
    rails: Vec<Rail>,
    throttled_file: Option<PathBuf>,
    /// `vcgencmd`, until it is found missing.
    vcgencmd: Option<String>,
}

impl Sensors {
    /// The paths of the profile's `[power]` (a profile without one: the system's thermal zones).
    pub fn from_spec(spec: Option<&PowerSpec>) -> Self {
        Self {
            thermal: thermal_zones(spec).to_path_buf(),
            rails: spec.map(|s| s.rails.clone()).unwrap_or_default(),
            throttled_file: spec.and_then(|s| s.throttled_file.clone()),
            vcgencmd: spec
                .filter(|s| s.manager == ManagerKind::RaspberryPi)
                .map(|s| s.vcgencmd.clone()),
        }
    }

    /// Reads everything once; what cannot be read is left out.
    pub fn read(&mut self, io: &dyn PowerIo) -> Readings {
        let zones = crate::thermal::zones(&self.thermal);
        let firmware = self.firmware(io);
        Readings {
            throttled: zones.iter().any(crate::thermal::Zone::throttled)
                || firmware.is_some_and(|b| b & THROTTLED_NOW != 0),
            zones: zones
                .iter()
                .map(|z| (z.name.clone(), z.temp as f64 / 1000.0))
                .collect(),
            rails: self
                .rails
                .iter()
                .filter_map(|r| Some((r.name.clone(), rail_watts(io, r)?)))
                .collect(),
            firmware,
        }
    }

    fn firmware(&mut self, io: &dyn PowerIo) -> Option<u32> {
        if let Some(bits) = (self.throttled_file.as_deref())
            .and_then(|f| io.read(f).ok())
            .and_then(|t| parse_throttled(&t))
        {
            return Some(bits);
        }
        let cmd = self.vcgencmd.as_deref()?;
        match io.run(cmd, &["get_throttled"]) {
            Ok(out) => parse_throttled(&out),
            Err(e) => {
                tracing::info!(error = %e, "no vcgencmd: firmware throttling is not read");
                self.vcgencmd = None;
                None
            }
        }
    }
}

/// `throttled=0x50005`, `0x50005` or `50005` (hex).
pub fn parse_throttled(text: &str) -> Option<u32> {
    let t = text.trim();
    let t = t.strip_prefix("throttled=").unwrap_or(t);
    let t = t.strip_prefix("0x").unwrap_or(t);
    u32::from_str_radix(t, 16).ok()
}

fn number(io: &dyn PowerIo, path: &Path) -> Option<f64> {
    io.read(&resolve(io, path)?).ok()?.trim().parse().ok()
}

/// A rail's watts: `power` in microwatts, or `voltage` (mV) times `current` (mA).
fn rail_watts(io: &dyn PowerIo, r: &Rail) -> Option<f64> {
    match (&r.power, &r.voltage, &r.current) {
        (Some(p), _, _) => Some(number(io, p)? / 1e6),
        (None, Some(v), Some(c)) => Some(number(io, v)? * number(io, c)? / 1e6),
        _ => None,
    }
}

#[cfg(test)]
pub mod testing {
    //! A fake sysfs tree.

    use std::path::Path;

    /// `root/thermal_zoneN` named `kind` at `milli_c` with one passive trip point at `passive`.
    pub fn zone(root: &Path, n: u32, kind: &str, milli_c: i64, passive: i64) {
        let z = root.join(format!("thermal_zone{n}"));
        std::fs::create_dir_all(&z).expect("mkdir");
        std::fs::write(z.join("type"), format!("{kind}\n")).expect("type");
        std::fs::write(z.join("temp"), format!("{milli_c}\n")).expect("temp");
        std::fs::write(z.join("trip_point_0_type"), "passive\n").expect("trip");
        std::fs::write(z.join("trip_point_0_temp"), format!("{passive}\n")).expect("trip");
    }

    /// An INA3221-like hwmon folder under `root` with rail 1 at `mv` and `ma`.
    pub fn ina3221(root: &Path, mv: u32, ma: u32) {
        let h = root.join("hwmon/hwmon3");
        std::fs::create_dir_all(&h).expect("mkdir");
        std::fs::write(h.join("in1_label"), "VDD_IN\n").expect("label");
        std::fs::write(h.join("in1_input"), format!("{mv}\n")).expect("in");
        std::fs::write(h.join("curr1_input"), format!("{ma}\n")).expect("curr");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::io::{SystemIo, testing as cmd};

    fn spec(root: &Path, extra: &str) -> PowerSpec {
        toml::from_str(&format!(
            "manager = \"none\"\nthermal_zones = \"{0}/thermal\"\n\
             rail = [{{ name = \"VDD_IN\", voltage = \"{0}/hwmon/hwmon*/in1_input\", \
             current = \"{0}/hwmon/hwmon*/curr1_input\" }}, {{ name = \"missing\", power = \"{0}/none\" }}]\n{extra}",
            root.display()
        ))
        .expect("spec")
    }

    #[test]
    fn zones_and_rails_from_a_fake_sysfs_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        testing::zone(
            &dir.path().join("thermal"),
            0,
            "cpu-thermal",
            48_500,
            95_000,
        );
        testing::ina3221(dir.path(), 5_000, 1_200);
        let mut s = Sensors::from_spec(Some(&spec(dir.path(), "")));
        let r = s.read(&SystemIo::default());
        assert_eq!(r.zones, vec![("cpu-thermal".to_string(), 48.5)]);
        assert_eq!(r.rails, vec![("VDD_IN".to_string(), 6.0)]);
        assert!(!r.throttled);
        testing::zone(
            &dir.path().join("thermal"),
            1,
            "gpu-thermal",
            96_000,
            95_000,
        );
        assert!(
            s.read(&SystemIo::default()).throttled,
            "past its passive trip point"
        );
    }

    #[test]
    fn the_pi_firmware_bits_from_a_file_or_vcgencmd() {
        assert_eq!(parse_throttled("throttled=0x50005\n"), Some(0x50005));
        assert_eq!(parse_throttled("0x0"), Some(0));
        assert_eq!(parse_throttled("nope"), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        cmd::script(&bin, "vcgencmd", "echo throttled=0x50000");
        let pi: PowerSpec = toml::from_str(&format!(
            "manager = \"raspberry_pi\"\nthermal_zones = \"{}/none\"",
            dir.path().display()
        ))
        .expect("spec");
        let io = SystemIo {
            path: Some(bin.as_os_str().to_owned()),
        };
        let mut s = Sensors::from_spec(Some(&pi));
        let r = s.read(&io);
        assert_eq!(r.firmware, Some(0x50000));
        assert!(!r.throttled, "throttled since boot, not now");
        cmd::script(&bin, "vcgencmd", "echo throttled=0x4");
        assert!(s.read(&io).throttled);
        let missing = SystemIo {
            path: Some(dir.path().join("empty").into_os_string()),
        };
        assert_eq!(s.read(&missing).firmware, None);
        assert!(s.vcgencmd.is_none(), "asked once");
    }
}
