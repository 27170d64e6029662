//! The shipped Mosquitto ACL (`deploy/mosquitto.acl`), on a real Mosquitto over TLS with client
//! certificates whose CN is the identity (`use_identity_as_username`): a device certificate cannot
//! read another device's crops, cannot publish as another device, cannot publish alerts or
//! receipts; the analyzer reads every device's crops; alert consumers read alerts only; no
//! anonymous or certificate-less client gets in. Skipped, saying so, where Mosquitto is absent.

use std::time::Duration;

use cascade_tests::{Certs, Mosquitto, Received, eventually, mosquitto_binary, repo_root};

const SETTLE: Duration = Duration::from_secs(2);

fn broker(dir: &std::path::Path) -> Option<(Mosquitto, Vec<Certs>)> {
    let bin = mosquitto_binary()?;
    let ids = ["edge-01", "edge-02", "cascade-analyzer", "cascade-alerts"];
    let (certs, identities) = cascade_tests::make_identities(dir, &ids).expect("certificates");
    let acl = repo_root().join("deploy/mosquitto.acl");
    let extra = format!(
        "require_certificate true\nuse_identity_as_username true\nallow_anonymous false\nacl_file {}\n",
        acl.display()
    );
    let broker = Mosquitto::start_with(bin, dir, certs, &extra).expect("mosquitto");
    Some((broker, identities))
}

fn subscribed(port: u16, who: &Certs, topic: &str) -> Received {
    let sub = cascade_tests::subscribe(port, who, topic);
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("subscribed");
    sub
}

fn topics(sub: &Received) -> Vec<String> {
    sub.messages().into_iter().map(|(t, _)| t).collect()
}

#[test]
fn each_identity_touches_only_its_own_topics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((broker, ids)) = broker(dir.path()) else {
        return;
    };
    let [edge1, edge2, analyzer, alerts] = [&ids[0], &ids[1], &ids[2], &ids[3]];
    let port = broker.port;
    let analyzer_sees = subscribed(port, analyzer, "cascade/v1/#");
    let edge1_sees = subscribed(port, edge1, "cascade/v1/#");
    let alerts_see = subscribed(port, alerts, "cascade/v1/#");

    let publish = |who: &Certs, topic: &str| {
        cascade_tests::publish_all(port, who, topic, vec![b"x".to_vec()]).expect("published");
    };
    publish(edge2, "cascade/v1/edge-02/crops"); // allowed: its own
    publish(edge1, "cascade/v1/edge-02/crops"); // forged: as another device
    publish(edge1, "cascade/v1/edge-02/status"); // forged status
    publish(edge1, "cascade/v1/alerts/edge-01/cam/state"); // a device writing alerts
    publish(edge1, "cascade/v1/edge-01/receipts"); // a device writing its own receipts
    publish(analyzer, "cascade/v1/alerts/edge-02/cam"); // allowed: the analyzer's alert

    let got = eventually(Duration::from_secs(10), || {
        topics(&analyzer_sees).len() >= 2
    });
    assert!(got.is_ok(), "the analyzer saw {:?}", topics(&analyzer_sees));
    std::thread::sleep(SETTLE);
    assert_eq!(
        topics(&analyzer_sees),
        ["cascade/v1/edge-02/crops", "cascade/v1/alerts/edge-02/cam"],
        "only edge-02's own crop and the analyzer's alert went through"
    );
    assert!(
        topics(&edge1_sees).is_empty(),
        "edge-01 read {:?}",
        topics(&edge1_sees)
    );
    assert_eq!(
        topics(&alerts_see),
        ["cascade/v1/alerts/edge-02/cam"],
        "alert consumers read alerts and nothing else"
    );
}

#[test]
fn no_client_without_a_certificate_gets_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((broker, _)) = broker(dir.path()) else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut o = rumqttc::MqttOptions::new("anonymous", "localhost", broker.port);
    let ca = std::fs::read(&broker.certs.ca).expect("ca");
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth: None,
        },
    ));
    let (_client, mut conn) = rumqttc::Client::new(o, 4);
    let first = conn.iter().next();
    assert!(
        !matches!(
            first,
            Some(Ok(rumqttc::Event::Incoming(rumqttc::Incoming::ConnAck(_))))
        ),
        "connected without a certificate: {first:?}"
    );
}
