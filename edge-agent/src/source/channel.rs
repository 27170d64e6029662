//! A source fed by another task through a bounded channel: how an async source (RTSP, on the tokio
//! runtime) hands packets to the blocking decoder. The producer owns a clone of the camera's stop
//! token and drops its sender when stopped, which ends the stream here.

use std::sync::Arc;

use cascade_shared::shutdown::Shutdown;
use tokio::sync::mpsc;

use super::{Packet, Source, SourceError, TimeBase};

/// The producer's end.
pub type PacketSender = mpsc::Sender<Result<Packet, SourceError>>;

/// The consumer's end: a [`Source`] for the capture thread.
pub struct ChannelSource {
    rx: mpsc::Receiver<Result<Packet, SourceError>>,
    live: bool,
    time_base: Option<Arc<TimeBase>>,
}

impl ChannelSource {
    /// The producer maps stream time to UTC through `base`.
    #[must_use]
    pub fn with_time_base(mut self, base: Arc<TimeBase>) -> Self {
        self.time_base = Some(base);
        self
    }
}

/// A bounded channel of `capacity` packets. When the decoder falls behind, the producer waits (or,
/// for a live camera, drops and counts: its choice, since only it knows what it can skip).
pub fn channel(capacity: usize, live: bool) -> (PacketSender, ChannelSource) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (
        tx,
        ChannelSource {
            rx,
            live,
            time_base: None,
        },
    )
}

impl Source for ChannelSource {
    /// Blocks the calling (non-async) thread; never call it from the runtime.
    fn next(&mut self, _stop: &Shutdown) -> Result<Option<Packet>, SourceError> {
        self.rx.blocking_recv().transpose()
    }

    fn is_live(&self) -> bool {
        self.live
    }

    fn time_base(&self) -> Option<Arc<TimeBase>> {
        self.time_base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::AccessUnit;

    #[test]
    fn packets_then_errors_then_the_end_pass_through() {
        let (tx, mut src) = channel(2, true);
        let producer = std::thread::spawn(move || {
            let au = AccessUnit {
                data: vec![0, 0, 0, 1, 0x65],
                pts_us: 40,
                duration_us: 40,
            };
            tx.blocking_send(Ok(Packet::Coded(au))).expect("send");
            tx.blocking_send(Err(SourceError::Empty {
                path: "rtsp://cam".into(),
            }))
            .expect("send");
        });
        let stop = Shutdown::new();
        assert!(matches!(src.next(&stop), Ok(Some(Packet::Coded(a))) if a.pts_us == 40));
        assert!(matches!(src.next(&stop), Err(SourceError::Empty { .. })));
        producer.join().expect("producer");
        assert!(
            matches!(src.next(&stop), Ok(None)),
            "sender dropped: the end"
        );
        assert!(src.is_live());
    }
}
