//! The RTSP server killed and started again on the same port, over and over: how long the agent
//! takes to decode a frame again, and whether its file descriptors, threads and memory stay flat.

use std::time::{Duration, Instant};

use cascade_tests::eventually;
use cascade_tests::procfs::ProcSample;

use crate::clips::Stream;
use crate::rig::{self, Agent, AgentSettings, Mode, Rig};
use crate::{Opts, Table};

/// Reconnect time after `o.restarts` server restarts: percentiles.
pub fn reconnect(stream: &Stream, o: &Opts, s: &AgentSettings) -> anyhow::Result<Table> {
    let mut rig = Rig::start(stream)?;
    let agent = rig.agent(1, Mode::MotionOnly, s)?;
    let mut times = Vec::with_capacity(o.restarts);
    for _ in 0..o.restarts {
        times.push(cycle(&mut rig, &agent, o.pause)?.as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let mut t = Table::new(&["restarts", "min ms", "p50 ms", "p90 ms", "p99 ms", "max ms"]);
    t.row(vec![
        times.len().to_string(),
        format!("{:.0}", percentile(&times, 0.0)),
        format!("{:.0}", percentile(&times, 0.5)),
        format!("{:.0}", percentile(&times, 0.9)),
        format!("{:.0}", percentile(&times, 0.99)),
        format!("{:.0}", percentile(&times, 1.0)),
    ]);
    t.note(format!(
        "{}, one camera, motion only; server down {:.1} s each time; time from the server listening again to the next decoded frame (frames_decoded_total polled every 20 ms)",
        stream.label,
        o.pause.as_secs_f64()
    ));
    Ok(t)
}

/// `o.cycles` restarts with the detector on; `/proc` sampled after each.
pub fn soak(stream: &Stream, o: &Opts, s: &AgentSettings) -> anyhow::Result<Table> {
    let mut rig = Rig::start(stream)?;
    let agent = rig.agent(1, Mode::Detect5Hz, s)?;
    std::thread::sleep(o.warmup);
    let start = agent.proc()?;
    let mut samples = Vec::with_capacity(o.cycles);
    let began = Instant::now();
    for _ in 0..o.cycles {
        cycle(&mut rig, &agent, o.pause)?;
        std::thread::sleep(o.settle);
        samples.push(agent.proc()?);
    }
    let mut t = Table::new(&["", "start", "first", "last", "max", "flat"]);
    let row = |name: &str, f: fn(&ProcSample) -> u64, slack: u64, show: fn(u64) -> String| {
        let v: Vec<u64> = samples.iter().map(f).collect();
        let (first, last) = (v.first().copied(), v.last().copied());
        let max = v.iter().copied().max();
        let flat = match (first, last) {
            (Some(a), Some(b)) => b <= a + slack,
            _ => false,
        };
        let s = |x: Option<u64>| x.map(show).unwrap_or_default();
        vec![
            name.to_string(),
            show(f(&start)),
            s(first),
            s(last),
            s(max),
            if flat { "yes" } else { "NO" }.to_string(),
        ]
    };
    t.row(row("fds", |p| p.fds, 2, |x| x.to_string()));
    t.row(row("threads", |p| p.threads, 2, |x| x.to_string()));
    t.row(row("rss MiB", |p| p.rss_kib, 8 * 1024, rig::mib));
    t.note(format!(
        "{}, one camera, detector at 5 Hz; {} cycles of: server killed, down {:.1} s, back, first frame, {:.1} s settle; {:.0} s in all; flat = last within first + 2 (fds, threads) or + 8 MiB (RSS); RSS slope over the second half {:+.1} KiB/cycle",
        stream.label,
        samples.len(),
        o.pause.as_secs_f64(),
        o.settle.as_secs_f64(),
        began.elapsed().as_secs_f64(),
        slope(&samples[samples.len() / 2..], |p| p.rss_kib as f64)
    ));
    Ok(t)
}

/// Waits for frames, kills the server, waits `pause`, starts it again; returns the time from the
/// server listening again to the agent's next decoded frame.
fn cycle(rig: &mut Rig, agent: &Agent, pause: Duration) -> anyhow::Result<Duration> {
    let f = agent.frames();
    let streaming = eventually(Duration::from_secs(30), || agent.frames() > f);
    anyhow::ensure!(streaming.is_ok(), "no frames before the kill");
    rig.server.kill();
    std::thread::sleep(pause);
    let before = agent.frames();
    restart(rig)?;
    let back_from = Instant::now();
    let back = eventually(Duration::from_secs(60), || agent.frames() > before);
    anyhow::ensure!(
        back.is_ok(),
        "no frame within 60 s of the restart; log:\n{}",
        agent.process.log_text()
    );
    Ok(back_from.elapsed())
}

/// The port may still be held for a moment after the kill: a few tries.
fn restart(rig: &mut Rig) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..20 {
        match rig.server.restart() {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("the RTSP server did not start")))
}

/// Nearest-rank percentile of sorted `v` (`q` in 0..=1).
pub fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Least-squares slope of `f` per sample.
fn slope(v: &[ProcSample], f: impl Fn(&ProcSample) -> f64) -> f64 {
    let n = v.len() as f64;
    if v.len() < 2 {
        return 0.0;
    }
    let mx = (n - 1.0) / 2.0;
    let my = v.iter().map(&f).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, p) in v.iter().enumerate() {
        let dx = i as f64 - mx;
        num += dx * (f(p) - my);
        den += dx * dx;
    }
    num / den
}
