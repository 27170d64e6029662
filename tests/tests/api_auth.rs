//! The analyzer's HTTP API with bearer tokens, through the real binary: every API route refuses a
//! missing or wrong token, a read-only token cannot erase a crop, an admin token can; `/livez` and
//! `/readyz` stay open; `/metrics` is open or not as configured; `cloud-analyzer token` makes tokens
//! the config accepts; an API on a non-loopback address without tokens is refused by `check`.

use std::net::SocketAddr;

use cascade_tests::{
    AnalyzerProcess, analyzer_config, binary, embedded_broker_toml, free_port, http_request,
    make_certs, repo_root,
};

/// A token from `cloud-analyzer token`: (the token, its config lines).
fn token(name: &str, scope: &str) -> (String, String) {
    let out = std::process::Command::new(binary("cloud-analyzer"))
        .args(["token", "--name", name, "--scope", scope])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = stderr
        .split_once("add to the analyzer's config:\n")
        .map(|(_, l)| l.to_string())
        .expect("config lines");
    (token, lines)
}

fn status(api: SocketAddr, method: &str, path: &str, token: Option<&str>) -> u16 {
    http_request(api, method, path, token).expect("answered").0
}

#[test]
fn every_api_route_needs_a_token_of_the_right_scope() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let certs = make_certs(dir).expect("certs");
    let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (reader, read_lines) = token("home-assistant", "read");
    let (admin, admin_lines) = token("operator", "admin");
    let config = analyzer_config(
        dir,
        &repo_root(),
        &embedded_broker_toml(free_port(), &certs),
        api,
        8.0,
    )
    .replace("[api]\n", "")
    .replace(&format!("listen = \"{api}\"\n"), "")
        + &format!(
            "[api]\nlisten = \"{api}\"\nmetrics_public = false\n\n{read_lines}\n{admin_lines}"
        );
    let _analyzer = AnalyzerProcess::start(dir, &config, api).expect("analyzer starts");

    let routes = [
        "/api/alerts",
        "/api/alerts/none",
        "/api/crops/none.jpg",
        "/api/devices",
        "/metrics",
    ];
    for path in routes {
        assert_eq!(
            status(api, "GET", path, None),
            401,
            "{path} without a token"
        );
        assert_eq!(
            status(api, "GET", path, Some("wrong")),
            401,
            "{path} with a wrong token"
        );
        let with_reader = status(api, "GET", path, Some(&reader));
        assert!(
            matches!(with_reader, 200 | 404),
            "{path} with the read token: {with_reader}"
        );
        let with_admin = status(api, "GET", path, Some(&admin));
        assert!(
            matches!(with_admin, 200 | 404),
            "{path} with the admin token: {with_admin}"
        );
    }
    let erase = "/api/crops/none.jpg";
    assert_eq!(status(api, "DELETE", erase, None), 401);
    assert_eq!(
        status(api, "DELETE", erase, Some(&reader)),
        403,
        "read-only cannot erase"
    );
    assert_eq!(
        status(api, "DELETE", erase, Some(&admin)),
        404,
        "admin may; there is none"
    );
    for open in ["/livez", "/readyz"] {
        assert_eq!(status(api, "GET", open, None), 200, "{open} stays open");
    }
}

#[test]
fn an_api_beyond_loopback_without_tokens_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let certs = make_certs(dir).expect("certs");
    let api = SocketAddr::from(([0, 0, 0, 0], free_port()));
    let config = analyzer_config(
        dir,
        &repo_root(),
        &embedded_broker_toml(free_port(), &certs),
        api,
        8.0,
    );
    let path = dir.join("analyzer.toml");
    std::fs::write(&path, config).expect("write");
    let out = std::process::Command::new(binary("cloud-analyzer"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("api.listen") && err.contains("[[api.token]]"),
        "{err}"
    );
}
