//! The fleet PKI end to end: certificates made only by `cloud-analyzer pki` (CA, broker, devices,
//! analyzer) on a real Mosquitto with the shipped ACL and the CA's `crlfile`. A device publishes
//! its crops; once revoked its TLS connection is refused after a broker restart (and after a
//! SIGHUP, which makes Mosquitto read the CRL again), while other devices go on. Skipped, saying
//! so, where Mosquitto is absent (a failure under `CI=true`).

use std::time::Duration;

use cascade_tests::pki::{Fleet, hangup};
use cascade_tests::{Certs, Mosquitto, Received, eventually, free_port, mosquitto_binary};

const WAIT: Duration = Duration::from_secs(10);

/// A CA with the broker's certificate, edge-01, edge-02 and the analyzer, and a broker that
/// enforces the shipped ACL and the CA's CRL.
fn fleet_and_broker(dir: &std::path::Path) -> Option<(Fleet, Mosquitto)> {
    let bin = mosquitto_binary()?;
    let fleet = Fleet::init(&dir.join("ca")).expect("pki init, issue-server");
    fleet.run(&["issue-device", "edge-01"]).expect("edge-01");
    fleet.run(&["issue-device", "edge-02"]).expect("edge-02");
    fleet.run(&["issue-analyzer"]).expect("analyzer");
    let acl = cascade_tests::repo_root().join("deploy/mosquitto.acl");
    // As root, Mosquitto would drop to its own user, which cannot read the private CA folder.
    let user = if is_root() { "user root\n" } else { "" };
    let extra = format!(
        "require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n\
         acl_file {}\ncrlfile {}\n{user}",
        acl.display(),
        fleet.crl().display()
    );
    let broker = Mosquitto::start_with(bin, dir, fleet.certs("cascade-analyzer"), &extra)
        .expect("mosquitto");
    Some((fleet, broker))
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Whether a client with these certificates gets a CONNACK.
fn connects(port: u16, who: &Certs) -> bool {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut o = rumqttc::MqttOptions::new(format!("probe-{}", free_port()), "localhost", port);
    let read = |p: &std::path::Path| std::fs::read(p).expect("certificate file");
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca: read(&who.ca),
            alpn: None,
            client_auth: Some((read(&who.client_cert), read(&who.client_key))),
        },
    ));
    let (_client, mut conn) = rumqttc::Client::new(o, 4);
    matches!(
        conn.iter().next(),
        Some(Ok(rumqttc::Event::Incoming(rumqttc::Incoming::ConnAck(_))))
    )
}

fn crop(port: u16, fleet: &Fleet, device: &str) -> anyhow::Result<()> {
    let topic = format!("cascade/v1/{device}/crops");
    cascade_tests::publish_all(port, &fleet.certs(device), &topic, vec![device.into()])
}

fn wait_for(sub: &Received, device: &str) {
    let topic = format!("cascade/v1/{device}/crops");
    let seen = eventually(WAIT, || sub.messages().iter().any(|(t, _)| *t == topic));
    assert!(
        seen.is_ok(),
        "the analyzer did not get {topic}: {:?}",
        sub.messages()
    );
}

#[test]
fn a_revoked_device_is_refused_after_a_broker_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((fleet, mut broker)) = fleet_and_broker(dir.path()) else {
        return;
    };
    let analyzer = cascade_tests::subscribe(
        broker.port,
        &fleet.certs("cascade-analyzer"),
        "cascade/v1/+/crops",
    );
    eventually(WAIT, || analyzer.is_subscribed()).expect("the analyzer subscribed");
    crop(broker.port, &fleet, "edge-01").expect("edge-01 publishes its crops");
    wait_for(&analyzer, "edge-01");

    broker.kill();
    let said = fleet.run(&["revoke", "edge-01"]).expect("revoked");
    assert!(
        said.contains("revoked device certificate edge-01"),
        "{said}"
    );
    broker.restart().expect("broker restarted");

    assert!(
        !connects(broker.port, &fleet.certs("edge-01")),
        "a revoked certificate got in"
    );
    assert!(connects(broker.port, &fleet.certs("edge-02")));
    eventually(WAIT, || analyzer.is_subscribed()).expect("the analyzer is back");
    crop(broker.port, &fleet, "edge-02").expect("edge-02 still publishes");
    wait_for(&analyzer, "edge-02");
}

#[test]
fn sighup_makes_mosquitto_read_the_crl_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((fleet, broker)) = fleet_and_broker(dir.path()) else {
        return;
    };
    assert!(connects(broker.port, &fleet.certs("edge-01")));
    fleet.run(&["revoke", "edge-01"]).expect("revoked");
    assert!(
        connects(broker.port, &fleet.certs("edge-01")),
        "the broker has not read the new CRL yet"
    );
    hangup(&broker).expect("SIGHUP");
    let refused = eventually(WAIT, || !connects(broker.port, &fleet.certs("edge-01")));
    assert!(refused.is_ok(), "still accepted after SIGHUP");
    assert!(connects(broker.port, &fleet.certs("edge-02")));
}

#[test]
fn bad_device_ids_are_refused_by_the_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = Fleet::init(&dir.path().join("ca")).expect("pki init");
    for bad in ["alerts", "a/b", "edge+", "cascade-analyzer"] {
        let e = fleet
            .run(&["issue-device", bad])
            .expect_err(bad)
            .to_string();
        assert!(e.contains("is not a device id"), "{bad}: {e}");
    }
    let e = fleet.run(&["init"]).expect_err("second init").to_string();
    assert!(e.contains("ca.key exists"), "{e}");
}
