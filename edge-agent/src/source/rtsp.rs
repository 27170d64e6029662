//! RTSP cameras with `retina`: an async producer on the runtime feeds the blocking decoder through
//! a bounded channel ([`super::ChannelSource`]). H.264 only (other codecs are refused, named);
//! Annex B with the parameter sets before every key frame; nothing is sent before the first key
//! frame (no decoding garbage from P-frames after a reconnect). Every failure (refused, timeout,
//! teardown, end of stream, no data for `timeout`) ends the stream with an error, and the camera's
//! supervisor reconnects with backoff. Credentials never reach logs or metrics: URLs are redacted.

use std::time::Duration;

use cascade_shared::shutdown::Shutdown;
use futures_util::StreamExt;
use retina::client::{
    Credentials, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat};

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

/// Starts the producer for `s` on `rt`; it stops with `stop`. Returns the capture thread's source.
pub fn open(s: &RtspSettings, rt: &tokio::runtime::Handle, stop: &Shutdown) -> ChannelSource {
    let (tx, src) = channel(8, true);
    let (s, stop) = (s.clone(), stop.clone());
    rt.spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            r = stream(&s, &tx) => {
                if let Err(e) = r {
                    let _ = tx.send(Err(e)).await;
                }
            }
        }
    });
    src
}

fn rtsp_err(s: &RtspSettings, e: impl std::fmt::Display) -> SourceError {
    SourceError::Rtsp {
        url: redact(&s.url),
        reason: e.to_string(),
    }
}

async fn timed<T, E: std::fmt::Display>(
    s: &RtspSettings,
    what: &str,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(s.timeout, f).await {
        Ok(r) => r.map_err(|e| rtsp_err(s, format!("{what}: {e}"))),
        Err(_) => Err(rtsp_err(
            s,
            format!("{what}: no answer in {:.0} s", s.timeout.as_secs_f64()),
        )),
    }
}

/// Connects, plays, and sends access units until an error.
async fn stream(s: &RtspSettings, tx: &PacketSender) -> Result<(), SourceError> {
    let mut session = describe(s).await?;
    let (index, codec) = session
        .streams()
        .iter()
        .enumerate()
        .find(|(_, st)| st.media() == "video")
        .map(|(i, st)| (i, st.encoding_name().to_ascii_lowercase()))
        .ok_or_else(|| rtsp_err(s, "the camera offers no video stream"))?;
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
    let mut demuxed = playing.demuxed().map_err(|e| rtsp_err(s, e))?;
    let mut keyframe_seen = false;
    loop {
        let item = match tokio::time::timeout(s.timeout, demuxed.next()).await {
            Err(_) => {
                return Err(rtsp_err(
                    s,
                    format!("no data for {:.0} s", s.timeout.as_secs_f64()),
                ));
            }
            Ok(None) => return Err(rtsp_err(s, "the server ended the stream")),
            Ok(Some(Err(e))) => return Err(rtsp_err(s, e)),
            Ok(Some(Ok(item))) => item,
        };
        let CodecItem::VideoFrame(frame) = item else {
            continue;
        };
        keyframe_seen |= frame.is_random_access_point();
        if !keyframe_seen {
            continue;
        }
        let ts = frame.timestamp();
        let pts_us = ts.elapsed() * 1_000_000 / i64::from(ts.clock_rate().get());
        let au = AccessUnit {
            data: frame.into_data(),
            pts_us,
            duration_us: 0,
        };
        if tx.send(Ok(Packet::Coded(au))).await.is_err() {
            return Ok(());
        }
    }
}

/// What a camera offers (for `edge-agent probe` and `check`).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub media: String,
    pub codec: String,
    /// Pixel width and height, when the SDP carries the parameter sets.
    pub size: Option<(u32, u32)>,
    pub fps: Option<f32>,
}

impl std::fmt::Display for StreamInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.media, self.codec)?;
        if let Some((w, h)) = self.size {
            write!(f, " {w}x{h}")?;
        }
        if let Some(fps) = self.fps {
            write!(f, " {fps:.1} fps")?;
        }
        Ok(())
    }
}

/// DESCRIBE only: the streams a camera offers, or why it could not be asked.
pub async fn probe(s: &RtspSettings) -> Result<Vec<StreamInfo>, SourceError> {
    let session = describe(s).await?;
    Ok(session
        .streams()
        .iter()
        .map(|st| StreamInfo {
            media: st.media().to_string(),
            codec: st.encoding_name().to_ascii_lowercase(),
            size: match st.parameters() {
                Some(retina::codec::ParametersRef::Video(v)) => Some(v.pixel_dimensions()),
                _ => None,
            },
            fps: st.framerate(),
        })
        .collect())
}

async fn describe(s: &RtspSettings) -> Result<Session<retina::client::Described>, SourceError> {
    let url = url::Url::parse(&s.url).map_err(|e| rtsp_err(s, e))?;
    let creds = match (&s.username, &s.password) {
        (Some(u), p) => Some(Credentials {
            username: u.clone(),
            password: p.clone().unwrap_or_default(),
        }),
        _ => None,
    };
    let opts = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("cascade-edge/{}", env!("CARGO_PKG_VERSION")));
    match tokio::time::timeout(s.timeout, Session::describe(url, opts)).await {
        Err(_) => Err(rtsp_err(
            s,
            format!("DESCRIBE: no answer in {:.0} s", s.timeout.as_secs_f64()),
        )),
        Ok(Err(e)) if e.status_code() == Some(401) => Err(SourceError::Auth {
            url: redact(&s.url),
        }),
        Ok(r) => r.map_err(|e| rtsp_err(s, format!("DESCRIBE: {e}"))),
    }
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
