//! Fact paths: the parts of a snapshot a gate reads.
//!
//! Grammar: `<source>` | `nats.server` | `nats.cluster` | `nats.streams.<name|*>`
//! | `nats.consumers.<stream>.<name|*>`. Stream and consumer names cannot
//! contain `.` in NATS, so the split is unambiguous.
//!
//! Selection keeps every source's status, error and listing flags, so a gate
//! still tells "absent" from "not read": a stream selected by name that is not
//! in a complete listing does not exist; a consumer list that was narrowed is
//! marked incomplete, so an unselected consumer reads as unknown, not absent,
//! while a consumer selected by name and missing from a complete listing is
//! named in `absent_consumers` (see `StreamFacts::consumer_absent`).

use crate::{NatsFacts, SOURCE_NAMES, Snapshot, Source};

/// One parsed fact path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FactPath {
    Source(String),
    NatsServer,
    NatsCluster,
    /// `None` = every stream.
    NatsStream(Option<String>),
    /// (stream, consumer); consumer `None` = every consumer of the stream.
    NatsConsumer(String, Option<String>),
}

impl FactPath {
    pub fn parse(text: &str) -> Result<FactPath, String> {
        let bad = |why: &str| format!("fact path `{text}`: {why}");
        let parts: Vec<&str> = text.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty segment"));
        }
        let wild = |s: &str| (s != "*").then(|| s.to_owned());
        match parts.as_slice() {
            [source] if SOURCE_NAMES.contains(source) => Ok(FactPath::Source((*source).to_owned())),
            [source, ..] if !SOURCE_NAMES.contains(source) => Err(bad(&format!(
                "unknown source `{source}` (sources: {})",
                SOURCE_NAMES.join(", ")
            ))),
            ["nats", "server"] => Ok(FactPath::NatsServer),
            ["nats", "cluster"] => Ok(FactPath::NatsCluster),
            ["nats", "streams", name] => Ok(FactPath::NatsStream(wild(name))),
            ["nats", "consumers", stream, name] if *stream != "*" => {
                Ok(FactPath::NatsConsumer((*stream).to_owned(), wild(name)))
            }
            _ => Err(bad(
                "expected a source, nats.server, nats.cluster, nats.streams.<name|*> or nats.consumers.<stream>.<name|*>",
            )),
        }
    }

    pub fn source(&self) -> &str {
        match self {
            FactPath::Source(s) => s,
            _ => "nats",
        }
    }
}

impl std::fmt::Display for FactPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let any = |n: &Option<String>| n.clone().unwrap_or_else(|| "*".to_owned());
        match self {
            FactPath::Source(s) => f.write_str(s),
            FactPath::NatsServer => f.write_str("nats.server"),
            FactPath::NatsCluster => f.write_str("nats.cluster"),
            FactPath::NatsStream(n) => write!(f, "nats.streams.{}", any(n)),
            FactPath::NatsConsumer(s, c) => write!(f, "nats.consumers.{s}.{}", any(c)),
        }
    }
}

impl Snapshot {
    /// A copy holding only the selected facts; unselected sources become not
    /// configured.
    pub fn select(&self, paths: &[FactPath]) -> Snapshot {
        let whole: Vec<String> = paths
            .iter()
            .filter_map(|p| {
                if let FactPath::Source(s) = p {
                    Some(s.clone())
                } else {
                    None
                }
            })
            .collect();
        let mut out = self.project(&whole);
        let parts: Vec<&FactPath> = paths
            .iter()
            .filter(|p| !matches!(p, FactPath::Source(_)))
            .collect();
        if !parts.is_empty() && !whole.iter().any(|s| s == "nats") {
            out.nats = select_nats(&self.nats, &parts);
        }
        out
    }
}

fn select_nats(src: &Source<NatsFacts>, paths: &[&FactPath]) -> Source<NatsFacts> {
    // Everything but the facts (cloning the whole source first would copy
    // every stream of a large listing only to drop it).
    let mut out = Source {
        status: src.status,
        error: src.error.clone(),
        collected_at: src.collected_at,
        duration_ms: src.duration_ms,
        facts: None,
    };
    let Some(facts) = &src.facts else { return out };
    let every_stream = paths
        .iter()
        .any(|p| matches!(p, FactPath::NatsStream(None)));
    // Streams named by the selection (directly, or through their consumers).
    let named: Vec<&str> = paths
        .iter()
        .filter_map(|p| match p {
            FactPath::NatsStream(Some(n)) | FactPath::NatsConsumer(n, _) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    let mut picked = NatsFacts {
        // Says why the streams are unknown; every selection carries it.
        error: facts.error.clone(),
        server: None,
        cluster: None,
        streams: Vec::new(),
        // Only a selection of every stream is a complete listing: a stream a
        // gate did not name reads as not read, never as absent.
        streams_complete: facts.streams_complete && every_stream,
        missing_streams: facts.missing_streams.clone(),
        absent_streams: if facts.streams_complete && !every_stream {
            let mut absent: Vec<String> = named
                .iter()
                .filter(|n| facts.stream_absent(n))
                .map(|n| (*n).to_owned())
                .collect();
            absent.sort();
            absent.dedup();
            absent
        } else {
            Vec::new()
        },
    };
    for path in paths {
        match path {
            FactPath::NatsServer => picked.server = facts.server.clone(),
            FactPath::NatsCluster => picked.cluster = facts.cluster.clone(),
            _ => {}
        }
    }
    for stream in &facts.streams {
        let whole_stream = paths.iter().any(|p| match p {
            FactPath::NatsStream(None) => true,
            FactPath::NatsStream(Some(n)) => *n == stream.name,
            _ => false,
        });
        let consumers: Vec<&Option<String>> = paths
            .iter()
            .filter_map(|p| match p {
                FactPath::NatsConsumer(s, c) if *s == stream.name => Some(c),
                _ => None,
            })
            .collect();
        if !whole_stream && consumers.is_empty() {
            continue;
        }
        let all_consumers = consumers.iter().any(|c| c.is_none());
        let mut copy = stream.clone();
        copy.consumers.retain(|c| {
            all_consumers
                || consumers
                    .iter()
                    .any(|n| n.as_deref() == Some(c.name.as_str()))
        });
        copy.consumers_complete = stream.consumers_complete && all_consumers;
        if stream.consumers_complete && !all_consumers {
            copy.absent_consumers = consumers
                .iter()
                .filter_map(|n| n.as_deref())
                .filter(|n| stream.consumer(n).is_none())
                .map(str::to_owned)
                .collect();
        }
        picked.streams.push(copy);
    }
    out.facts = Some(picked);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConsumerFacts, SourceStatus, StreamFacts, Timestamp};

    fn snap() -> Snapshot {
        let stream = |name: &str| StreamFacts {
            name: name.into(),
            consumers: vec![
                ConsumerFacts {
                    name: "a".into(),
                    ..Default::default()
                },
                ConsumerFacts {
                    name: "b".into(),
                    ..Default::default()
                },
            ],
            consumers_complete: true,
            ..Default::default()
        };
        let mut s = Snapshot::empty(Timestamp::default());
        s.nats = Source::ok(NatsFacts {
            streams: vec![stream("S1"), stream("S2")],
            streams_complete: true,
            ..Default::default()
        });
        s.postgres = Source::ok(Default::default());
        s
    }

    fn select(paths: &[&str]) -> Snapshot {
        let paths: Vec<FactPath> = paths.iter().map(|p| FactPath::parse(p).unwrap()).collect();
        snap().select(&paths)
    }

    #[test]
    fn a_named_stream_comes_without_consumers_and_others_read_as_not_read() {
        let s = select(&["nats.streams.S2", "nats.streams.GONE"]);
        let nats = s.nats.facts.as_ref().unwrap();
        assert_eq!(nats.streams.len(), 1);
        assert_eq!(nats.streams[0].name, "S2");
        assert!(nats.streams[0].consumers.is_empty());
        assert!(
            !nats.streams[0].consumers_complete,
            "narrowed consumers are never 'complete'"
        );
        // Narrowed: not a complete listing. A stream the gate named that the
        // complete listing lacks is absent; one it did not name is not read.
        assert!(!nats.streams_complete);
        assert_eq!(nats.absent_streams, ["GONE"]);
        assert!(nats.stream_absent("GONE"));
        assert!(!nats.stream_absent("S1"), "unselected reads as unknown");
        assert_eq!(
            nats.stream_or_why("S1").unwrap_err(),
            "stream S1 not read: the stream listing is incomplete"
        );
        assert_eq!(s.postgres.status, SourceStatus::NotConfigured);
        // Every stream selected: the listing stays complete.
        let all = select(&["nats.streams.*"]);
        assert!(all.nats.facts.as_ref().unwrap().streams_complete);
        assert!(all.nats.facts.unwrap().stream_absent("GONE"));
    }

    #[test]
    fn consumers_by_name_or_all() {
        let s = select(&["nats.consumers.S1.b"]);
        let st = &s.nats.facts.as_ref().unwrap().streams[0];
        assert_eq!(
            st.consumers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        assert!(!st.consumers_complete);
        assert!(st.absent_consumers.is_empty());
        // Selected by name and not in the complete listing: known absent.
        let s = select(&["nats.consumers.S1.b", "nats.consumers.S1.gone"]);
        let st = &s.nats.facts.as_ref().unwrap().streams[0];
        assert_eq!(st.absent_consumers, ["gone"]);
        assert!(st.consumer_absent("gone"));
        assert!(!st.consumer_absent("b"));
        assert!(
            !st.consumer_absent("never-selected"),
            "unselected reads as unknown"
        );
        let s = select(&["nats.consumers.S1.*"]);
        assert!(s.nats.facts.as_ref().unwrap().streams[0].consumers_complete);
        assert_eq!(
            select(&["nats.streams.*"])
                .nats
                .facts
                .unwrap()
                .streams
                .len(),
            2
        );
    }

    #[test]
    fn whole_sources_and_unavailable_sources_pass_through() {
        assert_eq!(select(&["nats", "nats.streams.S1"]).nats, snap().nats);
        let mut down = snap();
        down.nats = Source::unavailable("refused");
        let s = down.select(&[FactPath::parse("nats.streams.S1").unwrap()]);
        assert_eq!(s.nats.status, SourceStatus::Unavailable);
        assert_eq!(s.nats.error.as_deref(), Some("refused"));
    }

    #[test]
    fn paths_round_trip_through_text() {
        for text in [
            "nats",
            "ledger",
            "nats.server",
            "nats.cluster",
            "nats.streams.AA_CORE_HOT",
            "nats.streams.*",
            "nats.consumers.S.c",
            "nats.consumers.S.*",
        ] {
            assert_eq!(FactPath::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn bad_paths_are_explained() {
        assert_eq!(
            FactPath::parse("kafka").unwrap_err(),
            "fact path `kafka`: unknown source `kafka` (sources: nats, postgres, kubernetes, http, metrics, prometheus, ledger)"
        );
        assert!(FactPath::parse("nats.streams").is_err());
        assert!(FactPath::parse("nats..x").is_err());
        assert!(FactPath::parse("nats.consumers.*.x").is_err());
        assert_eq!(
            FactPath::parse("postgres").unwrap(),
            FactPath::Source("postgres".into())
        );
    }
}
