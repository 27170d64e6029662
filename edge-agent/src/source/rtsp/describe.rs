//! Asking a camera what it offers (DESCRIBE), for the stream, `probe` and `check`; and turning
//! `retina`'s errors into failures the supervisor can count by reason.

use retina::client::{Credentials, Described, Session, SessionOptions};

use super::{RtspSettings, redact};
use crate::source::SourceError;

/// Why an RTSP session failed, for `camera_reconnects_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtspFailure {
    /// Nothing listens at the address (the camera is rebooting, or the port is wrong).
    Refused,
    /// No answer, or no video, within the timeout.
    Timeout,
    /// The server closed the connection or ended the stream.
    Ended,
    /// The path is not one the camera serves (404).
    NotFound,
    /// Anything else the server or the stream got wrong.
    Protocol,
    /// The config cannot work (e.g. a password variable that is not set): retried rarely.
    Config,
}

impl RtspFailure {
    pub fn label(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Timeout => "timeout",
            Self::Ended => "eof",
            Self::NotFound => "not_found",
            Self::Protocol => "rtsp_error",
            Self::Config => "config",
        }
    }

    /// Sorts a `retina` error by what it says (its types are opaque).
    pub fn of(e: &retina::Error) -> Self {
        if e.status_code() == Some(404) {
            return Self::NotFound;
        }
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("refused") {
            Self::Refused
        } else if text.starts_with("timeout") || text.contains("timed out") {
            Self::Timeout
        } else if ["eof", "reset by peer", "broken pipe", "closed"]
            .iter()
            .any(|w| text.contains(w))
        {
            Self::Ended
        } else {
            Self::Protocol
        }
    }
}

/// A failure of camera `s`; only the first line of `reason` is kept (retina appends packet dumps).
pub(super) fn failure(
    s: &RtspSettings,
    kind: RtspFailure,
    reason: impl std::fmt::Display,
) -> SourceError {
    let reason = reason.to_string();
    SourceError::Rtsp {
        url: redact(&s.url),
        kind,
        reason: reason.lines().next().unwrap_or_default().to_string(),
    }
}

/// A `retina` error during `what`, classified.
pub(super) fn retina_failure(s: &RtspSettings, what: &str, e: &retina::Error) -> SourceError {
    failure(s, RtspFailure::of(e), format!("{what}: {e}"))
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
    Ok(session.streams().iter().map(stream_info).collect())
}

fn stream_info(st: &retina::client::Stream) -> StreamInfo {
    StreamInfo {
        media: st.media().to_string(),
        codec: st.encoding_name().to_ascii_lowercase(),
        size: match st.parameters() {
            Some(retina::codec::ParametersRef::Video(v)) => Some(v.pixel_dimensions()),
            _ => None,
        },
        fps: st.framerate(),
    }
}

/// Connects and asks for the session description, within the timeout.
pub(super) async fn describe(s: &RtspSettings) -> Result<Session<Described>, SourceError> {
    let url = url::Url::parse(&s.url).map_err(|e| failure(s, RtspFailure::Config, e))?;
    let creds = s.username.as_ref().map(|u| Credentials {
        username: u.clone(),
        password: s.password.clone().unwrap_or_default(),
    });
    let opts = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("cascade-edge/{}", env!("CARGO_PKG_VERSION")));
    match tokio::time::timeout(s.timeout, Session::describe(url, opts)).await {
        Err(_) => Err(failure(
            s,
            RtspFailure::Timeout,
            format!("DESCRIBE: no answer in {:.0} s", s.timeout.as_secs_f64()),
        )),
        Ok(Err(e)) if e.status_code() == Some(401) => Err(SourceError::Auth {
            url: redact(&s.url),
        }),
        Ok(r) => r.map_err(|e| retina_failure(s, "DESCRIBE", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_have_stable_labels() {
        let labels: Vec<_> = [
            RtspFailure::Refused,
            RtspFailure::Timeout,
            RtspFailure::Ended,
            RtspFailure::NotFound,
            RtspFailure::Protocol,
            RtspFailure::Config,
        ]
        .iter()
        .map(|f| f.label())
        .collect();
        assert_eq!(
            labels,
            [
                "refused",
                "timeout",
                "eof",
                "not_found",
                "rtsp_error",
                "config"
            ]
        );
    }

    #[test]
    fn only_the_first_line_of_a_reason_is_kept() {
        let s = RtspSettings {
            url: "rtsp://u:pw@cam/x".into(),
            username: None,
            password: None,
            tcp: true,
            timeout: std::time::Duration::from_secs(1),
        };
        let e = failure(
            &s,
            RtspFailure::Protocol,
            "bad packet\n\nconn: 1.2.3.4\npkt: ...",
        );
        assert_eq!(e.to_string(), "rtsp://cam/x: bad packet");
        assert_eq!(e.label(), "rtsp_error");
    }
}
