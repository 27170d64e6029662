//! The demo's output as a newcomer reads it (issue 14): `cascade-demo --test-models` (the
//! generated models and walker clip, a real analyzer with its embedded broker over TLS, the real
//! edge agent) lists alerts by ids that tell them apart, and prints no negative zero and no float
//! counts.

use std::process::Command;

use cascade_tests::binary;

#[test]
fn the_demo_lists_distinct_alert_ids_and_whole_counts() {
    let out = Command::new(binary("cascade-demo"))
        .arg("--test-models")
        .output()
        .expect("cascade-demo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("GENERATED"), "the test models: {text}");
    // `  new    alert 3f2a9c1e dev/cam track 1 ...`: one id per alert, each different.
    let new_ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("new"))
        .filter_map(|l| l.trim_start().strip_prefix("alert "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(!new_ids.is_empty(), "no alert listed:\n{text}");
    let mut distinct = new_ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), new_ids.len(), "ids repeat: {new_ids:?}");
    assert!(
        new_ids
            .iter()
            .all(|id| id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit())),
        "{new_ids:?}"
    );
    for bad in [" -0 ", " -0\n", "(-0", " -0.0", "-0 B"] {
        assert!(!text.contains(bad), "{bad:?} in:\n{text}");
    }
    for label in ["frames decoded", "motion frames", "crops uploaded"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} line:\n{text}"));
        let value = line.trim_start()[label.len()..].split_whitespace().next();
        assert!(
            value.is_some_and(|v| v.parse::<u64>().is_ok()),
            "{label}: a whole number, got {line:?}"
        );
    }
}
