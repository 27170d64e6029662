//! What to do about a failed broker connection, for the first-run mistakes: nothing listening,
//! a host that does not resolve or cannot be reached, a broker certificate the configured CA did
//! not sign or that names another host, a client certificate the broker does not accept, and a
//! refused login. Read from the error's text (rumqttc nests io, rustls and MQTT errors; their
//! messages are stable and name the case).

use std::path::PathBuf;

use cascade_shared::config::edge::UplinkConfig;

/// The uplink's settings the hints name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
}

impl Endpoint {
    pub fn of(cfg: &UplinkConfig) -> Self {
        Self {
            host: cfg.host.clone(),
            port: cfg.port,
            ca_file: cfg.ca_file.clone(),
            client_cert_file: cfg.client_cert_file.clone(),
        }
    }

    fn file(p: Option<&PathBuf>) -> String {
        p.map_or_else(|| "not set".to_string(), |p| p.display().to_string())
    }
}

/// What to run or change for `error` (its text), if it is a known mistake.
pub fn hint(error: &str, e: &Endpoint) -> Option<String> {
    let text = error.to_ascii_lowercase().replace([' ', '_'], "");
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    let (host, port) = (&e.host, e.port);
    let hint = if has(&["notauthorized", "badusernamepassword", "badclientid"]) {
        "the broker refused this client: check the device's certificate name against the \
         broker's ACL (deploy/mosquitto.acl)"
            .to_string()
    } else if has(&["connectionrefused"]) {
        format!(
            "nothing accepts connections at {host}:{port}: start the cloud analyzer (its embedded \
             broker) or Mosquitto there, or correct uplink.host / uplink.port"
        )
    } else if has(&[
        "failedtolookupaddress",
        "nameorservicenotknown",
        "temporaryfailureinname",
    ]) {
        format!("uplink.host {host} does not resolve: correct it, or check this device's DNS")
    } else if has(&[
        "timedout",
        "networkunreachable",
        "noroutetohost",
        "hostunreachable",
    ]) {
        format!(
            "{host}:{port} cannot be reached: check the network and firewalls between this \
             device and the broker"
        )
    } else if has(&["unknownissuer", "badsignature"]) {
        // BadSignature: a CA of the same name but another key (e.g. a second `pki init`).
        format!(
            "the broker's certificate is not signed by the CA in uplink.ca_file ({}): use the CA \
             that issued it (`cloud-analyzer pki init` writes it as ca.pem in its folder)",
            Endpoint::file(e.ca_file.as_ref())
        )
    } else if has(&["notvalidforname"]) {
        format!(
            "the broker's certificate does not name {host}: connect by a name it was issued for, \
             or issue it again with {host} (`cloud-analyzer pki issue-server --host {host} ...`)"
        )
    } else if has(&["expired"]) {
        "the broker's certificate has expired: issue it again".to_string()
    } else if has(&[
        "certificaterequired",
        "badcertificate",
        "unknownca",
        "revoked",
        "decrypterror",
    ]) {
        format!(
            "the broker did not accept this device's client certificate (uplink.client_cert_file: \
             {}): issue one from the CA the broker trusts (`cloud-analyzer pki issue-device <device-id> ...`)",
            Endpoint::file(e.client_cert_file.as_ref())
        )
    } else {
        return None;
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> Endpoint {
        Endpoint {
            host: "broker.lan".into(),
            port: 8883,
            ca_file: Some("/etc/cascade/ca.pem".into()),
            client_cert_file: Some("/etc/cascade/client.pem".into()),
        }
    }

    #[test]
    fn each_first_run_mistake_says_what_to_do() {
        let cases = [
            (
                "I/O: Connection refused (os error 111)",
                "nothing accepts connections at broker.lan:8883",
            ),
            (
                "I/O: failed to lookup address information: Name or service not known",
                "uplink.host broker.lan does not resolve",
            ),
            ("I/O: connection timed out", "cannot be reached"),
            (
                "TLS: I/O: invalid peer certificate: UnknownIssuer",
                "not signed by the CA in uplink.ca_file (/etc/cascade/ca.pem)",
            ),
            (
                "TLS: I/O: invalid peer certificate: BadSignature",
                "not signed by the CA in uplink.ca_file",
            ),
            (
                "TLS: invalid peer certificate: certificate not valid for name \"broker.lan\"",
                "does not name broker.lan",
            ),
            (
                "TLS: received fatal alert: CertificateRequired",
                "(uplink.client_cert_file: /etc/cascade/client.pem)",
            ),
            (
                "Connection refused, return code: `NotAuthorized`",
                "certificate name against the broker's ACL",
            ),
        ];
        for (error, want) in cases {
            let h = hint(error, &ep()).unwrap_or_else(|| panic!("no hint for {error:?}"));
            assert!(h.contains(want), "{error:?} -> {h}");
        }
        assert_eq!(hint("Mqtt state: keep alive timeout", &ep()), None);
    }
}
