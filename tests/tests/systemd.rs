//! The edge agent under systemd (issue 13 item 2), without systemd: the real agent runs the walker
//! clip in real time against a real analyzer (embedded broker, TLS) with `$NOTIFY_SOCKET` pointing
//! at a datagram socket of the test and `$WATCHDOG_USEC` set: it says `READY=1` once its camera
//! streams, feeds the watchdog while frames flow, and says `STOPPING=1` at exit. The shipped unit
//! (`deploy/systemd/cascade-edge-agent.service`) passes `systemd-analyze verify` and its security
//! exposure stays low (skipped, saying so, without `systemd-analyze`).

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cascade_tests::{
    AnalyzerProcess, EdgeOptions, analyzer_config, binary, embedded_broker_toml, free_port,
    make_certs, repo_root, write_edge_config,
};

#[test]
fn the_agent_says_ready_feeds_the_watchdog_and_says_stopping() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let certs = make_certs(dir).expect("certs");
    let (port, api) = (
        free_port(),
        std::net::SocketAddr::from(([127, 0, 0, 1], free_port())),
    );
    let acfg = analyzer_config(
        dir,
        &repo_root(),
        &embedded_broker_toml(port, &certs),
        api,
        5.0,
    );
    let _analyzer = AnalyzerProcess::start(dir, &acfg, api).expect("analyzer starts");
    let o = EdgeOptions {
        realtime: true,
        uplink: String::new(),
        ..EdgeOptions::walker(&repo_root())
    };
    let config = write_edge_config(dir, port, &certs, &o);
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let reader = std::thread::spawn(move || {
        let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = msg.starts_with("STOPPING=1");
                got.push(msg);
                if done {
                    break;
                }
            }
        }
        got
    });
    let out = Command::new(binary("edge-agent"))
        .args(["run", "--exit-when-done", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .output()
        .expect("agent runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let got = reader.join().expect("reader");
    let kinds: Vec<&str> = got.iter().map(|m| m.lines().next().unwrap_or("")).collect();
    assert_eq!(kinds.first(), Some(&"READY=1"), "{got:?}\n{log}");
    assert!(
        got[0].contains("STATUS=cameras: cam-1 streaming"),
        "{got:?}"
    );
    assert_eq!(kinds.last(), Some(&"STOPPING=1"), "{got:?}");
    let pings = kinds.iter().filter(|k| **k == "WATCHDOG=1").count();
    // 8 s of clip, a ping every 0.5 s.
    assert!(pings >= 8, "{pings} watchdog pings: {kinds:?}");
}

#[test]
fn the_shipped_unit_verifies_and_is_hardened() {
    verify_unit(
        "cascade-edge-agent",
        "edge-agent",
        &["Type=notify", "WatchdogSec=", "DevicePolicy=closed"],
    );
}

/// The analyzer's unit (design/packaging.md): as hardened, with no devices at all.
#[test]
fn the_analyzer_unit_verifies_and_is_hardened() {
    verify_unit(
        "cascade-cloud-analyzer",
        "cloud-analyzer",
        &[
            "Type=exec",
            "PrivateDevices=yes",
            "ExecStartPre=/usr/bin/cloud-analyzer check",
        ],
    );
}

fn verify_unit(name: &str, bin: &str, specific: &[&str]) {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
    else {
        eprintln!("SKIPPED: no systemd-analyze");
        return;
    };
    let unit = std::fs::read_to_string(repo_root().join(format!("deploy/systemd/{name}.service")))
        .expect("unit file");
    for want in [
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/cascade",
    ]
    .iter()
    .chain(specific)
    {
        assert!(unit.contains(want), "{name} lacks {want}");
    }
    // Verified as installed, with the binary where this build put it and a user that exists here.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(format!("{name}.service"));
    let local = unit
        .replace(
            &format!("/usr/bin/{bin}"),
            &binary(bin).display().to_string(),
        )
        .replace("User=cascade", "User=root")
        .replace("Group=cascade", "Group=root");
    std::fs::write(&path, local).expect("write");
    let verify = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("verify runs");
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && !said.contains(".service:"),
        "{said}"
    );
    let sec = Command::new(analyze)
        .args(["security", "--offline=true"])
        .arg(&path)
        .output()
        .expect("security runs");
    let text = String::from_utf8_lossy(&sec.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for").nth(1))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    eprintln!("systemd-analyze security {name}: exposure {score}");
    assert!(
        score <= 3.0,
        "{name}: exposure {score} (lower is better; agent 2.4, analyzer 1.6 when written)"
    );
}
