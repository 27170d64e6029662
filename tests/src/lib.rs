//! Test harness: generated certificates, a real Mosquitto broker over TLS in a temp dir on a free
//! port, an MQTT subscriber, and eventually-style waits. Tests say clearly when Mosquitto is
//! missing and are skipped locally; under `CI=true` a missing Mosquitto fails them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod cdp;
pub mod debian;
pub mod docker;
pub mod mlserver;
pub mod pki;
pub mod postgres;
pub mod procfs;
pub mod tmpfs;
pub mod visits;

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
    Ok(make_identities(dir, &[])?.0)
}

/// [`make_certs`], plus one client certificate per identity (its CN, as a broker with
/// `use_identity_as_username` sees it): each returned `Certs` differs only in its client pair.
pub fn make_identities(dir: &Path, identities: &[&str]) -> anyhow::Result<(Certs, Vec<Certs>)> {
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
    let certs = Certs {
        ca: w("ca.pem", &ca.pem())?,
        server_cert: w("server.pem", &server_cert)?,
        server_key: w("server.key", &server_key)?,
        client_cert: w("client.pem", &client_cert)?,
        client_key: w("client.key", &client_key)?,
    };
    let mut others = Vec::new();
    for id in identities {
        let (cert, key) = leaf(vec![(*id).to_string()])?;
        others.push(Certs {
            client_cert: w(&format!("{id}.pem"), &cert)?,
            client_key: w(&format!("{id}.key"), &key)?,
            ..certs.clone()
        });
    }
    Ok((certs, others))
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
        let extra = format!("require_certificate {require_client_cert}\nallow_anonymous true\n");
        Self::start_with(binary, dir, certs, &extra)
    }

    /// Starts a broker in `dir` with `certs` and the `extra` config lines (authentication, ACLs).
    pub fn start_with(
        binary: PathBuf,
        dir: &Path,
        certs: Certs,
        extra: &str,
    ) -> anyhow::Result<Self> {
        let port = free_port();
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n{extra}\
                 persistence false\nmax_inflight_messages 100\nlog_dest stderr\nlog_type error\n",
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
    /// The topic of each payload, in the same order.
    pub topics: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub subscribed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Received {
    /// (topic, payload) pairs received so far.
    pub fn messages(&self) -> Vec<(String, Vec<u8>)> {
        let topics = self.topics.lock().map(|v| v.clone()).unwrap_or_default();
        topics.into_iter().zip(self.all()).collect()
    }

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
                    if let (Ok(mut t), Ok(mut v)) = (sink.topics.lock(), sink.payloads.lock()) {
                        t.push(p.topic.clone());
                        v.push(p.payload.to_vec());
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    sink.subscribed
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    });
    got
}

/// Publishes each payload to `topic` at QoS 1 over TLS and waits for every PUBACK.
pub fn publish_all(
    port: u16,
    certs: &Certs,
    topic: &str,
    payloads: Vec<Vec<u8>>,
) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut o = rumqttc::MqttOptions::new(format!("pub-{}", free_port()), "localhost", port);
    o.set_max_packet_size(16 << 20, 16 << 20);
    let ca = std::fs::read(&certs.ca)?;
    let client_auth = Some((
        std::fs::read(&certs.client_cert)?,
        std::fs::read(&certs.client_key)?,
    ));
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth,
        },
    ));
    let (client, mut conn) = rumqttc::Client::new(o, payloads.len() + 4);
    let n = payloads.len();
    for p in payloads {
        client.publish(topic, rumqttc::QoS::AtLeastOnce, false, p)?;
    }
    let (mut acked, start) = (0, Instant::now());
    for ev in conn.iter() {
        match ev {
            Ok(rumqttc::Event::Incoming(rumqttc::Incoming::PubAck(_))) => {
                acked += 1;
                if acked == n {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => anyhow::bail!("publisher: {e}"),
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(30),
            "publisher: only {acked} of {n} acknowledged"
        );
    }
    let _ = client.disconnect();
    Ok(())
}

/// A binary of this workspace, built beside the running test (`cargo test --workspace` builds them).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // Beside a binary (target/<profile>/), or one level up from a test (target/<profile>/deps/).
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join(name))
        .collect();
    let path = candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or(&candidates[0])
        .clone();
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace --bins` (or `cargo test --workspace`)",
        path.display()
    );
    path
}

/// A plain HTTP/1.1 GET on loopback: (status, body).
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    http_request(addr, "GET", path, None)
}

/// An HTTP/1.1 request on loopback with an optional bearer token: (status, body).
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

/// GET returning JSON.
pub fn http_json(
    addr: std::net::SocketAddr,
    path: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let (status, body) = http_get(addr, path)?;
    Ok((status, serde_json::from_slice(&body)?))
}

/// A running `cloud-analyzer` process.
#[derive(Debug)]
pub struct AnalyzerProcess {
    pub api: std::net::SocketAddr,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl AnalyzerProcess {
    /// Writes `config_text` to `dir/analyzer.toml` and starts the analyzer; waits for `/readyz`.
    pub fn start(dir: &Path, config_text: &str, api: std::net::SocketAddr) -> anyhow::Result<Self> {
        let config = dir.join("analyzer.toml");
        std::fs::write(&config, config_text)?;
        let mut a = Self {
            api,
            config,
            log: dir.join("analyzer.log"),
            child: None,
        };
        a.restart()?;
        Ok(a)
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(binary("cloud-analyzer"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let api = self.api;
        eventually(Duration::from_secs(30), || {
            http_get(api, "/readyz").is_ok_and(|(s, _)| s == 200)
        })
        .map_err(|_| anyhow::anyhow!("analyzer not ready; log:\n{}", self.log_text()))
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for AnalyzerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `edge-agent run --exit-when-done` on `config`; returns its log.
pub fn run_edge(config: &Path) -> anyhow::Result<String> {
    let out = Command::new(binary("edge-agent"))
        .args(["run", "--exit-when-done", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .output()?;
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    anyhow::ensure!(out.status.success(), "edge-agent failed:\n{log}");
    Ok(log)
}

/// `[uplink]` lines for an edge with no analyzer behind its broker (a test subscriber only
/// observes): crops leave the buffer on the broker's PUBACK, as no receipt will come.
pub const OBSERVED_ONLY: &str = "delivery = \"puback\"";

/// What an edge test config varies.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    pub clip: PathBuf,
    pub manifest: PathBuf,
    /// Extra lines for `[detector]` and `[tracker]`.
    pub detector: String,
    pub tracker: String,
    pub realtime: bool,
    /// Extra keys of the file source's inline table, e.g. `, fps = 2.5`.
    pub source: String,
    /// Extra lines for `[uplink]`.
    pub uplink: String,
}

impl EdgeOptions {
    /// The generated walker clip and INT8 test detector at 10 Hz, as fast as possible.
    pub fn walker(repo: &Path) -> Self {
        Self {
            clip: repo.join("tests/fixtures/walker.mp4"),
            manifest: repo.join("models/blob-yolov8-int8.toml"),
            detector: "max_rate_hz = 10.0".into(),
            tracker: String::new(),
            realtime: false,
            source: String::new(),
            uplink: OBSERVED_ONLY.into(),
        }
    }
}

/// Writes `dir/edge.toml`: device `dev-e2e`, camera `cam-1`, uploading to `port` over TLS with
/// the harness's client certificate.
pub fn write_edge_config(dir: &Path, port: u16, certs: &Certs, o: &EdgeOptions) -> PathBuf {
    let text = format!(
        r#"[device]
id = "dev-e2e"

[[camera]]
id = "cam-1"
source = {{ kind = "file", path = "{clip}", realtime = {realtime}{source} }}

[detector]
manifest = "{manifest}"
{detector}

[tracker]
{tracker}

[buffer]
dir = "{buffer}"

[uplink]
host = "localhost"
port = {port}
ca_file = "{ca}"
client_cert_file = "{cert}"
client_key_file = "{key}"
{uplink}

[telemetry]
listen = "127.0.0.1:0"
"#,
        clip = o.clip.display(),
        manifest = o.manifest.display(),
        detector = o.detector,
        tracker = o.tracker,
        realtime = o.realtime,
        source = o.source,
        uplink = o.uplink,
        buffer = dir.join("edge-buffer").display(),
        ca = certs.ca.display(),
        cert = certs.client_cert.display(),
        key = certs.client_key.display(),
    );
    let path = dir.join("edge.toml");
    std::fs::write(&path, text).expect("edge config");
    path
}

/// The walker clip against `port`, with extra `[tracker]` lines, for a cascade with its analyzer
/// (delivery on receipts, the default).
pub fn edge_config(
    dir: &Path,
    repo: &Path,
    port: u16,
    certs: &Certs,
    tracker: &str,
    realtime: bool,
) -> PathBuf {
    let o = EdgeOptions {
        tracker: tracker.into(),
        realtime,
        uplink: String::new(),
        ..EdgeOptions::walker(repo)
    };
    write_edge_config(dir, port, certs, &o)
}

/// `broker = ...` value for an analyzer with its embedded broker on `port`, TLS, client certificates.
pub fn embedded_broker_toml(port: u16, certs: &Certs) -> String {
    format!(
        r#"{{ mode = "embedded", listen = "127.0.0.1:{port}", cert_file = "{}", key_file = "{}", ca_file = "{}" }}"#,
        certs.server_cert.display(),
        certs.server_key.display(),
        certs.ca.display()
    )
}

/// `broker = ...` value for an analyzer on an external broker (Mosquitto) on `port`, TLS, client certificates.
pub fn external_broker_toml(port: u16, certs: &Certs) -> String {
    format!(
        r#"{{ mode = "external", host = "localhost", port = {port}, ca_file = "{}", client_cert_file = "{}", client_key_file = "{}" }}"#,
        certs.ca.display(),
        certs.client_cert.display(),
        certs.client_key.display()
    )
}

/// An analyzer config. `broker` is the TOML value of `broker = ...`.
pub fn analyzer_config(
    dir: &Path,
    repo: &Path,
    broker: &str,
    api: std::net::SocketAddr,
    cooldown_s: f64,
) -> String {
    format!(
        r#"broker = {broker}

[model]
manifest = "{manifest}"
threads = 1

[batch]
max_batch = 8
max_wait_ms = 20

[alerts]
cooldown_s = {cooldown_s}

[store]
dir = "{store}"

[api]
listen = "{api}"
"#,
        manifest = repo.join("models/blob-yolov8-fp32.toml").display(),
        store = dir.join("store").display(),
    )
}

/// The repository root (for fixtures and models).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared` beside the project root, when this machine has it (tests that use it say so and
/// skip without it).
pub fn shared_dir() -> Option<PathBuf> {
    let d = repo_root().join("../shared");
    d.join("models").is_dir().then_some(d)
}

/// A running `edge-agent run` (killed on drop), its log in a file, its telemetry endpoint found
/// from the log.
pub struct EdgeProcess {
    pub telemetry: std::net::SocketAddr,
    log: PathBuf,
    child: Option<Child>,
}

impl EdgeProcess {
    /// Starts the agent on `config` (whose `[telemetry] listen` may use port 0), logging to `log`;
    /// waits until its telemetry endpoint is up.
    pub fn start(config: &Path, log: &Path) -> anyhow::Result<Self> {
        Self::start_with(config, log, &[])
    }

    /// [`EdgeProcess::start`] with extra `run` arguments (such as `--exit-when-done`).
    pub fn start_with(config: &Path, log: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let file = std::fs::File::create(log)?;
        let child = Command::new(binary("edge-agent"))
            .arg("run")
            .args(args)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()?;
        let mut p = Self {
            telemetry: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            log: log.to_path_buf(),
            child: Some(child),
        };
        let mut found = None;
        let _ = eventually(Duration::from_secs(30), || {
            found = telemetry_addr(&p.log_text());
            found.is_some()
        });
        p.telemetry = found
            .ok_or_else(|| anyhow::anyhow!("no telemetry endpoint; log:\n{}", p.log_text()))?;
        Ok(p)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it still runs.
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        let child = self.child.as_mut()?;
        let _ = eventually(limit, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    /// `/metrics`, or empty when unreachable.
    pub fn metrics(&self) -> String {
        http_get(self.telemetry, "/metrics")
            .map(|(_, b)| String::from_utf8_lossy(&b).to_string())
            .unwrap_or_default()
    }

    /// `/readyz`: status and body.
    pub fn readyz(&self) -> (u16, String) {
        http_get(self.telemetry, "/readyz")
            .map(|(s, b)| (s, String::from_utf8_lossy(&b).to_string()))
            .unwrap_or((0, String::new()))
    }

    /// The value of `cascade_edge_{name}` with all of `labels`, summed over the other labels.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics(), &format!("cascade_edge_{name}"), labels)
    }
}

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The value of `name` with all of `labels` on the analyzer's `/metrics` at `api` (NaN when
/// unreachable).
pub fn api_metric(api: std::net::SocketAddr, name: &str, labels: &[(&str, &str)]) -> f64 {
    http_get(api, "/metrics")
        .map(|(_, b)| metric_value(&String::from_utf8_lossy(&b), name, labels))
        .unwrap_or(f64::NAN)
}

/// Sends `signal` (such as `STOP` or `CONT`) to process `pid` with `kill`.
pub fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
    Ok(())
}

/// `local=ADDR` on the telemetry endpoint's log line.
fn telemetry_addr(log: &str) -> Option<std::net::SocketAddr> {
    log.lines()
        .find(|l| l.contains("telemetry endpoint"))?
        .split_whitespace()
        .find_map(|w| w.strip_prefix("local="))?
        .parse()
        .ok()
}

/// Sums the samples of metric `name` (Prometheus text format) that carry every one of `labels`.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// For RTSP tests: a real Mosquitto and a subscriber to `topic`, or `None` (saying why) when this
/// machine lacks GStreamer's RTSP server or Mosquitto (`scripts/setup.sh` installs both).
pub fn rtsp_broker(dir: &Path, topic: &str) -> Option<(Mosquitto, Received)> {
    if !RtspServer::available() {
        eprintln!(
            "SKIPPED: GStreamer's RTSP server is not installed (scripts/setup.sh installs it)"
        );
        return None;
    }
    let bin = mosquitto_binary()?;
    let broker = Mosquitto::start(bin, dir, true).expect("mosquitto");
    let sub = subscribe(broker.port, &broker.certs, topic);
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("subscribed");
    Some((broker, sub))
}

/// A real RTSP server (GStreamer's rtsp-server, `tests/rtsp/server.py`) on a loopback port,
/// serving a clip at `rtsp://127.0.0.1:PORT/cam`; killed on drop.
pub struct RtspServer {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl RtspServer {
    /// Whether this machine can run it (Debian's python3 with GStreamer's RTSP server bindings).
    pub fn available() -> bool {
        Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import gi; gi.require_version('GstRtspServer', '1.0')",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Serves `clip` (MP4, H.264) in a loop in real time; `auth` = (user, password) for basic
    /// authentication; `codec` is `h264` or `h265` (a codec cascade refuses).
    pub fn start(clip: &Path, auth: Option<(&str, &str)>, codec: &str) -> anyhow::Result<Self> {
        let mut args = vec![
            "--clip".to_string(),
            clip.display().to_string(),
            "--codec".into(),
            codec.into(),
        ];
        if let Some((u, p)) = auth {
            args.extend(["--user".into(), u.into(), "--password".into(), p.into()]);
        }
        let mut s = Self {
            port: free_port(),
            args,
            child: None,
        };
        s.restart()?;
        Ok(s)
    }

    /// Starts the server again on the same port (after [`RtspServer::kill`]).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        use std::io::BufRead;
        let script = repo_root().join("tests/rtsp/server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg("--port")
            .arg(self.port.to_string())
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        anyhow::ensure!(
            line.starts_with("ready"),
            "RTSP server did not start: {line}"
        );
        self.child = Some(child);
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }

    /// Serves `clip` from the next [`RtspServer::restart`] on (a camera whose resolution changed).
    pub fn set_clip(&mut self, clip: &Path) {
        if let Some(i) = self.args.iter().position(|a| a == "--clip") {
            self.args[i + 1] = clip.display().to_string();
        }
    }

    /// The camera wedges: sessions stay open, no video is sent (until [`RtspServer::resume`]).
    pub fn stall(&self) -> anyhow::Result<()> {
        self.signal("-USR1")
    }

    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-USR2")
    }

    fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the RTSP server is not running"))?;
        let ok = Command::new("kill")
            .arg(sig)
            .arg(child.id().to_string())
            .status()?
            .success();
        anyhow::ensure!(ok, "kill {sig} failed");
        Ok(())
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the camera vanishes mid-stream.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes `dir/edge.toml` for supervised-camera tests: device `dev-e2e`, the given `[[camera]]`
/// tables, the generated INT8 detector with extra `[detector]` lines, fast restarts (`[supervisor]`:
/// 5 s stall, 0.2-2 s backoff), TLS to the broker on `port`, telemetry on a free port.
pub fn write_cameras_config(
    dir: &Path,
    port: u16,
    certs: &Certs,
    cameras: &str,
    detector: &str,
) -> PathBuf {
    let text = format!(
        r#"[device]
id = "dev-e2e"

{cameras}

[detector]
manifest = "{manifest}"
threads = 1
{detector}

[tracker]
reupload_interval_s = 1.0

[buffer]
dir = "{buffer}"

[uplink]
host = "localhost"
port = {port}
ca_file = "{ca}"
client_cert_file = "{cert}"
client_key_file = "{key}"
{uplink}

[telemetry]
listen = "127.0.0.1:0"

[supervisor]
stall_timeout_s = 5
restart_backoff_min_s = 0.2
restart_backoff_max_s = 2
"#,
        manifest = repo_root().join("models/blob-yolov8-int8.toml").display(),
        buffer = dir.join("buffer").display(),
        uplink = OBSERVED_ONLY,
        ca = certs.ca.display(),
        cert = certs.client_cert.display(),
        key = certs.client_key.display(),
    );
    let path = dir.join("edge.toml");
    std::fs::write(&path, text).expect("edge config");
    path
}
