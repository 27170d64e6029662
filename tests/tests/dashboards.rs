//! The Grafana dashboard and the Prometheus alerting rules (issue 13 item 5): the dashboard is
//! well-formed (a datasource variable, every panel a query on it); `promtool check rules` and
//! `promtool test rules` pass (skipped, saying so, without promtool: Debian's `prometheus`); and
//! every metric the dashboard, the rules and the Kubernetes autoscaler name is one the binaries
//! export: found on the real `/metrics` of a running agent and analyzer with crops flowing, or,
//! for a labelled family with no series yet (evictions, rejections, thermal zones), registered
//! under that name in the sources.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use cascade_tests::*;
use serde_json::Value;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read("deploy/grafana/cascade.json")).expect("the dashboard is JSON")
}

/// The dashboard's panels (rows' nested panels included) other than rows.
fn panels(d: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten().cloned());
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Every PromQL expression: the dashboard's targets and the rules' `expr:` lines.
fn expressions() -> Vec<String> {
    let mut exprs: Vec<String> = panels(&dashboard())
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(String::from))
        .collect();
    exprs.extend(
        read("deploy/prometheus/alerts.yml")
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expr:"))
            .map(|e| e.trim().to_string()),
    );
    exprs
}

/// Metric names in PromQL: identifiers starting `cascade_`, and `up` (Prometheus's own).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let word = &tail[..end];
        let preceded_by_ident = rest[..start]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '$');
        if !preceded_by_ident && (word.starts_with("cascade_") || word == "up") {
            names.insert(word.to_string());
        }
        rest = &tail[end..];
    }
    names
}

#[test]
fn metric_names_are_found_in_promql() {
    let got = metric_names(
        "sum by (le) (rate(cascade_cloud_batch_size_bucket{job=\"x\"}[$__rate_interval])) / up",
    );
    let want: BTreeSet<String> = ["cascade_cloud_batch_size_bucket", "up"]
        .map(String::from)
        .into();
    assert_eq!(got, want);
}

#[test]
fn the_dashboard_is_well_formed() {
    let d = dashboard();
    let vars = d["templating"]["list"].as_array().expect("variables");
    assert!(
        vars.iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus datasource variable"
    );
    let ps = panels(&d);
    let mut ids = BTreeSet::new();
    for p in &ps {
        let title = p["title"].as_str().expect("a title");
        assert!(ids.insert(p["id"].as_i64().expect("an id")), "unique ids");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has a query");
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(!metric_names(expr).is_empty(), "{title}: {expr:?}");
        }
        for k in ["x", "y", "w", "h"] {
            assert!(p["gridPos"][k].is_u64(), "{title} gridPos.{k}");
        }
    }
    // What the issue asks the dashboard to show.
    let titles: Vec<String> = ps
        .iter()
        .filter_map(|p| p["title"].as_str().map(str::to_lowercase))
        .collect();
    for want in [
        "cameras up",
        "frames per second",
        "motion",
        "detector latency",
        "detector input size",
        "buffer bytes",
        "oldest buffered crop",
        "evictions",
        "uplink",
        "power mode",
        "temperature",
        "crops in",
        "confirm rate",
        "batch size",
        "latency",
        "alerts",
        "dead letters",
    ] {
        assert!(
            titles.iter().any(|t| t == want),
            "a panel {want:?}: {titles:?}"
        );
    }
}

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    let Some(promtool) = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
    else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must check the rules (scripts/setup.sh installs prometheus)"
        );
        eprintln!("skipped: promtool is not installed (apt-get install prometheus)");
        return;
    };
    let dir = repo_root().join("deploy/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let out = std::process::Command::new(promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Metric family names on a `/metrics` page (histograms' series by their family name too).
fn families(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        out.insert(name.to_string());
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                out.insert(base.to_string());
            }
        }
    }
    out
}

/// Whether `name` (as Prometheus sees it) is registered in the sources of the binary its prefix
/// names: the unprefixed name as a string literal.
fn registered_in_sources(name: &str) -> bool {
    let base = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    let (dir, short) = if let Some(s) = base.strip_prefix("cascade_edge_") {
        ("edge-agent/src", s)
    } else if let Some(s) = base.strip_prefix("cascade_cloud_") {
        ("cloud-analyzer/src", s)
    } else {
        return false;
    };
    let needle = format!("\"{short}\"");
    let mut stack = vec![repo_root().join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && std::fs::read_to_string(&p).is_ok_and(|t| t.contains(&needle))
            {
                return true;
            }
        }
    }
    false
}

#[test]
fn every_metric_named_is_one_the_binaries_export() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let repo = repo_root();
    let certs = make_certs(dir).expect("certs");
    let port = free_port();
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let cfg = analyzer_config(dir, &repo, &embedded_broker_toml(port, &certs), api, 30.0);
    let analyzer = AnalyzerProcess::start(dir, &cfg, api).expect("analyzer starts");
    let o = EdgeOptions {
        realtime: true,
        source: ", loop = true".into(),
        uplink: String::new(),
        ..EdgeOptions::walker(&repo)
    };
    let edge = EdgeProcess::start(
        &write_edge_config(dir, port, &certs, &o),
        &dir.join("edge.log"),
    )
    .expect("edge starts");
    // Crops flowing and an alert out: the histograms and most labelled families have series.
    eventually(Duration::from_secs(60), || {
        api_metric(api, "cascade_cloud_alerts_published_total", &[]) >= 1.0
            && edge.metric("crops_uploaded_total", &[]) >= 1.0
    })
    .unwrap_or_else(|_| {
        panic!(
            "no crops and alert; edge log:\n{}\nanalyzer log:\n{}",
            edge.log_text(),
            analyzer.log_text()
        )
    });
    let scraped: BTreeSet<String> = families(&edge.metrics())
        .into_iter()
        .chain(families(
            &http_get(api, "/metrics")
                .map(|(_, b)| String::from_utf8_lossy(&b).to_string())
                .unwrap_or_default(),
        ))
        .collect();

    let mut named: BTreeSet<String> = expressions().iter().flat_map(|e| metric_names(e)).collect();
    // The Kubernetes autoscaler's metric.
    let hpa = read("deploy/k8s/analyzer-hpa.yaml");
    named.extend(
        hpa.lines()
            .skip_while(|l| !l.trim_start().starts_with("metric:"))
            .find_map(|l| l.trim().strip_prefix("name:"))
            .map(|n| n.trim().to_string()),
    );
    assert!(named.len() > 20, "metrics named: {named:?}");
    let mut from_sources = Vec::new();
    for name in &named {
        if name == "up" || scraped.contains(name) {
            continue;
        }
        assert!(
            registered_in_sources(name),
            "{name} is neither on the binaries' /metrics nor registered in their sources"
        );
        from_sources.push(name.clone());
    }
    eprintln!(
        "{} metrics named; {} seen on /metrics; registered in the sources but without series in \
         this run: {from_sources:?}",
        named.len(),
        named.len() - from_sources.len()
    );
}
