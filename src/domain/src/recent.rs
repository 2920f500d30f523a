//! The last measured samples of a stream (time stamp and state channels), kept in a
//! fixed ring so a reader (the dashboard's prediction-against-measurement chart) can see
//! what arrived without the owner publishing every sample. The owner writes once per batch
//! under a short lock; readers copy out. Nothing here is durable: after a restart the ring
//! fills again from the log replay.

use std::sync::Mutex;

/// Rows a stream keeps: at 30 samples/s, twenty seconds of measurements, enough to start a
/// prediction in the past and compare it with what followed.
pub const RECENT_ROWS: usize = 600;

/// A ring of the last [`RECENT_ROWS`] in-order samples (missing values stay NaN).
#[derive(Debug)]
pub struct RecentSamples {
    ring: Mutex<Ring>,
}

#[derive(Debug)]
struct Ring {
    n: usize,
    /// Time stamps, `RECENT_ROWS` slots (none before the first sample).
    t: Vec<f64>,
    /// States, `RECENT_ROWS` x n slots.
    x: Vec<f64>,
    /// Next slot to write.
    next: usize,
    /// Slots written (at most `RECENT_ROWS`).
    len: usize,
}

/// What a reader copies out: the rows oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentRows {
    /// Time stamps.
    pub t: Vec<f64>,
    /// States, one row of n per time stamp.
    pub x: Vec<Vec<f64>>,
}

/// A writer's hold on the ring for one batch.
pub struct RecentWriter<'a> {
    ring: std::sync::MutexGuard<'a, Ring>,
}

impl RecentWriter<'_> {
    /// Records one sample (`x` has the stream's n values).
    pub fn push(&mut self, t: f64, x: &[f64]) {
        let ring = &mut *self.ring;
        let n = ring.n;
        if ring.t.is_empty() {
            // Allocated at the first sample, once: a copy that is never fed (a cluster
            // node's idle copy of a stream another node applies) holds no ring.
            ring.t = vec![0.0; RECENT_ROWS];
            ring.x = vec![0.0; RECENT_ROWS * n];
        }
        let slot = ring.next;
        ring.t[slot] = t;
        ring.x[slot * n..(slot + 1) * n].copy_from_slice(x);
        ring.next = (slot + 1) % RECENT_ROWS;
        ring.len = (ring.len + 1).min(RECENT_ROWS);
    }
}

impl RecentSamples {
    /// An empty ring for `n` state channels (allocated once, at the first sample).
    pub fn new(n: usize) -> Self {
        let ring = Ring { n, t: Vec::new(), x: Vec::new(), next: 0, len: 0 };
        Self { ring: Mutex::new(ring) }
    }

    /// Bytes the ring holds (counted in the stream's memory estimate).
    pub fn bytes(n: usize) -> u64 {
        (RECENT_ROWS * (n + 1) * std::mem::size_of::<f64>()) as u64
    }

    /// The ring, held for one batch (never across an await).
    pub fn writer(&self) -> RecentWriter<'_> {
        RecentWriter { ring: self.ring.lock().unwrap_or_else(|e| e.into_inner()) }
    }

    /// Forgets every row (after a reset that clears the time-stamp watermark, when times may
    /// start over).
    pub fn clear(&self) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.next = 0;
        ring.len = 0;
    }

    /// The newest `count` rows (fewer when fewer were kept), oldest first.
    pub fn last(&self, count: usize) -> RecentRows {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let count = count.min(ring.len);
        let first = (ring.next + RECENT_ROWS - count) % RECENT_ROWS;
        let slots = (0..count).map(|k| (first + k) % RECENT_ROWS);
        RecentRows {
            t: slots.clone().map(|s| ring.t[s]).collect(),
            x: slots.map(|s| ring.x[s * ring.n..(s + 1) * ring.n].to_vec()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_rows_in_order() {
        let recent = RecentSamples::new(2);
        assert_eq!(recent.last(5), RecentRows { t: vec![], x: vec![] });
        {
            let mut w = recent.writer();
            for k in 0..RECENT_ROWS + 3 {
                w.push(k as f64, &[k as f64, -(k as f64)]);
            }
        }
        let rows = recent.last(4);
        let first = RECENT_ROWS as f64 - 1.0;
        assert_eq!(rows.t, vec![first, first + 1.0, first + 2.0, first + 3.0]);
        assert_eq!(rows.x[3], vec![first + 3.0, -(first + 3.0)]);
        assert_eq!(recent.last(usize::MAX).t.len(), RECENT_ROWS);
        recent.clear();
        assert!(recent.last(10).t.is_empty());
    }
}
