//! The embedded broker (rumqttd) for a single machine. It runs on its own threads and shares the
//! analyzer's fate; production uses Mosquitto (`broker.mode = "external"`).
//!
//! Two listeners share one router: the configured one for devices, and a plain loopback one for
//! the analyzer's own MQTT client on a port chosen here (see [`start`] for why that cannot race).
//! They are started one by one (rather than with `rumqttd::Broker::start`, which starts every
//! listener at once and only logs one that fails to bind), so each bind's outcome comes back.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::task::Poll;
use std::time::Duration;

use rumqttd::protocol::v4::V4;
use rumqttd::{
    ConnectionSettings, LinkType, Router, RouterConfig, Server, ServerSettings, TlsConfig,
};

/// Fresh ports tried for the internal listener; each failure means another process bound the
/// port in the moment between our pick and rumqttd's bind.
const INTERNAL_ATTEMPTS: u32 = 8;

/// How long a listener's thread may take to report its bind.
const BIND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listener's socket could not be bound (address in use, no permission, ...).
    #[error("embedded broker: cannot listen on {addr} ({listener}): {source}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The listener's thread or its runtime could not be started.
    #[error("embedded broker: cannot start the {listener} listener: {source}")]
    Thread {
        listener: &'static str,
        #[source]
        source: io::Error,
    },
    /// The listener stopped (or never answered) before reporting its bind.
    #[error("embedded broker: the {listener} listener on {addr} stopped before listening")]
    Stopped {
        listener: &'static str,
        addr: SocketAddr,
    },
    /// Every fresh port tried for the internal listener was taken before rumqttd could bind it.
    #[error(
        "embedded broker: no free loopback port for the internal listener after {attempts} tries: {source}"
    )]
    NoFreePort {
        attempts: u32,
        #[source]
        source: io::Error,
    },
}

/// TLS material for the embedded broker.
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// With a CA, clients must present certificates signed by it.
    pub ca: Option<PathBuf>,
}

fn router_config() -> RouterConfig {
    RouterConfig {
        max_connections: 10_000,
        max_outgoing_packet_count: 200,
        max_segment_size: 100 * 1024 * 1024,
        max_segment_count: 10,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    }
}

fn server_settings(name: &str, listen: SocketAddr, tls: Option<Tls>) -> ServerSettings {
    ServerSettings {
        name: name.into(),
        listen,
        tls: tls.map(|t| TlsConfig::Rustls {
            capath: t.ca.map(|p| p.display().to_string()),
            certpath: t.cert.display().to_string(),
            keypath: t.key.display().to_string(),
        }),
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 16 * 1024 * 1024,
            max_inflight_count: 200,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

/// Starts the broker on `listen` (for devices) and on a plain loopback listener for the analyzer
/// itself, whose address it returns once both are bound and listening.
///
/// The internal port cannot race. rumqttd 0.20 binds a listener itself from a `SocketAddr`: it
/// takes no socket bound by us, and does not tell which port it bound for port 0, so the port must
/// be chosen before its bind. We pick one the kernel reports free (bind port 0, read, release); if
/// another process takes it before rumqttd binds it, rumqttd's bind fails with `AddrInUse`, which
/// [`listen_on`] returns (where `Broker::start` would only log it), and we try a fresh port. The
/// address returned is always one rumqttd's own socket holds and listens on, and a listening port
/// is exclusive (rumqttd sets no `SO_REUSEPORT`), so the analyzer can never connect to another
/// process's listener, and nobody can take the port from under it afterwards. (Restarting the
/// whole broker on a fresh port would not work: rumqttd cannot stop the device listener, whose port
/// would then be in use.)
pub fn start(listen: SocketAddr, tls: Option<Tls>) -> Result<SocketAddr, BrokerError> {
    start_with(listen, tls, loopback_candidate)
}

/// [`start`], with the internal listener's candidate addresses from `candidate`.
fn start_with(
    listen: SocketAddr,
    tls: Option<Tls>,
    mut candidate: impl FnMut() -> Result<SocketAddr, BrokerError>,
) -> Result<SocketAddr, BrokerError> {
    let router_tx = Router::new(0, router_config()).spawn();
    let devices = server_settings("v4", listen, tls);
    let tx = router_tx.clone();
    listen_on("devices", listen, move || Server::new(devices, tx, V4))?;
    let mut last = None;
    for _ in 0..INTERNAL_ATTEMPTS {
        let internal = candidate()?;
        let settings = server_settings("internal", internal, None);
        let tx = router_tx.clone();
        match listen_on("internal", internal, move || Server::new(settings, tx, V4)) {
            Ok(()) => {
                tracing::info!(%listen, %internal, "embedded broker listening");
                return Ok(internal);
            }
            Err(BrokerError::Bind { source, .. }) if source.kind() == io::ErrorKind::AddrInUse => {
                tracing::debug!(%internal, "internal listener port taken meanwhile; trying another");
                last = Some(source);
            }
            Err(e) => return Err(e),
        }
    }
    Err(BrokerError::NoFreePort {
        attempts: INTERNAL_ATTEMPTS,
        source: last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)),
    })
}

/// A loopback port the kernel reports free right now: only a candidate, as another process may
/// take it once released; [`start`] handles that.
fn loopback_candidate() -> Result<SocketAddr, BrokerError> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    std::net::TcpListener::bind(any)
        .and_then(|l| l.local_addr())
        .map_err(|source| BrokerError::Bind {
            listener: "internal",
            addr: any,
            source,
        })
}

/// Runs one rumqttd listener on its own thread (and single-threaded runtime, as rumqttd does)
/// and waits until it is bound and listening, or returns why it is not.
///
/// rumqttd's `Server::start` binds before anything it awaits can wait (tokio binds a `SocketAddr`
/// without waiting), so after its first poll the listener either listens or has returned its bind
/// error. The tests below pin this down.
fn listen_on(
    listener: &'static str,
    addr: SocketAddr,
    server: impl FnOnce() -> Server<V4> + Send + 'static,
) -> Result<(), BrokerError> {
    let (bound_tx, bound_rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(format!("broker-{listener}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(source) => {
                    let _ = bound_tx.send(Err(BrokerError::Thread { listener, source }));
                    return;
                }
            };
            let mut server = server();
            rt.block_on(async move {
                let mut serving = std::pin::pin!(server.start(LinkType::Remote));
                let first = std::future::poll_fn(|cx| Poll::Ready(serving.as_mut().poll(cx))).await;
                match first {
                    Poll::Pending => {
                        let _ = bound_tx.send(Ok(()));
                        if let Err(e) = serving.await {
                            tracing::error!(error = %e, listener, "embedded broker listener stopped");
                        }
                    }
                    Poll::Ready(Err(e)) => {
                        let _ = bound_tx.send(Err(BrokerError::Bind {
                            listener,
                            addr,
                            source: io_error(&e),
                        }));
                    }
                    Poll::Ready(Ok(())) => {
                        let _ = bound_tx.send(Err(BrokerError::Stopped { listener, addr }));
                    }
                }
            });
        })
        .map_err(|source| BrokerError::Thread { listener, source })?;
    bound_rx
        .recv_timeout(BIND_TIMEOUT)
        .unwrap_or(Err(BrokerError::Stopped { listener, addr }))
}

/// The I/O error inside rumqttd's (unnameable) server error, kind and OS code kept.
fn io_error(e: &(dyn std::error::Error + 'static)) -> io::Error {
    let inner =
        std::iter::successors(Some(e), |e| e.source()).find_map(|e| e.downcast_ref::<io::Error>());
    match inner {
        Some(io) => io.raw_os_error().map_or_else(
            || io::Error::new(io.kind(), io.to_string()),
            io::Error::from_raw_os_error,
        ),
        None => io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_listener(addr: SocketAddr) -> Result<(), BrokerError> {
        let router_tx = Router::new(0, router_config()).spawn();
        let settings = server_settings("test", addr, None);
        listen_on("test", addr, move || Server::new(settings, router_tx, V4))
    }

    #[test]
    fn a_taken_port_is_reported_as_address_in_use() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        match plain_listener(addr) {
            Err(BrokerError::Bind { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::AddrInUse, "{source}");
            }
            other => panic!("expected a bind error, got {other:?}"),
        }
    }

    #[test]
    fn a_started_listener_is_already_listening() {
        let addr = loopback_candidate().expect("candidate");
        plain_listener(addr).expect("listens");
        std::net::TcpStream::connect(addr).expect("accepts at once");
    }

    #[test]
    fn the_broker_answers_on_its_internal_listener_and_keeps_its_port() {
        let listen = loopback_candidate().expect("candidate");
        let internal = start(listen, None).expect("starts");
        assert!(internal.ip().is_loopback() && internal.port() != 0);
        std::net::TcpStream::connect(internal).expect("internal listener");
        std::net::TcpStream::connect(listen).expect("device listener");
        let again = std::net::TcpListener::bind(internal);
        assert!(again.is_err(), "the internal port is held by the broker");
    }

    #[test]
    fn an_internal_port_taken_meanwhile_is_replaced_by_a_fresh_one() {
        let thief = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let stolen = thief.local_addr().expect("addr");
        let mut candidates = vec![stolen, stolen];
        let listen = loopback_candidate().expect("candidate");
        let internal = start_with(listen, None, || match candidates.pop() {
            Some(a) => Ok(a),
            None => loopback_candidate(),
        })
        .expect("starts");
        assert_ne!(internal, stolen, "never the port another process holds");
        assert!(candidates.is_empty(), "both taken candidates were tried");
        std::net::TcpStream::connect(internal).expect("internal listener");
    }
}
