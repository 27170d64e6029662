//! A child process writing to the buffer is killed with SIGKILL at random points; every record it
//! reported as committed must be there, intact, after reopening (20 rounds).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edge_agent::buffer::{Buffer, Limits, NewRecord};

const LIMITS: Limits = Limits {
    max_bytes: 1 << 30,
    max_age_us: i64::MAX / 2,
};

/// The payload of sequence `seq`: 20-60 KB of bytes derived from it, so it can be checked.
fn payload(seq: u64) -> Vec<u8> {
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let len = 20_000 + (x % 40_000) as usize;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Child: writes until killed, printing each committed key after its commit returns.
#[test]
#[ignore = "run by buffer_survives_sigkill as a child process"]
fn crash_child() {
    let Ok(dir) = std::env::var("CASCADE_CRASH_DIR") else {
        return;
    };
    let buffer = Buffer::open(Path::new(&dir), LIMITS).expect("child opens");
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let records = (0..1 + i % 3)
            .map(|_| NewRecord {
                camera: "cam",
                build: Box::new(payload),
            })
            .collect();
        let added = buffer.push(i as i64, records).expect("push").added;
        for (key, seq) in &added {
            writeln!(out, "committed {key} {seq}").expect("stdout");
        }
        out.flush().expect("flush");
        if i % 4 == 3 {
            // Acknowledge (remove) the oldest one, as the uplink would.
            if let Some((key, _)) = added.first() {
                buffer.remove(&[*key]).expect("remove");
                writeln!(out, "removed {key}").expect("stdout");
            }
        }
    }
}

#[test]
fn buffer_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut total_committed = 0usize;
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CASCADE_CRASH_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => lines.push(l),
                    Err(_) => break,
                }
            }
            lines
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = Duration::from_millis(30 + seed % 250);
        let start = Instant::now();
        while start.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let lines = reader.join().expect("reader");
        let mut committed = std::collections::BTreeMap::new();
        for l in &lines {
            let parts: Vec<&str> = l.split_whitespace().collect();
            match parts.as_slice() {
                ["committed", k, s] => {
                    committed.insert(
                        k.parse::<u64>().expect("key"),
                        s.parse::<u64>().expect("seq"),
                    );
                }
                ["removed", k] => {
                    committed.remove(&k.parse::<u64>().expect("key"));
                }
                _ => {}
            }
        }
        let buffer = Buffer::open(dir.path(), LIMITS)
            .unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
        let present: std::collections::BTreeMap<u64, Vec<u8>> = buffer
            .pending(0, usize::MAX)
            .expect("read")
            .into_iter()
            .map(|r| (r.key, r.payload))
            .collect();
        for (key, seq) in &committed {
            let got = present
                .get(key)
                .unwrap_or_else(|| panic!("round {round}: committed record {key} lost"));
            assert_eq!(got, &payload(*seq), "round {round}: record {key} damaged");
        }
        // Every record present is intact too (including ones committed after the last print).
        assert_eq!(buffer.stats().records as usize, present.len());
        total_committed += committed.len();
        drop(buffer);
    }
    assert!(
        total_committed > 20,
        "the child barely wrote anything ({total_committed} records)"
    );
}
