//! The motion benchmark's anchor: `scripts/frigate_motion.py` (Frigate 0.18's motion detector
//! with OpenCV) as a child process, fed the same luma planes through a temporary file and asked
//! for one timed pass over them at a time, so that it and ours alternate in one run.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use edge_agent::decode::Frame;

pub struct Anchor {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Kept until the script is done with it.
    _frames: tempfile::NamedTempFile,
    pub python: PathBuf,
    /// What the script runs on ("OpenCV 5.0.0, NumPy 2.4.6").
    pub versions: String,
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
    pub fn start(repo: &Path, frames: &[Frame]) -> Result<Self, String> {
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
    pub fn run(&mut self) -> Result<(f64, usize), String> {
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
