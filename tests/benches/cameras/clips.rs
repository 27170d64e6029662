//! The streams the RTSP server plays. 768x432 at 10 fps is the real sample clip
//! (`../shared/samples`) as it is; 1920x1080 at 25 fps is made from it with ffmpeg the first time
//! it is needed, into `<target>/cascade-bench-clips/` (kept between runs, ignored by git). Without
//! `../shared`, both are made from the project's walker fixture, scaled.

use std::path::{Path, PathBuf};
use std::process::Command;

use cascade_tests::{repo_root, shared_dir};

/// One kind of camera stream.
#[derive(Debug, Clone)]
pub struct Stream {
    /// `768x432@10`.
    pub label: String,
    pub clip: PathBuf,
    pub fps: f64,
    /// Where it came from, for the report.
    pub origin: String,
}

/// The sub-stream-sized camera: 768x432, 10 fps.
pub fn small() -> anyhow::Result<Stream> {
    let label = "768x432@10".to_string();
    if let Some(shared) = shared_dir() {
        let clip = shared.join("samples/one-by-one-person-detection.mp4");
        if clip.is_file() {
            return Ok(Stream {
                label,
                clip,
                fps: 10.0,
                origin: "../shared sample clip as is (H.264 Main, B-frames, 188 kbit/s)".into(),
            });
        }
    }
    let clip = make(
        "walker-768x432-10.mp4",
        "scale=768:432,fps=10",
        "500k",
        8,
        20,
    )?;
    Ok(Stream {
        label,
        clip,
        fps: 10.0,
        origin: "tests/fixtures/walker.mp4 scaled with ffmpeg (no ../shared)".into(),
    })
}

/// The main-stream-sized camera: 1920x1080, 25 fps, about 4 Mbit/s, 60 s.
pub fn full_hd() -> anyhow::Result<Stream> {
    // The 10 fps source is resampled to 25 fps; light temporal noise (a sensor's) keeps repeated
    // frames distinct, so every frame costs the decoder what a live camera's does.
    let filter = "scale=1920:1080:flags=bicubic,fps=25,noise=alls=2:allf=t";
    let (name, origin) = match sample_clip() {
        Some(_) => (
            "sample-1920x1080-25.mp4",
            "the sample clip upscaled to 1920x1080, 25 fps, sensor noise, x264 Main, no B-frames, GOP 2 s, 4 Mbit/s (ffmpeg, made at bench time)",
        ),
        None => (
            "walker-1920x1080-25.mp4",
            "tests/fixtures/walker.mp4 upscaled to 1920x1080, 25 fps, x264 Main, no B-frames, GOP 2 s, 4 Mbit/s (ffmpeg, made at bench time; no ../shared)",
        ),
    };
    Ok(Stream {
        label: "1920x1080@25".into(),
        clip: make(name, filter, "4M", 60, 50)?,
        fps: 25.0,
        origin: origin.into(),
    })
}

fn sample_clip() -> Option<PathBuf> {
    let clip = shared_dir()?.join("samples/one-by-one-person-detection.mp4");
    clip.is_file().then_some(clip)
}

/// `<target>/cascade-bench-clips/`, beside the bench binary's profile folder.
pub fn cache_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir)
        .join("cascade-bench-clips")
}

/// Encodes `seconds` of the sample clip (or the looped walker) through `filter` into the cache,
/// with a key frame every `gop` frames, unless it is already there.
fn make(
    name: &str,
    filter: &str,
    bitrate: &str,
    seconds: u32,
    gop: u32,
) -> anyhow::Result<PathBuf> {
    let dir = cache_dir();
    let out = dir.join(name);
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(&dir)?;
    let source = sample_clip().unwrap_or_else(|| repo_root().join("tests/fixtures/walker.mp4"));
    eprintln!("making {} with ffmpeg (once)", out.display());
    let part = dir.join(format!("{name}.part.mp4"));
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-stream_loop", "-1", "-i"])
        .arg(&source)
        .args(["-t", &seconds.to_string(), "-an", "-vf", filter])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "main",
        ])
        .args(["-bf", "0", "-g", &gop.to_string(), "-sc_threshold", "0"])
        .args(["-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate])
        .args(["-pix_fmt", "yuv420p", "-movflags", "+faststart"])
        .arg(&part)
        .status()
        .map_err(|e| {
            anyhow::anyhow!("ffmpeg is needed to make {name} (apt-get install ffmpeg): {e}")
        })?;
    anyhow::ensure!(status.success(), "ffmpeg failed making {name}");
    std::fs::rename(&part, &out)?;
    Ok(out)
}
