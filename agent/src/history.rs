//! The history window: earlier snapshots, oldest first, that gates read
//! rates and holds over. One type for `check --wait`, `check --sample` and
//! `watch`, bounded by count and optionally by age.
//!
//! A window also keeps each of its snapshots as the gates are sent it —
//! narrowed to the facts a gate reads and encoded — from round to round, so
//! a round encodes one new snapshot per set of facts read, not the whole
//! window again ([`History::projected`]).

use gatekeeper_model::{FactPath, Snapshot};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Earlier snapshots, oldest first.
#[derive(Debug)]
pub struct History {
    /// `items[start..]` is the window; the front is dropped in batches, so
    /// adding a snapshot is amortised O(1) (no shifting of the whole window).
    items: Vec<Snapshot>,
    /// How many snapshots were ever pushed: `items[j]` was pushed as number
    /// `pushed - items.len() + j`.
    pushed: u64,
    start: usize,
    max_len: usize,
    /// Snapshots older than this before the newest one are dropped.
    max_age: Option<chrono::Duration>,
    /// The window narrowed and encoded, per set of facts read: each entry
    /// is a snapshot's number and its JSON, oldest first.
    projected: Mutex<BTreeMap<Vec<FactPath>, Encoded>>,
}

/// A window's snapshots encoded for one set of facts read: each one's
/// number (see `History::pushed`) and JSON, oldest first.
type Encoded = VecDeque<(u64, Arc<str>)>;

impl Clone for History {
    fn clone(&self) -> Self {
        History {
            items: self.items.clone(),
            pushed: self.pushed,
            start: self.start,
            max_len: self.max_len,
            max_age: self.max_age,
            projected: Mutex::default(),
        }
    }
}

impl History {
    /// Keeps at most `max_len` snapshots (the newest).
    pub fn new(max_len: usize) -> History {
        History {
            items: Vec::new(),
            pushed: 0,
            start: 0,
            max_len: max_len.max(1),
            max_age: None,
            projected: Mutex::default(),
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
        self.pushed += 1;
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

    /// The window narrowed to `reads` and encoded as JSON, oldest first: what
    /// a gate reading `reads` is sent. A snapshot is encoded the first time
    /// it is asked for with these `reads`, then kept while it is in the
    /// window, so the cost of a round does not grow with the window.
    pub fn projected(&self, reads: &[FactPath]) -> Vec<Arc<str>> {
        let window = self.snapshots();
        // The window's snapshots are numbers `first..self.pushed`.
        let first = self.pushed - window.len() as u64;
        let mut all = self.projected.lock().unwrap_or_else(|p| p.into_inner());
        let kept = all.entry(reads.to_vec()).or_default();
        // Drop what left the window; keep what is still in it, if it is the
        // start of the window (anything else is encoded again).
        while kept.front().is_some_and(|(n, _)| *n < first) {
            kept.pop_front();
        }
        let still = kept
            .iter()
            .zip(first..)
            .take_while(|((kept, _), number)| kept == number)
            .count();
        kept.truncate(still);
        for (snapshot, number) in window[still..].iter().zip(first + still as u64..) {
            kept.push_back((number, project(snapshot, reads)));
        }
        kept.iter().map(|(_, json)| Arc::clone(json)).collect()
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

/// `snapshot` narrowed to `reads`, as JSON: what a gate reading `reads` is
/// sent (the one encoding, for a window kept or not).
pub fn project(snapshot: &Snapshot, reads: &[FactPath]) -> Arc<str> {
    serde_json::to_string(&snapshot.select(reads))
        .expect("a snapshot always encodes")
        .into()
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
    fn the_kept_encoding_is_the_window_encoded_once() {
        let reads = [FactPath::Source("nats".into())];
        let other = [FactPath::NatsCluster];
        let fresh = |h: &History, reads: &[FactPath]| -> Vec<String> {
            h.snapshots()
                .iter()
                .map(|s| project(s, reads).to_string())
                .collect()
        };
        let text = |v: &[Arc<str>]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
        let mut h = History::with_window(50, Duration::from_secs(20));
        let mut before: Vec<Arc<str>> = Vec::new();
        for s in 0..200 {
            // Gaps now and then move the window's start by more than one.
            h.push(at(s + s / 7 * 5));
            let kept = h.projected(&reads);
            assert_eq!(text(&kept), fresh(&h, &reads), "after {s}");
            assert_eq!(text(&h.projected(&other)), fresh(&h, &other));
            // What stayed in the window was not encoded again.
            let stayed = before
                .iter()
                .filter(|b| kept.iter().any(|k| Arc::ptr_eq(b, k)))
                .count();
            if s > 10 {
                assert!(
                    stayed + 1 >= kept.len(),
                    "only {stayed} of {} kept",
                    kept.len()
                );
            }
            before = kept;
        }
        assert!(h.len() > 2, "{}", h.len());
        // A copy starts without encodings and gives the same.
        let copy = h.clone();
        assert_eq!(text(&copy.projected(&reads)), fresh(&h, &reads));
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
