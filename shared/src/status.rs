//! The device's retained status message on `cascade/v1/{device_id}/status`: whether the agent is
//! online, and the state of each of its cameras, so the cloud (and any subscriber) knows which
//! cameras of a device are down and why. JSON:
//!
//! ```json
//! {"state":"online",
//!  "agent":{"version":"0.1.0","profile":"x86_64-cpu",
//!           "models":[{"name":"yolov8n-int8-static","version":"8.0-int8-qdq","input":640,"sha256":"d639..."}]},
//!  "cameras":[{"id":"front","state":"streaming"},
//!             {"id":"yard","state":"backoff","reason":"rtsp://cam/1: ..."}]}
//! ```
//!
//! `agent` (what runs: the agent's version, its hardware profile, each model file loaded with the
//! sha256 it was checked against) lets a fleet rollout watch which devices run what
//! (design/ota.md); it is absent from the messages of earlier agents and from the offline message.
//! The last will (and a clean goodbye) is `{"state":"offline"}`. Decoding also takes the plain
//! `online` / `offline` of earlier agents.

use serde::{Deserialize, Serialize};

use crate::topics::valid_id;

/// Longest status message accepted (a device with many failing cameras stays far below).
pub const MAX_STATUS_BYTES: usize = 64 * 1024;
/// Reasons are cut to this many characters on the wire.
pub const MAX_REASON_CHARS: usize = 300;
/// Most model entries read from a status message.
pub const MAX_MODELS: usize = 16;
/// Longest version, profile or model name read from a status message.
pub const MAX_NAME_CHARS: usize = 128;

/// Whether the agent is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    Offline,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }
}

/// What one camera is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraPhase {
    /// Opening its source, or waiting for the first frame.
    Connecting,
    /// Delivering frames.
    Streaming,
    /// Waiting to reconnect after a failure (`reason` says which).
    Backoff,
    /// Failed in a way retrying cannot fix without a person (`reason` says what to change).
    Failed,
    /// Its input ended (a file played once).
    Ended,
}

impl CameraPhase {
    /// Down: not delivering frames because something went wrong.
    pub fn is_down(self) -> bool {
        matches!(self, Self::Backoff | Self::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraStatus {
    pub id: String,
    pub state: CameraPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One model file the agent loaded: its manifest's name and version, the input side of this
/// file (a ladder loads one file per side), and the sha256 the file was checked against at load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<u32>,
    pub sha256: String,
}

/// What runs on the device: the agent's version, its hardware profile's name, the models loaded.
/// Unknown fields are ignored so a newer agent can say more to an older analyzer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelVersion>,
}

impl AgentInfo {
    /// Within the bounds a reader accepts: names cut to [`MAX_NAME_CHARS`], at most
    /// [`MAX_MODELS`] models.
    fn bounded(mut self) -> Self {
        cut(&mut self.version, MAX_NAME_CHARS);
        if let Some(p) = &mut self.profile {
            cut(p, MAX_NAME_CHARS);
        }
        self.models.truncate(MAX_MODELS);
        for m in &mut self.models {
            cut(&mut m.name, MAX_NAME_CHARS);
            cut(&mut m.version, MAX_NAME_CHARS);
            cut(&mut m.sha256, 64);
        }
        self
    }
}

fn cut(s: &mut String, max: usize) {
    if s.chars().count() > max {
        *s = s.chars().take(max).collect();
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub state: Presence,
    /// Absent in earlier agents' messages and in the offline message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cameras: Vec<CameraStatus>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatusError {
    #[error("status message of {len} bytes is over the {MAX_STATUS_BYTES}-byte limit")]
    TooLarge { len: usize },
    #[error("status message is not valid: {0}")]
    Invalid(String),
    #[error("status message names a camera with an invalid id: {0:?}")]
    BadCameraId(String),
}

impl DeviceStatus {
    pub fn offline() -> Self {
        Self {
            state: Presence::Offline,
            agent: None,
            cameras: Vec::new(),
        }
    }

    /// How many cameras are down.
    pub fn cameras_down(&self) -> usize {
        self.cameras.iter().filter(|c| c.state.is_down()).count()
    }

    /// JSON, with reasons cut to [`MAX_REASON_CHARS`].
    pub fn encode(&self) -> Vec<u8> {
        let mut s = self.clone();
        for c in &mut s.cameras {
            if let Some(r) = &mut c.reason {
                cut(r, MAX_REASON_CHARS);
            }
        }
        s.agent = s.agent.map(AgentInfo::bounded);
        serde_json::to_vec(&s).unwrap_or_default()
    }

    /// Reads a status message: JSON, or the plain `online` / `offline` of earlier agents.
    pub fn decode(payload: &[u8]) -> Result<Self, StatusError> {
        if payload.len() > MAX_STATUS_BYTES {
            return Err(StatusError::TooLarge { len: payload.len() });
        }
        match payload.trim_ascii() {
            b"online" => {
                return Ok(Self {
                    state: Presence::Online,
                    agent: None,
                    cameras: Vec::new(),
                });
            }
            b"offline" => return Ok(Self::offline()),
            _ => {}
        }
        let mut s: Self =
            serde_json::from_slice(payload).map_err(|e| StatusError::Invalid(e.to_string()))?;
        s.agent = s.agent.map(AgentInfo::bounded);
        if let Some(bad) = s.cameras.iter().find(|c| !valid_id(&c.id)) {
            return Err(StatusError::BadCameraId(bad.id.chars().take(80).collect()));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn online(cameras: Vec<CameraStatus>) -> DeviceStatus {
        DeviceStatus {
            state: Presence::Online,
            agent: None,
            cameras,
        }
    }

    fn agent() -> AgentInfo {
        AgentInfo {
            version: "0.2.0".into(),
            profile: Some("x86_64-cpu".into()),
            models: vec![ModelVersion {
                name: "blob-yolov8-int8".into(),
                version: "1".into(),
                input: Some(128),
                sha256: "b51e4efb6d2111f7007142848d80ff906910980a110ef753976e5d9b2b9aa783".into(),
            }],
        }
    }

    #[test]
    fn the_agent_says_what_it_runs_and_earlier_messages_still_read() {
        let s = DeviceStatus {
            agent: Some(agent()),
            ..online(vec![])
        };
        let json = String::from_utf8(s.encode()).expect("utf-8");
        assert_eq!(
            json,
            r#"{"state":"online","agent":{"version":"0.2.0","profile":"x86_64-cpu","models":[{"name":"blob-yolov8-int8","version":"1","input":128,"sha256":"b51e4efb6d2111f7007142848d80ff906910980a110ef753976e5d9b2b9aa783"}]}}"#
        );
        assert_eq!(DeviceStatus::decode(json.as_bytes()), Ok(s));
        // An earlier agent's message: no `agent`.
        let old = br#"{"state":"online","cameras":[{"id":"front","state":"streaming"}]}"#;
        assert_eq!(DeviceStatus::decode(old).map(|s| s.agent), Ok(None));
        // A newer agent's extra fields are ignored.
        let newer = br#"{"state":"online","agent":{"version":"9","arch":"arm64","models":[]},"uptime_s":5}"#;
        let read = DeviceStatus::decode(newer).expect("reads");
        assert_eq!(read.agent.map(|a| a.version), Some("9".to_string()));
    }

    #[test]
    fn agent_fields_are_bounded() {
        let mut a = agent();
        a.version = "v".repeat(1000);
        a.models = vec![a.models[0].clone(); 40];
        let json = format!(
            r#"{{"state":"online","agent":{}}}"#,
            serde_json::to_string(&a).expect("json")
        );
        let back = DeviceStatus::decode(json.as_bytes()).expect("decodes");
        let got = back.agent.expect("agent");
        assert_eq!(got.version.chars().count(), MAX_NAME_CHARS);
        assert_eq!(got.models.len(), MAX_MODELS);
    }

    #[test]
    fn the_wire_form_is_the_documented_json() {
        let s = online(vec![
            CameraStatus {
                id: "front".into(),
                state: CameraPhase::Streaming,
                reason: None,
            },
            CameraStatus {
                id: "yard".into(),
                state: CameraPhase::Backoff,
                reason: Some("rtsp://cam/1: refused".into()),
            },
        ]);
        let json = String::from_utf8(s.encode()).expect("utf-8");
        assert_eq!(
            json,
            r#"{"state":"online","cameras":[{"id":"front","state":"streaming"},{"id":"yard","state":"backoff","reason":"rtsp://cam/1: refused"}]}"#
        );
        assert_eq!(s.cameras_down(), 1);
        assert_eq!(
            DeviceStatus::offline().encode(),
            br#"{"state":"offline"}"#.to_vec()
        );
    }

    #[test]
    fn plain_words_of_earlier_agents_are_read() {
        assert_eq!(DeviceStatus::decode(b"online"), Ok(online(vec![])));
        assert_eq!(
            DeviceStatus::decode(b"offline"),
            Ok(DeviceStatus::offline())
        );
    }

    #[test]
    fn bad_messages_are_refused_with_a_reason() {
        let big = vec![b' '; MAX_STATUS_BYTES + 1];
        assert!(matches!(
            DeviceStatus::decode(&big),
            Err(StatusError::TooLarge { .. })
        ));
        assert!(matches!(
            DeviceStatus::decode(b"{\"state\":\"asleep\"}"),
            Err(StatusError::Invalid(_))
        ));
        let bad_id = br#"{"state":"online","cameras":[{"id":"a/b","state":"streaming"}]}"#;
        assert!(matches!(
            DeviceStatus::decode(bad_id),
            Err(StatusError::BadCameraId(_))
        ));
    }

    #[test]
    fn long_reasons_are_cut() {
        let s = online(vec![CameraStatus {
            id: "c".into(),
            state: CameraPhase::Failed,
            reason: Some("é".repeat(1000)),
        }]);
        let back = DeviceStatus::decode(&s.encode()).expect("decodes");
        assert_eq!(
            back.cameras[0].reason.as_ref().map(|r| r.chars().count()),
            Some(MAX_REASON_CHARS)
        );
    }

    fn phase() -> impl Strategy<Value = CameraPhase> {
        prop_oneof![
            Just(CameraPhase::Connecting),
            Just(CameraPhase::Streaming),
            Just(CameraPhase::Backoff),
            Just(CameraPhase::Failed),
            Just(CameraPhase::Ended),
        ]
    }

    proptest! {
        #[test]
        fn statuses_round_trip(
            cams in prop::collection::vec(("[a-z0-9_-]{1,20}", phase(), prop::option::of(".{0,300}")), 0..8)
        ) {
            let s = online(cams.into_iter().map(|(id, state, reason)| CameraStatus { id, state, reason }).collect());
            prop_assert_eq!(DeviceStatus::decode(&s.encode()), Ok(s));
        }

        #[test]
        fn any_bytes_decode_or_are_refused_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = DeviceStatus::decode(&bytes);
        }
    }
}
