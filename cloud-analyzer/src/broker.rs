//! The embedded broker (rumqttd) for a single machine. It runs on its own threads and shares the
//! analyzer's fate; production uses Mosquitto (`broker.mode = "external"`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings, TlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("embedded broker: {0}")]
    Start(String),
}

/// TLS material for the embedded broker.
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// With a CA, clients must present certificates signed by it.
    pub ca: Option<PathBuf>,
}

fn config(listen: SocketAddr, tls: Option<Tls>, internal: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 16 * 1024 * 1024,
        max_inflight_count: 200,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let tls = tls.map(|t| TlsConfig::Rustls {
        capath: t.ca.map(|p| p.display().to_string()),
        certpath: t.cert.display().to_string(),
        keypath: t.key.display().to_string(),
    });
    let server = ServerSettings {
        name: "v4".into(),
        listen,
        tls,
        next_connection_delay_ms: 1,
        connections: connections.clone(),
    };
    // The analyzer's own connection: plain MQTT on loopback only.
    let own = ServerSettings {
        name: "internal".into(),
        listen: internal,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_000,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([
            ("v4".to_string(), server),
            ("internal".to_string(), own),
        ])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}

/// Starts the broker on `listen` (for devices) and `internal` (plain, loopback, for the analyzer)
/// and waits (up to 10 s) until both accept connections.
pub fn start(
    listen: SocketAddr,
    tls: Option<Tls>,
    internal: SocketAddr,
) -> Result<(), BrokerError> {
    let cfg = config(listen, tls, internal);
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            if let Err(e) = Broker::new(cfg).start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(|e| BrokerError::Start(e.to_string()))?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let probe = |a: SocketAddr| {
            let a = if a.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], a.port()))
            } else {
                a
            };
            std::net::TcpStream::connect(a).is_ok()
        };
        if probe(listen) && probe(internal) {
            tracing::info!(%listen, "embedded broker listening");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::Start(format!(
        "not listening on {listen} after 10 s"
    )))
}
