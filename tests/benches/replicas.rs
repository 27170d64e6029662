//! Capture -> alert latency with one and with three analyzer replicas on one Mosquitto (TLS,
//! `$share` group) and one PostgreSQL store, the real binary, the generated test models:
//! crops stamped with their capture time just before they are published, at a steady rate from
//! four devices; each alert event (`new` or `update`) is timed when the subscriber has it.
//!
//! `cargo bench -p cascade-tests --bench replicas` (or `cargo test -p cascade-tests --bench
//! replicas` without a release build). `CASCADE_BENCH_CROPS` (default 100) crops at
//! `CASCADE_BENCH_RATE` (default 10) crops/s.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cascade_shared::wire::{BoxPx, Compression, Crop, CropEnvelope};
use cascade_tests::postgres::Postgres;
use cascade_tests::*;
use prost::Message;

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A crop the test model confirms (a bright upright block), captured now.
fn crop(run: usize, i: u64) -> (String, Vec<u8>) {
    let mut frame = edge_agent::decode::Frame::filled(320, 240, 48);
    for y in 70..166 {
        for x in 100..136 {
            frame.y[y * 320 + x] = 235;
        }
    }
    let bbox = BoxPx {
        x1: 100.0,
        y1: 70.0,
        x2: 136.0,
        y2: 166.0,
    };
    let cfg = cascade_shared::config::edge::CropConfig::default();
    let c = edge_agent::crop::make(&frame, &bbox, &cfg).expect("crop");
    let device = format!("dev-{}", i % 4);
    let crop = Crop {
        message_id: format!("run{run}-{i}"),
        device_id: device.clone(),
        camera_id: "cam".into(),
        sequence: i,
        capture_time_us: now_us(),
        frame_width: 320,
        frame_height: 240,
        r#box: Some(bbox),
        crop_region: Some(c.region),
        score: 0.9,
        track_id: i / 40,
        jpeg: c.jpeg,
        ..Crop::default()
    };
    let body = crop.encode_body(Compression::None);
    let topic = format!("cascade/v1/{device}/crops");
    (topic, CropEnvelope::wrap(&body, now_us()).encode_to_vec())
}

fn client(port: u16, certs: &Certs) -> rumqttc::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut o = rumqttc::MqttOptions::new(format!("bench-pub-{}", free_port()), "localhost", port);
    let ca = std::fs::read(&certs.ca).expect("ca");
    let auth = (
        std::fs::read(&certs.client_cert).expect("cert"),
        std::fs::read(&certs.client_key).expect("key"),
    );
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth: Some(auth),
        },
    ));
    let (client, mut conn) = rumqttc::Client::new(o, 1024);
    std::thread::spawn(move || for _ in conn.iter() {});
    client
}

/// Payloads with their arrival time (µs since the epoch).
type Arrivals = Arc<Mutex<Vec<(i64, Vec<u8>)>>>;

/// Alert events as they arrive, each with its arrival time.
fn timed(received: Received) -> Arrivals {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut seen = 0;
        loop {
            let all = received.all();
            let t = now_us();
            if let Ok(mut s) = sink.lock() {
                s.extend(all.into_iter().skip(seen).map(|p| (t, p)));
                seen = s.len();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `pg`: the PostgreSQL store, else SQLite (one analyzer, for comparison).
fn measure(pg: Option<&Postgres>, run: usize, replicas: usize, n: u64, rate: u64) {
    let bin = mosquitto_binary().expect("mosquitto");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mosquitto = Mosquitto::start(bin, dir, true).expect("mosquitto");
    let certs = mosquitto.certs.clone();
    let url = pg.map(|pg| pg.create_db(&format!("latency{run}")).expect("db"));
    let broker = external_broker_toml(mosquitto.port, &certs);
    let _analyzers: Vec<AnalyzerProcess> = (0..replicas)
        .map(|i| {
            let rdir = dir.join(format!("r{i}"));
            std::fs::create_dir_all(&rdir).expect("dir");
            let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let store = format!("dir = \"{}\"", rdir.join("store").display());
            let mut cfg = analyzer_config(&rdir, &repo_root(), &broker, api, 120.0).replace(
                "[model]",
                &format!("[ingest]\nclient_id = \"a{i}\"\nshare_group = \"g\"\n\n[model]"),
            );
            if let Some(url) = &url {
                cfg = cfg.replace(&store, &format!("kind = \"postgres\"\nurl = \"{url}\""));
            }
            AnalyzerProcess::start(&rdir, &cfg, api).expect("analyzer")
        })
        .collect();
    let alerts = subscribe(mosquitto.port, &certs, "cascade/v1/alerts/+/+");
    eventually(Duration::from_secs(10), || alerts.is_subscribed()).expect("subscribed");
    let events = timed(alerts);
    let publisher = client(mosquitto.port, &certs);
    let start = Instant::now();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let (topic, payload) = crop(run, i);
        publisher
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .expect("publish");
    }
    let got = || events.lock().map(|e| e.len()).unwrap_or(0);
    let _ = eventually(Duration::from_secs(30), || got() as u64 >= n);
    let mut ms: Vec<f64> = events
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|(t, p)| {
            let v: serde_json::Value = serde_json::from_slice(p).ok()?;
            Some((t - v["capture_time_us"].as_i64()?) as f64 / 1e3)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let name = match url {
        Some(_) => format!("PostgreSQL, {replicas} replica(s)"),
        None => "SQLite, 1 analyzer".to_string(),
    };
    if ms.is_empty() {
        return println!("{name}: no alert events");
    }
    println!(
        "{name}: {} events of {n} crops at {rate}/s: capture -> alert p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms[ms.len() - 1]
    );
}

fn main() {
    let (n, rate) = (
        env("CASCADE_BENCH_CROPS", 100),
        env("CASCADE_BENCH_RATE", 10),
    );
    if mosquitto_binary().is_none() {
        return;
    }
    let Some(pg) = Postgres::start().expect("PostgreSQL starts") else {
        return;
    };
    measure(None, 0, 1, n, rate);
    for (run, replicas) in [1, 3].into_iter().enumerate() {
        measure(Some(&pg), run + 1, replicas, n, rate);
    }
}
