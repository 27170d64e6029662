//! Cross-cutting telemetry helpers: logging set-up for the binaries, and reading a metric back.

pub mod status_line;

/// Logs to stderr, level from `RUST_LOG` (default `info`), colours only on a terminal.
pub fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(status_line::log_writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The sum of a metric family's counters and gauges across its labels (summaries and tests).
pub fn metric_total(registry: &prometheus::Registry, full_name: &str) -> f64 {
    family_total(&registry.gather(), full_name)
}

/// [`metric_total`] over families already gathered (several figures from one gather).
pub fn family_total(families: &[prometheus::proto::MetricFamily], full_name: &str) -> f64 {
    families
        .iter()
        .filter(|f| f.name() == full_name)
        .flat_map(|f| {
            f.get_metric()
                .iter()
                .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
                .collect::<Vec<_>>()
        })
        // Not `sum()`: a float sum of nothing is -0.0, which prints as "-0".
        .fold(0.0, |a, b| a + b)
}
