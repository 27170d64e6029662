//! Dynamic batching, I/O-free and clocked from outside: a batch closes when it reaches
//! `max_batch`, or when its oldest item has waited `max_wait`.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::time::Duration;

use cascade_shared::clock::micros;

#[derive(Debug)]
pub struct Batcher<T> {
    max_batch: usize,
    max_wait_us: i64,
    queue: VecDeque<(T, i64)>,
}

impl<T> Batcher<T> {
    /// Times are microseconds on the caller's clock.
    pub fn new(max_batch: NonZeroUsize, max_wait: Duration) -> Self {
        Self {
            max_batch: max_batch.get(),
            max_wait_us: micros(max_wait),
            queue: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Adds an item at `now_us`; returns a full batch if this item completed one.
    pub fn push(&mut self, item: T, now_us: i64) -> Option<Vec<T>> {
        self.queue.push_back((item, now_us));
        (self.queue.len() >= self.max_batch).then(|| self.take())
    }

    /// When the oldest item's wait runs out (`None` when empty).
    pub fn deadline_us(&self) -> Option<i64> {
        self.queue
            .front()
            .map(|(_, t)| t.saturating_add(self.max_wait_us))
    }

    /// The batch due at `now_us`, if the oldest item has waited long enough.
    pub fn poll(&mut self, now_us: i64) -> Option<Vec<T>> {
        self.deadline_us()
            .filter(|d| now_us >= *d)
            .map(|_| self.take())
    }

    /// Everything queued, up to `max_batch` (also used to drain on shutdown).
    pub fn take(&mut self) -> Vec<T> {
        let n = self.queue.len().min(self.max_batch);
        self.queue.drain(..n).map(|(t, _)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn batcher<T>(max_batch: usize, max_wait_us: u64) -> Batcher<T> {
        let max = NonZeroUsize::new(max_batch).expect("max_batch > 0");
        Batcher::new(max, Duration::from_micros(max_wait_us))
    }

    #[test]
    fn a_burst_forms_full_batches() {
        let mut b = batcher(8, 50_000);
        let mut batches = Vec::new();
        for i in 0..20 {
            batches.extend(b.push(i, 1_000));
        }
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![8, 8]);
        assert_eq!(b.len(), 4);
        assert_eq!(b.poll(50_999), None, "the rest waits for its deadline");
        assert_eq!(b.poll(51_000), Some(vec![16, 17, 18, 19]));
    }

    #[test]
    fn a_lone_crop_waits_no_longer_than_max_wait() {
        let mut b = batcher(8, 50_000);
        assert_eq!(b.push("x", 10), None);
        assert_eq!(b.deadline_us(), Some(50_010));
        assert_eq!(b.poll(50_009), None);
        assert_eq!(b.poll(50_010), Some(vec!["x"]));
        assert!(b.is_empty() && b.deadline_us().is_none());
    }

    proptest! {
        /// Nothing is lost or reordered, no batch exceeds max_batch, and no item waits past its
        /// deadline when polled on time.
        #[test]
        fn batches_preserve_items(gaps in proptest::collection::vec(0i64..30_000, 1..100), max in 1usize..10) {
            let mut b = batcher(max, 20_000);
            let (mut now, mut out) = (0i64, Vec::new());
            for (i, g) in gaps.iter().enumerate() {
                // Poll at every deadline that passes before the next arrival.
                while let Some(d) = b.deadline_us().filter(|d| *d <= now + g) {
                    let batch = b.poll(d).expect("due");
                    prop_assert!(batch.len() <= max);
                    out.extend(batch);
                }
                now += g;
                if let Some(batch) = b.push(i, now) {
                    prop_assert_eq!(batch.len(), max);
                    out.extend(batch);
                }
            }
            while !b.is_empty() { out.extend(b.take()); }
            prop_assert_eq!(out, (0..gaps.len()).collect::<Vec<_>>());
        }
    }
}
