//! What the inference server backend tells the rest of the program: each request's outcome and
//! latency, and its health (circuit state, last error, next probe) whenever that changes. The
//! [`ServerObserver`] at the edge turns them into metrics and log lines (the analyzer's
//! telemetry); [`ServerStatus::health`] is what `/readyz` and the batcher's retries read.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::breaker::{Breaker, CircuitState};

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// No answer, a timeout, or a 5xx/429 after the retries.
    Failed,
    /// The server answered that the request is wrong (4xx), or with a body that makes no sense.
    Refused,
    /// Not sent: the circuit is open.
    CircuitOpen,
}

impl Outcome {
    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Refused => "refused",
            Self::CircuitOpen => "circuit_open",
        }
    }
}

/// The server as the backend last saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerHealth {
    /// The server's base URL.
    pub url: String,
    pub state: CircuitState,
    /// Failed requests in a row.
    pub failures: u32,
    /// When an open circuit lets its next probe through.
    pub probe_at: Option<Instant>,
    /// The last request's error, until one succeeds; none before the first request.
    pub error: Option<String>,
}

impl ServerHealth {
    /// The last request worked (or none was made yet) and the circuit is closed.
    pub fn ready(&self) -> bool {
        self.error.is_none() && self.state == CircuitState::Closed
    }

    /// Why it is not ready, at `now`, e.g. `inference server http://h:8000: connection refused;
    /// circuit open, next probe in 4 s`.
    pub fn reason(&self, now: Instant) -> Option<String> {
        if self.ready() {
            return None;
        }
        let error = self.error.as_deref().unwrap_or("no request has succeeded");
        let circuit = match (self.state, self.probe_at) {
            (CircuitState::Open, Some(at)) => format!(
                "circuit open, next probe in {} s",
                at.saturating_duration_since(now).as_secs_f64().ceil()
            ),
            (CircuitState::HalfOpen, _) => "circuit half-open, probing".to_string(),
            _ => format!("{} failed request(s) in a row", self.failures),
        };
        Some(format!("inference server {}: {error}; {circuit}", self.url))
    }

    /// How long a caller whose request failed should wait before trying again: until the
    /// circuit's probe when open, else `backoff`; `None` when the last request worked.
    pub fn retry_in(&self, now: Instant, backoff: Duration) -> Option<Duration> {
        self.error.as_ref()?;
        Some(match (self.state, self.probe_at) {
            (CircuitState::Open, Some(at)) => at.saturating_duration_since(now).max(backoff / 4),
            _ => backoff,
        })
    }
}

/// The edge where outcomes and health changes leave the backend (metrics and logs).
pub trait ServerObserver: Send + Sync {
    fn request(&self, outcome: Outcome, seconds: f64);
    /// The circuit's state changed (each change, probes included: for a gauge).
    fn circuit(&self, state: CircuitState);
    /// The server turned ready or not ready, or its circuit opened or closed: one call per such
    /// change, not per failure, and not per probe of an open circuit (for a log line).
    fn changed(&self, health: &ServerHealth);
}

/// Shared between the backend (which writes it) and whoever reports on it.
pub struct ServerStatus {
    health: Mutex<ServerHealth>,
    observer: Box<dyn ServerObserver>,
}

impl ServerStatus {
    pub fn new(url: &str, observer: Box<dyn ServerObserver>) -> Self {
        Self {
            health: Mutex::new(ServerHealth {
                url: url.trim_end_matches('/').to_string(),
                state: CircuitState::Closed,
                failures: 0,
                probe_at: None,
                error: None,
            }),
            observer,
        }
    }

    pub fn health(&self) -> ServerHealth {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn request(&self, outcome: Outcome, seconds: f64) {
        self.observer.request(outcome, seconds);
    }

    /// The breaker's state and the last request's error (`None`: it worked).
    pub(super) fn set(&self, b: &Breaker, error: Option<String>) {
        self.update(|h| {
            h.state = b.state();
            h.failures = b.failures();
            h.probe_at = b.probe_at();
            h.error = error;
        });
    }

    /// The breaker's state only (it turned half-open).
    pub(super) fn set_state(&self, b: &Breaker) {
        self.update(|h| h.state = b.state());
    }

    fn update(&self, f: impl FnOnce(&mut ServerHealth)) {
        // Open and half-open are one "open" to the log: a failed probe is no news.
        let key = |h: &ServerHealth| (h.ready(), h.state == CircuitState::Closed);
        let (state, changed) = {
            let mut h = self.health.lock().unwrap_or_else(PoisonError::into_inner);
            let before = (h.state, key(&h));
            f(&mut h);
            let state = (before.0 != h.state).then_some(h.state);
            (state, (before.1 != key(&h)).then(|| h.clone()))
        };
        if let Some(s) = state {
            self.observer.circuit(s);
        }
        if let Some(h) = changed {
            self.observer.changed(&h);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(CircuitState, bool)>>);

    impl ServerObserver for Arc<Seen> {
        fn request(&self, _: Outcome, _: f64) {}
        fn circuit(&self, _: CircuitState) {}
        fn changed(&self, h: &ServerHealth) {
            self.0.lock().expect("lock").push((h.state, h.ready()));
        }
    }

    #[test]
    fn changes_are_reported_once_and_the_reason_names_url_error_and_probe() {
        let seen = Arc::new(Seen::default());
        let status = ServerStatus::new("http://h:8000/", Box::new(seen.clone()));
        let t0 = Instant::now();
        let mut b = Breaker::new(2, Duration::from_secs(4));
        for _ in 0..3 {
            b.failure(t0);
            status.set(&b, Some("connection refused".into()));
        }
        let h = status.health();
        assert_eq!(
            h.reason(t0).as_deref(),
            Some(
                "inference server http://h:8000: connection refused; circuit open, next probe in 4 s"
            )
        );
        assert_eq!(
            h.retry_in(t0, Duration::from_millis(200)),
            Some(Duration::from_secs(4))
        );
        // A probe that fails again is no news.
        assert_eq!(b.admit(t0 + Duration::from_secs(4)), Ok(()));
        status.set_state(&b);
        b.failure(t0 + Duration::from_secs(4));
        status.set(&b, Some("connection refused".into()));
        b.success();
        status.set(&b, None);
        assert!(status.health().ready());
        assert_eq!(
            *seen.0.lock().expect("lock"),
            vec![
                (CircuitState::Closed, false),
                (CircuitState::Open, false),
                (CircuitState::Closed, true)
            ],
            "one call per change, not per failure"
        );
    }

    #[test]
    fn a_refusal_waits_like_an_outage_and_a_success_clears_it() {
        let status = ServerStatus::new("http://h", Box::new(Arc::new(Seen::default())));
        let mut b = Breaker::new(2, Duration::from_secs(4));
        let t0 = Instant::now();
        b.failure(t0);
        status.set(&b, Some("HTTP 404: model not loaded".into()));
        let h = status.health();
        assert!(!h.ready());
        let backoff = Duration::from_millis(200);
        assert_eq!(
            h.retry_in(t0, backoff),
            Some(backoff),
            "closed: the backoff"
        );
        b.success();
        status.set(&b, None);
        assert_eq!(status.health().retry_in(t0, backoff), None);
    }
}
