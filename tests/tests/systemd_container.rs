//! The shipped unit under a real systemd (issue 13 item 2): a throwaway Debian 12 container booted
//! with systemd as PID 1, the real `edge-agent` installed as the unit expects it (`/usr/bin`,
//! `/etc/cascade/edge-agent.toml`, a `cascade` system user) and the unit of
//! `deploy/systemd/cascade-edge-agent.service` as shipped, hardening and all, with one drop-in that
//! shortens its watchdog for the test. Checks: `systemctl start` returns only once the agent has
//! said READY=1 and its camera streams; the agent's STATUS= is what systemd shows; the state folder
//! is 0700; a wedged agent (SIGSTOPped, so its watchdog pings stop) is killed by the watchdog and
//! restarted by `Restart=on-failure`, and comes back ready.
//!
//! Skips, saying so, without a Docker engine, without the base image (`scripts/base-image.sh`),
//! or where the engine cannot boot systemd in a container (it needs CAP_SYS_ADMIN and the host's
//! cgroups, read-only).

use std::path::Path;
use std::time::Duration;

use cascade_tests::docker::{self, BASE, Container};
use cascade_tests::{binary, eventually, repo_root};

const IMAGE: &str = "cascade/systemd-test:bookworm";
const UNIT: &str = "cascade-edge-agent";

/// The agent's config as a device would have it, with the test's small detector and a looped clip
/// standing in for a camera; no broker (the uplink retries; readiness does not wait for it).
const CONFIG: &str = r#"[device]
id = "dev-systemd"

[[camera]]
id = "cam-1"
source = { kind = "file", path = "/usr/share/cascade/clips/walker.mp4", realtime = true, loop = true }

[detector]
manifest = "/usr/share/cascade/models/blob-yolov8-int8.toml"
onnxruntime = "/usr/lib/cascade/libonnxruntime.so"

[buffer]
dir = "/var/lib/cascade/buffer"

[uplink]
host = "127.0.0.1"
port = 1
tls = false

[telemetry]
listen = "127.0.0.1:0"
"#;

/// The test's only change to the unit: a 4 s watchdog, a quick restart, a short abort.
const DROP_IN: &str = "[Service]\nWatchdogSec=4s\nRestartSec=1s\nTimeoutAbortSec=3s\n";

fn image() -> String {
    format!(
        "FROM {BASE}\nRUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
         --no-install-recommends systemd systemd-sysv dbus >/dev/null && rm -rf /var/lib/apt/lists/*\n\
         CMD [\"/sbin/init\"]\n"
    )
}

/// A container booted with systemd, or why there cannot be one here (no engine or base image:
/// already said by [`docker::available`]).
fn boot() -> Result<Container, String> {
    if docker::available().is_none() {
        return Err("see above".into());
    }
    docker::build_once(IMAGE, &image()).map_err(|e| format!("building {IMAGE}: {e:#}"))?;
    let args = [
        "-e",
        "container=docker",
        "--cap-add",
        "SYS_ADMIN",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        IMAGE,
    ];
    let c = Container::run(&docker::unique("systemd"), &args)
        .map_err(|e| format!("this engine cannot boot systemd in a container: {e:#}"))?;
    let booted = eventually(Duration::from_secs(60), || {
        let (_, state) = c.try_sh("systemctl is-system-running");
        state.starts_with("running") || state.starts_with("degraded")
    });
    match booted {
        Ok(()) => Ok(c),
        Err(_) => Err(format!(
            "systemd did not come up in the container: {}",
            c.logs()
        )),
    }
}

/// Installs the agent, its model, a clip, the config and the unit the way a package does.
fn install(c: &Container, repo: &Path) -> anyhow::Result<()> {
    c.sh(
        "mkdir -p /usr/lib/cascade /usr/share/cascade/models/test /usr/share/cascade/clips \
         /etc/cascade /etc/systemd/system/cascade-edge-agent.service.d \
         && groupadd -f plugdev && useradd --system --home-dir /var/lib/cascade \
         --shell /usr/sbin/nologin cascade",
    )?;
    c.copy_in(&binary("edge-agent"), "/usr/bin/edge-agent")?;
    c.copy_in(
        &repo.join(".cache/onnxruntime/libonnxruntime.so"),
        "/usr/lib/cascade/libonnxruntime.so",
    )?;
    c.copy_in(
        &repo.join("models/blob-yolov8-int8.toml"),
        "/usr/share/cascade/models/blob-yolov8-int8.toml",
    )?;
    c.copy_in(
        &repo.join("models/test/blob-yolov8-int8.onnx"),
        "/usr/share/cascade/models/test/blob-yolov8-int8.onnx",
    )?;
    c.copy_in(
        &repo.join("tests/fixtures/walker.mp4"),
        "/usr/share/cascade/clips/walker.mp4",
    )?;
    c.write("/etc/cascade/edge-agent.toml", CONFIG)?;
    c.copy_in(
        &repo.join("deploy/systemd/cascade-edge-agent.service"),
        "/etc/systemd/system/cascade-edge-agent.service",
    )?;
    c.write(
        "/etc/systemd/system/cascade-edge-agent.service.d/test.conf",
        DROP_IN,
    )?;
    // As a package leaves them: the config may hold secrets, readable by the service's group.
    c.sh(
        "chown root:cascade /etc/cascade/edge-agent.toml && chmod 0640 /etc/cascade/edge-agent.toml \
         && chmod 0644 /etc/systemd/system/cascade-edge-agent.service.d/test.conf \
         && systemctl daemon-reload",
    )?;
    Ok(())
}

/// `systemctl show -p NAME --value` of the unit.
fn prop(c: &Container, name: &str) -> String {
    c.try_sh(&format!("systemctl show -p {name} --value {UNIT}"))
        .1
        .trim()
        .to_string()
}

fn journal(c: &Container) -> String {
    c.try_sh(&format!("journalctl -u {UNIT} --no-pager | tail -40"))
        .1
}

#[test]
fn systemd_starts_the_agent_when_ready_and_restarts_it_when_wedged() {
    let c = match boot() {
        Ok(c) => c,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    install(&c, &repo_root()).expect("install the agent in the container");

    // Type=notify: `start` returns once READY=1 came, so the unit is active at once.
    let (started, said) = c.try_sh(&format!("systemctl start {UNIT}"));
    assert!(started, "systemctl start failed: {said}\n{}", journal(&c));
    assert_eq!(prop(&c, "ActiveState"), "active", "{}", journal(&c));
    assert_eq!(prop(&c, "SubState"), "running");
    assert!(
        journal(&c).contains("told systemd: ready"),
        "the agent did not log its READY=1:\n{}",
        journal(&c)
    );
    assert!(
        prop(&c, "StatusText").contains("cam-1 streaming"),
        "systemd shows the agent's STATUS=: {:?}",
        prop(&c, "StatusText")
    );
    let mode = c
        .sh("stat -c '%a %U' /var/lib/cascade")
        .expect("state folder");
    assert_eq!(
        mode.trim(),
        "700 cascade",
        "StateDirectory= as the unit says"
    );

    // Still alive after several watchdog periods: the pings come while frames flow.
    let first = prop(&c, "MainPID");
    std::thread::sleep(Duration::from_secs(9));
    assert_eq!(prop(&c, "NRestarts"), "0", "{}", journal(&c));
    assert_eq!(prop(&c, "MainPID"), first, "restarted while healthy");

    // Wedged: the watchdog kills it, Restart=on-failure starts it again, and it is ready again.
    c.sh(&format!("kill -STOP {first}")).expect("SIGSTOP");
    let restarted = eventually(Duration::from_secs(60), || {
        prop(&c, "NRestarts") != "0"
            && prop(&c, "ActiveState") == "active"
            && prop(&c, "MainPID") != first
    });
    let log = journal(&c);
    assert!(restarted.is_ok(), "not restarted after a wedge:\n{log}");
    assert!(
        log.contains("Watchdog timeout"),
        "the watchdog did it:\n{log}"
    );
    assert!(
        log.contains("Failed with result 'watchdog'"),
        "systemd records why:\n{log}"
    );
}
