//! What Linux's `/proc` says about a running process, for benchmarks: CPU time (user + system),
//! resident memory now and at its peak, threads and open file descriptors.

use std::time::Instant;

/// One look at a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub at: Instant,
    /// utime + stime, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
    pub cpu_ticks: u64,
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak RSS), KiB.
    pub hwm_kib: u64,
    /// `Threads`.
    pub threads: u64,
    /// Entries in `/proc/<pid>/fd`.
    pub fds: u64,
}

/// Samples process `pid`; an error when it is gone or `/proc` is unreadable.
pub fn sample(pid: u32) -> std::io::Result<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok(ProcSample {
        at,
        cpu_ticks: cpu_ticks(&stat).ok_or_else(|| bad("stat", &stat))?,
        rss_kib: status_field(&status, "VmRSS").ok_or_else(|| bad("VmRSS", &status))?,
        hwm_kib: status_field(&status, "VmHWM").ok_or_else(|| bad("VmHWM", &status))?,
        threads: status_field(&status, "Threads").ok_or_else(|| bad("Threads", &status))?,
        fds,
    })
}

fn bad(what: &str, text: &str) -> std::io::Error {
    std::io::Error::other(format!("no {what} in /proc: {}", text.trim()))
}

/// utime + stime from the text of `/proc/<pid>/stat`. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted from the last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is index 0, so fields 14 and 15 are indices 11 and 12.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The first number of line `name:` in `/proc/<pid>/status` (kB for memory lines).
pub fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The whole machine's busy CPU time (every core: user, nice, system, irq, softirq, steal), in
/// clock ticks, from the first line of `/proc/stat`.
pub fn host_busy_ticks() -> std::io::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    busy_ticks(&stat).ok_or_else(|| bad("cpu line", &stat))
}

/// Busy ticks from the text of `/proc/stat`: its `cpu` line less idle and iowait.
pub fn busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice].
    let busy = v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4).copied().unwrap_or(0);
    Some(busy)
}

/// CPU use from two tick counts `seconds` apart, in percent of one core.
pub fn ticks_percent(ticks: u64, seconds: f64, ticks_per_second: u64) -> f64 {
    if seconds <= 0.0 || ticks_per_second == 0 {
        return 0.0;
    }
    100.0 * ticks as f64 / ticks_per_second as f64 / seconds
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, Linux's usual value, if that fails).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// CPU use between two samples, in percent of one core (200 = two cores busy).
pub fn cpu_percent(a: &ProcSample, b: &ProcSample, ticks_per_second: u64) -> f64 {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    ticks_percent(
        b.cpu_ticks.saturating_sub(a.cpu_ticks),
        wall,
        ticks_per_second,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_time_past_a_name_with_spaces_and_parentheses() {
        let stat = "42 (tokio (rt) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(cpu_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn reads_status_lines() {
        let status = "Name:\tedge-agent\nVmHWM:\t  124000 kB\nVmRSS:\t   99000 kB\nThreads:\t17\n";
        assert_eq!(status_field(status, "VmRSS"), Some(99_000));
        assert_eq!(status_field(status, "VmHWM"), Some(124_000));
        assert_eq!(status_field(status, "Threads"), Some(17));
        assert_eq!(status_field(status, "VmSwap"), None);
    }

    #[test]
    fn counts_the_machine_busy_without_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(busy_ticks(stat), Some(161));
        assert_eq!(busy_ticks("intr 1 2 3"), None);
        assert!((ticks_percent(150, 1.5, 100) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).expect("own /proc");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib && s.threads >= 1 && s.fds >= 3);
    }
}
