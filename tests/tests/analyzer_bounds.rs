//! The analyzer under a burst of large crops from one device (the real binary, a real Mosquitto):
//! its memory stays bounded, the flood is counted as over budget, and another device's crops still
//! raise their alert.

use std::time::{Duration, Instant};

use cascade_tests::*;
use common::{envelope, good_crop, large_crop};

mod common;

const FLOOD: usize = 150;
/// Resident memory the analyzer may grow by under the flood: its 64 MiB in-flight budget, the
/// decoded pictures of one confirm batch, and the allocator's slack.
const GROWTH_BOUND: u64 = 192 << 20;

fn rss(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| procfs::status_field(&s, field))
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn a_burst_of_large_crops_is_bounded_and_other_devices_still_alert() {
    let Some(bin) = mosquitto_binary() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let broker = Mosquitto::start(bin, dir, true).expect("mosquitto");
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let broker_toml = external_broker_toml(broker.port, &broker.certs);
    let config = analyzer_config(dir, &repo_root(), &broker_toml, api, 60.0)
        + "\n[ingest]\ndevice_crops_per_s = 0.5\n";
    let analyzer = AnalyzerProcess::start(dir, &config, api).expect("analyzer starts");
    let pid = analyzer.pid().expect("runs");
    let alerts = subscribe(broker.port, &broker.certs, "cascade/v1/alerts/#");
    eventually(Duration::from_secs(10), || alerts.is_subscribed()).expect("subscriber");
    std::thread::sleep(Duration::from_secs(1));
    let before = rss(pid, "VmRSS");

    let big = envelope(&large_crop("dev-flood", "flood-0", 1400));
    eprintln!("flood crop: {} bytes", big.len());
    let (port, certs) = (broker.port, broker.certs.clone());
    let flood = std::thread::spawn(move || {
        for chunk in 0..FLOOD / 25 {
            let payloads = (0..25)
                .map(|i| {
                    envelope(&large_crop(
                        "dev-flood",
                        &format!("flood-{chunk}-{i}"),
                        1400,
                    ))
                })
                .collect();
            publish_all(port, &certs, "cascade/v1/dev-flood/crops", payloads)
                .expect("flood published");
        }
    });
    // Meanwhile a calm device sends one crop a second.
    let started = Instant::now();
    let mut peak = before;
    let mut calm = 0;
    while !flood.is_finished() || calm < 3 {
        if started.elapsed().as_secs() >= calm {
            let c = good_crop("dev-calm", &format!("calm-{calm}"));
            publish_all(
                broker.port,
                &broker.certs,
                "cascade/v1/dev-calm/crops",
                vec![envelope(&c)],
            )
            .expect("calm crop published");
            calm += 1;
        }
        peak = peak.max(rss(pid, "VmRSS"));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the flood never finished"
        );
    }
    flood.join().expect("flood thread");
    // A burst of 10 s at 0.5 crops/s, then 0.5 a second while the flood lasted.
    let admitted_at_most = 5.0 + 0.5 * started.elapsed().as_secs_f64() + 1.0;
    let calm_alerted = || {
        alerts.all().iter().any(|p| {
            serde_json::from_slice::<serde_json::Value>(p)
                .is_ok_and(|e| e["device_id"] == "dev-calm")
        })
    };
    eventually(Duration::from_secs(60), calm_alerted).unwrap_or_else(|_| {
        panic!(
            "the calm device raised no alert; log:\n{}",
            analyzer.log_text()
        )
    });
    let over = api_metric(
        api,
        "cascade_cloud_crops_over_budget_total",
        &[("device", "dev-flood")],
    );
    eventually(Duration::from_secs(60), || {
        api_metric(api, "cascade_cloud_pending_crops", &[]) == 0.0
    })
    .expect("drained");
    std::thread::sleep(Duration::from_secs(2));
    let after = rss(pid, "VmRSS");
    let hwm = rss(pid, "VmHWM");
    eprintln!(
        "analyzer RSS: {} MiB before, peak {} MiB (high-water {} MiB), {} MiB after draining; \
         {over} of {FLOOD} flood crops over budget",
        before >> 20,
        peak >> 20,
        hwm >> 20,
        after >> 20
    );
    assert!(
        over >= FLOOD as f64 - admitted_at_most,
        "the flood was held to its budget: {over} over, at most {admitted_at_most} admitted"
    );
    assert!(
        hwm < before + GROWTH_BOUND,
        "RSS grew by {} MiB, over the {} MiB bound",
        (hwm - before) >> 20,
        GROWTH_BOUND >> 20
    );
}
