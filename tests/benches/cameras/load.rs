//! Load at real time: what one camera costs (CPU, RSS), and how many cameras one agent runs within
//! a CPU budget (`--cores`) without losing frames, motion only and with the detector at 5 Hz.

use crate::clips::Stream;
use crate::rig::{self, AgentSettings, Mode, Rig, Window};
use crate::{Opts, Table};

/// A camera keeps up when it decodes at least this share of the stream's frames.
const KEEPS_UP: f64 = 0.97;
/// The detector keeps up when each camera gets at least this share of its 5 runs per second
/// (a frame dropped because the detector is still busy delays the next run by one frame
/// interval, 100 ms at 10 fps).
const DETECTS: f64 = 0.8;

/// What the CPU columns mean, under each table.
const CPU_NOTE: &str = "cpu % = the agent process, % of one core (/proc/<pid>/stat over the window); server % = the RTSP server; others % = the rest of the machine in the same window (other work); fps = frames decoded per second (slowest camera) / the stream's";

/// One camera per stream and mode: CPU, RSS, peak RSS, frames and detector runs per second.
pub fn realtime(streams: &[Stream], o: &Opts, s: &AgentSettings) -> anyhow::Result<Table> {
    let mut t = Table::new(&[
        "stream", "mode", "cpu %", "rss MiB", "peak MiB", "fps", "det/s", "busy/s", "server %",
        "others %",
    ]);
    for stream in streams {
        let mut rig = Rig::start(stream)?;
        for &mode in &o.modes {
            let agent = rig.agent(1, mode, s)?;
            let w = rig::measure(&rig, &agent, o.warmup, o.window)?;
            t.row(vec![
                stream.label.clone(),
                mode.label().into(),
                format!("{:.1}", w.cpu_percent),
                rig::mib(w.end.rss_kib),
                rig::mib(w.end.hwm_kib),
                format!("{:.1}/{}", w.min_fps(), stream.fps),
                format!("{:.2}", w.mean(|c| c.detector_runs)),
                format!("{:.2}", w.mean(|c| c.busy_drops)),
                format!("{:.1}", w.server_percent),
                format!("{:.1}", w.others_percent),
            ]);
        }
    }
    t.note(CPU_NOTE.into());
    Ok(t)
}

/// N = 1, 2, 4, ... cameras in one agent until one condition fails: the agent within `o.cores`
/// cores (100 % each), every camera at its stream's frame rate, and (with detection) 5 runs/s per camera;
/// then `o.refine` halvings between the last N that held and the first that did not.
pub fn density(streams: &[Stream], o: &Opts, s: &AgentSettings) -> anyhow::Result<Table> {
    let mut t = Table::new(&[
        "stream",
        "mode",
        "N",
        "cpu %",
        "cpu %/cam",
        "rss MiB",
        "min fps",
        "det/s/cam",
        "server %",
        "others %",
        "ok",
    ]);
    let mut best = Vec::new();
    for stream in streams {
        let mut rig = Rig::start(stream)?;
        for &mode in &o.modes {
            let (largest, per_cam) = search(&mut rig, stream, mode, o, s, &mut t)?;
            let by_cpu = per_cam.map_or(String::new(), |c| {
                format!(
                    " (by CPU alone {:.0})",
                    (100.0 * o.cores / c.max(0.1)).floor()
                )
            });
            best.push(format!(
                "{} {}: {largest}{by_cpu}",
                stream.label,
                mode.label()
            ));
        }
    }
    t.note(CPU_NOTE.into());
    t.note(format!(
        "largest N within {} core(s) without losing frames (N doubled up to {}, then {} halving steps): {}",
        o.cores,
        o.max_cameras,
        o.refine,
        best.join("; ")
    ));
    Ok(t)
}

/// The largest N that held, and the agent's CPU % per camera there.
fn search(
    rig: &mut Rig,
    stream: &Stream,
    mode: Mode,
    o: &Opts,
    s: &AgentSettings,
    t: &mut Table,
) -> anyhow::Result<(usize, Option<f64>)> {
    let (mut good, mut bad, mut per_cam) = (0, None, None);
    let mut step = |n: usize, t: &mut Table| -> anyhow::Result<bool> {
        let agent = rig.agent(n, mode, s)?;
        let w = rig::measure(rig, &agent, o.warmup, o.window)?;
        drop(agent);
        let ok = sustained(&w, stream, mode, o.cores);
        t.row(density_row(stream, mode, n, &w, ok));
        if ok {
            per_cam = Some(w.cpu_percent / n as f64);
        }
        Ok(ok)
    };
    for n in counts(o.max_cameras) {
        if !step(n, t)? {
            bad = Some(n);
            break;
        }
        good = n;
    }
    for _ in 0..o.refine {
        let Some(b) = bad else { break };
        let mid = good + (b - good) / 2;
        if mid <= good {
            break;
        }
        if step(mid, t)? {
            good = mid;
        } else {
            bad = Some(mid);
        }
    }
    Ok((good, per_cam))
}

fn counts(max: usize) -> impl Iterator<Item = usize> {
    std::iter::successors(Some(1usize), |n| n.checked_mul(2)).take_while(move |n| *n <= max)
}

fn sustained(w: &Window, stream: &Stream, mode: Mode, cores: f64) -> bool {
    let frames = w.min_fps() >= KEEPS_UP * stream.fps;
    let detects =
        mode == Mode::MotionOnly || w.rates.iter().all(|r| r.detector_runs >= DETECTS * 5.0);
    w.cpu_percent <= 100.0 * cores && frames && detects
}

fn density_row(stream: &Stream, mode: Mode, n: usize, w: &Window, ok: bool) -> Vec<String> {
    vec![
        stream.label.clone(),
        mode.label().into(),
        n.to_string(),
        format!("{:.1}", w.cpu_percent),
        format!("{:.1}", w.cpu_percent / n as f64),
        rig::mib(w.end.rss_kib),
        format!("{:.1}/{}", w.min_fps(), stream.fps),
        format!("{:.2}", w.mean(|c| c.detector_runs)),
        format!("{:.1}", w.server_percent),
        format!("{:.1}", w.others_percent),
        if ok { "yes" } else { "no" }.into(),
    ]
}
