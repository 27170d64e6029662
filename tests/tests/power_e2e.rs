//! Power management end to end: the real `edge-agent` with a Jetson-like profile whose
//! `nvpmodel` is a fake script recording its calls and whose thermal zones and power rail are a
//! fake sysfs tree (temp dirs), on the walker clip played in real time (a person walks through
//! between 2 s and 6.5 s of 8 s). Nothing listens on the broker port: crops stay buffered, which
//! power management does not care about.
//!
//! Expected: `-q` at start (mode 2 found), the low mode (1) after 1 s idle before the walker, the
//! high mode (0) on motion, the low mode again after the walker left, and mode 2 restored on
//! SIGTERM. Metrics: changes by reason, zone temperature, rail watts.

use std::path::Path;
use std::time::Duration;

use cascade_tests::{EdgeProcess, eventually, free_port, repo_root as repo};

/// A fake `nvpmodel` in `dir` (mode starts at 2) that appends each call to `dir/calls`.
fn fake_nvpmodel(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let d = dir.display();
    std::fs::write(dir.join("mode"), "2").expect("mode");
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> {d}/calls\n\
         if [ \"$1\" = -q ]; then read -r m < {d}/mode; echo \"NV Power Mode: MODE_$m\"; echo \"$m\"; fi\n\
         if [ \"$1\" = -m ]; then echo \"$2\" > {d}/mode; fi\n"
    );
    let path = dir.join("nvpmodel");
    std::fs::write(&path, script).expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A thermal zone at 47.5 C (passive trip at 90 C) and an INA3221-like rail of 5 V x 1.5 A.
fn fake_sysfs(root: &Path) {
    let zone = root.join("thermal/thermal_zone0");
    std::fs::create_dir_all(&zone).expect("mkdir");
    for (file, value) in [
        ("type", "cpu-thermal"),
        ("temp", "47500"),
        ("trip_point_0_type", "passive"),
        ("trip_point_0_temp", "90000"),
    ] {
        std::fs::write(zone.join(file), value).expect("zone");
    }
    let hwmon = root.join("hwmon/hwmon2");
    std::fs::create_dir_all(&hwmon).expect("mkdir");
    std::fs::write(hwmon.join("in1_input"), "5000").expect("in");
    std::fs::write(hwmon.join("curr1_input"), "1500").expect("curr");
}

fn write_profile(dir: &Path, bin: &Path, sys: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"name = "jetson-like"
description = "a Jetson-like test box"
arch = "{arch}"
accelerator = "cpu"
cpu_cores = 2
memory_mib = 2048
detector_threads = 1
detector_input_sizes = [320]

[power]
manager = "nvpmodel"
nvpmodel = "{nvpmodel}"
high_mode = 0
low_mode = 1
mode = [{{ id = 0, name = "15W", watts = 15.0 }}, {{ id = 1, name = "7W", watts = 7.0 }}, {{ id = 2, name = "10W", watts = 10.0 }}]
thermal_zones = "{sys}/thermal"
rail = [{{ name = "VDD_IN", voltage = "{sys}/hwmon/hwmon*/in1_input", current = "{sys}/hwmon/hwmon*/curr1_input" }}]
"#,
        arch = std::env::consts::ARCH,
        nvpmodel = bin.join("nvpmodel").display(),
        sys = sys.display(),
    );
    let path = dir.join("jetson-like.toml");
    std::fs::write(&path, text).expect("profile");
    path
}

fn write_config(dir: &Path, profile: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"[device]
id = "dev-power"
profile = "{profile}"

[[camera]]
id = "cam-1"
source = {{ kind = "file", path = "{clip}", realtime = true }}

[detector]
manifest = "{manifest}"

[buffer]
dir = "{buffer}"

[uplink]
host = "127.0.0.1"
port = {port}
tls = false

[telemetry]
listen = "127.0.0.1:0"

[power]
idle_s = 1.0
min_dwell_s = 0.5
sensors_s = 0.2
"#,
        profile = profile.display(),
        clip = repo().join("tests/fixtures/walker.mp4").display(),
        manifest = repo().join("models/blob-yolov8-int8.toml").display(),
        buffer = dir.join("buffer").display(),
        port = free_port(),
    );
    let path = dir.join("edge.toml");
    std::fs::write(&path, text).expect("config");
    path
}

fn calls(bin: &Path) -> Vec<String> {
    std::fs::read_to_string(bin.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_agent_switches_nvpmodel_with_what_the_camera_sees_and_restores_it_at_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bin, sys) = (dir.path().join("bin"), dir.path().join("sys"));
    std::fs::create_dir_all(&bin).expect("mkdir");
    fake_nvpmodel(&bin);
    fake_sysfs(&sys);
    let config = write_config(dir.path(), &write_profile(dir.path(), &bin, &sys));

    let check = std::process::Command::new(cascade_tests::binary("edge-agent"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("check runs");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        out.contains("power manager = ")
            && out.contains("high mode 0 (15W, 15 W), low mode 1 (7W, 7 W) after 1 s"),
        "{out}"
    );
    assert!(calls(&bin).is_empty(), "check runs no nvpmodel");

    let mut agent = EdgeProcess::start(&config, &dir.path().join("edge.log")).expect("agent");
    // Low before the walker (1 s idle), high on motion, low again after the walker left.
    let want = ["-q", "-m 1", "-m 0", "-m 1"];
    let seen = eventually(Duration::from_secs(40), || calls(&bin).len() >= want.len());
    assert!(
        seen.is_ok(),
        "calls {:?}\nlog:\n{}",
        calls(&bin),
        agent.log_text()
    );
    assert_eq!(
        calls(&bin)[..want.len()],
        want,
        "log:\n{}",
        agent.log_text()
    );
    let celsius = agent.metric("thermal_zone_celsius", &[("zone", "cpu-thermal")]);
    assert_eq!(celsius, 47.5);
    assert_eq!(agent.metric("power_rail_watts", &[("rail", "VDD_IN")]), 7.5);
    // The gauge follows the call's return: wait for it rather than race it.
    let low = eventually(Duration::from_secs(10), || {
        agent.metric("power_mode", &[]) == 1.0
    });
    assert!(
        low.is_ok(),
        "power_mode {}",
        agent.metric("power_mode", &[])
    );
    let by = |reason| agent.metric("power_mode_changes_total", &[("reason", reason)]);
    assert!(by("idle") >= 2.0 && by("activity") >= 1.0);

    let pid = agent.pid().expect("running");
    cascade_tests::signal(pid, "TERM").expect("SIGTERM");
    let status = agent.wait(Duration::from_secs(20)).expect("exits");
    assert!(status.success(), "{status:?}\n{}", agent.log_text());
    let all = calls(&bin);
    assert_eq!(
        all.last().map(String::as_str),
        Some("-m 2"),
        "restored: {all:?}"
    );
    assert!(agent.log_text().contains("power mode changed"), "logged");
}
