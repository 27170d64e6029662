//! The uplink against a real Mosquitto over TLS: every crop is acknowledged exactly once in the
//! buffer, killing and restarting the broker mid-stream loses nothing (counted by message id on an
//! independent subscriber), and under receipts a crop leaves the buffer only when a receipt names
//! it, being sent again when none comes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cascade_shared::clock::{SharedClock, SystemClock};
use cascade_shared::config::edge::{UplinkConfig, raw};
use cascade_shared::receipt::Receipt;
use cascade_shared::shutdown::Shutdown;
use cascade_shared::wire::{self, BoxPx, Compression, Crop};
use cascade_tests::publish_all;
use cascade_tests::{Mosquitto, eventually, mosquitto_binary, subscribe};
use edge_agent::buffer::{Buffer, Limits, NewRecord};
use edge_agent::telemetry::Telemetry;
use edge_agent::uplink::{Uplink, store_crop};

const N: usize = 400;

fn crop(i: usize) -> Crop {
    Crop {
        message_id: format!("msg-{i:05}"),
        device_id: "dev-1".into(),
        camera_id: "cam-1".into(),
        sequence: 0,
        capture_time_us: 1_700_000_000_000_000 + i as i64,
        frame_width: 640,
        frame_height: 480,
        r#box: Some(BoxPx {
            x1: 10.0,
            y1: 10.0,
            x2: 50.0,
            y2: 150.0,
        }),
        crop_region: Some(BoxPx {
            x1: 5.0,
            y1: 0.0,
            x2: 55.0,
            y2: 170.0,
        }),
        class_id: 0,
        class_name: "person".into(),
        score: 0.9,
        model_name: "test".into(),
        model_version: "1".into(),
        track_id: 1,
        jpeg: vec![(i % 251) as u8; 20_000],
        event: 0,
    }
}

fn uplink_config(broker: &Mosquitto, delivery: &str) -> UplinkConfig {
    toml::from_str::<raw::UplinkConfig>(&format!(
        "host = \"localhost\"\nport = {}\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n\
         max_inflight = 8\nkeep_alive_s = 5\nreconnect_max_s = 1.0\ndelivery = \"{delivery}\"\nreceipt_timeout_s = 5",
        broker.port,
        broker.certs.ca.display(),
        broker.certs.client_cert.display(),
        broker.certs.client_key.display()
    ))
    .expect("uplink config")
    .validated()
    .expect("valid uplink config")
}

/// A fresh buffer in `dir` bounded far above what the tests put in it.
fn open_buffer(dir: &std::path::Path) -> Arc<Buffer> {
    let limits = Limits {
        max_bytes: 1 << 30,
        max_age_us: i64::MAX / 2,
    };
    Arc::new(Buffer::open(dir, limits).expect("buffer"))
}

/// Commits crops `ids` (one transaction) with their sequence numbers.
fn push_crops(buffer: &Buffer, ids: impl Iterator<Item = usize>) {
    let records = ids
        .map(|i| NewRecord {
            camera: "cam-1",
            build: Box::new(move |seq| {
                store_crop(
                    &Crop {
                        sequence: seq,
                        ..crop(i)
                    },
                    Compression::None,
                )
            }),
        })
        .collect();
    buffer.push(0, records).expect("push");
}

/// An uplink of `dev-1` running on its own runtime until `shutdown`.
struct Running {
    rt: tokio::runtime::Runtime,
    task: tokio::task::JoinHandle<()>,
    shutdown: Shutdown,
    telemetry: Arc<Telemetry>,
}

impl Running {
    fn start(cfg: &UplinkConfig, buffer: &Arc<Buffer>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        Self::start_on(rt, cfg, buffer)
    }

    fn start_on(rt: tokio::runtime::Runtime, cfg: &UplinkConfig, buffer: &Arc<Buffer>) -> Self {
        let telemetry = Telemetry::new("dev-1");
        let clock: SharedClock = Arc::new(SystemClock);
        let wake = Arc::new(tokio::sync::Notify::new());
        let uplink = Uplink::new("dev-1", cfg, buffer.clone(), telemetry.clone(), clock, wake);
        let options = uplink.options(cfg).expect("options");
        let shutdown = Shutdown::new();
        let task = rt.spawn(uplink.run(options, shutdown.clone()));
        Self {
            rt,
            task,
            shutdown,
            telemetry,
        }
    }

    fn stop(self) {
        self.shutdown.cancel();
        self.rt.block_on(self.task).expect("uplink task");
    }
}

/// Under `delivery = "puback"` (no analyzer sends receipts here): the PUBACK path alone.
#[test]
fn broker_killed_mid_stream_loses_nothing() {
    let Some(bin) = mosquitto_binary() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Mosquitto::start(bin, dir.path(), true).expect("mosquitto starts");
    let sub = subscribe(broker.port, &broker.certs, "cascade/v1/dev-1/crops");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("subscribed");

    let buffer = open_buffer(&dir.path().join("buffer"));
    for chunk in (0..N).collect::<Vec<_>>().chunks(50) {
        push_crops(&buffer, chunk.iter().copied());
    }
    let up = Running::start(&uplink_config(&broker, "puback"), &buffer);
    let telemetry = up.telemetry.clone();

    // Kill the broker once a part of the stream got through, then bring it back.
    eventually(Duration::from_secs(30), || sub.len() >= N / 8).expect("stream started");
    broker.kill();
    let acked_before_restart = telemetry.total("crops_uploaded_total");
    assert!(
        (acked_before_restart as usize) < N,
        "the kill must land mid-stream"
    );
    // The subscriber is only an observer, with a clean session: what the broker acknowledges
    // while it is not subscribed never reaches it. Let it notice the kill, and let the uplink's
    // backoff grow to its 1 s cap, so that the observer (retrying every 20 ms) is subscribed again
    // before the uplink reconnects and resends.
    eventually(Duration::from_secs(10), || !sub.is_subscribed()).expect("observer saw the kill");
    std::thread::sleep(Duration::from_millis(1500));
    broker.restart().expect("mosquitto restarts");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("resubscribed");

    eventually(Duration::from_secs(60), || buffer.stats().records == 0)
        .expect("buffer drains after the restart");
    up.stop();

    assert_eq!(
        telemetry.total("crops_uploaded_total") as usize,
        N,
        "each crop acknowledged exactly once"
    );
    assert!(telemetry.total("mqtt_disconnects_total") >= 1.0);
    let missing = || {
        let ids: HashSet<String> = sub
            .all()
            .iter()
            .map(|p| wire::decode(p).expect("valid crop").1.message_id)
            .collect();
        (0..N)
            .filter(|i| !ids.contains(&format!("msg-{i:05}")))
            .collect::<Vec<_>>()
    };
    // The broker acknowledges before the subscriber has read the last messages: allow for that.
    let _ = eventually(Duration::from_secs(10), || missing().is_empty());
    let missing = missing();
    assert!(
        missing.is_empty(),
        "lost across the broker restart: {missing:?}"
    );
    eprintln!(
        "{} payloads received for {N} crops ({} duplicates, allowed)",
        sub.len(),
        sub.len() - N
    );
}

/// A broker that accepts connections and publishes but never acknowledges them (a stuck session).
/// Returns (connections, publishes) counters.
async fn silent_broker(
    listener: tokio::net::TcpListener,
) -> (
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (conns, pubs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, p) = (conns.clone(), pubs.clone());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let p = p.clone();
            tokio::spawn(async move {
                loop {
                    // Fixed header: type byte, then the remaining length as a varint.
                    let Ok(kind) = sock.read_u8().await else {
                        return;
                    };
                    let (mut len, mut shift) = (0usize, 0);
                    loop {
                        let Ok(b) = sock.read_u8().await else { return };
                        len |= usize::from(b & 0x7F) << shift;
                        shift += 7;
                        if b & 0x80 == 0 {
                            break;
                        }
                    }
                    let mut body = vec![0; len];
                    if sock.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let reply: &[u8] = match kind >> 4 {
                        1 => &[0x20, 0x02, 0x00, 0x00], // CONNECT -> CONNACK accepted
                        12 => &[0xD0, 0x00],            // PINGREQ -> PINGRESP
                        3 => {
                            p.fetch_add(1, Ordering::SeqCst); // PUBLISH: never acknowledged
                            &[]
                        }
                        _ => &[],
                    };
                    if !reply.is_empty() && sock.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (conns, pubs)
}

#[test]
fn a_publish_never_acknowledged_is_sent_again_after_the_ack_timeout() {
    use std::sync::atomic::Ordering;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (conns, pubs) = rt.block_on(silent_broker(listener));
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = open_buffer(dir.path());
    push_crops(&buffer, 1..2);
    // Plain TCP is allowed on loopback for this stand-in broker.
    let cfg = toml::from_str::<raw::UplinkConfig>(&format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = false\nack_timeout_s = 5.0\nkeep_alive_s = 30"
    ))
    .expect("config")
    .validated()
    .expect("valid config");
    let up = Running::start_on(rt, &cfg, &buffer);
    let telemetry = up.telemetry.clone();
    // The status and the crop, then after 5 s without PUBACK a reconnect and both again.
    eventually(Duration::from_secs(20), || {
        conns.load(Ordering::SeqCst) >= 2 && pubs.load(Ordering::SeqCst) >= 4
    })
    .unwrap_or_else(|_| {
        panic!(
            "connections {}, publishes {}",
            conns.load(Ordering::SeqCst),
            pubs.load(Ordering::SeqCst)
        )
    });
    up.stop();
    assert_eq!(
        buffer.stats().records,
        1,
        "never acknowledged, so still buffered"
    );
    assert!(telemetry.total("mqtt_disconnects_total") >= 1.0);
}

/// Under receipts, against a real Mosquitto: the broker's PUBACK deletes nothing; a receipt deletes
/// exactly the crops it names; crops no receipt names are sent again after `receipt_timeout_s`
/// and deleted on their own receipt.
#[test]
fn a_crop_leaves_the_buffer_only_on_its_receipt() {
    let Some(bin) = mosquitto_binary() else {
        return;
    };
    const M: usize = 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Mosquitto::start(bin, dir.path(), true).expect("mosquitto starts");
    let sub = subscribe(broker.port, &broker.certs, "cascade/v1/dev-1/crops");
    eventually(Duration::from_secs(10), || sub.is_subscribed()).expect("subscribed");
    let buffer = open_buffer(&dir.path().join("buffer"));
    push_crops(&buffer, 0..M);
    let up = Running::start(&uplink_config(&broker, "receipt"), &buffer);
    let telemetry = up.telemetry.clone();

    eventually(Duration::from_secs(20), || sub.len() >= M).expect("every crop reached the broker");
    let awaiting = || telemetry.total("crops_awaiting_receipt") as usize;
    eventually(Duration::from_secs(10), || awaiting() == M)
        .expect("all acknowledged by the broker");
    assert_eq!(buffer.stats().records, M as u64, "a PUBACK deletes nothing");
    let receipt = |ids: std::ops::Range<usize>| {
        let r = Receipt {
            stored: ids.map(|i| format!("msg-{i:05}")).collect(),
            rejected: vec![],
        };
        publish_all(
            broker.port,
            &broker.certs,
            "cascade/v1/dev-1/receipts",
            vec![r.encode()],
        )
        .expect("receipt published");
    };
    receipt(0..M / 2);
    eventually(Duration::from_secs(10), || {
        buffer.stats().records == (M / 2) as u64
    })
    .expect("the receipt deletes what it names");
    // No receipt for the rest: after 5 s they are sent again (the subscriber sees them twice).
    eventually(Duration::from_secs(20), || sub.len() >= M + M / 2).expect("sent again");
    assert_eq!(telemetry.total("crops_resent_total") as usize, M / 2);
    assert_eq!(
        buffer.stats().records,
        (M / 2) as u64,
        "still held until named"
    );
    receipt(M / 2..M);
    eventually(Duration::from_secs(10), || buffer.stats().records == 0).expect("drained");
    up.stop();
    assert_eq!(
        telemetry.total("crops_uploaded_total") as usize,
        M,
        "each delivered once"
    );
    assert_eq!(
        telemetry.total("mqtt_disconnects_total"),
        1.0,
        "only the clean shutdown"
    );
}
