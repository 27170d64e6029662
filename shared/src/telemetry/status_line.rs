//! One status line at the bottom of a terminal (a long run's progress), redrawn in place, that
//! log lines never garble: the log writer clears the line before each log record and the next
//! redraw puts it back. Nothing is drawn when standard error is not a terminal (journald,
//! containers, pipes and files keep plain logs).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// Whether a line is on screen now; the lock also keeps a redraw and a log record apart.
static SHOWN: Mutex<bool> = Mutex::new(false);

/// Standard error is a terminal that understands `\r` and "erase line" (not `TERM=dumb`).
pub fn available() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// Draws `line` over the previous one.
pub fn draw(line: &str) {
    let Ok(mut shown) = SHOWN.lock() else { return };
    let mut err = std::io::stderr().lock();
    // Best effort: a terminal that went away is no reason to stop the agent.
    let _ = write!(err, "\r\x1b[K{line}");
    let _ = err.flush();
    *shown = true;
}

/// Removes the line (at exit, so the shell prompt starts clean).
pub fn clear() {
    let Ok(mut shown) = SHOWN.lock() else { return };
    if *shown {
        let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        *shown = false;
    }
}

/// The log writer: standard error, with the status line cleared first when one is shown.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let shown = SHOWN.lock();
        let mut err = std::io::stderr().lock();
        if let Ok(mut shown) = shown
            && *shown
        {
            err.write_all(b"\r\x1b[K")?;
            *shown = false;
        }
        err.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// For `tracing_subscriber::fmt().with_writer(...)`.
pub fn log_writer() -> LogWriter {
    LogWriter
}
