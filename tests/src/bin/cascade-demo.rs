//! The main job on embedded defaults: the cloud analyzer with its embedded broker (TLS, generated
//! certificates), the edge agent on a clip, an independent MQTT subscriber for alerts, and a summary.
//! Uses the real models and clip when present (models/downloads/, ../shared/samples/), else the
//! generated test models and clip, and says which.
//!
//! Usage: cascade-demo [--clip FILE] [--realtime | --skim] [--edge-manifest FILE] [--test-models]
//!
//! `--skim` plays the clip as fast as possible without waiting for a busy detector (the file
//! source's `skim = true`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cascade_tests::{
    AnalyzerProcess, Certs, Received, eventually, free_port, http_get, make_certs, run_edge,
    subscribe, visits,
};

struct Setup {
    clip: PathBuf,
    edge_manifest: PathBuf,
    cloud_manifest: PathBuf,
    realtime: bool,
    /// As fast as possible, the detector never waited for.
    skim: bool,
    what: String,
}

fn setup(repo: &Path) -> Setup {
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--clip")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let real_clip = repo.join("../shared/samples/one-by-one-person-detection.mp4");
    // `--test-models`: the generated models and clip even where the real ones are (tests).
    let real = !args.iter().any(|a| a == "--test-models")
        && repo
            .join("models/downloads/yolov8n_int8static_qdq_640.onnx")
            .is_file()
        && repo
            .join("models/downloads/yolov8n_fp32_dequant.onnx")
            .is_file();
    let (clip, clip_what) = match given {
        Some(c) => (c, "the given clip".to_string()),
        None if real && real_clip.is_file() => (
            real_clip,
            "the real sample clip (Intel sample-videos, CC BY 4.0)".into(),
        ),
        None => (
            repo.join("tests/fixtures/walker.mp4"),
            "the GENERATED 8 s test clip".into(),
        ),
    };
    let (edge, cloud, models_what) = if real {
        (
            repo.join("models/yolov8n-int8-static.toml"),
            repo.join("models/yolov8n-fp32.toml"),
            "real YOLOv8n static INT8 (edge) and FP32 (cloud)",
        )
    } else {
        (
            repo.join("models/blob-yolov8-int8.toml"),
            repo.join("models/blob-yolov8-fp32.toml"),
            "GENERATED test detectors (scripts/fetch-models.sh fetches the real ones)",
        )
    };
    let realtime = args.iter().any(|a| a == "--realtime") || clip.ends_with("walker.mp4");
    let skim = !realtime && args.iter().any(|a| a == "--skim");
    // Another edge model (e.g. models/yolov8n-int8-tflite.toml on LiteRT).
    let (edge, models_what) = match args.iter().position(|a| a == "--edge-manifest") {
        Some(i) => match args.get(i + 1) {
            Some(m) => (PathBuf::from(m), format!("{models_what}, edge model {m}")),
            None => (edge, models_what.to_string()),
        },
        None => (edge, models_what.to_string()),
    };
    Setup {
        clip,
        edge_manifest: edge,
        cloud_manifest: cloud,
        realtime,
        skim,
        what: format!("{clip_what}, {models_what}"),
    }
}

/// The analyzer's starter config on its embedded defaults, with TLS and a free port.
fn analyzer_toml(
    repo: &Path,
    s: &Setup,
    dir: &Path,
    certs: &Certs,
    port: u16,
    api: SocketAddr,
) -> anyhow::Result<String> {
    let starter = std::fs::read_to_string(repo.join("deploy/cloud-analyzer.toml"))?;
    let broker = format!(
        "broker = {}",
        cascade_tests::embedded_broker_toml(port, certs)
    );
    Ok(starter
        .replacen(
            r#"broker = { mode = "embedded", listen = "127.0.0.1:1883" }"#,
            &broker,
            1,
        )
        .replace(
            "\"../models/blob-yolov8-fp32.toml\"",
            &quote(&s.cloud_manifest),
        )
        .replace("\"/var/lib/cascade-cloud\"", &quote(&dir.join("store")))
        .replace("cooldown_s = 30.0", "cooldown_s = 8.0")
        .replace("127.0.0.1:8080", &api.to_string()))
}

/// The edge agent's starter config, pointed at the clip, the broker and the certificates.
fn edge_toml(
    repo: &Path,
    s: &Setup,
    dir: &Path,
    certs: &Certs,
    port: u16,
) -> anyhow::Result<String> {
    let starter = std::fs::read_to_string(repo.join("deploy/edge-agent.toml"))?;
    Ok(starter
        .replace(
            "\"../tests/fixtures/walker.mp4\", realtime = false",
            &format!(
                "{}, realtime = {}, skim = {}",
                quote(&s.clip),
                s.realtime,
                s.skim
            ),
        )
        .replace(
            "\"../models/blob-yolov8-int8.toml\"",
            &quote(&s.edge_manifest),
        )
        .replace(
            "\"../hardware-profiles/",
            &format!("\"{}/hardware-profiles/", repo.display()),
        )
        .replace("\"/var/lib/cascade/buffer\"", &quote(&dir.join("buffer")))
        .replace("port = 8883", &format!("port = {port}"))
        .replace("\"/etc/cascade/ca.pem\"", &quote(&certs.ca))
        .replace("\"/etc/cascade/client.pem\"", &quote(&certs.client_cert))
        .replace("\"/etc/cascade/client.key\"", &quote(&certs.client_key))
        .replace("127.0.0.1:9464", "127.0.0.1:0"))
}

fn quote(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

fn main() -> anyhow::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()?;
    let s = setup(&repo);
    println!("cascade demo: {}", s.what);
    println!(
        "clip: {} ({})\n",
        s.clip.display(),
        if s.realtime {
            "real time"
        } else if s.skim {
            "as fast as possible, skimmed: the detector is never waited for"
        } else {
            "as fast as possible"
        }
    );
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let certs = make_certs(dir)?;
    let (port, api) = (free_port(), SocketAddr::from(([127, 0, 0, 1], free_port())));
    let mut analyzer =
        AnalyzerProcess::start(dir, &analyzer_toml(&repo, &s, dir, &certs, port, api)?, api)?;
    let alerts = subscribe(port, &certs, "cascade/v1/alerts/#");
    eventually(Duration::from_secs(10), || alerts.is_subscribed())
        .map_err(|_| anyhow::anyhow!("subscriber did not connect"))?;

    let edge_path = dir.join("edge.toml");
    std::fs::write(&edge_path, edge_toml(&repo, &s, dir, &certs, port)?)?;
    let started = Instant::now();
    let log = run_edge(&edge_path)?;
    let edge_secs = started.elapsed().as_secs_f64();
    let summary = log
        .lines()
        .find(|l| l.contains(" summary"))
        .unwrap_or("")
        .to_string();
    let uploaded = field(&summary, "crops_uploaded").unwrap_or(0.0);
    eventually(Duration::from_secs(120), || {
        metric(api, "cascade_cloud_crops_decided_total") >= uploaded
    })
    .map_err(|_| {
        anyhow::anyhow!(
            "the analyzer did not decide every crop; log:\n{}",
            analyzer.log_text()
        )
    })?;
    // Let alerts end (cooldown 8 s) so the subscriber sees whole stories.
    std::thread::sleep(Duration::from_secs(10));
    let (mut capture_lat, mut upload_lat) = print_alerts(&alerts);
    print_visits(&repo, &s.clip, &alerts, &log, s.realtime);
    let (_, devices) = http_get(api, "/api/devices")?;
    println!(
        "\nGET /api/devices -> {}",
        String::from_utf8_lossy(&devices)
    );
    print_summary(&summary, edge_secs, api);
    if s.realtime {
        println!("  capture -> alert       {}", percentiles(&mut capture_lat));
    } else {
        println!(
            "  capture -> alert       n/a (clip played faster than real time; --realtime measures it)"
        );
    }
    println!("  edge upload -> alert   {}", percentiles(&mut upload_lat));
    analyzer.stop();
    Ok(())
}

/// Prints every alert event and state; returns (capture -> decision, upload -> decision) latencies.
fn print_alerts(alerts: &Received) -> (Vec<f64>, Vec<f64>) {
    println!("alerts received by an independent MQTT subscriber (cascade/v1/alerts/#):");
    let (mut capture_lat, mut upload_lat) = (Vec::new(), Vec::new());
    for (topic, payload) in alerts.messages() {
        let Ok(e) = serde_json::from_slice::<serde_json::Value>(&payload) else {
            println!("  state  {topic} = {}", String::from_utf8_lossy(&payload));
            continue;
        };
        let t = |k: &str| e[k].as_f64();
        if let (true, Some(c), Some(u), Some(d)) = (
            e["type"] != "end",
            t("capture_time_us"),
            t("edge_upload_time_us"),
            t("cloud_decision_time_us"),
        ) {
            capture_lat.push((d - c) / 1e6);
            upload_lat.push((d - u) / 1e6);
        }
        // A UUIDv7 starts with its time (the same for alerts of one minute): show its random end.
        let id = e["alert_id"].as_str().unwrap_or("?");
        let short = &id[id.len().saturating_sub(8)..];
        println!(
            "  {:<6} alert {} {}/{} track {} edge {:.2} cloud {:.2} crops {} {}",
            e["type"].as_str().unwrap_or("?"),
            short,
            e["device_id"].as_str().unwrap_or("?"),
            e["camera_id"].as_str().unwrap_or("?"),
            e["track_id"],
            t("edge_score").unwrap_or(0.0),
            t("cloud_score").unwrap_or(0.0),
            e["crops"],
            e["crop_url"].as_str().unwrap_or("")
        );
    }
    (capture_lat, upload_lat)
}

/// Which of the clip's visits were alerted; their latencies when played in real time.
fn print_visits(repo: &Path, clip: &Path, alerts: &Received, edge_log: &str, timed: bool) {
    let Some(path) = visits::for_clip(&repo.join("tests/fixtures"), clip) else {
        return;
    };
    let zero = edge_log
        .lines()
        .find_map(|l| field(l, "stream_zero_utc_us"));
    let (visits, Some(zero)) = (visits::read(&path), zero) else {
        return println!("\nvisits: the edge log gives no stream time 0");
    };
    let visits = match visits {
        Ok(v) => v,
        Err(e) => return println!("\nvisits: {e}"),
    };
    let events: Vec<serde_json::Value> = alerts
        .messages()
        .iter()
        .filter_map(|(_, p)| serde_json::from_slice(p).ok())
        .collect();
    let report = visits::report(&visits, &events, zero as i64);
    println!("\nvisits ({}):", path.display());
    // Played faster than real time, stream seconds and wall seconds differ: no latencies.
    let secs = |v: Option<f64>| match v {
        Some(s) if timed => format!("{s:.1} s"),
        Some(_) => "n/a".to_string(),
        None => "-".to_string(),
    };
    for r in &report {
        println!(
            "  {:>6.1}-{:<6.1} s  alerts {}  in view -> alert {:>7}  left -> alert end {:>7}",
            r.visit.start_s,
            r.visit.end_s,
            r.alerts,
            secs(r.to_alert_s),
            secs(r.end_lag_s)
        );
    }
    let mut to_alert: Vec<f64> = report.iter().filter_map(|r| r.to_alert_s).collect();
    let mut lag: Vec<f64> = report.iter().filter_map(|r| r.end_lag_s).collect();
    let alerts: usize = report.iter().map(|r| r.alerts).sum();
    println!(
        "  visits alerted {} of {}, alerts per visit {:.2}",
        to_alert.len(),
        report.len(),
        alerts as f64 / report.len().max(1) as f64
    );
    if timed {
        println!("  in view -> alert       {}", percentiles(&mut to_alert));
        println!("  left -> alert end      {}", percentiles(&mut lag));
    }
}

fn print_summary(summary: &str, edge_secs: f64, api: SocketAddr) {
    let f = |n: &str| field(summary, n).unwrap_or(0.0);
    let pct = |a: f64, b: f64| 100.0 * a / b.max(1.0);
    println!("\nsummary");
    println!("  edge run               {edge_secs:.1} s");
    println!("  frames decoded         {:.0}", f("frames"));
    println!(
        "  motion frames          {:.0} ({:.1} %)",
        f("motion_frames"),
        pct(f("motion_frames"), f("frames"))
    );
    println!(
        "  detector runs          {:.0} ({:.1} % of frames)",
        f("detector_runs"),
        pct(f("detector_runs"), f("frames"))
    );
    println!("  crops uploaded         {:.0}", f("crops_uploaded"));
    println!(
        "  bytes uploaded         {:.0} B of {:.0} B of video ({:.2} %)",
        f("uploaded_bytes"),
        f("input_bytes"),
        pct(f("uploaded_bytes"), f("input_bytes"))
    );
    let confirmed = metric(
        api,
        "cascade_cloud_crops_decided_total{verdict=\"confirmed\"}",
    );
    println!(
        "  crops confirmed        {confirmed:.0} of {:.0}",
        metric(api, "cascade_cloud_crops_decided_total")
    );
    println!(
        "  alert events           {:.0}",
        metric(api, "cascade_cloud_alerts_published_total")
    );
    println!(
        "  edge peak RSS          {:.1} MiB",
        f("peak_rss_bytes") / 1_048_576.0
    );
    println!(
        "  edge CPU               {:.1} s ({:.1} s per minute of run, i.e. of video with --realtime; detector size changes {:.0})",
        f("cpu_seconds"),
        f("cpu_seconds") * 60.0 / edge_secs.max(1e-9),
        f("input_side_changes")
    );
}

fn percentiles(v: &mut [f64]) -> String {
    if v.is_empty() {
        return "no alerts".into();
    }
    v.sort_by(f64::total_cmp);
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] * 1e3;
    format!(
        "p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms ({} events)",
        p(0.5),
        p(0.9),
        p(1.0),
        v.len()
    )
}

fn field(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}="))?.parse().ok())
}

fn metric(api: SocketAddr, name: &str) -> f64 {
    let Ok((_, body)) = http_get(api, "/metrics") else {
        return 0.0;
    };
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| {
            l.starts_with(name) && (name.contains('{') || l[name.len()..].starts_with([' ', '{']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}
