//! NATS JetStream: server, streams (every page), consumers, and cluster health
//! from the monitoring endpoint.
//!
//! The JetStream API is read as raw JSON (`$JS.API.STREAM.LIST`,
//! `$JS.API.CONSUMER.LIST.<stream>`) into types whose every field is optional,
//! so a field a server version does not send stays "not reported" instead of
//! becoming a typed client's zero default. Where the server omits a field that
//! every supported version has (Go's `omitempty` on `offline`, `lag`,
//! `num_subjects`), absence is the server saying zero/false, and it is read so.

use super::{Collector, install_crypto_provider, remaining, timeout_or_default};
use crate::config::NatsSourceConfig;
use futures::StreamExt as _;
use gatekeeper_model::{
    ConsumerConfig, ConsumerFacts, ConsumerState, NatsCluster, NatsFacts, NatsNode, NatsServer,
    PeerInfo, SequencePair, StreamCluster, StreamConfig, StreamFacts, StreamState, Timestamp,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// Consumer listings in flight at once.
const CONSUMER_LISTINGS_IN_FLIGHT: usize = 8;

pub struct NatsCollector {
    config: NatsSourceConfig,
    base_dir: PathBuf,
}

impl NatsCollector {
    /// `base_dir` resolves relative credential and TLS file paths.
    pub fn new(config: NatsSourceConfig, base_dir: &Path) -> Self {
        NatsCollector {
            config,
            base_dir: base_dir.to_path_buf(),
        }
    }

    fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    pub(crate) fn api_prefix(&self) -> String {
        match &self.config.domain {
            Some(domain) => format!("$JS.{domain}.API"),
            None => "$JS.API".to_owned(),
        }
    }

    pub(crate) async fn connect(&self, deadline: Instant) -> Result<async_nats::Client, String> {
        install_crypto_provider();
        let c = &self.config;
        let (address, user, password) = split_userinfo(c.url.expose());
        let mut options = async_nats::ConnectOptions::new()
            .name("gatekeeper")
            .connection_timeout(remaining(deadline, "connect")?)
            .max_reconnects(0);
        if let Some(creds) = &c.creds_file {
            let path = self.path(creds);
            options = options
                .credentials_file(&path)
                .await
                .map_err(|e| format!("creds_file {}: cannot read: {e}", path.display()))?;
        } else if let Some(token) = &c.token {
            options = options.token(token.expose().to_owned());
        } else if let (Some(u), Some(p)) = (&c.user, &c.password) {
            options = options.user_and_password(u.clone(), p.expose().to_owned());
        } else if let Some(seed) = &c.nkey {
            options = options.nkey(seed.expose().trim().to_owned());
        } else if let Some(file) = &c.nkey_file {
            let path = self.path(file);
            let seed = crate::files::read_untrusted_text(
                &path,
                crate::files::MAX_SECRET_FILE_BYTES,
                "an nkey seed file",
            )
            .map_err(|e| format!("nkey_file {}: {e}", path.display()))?;
            options = options.nkey(seed.trim().to_owned());
        } else if let Some(user) = user {
            // Credentials in the URL: passed as options so the URL that the
            // client keeps (and may log) carries no secret.
            options = match password {
                Some(p) => options.user_and_password(user, p),
                None => options.token(user),
            };
        }
        if c.tls.required {
            options = options.require_tls(true);
        }
        if let Some(ca) = &c.tls.ca_file {
            options = options.add_root_certificates(self.path(ca));
        }
        if let (Some(cert), Some(key)) = (&c.tls.cert_file, &c.tls.key_file) {
            options = options.add_client_certificate(self.path(cert), self.path(key));
        }
        let shown = c.url.redacted();
        options
            .connect(address.as_str())
            .await
            .map_err(|e| format!("cannot connect to {shown}: {e}"))
    }

    /// One JetStream API request, decoded; the API's own error is an error.
    async fn api<T: DeserializeOwned>(
        &self,
        client: &async_nats::Client,
        subject: &str,
        body: String,
        deadline: Instant,
    ) -> Result<T, String> {
        let timeout = remaining(deadline, subject)?;
        let request = async_nats::Request::new()
            .payload(body.into())
            .timeout(Some(timeout));
        let reply = client
            .send_request(subject.to_owned(), request)
            .await
            .map_err(|e| format!("{subject}: {e}"))?;
        decode_api(subject, &reply.payload)
    }

    /// Reads every page of a JetStream listing (`{"offset":n}` requests until
    /// `total`). `Err` only when the first page fails; a later failure or an
    /// empty page before `total` ends the listing with `gap` set.
    async fn list_pages<T: DeserializeOwned>(
        &self,
        client: &async_nats::Client,
        subject: &str,
        deadline: Instant,
    ) -> Result<Listing<T>, String> {
        let mut listing = Listing {
            items: Vec::new(),
            missing: Vec::new(),
            gap: None,
            failed: false,
        };
        let mut offset = 0u64;
        loop {
            let body = format!(r#"{{"offset":{offset}}}"#);
            let page: ListPage<T> = match self.api(client, subject, body, deadline).await {
                Ok(page) => page,
                Err(e) if offset == 0 => return Err(e),
                Err(e) => {
                    listing.gap = Some(format!("listing from offset {offset}: {e}"));
                    listing.failed = true;
                    return Ok(listing);
                }
            };
            let items = page.items.unwrap_or_default();
            let got = items.len() as u64;
            listing.items.extend(items);
            listing.missing.extend(page.missing.unwrap_or_default());
            offset += got;
            let total = page.total.unwrap_or(0);
            if got == 0 || offset >= total {
                if offset < total {
                    listing.gap = Some(format!(
                        "listing stopped at {offset} of {total}: an empty page"
                    ));
                }
                return Ok(listing);
            }
        }
    }

    async fn list_streams(
        &self,
        client: &async_nats::Client,
        deadline: Instant,
        facts: &mut NatsFacts,
    ) -> Result<(), String> {
        let subject = format!("{}.STREAM.LIST", self.api_prefix());
        // Nothing listed at all: the source is unavailable.
        let listing: Listing<RawStreamInfo> = self.list_pages(client, &subject, deadline).await?;
        for raw in listing.items {
            let name = raw
                .config
                .as_ref()
                .and_then(|c| c.name.clone())
                .unwrap_or_default();
            if self.wanted(&name) {
                facts.streams.push(stream_facts(name, raw));
            }
        }
        // The server knows these streams but could not read them (no quorum,
        // leader unreachable): unknown, never dropped.
        for name in &listing.missing {
            if self.wanted(name) {
                facts.streams.push(StreamFacts {
                    error: Some(
                        "the server listed this stream as missing (its info could not be read; no leader or no quorum?)".into(),
                    ),
                    name: name.clone(),
                    ..StreamFacts::default()
                });
                facts.missing_streams.push(name.clone());
            }
        }
        if let Some(gap) = &listing.gap {
            facts.missing_streams.push(format!("({gap})"));
        }
        facts.streams_complete = listing.missing.is_empty() && listing.gap.is_none();
        Ok(())
    }

    async fn list_consumers(
        &self,
        client: &async_nats::Client,
        stream: &str,
        deadline: Instant,
    ) -> Result<(Vec<ConsumerFacts>, bool), String> {
        let subject = format!("{}.CONSUMER.LIST.{stream}", self.api_prefix());
        let listing: Listing<RawConsumerInfo> = self.list_pages(client, &subject, deadline).await?;
        // A failed page loses the stream's consumers; an early empty page
        // keeps what was read, marked incomplete.
        if let (true, Some(gap)) = (listing.failed, &listing.gap) {
            return Err(format!("{subject}: {gap}"));
        }
        let complete = listing.missing.is_empty() && listing.gap.is_none();
        let mut out: Vec<ConsumerFacts> = listing.items.into_iter().map(consumer_facts).collect();
        out.extend(listing.missing.into_iter().map(|name| ConsumerFacts {
            name,
            error: Some("the server listed this consumer as missing".into()),
            ..ConsumerFacts::default()
        }));
        Ok((out, complete))
    }

    fn wanted(&self, name: &str) -> bool {
        self.config.streams.is_empty() || self.config.streams.iter().any(|p| glob_match(p, name))
    }

    /// Reads every configured monitoring endpoint (one per node is best: only
    /// the meta leader lists the other nodes) and merges what they say.
    async fn monitor(&self, urls: &[String], deadline: Instant) -> NatsCluster {
        install_crypto_provider();
        let mut cluster = NatsCluster::default();
        let client = match remaining(deadline, "monitoring endpoint").and_then(|t| {
            reqwest::Client::builder()
                .timeout(t)
                .build()
                .map_err(|e| e.to_string())
        }) {
            Ok(c) => c,
            Err(e) => {
                cluster.error = Some(format!("monitoring endpoint: {e}"));
                return cluster;
            }
        };
        let nodes = futures::future::join_all(urls.iter().map(|u| monitor_node(&client, u))).await;
        let mut errors = Vec::new();
        let mut leader_view: Option<MetaCluster> = None;
        let mut any_meta: Option<MetaCluster> = None;
        let (mut healthy, mut js_enabled) = (Some(true), Some(true));
        let mut sums = [Some(0u64); 4];
        for node in nodes {
            errors.extend(node.errors);
            let and = |acc: &mut Option<bool>, v: Option<bool>| {
                *acc = match (*acc, v) {
                    (Some(a), Some(b)) => Some(a && b),
                    _ => None,
                }
            };
            and(&mut healthy, node.healthy);
            and(&mut js_enabled, node.jetstream_enabled);
            if let Some(e) = node.health_error {
                cluster.health_error = Some(e);
            }
            let jsz = node.jsz;
            let values = [
                jsz.as_ref().and_then(|j| j.storage),
                jsz.as_ref()
                    .and_then(|j| j.config.as_ref()?.max_storage)
                    .and_then(|v| u64::try_from(v).ok()),
                jsz.as_ref().and_then(|j| j.memory),
                jsz.as_ref()
                    .and_then(|j| j.config.as_ref()?.max_memory)
                    .and_then(|v| u64::try_from(v).ok()),
            ];
            for (sum, v) in sums.iter_mut().zip(values) {
                *sum = match (*sum, v) {
                    (Some(a), Some(b)) => Some(a + b),
                    _ => None,
                };
            }
            if let Some(meta) = jsz.and_then(|j| j.meta_cluster) {
                if meta.replicas.as_ref().is_some_and(|r| !r.is_empty()) {
                    leader_view = Some(meta);
                } else if any_meta.is_none() {
                    any_meta = Some(meta);
                }
            }
            if cluster.cluster_name.is_none() {
                cluster.cluster_name = node.cluster_name;
            }
        }
        cluster.healthy = healthy;
        cluster.jetstream_enabled = js_enabled;
        [
            cluster.storage_used_bytes,
            cluster.storage_limit_bytes,
            cluster.memory_used_bytes,
            cluster.memory_limit_bytes,
        ] = sums;
        if let Some(meta) = leader_view.or(any_meta) {
            apply_meta(&mut cluster, meta);
        }
        if !errors.is_empty() {
            cluster.error = Some(errors.join("; "));
        }
        cluster
    }
}

/// What one node's monitoring endpoint said.
struct NodeMonitor {
    healthy: Option<bool>,
    jetstream_enabled: Option<bool>,
    health_error: Option<String>,
    jsz: Option<Jsz>,
    cluster_name: Option<String>,
    errors: Vec<String>,
}

async fn monitor_node(client: &reqwest::Client, base: &str) -> NodeMonitor {
    let base = base.trim_end_matches('/');
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        async move {
            let response = client
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("{url}: {}", e.without_url()))?;
            let status = response.status().as_u16();
            let body = response
                .text()
                .await
                .map_err(|e| format!("{url}: {}", e.without_url()))?;
            Ok::<_, String>((status, body))
        }
    };
    let (js_health, health, jsz, varz) = tokio::join!(
        get("/healthz?js-enabled-only=true"),
        get("/healthz"),
        get("/jsz"),
        get("/varz")
    );
    let mut node = NodeMonitor {
        healthy: None,
        jetstream_enabled: None,
        health_error: None,
        jsz: None,
        cluster_name: None,
        errors: Vec::new(),
    };
    // Healthy = both health checks say ok: the full one (streams and
    // consumers current) and `js-enabled-only` (JetStream up, if configured).
    for (path, answer) in [
        ("/healthz", health),
        ("/healthz?js-enabled-only=true", js_health),
    ] {
        match answer {
            Ok((status, body)) => {
                let parsed: Option<Healthz> = serde_json::from_str(&body).ok();
                let ok = status == 200
                    && parsed.as_ref().and_then(|h| h.status.as_deref()) == Some("ok");
                node.healthy = Some(node.healthy.unwrap_or(true) && ok);
                if !ok && node.health_error.is_none() {
                    node.health_error = Some(format!(
                        "{base}{path}: {}",
                        parsed
                            .and_then(|h| h.error)
                            .unwrap_or_else(|| format!("answered {status}"))
                    ));
                }
            }
            Err(e) => node.errors.push(e),
        }
    }
    match jsz.and_then(|(status, body)| parse_monitor::<Jsz>(&format!("{base}/jsz"), status, &body))
    {
        Ok(jsz) => node.jsz = Some(jsz),
        Err(e) => node.errors.push(e),
    }
    match varz
        .and_then(|(status, body)| parse_monitor::<Varz>(&format!("{base}/varz"), status, &body))
    {
        Ok(varz) => {
            node.cluster_name = varz.cluster.and_then(|c| c.name).filter(|n| !n.is_empty());
            // An enabled JetStream reports its config; a disabled one `{}`.
            node.jetstream_enabled = Some(varz.jetstream.is_some_and(|j| j.config.is_some()));
        }
        Err(e) => node.errors.push(e),
    }
    node
}

impl Collector for NatsCollector {
    type Facts = NatsFacts;
    const NAME: &'static str = "nats";

    fn timeout(&self) -> Duration {
        timeout_or_default(self.config.timeout)
    }

    async fn collect(&self, deadline: Instant) -> Result<NatsFacts, String> {
        let monitor = async {
            let urls = self.config.monitor_urls();
            match urls.is_empty() {
                false => Some(self.monitor(&urls, deadline).await),
                true => None,
            }
        };
        let jetstream = async {
            let client = self.connect(deadline).await?;
            let info = client.server_info();
            let mut facts = NatsFacts {
                server: Some(NatsServer {
                    version: Some(info.version.clone()).filter(|v| !v.is_empty()),
                    name: Some(info.server_name.clone()).filter(|v| !v.is_empty()),
                    cluster_name: info.cluster.clone().filter(|v| !v.is_empty()),
                    jetstream_enabled: Some(info.jetstream),
                }),
                ..NatsFacts::default()
            };
            if !info.jetstream {
                return Err(format!(
                    "{}: JetStream is not enabled on server {}",
                    self.config.url.redacted(),
                    info.server_name
                ));
            }
            self.list_streams(&client, deadline, &mut facts).await?;
            let names: Vec<String> = facts
                .streams
                .iter()
                .filter(|s| s.error.is_none())
                .map(|s| s.name.clone())
                .collect();
            let listings: Vec<_> = futures::stream::iter(names)
                .map(|name| {
                    let client = &client;
                    async move {
                        let result = self.list_consumers(client, &name, deadline).await;
                        (name, result)
                    }
                })
                .buffer_unordered(CONSUMER_LISTINGS_IN_FLIGHT)
                .collect()
                .await;
            for (name, result) in listings {
                let Some(stream) = facts.streams.iter_mut().find(|s| s.name == name) else {
                    continue;
                };
                match result {
                    Ok((consumers, complete)) => {
                        stream.consumers = consumers;
                        stream.consumers_complete = complete;
                    }
                    Err(e) => stream.error = Some(format!("consumers not read: {e}")),
                }
            }
            // Drain quietly; the facts are already read.
            let _ = client.drain().await;
            Ok(facts)
        };
        let (cluster, facts) = tokio::join!(monitor, jetstream);
        match (facts, cluster) {
            (Ok(mut facts), cluster) => {
                facts.cluster = cluster;
                Ok(facts)
            }
            // No JetStream answer, but the monitoring endpoint said something
            // (e.g. no meta leader after quorum loss): keep that, streams unknown.
            (Err(error), Some(cluster)) if cluster.healthy.is_some() => Ok(NatsFacts {
                error: Some(error),
                cluster: Some(cluster),
                ..NatsFacts::default()
            }),
            (Err(error), _) => Err(error),
        }
    }

    fn complete(facts: &NatsFacts) -> bool {
        facts.error.is_none()
            && facts.streams_complete
            && facts.streams.iter().all(|s| {
                s.error.is_none()
                    && s.consumers_complete
                    && s.consumers.iter().all(|c| c.error.is_none())
            })
            && facts.cluster.as_ref().is_none_or(|c| c.error.is_none())
    }
}

/// `nats://user:pass@host:4222` → (`nats://host:4222`, user, pass).
fn split_userinfo(url: &str) -> (String, Option<String>, Option<String>) {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return (url.to_owned(), None, None);
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    let Some(at) = url[scheme_end..authority_end].rfind('@') else {
        return (url.to_owned(), None, None);
    };
    let userinfo = &url[scheme_end..scheme_end + at];
    let stripped = format!("{}{}", &url[..scheme_end], &url[scheme_end + at + 1..]);
    match userinfo.split_once(':') {
        Some((u, p)) => (stripped, Some(percent_decode(u)), Some(percent_decode(p))),
        None => (stripped, Some(percent_decode(userinfo)), None),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            let Some(tail) = name.strip_prefix(prefix) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob_match(rest, &tail[i..]))
        }
    }
}

fn decode_api<T: DeserializeOwned>(subject: &str, payload: &[u8]) -> Result<T, String> {
    crate::jetstream::decode_api(subject, payload).map_err(|e| e.message)
}

fn parse_monitor<T: DeserializeOwned>(path: &str, status: u16, body: &str) -> Result<T, String> {
    if status != 200 {
        return Err(format!("{path} answered {status}"));
    }
    serde_json::from_str(body).map_err(|e| format!("{path}: unreadable answer: {e}"))
}

fn apply_meta(cluster: &mut NatsCluster, meta: MetaCluster) {
    if let Some(name) = meta.name.filter(|n| !n.is_empty()) {
        cluster.cluster_name = Some(name);
    }
    cluster.cluster_size = meta.cluster_size;
    cluster.meta_leader = meta.leader.filter(|l| !l.is_empty());
    // Only the meta leader lists its peers; without that list the nodes are
    // unknown, not "just the leader".
    let Some(replicas) = meta.replicas.filter(|r| !r.is_empty()) else {
        return;
    };
    if let Some(leader) = &cluster.meta_leader {
        cluster.nodes.push(NatsNode {
            name: leader.clone(),
            up: Some(true),
            current: Some(true),
            lag: Some(0),
            active_ms: Some(0),
        });
    }
    for peer in replicas {
        if cluster.meta_leader.as_deref() == peer.name.as_deref() {
            continue;
        }
        cluster.nodes.push(NatsNode {
            name: peer.name.unwrap_or_default(),
            up: Some(!peer.offline.unwrap_or(false)),
            current: peer.current,
            lag: Some(peer.lag.unwrap_or(0)),
            active_ms: peer.active.map(nanos_to_ms),
        });
    }
}

fn nanos_to_ms(ns: i64) -> u64 {
    u64::try_from(ns / 1_000_000).unwrap_or(0)
}

/// Go's zero time (`0001-01-01T00:00:00Z`) means "none".
fn timestamp(text: Option<String>) -> Option<Timestamp> {
    let ts = gatekeeper_model::parse_timestamp(text.as_deref()?).ok()?;
    (ts.timestamp() > 0).then_some(ts)
}

fn stream_facts(name: String, raw: RawStreamInfo) -> StreamFacts {
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

fn consumer_facts(raw: RawConsumerInfo) -> ConsumerFacts {
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
struct ListPage<T> {
    total: Option<u64>,
    #[serde(alias = "streams", alias = "consumers")]
    items: Option<Vec<T>>,
    missing: Option<Vec<String>>,
}

/// Every page of a listing, read.
struct Listing<T> {
    items: Vec<T>,
    /// Names the server knows but could not read.
    missing: Vec<String>,
    /// Why the listing stopped short, if it did.
    gap: Option<String>,
    /// The gap is a failed request (not an early empty page).
    failed: bool,
}

#[derive(Deserialize)]
struct RawStreamInfo {
    config: Option<RawStreamConfig>,
    state: Option<RawStreamState>,
    cluster: Option<RawCluster>,
}

#[derive(Deserialize)]
struct RawStreamConfig {
    name: Option<String>,
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
struct RawPeer {
    name: Option<String>,
    current: Option<bool>,
    offline: Option<bool>,
    active: Option<i64>,
    lag: Option<u64>,
}

#[derive(Deserialize)]
struct RawConsumerInfo {
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

#[derive(Deserialize)]
struct Healthz {
    status: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Jsz {
    memory: Option<u64>,
    storage: Option<u64>,
    config: Option<JszConfig>,
    meta_cluster: Option<MetaCluster>,
}

#[derive(Deserialize)]
struct JszConfig {
    max_memory: Option<i64>,
    max_storage: Option<i64>,
}

#[derive(Deserialize)]
struct MetaCluster {
    name: Option<String>,
    leader: Option<String>,
    cluster_size: Option<u64>,
    replicas: Option<Vec<RawPeer>>,
}

#[derive(Deserialize)]
struct Varz {
    cluster: Option<VarzCluster>,
    jetstream: Option<VarzJetStream>,
}

#[derive(Deserialize)]
struct VarzJetStream {
    config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct VarzCluster {
    name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_moved_out_of_the_url() {
        assert_eq!(
            split_userinfo("nats://app:s%40cret@127.0.0.1:4223"),
            (
                "nats://127.0.0.1:4223".to_owned(),
                Some("app".to_owned()),
                Some("s@cret".to_owned())
            )
        );
        assert_eq!(
            split_userinfo("nats://tok@h:1"),
            ("nats://h:1".to_owned(), Some("tok".to_owned()), None)
        );
        assert_eq!(
            split_userinfo("nats://h:1"),
            ("nats://h:1".to_owned(), None, None)
        );
    }

    #[test]
    fn stream_name_globs() {
        assert!(glob_match("AA_*", "AA_CORE_HOT"));
        assert!(glob_match("*_HOT", "AA_CORE_HOT"));
        assert!(glob_match("AA_*_HOT", "AA_CORE_HOT"));
        assert!(!glob_match("AA_*_HOT", "AA_DLQ"));
        assert!(glob_match("AA_DLQ", "AA_DLQ"));
        assert!(!glob_match("AA_DLQ", "AA_DLQ2"));
    }

    #[test]
    fn api_errors_are_errors_naming_the_subject() {
        let e = decode_api::<ListPage<RawStreamInfo>>(
            "$JS.API.STREAM.LIST",
            br#"{"type":"x","error":{"code":503,"err_code":10039,"description":"jetstream not enabled"}}"#,
        )
        .err()
        .unwrap();
        assert_eq!(
            e,
            "$JS.API.STREAM.LIST: JetStream API error 503 (10039): jetstream not enabled"
        );
    }

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
