//! The edge agent (the real binary) with its buffer on a real, small tmpfs that fills up while the
//! broker is away (mounted here when run as root; skipped, saying so, otherwise): it keeps
//! running, counts what it refused, degrades instead of wedging, delivers what it holds once the
//! broker is back, and resumes normal buffering within seconds of space returning.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cascade_tests::tmpfs::{Tmpfs, fill};
use cascade_tests::*;

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
fn the_agent_survives_a_full_disk_and_resumes_when_space_returns() {
    let Some(bin) = mosquitto_binary() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let Some(fs) = Tmpfs::mount(&dir.join("mnt"), "16m") else {
        return;
    };
    let mut broker = Mosquitto::start(bin, dir, true).expect("mosquitto");
    broker.kill(); // away while the disk fills
    let o = EdgeOptions {
        source: ", loop = true".into(),
        tracker: "reupload_interval_s = 0.05\nbetter_score = 0.0".into(),
        uplink: format!("{OBSERVED_ONLY}\nreconnect_max_s = 1.0"),
        ..EdgeOptions::walker(&repo_root())
    };
    let config = write_edge_config(dir, broker.port, &broker.certs, &o);
    let text = std::fs::read_to_string(&config).expect("config");
    let buffer_dir = fs.path.join("buffer");
    let text = text.replace(
        &format!("{:?}", dir.join("edge-buffer").display().to_string()),
        &format!("{:?}", buffer_dir.display().to_string()),
    );
    std::fs::write(&config, text).expect("config");
    let edge = EdgeProcess::start(&config, &dir.join("edge.log")).expect("edge starts");
    eventually(Duration::from_secs(20), || {
        buffer_dir.join("reserve").exists()
    })
    .expect("the reserve is written");
    fill(
        &fs.path.join("filler"),
        free_bytes(&fs.path).saturating_sub(512 << 10),
    );

    let degraded = |v: f64| edge.metric("buffer_degraded", &[]) == v;
    eventually(Duration::from_secs(60), || degraded(1.0))
        .unwrap_or_else(|_| panic!("never degraded; log:\n{}", edge.log_text()));
    let refused = || {
        edge.metric("crops_lost_total", &[("reason", "disk_full")])
            + edge.metric("crops_evicted_total", &[("reason", "disk_full")])
    };
    eventually(Duration::from_secs(30), || refused() >= 1.0).expect("refusals counted");
    assert!(
        edge.pid().is_some() && edge.readyz().0 != 0,
        "still running"
    );
    let held = edge.metric("buffer_records", &[]);

    // The broker returns: what the buffer holds is delivered, on a full disk.
    broker.restart().expect("mosquitto restarts");
    eventually(Duration::from_secs(30), || {
        edge.metric("crops_uploaded_total", &[]) >= held.min(5.0)
    })
    .unwrap_or_else(|_| panic!("nothing delivered; log:\n{}", edge.log_text()));

    // Space returns: normal buffering within seconds.
    std::fs::remove_file(fs.path.join("filler")).expect("free space");
    let freed = Instant::now();
    eventually(Duration::from_secs(15), || degraded(0.0))
        .unwrap_or_else(|_| panic!("still degraded; log:\n{}", edge.log_text()));
    let log = edge.log_text();
    eprintln!(
        "held {held} crops when full; {} refused or evicted for space; back to normal {:.1} s \
         after space returned; disk-full episodes {}",
        refused(),
        freed.elapsed().as_secs_f64(),
        edge.metric("buffer_disk_full_total", &[])
    );
    assert_eq!(
        log.matches("the buffer's disk is full").count(),
        1,
        "logged once:\n{log}"
    );
}
