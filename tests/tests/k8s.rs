//! The Kubernetes manifests (`deploy/k8s`, issue 13 item 4): valid against Kubernetes' own schemas
//! (kubernetes-validate, offline, strict: an unknown field fails) for one named version, listed
//! by the kustomization, and true to the analyzer: probes on `/livez` and `/readyz` at the port its
//! config's `api.listen` names, a strict-parsing config mounted where the arguments say, every
//! variable the config reads set, non-root with a read-only root, the image's user id, and an
//! autoscaler on a metric the analyzer registers. The schema check skips, saying so, without
//! `.venv-k8s` (made by `scripts/setup.sh`).

use std::path::{Path, PathBuf};

use cascade_shared::config::cloud::raw;
use cascade_tests::repo_root;
use yaml_rust2::{Yaml, YamlLoader};

/// The Kubernetes version the manifests are validated against.
const K8S_VERSION: &str = "1.33.0";

fn k8s_dir() -> PathBuf {
    repo_root().join("deploy/k8s")
}

/// Every manifest file (the kustomization is kustomize's, not Kubernetes').
fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(k8s_dir())
        .expect("deploy/k8s")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).expect("readable");
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The one resource of `kind` named `name` across the manifests.
fn resource(kind: &str, name: &str) -> Yaml {
    let mut found: Vec<Yaml> = manifests()
        .iter()
        .flat_map(|p| load(p))
        .filter(|d| {
            d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name)
        })
        .collect();
    assert_eq!(found.len(), 1, "one {kind} {name}");
    found.remove(0)
}

fn str_of<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what} is a string: {y:?}"))
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas() {
    let validate = repo_root().join(".venv-k8s/bin/kubernetes-validate");
    if !validate.is_file() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must validate the manifests (scripts/setup.sh makes .venv-k8s)"
        );
        eprintln!("skipped: .venv-k8s/bin/kubernetes-validate is missing (run scripts/setup.sh)");
        return;
    }
    let out = std::process::Command::new(&validate)
        .args(["--strict", "-k", K8S_VERSION])
        .args(manifests())
        .output()
        .expect("kubernetes-validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let resources: usize = manifests().iter().map(|p| load(p).len()).sum();
    assert_eq!(
        text.matches(" passed for resource ").count(),
        resources,
        "every resource validated:\n{text}"
    );
}

#[test]
fn the_kustomization_lists_every_manifest() {
    let k = load(&k8s_dir().join("kustomization.yaml")).remove(0);
    let mut listed: Vec<String> = k["resources"]
        .as_vec()
        .expect("resources")
        .iter()
        .map(|r| str_of(r, "resource").to_string())
        .collect();
    listed.sort();
    let files: Vec<String> = manifests()
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(String::from))
        .collect();
    assert_eq!(listed, files);
}

/// The analyzer's config as the ConfigMap holds it, parsed strictly.
fn analyzer_config() -> raw::CloudConfig {
    let cm = resource("ConfigMap", "cloud-analyzer");
    let text = str_of(&cm["data"]["cloud-analyzer.toml"], "the config");
    toml::from_str(text).unwrap_or_else(|e| panic!("the ConfigMap's config: {e}"))
}

#[test]
fn the_analyzer_deployment_matches_its_config_and_image() {
    let cfg = analyzer_config();
    let d = resource("Deployment", "cloud-analyzer");
    assert_eq!(d["spec"]["replicas"].as_i64(), Some(2), "two replicas");
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];

    // Probes on the API's port (by name), on the right paths.
    let ports = c["ports"].as_vec().expect("ports");
    let http = ports
        .iter()
        .find(|p| p["name"].as_str() == Some("http"))
        .expect("a port named http");
    assert_eq!(
        http["containerPort"].as_i64(),
        Some(i64::from(cfg.api.listen.port())),
        "the container port is api.listen's"
    );
    assert!(
        !cfg.api.listen.ip().is_loopback(),
        "api.listen must be reachable by the kubelet's probes"
    );
    for (probe, path) in [
        ("startupProbe", "/livez"),
        ("livenessProbe", "/livez"),
        ("readinessProbe", "/readyz"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(get["port"].as_str(), Some("http"), "{probe}");
    }

    // The config is mounted where the arguments look for it.
    let args: Vec<&str> = c["args"]
        .as_vec()
        .expect("args")
        .iter()
        .map(|a| str_of(a, "arg"))
        .collect();
    let config_path = args[args
        .iter()
        .position(|a| *a == "--config")
        .expect("--config")
        + 1];
    let mounts = c["volumeMounts"].as_vec().expect("mounts");
    let mount_of = |volume: &str| -> String {
        let m = mounts
            .iter()
            .find(|m| m["name"].as_str() == Some(volume))
            .unwrap_or_else(|| panic!("{volume} mounted"));
        str_of(&m["mountPath"], "mountPath").to_string()
    };
    assert_eq!(
        config_path,
        format!("{}/cloud-analyzer.toml", mount_of("config"))
    );
    // Certificates come from the Secret's mount.
    let tls = mount_of("tls");
    let volumes = pod["volumes"].as_vec().expect("volumes");
    let tls_volume = volumes
        .iter()
        .find(|v| v["name"].as_str() == Some("tls"))
        .expect("tls volume");
    assert!(tls_volume["secret"]["secretName"].as_str().is_some());
    let cm = resource("ConfigMap", "cloud-analyzer");
    let text = str_of(&cm["data"]["cloud-analyzer.toml"], "the config");
    for key in ["ca_file", "client_cert_file", "client_key_file"] {
        let at = text.find(&format!("{key} = \"")).expect(key) + key.len() + 4;
        assert!(
            text[at..].starts_with(&format!("{tls}/")),
            "{key} under {tls}"
        );
    }

    // Every variable the config reads is set in the container.
    let env: Vec<&str> = c["env"]
        .as_vec()
        .expect("env")
        .iter()
        .map(|e| str_of(&e["name"], "env name"))
        .collect();
    let wanted = [
        cfg.ingest
            .client_id_env
            .clone()
            .expect("client_id_env: replicas differ"),
        cfg.store
            .url_env
            .clone()
            .expect("url_env: the password stays in a Secret"),
    ];
    for var in &wanted {
        assert!(env.contains(&var.as_str()), "{var} set: {env:?}");
    }
    assert!(cfg.ingest.share_group.is_some(), "replicas share the crops");

    // Resources, and the CPU limit covers the model's threads.
    for k in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(!c["resources"][k][r].is_badvalue(), "resources.{k}.{r}");
        }
    }
    let cpus: u32 = str_of(&c["resources"]["limits"]["cpu"], "cpu")
        .parse()
        .expect("whole CPUs");
    assert!(
        cfg.model.threads <= cpus,
        "model.threads within the CPU limit"
    );

    // Non-root as the image's own user, read-only root, nothing to escalate.
    let sc = &pod["securityContext"];
    assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true));
    let dockerfile = std::fs::read_to_string(repo_root().join("deploy/Dockerfile.cloud-analyzer"))
        .expect("read");
    let uid = sc["runAsUser"].as_i64().expect("runAsUser");
    assert!(
        dockerfile.contains(&format!("USER {uid}:")),
        "runAsUser {uid} is the image's USER"
    );
    let csc = &c["securityContext"];
    assert_eq!(csc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(csc["allowPrivilegeEscalation"].as_bool(), Some(false));
}

#[test]
fn the_budget_and_the_autoscaler_aim_at_the_analyzer() {
    let d = resource("Deployment", "cloud-analyzer");
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    let pdb = resource("PodDisruptionBudget", "cloud-analyzer");
    for (k, v) in pdb["spec"]["selector"]["matchLabels"]
        .as_hash()
        .expect("selector")
    {
        assert_eq!(&labels[str_of(k, "label")], v, "the PDB selects the pods");
    }
    let replicas = d["spec"]["replicas"].as_i64().expect("replicas");
    assert!(
        pdb["spec"]["minAvailable"]
            .as_i64()
            .is_some_and(|m| m < replicas)
    );

    let hpa = resource("HorizontalPodAutoscaler", "cloud-analyzer");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["kind"].as_str(),
        Some("Deployment")
    );
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"].as_str(),
        Some("cloud-analyzer")
    );
    assert!(hpa["spec"]["minReplicas"].as_i64() >= Some(replicas));
    // The metric is one the analyzer registers (its live /metrics: tests/tests/dashboards.rs).
    let metric = str_of(
        &hpa["spec"]["metrics"][0]["pods"]["metric"]["name"],
        "metric",
    );
    let name = metric
        .strip_prefix("cascade_cloud_")
        .expect("an analyzer metric");
    let telemetry =
        std::fs::read_to_string(repo_root().join("cloud-analyzer/src/telemetry.rs")).expect("read");
    assert!(
        telemetry.contains(&format!("\"{name}\"")),
        "{metric} is registered in cloud-analyzer/src/telemetry.rs"
    );
}

#[test]
fn mosquitto_runs_the_repos_config_and_acl() {
    let cm = resource("ConfigMap", "mosquitto");
    for (key, file) in [
        ("mosquitto.conf", "deploy/mosquitto.conf"),
        ("cascade.acl", "deploy/mosquitto.acl"),
    ] {
        let want = std::fs::read_to_string(repo_root().join(file)).expect("read");
        assert_eq!(
            cm["data"][key].as_str(),
            Some(want.as_str()),
            "{key} is {file} verbatim"
        );
    }
    let conf = std::fs::read_to_string(repo_root().join("deploy/mosquitto.conf")).expect("read");
    let s = resource("StatefulSet", "mosquitto");
    let c = &s["spec"]["template"]["spec"]["containers"][0];
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_vec()
        .expect("mounts")
        .iter()
        .map(|m| str_of(&m["mountPath"], "mountPath"))
        .collect();
    for line in ["acl_file ", "persistence_location ", "cafile "] {
        let path = conf
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .unwrap_or_else(|| panic!("{line}in mosquitto.conf"))
            .trim();
        assert!(
            mounts
                .iter()
                .any(|m| path.starts_with(m.trim_end_matches('/'))),
            "{path} is mounted: {mounts:?}"
        );
    }
}
