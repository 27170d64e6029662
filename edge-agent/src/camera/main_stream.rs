//! A camera's main stream (full resolution), next to the sub-stream its motion and detection run
//! on, as Frigate users configure cameras: a thread reads the main stream's coded units into a
//! [`GopCache`] (never decoding them), reconnecting with backoff on its own; when a crop is
//! uploaded, the post stage decodes the one picture nearest to the detected frame from it and cuts
//! the crop there, with the box scaled to the main stream's size. When that fails the crop comes
//! from the sub-stream, counted by reason.

use std::sync::Arc;
use std::time::Duration;

use cascade_shared::clock::SharedClock;
use cascade_shared::config::edge::SourceConfig;
use cascade_shared::retry::Backoff;
use cascade_shared::shutdown::Shutdown;

use super::gop::GopCache;
use crate::source::{self, Packet, SourceError, Stamper};
use crate::telemetry::Telemetry;

/// Coded bytes kept per camera: two groups of pictures of a 4K camera at 16 Mbit/s fit.
pub const MAX_CACHE_BYTES: usize = 16 << 20;
/// The farthest a main-stream picture may be from the detected sub-stream one.
pub const TOLERANCE_US: i64 = 200_000;

/// The cache crops are cut from, and the thread that fills it.
pub type Started = (Arc<GopCache>, std::thread::JoinHandle<()>);

/// What the main-stream thread needs.
pub struct MainStream {
    pub camera_id: String,
    pub source: SourceConfig,
    pub telemetry: Arc<Telemetry>,
    pub clock: SharedClock,
    pub runtime: tokio::runtime::Handle,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl MainStream {
    /// Starts the reader thread; it stops with `shutdown`.
    pub fn spawn(self, shutdown: Shutdown) -> std::io::Result<Started> {
        let cache = Arc::new(GopCache::new(MAX_CACHE_BYTES, TOLERANCE_US));
        let c = cache.clone();
        let handle = std::thread::Builder::new()
            .name(format!("main-{}", self.camera_id))
            .spawn(move || self.run(&c, &shutdown))?;
        Ok((cache, handle))
    }

    fn run(self, cache: &GopCache, shutdown: &Shutdown) {
        let mut backoff = Backoff::between(self.backoff_min, self.backoff_max);
        while !shutdown.is_cancelled() {
            let stop = shutdown.child_token();
            let result = self.read(cache, &stop, &mut backoff);
            stop.cancel();
            cache.clear();
            if shutdown.is_cancelled() {
                return;
            }
            let delay = backoff.next_delay();
            let err = match result {
                Ok(()) => "the main stream ended".to_string(),
                Err(e) => e.to_string(),
            };
            self.telemetry
                .main_stream_failed(&self.camera_id, &err, delay);
            self.wait(delay, shutdown);
        }
    }

    /// Reads one session into the cache until it ends or fails.
    fn read(
        &self,
        cache: &GopCache,
        stop: &Shutdown,
        backoff: &mut Backoff,
    ) -> Result<(), SourceError> {
        let mut src = source::open(&self.source, &self.clock, &self.runtime, stop)?;
        let mut stamper = Stamper::new(src.time_base(), src.is_live(), self.clock.now_utc_us());
        while let Some(packet) = src.next(stop)? {
            if let Packet::Coded(au) = packet {
                let (capture_us, _) = stamper.stamp(au.pts_us, self.clock.now_utc_us());
                cache.push(capture_us, au);
                backoff.reset();
            }
        }
        Ok(())
    }

    fn wait(&self, delay: Duration, shutdown: &Shutdown) {
        let step = Duration::from_millis(50);
        let mut left = delay;
        while !left.is_zero() && !shutdown.is_cancelled() {
            let d = left.min(step);
            self.clock.sleep_blocking(d);
            left -= d;
        }
    }
}
