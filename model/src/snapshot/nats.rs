//! NATS JetStream: the server, the cluster and its nodes, streams and consumers.

use crate::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsFacts {
    /// Set when the JetStream API could not be read while the monitoring
    /// endpoint could: the cluster facts stand, the streams are unknown.
    pub error: Option<String>,
    pub server: Option<NatsServer>,
    /// From the monitoring endpoint, when one is configured.
    pub cluster: Option<NatsCluster>,
    pub streams: Vec<StreamFacts>,
    /// True only when the stream listing covered every stream (all pages, none
    /// reported missing). When false, an absent stream is unknown, not missing.
    pub streams_complete: bool,
    /// Streams the server listed as missing (e.g. no quorum) or that failed.
    pub missing_streams: Vec<String>,
    /// Streams a gate selected by name that the complete listing did not
    /// contain: known not to exist (filled by fact selection, whose output
    /// is never `streams_complete` unless it selected every stream).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absent_streams: Vec<String>,
}

impl NatsFacts {
    pub fn stream(&self, name: &str) -> Option<&StreamFacts> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// True when the stream is known not to exist: a complete listing
    /// without it that did not report it missing (or a selection that found
    /// it so). False when it exists or its existence is unknown — a stream a
    /// narrowed snapshot does not hold was not read, not absent.
    pub fn stream_absent(&self, name: &str) -> bool {
        self.stream(name).is_none()
            && !self.missing_streams.iter().any(|m| m == name)
            && (self.streams_complete || self.absent_streams.iter().any(|a| a == name))
    }

    /// The named stream, or why it cannot be used: reading it failed, it
    /// does not exist, or it was not read.
    pub fn stream_or_why(&self, name: &str) -> Result<&StreamFacts, String> {
        match self.stream(name) {
            Some(s) => match &s.error {
                Some(e) => Err(format!("stream {name}: {e}")),
                None => Ok(s),
            },
            None if self.stream_absent(name) => Err(format!("stream {name} does not exist")),
            None => Err(format!(
                "stream {name} not read: {}",
                self.error
                    .as_deref()
                    .unwrap_or("the stream listing is incomplete")
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsServer {
    pub version: Option<String>,
    pub name: Option<String>,
    pub cluster_name: Option<String>,
    pub jetstream_enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsCluster {
    /// `/healthz` and `/healthz?js-enabled-only=true` both answered 200 `ok`
    /// on every endpoint read.
    pub healthy: Option<bool>,
    /// `/varz` reports a JetStream config on every endpoint read.
    pub jetstream_enabled: Option<bool>,
    /// Why a health check failed, as the server said it.
    pub health_error: Option<String>,
    /// Set when part of the monitoring endpoint could not be read.
    pub error: Option<String>,
    pub cluster_name: Option<String>,
    pub cluster_size: Option<u64>,
    /// `None` when no meta leader is known.
    pub meta_leader: Option<String>,
    pub nodes: Vec<NatsNode>,
    pub storage_used_bytes: Option<u64>,
    pub storage_limit_bytes: Option<u64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    /// Every route each endpoint read reports (`/routez`): node to node,
    /// with its round-trip time.
    pub routes: Vec<NatsRoute>,
}

/// One route between two cluster nodes, as the `from` node sees it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsRoute {
    /// The reporting node (its name; its id on 2.9, which has no name here).
    pub from: String,
    /// The remote node (`remote_name` on 2.10+, `remote_id` on 2.9).
    pub to: String,
    /// The route's last measured round trip, in milliseconds.
    pub rtt_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsNode {
    pub name: String,
    pub up: Option<bool>,
    pub current: Option<bool>,
    pub lag: Option<u64>,
    pub active_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamFacts {
    pub name: String,
    /// Set when this stream's info could not be read completely.
    pub error: Option<String>,
    pub config: Option<StreamConfig>,
    pub state: Option<StreamState>,
    pub cluster: Option<StreamCluster>,
    pub consumers: Vec<ConsumerFacts>,
    /// True only when every consumer of the stream was listed.
    pub consumers_complete: bool,
    /// Consumers a gate selected by name that a complete listing did not
    /// contain: known not to exist (filled by fact selection).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absent_consumers: Vec<String>,
}

impl StreamFacts {
    pub fn consumer(&self, name: &str) -> Option<&ConsumerFacts> {
        self.consumers.iter().find(|c| c.name == name)
    }

    /// True when the consumer is known not to exist (a complete listing
    /// without it, or a selection that found it absent); false when it exists
    /// or its existence is unknown.
    pub fn consumer_absent(&self, name: &str) -> bool {
        self.consumer(name).is_none()
            && (self.consumers_complete || self.absent_consumers.iter().any(|c| c == name))
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    pub subjects: Vec<String>,
    /// `limits`, `interest` or `workqueue`.
    pub retention: Option<String>,
    /// `file` or `memory`.
    pub storage: Option<String>,
    pub replicas: Option<u32>,
    /// 0 means unlimited, as NATS reports it.
    pub max_age_ms: Option<u64>,
    pub max_msgs: Option<i64>,
    pub max_bytes: Option<i64>,
    pub max_msgs_per_subject: Option<i64>,
    pub max_msg_size: Option<i64>,
    /// `old` or `new`.
    pub discard: Option<String>,
    pub duplicate_window_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamState {
    pub messages: Option<u64>,
    pub bytes: Option<u64>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    pub consumer_count: Option<u64>,
    pub num_subjects: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamCluster {
    pub name: Option<String>,
    /// `None` when the stream has no leader (no quorum).
    pub leader: Option<String>,
    pub replicas: Vec<PeerInfo>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerInfo {
    pub name: String,
    pub current: Option<bool>,
    pub offline: Option<bool>,
    pub active_ms: Option<u64>,
    pub lag: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerFacts {
    pub name: String,
    pub error: Option<String>,
    pub config: Option<ConsumerConfig>,
    pub state: Option<ConsumerState>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    pub durable_name: Option<String>,
    /// The one filter subject, or the several (2.10+ `filter_subjects`).
    pub filter_subjects: Vec<String>,
    /// `explicit`, `all` or `none`.
    pub ack_policy: Option<String>,
    /// `all`, `last`, `new`, `by_start_sequence`, ...
    pub deliver_policy: Option<String>,
    pub max_deliver: Option<i64>,
    pub ack_wait_ms: Option<u64>,
    pub max_ack_pending: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerState {
    pub num_pending: Option<u64>,
    pub num_ack_pending: Option<u64>,
    pub num_redelivered: Option<u64>,
    pub num_waiting: Option<u64>,
    pub delivered: Option<SequencePair>,
    pub ack_floor: Option<SequencePair>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SequencePair {
    pub consumer_seq: Option<u64>,
    pub stream_seq: Option<u64>,
    pub last_active: Option<Timestamp>,
}
