//! The progress line (issue 14): the real edge agent on the walker clip in real time (about 8 s),
//! against a real analyzer and its broker over TLS, once on a pseudo-terminal (`script` from
//! util-linux gives it one) and once on a pipe. On the terminal one line is redrawn in place
//! (`\r` + erase line) with frames, rate, motion, crops, the uplink, the share of the file and the
//! time to go, and cleared at exit; on a pipe nothing but log lines. Skips, saying so, without
//! `script`.

use std::path::Path;
use std::process::Command;

use cascade_tests::{
    AnalyzerProcess, EdgeOptions, analyzer_config, binary, embedded_broker_toml, free_port,
    make_certs, repo_root, write_edge_config,
};

const REDRAW: &str = "\r\x1b[K";

fn edge_config(dir: &Path) -> (AnalyzerProcess, std::path::PathBuf) {
    let certs = make_certs(dir).expect("certs");
    let port = free_port();
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let cfg = analyzer_config(
        dir,
        &repo_root(),
        &embedded_broker_toml(port, &certs),
        api,
        5.0,
    );
    let a = AnalyzerProcess::start(dir, &cfg, api).expect("analyzer starts");
    let o = EdgeOptions {
        realtime: true,
        uplink: String::new(),
        ..EdgeOptions::walker(&repo_root())
    };
    (a, write_edge_config(dir, port, &certs, &o))
}

fn script() -> Option<&'static str> {
    ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
}

#[test]
fn the_progress_line_is_drawn_on_a_terminal_and_never_on_a_pipe() {
    let Some(script) = script() else {
        eprintln!("SKIPPED: no `script` (util-linux) to give the agent a terminal");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_analyzer, config) = edge_config(tmp.path());
    let agent = format!(
        "{} run --exit-when-done --config {}",
        binary("edge-agent").display(),
        config.display()
    );
    // On a terminal: `script` runs the agent on a pseudo-terminal and copies what it shows.
    let tty = Command::new(script)
        .args(["-q", "-e", "-c", &agent, "/dev/null"])
        .env("TERM", "xterm")
        .env("RUST_LOG", "info")
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "agent on a terminal failed:\n{shown}");
    let lines: Vec<&str> = shown
        .split(REDRAW)
        .filter(|l| l.contains(" fps  motion "))
        .collect();
    assert!(lines.len() >= 8, "{} redraws in 8 s:\n{shown}", lines.len());
    let last = lines.last().copied().unwrap_or_default();
    eprintln!("{} redraws; the last: {last}", lines.len());
    for part in [
        "frames",
        "crops ",
        "buffered",
        "uplink connected",
        " %  ETA ",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(part)),
            "no {part:?} in:\n{}",
            lines.join("\n")
        );
    }
    assert!(!last.contains('\n'), "one line, redrawn: {last:?}");
    // Log lines start on a cleared line, never after the progress text.
    assert!(
        !shown.contains("buffered  uplink connected  INFO")
            && !shown
                .lines()
                .any(|l| l.contains(" fps  motion ") && l.contains(" INFO ")),
        "a log line was written over the progress line:\n{shown}"
    );
    assert!(shown.trim_end().ends_with("(sent at the next start)") || shown.contains("stopped;"));

    // On a pipe: the same run, logs only.
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_analyzer, config) = edge_config(tmp.path());
    let piped = Command::new(binary("edge-agent"))
        .args(["run", "--exit-when-done", "--config"])
        .arg(&config)
        .env("TERM", "xterm")
        .env("RUST_LOG", "info")
        .output()
        .expect("agent runs");
    let log = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.status.success(), "{log}");
    assert!(log.contains(" summary"), "{log}");
    assert!(
        !log.contains("\x1b[K") && !log.contains(" fps  motion "),
        "progress on a pipe:\n{log}"
    );
    assert!(piped.stdout.is_empty(), "nothing on stdout");
}
