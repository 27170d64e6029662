//! RTSP cameras with `retina`: an async producer on the runtime feeds the blocking decoder through
//! a bounded channel ([`super::ChannelSource`]). H.264 only (other codecs are refused, named);
//! Annex B with the parameter sets before every key frame; nothing is sent before the first key
//! frame (no decoding garbage from P-frames after a reconnect). Every failure (refused, timeout,
//! teardown, end of stream, no video for `timeout`) ends the stream with an error classified by
//! [`RtspFailure`], and the camera's supervisor reconnects with backoff. RTCP sender reports give
//! capture times in UTC ([`super::timebase`]). Credentials never reach logs or metrics: URLs are redacted.

mod describe;

use std::sync::Arc;
use std::time::Duration;

use cascade_shared::clock::SharedClock;
use cascade_shared::shutdown::Shutdown;
use futures_util::StreamExt;
use retina::client::{
    PlayOptions, SetupOptions, TcpTransportOptions, Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat};

pub use describe::{RtspFailure, StreamInfo, probe};
use describe::{describe, failure, retina_failure};

use super::timebase::{Learned, TimeBase, ntp_to_unix_us};
use super::{AccessUnit, ChannelSource, Packet, PacketSender, SourceError, channel};

/// How to reach one RTSP camera.
#[derive(Clone, PartialEq, Eq)]
pub struct RtspSettings {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// RTP over the RTSP TCP connection (true, the default) or over UDP.
    pub tcp: bool,
    /// Connect, DESCRIBE/SETUP/PLAY, and the longest wait for the next frame.
    pub timeout: Duration,
}

impl std::fmt::Debug for RtspSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspSettings")
            .field("url", &redact(&self.url))
            .field("username", &self.username.as_ref().map(|_| "***"))
            .field("tcp", &self.tcp)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RtspSettings {
    /// From a camera's config; the password from `password_env` when that is set.
    pub fn from_config(
        url: &str,
        username: Option<&str>,
        password: Option<&str>,
        password_env: Option<&str>,
        tcp: bool,
        timeout: Duration,
    ) -> Result<Self, SourceError> {
        let password = match password_env {
            Some(var) => Some(std::env::var(var).map_err(|_| SourceError::Rtsp {
                url: redact(url),
                kind: RtspFailure::Config,
                reason: format!("password_env {var} is not set"),
            })?),
            None => password.map(str::to_string),
        };
        Ok(Self {
            url: url.to_string(),
            username: username.map(str::to_string),
            password,
            tcp,
            timeout,
        })
    }
}

/// `url` without user and password, for logs and metrics.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<not a URL>".to_string(),
    }
}

/// Starts the producer for `s` on `rt`; it stops with `stop`. Returns the capture thread's source,
/// which carries the time base the camera's RTCP sender reports teach.
pub fn open(
    s: &RtspSettings,
    rt: &tokio::runtime::Handle,
    clock: &SharedClock,
    stop: &Shutdown,
) -> ChannelSource {
    let (tx, src) = channel(8, true);
    let base = Arc::new(TimeBase::default());
    let src = src.with_time_base(base.clone());
    let (s, clock, stop) = (s.clone(), clock.clone(), stop.clone());
    rt.spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            r = stream(&s, &tx, &base, &clock) => {
                if let Err(e) = r {
                    let _ = tx.send(Err(e)).await;
                }
            }
        }
    });
    src
}

async fn timed<T>(
    s: &RtspSettings,
    what: &str,
    f: impl Future<Output = Result<T, retina::Error>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(s.timeout, f).await {
        Ok(r) => r.map_err(|e| retina_failure(s, what, &e)),
        Err(_) => Err(failure(
            s,
            RtspFailure::Timeout,
            format!("{what}: no answer in {:.0} s", s.timeout.as_secs_f64()),
        )),
    }
}

/// Connects, plays, and sends access units until an error.
async fn stream(
    s: &RtspSettings,
    tx: &PacketSender,
    base: &TimeBase,
    clock: &SharedClock,
) -> Result<(), SourceError> {
    let mut session = describe(s).await?;
    let (index, codec) = session
        .streams()
        .iter()
        .enumerate()
        .find(|(_, st)| st.media() == "video")
        .map(|(i, st)| (i, st.encoding_name().to_ascii_lowercase()))
        .ok_or_else(|| {
            failure(
                s,
                RtspFailure::Protocol,
                "the camera offers no video stream",
            )
        })?;
    if codec != "h264" {
        return Err(SourceError::Codec {
            url: redact(&s.url),
            codec,
        });
    }
    let transport = if s.tcp {
        Transport::Tcp(TcpTransportOptions::default())
    } else {
        Transport::Udp(UdpTransportOptions::default())
    };
    let setup = SetupOptions::default()
        .transport(transport)
        .frame_format(FrameFormat::SIMPLE);
    timed(s, "SETUP", session.setup(index, setup)).await?;
    let playing = timed(s, "PLAY", session.play(PlayOptions::default())).await?;
    let demuxed = playing
        .demuxed()
        .map_err(|e| retina_failure(s, "PLAY", &e))?;
    Playing {
        s,
        tx,
        base,
        clock,
        keyframe_seen: false,
    }
    .run(demuxed)
    .await
}

/// A playing session: video frames to the decoder from the first key frame on, sender reports to
/// the time base. Fails when no video arrives for `timeout` (RTCP alone keeps nothing alive).
struct Playing<'a> {
    s: &'a RtspSettings,
    tx: &'a PacketSender,
    base: &'a TimeBase,
    clock: &'a SharedClock,
    keyframe_seen: bool,
}

impl Playing<'_> {
    async fn run(
        mut self,
        mut demuxed: impl futures_util::Stream<Item = Result<CodecItem, retina::Error>> + Unpin,
    ) -> Result<(), SourceError> {
        let s = self.s;
        let mut deadline = tokio::time::Instant::now() + s.timeout;
        loop {
            let item = match tokio::time::timeout_at(deadline, demuxed.next()).await {
                Err(_) => {
                    let what = format!("no video for {:.0} s", s.timeout.as_secs_f64());
                    return Err(failure(s, RtspFailure::Timeout, what));
                }
                Ok(None) => {
                    return Err(failure(
                        s,
                        RtspFailure::Ended,
                        "the server ended the stream",
                    ));
                }
                Ok(Some(Err(e))) => return Err(retina_failure(s, "stream", &e)),
                Ok(Some(Ok(item))) => item,
            };
            match item {
                CodecItem::VideoFrame(frame) => {
                    deadline = tokio::time::Instant::now() + s.timeout;
                    if !self.video(frame).await {
                        return Ok(());
                    }
                }
                CodecItem::Rtcp(rtcp) => self.rtcp(&rtcp),
                _ => {}
            }
        }
    }

    /// Sends a frame on; false when the capture thread is gone.
    async fn video(&mut self, frame: retina::codec::VideoFrame) -> bool {
        if frame.has_new_parameters() {
            tracing::info!(
                url = %redact(&self.s.url),
                "new H.264 parameters in the stream"
            );
        }
        self.keyframe_seen |= frame.is_random_access_point();
        if !self.keyframe_seen {
            return true;
        }
        let ts = frame.timestamp();
        let au = AccessUnit {
            pts_us: stream_us(ts),
            data: frame.into_data(),
            duration_us: 0,
        };
        self.tx.send(Ok(Packet::Coded(au))).await.is_ok()
    }

    /// A sender report ties stream time to the camera's NTP clock.
    fn rtcp(&self, rtcp: &retina::rtcp::ReceivedCompoundPacket) {
        let Some(ts) = rtcp.rtp_timestamp() else {
            return;
        };
        let report = rtcp
            .pkts()
            .find_map(|p| p.as_sender_report().ok().flatten());
        let Some(sr) = report else {
            return;
        };
        let utc = ntp_to_unix_us(sr.ntp_timestamp().0);
        if let Learned::Skewed(seconds) =
            self.base.learn(utc, stream_us(ts), self.clock.now_utc_us())
        {
            tracing::debug!(
                url = %redact(&self.s.url),
                skew_s = seconds,
                "the camera's clock is off ours: capture times use the wall clock"
            );
        }
    }
}

/// Stream time in microseconds from the stream's start.
fn stream_us(ts: retina::Timestamp) -> i64 {
    ts.elapsed() * 1_000_000 / i64::from(ts.clock_rate().get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact("rtsp://admin:hunter2@10.0.0.5:554/Streaming/101"),
            "rtsp://10.0.0.5:554/Streaming/101"
        );
        assert_eq!(redact("rtsp://cam/live"), "rtsp://cam/live");
        assert_eq!(redact("not a url"), "<not a URL>");
        let s = RtspSettings {
            url: "rtsp://u:secret@cam/x".into(),
            username: Some("u".into()),
            password: Some("secret".into()),
            tcp: true,
            timeout: Duration::from_secs(5),
        };
        assert!(!format!("{s:?}").contains("secret"));
    }
}
