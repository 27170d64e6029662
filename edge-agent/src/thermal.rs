//! Whether the device is thermally throttled, from the Linux thermal zones
//! (`/sys/class/thermal/thermal_zone*/`): a zone at or above its lowest `passive` trip point
//! (where the kernel starts slowing the CPU down), or within `margin` of its `hot` or `critical`
//! one, counts as throttled. The detector's ladder steps down while it is. Boxes without thermal
//! zones (containers, most VMs) are never throttled.

use std::path::Path;

/// Degrees (millidegrees Celsius) below a `hot`/`critical` trip point that already count.
const MARGIN_MILLI_C: i64 = 5_000;

/// One zone's temperature and trip points, millidegrees Celsius.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Zone {
    /// Its `type` (`cpu-thermal`, `CPU-therm`), else its folder's name.
    pub name: String,
    pub temp: i64,
    /// `(type, temperature)` of each trip point.
    pub trips: Vec<(String, i64)>,
}

impl Zone {
    /// Throttled by this zone's trip points.
    pub fn throttled(&self) -> bool {
        self.trips.iter().any(|(kind, t)| match kind.as_str() {
            "passive" => self.temp >= *t,
            "hot" | "critical" => self.temp >= t - MARGIN_MILLI_C,
            _ => false,
        })
    }
}

/// The zones under `root` (normally `/sys/class/thermal`); unreadable ones are skipped.
pub fn zones(root: &Path) -> Vec<Zone> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let mut entries: Vec<_> = dir.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    let mut out = Vec::new();
    for entry in entries {
        let zone = entry.path();
        let is_zone = entry
            .file_name()
            .to_string_lossy()
            .starts_with("thermal_zone");
        let Some(temp) = is_zone
            .then(|| read(&zone.join("temp"))?.parse().ok())
            .flatten()
        else {
            continue;
        };
        let trips = (0..16)
            .map_while(|i| {
                let kind = read(&zone.join(format!("trip_point_{i}_type")))?;
                let t = read(&zone.join(format!("trip_point_{i}_temp")))?
                    .parse()
                    .ok()?;
                Some((kind, t))
            })
            .collect();
        let name = read(&zone.join("type"))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| entry.file_name().to_string_lossy().into_owned());
        out.push(Zone { name, temp, trips });
    }
    out
}

/// Whether any zone under `root` is throttled.
pub fn throttled(root: &Path) -> bool {
    zones(root).iter().any(Zone::throttled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(dir: &Path, n: u32, temp: i64, trips: &[(&str, i64)]) {
        let z = dir.join(format!("thermal_zone{n}"));
        std::fs::create_dir_all(&z).expect("mkdir");
        std::fs::write(z.join("temp"), format!("{temp}\n")).expect("temp");
        for (i, (kind, t)) in trips.iter().enumerate() {
            std::fs::write(z.join(format!("trip_point_{i}_type")), kind).expect("type");
            std::fs::write(z.join(format!("trip_point_{i}_temp")), t.to_string()).expect("t");
        }
    }

    #[test]
    fn a_zone_past_its_passive_trip_or_near_critical_is_throttled() {
        let dir = tempfile::tempdir().expect("tempdir");
        zone(
            dir.path(),
            0,
            60_000,
            &[("passive", 80_000), ("critical", 100_000)],
        );
        std::fs::create_dir_all(dir.path().join("cooling_device0")).expect("mkdir");
        assert!(!throttled(dir.path()), "60 C of 80 C passive");
        zone(dir.path(), 1, 81_000, &[("passive", 80_000)]);
        assert!(throttled(dir.path()), "past passive");
        let near = Zone {
            temp: 96_000,
            trips: vec![("critical".into(), 100_000)],
            ..Zone::default()
        };
        assert!(near.throttled(), "within 5 C of critical");
        assert!(
            !Zone {
                temp: 90_000,
                trips: vec![("active".into(), 50_000)],
                ..Zone::default()
            }
            .throttled()
        );
    }

    #[test]
    fn no_thermal_zones_is_never_throttled() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!throttled(&dir.path().join("absent")));
        assert!(zones(dir.path()).is_empty());
    }
}
