//! Test harness: generated certificates, a real Mosquitto broker over TLS in a temp dir on a free
//! port, an MQTT subscriber, and eventually-style waits. Tests say clearly when Mosquitto is
//! missing and are skipped locally; under `CI=true` a missing Mosquitto fails them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// PEM files of a test PKI.
#[derive(Debug, Clone)]
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Writes a CA, a server certificate for localhost/127.0.0.1 and a client certificate into `dir`.
pub fn make_certs(dir: &Path) -> anyhow::Result<Certs> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cascade test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    // Distinct subject names: a leaf named like its issuer would look self-signed to OpenSSL.
    let leaf = |names: Vec<String>| -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.clone())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].clone());
        let cert = params.signed_by(&key, &ca)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()])?;
    let (client_cert, client_key) = leaf(vec!["cascade-test-client".into()])?;
    let w = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    };
    Ok(Certs {
        ca: w("ca.pem", &ca.pem())?,
        server_cert: w("server.pem", &server_cert)?,
        server_key: w("server.key", &server_key)?,
        client_cert: w("client.pem", &client_cert)?,
        client_key: w("client.key", &client_key)?,
    })
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `mosquitto` binary, or `None` (with a clear message) when it is not installed.
/// Under `CI=true` its absence is a failure: CI installs it.
pub fn mosquitto_binary() -> Option<PathBuf> {
    let found = [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "mosquitto is not installed, and CI must run the broker tests"
        );
        eprintln!(
            "SKIPPED: mosquitto is not installed (apt-get install mosquitto, or run scripts/setup.sh)"
        );
    }
    found
}

/// A real Mosquitto broker on loopback with TLS, killable and restartable on the same port.
#[derive(Debug)]
pub struct Mosquitto {
    pub port: u16,
    pub certs: Certs,
    binary: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts a broker in `dir`; `require_client_cert` makes client certificates mandatory.
    pub fn start(binary: PathBuf, dir: &Path, require_client_cert: bool) -> anyhow::Result<Self> {
        let certs = make_certs(dir)?;
        let port = free_port();
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_client_cert}\n\
                 allow_anonymous true\npersistence false\nmax_inflight_messages 100\nlog_dest stderr\nlog_type error\n",
                certs.ca.display(),
                certs.server_cert.display(),
                certs.server_key.display()
            ),
        )?;
        let mut m = Self {
            port,
            certs,
            binary,
            config,
            child: None,
        };
        m.restart()?;
        Ok(m)
    }

    /// (Re)starts the broker process and waits until it accepts connections.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let port = self.port;
        eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .map_err(|_| anyhow::anyhow!("mosquitto did not start on port {port}"))
    }

    /// SIGKILL: the broker dies without a goodbye, losing its sessions.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A condition did not hold in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("condition did not hold in time")
    }
}

impl std::error::Error for TimedOut {}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> Result<(), TimedOut> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if cond() { Ok(()) } else { Err(TimedOut) }
}

/// Payloads received by a [`subscribe`]r, and whether its subscription is active.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub payloads: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    pub subscribed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Received {
    pub fn all(&self) -> Vec<Vec<u8>> {
        self.payloads.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.payloads.lock().map(|v| v.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A TLS subscriber (with a client certificate) collecting every payload on `topic` at QoS 1,
/// reconnecting and resubscribing on its own.
pub fn subscribe(port: u16, certs: &Certs, topic: &str) -> Received {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let got = Received::default();
    let mut o = rumqttc::MqttOptions::new(format!("sub-{}", free_port()), "localhost", port);
    o.set_max_packet_size(8 << 20, 8 << 20);
    o.set_keep_alive(Duration::from_secs(5));
    let ca = std::fs::read(&certs.ca).expect("ca");
    let client_auth = Some((
        std::fs::read(&certs.client_cert).expect("cert"),
        std::fs::read(&certs.client_key).expect("key"),
    ));
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth,
        },
    ));
    let (client, mut conn) = rumqttc::Client::new(o, 64);
    let (sink, topic) = (got.clone(), topic.to_string());
    std::thread::spawn(move || {
        for ev in conn.iter() {
            if std::sync::Arc::strong_count(&sink.payloads) == 1 {
                break; // the test dropped its handle
            }
            match ev {
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::ConnAck(_))) => {
                    let _ = client.subscribe(topic.clone(), rumqttc::QoS::AtLeastOnce);
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::SubAck(_))) => {
                    sink.subscribed
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::Publish(p))) => {
                    if let Ok(mut v) = sink.payloads.lock() {
                        v.push(p.payload.to_vec());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if sink.is_subscribed() {
                        eprintln!("test subscriber: connection lost: {e}");
                    }
                    sink.subscribed
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    });
    got
}
