//! Camera benchmarks: `cargo bench -p cascade-tests --bench cameras -- [realtime] [density]
//! [reconnect] [soak] [--quick] [--warmup S] [--window S] [--max-cameras N] [--cores N] [--small-only] [--refine N] [--restarts N]
//! [--cycles N] [--pause S] [--settle S] [--detector-threads N] [--backoff MIN,MAX]
//! [--manifest PATH] [--nice N] [--mode motion|detect|both]` prints one table per
//! sub-benchmark (all four when none is named), each with the command line that made it.
//!
//! Everything is real: the `edge-agent` binary (build it first: `cargo build --release -p
//! edge-agent`), GStreamer's RTSP server (`tests/rtsp/server.py`) playing clips in real time, and
//! Mosquitto over TLS when installed. Figures are of the agent process alone, from `/proc`:
//! 1. `realtime`: one camera, 768x432 at 10 fps and 1920x1080 at 25 fps, motion only and with
//!    the detector at 5 Hz: CPU %, RSS, peak RSS, frames and detector runs per second;
//! 2. `density`: N = 1, 2, 4, ... such cameras in one agent until it needs more than `--cores`
//!    cores (default: all of this machine's) or loses frames;
//! 3. `reconnect`: the RTSP server killed and restarted `--restarts` times: time to the next frame;
//! 4. `soak`: `--cycles` such restarts with the detector on; fds, threads, RSS after each.
//!
//! The detector: see `detector.rs` (`--manifest static320` for the fast static INT8 model).

mod clips;
mod detector;
mod load;
mod reconnect;
mod rig;
mod table;

use std::time::Duration;

pub use table::Table;

/// The sub-benchmarks, in the order they run.
const BENCHES: [&str; 4] = ["realtime", "density", "reconnect", "soak"];

/// Durations and counts; `--quick` makes a smoke run of a minute or two.
#[derive(Debug, Clone)]
pub struct Opts {
    pub benches: Vec<String>,
    /// `realtime` and `density`: motion only, detection at 5 Hz, or both (`--mode`).
    pub modes: Vec<rig::Mode>,
    pub warmup: Duration,
    pub window: Duration,
    pub max_cameras: usize,
    /// Density: the agent's CPU budget in cores (`--cores`; default all of this machine's).
    pub cores: f64,
    /// `realtime` and `density`: leave out the 1920x1080 stream (`--small-only`).
    pub small_only: bool,
    /// Density: halving steps after doubling.
    pub refine: usize,
    pub restarts: usize,
    pub cycles: usize,
    /// How long the RTSP server stays down in each restart.
    pub pause: Duration,
    /// Soak: wait after each reconnect before sampling `/proc`.
    pub settle: Duration,
    pub detector_threads: u32,
    /// Niceness of this process and so of everything it starts (agent, RTSP server, broker), so
    /// that other work on the machine does not starve them; 0 leaves it alone.
    pub nice: i32,
    /// A detector manifest instead of the default one.
    pub manifest: Option<std::path::PathBuf>,
    /// `restart_backoff_min_s` and `restart_backoff_max_s`.
    pub backoff: (f64, f64),
}

impl Opts {
    fn defaults(quick: bool) -> Self {
        let (warmup, window, max_cameras, refine, restarts, cycles) = if quick {
            (2.0, 4.0, 4, 0, 3, 5)
        } else {
            (4.0, 12.0, 64, 2, 20, 50)
        };
        Self {
            benches: Vec::new(),
            modes: vec![rig::Mode::MotionOnly, rig::Mode::Detect5Hz],
            warmup: Duration::from_secs_f64(warmup),
            window: Duration::from_secs_f64(window),
            max_cameras,
            cores: cores() as f64,
            small_only: false,
            refine,
            restarts,
            cycles,
            pause: Duration::from_millis(500),
            settle: Duration::from_millis(500),
            detector_threads: 1,
            backoff: (0.05, 0.5),
            manifest: None,
            nice: -10,
        }
    }

    /// The arguments after `--` (cargo adds `--bench`, ignored).
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut o = Self::defaults(args.iter().any(|a| a == "--quick"));
        let mut it = args
            .iter()
            .filter(|a| *a != "--bench" && *a != "--quick" && *a != "--small-only");
        o.small_only = args.iter().any(|a| a == "--small-only");
        while let Some(a) = it.next() {
            let mut value = || {
                it.next()
                    .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
            };
            match a.as_str() {
                "--warmup" => o.warmup = seconds(value()?)?,
                "--window" => o.window = seconds(value()?)?,
                "--pause" => o.pause = seconds(value()?)?,
                "--settle" => o.settle = seconds(value()?)?,
                "--max-cameras" => o.max_cameras = value()?.parse()?,
                "--refine" => o.refine = value()?.parse()?,
                "--cores" => o.cores = value()?.parse()?,
                "--backoff" => o.backoff = backoff(value()?)?,
                "--manifest" => o.manifest = Some(value()?.into()),
                "--nice" => o.nice = value()?.parse()?,
                "--mode" => o.modes = modes(value()?)?,
                "--restarts" => o.restarts = value()?.parse()?,
                "--cycles" => o.cycles = value()?.parse()?,
                "--detector-threads" => o.detector_threads = value()?.parse()?,
                b if BENCHES.contains(&b) => o.benches.push(b.to_string()),
                other => {
                    anyhow::bail!("unknown argument {other}; see tests/benches/cameras/main.rs")
                }
            }
        }
        if o.benches.is_empty() {
            o.benches = BENCHES.iter().map(|b| b.to_string()).collect();
        }
        anyhow::ensure!(
            o.cores.is_finite() && o.cores > 0.0,
            "--cores must be a positive number of cores"
        );
        anyhow::ensure!(
            o.restarts > 0 && o.cycles > 0,
            "--restarts and --cycles must be positive"
        );
        Ok(o)
    }
}

fn seconds(v: &str) -> anyhow::Result<Duration> {
    let s: f64 = v.parse()?;
    anyhow::ensure!(s.is_finite() && s >= 0.0, "{v}: not a duration in seconds");
    Ok(Duration::from_secs_f64(s))
}

/// `motion`, `detect` or `both`.
fn modes(v: &str) -> anyhow::Result<Vec<rig::Mode>> {
    Ok(match v {
        "motion" => vec![rig::Mode::MotionOnly],
        "detect" => vec![rig::Mode::Detect5Hz],
        "both" => vec![rig::Mode::MotionOnly, rig::Mode::Detect5Hz],
        _ => anyhow::bail!("--mode motion|detect|both"),
    })
}

/// `MIN,MAX` seconds.
fn backoff(v: &str) -> anyhow::Result<(f64, f64)> {
    let (a, b) = v
        .split_once(',')
        .ok_or_else(|| anyhow::anyhow!("--backoff MIN,MAX (seconds)"))?;
    let (a, b): (f64, f64) = (a.trim().parse()?, b.trim().parse()?);
    anyhow::ensure!(a > 0.0 && b >= a, "--backoff {v}: need 0 < MIN <= MAX");
    Ok((a, b))
}

/// `cargo bench ... -- ARGS` as typed, for each table's heading.
fn command_line(args: &[String]) -> String {
    let own: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--bench")
        .collect();
    format!(
        "cargo bench -p cascade-tests --bench cameras -- {}",
        own.join(" ")
    )
    .trim_end_matches(" -- ")
    .to_string()
}

/// The agents' settings, and what they are for the header.
fn settings(o: &Opts) -> anyhow::Result<(rig::AgentSettings, String)> {
    let (manifest, name) = detector::choose(o.manifest.as_ref())?;
    let s = rig::AgentSettings {
        manifest,
        detector_threads: o.detector_threads,
        supervisor: format!(
            "stall_timeout_s = 2\nrestart_backoff_min_s = {}\nrestart_backoff_max_s = {}",
            o.backoff.0, o.backoff.1
        ),
        source_extra: ", timeout_s = 2".into(),
    };
    let about = format!(
        "detector: {name}, {} thread(s); supervisor: {}; RTSP over TCP, timeout_s = 2",
        o.detector_threads,
        s.supervisor.replace('\n', ", ")
    );
    Ok((s, about))
}

/// Sets this process's niceness (inherited by every process it starts) and, when it runs in a
/// session of its own (`setsid -w cargo bench ...`), its scheduler autogroup's, which is what
/// counts against other sessions' work where autogroups are on. Says what it did.
fn renice(nice: i32) -> String {
    if nice == 0 {
        return "niceness left alone".into();
    }
    let done = std::process::Command::new("renice")
        .args([
            "-n",
            &nice.to_string(),
            "-p",
            &std::process::id().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !done {
        return format!("could not renice to {nice} (needs root); default priority");
    }
    let group = if !own_session() {
        "not in a session of its own (run under `setsid -w` to prioritise its autogroup too)"
    } else if std::fs::write("/proc/self/autogroup", nice.to_string()).is_ok() {
        "its own autogroup too"
    } else {
        "autogroup unchanged"
    };
    format!("agent, RTSP server and broker at nice {nice}, {group}")
}

/// Whether this process's session was started by this process or by its parent (cargo), so that
/// its autogroup holds nothing but this benchmark.
fn own_session() -> bool {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return false;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    // After the name: state, ppid, pgrp, session.
    let f: Vec<u32> = rest
        .split_whitespace()
        .skip(1)
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect();
    matches!(f.as_slice(), [ppid, _, session] if *session == *ppid || *session == std::process::id())
}

fn run(o: &Opts, cmd: &str) -> anyhow::Result<()> {
    let (s, mut about) = settings(o)?;
    about = format!("{about}; {}", renice(o.nice));
    let broker = match cascade_tests::mosquitto_binary() {
        Some(_) => "uplink to Mosquitto over TLS",
        None => "no broker (Mosquitto not installed; the uplink retries)",
    };
    println!(
        "cascade camera benchmarks: {} cores; {about}; {broker}",
        cores()
    );
    let small = clips::small()?;
    let mut streams = vec![small.clone()];
    if !o.small_only && o.benches.iter().any(|b| b == "realtime" || b == "density") {
        streams.push(clips::full_hd()?);
    }
    for st in &streams {
        println!("  {}: {}", st.label, st.origin);
    }
    for b in &o.benches {
        let table = match b.as_str() {
            "realtime" => load::realtime(&streams, o, &s)?,
            "density" => load::density(&streams, o, &s)?,
            "reconnect" => reconnect::reconnect(&small, o, &s)?,
            _ => reconnect::soak(&small, o, &s)?,
        };
        table.print(&format!("{b} ({cmd})"));
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = command_line(&args);
    let outcome = Opts::parse(&args).and_then(|o| run(&o, &cmd));
    if let Err(e) = outcome {
        eprintln!("camera benchmarks: {e:#}");
        std::process::exit(1);
    }
}
