//! What the agent runs, for its retained status message (design/ota.md): its own version, the
//! hardware profile's name and each model file loaded, named by its manifest and the sha256 the
//! file was checked against when it was loaded (`cascade_infer::load_ladder` refuses a file whose
//! sha256 differs from its manifest's).

use cascade_shared::manifest::ModelManifest;
use cascade_shared::status::{AgentInfo, ModelVersion};

use crate::detect::Detector;
use crate::telemetry::Telemetry;

/// Puts what runs into the status message (republished: the board counts it as a change).
pub fn publish(telemetry: &Telemetry, profile: Option<String>, ladder: &[Detector]) {
    let info = agent_info(profile, ladder.iter().map(Detector::manifest));
    telemetry.cameras().set_agent(info);
}

/// The agent's version, the profile's name and one entry per loaded model file (one per input
/// side of the ladder, largest first).
pub fn agent_info<'a>(
    profile: Option<String>,
    loaded: impl IntoIterator<Item = &'a ModelManifest>,
) -> AgentInfo {
    AgentInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        profile,
        models: loaded
            .into_iter()
            .map(|m| ModelVersion {
                name: m.name.clone(),
                version: m.version.clone(),
                input: Some(m.input.width.max(m.input.height)),
                sha256: m.sha256.to_ascii_lowercase(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_loaded_file_is_named_with_its_checked_sha256() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let (m, _) = ModelManifest::load(&dir.join("blob-yolov8-int8.toml")).expect("manifest");
        let info = agent_info(Some("x86_64-cpu".into()), [&m]);
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.profile.as_deref(), Some("x86_64-cpu"));
        assert_eq!(
            info.models,
            vec![ModelVersion {
                name: "blob-yolov8-int8".into(),
                version: "1".into(),
                input: Some(128),
                sha256: "b51e4efb6d2111f7007142848d80ff906910980a110ef753976e5d9b2b9aa783".into(),
            }]
        );
    }
}
