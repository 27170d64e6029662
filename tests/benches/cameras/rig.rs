//! What every camera benchmark stands on: a real Mosquitto over TLS (when installed), the real
//! GStreamer RTSP server playing one stream in real time, and the real `edge-agent` binary with N
//! RTSP cameras all reading that stream, watched through `/proc` and its `/metrics`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cascade_tests::procfs::{self, ProcSample};
use cascade_tests::{EdgeProcess, Mosquitto, RtspServer, eventually, mosquitto_binary, repo_root};

use crate::clips::Stream;

/// With or without the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decode and motion on every frame; motion never fires (threshold 255), so the detector
    /// never runs.
    MotionOnly,
    /// Motion fires on any change (threshold 1, no recalibration), so the detector runs at its
    /// 5 Hz per camera limit whenever the picture moves at all.
    Detect5Hz,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Self::MotionOnly => "motion only",
            Self::Detect5Hz => "detect 5 Hz",
        }
    }

    fn motion_toml(self) -> &'static str {
        match self {
            Self::MotionOnly => "threshold = 255",
            Self::Detect5Hz => "threshold = 1\nmin_area = 0.0\nglobal_change = 1.0",
        }
    }
}

/// Agent settings shared by every run.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub manifest: PathBuf,
    pub detector_threads: u32,
    /// `[supervisor]` lines.
    pub supervisor: String,
    /// Extra keys of each RTSP source table (e.g. `, timeout_s = 2`).
    pub source_extra: String,
}

/// The broker, the RTSP server and a temp dir; agents come and go on top.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub server: RtspServer,
    broker: Option<Mosquitto>,
    started: usize,
}

impl Rig {
    pub fn start(stream: &Stream) -> anyhow::Result<Self> {
        anyhow::ensure!(
            RtspServer::available(),
            "GStreamer's RTSP server is not installed (scripts/setup.sh installs it)"
        );
        let dir = tempfile::tempdir()?;
        let broker = match mosquitto_binary() {
            Some(bin) => Some(Mosquitto::start(bin, dir.path(), true)?),
            None => None,
        };
        let server = RtspServer::start(&stream.clip, None, "h264")?;
        Ok(Self {
            dir,
            server,
            broker,
            started: 0,
        })
    }

    /// Starts an agent with `cameras` RTSP cameras on this rig's server and waits until every one
    /// of them streams.
    pub fn agent(
        &mut self,
        cameras: usize,
        mode: Mode,
        s: &AgentSettings,
    ) -> anyhow::Result<Agent> {
        self.started += 1;
        let run = self.dir.path().join(format!("agent-{}", self.started));
        std::fs::create_dir_all(&run)?;
        let config = self.write_config(&run, cameras, mode, s)?;
        let process = EdgeProcess::start(&config, &run.join("edge.log"))?;
        let agent = Agent {
            process,
            cameras: (1..=cameras).map(|i| format!("cam-{i}")).collect(),
        };
        let up = eventually(Duration::from_secs(60), || {
            agent.all_up() && (mode == Mode::MotionOnly || agent.detected())
        });
        anyhow::ensure!(
            up.is_ok(),
            "not every camera came up (or the detector never ran); log:\n{}",
            agent.process.log_text()
        );
        Ok(agent)
    }

    fn write_config(
        &self,
        run: &Path,
        cameras: usize,
        mode: Mode,
        s: &AgentSettings,
    ) -> anyhow::Result<PathBuf> {
        let url = self.server.url();
        let cams: String = (1..=cameras)
            .map(|i| {
                format!(
                    "[[camera]]\nid = \"cam-{i}\"\nsource = {{ kind = \"rtsp\", url = \"{url}\"{} }}\n\n",
                    s.source_extra
                )
            })
            .collect();
        let runtime = repo_root().join(".cache/onnxruntime/libonnxruntime.so");
        let runtime = if runtime.is_file() {
            format!("onnxruntime = \"{}\"\n", runtime.display())
        } else {
            String::new()
        };
        let text = format!(
            "[device]\nid = \"dev-bench\"\n\n{cams}[motion]\n{motion}\n\n[detector]\nmanifest = \"{manifest}\"\n\
             {runtime}threads = {threads}\nmax_rate_hz = 5.0\nmotion_rate_hz = 5.0\n\n[buffer]\ndir = \"{buffer}\"\n\n{uplink}\n\
             [telemetry]\nlisten = \"127.0.0.1:0\"\n\n[supervisor]\n{supervisor}\n",
            motion = mode.motion_toml(),
            manifest = s.manifest.display(),
            threads = s.detector_threads,
            buffer = run.join("buffer").display(),
            uplink = self.uplink_toml(),
            supervisor = s.supervisor,
        );
        let path = run.join("edge.toml");
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// TLS to the broker; without Mosquitto, a closed loopback port (the uplink keeps retrying,
    /// which costs next to nothing).
    fn uplink_toml(&self) -> String {
        match &self.broker {
            Some(b) => format!(
                "[uplink]\nhost = \"localhost\"\nport = {}\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
                b.port,
                b.certs.ca.display(),
                b.certs.client_cert.display(),
                b.certs.client_key.display()
            ),
            None => format!(
                "[uplink]\nhost = \"127.0.0.1\"\nport = {}\ntls = false\n",
                cascade_tests::free_port()
            ),
        }
    }
}

/// A running agent and its camera ids.
pub struct Agent {
    pub process: EdgeProcess,
    pub cameras: Vec<String>,
}

/// Counters of one camera, or of all cameras summed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub frames: f64,
    pub detector_runs: f64,
    pub busy_drops: f64,
}

impl Agent {
    pub fn all_up(&self) -> bool {
        let text = self.process.metrics();
        self.cameras.iter().all(|c| {
            cascade_tests::metric_value(&text, "cascade_edge_camera_up", &[("camera", c)]) == 1.0
        })
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.process
            .pid()
            .ok_or_else(|| anyhow::anyhow!("the agent is not running"))
    }

    pub fn proc(&self) -> anyhow::Result<ProcSample> {
        Ok(procfs::sample(self.pid()?)?)
    }

    /// Whether the detector has run at all (its model is loaded).
    pub fn detected(&self) -> bool {
        self.process.metric("detector_runs_total", &[]) > 0.0
    }

    /// Frames decoded, summed over every camera (one `/metrics` read).
    pub fn frames(&self) -> f64 {
        self.process.metric("frames_decoded_total", &[])
    }

    /// Each camera's counters, from one `/metrics` read.
    pub fn counters(&self) -> Vec<Counters> {
        let text = self.process.metrics();
        let get = |name: &str, labels: &[(&str, &str)]| {
            cascade_tests::metric_value(&text, &format!("cascade_edge_{name}"), labels)
        };
        self.cameras
            .iter()
            .map(|c| Counters {
                frames: get("frames_decoded_total", &[("camera", c)]),
                detector_runs: get("detector_runs_total", &[("camera", c)]),
                busy_drops: get(
                    "detector_dropped_frames_total",
                    &[("camera", c), ("reason", "busy")],
                ),
            })
            .collect()
    }
}

/// What one measuring window saw.
#[derive(Debug, Clone)]
pub struct Window {
    /// Percent of one core: the whole agent, the RTSP server, everything else on the machine.
    pub cpu_percent: f64,
    pub server_percent: f64,
    pub others_percent: f64,
    pub end: ProcSample,
    /// Per camera, per second.
    pub rates: Vec<Counters>,
}

impl Window {
    /// The slowest camera's decoded frames per second.
    pub fn min_fps(&self) -> f64 {
        self.rates
            .iter()
            .map(|r| r.frames)
            .fold(f64::INFINITY, f64::min)
    }

    /// Mean over cameras of a per-camera rate.
    pub fn mean(&self, f: impl Fn(&Counters) -> f64) -> f64 {
        self.rates.iter().map(f).sum::<f64>() / self.rates.len().max(1) as f64
    }
}

/// CPU ticks of the agent, the server and the machine, and the agent's counters, at one moment.
struct Point {
    agent: ProcSample,
    server: u64,
    host: u64,
    counters: Vec<Counters>,
}

impl Point {
    fn take(rig: &Rig, agent: &Agent) -> anyhow::Result<Self> {
        let server = match rig.server.pid() {
            Some(pid) => procfs::sample(pid)?.cpu_ticks,
            None => 0,
        };
        Ok(Self {
            agent: agent.proc()?,
            server,
            host: procfs::host_busy_ticks()?,
            counters: agent.counters(),
        })
    }
}

/// Lets the agent settle for `warmup`, then measures for `window`.
pub fn measure(
    rig: &Rig,
    agent: &Agent,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Window> {
    std::thread::sleep(warmup);
    let ticks = procfs::ticks_per_second();
    let a = Point::take(rig, agent)?;
    std::thread::sleep(window);
    let b = Point::take(rig, agent)?;
    let seconds = b.agent.at.duration_since(a.agent.at).as_secs_f64();
    let rates = a
        .counters
        .iter()
        .zip(&b.counters)
        .map(|(x, y)| Counters {
            frames: (y.frames - x.frames) / seconds,
            detector_runs: (y.detector_runs - x.detector_runs) / seconds,
            busy_drops: (y.busy_drops - x.busy_drops) / seconds,
        })
        .collect();
    let pct = |t: u64| procfs::ticks_percent(t, seconds, ticks);
    let cpu_percent = procfs::cpu_percent(&a.agent, &b.agent, ticks);
    let server_percent = pct(b.server.saturating_sub(a.server));
    let host = pct(b.host.saturating_sub(a.host));
    Ok(Window {
        cpu_percent,
        server_percent,
        others_percent: (host - cpu_percent - server_percent).max(0.0),
        end: b.agent,
        rates,
    })
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}
