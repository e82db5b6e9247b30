//! Fixtures with history: a recording read as a testcase, edits on any
//! snapshot of the window, and [`Series`], which builds a window from one
//! snapshot by changing facts over generated timestamps.
//!
//! ```text
//! let t = Series::from_json(AFTER, 5)          // a snapshot every 5 s
//!     .count(120)                               // ten minutes
//!     .stream("AA_DLQ", |i, s| s.state.get_or_insert_default().messages = Some(i as u64 * 3))
//!     .metric("normalize_hrv_messages_total", &[("result", "error")], |i| i as f64)
//!     .testcase(params);
//! ```

use super::Testcase;
use gatekeeper_model::{Snapshot, StreamFacts, Timestamp};

impl Testcase {
    /// A recording (`{"snapshots":[…]}`, oldest first, as `check --record`
    /// and `watch` write them) or one snapshot: the last is current, the
    /// others its history.
    pub fn from_recording(json: &str, params: serde_json::Value) -> Self {
        let mut snapshots = decode_recording(json);
        let current = snapshots.pop().expect("a recording holds a snapshot");
        Testcase {
            snapshot: current,
            history: snapshots,
            params,
        }
    }

    /// The window as it was at `time` (RFC 3339): the last snapshot taken
    /// at or before it becomes current, later ones are dropped. To test
    /// what a gate said in the middle of a recording.
    pub fn until(mut self, time: &str) -> Self {
        let cut = gatekeeper_model::parse_timestamp(time)
            .unwrap_or_else(|e| panic!("until({time:?}): {e}"));
        let mut all = std::mem::take(&mut self.history);
        all.push(self.snapshot);
        all.retain(|s| s.taken_at <= cut);
        self.snapshot = all
            .pop()
            .unwrap_or_else(|| panic!("no snapshot at or before {time}"));
        self.history = all;
        self
    }

    /// Every snapshot, oldest first (the current one last), with its
    /// index, to edit facts across the whole window.
    pub fn edit_all(&mut self, mut edit: impl FnMut(usize, &mut Snapshot)) {
        let n = self.history.len();
        for (i, s) in self.history.iter_mut().enumerate() {
            edit(i, s);
        }
        edit(n, &mut self.snapshot);
    }

    /// The snapshot `back` steps before the current one (0 is current).
    pub fn back_mut(&mut self, back: usize) -> &mut Snapshot {
        if back == 0 {
            return &mut self.snapshot;
        }
        let n = self.history.len();
        assert!(back <= n, "the window holds only {n} earlier snapshots");
        &mut self.history[n - back]
    }

    /// Stream `name` in the snapshot `back` steps before the current one.
    pub fn stream_back_mut(&mut self, back: usize, name: &str) -> &mut StreamFacts {
        stream_in(self.back_mut(back), name)
    }
}

fn decode_recording(json: &str) -> Vec<Snapshot> {
    #[derive(serde::Deserialize)]
    struct Recording {
        snapshots: Vec<Snapshot>,
    }
    let value: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("fixture recording is not JSON: {e}"));
    if value.get("snapshots").is_some() {
        let r: Recording = serde_json::from_value(value)
            .unwrap_or_else(|e| panic!("fixture recording does not decode: {e}"));
        r.snapshots
    } else {
        vec![
            serde_json::from_value(value)
                .unwrap_or_else(|e| panic!("fixture snapshot does not decode: {e}")),
        ]
    }
}

/// Every configured source was collected at `at`.
fn set_collected_at(s: &mut Snapshot, at: Timestamp) {
    fn set<T>(source: &mut gatekeeper_model::Source<T>, at: Timestamp) {
        if source.collected_at.is_some() {
            source.collected_at = Some(at);
        }
    }
    set(&mut s.nats, at);
    set(&mut s.postgres, at);
    set(&mut s.kubernetes, at);
    set(&mut s.http, at);
    set(&mut s.metrics, at);
    set(&mut s.prometheus, at);
}

fn stream_in<'a>(snapshot: &'a mut Snapshot, name: &str) -> &'a mut StreamFacts {
    snapshot
        .nats
        .facts
        .as_mut()
        .expect("fixture has NATS facts")
        .streams
        .iter_mut()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("fixture has no stream {name}"))
}

/// One change to every snapshot of a series: `edit(index, snapshot)`.
type Edit = Box<dyn Fn(usize, &mut Snapshot)>;

/// A window built from one snapshot: `count` copies, `every` seconds
/// apart, ending at the snapshot's own time, each then edited by the
/// steps added (in order), given the index (0 = oldest) of the copy.
pub struct Series {
    base: Snapshot,
    every_ms: i64,
    count: usize,
    edits: Vec<Edit>,
}

impl Series {
    /// From a snapshot's JSON, one every `every_secs` seconds (default
    /// count: 2).
    pub fn from_json(snapshot_json: &str, every_secs: u64) -> Self {
        let base: Snapshot = serde_json::from_str(snapshot_json)
            .unwrap_or_else(|e| panic!("fixture snapshot does not decode: {e}"));
        Series::new(base, every_secs)
    }

    pub fn new(base: Snapshot, every_secs: u64) -> Self {
        assert!(every_secs > 0, "a series needs time between snapshots");
        Series {
            base,
            every_ms: every_secs as i64 * 1000,
            count: 2,
            edits: Vec::new(),
        }
    }

    /// How many snapshots (the last is current).
    pub fn count(mut self, count: usize) -> Self {
        assert!(count > 0, "a series holds at least the current snapshot");
        self.count = count;
        self
    }

    /// Edits every snapshot: `edit(index, snapshot)`.
    pub fn with(mut self, edit: impl Fn(usize, &mut Snapshot) + 'static) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// Edits stream `name` in every snapshot: `edit(index, stream)`.
    pub fn stream(self, name: &str, edit: impl Fn(usize, &mut StreamFacts) + 'static) -> Self {
        let name = name.to_owned();
        self.with(move |i, s| edit(i, stream_in(s, &name)))
    }

    /// Sets a metric sample (`family` name, exact labels) in the first
    /// scrape target of every snapshot to `value(index)`; the family and
    /// the sample are added when the fixture lacks them.
    pub fn metric(
        self,
        family: &str,
        labels: &[(&str, &str)],
        value: impl Fn(usize) -> f64 + 'static,
    ) -> Self {
        let family = family.to_owned();
        let labels: std::collections::BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.with(move |i, s| {
            let facts = s.metrics.facts.as_mut().expect("fixture has metrics facts");
            let target = facts
                .targets
                .first_mut()
                .expect("fixture has a scrape target");
            let fam = match target.families.iter().position(|f| f.name == family) {
                Some(k) => &mut target.families[k],
                None => {
                    target.families.push(gatekeeper_model::MetricFamily {
                        name: family.clone(),
                        kind: "counter".into(),
                        samples: Vec::new(),
                    });
                    target.families.last_mut().expect("just pushed")
                }
            };
            let sample_name = family.clone();
            match fam
                .samples
                .iter_mut()
                .find(|x| x.labels == labels && x.name == sample_name)
            {
                Some(x) => x.value = Some(value(i)),
                None => fam.samples.push(gatekeeper_model::Sample {
                    name: sample_name,
                    labels: labels.clone(),
                    value: Some(value(i)),
                    raw: None,
                }),
            }
        })
    }

    /// The snapshots, oldest first, the last at the base snapshot's time.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        let end: Timestamp = self.base.taken_at;
        (0..self.count)
            .map(|i| {
                let back = (self.count - 1 - i) as i64 * self.every_ms;
                let at = Timestamp::from_timestamp_millis(end.timestamp_millis() - back)
                    .expect("a time in range");
                let mut s = self.base.clone();
                s.taken_at = at;
                s.interval_ms = Some(self.every_ms as u64);
                set_collected_at(&mut s, at);
                for edit in &self.edits {
                    edit(i, &mut s);
                }
                s
            })
            .collect()
    }

    /// The series as a testcase: the last snapshot current, the rest history.
    pub fn testcase(&self, params: serde_json::Value) -> Testcase {
        let mut all = self.snapshots();
        let current = all.pop().expect("count >= 1");
        Testcase {
            snapshot: current,
            history: all,
            params,
        }
    }

    /// The series as a recording's JSON (`{"snapshots":[…]}`), e.g. to
    /// write a golden case for `gatekeeper gate test`.
    pub fn recording_json(&self) -> String {
        serde_json::to_string_pretty(&serde_json::json!({ "snapshots": self.snapshots() }))
            .expect("snapshots encode")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SNAPSHOT: &str = r#"{"schema_version":1,"taken_at":"2025-10-02T17:10:00Z",
        "nats":{"status":"ok","collected_at":"2025-10-02T17:10:00Z","facts":{"streams":[
            {"name":"AA_DLQ","state":{"messages":0}}]}},
        "metrics":{"status":"ok","collected_at":"2025-10-02T17:10:00Z","facts":{"targets":[
            {"name":"normalize","url":"http://n/metrics","families":[]}]}}}"#;

    fn messages(s: &Snapshot) -> Option<u64> {
        s.nats.facts.as_ref()?.streams[0].state.as_ref()?.messages
    }

    #[test]
    fn a_series_ends_at_the_snapshot_and_edits_every_point() {
        let series = Series::from_json(SNAPSHOT, 5)
            .count(4)
            .stream("AA_DLQ", |i, s| {
                s.state.get_or_insert_default().messages = Some(10 * i as u64);
            })
            .metric("errors_total", &[("result", "error")], |i| i as f64 * 2.0);
        let all = series.snapshots();
        let times: Vec<String> = all
            .iter()
            .map(|s| gatekeeper_model::format_timestamp(s.taken_at))
            .collect();
        assert_eq!(
            times,
            [
                "2025-10-02T17:09:45Z",
                "2025-10-02T17:09:50Z",
                "2025-10-02T17:09:55Z",
                "2025-10-02T17:10:00Z"
            ]
        );
        assert_eq!(
            all.iter().map(messages).collect::<Vec<_>>(),
            [Some(0), Some(10), Some(20), Some(30)]
        );
        assert!(all.iter().all(|s| s.interval_ms == Some(5000)));
        assert_eq!(all[1].nats.collected_at, Some(all[1].taken_at));
        assert_eq!(
            all[1].prometheus.collected_at, None,
            "an unconfigured source stays so"
        );
        let sample = &all[3].metrics.facts.as_ref().unwrap().targets[0].families[0].samples[0];
        assert_eq!(
            (sample.name.as_str(), sample.value),
            ("errors_total", Some(6.0))
        );
        let t = series.testcase(json!({}));
        assert_eq!((t.history.len(), messages(&t.snapshot)), (3, Some(30)));
    }

    #[test]
    fn a_recording_is_a_testcase_that_can_be_cut_and_edited_back_in_time() {
        let json = Series::from_json(SNAPSHOT, 10)
            .count(6)
            .stream("AA_DLQ", |i, s| {
                s.state.get_or_insert_default().messages = Some(i as u64)
            })
            .recording_json();
        let t = Testcase::from_recording(&json, json!({"x": 1}));
        assert_eq!((t.history.len(), messages(&t.snapshot)), (5, Some(5)));
        let mut cut = t.clone().until("2025-10-02T17:09:35Z");
        assert_eq!((cut.history.len(), messages(&cut.snapshot)), (2, Some(2)));
        cut.stream_back_mut(2, "AA_DLQ")
            .state
            .as_mut()
            .unwrap()
            .messages = Some(99);
        assert_eq!(messages(&cut.history[0]), Some(99));
        let mut seen = Vec::new();
        cut.edit_all(|i, s| seen.push((i, messages(s))));
        assert_eq!(seen, [(0, Some(99)), (1, Some(1)), (2, Some(2))]);
        let single = Testcase::from_recording(SNAPSHOT, json!({}));
        assert!(single.history.is_empty());
    }
}
