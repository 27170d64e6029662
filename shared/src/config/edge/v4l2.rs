//! The settings of a V4L2 camera (`source = { kind = "v4l2", ... }`): the pixel format to ask
//! for, and the size and frame rate to request. The driver may grant another size or rate; the
//! agent logs what it got.

use std::path::Path;

use serde::Deserialize;

use crate::Problems;

/// The pixel format asked of a V4L2 camera.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum V4l2Format {
    /// The first the camera offers of H.264, NV12, YUYV, MJPEG, preferring one that has the
    /// requested size at the requested rate. Default.
    #[default]
    Auto,
    /// H.264 from the camera's encoder (UVC), decoded like an RTSP stream.
    H264,
    /// Motion JPEG, decoded frame by frame.
    Mjpeg,
    /// Packed 4:2:2 YUV, used as it comes.
    Yuyv,
    /// Semi-planar 4:2:0 YUV, used as it comes.
    Nv12,
}

impl std::fmt::Display for V4l2Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::H264 => "h264",
            Self::Mjpeg => "mjpeg",
            Self::Yuyv => "yuyv",
            Self::Nv12 => "nv12",
        })
    }
}

/// The largest width and height that may be requested (8K UHD).
pub const MAX_SIZE: (u32, u32) = (7680, 4320);

pub(super) fn default_width() -> u32 {
    1280
}

pub(super) fn default_height() -> u32 {
    720
}

pub(super) fn default_fps() -> f64 {
    15.0
}

/// Range problems of a V4L2 source, named under `field` (e.g. `camera[0].source`).
pub(super) fn validate(field: &str, device: &Path, size: (u32, u32), fps: f64, p: &mut Problems) {
    p.check(
        device.is_absolute(),
        format!("{field}.device"),
        "must be an absolute path such as /dev/video0",
    );
    p.check(
        (16..=MAX_SIZE.0).contains(&size.0),
        format!("{field}.width"),
        format!("must be 16..={}", MAX_SIZE.0),
    );
    p.check(
        (16..=MAX_SIZE.1).contains(&size.1),
        format!("{field}.height"),
        format!("must be 16..={}", MAX_SIZE.1),
    );
    p.check(
        fps > 0.0 && fps <= 240.0,
        format!("{field}.fps"),
        "must be in (0, 240]",
    );
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::edge::{SourceConfig, raw};

    use super::*;

    fn config(source: &str) -> String {
        format!(
            "[device]\nid = \"d\"\n[[camera]]\nid = \"usb\"\nsource = {source}\n\
             [detector]\nmanifest = \"m.toml\"\n[buffer]\ndir = \"b\"\n\
             [uplink]\nhost = \"h\"\nport = 1883\ntls = false\n"
        )
    }

    fn parse(source: &str) -> Result<raw::EdgeConfig, String> {
        toml::from_str(&config(source)).map_err(|e| e.to_string())
    }

    /// `(device, format, width, height, fps)` of a V4L2 source.
    fn v4l2(cfg: &raw::EdgeConfig) -> (PathBuf, V4l2Format, u32, u32, f64) {
        match &cfg.cameras[0].source {
            SourceConfig::V4l2 {
                device,
                format,
                width,
                height,
                fps,
            } => (device.clone(), *format, *width, *height, *fps),
            other => panic!("not a V4L2 source: {other:?}"),
        }
    }

    #[test]
    fn a_v4l2_camera_takes_the_documented_defaults() {
        let cfg = parse("{ kind = \"v4l2\", device = \"/dev/video0\" }").expect("parses");
        cfg.validated().expect("valid");
        assert_eq!(
            v4l2(&cfg),
            ("/dev/video0".into(), V4l2Format::Auto, 1280, 720, 15.0)
        );
    }

    #[test]
    fn every_format_and_an_integer_fps_are_read() {
        for (name, format) in [
            ("auto", V4l2Format::Auto),
            ("h264", V4l2Format::H264),
            ("mjpeg", V4l2Format::Mjpeg),
            ("yuyv", V4l2Format::Yuyv),
            ("nv12", V4l2Format::Nv12),
        ] {
            let cfg = parse(&format!(
                "{{ kind = \"v4l2\", device = \"/dev/v4l/by-id/usb-cam-video-index0\", \
                 format = \"{name}\", width = 640, height = 480, fps = 30 }}"
            ))
            .expect(name);
            let (_, got, w, h, fps) = v4l2(&cfg);
            assert_eq!((got, w, h, fps), (format, 640, 480, 30.0));
            assert_eq!(got.to_string(), name);
        }
    }

    /// The commented V4L2 camera of the starter config is valid once uncommented.
    #[test]
    fn the_starter_configs_v4l2_camera_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/edge-agent.toml");
        let text = std::fs::read_to_string(path).expect("starter");
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("# source = { kind = \"v4l2\""))
            .expect("a commented V4L2 camera");
        let cfg = parse(&format!("{{ kind = \"v4l2\"{line}")).expect("parses");
        cfg.validated().expect("valid");
        assert_eq!(
            v4l2(&cfg),
            ("/dev/video0".into(), V4l2Format::Auto, 1280, 720, 15.0),
            "it shows the defaults"
        );
    }

    #[test]
    fn unknown_fields_and_formats_are_refused_by_name() {
        for (source, named) in [
            (
                "{ kind = \"v4l2\", device = \"/dev/video0\", fmt = \"yuyv\" }",
                "fmt",
            ),
            (
                "{ kind = \"v4l2\", device = \"/dev/video0\", format = \"rgb\" }",
                "rgb",
            ),
            ("{ kind = \"v4l2\", path = \"/dev/video0\" }", "path"),
        ] {
            let e = parse(source).expect_err(source);
            assert!(e.contains(named), "{source}: {e}");
        }
    }

    #[test]
    fn out_of_range_values_name_their_fields() {
        let cfg =
            parse("{ kind = \"v4l2\", device = \"video0\", width = 8, height = 5000, fps = 0.0 }")
                .expect("parses");
        let p = cfg.validated().expect_err("invalid");
        for field in [
            "camera[0].source.device",
            "camera[0].source.width",
            "camera[0].source.height",
            "camera[0].source.fps",
        ] {
            assert!(p.iter().any(|l| l.starts_with(field)), "{field}:\n{p}");
        }
        assert_eq!(p.len(), 4, "{p}");
    }
}
