//! What a newcomer reads first: `--help` of every subcommand of both binaries shows an example of
//! its use.

use std::process::Command;

fn help(binary: &str, args: &[&str]) -> String {
    let out = Command::new(cascade_tests::binary(binary))
        .args(args)
        .arg("--help")
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{binary} {args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn every_subcommand_shows_an_example() {
    let cases: &[(&str, &[&str])] = &[
        ("edge-agent", &["run"]),
        ("edge-agent", &["check"]),
        ("edge-agent", &["probe"]),
        ("cloud-analyzer", &["run"]),
        ("cloud-analyzer", &["check"]),
        ("cloud-analyzer", &["token"]),
        ("cloud-analyzer", &["pki"]),
        ("cloud-analyzer", &["pki", "init"]),
        ("cloud-analyzer", &["pki", "issue-device"]),
        ("cloud-analyzer", &["pki", "issue-analyzer"]),
        ("cloud-analyzer", &["pki", "issue-alerts"]),
        ("cloud-analyzer", &["pki", "issue-server"]),
        ("cloud-analyzer", &["pki", "revoke"]),
        ("cloud-analyzer", &["pki", "crl"]),
    ];
    for (binary, args) in cases {
        let text = help(binary, args);
        let example = format!("Example: {} {}", binary, args.join(" "));
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&example)),
            "{binary} {args:?} --help has no `{example} ...` line:\n{text}"
        );
    }
}
