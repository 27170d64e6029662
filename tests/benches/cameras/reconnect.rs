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
    let in_order: Vec<String> = times.iter().map(|t| format!("{t:.0}")).collect();
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
    t.note(format!("each, in order (ms): {}", in_order.join(" ")));
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
    let mut t = Table::new(&["", "start", "first", "mid", "last", "max", "flat"]);
    t.row(soak_row("fds", &start, &samples, |p| p.fds, 0, 2));
    t.row(soak_row("threads", &start, &samples, |p| p.threads, 0, 2));
    let half = samples.len() / 2;
    t.row(soak_row(
        "rss MiB",
        &start,
        &samples,
        |p| p.rss_kib,
        half,
        2048,
    ));
    t.note(format!(
        "{}, one camera, detector at 5 Hz; {} cycles of: server killed, down {:.1} s, back, first frame, {:.1} s settle; {:.0} s in all",
        stream.label,
        samples.len(),
        o.pause.as_secs_f64(),
        o.settle.as_secs_f64(),
        began.elapsed().as_secs_f64(),
    ));
    t.note(format!(
        "flat = last within first + 2 (fds, threads); RSS: last within mid + 2 MiB (the second half, once caches and allocator arenas have grown); RSS slope over the second half {:+.1} KiB/cycle",
        slope(&samples[half..], |p| p.rss_kib as f64)
    ));
    Ok(t)
}

/// One resource: at the start, after the first cycle, half-way, last, the most; flat when the last
/// is within `slack` of the sample at index `from`.
fn soak_row(
    name: &str,
    start: &ProcSample,
    samples: &[ProcSample],
    f: fn(&ProcSample) -> u64,
    from: usize,
    slack: u64,
) -> Vec<String> {
    let v: Vec<u64> = samples.iter().map(f).collect();
    let show = |x: Option<u64>| match x {
        Some(k) if name.contains("MiB") => rig::mib(k),
        Some(k) => k.to_string(),
        None => String::new(),
    };
    let last = v.last().copied();
    let flat = matches!((v.get(from), last), (Some(&a), Some(b)) if b <= a + slack);
    vec![
        name.to_string(),
        show(Some(f(start))),
        show(v.first().copied()),
        show(v.get(v.len() / 2).copied()),
        show(last),
        show(v.iter().copied().max()),
        if flat { "yes" } else { "NO" }.to_string(),
    ]
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
