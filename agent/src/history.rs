//! The history window: earlier snapshots, oldest first, that gates read
//! rates and holds over. One type for `check --wait`, `check --sample` and
//! `watch`, bounded by count and optionally by age.

use gatekeeper_model::Snapshot;
use std::time::Duration;

/// Earlier snapshots, oldest first.
#[derive(Debug, Clone)]
pub struct History {
    /// `items[start..]` is the window; the front is dropped in batches, so
    /// adding a snapshot is amortised O(1) (no shifting of the whole window).
    items: Vec<Snapshot>,
    start: usize,
    max_len: usize,
    /// Snapshots older than this before the newest one are dropped.
    max_age: Option<chrono::Duration>,
}

impl History {
    /// Keeps at most `max_len` snapshots (the newest).
    pub fn new(max_len: usize) -> History {
        History {
            items: Vec::new(),
            start: 0,
            max_len: max_len.max(1),
            max_age: None,
        }
    }

    /// Also drops snapshots taken more than `window` before the newest.
    pub fn with_window(max_len: usize, window: Duration) -> History {
        History {
            max_age: Some(chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX)),
            ..History::new(max_len)
        }
    }

    /// Adds the newest snapshot and drops what falls out of the window.
    pub fn push(&mut self, snapshot: Snapshot) {
        let newest = snapshot.taken_at;
        self.items.push(snapshot);
        if let Some(age) = self.max_age {
            let oldest = newest.checked_sub_signed(age);
            while let (Some(oldest), Some(first)) = (oldest, self.items.get(self.start))
                && first.taken_at < oldest
            {
                self.start += 1;
            }
        }
        self.start = self
            .start
            .max(self.items.len().saturating_sub(self.max_len));
        if self.start >= self.max_len.max(16) {
            self.items.drain(..self.start);
            self.start = 0;
        }
    }

    /// The window, oldest first.
    pub fn snapshots(&self) -> &[Snapshot] {
        &self.items[self.start..]
    }

    pub fn len(&self) -> usize {
        self.items.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The window as a vector (a recording's `history`).
    pub fn into_vec(mut self) -> Vec<Snapshot> {
        self.items.drain(..self.start);
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Snapshot {
        Snapshot::empty(chrono::DateTime::from_timestamp(1_700_000_000 + second, 0).unwrap())
    }

    fn seconds(h: &History) -> Vec<i64> {
        h.snapshots()
            .iter()
            .map(|s| s.taken_at.timestamp() - 1_700_000_000)
            .collect()
    }

    #[test]
    fn keeps_the_newest_by_count() {
        let mut h = History::new(3);
        for s in 0..100 {
            h.push(at(s));
            assert!(h.len() <= 3);
        }
        assert_eq!(seconds(&h), vec![97, 98, 99]);
        assert_eq!(
            h.into_vec()
                .iter()
                .map(|s| s.taken_at.timestamp() - 1_700_000_000)
                .collect::<Vec<_>>(),
            vec![97, 98, 99]
        );
    }

    #[test]
    fn drops_what_is_older_than_the_window() {
        let mut h = History::with_window(1000, Duration::from_secs(10));
        for s in [0, 5, 9, 12, 20, 21] {
            h.push(at(s));
        }
        // 21 - 10 = 11: 12, 20, 21 remain.
        assert_eq!(seconds(&h), vec![12, 20, 21]);
        // A jump far ahead leaves only the newest.
        h.push(at(500));
        assert_eq!(seconds(&h), vec![500]);
    }

    #[test]
    fn storage_stays_bounded() {
        let mut h = History::new(4);
        for s in 0..10_000 {
            h.push(at(s));
        }
        assert!(h.items.len() <= 4 + 16, "{}", h.items.len());
        assert_eq!(seconds(&h), vec![9996, 9997, 9998, 9999]);
    }
}
