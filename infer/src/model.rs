//! The runtime side of model manifests: read the manifest, check the model file against its
//! sha256, open it on a backend and wrap it in a [`Detector`].

use std::path::{Path, PathBuf};

use cascade_shared::Problems;
use cascade_shared::manifest::ModelManifest;

use crate::backend::{self, BackendOptions};
use crate::detector::{DetectParams, Detector, InferError};

/// Everything needed to load a detector.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    pub manifest: PathBuf,
    /// The model file, when not where the manifest says (tests and benchmarks using `../shared`).
    /// Still checked against the manifest's sha256.
    pub model_file: Option<PathBuf>,
    pub backend: BackendOptions,
    pub score_threshold: f32,
    pub nms_iou: f32,
    pub min_box_area: f32,
    /// Which classes to keep.
    pub classes: Classes,
}

/// Which classes a detector keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classes {
    /// The manifest's person class.
    Person,
    /// One class id.
    Only(u32),
    /// Each candidate as its best class.
    All,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("model manifest:\n{0}")]
    Manifest(Problems),
    #[error("model file: {0}")]
    File(String),
    #[error(transparent)]
    Infer(#[from] InferError),
}

impl LoadOptions {
    /// ONNX Runtime on one CPU thread, the person class, score 0.5, NMS IoU 0.45.
    pub fn onnx_cpu(manifest: impl Into<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            model_file: None,
            backend: BackendOptions {
                kind: cascade_shared::config::BackendKind::Onnxruntime,
                library: None,
                threads: 1,
                spin: false,
                edge_tpu: None,
                gpu: None,
            },
            score_threshold: 0.5,
            nms_iou: 0.45,
            min_box_area: 0.0005,
            classes: Classes::Person,
        }
    }
}

/// Reads a manifest and checks a model file (the manifest's, or `model_file`) against it.
pub fn verified_manifest(
    path: &Path,
    model_file: Option<&Path>,
) -> Result<(ModelManifest, PathBuf), LoadError> {
    let (manifest, model) = ModelManifest::load(path).map_err(LoadError::Manifest)?;
    let model = model_file.map_or(model, Path::to_path_buf);
    manifest.verify_file(&model).map_err(LoadError::File)?;
    Ok((manifest, model))
}

/// Loads the detector `opts` describes. Blocking (reads and hashes the model file).
pub fn load_detector(opts: &LoadOptions) -> Result<Detector, LoadError> {
    let (manifest, model) = verified_manifest(&opts.manifest, opts.model_file.as_deref())?;
    open_detector(manifest, &model, opts)
}

/// Loads one detector per input side in `sides` (the adaptive-resolution ladder, largest first),
/// each from the manifest's model file for that side (`model_file` replaces the main side's
/// file only). Blocking.
pub fn load_ladder(opts: &LoadOptions, sides: &[u32]) -> Result<Vec<Detector>, LoadError> {
    let (manifest, main_file) = ModelManifest::load(&opts.manifest).map_err(LoadError::Manifest)?;
    let dir = opts.manifest.parent().unwrap_or(Path::new("."));
    sides
        .iter()
        .map(|&side| {
            let m = manifest.at_side(side).ok_or_else(|| {
                LoadError::File(format!(
                    "{}: no model file for input side {side} (it has {:?})",
                    opts.manifest.display(),
                    manifest.sides().collect::<Vec<_>>()
                ))
            })?;
            let file = if m.file == manifest.file {
                opts.model_file.clone().unwrap_or_else(|| main_file.clone())
            } else {
                dir.join(&m.file)
            };
            m.verify_file(&file).map_err(LoadError::File)?;
            open_detector(m, &file, opts)
        })
        .collect()
}

/// The backend options for a model: the manifest's backend wins over the configured one (a file
/// runs on one runtime); the configured library path is for the configured runtime only.
pub fn backend_for(manifest: &ModelManifest, configured: &BackendOptions) -> BackendOptions {
    match manifest.backend {
        Some(kind) if kind != configured.kind => BackendOptions {
            kind,
            library: None,
            ..configured.clone()
        },
        _ => configured.clone(),
    }
}

/// A detector whose model runs on the KServe v2 inference server `server` names: the manifest
/// (read, its model file not needed) gives the pre- and post-processing, `opts` the thresholds
/// (its backend and model file are unused). Does not fail when the server is down (see
/// [`backend::kserve`]); `status` reports on it.
#[cfg(feature = "kserve")]
pub fn load_server_detector(
    opts: &LoadOptions,
    server: &cascade_shared::config::cloud::ServerConfig,
    status: std::sync::Arc<backend::kserve::ServerStatus>,
) -> Result<Detector, LoadError> {
    use crate::backend::Backend as _;
    use cascade_shared::manifest::OutputFormat;
    let (manifest, _) = ModelManifest::load(&opts.manifest).map_err(LoadError::Manifest)?;
    let outputs = if manifest.output.format == OutputFormat::Ssd {
        manifest.output.ssd_outputs.clone().map_or_else(
            || vec!["boxes".into(), "classes".into(), "scores".into()],
            |o| o.to_vec(),
        )
    } else {
        Vec::new()
    };
    let size = (manifest.input.width, manifest.input.height);
    let backend = backend::kserve::KserveBackend::connect(server, size, outputs, status)
        .map_err(InferError::from)?;
    let params = detect_params(&manifest, opts);
    loaded(
        &manifest,
        &backend.info().name,
        "model on an inference server",
    );
    Ok(Detector::new(manifest, Box::new(backend), params)?)
}

/// The thresholds and class of `opts` for `manifest`'s model.
fn detect_params(manifest: &ModelManifest, opts: &LoadOptions) -> DetectParams {
    DetectParams {
        score_threshold: opts.score_threshold,
        nms_iou: opts.nms_iou,
        min_box_area: opts.min_box_area,
        class_id: match opts.classes {
            Classes::Person => Some(manifest.person_class_id),
            Classes::Only(c) => Some(c),
            Classes::All => None,
        },
        scaling: crate::preprocess::Scaling::Fit,
    }
}

fn open_detector(
    manifest: ModelManifest,
    model: &Path,
    opts: &LoadOptions,
) -> Result<Detector, LoadError> {
    let params = detect_params(&manifest, opts);
    let backend =
        backend::open(model, &backend_for(&manifest, &opts.backend)).map_err(InferError::from)?;
    loaded(&manifest, &backend.info().name, "model loaded");
    Ok(Detector::new(manifest, backend, params)?)
}

/// The one log line of a model ready to run.
fn loaded(manifest: &ModelManifest, backend: &str, what: &'static str) {
    tracing::info!(
        model = %manifest.name,
        version = %manifest.version,
        input = manifest.input.width,
        backend = %backend,
        "{what}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_shared::config::BackendKind;

    fn manifest(backend: Option<BackendKind>) -> ModelManifest {
        let mut m: ModelManifest = toml::from_str(
            "name = \"m\"\nversion = \"1\"\nfile = \"m.tflite\"\nsha256 = \"00\"\nlicence = \"x\"\n\
             labels = [\"person\"]\nperson_class_id = 0\n[input]\nwidth = 32\nheight = 32\n\
             [output]\nformat = \"yolov8\"\n",
        )
        .expect("manifest");
        m.backend = backend;
        m
    }

    #[test]
    fn the_manifests_backend_wins_and_drops_the_other_runtimes_library() {
        let configured = BackendOptions {
            library: Some("/opt/ort/libonnxruntime.so".into()),
            threads: 3,
            ..LoadOptions::onnx_cpu("m.toml").backend
        };
        let lite = backend_for(&manifest(Some(BackendKind::Litert)), &configured);
        assert_eq!(lite.kind, BackendKind::Litert);
        assert_eq!((lite.library, lite.threads), (None, 3));
        assert_eq!(backend_for(&manifest(None), &configured), configured);
        let same = backend_for(&manifest(Some(BackendKind::Onnxruntime)), &configured);
        assert_eq!(same, configured);
    }
}
