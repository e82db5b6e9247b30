//! The JetStream API's JSON as servers send it, and its conversion into
//! snapshot facts.
//!
//! Every field is optional, so a field a server version does not send stays
//! "not reported" instead of becoming a typed client's zero default. Where
//! the server omits a field that every supported version has (Go's
//! `omitempty` on `offline`, `lag`, `num_subjects`), absence is the server
//! saying zero/false, and it is read so.

use gatekeeper_model::{
    ConsumerConfig, ConsumerFacts, ConsumerState, PeerInfo, SequencePair, StreamCluster,
    StreamConfig, StreamFacts, StreamState, Timestamp,
};
use serde::Deserialize;

pub(super) fn nanos_to_ms(ns: i64) -> u64 {
    u64::try_from(ns / 1_000_000).unwrap_or(0)
}

/// Go's zero time (`0001-01-01T00:00:00Z`) means "none".
fn timestamp(text: Option<String>) -> Option<Timestamp> {
    let ts = gatekeeper_model::parse_timestamp(text.as_deref()?).ok()?;
    (ts.timestamp() > 0).then_some(ts)
}

pub(super) fn stream_facts(name: String, raw: RawStreamInfo) -> StreamFacts {
    let config = raw.config.map(|c| StreamConfig {
        subjects: c.subjects.unwrap_or_default(),
        retention: c.retention,
        storage: c.storage,
        replicas: c.num_replicas,
        max_age_ms: c.max_age.map(nanos_to_ms),
        max_msgs: c.max_msgs,
        max_bytes: c.max_bytes,
        max_msgs_per_subject: c.max_msgs_per_subject,
        max_msg_size: c.max_msg_size,
        discard: c.discard,
        duplicate_window_ms: c.duplicate_window.map(nanos_to_ms),
    });
    let state = raw.state.map(|s| StreamState {
        messages: s.messages,
        bytes: s.bytes,
        first_seq: s.first_seq,
        last_seq: s.last_seq,
        first_ts: timestamp(s.first_ts),
        last_ts: timestamp(s.last_ts),
        consumer_count: s.consumer_count,
        // omitempty in every supported version: absent is zero.
        num_subjects: Some(s.num_subjects.unwrap_or(0)),
    });
    let cluster = raw.cluster.map(|c| StreamCluster {
        name: c.name.filter(|n| !n.is_empty()),
        leader: c.leader.filter(|l| !l.is_empty()),
        replicas: c
            .replicas
            .unwrap_or_default()
            .into_iter()
            .map(|p| PeerInfo {
                name: p.name.unwrap_or_default(),
                current: p.current,
                offline: Some(p.offline.unwrap_or(false)),
                active_ms: p.active.map(nanos_to_ms),
                lag: Some(p.lag.unwrap_or(0)),
            })
            .collect(),
    });
    let error = match (&config, &cluster) {
        (Some(c), Some(cl)) if c.replicas.unwrap_or(1) > 1 && cl.leader.is_none() => {
            Some("the stream has no leader; its state may be stale".to_owned())
        }
        _ => None,
    };
    StreamFacts {
        name,
        error,
        config,
        state,
        cluster,
        // Filled by the consumer listing.
        consumers: Vec::new(),
        consumers_complete: false,
        absent_consumers: Vec::new(),
    }
}

pub(super) fn consumer_facts(raw: RawConsumerInfo) -> ConsumerFacts {
    let config = raw.config.map(|c| {
        let mut filters = c.filter_subjects.unwrap_or_default();
        if let Some(f) = c.filter_subject.filter(|f| !f.is_empty()) {
            filters.insert(0, f);
        }
        ConsumerConfig {
            durable_name: c.durable_name.filter(|d| !d.is_empty()),
            filter_subjects: filters,
            ack_policy: c.ack_policy,
            deliver_policy: c.deliver_policy,
            max_deliver: c.max_deliver,
            ack_wait_ms: c.ack_wait.map(nanos_to_ms),
            max_ack_pending: c.max_ack_pending,
        }
    });
    let pair = |p: Option<RawSequencePair>| {
        p.map(|p| SequencePair {
            consumer_seq: p.consumer_seq,
            stream_seq: p.stream_seq,
            last_active: timestamp(p.last_active),
        })
    };
    ConsumerFacts {
        name: raw.name.unwrap_or_default(),
        error: None,
        config,
        state: Some(ConsumerState {
            num_pending: raw.num_pending,
            num_ack_pending: raw.num_ack_pending,
            num_redelivered: raw.num_redelivered,
            num_waiting: raw.num_waiting,
            delivered: pair(raw.delivered),
            ack_floor: pair(raw.ack_floor),
        }),
    }
}

// ------------------------------------------------------------ wire types

/// One page of `STREAM.LIST` (`streams`) or `CONSUMER.LIST` (`consumers`).
#[derive(Deserialize)]
pub(super) struct ListPage<T> {
    pub(super) total: Option<u64>,
    #[serde(alias = "streams", alias = "consumers")]
    pub(super) items: Option<Vec<T>>,
    pub(super) missing: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub(super) struct RawStreamInfo {
    pub(super) config: Option<RawStreamConfig>,
    state: Option<RawStreamState>,
    cluster: Option<RawCluster>,
}

#[derive(Deserialize)]
pub(super) struct RawStreamConfig {
    pub(super) name: Option<String>,
    subjects: Option<Vec<String>>,
    retention: Option<String>,
    storage: Option<String>,
    num_replicas: Option<u32>,
    max_age: Option<i64>,
    max_msgs: Option<i64>,
    max_bytes: Option<i64>,
    max_msgs_per_subject: Option<i64>,
    max_msg_size: Option<i64>,
    discard: Option<String>,
    duplicate_window: Option<i64>,
}

#[derive(Deserialize)]
struct RawStreamState {
    messages: Option<u64>,
    bytes: Option<u64>,
    first_seq: Option<u64>,
    first_ts: Option<String>,
    last_seq: Option<u64>,
    last_ts: Option<String>,
    num_subjects: Option<u64>,
    consumer_count: Option<u64>,
}

#[derive(Deserialize)]
struct RawCluster {
    name: Option<String>,
    leader: Option<String>,
    replicas: Option<Vec<RawPeer>>,
}

#[derive(Deserialize)]
pub(super) struct RawPeer {
    pub(super) name: Option<String>,
    pub(super) current: Option<bool>,
    pub(super) offline: Option<bool>,
    pub(super) active: Option<i64>,
    pub(super) lag: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct RawConsumerInfo {
    name: Option<String>,
    config: Option<RawConsumerConfig>,
    delivered: Option<RawSequencePair>,
    ack_floor: Option<RawSequencePair>,
    num_ack_pending: Option<u64>,
    num_redelivered: Option<u64>,
    num_waiting: Option<u64>,
    num_pending: Option<u64>,
}

#[derive(Deserialize)]
struct RawConsumerConfig {
    durable_name: Option<String>,
    filter_subject: Option<String>,
    filter_subjects: Option<Vec<String>>,
    ack_policy: Option<String>,
    deliver_policy: Option<String>,
    max_deliver: Option<i64>,
    ack_wait: Option<i64>,
    max_ack_pending: Option<i64>,
}

#[derive(Deserialize)]
struct RawSequencePair {
    consumer_seq: Option<u64>,
    stream_seq: Option<u64>,
    last_active: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_version_dependent_fields_stay_not_reported() {
        // A 2.9-style consumer: one filter_subject, no filter_subjects, no last_active.
        let raw: RawConsumerInfo = serde_json::from_str(
            r#"{"name":"c","config":{"durable_name":"c","filter_subject":"a.b","ack_policy":"explicit","ack_wait":30000000000},
                "delivered":{"consumer_seq":0,"stream_seq":0},"num_pending":5,"num_ack_pending":0,"num_redelivered":0,"num_waiting":0}"#,
        )
        .unwrap();
        let c = consumer_facts(raw);
        let config = c.config.unwrap();
        assert_eq!(config.filter_subjects, vec!["a.b"]);
        assert_eq!(config.ack_wait_ms, Some(30_000));
        assert_eq!(config.max_ack_pending, None);
        let state = c.state.unwrap();
        assert_eq!(state.num_pending, Some(5));
        assert_eq!(state.delivered.unwrap().last_active, None);
        assert_eq!(state.ack_floor, None);
    }

    #[test]
    fn a_replicated_stream_without_leader_is_marked() {
        let raw: RawStreamInfo = serde_json::from_str(
            r#"{"config":{"name":"S","num_replicas":3,"max_age":172800000000000},
                "state":{"messages":1,"first_ts":"0001-01-01T00:00:00Z"},
                "cluster":{"name":"c","replicas":[{"name":"n2","current":false,"offline":true,"active":5000000}]}}"#,
        )
        .unwrap();
        let s = stream_facts("S".into(), raw);
        assert_eq!(
            s.error.as_deref(),
            Some("the stream has no leader; its state may be stale")
        );
        assert_eq!(s.config.unwrap().max_age_ms, Some(172_800_000));
        let state = s.state.unwrap();
        assert_eq!(state.first_ts, None);
        assert_eq!(state.messages, Some(1));
        assert_eq!(state.bytes, None);
        let peer = &s.cluster.unwrap().replicas[0];
        assert_eq!(
            (peer.offline, peer.current, peer.active_ms),
            (Some(true), Some(false), Some(5))
        );
    }
}
