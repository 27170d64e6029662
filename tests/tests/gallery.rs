//! The alert gallery in a real browser: the analyzer (with an API token) and the edge agent on the
//! walker clip make real alerts; headless Chromium (Debian's `chromium`) opens `/gallery#token=...`
//! over the DevTools protocol and must list exactly the API's alerts, newest first, with their
//! crops; a new alert must appear without a reload (server-sent events); a click shows the alert's
//! crops; the device filter narrows the list. A screenshot is saved in the test's folder and copied
//! to `<target>/gallery-screenshot.png`.
//!
//! Without Chromium the test says so on stderr and skips; under `CI=true` it fails instead.

use std::net::SocketAddr;
use std::time::Duration;

use cascade_tests::cdp::{Browser, chromium_binary};
use cascade_tests::*;
use common::{envelope, good_crop};
use serde_json::Value;

mod common;

/// A read token from `cloud-analyzer token`: (the token, its config lines).
fn read_token() -> (String, String) {
    let out = std::process::Command::new(binary("cloud-analyzer"))
        .args(["token", "--name", "gallery", "--scope", "read"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = stderr
        .split_once("add to the analyzer's config:\n")
        .map(|(_, l)| l.to_string())
        .expect("config lines");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        lines,
    )
}

fn api_get(api: SocketAddr, path: &str, token: &str) -> Value {
    let (status, body) = http_request(api, "GET", path, Some(token)).expect("answered");
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

/// The API's alert ids, newest first.
fn api_alert_ids(api: SocketAddr, token: &str) -> Vec<String> {
    api_get(api, "/api/alerts?limit=200", token)["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["alert_id"].as_str().map(str::to_string))
        .collect()
}

/// What the page shows: the cards' alert ids in order, their devices, how many of their crops
/// have loaded, whether it follows the stream, which cards arrived live, the detail's crops.
const PAGE_STATE: &str = r#"(() => {
  const cards = [...document.querySelectorAll('#alerts [data-alert-id]')];
  const loaded = (imgs) => imgs.filter((i) => i.complete && i.naturalWidth > 0).length;
  return {
    ids: cards.map((c) => c.dataset.alertId),
    devices: cards.map((c) => c.dataset.device),
    loaded: loaded(cards.map((c) => c.querySelector('img'))),
    live: document.getElementById('live').dataset.state,
    arrived: cards.filter((c) => c.dataset.live).map((c) => c.dataset.alertId),
    detail: loaded([...document.querySelectorAll('#crops img')]),
    error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
  };
})()"#;

fn wait_for(browser: &mut Browser, what: &str, mut ok: impl FnMut(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let waited = eventually(Duration::from_secs(30), || {
        // Before the page's document is in (a loaded machine), its elements are not there yet:
        // that is "not yet", not a failure.
        match browser.eval(PAGE_STATE) {
            Ok(v) => {
                last = v;
                ok(&last)
            }
            Err(e) => {
                last = Value::String(format!("not evaluable yet: {e}"));
                false
            }
        }
    });
    assert!(waited.is_ok(), "{what}; the page shows {last}");
    last
}

#[test]
fn the_gallery_lists_real_alerts_and_follows_new_ones_in_chromium() {
    let Some(chromium) = chromium_binary() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is missing (scripts/setup.sh installs it)"
        );
        eprintln!("SKIPPED: no chromium (apt-get install chromium, or set CASCADE_CHROMIUM)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let certs = make_certs(dir).expect("certs");
    let (port, api) = (free_port(), SocketAddr::from(([127, 0, 0, 1], free_port())));
    let (token, token_lines) = read_token();
    let config = analyzer_config(
        dir,
        &repo_root(),
        &embedded_broker_toml(port, &certs),
        api,
        1.0,
    )
    .replace(&format!("[api]\nlisten = \"{api}\"\n"), "")
        + &format!("[api]\nlisten = \"{api}\"\n\n{token_lines}");
    let analyzer = AnalyzerProcess::start(dir, &config, api).expect("analyzer starts");

    // The page is static and open; the data and the stream need the token.
    let (status, page) = http_get(api, "/gallery").expect("page");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("cascade alerts"));
    assert_eq!(http_get(api, "/api/events").expect("events").0, 401);

    run_edge(&edge_config(dir, &repo_root(), port, &certs, "", false)).expect("edge agent runs");
    let mut walker = Vec::new();
    eventually(Duration::from_secs(30), || {
        walker = api_alert_ids(api, &token);
        !walker.is_empty()
    })
    .unwrap_or_else(|_| panic!("no alert; analyzer log:\n{}", analyzer.log_text()));

    let mut browser = Browser::start(&chromium, dir, (1280, 900)).expect("chromium starts");
    browser
        .navigate(&format!("http://{api}/gallery#token={token}"))
        .expect("navigates");
    wait_for(
        &mut browser,
        "the API's alerts, newest first, crops loaded, following",
        |s| {
            s["ids"] == serde_json::json!(walker)
                && s["loaded"] == walker.len()
                && s["live"] == "following"
        },
    );

    // A new alert, from another device: it appears on top without a reload.
    let crop = envelope(&good_crop("dev-live", "live-1"));
    publish_all(port, &certs, "cascade/v1/dev-live/crops", vec![crop]).expect("published");
    let s = wait_for(&mut browser, "the new alert on top, arrived live", |s| {
        s["devices"][0] == "dev-live" && s["arrived"].as_array().is_some_and(|a| a.len() == 1)
    });
    let now = api_alert_ids(api, &token);
    assert_eq!(now.len(), walker.len() + 1, "{now:?}");
    assert_eq!(s["ids"][0], now[0], "the newest alert is the API's newest");
    assert_eq!(s["arrived"][0], now[0]);

    // A click shows the alert's crops.
    let first = &walker[0];
    let crops = api_get(api, &format!("/api/alerts/{first}/crops"), &token)["crops"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(crops >= 1, "the walker's alert has crops");
    browser
        .eval(&format!(
            "document.querySelector('[data-alert-id=\"{first}\"]').click()"
        ))
        .expect("click");
    wait_for(&mut browser, "the clicked alert's crops", |s| {
        s["detail"] == crops
    });

    let png = browser.screenshot().expect("screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let shot = dir.join("gallery-screenshot.png");
    std::fs::write(&shot, &png).expect("saved");
    let dom = browser
        .eval("document.documentElement.outerHTML")
        .expect("DOM");
    std::fs::write(dir.join("gallery-dom.html"), dom.as_str().unwrap_or("")).expect("saved");
    let exe = std::env::current_exe().expect("test binary");
    if let Some(target) = exe.ancestors().nth(3) {
        let copy = target.join("gallery-screenshot.png");
        std::fs::copy(&shot, &copy).expect("copied");
        eprintln!("screenshot: {} ({} bytes)", copy.display(), png.len());
    }

    // The device filter narrows the list to the walker's device.
    browser
        .eval(
            "(() => { const d = document.getElementById('device'); d.value = 'dev-e2e'; \
               d.dispatchEvent(new Event('change')); })()",
        )
        .expect("filter");
    wait_for(&mut browser, "only dev-e2e's alerts", |s| {
        s["ids"] == serde_json::json!(walker)
    });
    assert_eq!(s["error"], Value::Null);
}
