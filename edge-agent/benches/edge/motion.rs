//! Motion: ours against the anchor, Frigate 0.18's motion detector with OpenCV
//! (`scripts/frigate_motion.py`, see `anchor.rs`), on the same frames, in one run: a warm-up pass
//! each, then `ALTERNATIONS` timed passes, ours and the anchor's in turn; the median and the
//! spread (lowest-highest) of each, and of their ratio. Frames: consecutive frames of the real
//! clip (a person walks in) resampled to each size, else generated ones. The anchor is a child
//! process fed the same luma planes through a temporary file and asked for one timed pass over
//! them at a time.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use cascade_shared::config::edge::MotionConfig;
use edge_agent::decode::{Frame, H264Decoder, VideoDecoder};
use edge_agent::motion::{BackgroundMotion, MotionDetector};
use edge_agent::source::{Container, Mp4File};

const SIZES: [(usize, usize); 3] = [(640, 360), (1280, 720), (1920, 1080)];
/// Frames per size: the clip's frames from `FIRST` on (25.0 s: the first person walks in).
const COUNT: usize = 100;
const FIRST: usize = 250;
const ALTERNATIONS: usize = 9;

pub fn bench(repo: &Path, clip: Option<&Path>) {
    let (source, what) = match clip.map(clip_frames) {
        Some(Ok(f)) => (f, "consecutive frames of the real clip, resampled"),
        Some(Err(e)) => {
            println!("motion: {e}; generated frames instead");
            (Vec::new(), "generated frames")
        }
        None => (Vec::new(), "generated frames"),
    };
    let mut ours_1080 = None;
    for (w, h) in SIZES {
        let frames: Vec<Frame> = if source.is_empty() {
            (0..COUNT)
                .map(|i| crate::noisy_frame(w, h, i as u32 + 1, i * w / (2 * COUNT)))
                .collect()
        } else {
            source.iter().map(|f| resample(f, w, h)).collect()
        };
        println!(
            "motion {w}x{h}: {} {what}, {ALTERNATIONS} alternations, one core each:",
            frames.len()
        );
        let (ours, anchor) = compare(repo, &frames);
        if (w, h) == (1920, 1080) {
            ours_1080 = Some((ours, anchor));
        }
    }
    if let Some((ours, anchor)) = ours_1080 {
        // Eight cameras at 30 fps: 240 frames a second.
        let share = |ms: f64| 240.0 * ms / 1e3 * 100.0;
        let theirs = anchor.map_or(String::new(), |a| {
            format!(" (the anchor: {:.1} %)", share(a))
        });
        println!(
            "motion, eight 1080p30 cameras: {:.1} % of one core{theirs}",
            share(ours)
        );
    }
}

/// Times both on `frames`; prints and returns the medians (ms per frame; the anchor's if it ran).
fn compare(repo: &Path, frames: &[Frame]) -> (f64, Option<f64>) {
    let mut ours = BackgroundMotion::new(MotionConfig::default());
    let mut anchor = Anchor::start(repo, frames);
    time_ours(&mut ours, frames);
    if let Ok(a) = &mut anchor
        && let Err(e) = a.run()
    {
        anchor = Err(e);
    }
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    let (mut my_moving, mut their_moving) = (0, 0);
    for _ in 0..ALTERNATIONS {
        let (ms, moving) = time_ours(&mut ours, frames);
        mine.push(ms);
        my_moving = moving;
        if let Ok(a) = &mut anchor {
            match a.run() {
                Ok((ms, moving)) => {
                    theirs.push(ms);
                    their_moving = moving;
                }
                Err(e) => anchor = Err(e),
            }
        }
    }
    let m = Spread::of(&mine);
    println!(
        "  cascade  {m} ms/frame; motion in {my_moving} of {} frames",
        frames.len()
    );
    let a = match &anchor {
        Ok(a) if theirs.len() == ALTERNATIONS => a,
        Ok(_) => return (m.median, None),
        Err(why) => {
            println!("  anchor skipped: {why}");
            return (m.median, None);
        }
    };
    let t = Spread::of(&theirs);
    println!(
        "  frigate  {t} ms/frame; motion in {their_moving} of {} frames (scripts/frigate_motion.py, {})",
        frames.len(),
        a.versions
    );
    let ratios: Vec<f64> = theirs.iter().zip(&mine).map(|(t, m)| t / m).collect();
    println!("  ratio    frigate / cascade: {:.2}", Spread::of(&ratios));
    (m.median, Some(t.median))
}

/// One pass: ms per frame, and the frames with motion boxes.
fn time_ours(m: &mut BackgroundMotion, frames: &[Frame]) -> (f64, usize) {
    let mut moving = 0;
    let t = Instant::now();
    for f in frames {
        moving += usize::from(!black_box(m.detect(f)).boxes.is_empty());
    }
    (
        t.elapsed().as_secs_f64() * 1e3 / frames.len() as f64,
        moving,
    )
}

struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Spread {
    fn of(v: &[f64]) -> Self {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        Self {
            median: s.get(s.len() / 2).copied().unwrap_or(f64::NAN),
            low: s.first().copied().unwrap_or(f64::NAN),
            high: s.last().copied().unwrap_or(f64::NAN),
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = f.precision().unwrap_or(3);
        write!(
            f,
            "median {:.p$} (spread {:.p$}-{:.p$})",
            self.median, self.low, self.high
        )
    }
}

/// `COUNT` consecutive frames of the clip from frame `FIRST` (fewer if it is shorter).
fn clip_frames(clip: &Path) -> Result<Vec<Frame>, String> {
    let mut src = Mp4File::open(clip).map_err(|e| format!("{}: {e}", clip.display()))?;
    let mut dec = H264Decoder::new().map_err(|e| format!("decoder: {e}"))?;
    let mut frames = Vec::new();
    while frames.len() < FIRST + COUNT {
        match src.next_unit() {
            Ok(Some(u)) => {
                let _ = dec.decode(&u, &mut frames);
            }
            _ => break,
        }
    }
    let _ = dec.flush(&mut frames);
    let kept: Vec<Frame> = frames.into_iter().skip(FIRST).take(COUNT).collect();
    if kept.is_empty() {
        return Err(format!("{} has fewer than {FIRST} frames", clip.display()));
    }
    Ok(kept)
}

/// Bilinear resampling of the luma plane (chroma left grey: motion reads luma only).
fn resample(src: &Frame, w: usize, h: usize) -> Frame {
    let mut out = Frame::filled(w, h, 0);
    out.pts_us = src.pts_us;
    let axis = |i: usize, n: usize, of: usize| {
        let f = ((i as f32 + 0.5) * of as f32 / n as f32 - 0.5).max(0.0);
        let i0 = (f as usize).min(of - 1);
        (i0, (i0 + 1).min(of - 1), f - i0 as f32)
    };
    for (y, row) in out.y.chunks_exact_mut(w).enumerate() {
        let (y0, y1, fy) = axis(y, h, src.height);
        for (x, p) in row.iter_mut().enumerate() {
            let (x0, x1, fx) = axis(x, w, src.width);
            let at = |x: usize, y: usize| f32::from(src.y[y * src.width + x]);
            let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * fx;
            let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * fx;
            *p = (top + (bottom - top) * fy).round() as u8;
        }
    }
    out
}

struct Anchor {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Kept until the script is done with it.
    _frames: tempfile::NamedTempFile,
    python: PathBuf,
    /// What the script runs on ("OpenCV 5.0.0, NumPy 2.4.6").
    versions: String,
}

/// `$CASCADE_BENCH_PYTHON`, else the project's `.venv-bench` (see scripts/requirements-bench.txt),
/// else `python3` on the PATH.
fn python(repo: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os("CASCADE_BENCH_PYTHON") {
        return p.into();
    }
    let venv = repo.join(".venv-bench/bin/python");
    if venv.is_file() {
        venv
    } else {
        "python3".into()
    }
}

impl Anchor {
    /// Starts the script on `frames` (all of one size); the error says why it could not.
    fn start(repo: &Path, frames: &[Frame]) -> Result<Self, String> {
        let first = frames.first().ok_or("no frames")?;
        let mut file = tempfile::NamedTempFile::new().map_err(|e| format!("temp file: {e}"))?;
        for f in frames {
            file.write_all(&f.y)
                .map_err(|e| format!("writing frames: {e}"))?;
        }
        file.flush().map_err(|e| format!("writing frames: {e}"))?;
        let python = python(repo);
        let mut child = Command::new(&python)
            .arg(repo.join("scripts/frigate_motion.py"))
            .arg(file.path())
            // One core, as ours: NumPy's BLAS threads would otherwise spin beside it.
            .envs([("OPENBLAS_NUM_THREADS", "1"), ("OMP_NUM_THREADS", "1")])
            .args([first.width, first.height, frames.len()].map(|n| n.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{} cannot be started: {e}", python.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("no pipes to the script".into());
        };
        let mut anchor = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            _frames: file,
            python,
            versions: String::new(),
        };
        match anchor.line() {
            Some(l) if l.starts_with("ready") => {
                anchor.versions = l.trim_start_matches("ready").trim().to_string();
                Ok(anchor)
            }
            _ => Err(anchor.why_not()),
        }
    }

    /// One pass over the frames: milliseconds per frame and the frames with motion.
    fn run(&mut self) -> Result<(f64, usize), String> {
        writeln!(self.stdin, "run").map_err(|_| self.why_not())?;
        self.stdin.flush().map_err(|_| self.why_not())?;
        let line = self.line().ok_or_else(|| self.why_not())?;
        let mut parts = line.split_whitespace();
        let ms = parts.next().and_then(|v| v.parse().ok());
        let moving = parts.next().and_then(|v| v.parse().ok());
        ms.zip(moving)
            .ok_or_else(|| format!("unexpected answer {line:?}"))
    }

    fn line(&mut self) -> Option<String> {
        let mut l = String::new();
        match self.stdout.read_line(&mut l) {
            Ok(n) if n > 0 => Some(l.trim().to_string()),
            _ => None,
        }
    }

    /// The script's last line on stderr (a missing module, usually), once it has stopped.
    fn why_not(&mut self) -> String {
        let _ = self.child.kill();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        let _ = self.child.wait();
        let last = err.lines().last().unwrap_or("no output").trim().to_string();
        format!(
            "{} scripts/frigate_motion.py: {last}",
            self.python.display()
        )
    }
}

impl Drop for Anchor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
