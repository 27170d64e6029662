//! The power plan in force, as `edge-agent check` prints it and the agent logs it at start.

use cascade_shared::config::edge::PowerConfig;
use cascade_shared::profile::{HardwareProfile, ManagerKind, PowerSpec, thermal_zones};

/// Lines `power ... = ...` saying what the agent will do with the device's power.
pub fn describe(cfg: &PowerConfig, profile: Option<&HardwareProfile>, dry_run: bool) -> String {
    let spec = profile.and_then(|p| p.power.as_ref());
    let from = profile.map_or_else(
        || "no profile".to_string(),
        |p| format!("profile {}", p.name),
    );
    let mut out = format!("power manager = {} ({from})\n", manager(cfg, spec));
    out += &format!(
        "power sensors = thermal zones {}; rails {}; firmware throttling {}\n",
        thermal_zones(spec).display(),
        rails(spec),
        match spec {
            Some(s) if s.manager == ManagerKind::RaspberryPi => match &s.throttled_file {
                Some(f) => format!("{} or {} get_throttled", f.display(), s.vcgencmd),
                None => format!("{} get_throttled", s.vcgencmd),
            },
            _ => "not read".into(),
        }
    );
    if dry_run || cfg.dry_run {
        out += "power dry run = yes: mode changes are only logged\n";
    }
    out
}

fn mode(spec: &PowerSpec, id: u32) -> String {
    match spec.mode(id) {
        Some(m) => match m.watts {
            Some(w) => format!("{id} ({}, {w} W)", m.name),
            None => format!("{id} ({})", m.name),
        },
        None => id.to_string(),
    }
}

fn manager(cfg: &PowerConfig, spec: Option<&PowerSpec>) -> String {
    let when = format!(
        "after {} s without motion or a tracked person (at least {} s high); high at once on \
         activity; the state found is restored at exit",
        cfg.idle.as_secs_f64(),
        cfg.min_dwell.as_secs_f64()
    );
    let Some(spec) = spec else {
        return "none".into();
    };
    if !cfg.manage {
        return format!("{} not used (power.manage = false)", spec.manager.label());
    }
    match (spec.manager, spec.nvpmodel_modes(), &spec.governors) {
        (ManagerKind::Nvpmodel, Some((high, low)), _) => format!(
            "{}: high mode {}, low mode {} {when}; jetson_clocks {}",
            spec.nvpmodel,
            mode(spec, high),
            mode(spec, low),
            if cfg.jetson_clocks {
                "after each switch to high"
            } else {
                "off"
            },
        ),
        (ManagerKind::RaspberryPi, _, Some(g)) if cfg.governor => {
            format!("CPU governor: {} high, {} low {when}", g.high, g.low)
        }
        (ManagerKind::RaspberryPi, _, _) => {
            "none (the CPU governor is left alone: power.governor = false or no governors)".into()
        }
        _ => "none".into(),
    }
}

fn rails(spec: Option<&PowerSpec>) -> String {
    let names: Vec<&str> = spec
        .map(|s| s.rails.iter().map(|r| r.name.as_str()).collect())
        .unwrap_or_default();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_the_modes_and_when() {
        let profile: HardwareProfile = toml::from_str(
            "name = \"jetson\"\ndescription = \"\"\narch = \"aarch64\"\naccelerator = \"cuda\"\n\
             cpu_cores = 6\nmemory_mib = 8000\ndetector_threads = 4\ndetector_input_sizes = [640]\n\
             [power]\nmanager = \"nvpmodel\"\nhigh_mode = 0\nlow_mode = 1\n\
             mode = [{ id = 0, name = \"15W\", watts = 15.0 }, { id = 1, name = \"7W\", watts = 7.0 }]\n\
             rail = [{ name = \"VDD_IN\", power = \"/x\" }]",
        )
        .expect("profile");
        let text = describe(&PowerConfig::default(), Some(&profile), true);
        assert!(
            text.starts_with(
                "power manager = nvpmodel: high mode 0 (15W, 15 W), low mode 1 (7W, 7 W) after 300 s"
            ),
            "{text}"
        );
        assert!(
            text.contains("(profile jetson)") && text.contains("rails VDD_IN"),
            "{text}"
        );
        assert!(text.contains("power dry run = yes"), "{text}");
        let none = describe(&PowerConfig::default(), None, false);
        assert!(
            none.starts_with("power manager = none (no profile)"),
            "{none}"
        );
    }
}
