//! Model manifests: a model is described once, in a TOML file beside it, and checked at start-up.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Problems;
use crate::config::BackendKind;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    pub name: String,
    pub version: String,
    /// Model file, relative to the manifest's folder.
    pub file: PathBuf,
    /// Lower-case hex sha256 of `file`.
    pub sha256: String,
    pub licence: String,
    /// Where `scripts/fetch-models.sh` downloads `file` from (absent for generated models).
    #[serde(default)]
    pub download_url: Option<String>,
    #[serde(default = "default_precision")]
    pub precision: Precision,
    /// The runtime this model file is for (`onnxruntime` when absent; a `.tflite` file needs
    /// `litert`, a `.hef` file `hailo`). It wins over the config's `detector.backend`: a file runs on one runtime.
    #[serde(default)]
    pub backend: Option<BackendKind>,
    pub input: InputSpec,
    pub output: OutputSpec,
    pub labels: Vec<String>,
    pub person_class_id: u32,
    /// The same network exported at other square input sides (the adaptive-resolution ladder):
    /// one model file per side, same pre- and post-processing. `input` is the main size.
    #[serde(default)]
    pub sizes: Vec<SizeVariant>,
}

/// One more input side of a model: its own file and sha256.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SizeVariant {
    /// Input width and height, pixels.
    pub side: u32,
    /// Model file, relative to the manifest's folder.
    pub file: PathBuf,
    /// Lower-case hex sha256 of `file`.
    pub sha256: String,
}

fn default_precision() -> Precision {
    Precision::Fp32
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    Fp32,
    Int8,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub width: u32,
    pub height: u32,
    #[serde(default = "default_layout")]
    pub layout: Layout,
    #[serde(default = "default_channels")]
    pub channels: ChannelOrder,
    /// Each 0-255 channel value is mapped to `(v * scale - mean[c]) / std[c]`.
    #[serde(default = "default_scale")]
    pub scale: f32,
    #[serde(default = "default_mean")]
    pub mean: [f32; 3],
    #[serde(default = "default_std")]
    pub std: [f32; 3],
    #[serde(default = "default_letterbox")]
    pub letterbox: Letterbox,
    #[serde(default = "default_pad")]
    pub pad_value: u8,
    /// The input tensor's element type, checked against the model file when given.
    #[serde(default)]
    pub dtype: Option<InputDType>,
    /// uint8/int8 inputs: the normalised value `x` is fed as `round(x / scale) + zero_point`.
    /// Read from the model file when it has it (and checked against this); needed when it has not.
    #[serde(default)]
    pub quantization: Option<Quantization>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InputDType {
    Float32,
    Uint8,
    Int8,
}

/// A per-tensor affine quantisation: `real = (q - zero_point) * scale`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Quantization {
    pub scale: f32,
    pub zero_point: i32,
}

fn default_layout() -> Layout {
    Layout::Nchw
}
fn default_channels() -> ChannelOrder {
    ChannelOrder::Rgb
}
fn default_scale() -> f32 {
    1.0 / 255.0
}
fn default_mean() -> [f32; 3] {
    [0.0; 3]
}
fn default_std() -> [f32; 3] {
    [1.0; 3]
}
fn default_letterbox() -> Letterbox {
    Letterbox::Center
}
fn default_pad() -> u8 {
    114
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    Nchw,
    Nhwc,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Letterbox {
    /// Scaled image centred on the canvas (Ultralytics).
    Center,
    /// Scaled image at the top-left corner (YOLOX).
    TopLeft,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub format: OutputFormat,
    /// Box coordinates are 0-1 of the input size rather than input pixels.
    #[serde(default)]
    pub boxes_normalized: bool,
    /// SSD only: names of the boxes, classes and scores outputs.
    #[serde(default)]
    pub ssd_outputs: Option<[String; 3]>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// `[1, 4 + classes, N]`: cx, cy, w, h, class scores (YOLOv8, YOLO11).
    Yolov8,
    /// `[1, N, 5 + classes]`: cx, cy, w, h, objectness, class scores.
    Yolov5,
    /// `[1, N, 5 + classes]` raw grid outputs for strides 8/16/32, decoded with the grid.
    Yolox,
    /// Three outputs: boxes `[1, N, 4]` (ymin, xmin, ymax, xmax, 0-1), classes `[1, N]`, scores `[1, N]`.
    Ssd,
    /// HailoRT's NMS on chip (`HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS`, float32), one output
    /// `[1, classes, 1 + 5 * max_boxes]`: per class a box count, then that many boxes (ymin, xmin,
    /// ymax, xmax, score; 0-1 of the input), packed. Only from `backend = "hailo"`.
    HailoNms,
}

impl ModelManifest {
    /// Reads and checks a manifest (not the model file; see [`ModelManifest::verify_file`]).
    pub fn load(path: &Path) -> Result<(Self, PathBuf), Problems> {
        let field = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| one(&field, format!("cannot read: {e}")))?;
        let manifest: Self =
            toml::from_str(&text).map_err(|e| one(&field, e.to_string().trim_end()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let model_path = dir.join(&manifest.file);
        manifest.check(&field).into_result((manifest, model_path))
    }

    fn check(&self, at: &str) -> Problems {
        let mut p = Problems::new();
        let f = |name: &str| format!("{at}: {name}");
        p.check(
            is_sha256(&self.sha256),
            f("sha256"),
            "must be 64 hex digits",
        );
        p.check(
            (8..=4096).contains(&self.input.width),
            f("input.width"),
            "must be 8..=4096",
        );
        p.check(
            (8..=4096).contains(&self.input.height),
            f("input.height"),
            "must be 8..=4096",
        );
        p.check(
            self.input.std.iter().all(|s| *s != 0.0),
            f("input.std"),
            "must not contain 0",
        );
        p.check(
            !self.labels.is_empty(),
            f("labels"),
            "must name at least one class",
        );
        p.check(
            (self.person_class_id as usize) < self.labels.len(),
            f("person_class_id"),
            "must index into labels",
        );
        self.check_input_type(&f, &mut p);
        self.check_backend(&f, &mut p);
        for (i, v) in self.sizes.iter().enumerate() {
            p.check(
                is_sha256(&v.sha256),
                f(&format!("sizes[{i}].sha256")),
                "must be 64 hex digits",
            );
            p.check(
                (32..=4096).contains(&v.side) && v.side.is_multiple_of(32),
                f(&format!("sizes[{i}].side")),
                "must be a multiple of 32 in 32..=4096",
            );
            p.check(
                !self.sides().take(i + 1).any(|s| s == v.side),
                f(&format!("sizes[{i}].side")),
                "names a side the manifest already has",
            );
        }
        p.check(
            self.output.format != OutputFormat::Yolox
                || self.input.width.is_multiple_of(32) && self.input.height.is_multiple_of(32),
            f("input"),
            "YOLOX inputs must be multiples of 32",
        );
        p
    }

    /// A model file runs on one runtime: `.tflite` on LiteRT, `.hef` on HailoRT (NHWC uint8 in,
    /// NMS on chip out).
    fn check_backend(&self, f: &impl Fn(&str) -> String, p: &mut Problems) {
        let ext = |e: &str| self.file.extension().is_some_and(|x| x == e);
        p.check(
            ext("tflite") == (self.backend == Some(BackendKind::Litert)),
            f("backend"),
            "a .tflite file runs on \"litert\", and only a .tflite file does",
        );
        let hailo = self.backend == Some(BackendKind::Hailo);
        p.check(
            ext("hef") == hailo,
            f("backend"),
            "a .hef file runs on \"hailo\", and only a .hef file does",
        );
        p.check(
            (self.output.format == OutputFormat::HailoNms) == hailo,
            f("output.format"),
            "\"hailo_nms\" is what a HEF with NMS on chip gives (backend = \"hailo\"), and the only output the hailo backend reads",
        );
        if hailo {
            p.check(
                self.input.layout == Layout::Nhwc,
                f("input.layout"),
                "a HEF takes \"nhwc\" input",
            );
            p.check(
                matches!(self.input.dtype, None | Some(InputDType::Uint8)),
                f("input.dtype"),
                "a HEF takes \"uint8\" input (it normalises on chip)",
            );
        }
    }

    fn check_input_type(&self, f: &impl Fn(&str) -> String, p: &mut Problems) {
        let Some(q) = self.input.quantization else {
            return;
        };
        p.check(
            q.scale.is_finite() && q.scale > 0.0,
            f("input.quantization.scale"),
            "must be a positive number",
        );
        let range = match self.input.dtype {
            Some(InputDType::Uint8) => 0..=255,
            Some(InputDType::Int8) => -128..=127,
            _ => {
                p.push(
                    f("input.quantization"),
                    "needs input.dtype = \"uint8\" or \"int8\"",
                );
                return;
            }
        };
        p.check(
            range.contains(&q.zero_point),
            f("input.quantization.zero_point"),
            format!(
                "must be in {range:?} for input.dtype {:?}",
                self.input.dtype
            ),
        );
    }

    /// Every input side this manifest has a model file for: the main one first (square inputs
    /// only; a non-square main input has no side).
    pub fn sides(&self) -> impl Iterator<Item = u32> + '_ {
        let main = (self.input.width == self.input.height).then_some(self.input.width);
        main.into_iter().chain(self.sizes.iter().map(|v| v.side))
    }

    /// The ladder of input sides this model runs at, given the sides `wanted` (largest first;
    /// empty: the model's own): those it has a file for, in `wanted`'s order, and those it lacks.
    /// When it has none of them, its own main side alone.
    pub fn ladder(&self, wanted: &[u32]) -> (Vec<u32>, Vec<u32>) {
        let have: Vec<u32> = self.sides().collect();
        let (kept, missing): (Vec<u32>, Vec<u32>) = wanted.iter().partition(|s| have.contains(s));
        if kept.is_empty() {
            let main = self.input.width.max(self.input.height);
            return (vec![main], missing);
        }
        (kept, missing)
    }

    /// This manifest as seen at input side `side` (its input size, file and sha256; `file` stays
    /// relative to the manifest's folder); `None` if it has no model file for that side.
    pub fn at_side(&self, side: u32) -> Option<Self> {
        if self.input.width == side && self.input.height == side {
            return Some(self.clone());
        }
        let v = self.sizes.iter().find(|v| v.side == side)?;
        let mut m = self.clone();
        (m.input.width, m.input.height) = (side, side);
        m.file.clone_from(&v.file);
        m.sha256.clone_from(&v.sha256);
        m.sizes.clear();
        Some(m)
    }

    /// Checks that the model file exists and matches its pinned sha256.
    pub fn verify_file(&self, model_path: &Path) -> Result<(), String> {
        use sha2_lite::sha256_file;
        let actual = sha256_file(model_path).map_err(|e| {
            let fix = if e.kind() == std::io::ErrorKind::NotFound {
                " (run scripts/fetch-models.sh: it fetches the models of models/*.toml)"
            } else {
                ""
            };
            format!("{}: cannot read: {e}{fix}", model_path.display())
        })?;
        if actual != self.sha256.to_ascii_lowercase() {
            return Err(format!(
                "{}: sha256 is {actual}, the manifest pins {} (re-fetch with scripts/fetch-models.sh)",
                model_path.display(),
                self.sha256
            ));
        }
        Ok(())
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn one(field: &str, message: impl std::fmt::Display) -> Problems {
    let mut p = Problems::new();
    p.push(field, message);
    p
}

mod sha2_lite {
    use sha2::{Digest, Sha256};
    use std::io::Read;

    pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
        let mut f = std::fs::File::open(path)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex::encode(h.finalize()))
    }
}

#[cfg(test)]
mod tests;
