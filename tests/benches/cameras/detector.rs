//! Which detector the agents run: `--manifest PATH`, `--manifest static320` (YOLOv8n with static
//! INT8 quantisation at a 320x320 input, from `../shared/models`, a derived model with no manifest
//! in `models/`: one is written beside the bench clips), else the project's real default
//! (`models/yolov8n-int8-static.toml` at its 640 input, once `scripts/fetch-models.sh` has fetched
//! it), else the generated test detector.

use std::path::PathBuf;

use cascade_tests::{repo_root, shared_dir};

/// The static INT8 320 model's file in `../shared/models` and its sha256 (`../shared/models/README.md`).
const STATIC_320: (&str, &str) = (
    "yolov8n_int8static_qdq_320.onnx",
    "5e036e4e5c397e38a0331b66ea6f8afd8943c170f9a0ceb2a4820904c1b27d61",
);

/// The manifest to run and a description for the report.
pub fn choose(asked: Option<&PathBuf>) -> anyhow::Result<(PathBuf, String)> {
    match asked {
        Some(m) if m.as_os_str() == "static320" => Ok((
            static_320()?,
            "YOLOv8n INT8 (static QDQ), 320x320, from ../shared/models".into(),
        )),
        Some(m) => Ok((m.clone(), m.display().to_string())),
        None if repo_root()
            .join("models/downloads/yolov8n_int8static_qdq_640.onnx")
            .is_file() =>
        {
            Ok((
                repo_root().join("models/yolov8n-int8-static.toml"),
                "YOLOv8n INT8 (static QDQ), 640x640 (models/yolov8n-int8-static.toml)".into(),
            ))
        }
        None => Ok((
            repo_root().join("models/blob-yolov8-int8.toml"),
            "the generated blob test detector (run scripts/fetch-models.sh for the real one)"
                .into(),
        )),
    }
}

/// The default real model's manifest with the static 320 model's name, file, sha256 and input.
fn static_320() -> anyhow::Result<PathBuf> {
    let model = shared_dir()
        .map(|d| d.join("models").join(STATIC_320.0))
        .filter(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("static320 needs ../shared/models/{}", STATIC_320.0))?;
    let base = std::fs::read_to_string(repo_root().join("models/yolov8n-int8.toml"))?;
    let text: String = base
        .lines()
        .filter(|l| !l.starts_with("download_url") && !l.starts_with('#'))
        .map(|l| match l.split_once(" = ").map(|(k, _)| k) {
            Some("name") => "name = \"yolov8n-int8-static-320\"".to_string(),
            Some("file") => format!("file = \"{}\"", model.display()),
            Some("sha256") => format!("sha256 = \"{}\"", STATIC_320.1),
            Some("width") => "width = 320".to_string(),
            Some("height") => "height = 320".to_string(),
            _ => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect();
    let path = crate::clips::cache_dir().join("yolov8n-int8-static-320.toml");
    std::fs::create_dir_all(crate::clips::cache_dir())?;
    std::fs::write(&path, text)?;
    Ok(path)
}
