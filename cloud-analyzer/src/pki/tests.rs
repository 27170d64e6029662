use std::path::Path;

use super::*;

fn ca(dir: &Path) {
    init(dir, "cascade fleet CA", 3650).expect("init");
}

fn opts(dir: &Path) -> IssueOptions {
    IssueOptions {
        dir: dir.to_path_buf(),
        days: 30,
        out: None,
        force: false,
    }
}

fn device(dir: &Path, id: &str) -> Result<Issued, PkiError> {
    issue(&Identity::Device(id.into()), &opts(dir))
}

fn crl(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(CRL)).expect("crl")
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn init_writes_a_ca_and_refuses_to_overwrite_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("pki");
    let entry = init(&dir, "cascade fleet CA", 3650).expect("init");
    assert_eq!(
        (entry.kind, entry.cn.as_str()),
        (Kind::Ca, "cascade fleet CA")
    );
    for f in [CA_CERT, CA_KEY, CRL, INDEX, CRL_NUMBER] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    assert!(crl(&dir).starts_with("-----BEGIN X509 CRL-----"));
    let before = std::fs::read(dir.join(CA_KEY)).expect("key");
    let e = init(&dir, "another", 10).expect_err("refused").to_string();
    assert!(e.contains("ca.key") && e.contains("exists"), "{e}");
    assert_eq!(std::fs::read(dir.join(CA_KEY)).expect("key"), before);
}

#[cfg(unix)]
#[test]
fn keys_and_folders_are_private_certificates_public() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("pki");
    ca(&dir);
    let out = tmp.path().join("devices/edge-01");
    let issued = issue(
        &Identity::Device("edge-01".into()),
        &IssueOptions {
            out: Some(out.clone()),
            ..opts(&dir)
        },
    )
    .expect("issued");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&dir.join(CA_KEY)), 0o600);
    assert_eq!(mode(&issued.key), 0o600);
    assert_eq!(mode(&issued.cert), 0o644);
    assert_eq!(mode(&dir.join(CA_CERT)), 0o644);
    assert_eq!(mode(&dir.join(CRL)), 0o644);
    assert_eq!(issued.key, out.join("edge-01.key"));
}

#[test]
fn devices_and_services_get_their_cn() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ca(dir);
    let edge = device(dir, "edge-01").expect("device");
    assert_eq!(
        (edge.entry.kind, edge.entry.cn.as_str()),
        (Kind::Device, "edge-01")
    );
    let analyzer = issue(&Identity::Analyzer, &opts(dir)).expect("analyzer");
    assert_eq!(analyzer.entry.cn, "cascade-analyzer");
    assert_eq!(analyzer.cert, dir.join("cascade-analyzer.pem"));
    let alerts = issue(&Identity::Alerts, &opts(dir)).expect("alerts");
    assert_eq!(alerts.entry.cn, "cascade-alerts");
    let hosts = vec!["broker.example.com".to_string(), "10.0.0.5".to_string()];
    let server = issue(&Identity::Server(hosts), &opts(dir)).expect("server");
    assert_eq!(server.entry.cn, "broker.example.com");
    assert_eq!(server.key, dir.join("server.key"));
    let index = Index::read(&dir.join(INDEX)).expect("index");
    let kinds: Vec<Kind> = index.entries.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Ca,
            Kind::Device,
            Kind::Analyzer,
            Kind::Alerts,
            Kind::Server
        ]
    );
    let serials: std::collections::HashSet<_> = index.entries.iter().map(|e| &e.serial).collect();
    assert_eq!(serials.len(), 5, "serials are distinct");
    // Loaded back by the same parser the analyzer's TLS client uses.
    cascade_shared::tls::client_config(
        "broker",
        Some(&dir.join(CA_CERT)),
        Some((edge.cert.as_path(), edge.key.as_path())),
    )
    .expect("a usable client pair");
}

#[test]
fn bad_device_ids_and_hosts_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ca(dir);
    for bad in [
        "a/b",
        "+",
        "#",
        "alerts",
        "Receipts",
        "cascade-analyzer",
        "cascade-alerts",
        "",
    ] {
        let e = device(dir, bad).expect_err(bad).to_string();
        assert!(e.contains("not a device id"), "{bad}: {e}");
    }
    let bad_host = Identity::Server(vec!["ok.example".into(), "bad host".into()]);
    let e = issue(&bad_host, &opts(dir)).expect_err("host").to_string();
    assert!(e.contains("\"bad host\""), "{e}");
    assert!(matches!(
        issue(&Identity::Server(vec![]), &opts(dir)),
        Err(PkiError::NoHosts)
    ));
    assert_eq!(
        Index::read(&dir.join(INDEX)).expect("index").entries.len(),
        1
    );
}

#[test]
fn a_live_certificate_is_not_issued_twice_without_force() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ca(dir);
    let first = device(dir, "edge-01").expect("first");
    let e = device(dir, "edge-01").expect_err("refused").to_string();
    assert!(
        e.contains(&first.entry.serial) && e.contains("--force"),
        "{e}"
    );
    let forced = IssueOptions {
        force: true,
        ..opts(dir)
    };
    let second = issue(&Identity::Device("edge-01".into()), &forced).expect("forced");
    assert_ne!(first.entry.serial, second.entry.serial);
    // Revoked: the files are still there, so only --force replaces them.
    revoke(dir, "edge-01").expect("revoked");
    assert!(matches!(
        device(dir, "edge-01"),
        Err(PkiError::FileExists(_))
    ));
    issue(&Identity::Device("edge-01".into()), &forced).expect("reissued");
}

#[test]
fn revoke_by_id_or_serial_rewrites_the_crl() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ca(dir);
    let empty = crl(dir);
    let one = device(dir, "edge-01").expect("edge-01");
    let two = device(dir, "edge-02").expect("edge-02");
    let revoked = revoke(dir, "edge-01").expect("revoked");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].serial, one.entry.serial);
    let with_one = crl(dir);
    assert!(
        with_one.len() > empty.len(),
        "the CRL lists a certificate now"
    );
    assert!(matches!(
        revoke(dir, "edge-01"),
        Err(PkiError::AlreadyRevoked(_))
    ));
    assert!(matches!(revoke(dir, "edge-09"), Err(PkiError::NotFound(_))));
    let by_serial = two.entry.serial.to_ascii_lowercase();
    assert_eq!(revoke(dir, &by_serial).expect("by serial").len(), 1);
    assert!(crl(dir).len() > with_one.len());
    assert_eq!(
        std::fs::read_to_string(dir.join(CRL_NUMBER))
            .expect("n")
            .trim(),
        "3"
    );
    let index = Index::read(&dir.join(INDEX)).expect("index");
    assert_eq!(index.revoked().count(), 2);
    let ca_serial = index.ca().expect("ca").serial.clone();
    assert!(matches!(
        revoke(dir, &ca_serial),
        Err(PkiError::NotFound(_))
    ));
}

#[test]
fn commands_without_a_ca_say_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let e = device(tmp.path(), "edge-01")
        .expect_err("no CA")
        .to_string();
    assert!(e.contains("pki init"), "{e}");
    assert!(matches!(refresh_crl(tmp.path()), Err(PkiError::NoCa(_))));
}

#[test]
fn lifetimes_are_bounded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        init(tmp.path(), "ca", 0),
        Err(PkiError::BadDays(0))
    ));
    init(tmp.path(), "ca", 10).expect("init");
    let long = IssueOptions {
        days: 1000,
        ..opts(tmp.path())
    };
    let issued = issue(&Identity::Alerts, &long).expect("issued");
    let ca_end = Index::read(&tmp.path().join(INDEX))
        .expect("index")
        .ca()
        .expect("ca")
        .not_after;
    assert_eq!(
        issued.entry.not_after, ca_end,
        "no certificate outlives its CA"
    );
}
