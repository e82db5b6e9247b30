//! The NATS collector against real nats-server processes: 2.9.10 (Debian) and
//! 2.15.1 (PyPI), single node and a 3-node JetStream cluster.

use gatekeeper::collect::{NatsCollector, run_collector};
use gatekeeper::config::{NatsSourceConfig, OneOrMany, Secret, SecretUrl};
use gatekeeper_model::{NatsFacts, Source, SourceStatus};
use gatekeeper_testsupport::{
    NatsCluster, NatsOptions, NatsServer, NatsVersion, js_request, wait_for_async,
};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

async fn collect(config: NatsSourceConfig) -> Source<NatsFacts> {
    run_collector(&NatsCollector::new(config, Path::new("."))).await
}

fn source(url: &str, monitor: Option<String>) -> NatsSourceConfig {
    let mut c = NatsSourceConfig::new(SecretUrl::new(url));
    c.monitor_url = monitor.map(OneOrMany::One);
    c
}

async fn client(url: &str) -> async_nats::Client {
    async_nats::connect(url).await.expect("connect test client")
}

async fn client_with_password(url: &str, user: &str, password: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        .connect(url)
        .await
        .expect("connect test client")
}

async fn create_stream(client: &async_nats::Client, name: &str, subjects: &[&str], replicas: u32) {
    create_stream_in(client, name, subjects, replicas, "file").await;
}

async fn create_stream_in(
    client: &async_nats::Client,
    name: &str,
    subjects: &[&str],
    replicas: u32,
    storage: &str,
) {
    js_request(
        client,
        &format!("$JS.API.STREAM.CREATE.{name}"),
        json!({"name": name, "subjects": subjects, "retention": "limits", "storage": storage,
               "num_replicas": replicas, "max_age": 172_800_000_000_000u64, "discard": "old"}),
    )
    .await;
}

/// A consumer whose ack wait and max ack pending differ from the seed's, so
/// the facts read back are these values and not a default.
async fn create_consumer(client: &async_nats::Client, stream: &str, durable: &str, filter: &str) {
    gatekeeper_testsupport::create_consumer(
        client,
        stream,
        durable,
        filter,
        std::time::Duration::from_secs(30),
        100,
    )
    .await;
}

#[tokio::test]
async fn single_node_facts_on_both_versions() {
    for version in NatsVersion::ALL {
        let server = NatsServer::start_with(
            version,
            &NatsOptions {
                user_password: Some(("app".into(), "hunter2".into())),
                ..NatsOptions::default()
            },
        );
        let authed = format!("nats://app:hunter2@127.0.0.1:{}", server.port);
        let c = client_with_password(&server.url(), "app", "hunter2").await;
        create_stream(&c, "AA_CORE_HOT", &["athlete-ally.>", "sleep.*"], 1).await;
        create_consumer(
            &c,
            "AA_CORE_HOT",
            "normalize-hrv-durable",
            "athlete-ally.hrv.raw-received",
        )
        .await;
        for i in 0..5 {
            js_request(&c, "athlete-ally.hrv.raw-received", json!({"i": i})).await;
        }
        js_request(&c, "sleep.raw-received", json!({})).await;

        let src = collect(source(&authed, Some(server.monitor_url()))).await;
        assert_eq!(src.status, SourceStatus::Ok, "{version:?}: {:?}", src.error);
        let facts = src.facts.unwrap();
        let version_text = facts.server.as_ref().unwrap().version.clone().unwrap();
        let expect_prefix = match version {
            NatsVersion::V2_9 => "2.9.",
            NatsVersion::V2_15 => "2.15.",
        };
        assert!(version_text.starts_with(expect_prefix), "{version_text}");
        assert!(facts.streams_complete);
        let s = facts.stream("AA_CORE_HOT").expect("stream listed");
        assert_eq!(s.error, None);
        let config = s.config.as_ref().unwrap();
        assert_eq!(config.subjects, vec!["athlete-ally.>", "sleep.*"]);
        assert_eq!(config.max_age_ms, Some(172_800_000));
        assert_eq!(config.replicas, Some(1));
        assert_eq!(config.storage.as_deref(), Some("file"));
        assert_eq!(config.retention.as_deref(), Some("limits"));
        assert_eq!(config.discard.as_deref(), Some("old"));
        assert_eq!(config.max_msgs, Some(-1));
        let state = s.state.as_ref().unwrap();
        assert_eq!(state.messages, Some(6));
        assert_eq!((state.first_seq, state.last_seq), (Some(1), Some(6)));
        assert_eq!(state.consumer_count, Some(1));
        assert_eq!(state.num_subjects, Some(2));
        assert!(state.first_ts.is_some() && state.last_ts >= state.first_ts);
        assert!(s.consumers_complete);
        let consumer = s
            .consumer("normalize-hrv-durable")
            .expect("consumer listed");
        let cc = consumer.config.as_ref().unwrap();
        assert_eq!(cc.durable_name.as_deref(), Some("normalize-hrv-durable"));
        assert_eq!(cc.filter_subjects, vec!["athlete-ally.hrv.raw-received"]);
        assert_eq!(cc.ack_policy.as_deref(), Some("explicit"));
        assert_eq!(cc.deliver_policy.as_deref(), Some("all"));
        assert_eq!(
            (cc.max_deliver, cc.ack_wait_ms, cc.max_ack_pending),
            (Some(5), Some(30_000), Some(100))
        );
        let cs = consumer.state.as_ref().unwrap();
        assert_eq!(cs.num_pending, Some(5));
        assert_eq!(
            (cs.num_ack_pending, cs.num_redelivered, cs.num_waiting),
            (Some(0), Some(0), Some(0))
        );
        let delivered = cs.delivered.as_ref().unwrap();
        assert_eq!(
            (delivered.consumer_seq, delivered.stream_seq),
            (Some(0), Some(0))
        );
        // Monitoring endpoint.
        let cluster = facts.cluster.as_ref().unwrap();
        assert_eq!(cluster.error, None, "{version:?}");
        assert_eq!(cluster.healthy, Some(true));
        assert_eq!(cluster.jetstream_enabled, Some(true));
        assert_eq!(cluster.storage_limit_bytes, Some(1 << 30));
        assert_eq!(cluster.memory_limit_bytes, Some(256 << 20));
        assert!(cluster.storage_used_bytes.unwrap() > 0);
        // No cluster: no meta leader reported, no nodes invented.
        assert_eq!(cluster.meta_leader, None);
        assert!(cluster.nodes.is_empty());
        // The password never reaches the snapshot.
        let json = serde_json::to_string(&facts).unwrap();
        assert!(!json.contains("hunter2"));
    }
}

#[tokio::test]
async fn every_page_of_a_large_listing_is_read() {
    for version in NatsVersion::ALL {
        let server = NatsServer::start(version);
        let c = client(&server.url()).await;
        // The server pages stream listings by 256 and consumer listings by 256.
        // Memory storage: this test is about paging, not disks (a busy CI
        // disk made 300 file-backed creations slow once).
        for i in 0..300 {
            create_stream_in(&c, &format!("S{i:03}"), &[&format!("s.{i}")], 1, "memory").await;
        }
        for i in 0..260 {
            create_consumer(&c, "S000", &format!("c{i:03}"), "s.0").await;
        }
        let mut config = source(&server.url(), None);
        config.timeout = Some(gatekeeper::config::DurationValue(Duration::from_secs(60)));
        let src = collect(config.clone()).await;
        assert_eq!(src.status, SourceStatus::Ok, "{version:?}: {:?}", src.error);
        let facts = src.facts.unwrap();
        assert_eq!(facts.streams.len(), 300, "{version:?}");
        assert!(facts.streams_complete);
        let s0 = facts.stream("S000").unwrap();
        assert_eq!(s0.consumers.len(), 260);
        assert!(s0.consumers_complete);
        assert_eq!(facts.stream("S299").unwrap().consumers.len(), 0);

        // A name filter keeps only matching streams.
        config.streams = vec!["S00*".into(), "S299".into()];
        let facts = collect(config).await.facts.unwrap();
        let names: Vec<&str> = facts.streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 11, "{names:?}");
        assert!(names.contains(&"S299") && names.contains(&"S009"));
    }
}

#[tokio::test]
async fn down_server_wrong_password_and_no_jetstream_are_unavailable() {
    for version in NatsVersion::ALL {
        let mut server = NatsServer::start_with(
            version,
            &NatsOptions {
                user_password: Some(("app".into(), "right-password".into())),
                ..NatsOptions::default()
            },
        );
        let mut wrong = source(&server.url(), None);
        wrong.user = Some("app".into());
        wrong.password = Some(Secret::new("wrong-password"));
        let src = collect(wrong).await;
        assert_eq!(src.status, SourceStatus::Unavailable);
        let error = src.error.unwrap();
        assert!(error.contains("authorization"), "{version:?}: {error}");
        assert!(!error.contains("wrong-password"));

        server.kill();
        let src = collect(source(
            &format!("nats://app:right-password@127.0.0.1:{}", server.port),
            Some(server.monitor_url()),
        ))
        .await;
        assert_eq!(src.status, SourceStatus::Unavailable);
        let error = src.error.unwrap();
        assert!(
            error.starts_with("cannot connect to nats://app:***@127.0.0.1:"),
            "{error}"
        );
        assert!(!error.contains("right-password"));

        let plain = NatsServer::start_with(
            version,
            &NatsOptions {
                no_jetstream: true,
                ..NatsOptions::default()
            },
        );
        let src = collect(source(&plain.url(), None)).await;
        assert_eq!(src.status, SourceStatus::Unavailable);
        assert!(src.error.unwrap().contains("JetStream is not enabled"));
        // With a monitoring endpoint the health facts stand; the streams are unknown.
        let src = collect(source(&plain.url(), Some(plain.monitor_url()))).await;
        assert_eq!(src.status, SourceStatus::Partial, "{version:?}");
        let facts = src.facts.unwrap();
        assert!(
            facts
                .error
                .as_deref()
                .unwrap()
                .contains("JetStream is not enabled")
        );
        assert!(!facts.streams_complete && facts.streams.is_empty());
        assert_eq!(
            facts.cluster.unwrap().jetstream_enabled,
            Some(false),
            "{version:?}"
        );
    }
}

#[tokio::test]
async fn token_auth() {
    let server = NatsServer::start_with(
        NatsVersion::V2_15,
        &NatsOptions {
            token: Some("s3cret-token".into()),
            ..NatsOptions::default()
        },
    );
    let mut config = source(&server.url(), None);
    config.token = Some(Secret::new("s3cret-token"));
    let src = collect(config).await;
    assert_eq!(src.status, SourceStatus::Ok, "{:?}", src.error);
    // The same token in the URL works too.
    let src = collect(source(
        &format!("nats://s3cret-token@127.0.0.1:{}", server.port),
        None,
    ))
    .await;
    assert_eq!(src.status, SourceStatus::Ok, "{:?}", src.error);
}

#[tokio::test]
async fn a_killed_cluster_node_shows_as_offline_replica() {
    for version in NatsVersion::ALL {
        let mut cluster = NatsCluster::start(version);
        let url = cluster.any().url();
        let c = client(&url).await;
        // JetStream needs a meta leader before it takes a stream.
        wait_for_async("a meta leader", Duration::from_secs(30), || async {
            let reply = c.request("$JS.API.INFO", "".into()).await.ok()?;
            let v: serde_json::Value = serde_json::from_slice(&reply.payload).ok()?;
            v.get("error").is_none().then_some(())
        })
        .await;
        wait_for_async("an R3 stream", Duration::from_secs(30), || async {
            let body = json!({"name": "AA_CORE_HOT", "subjects": ["athlete-ally.>"], "num_replicas": 3, "storage": "file"});
            let reply = c
                .request("$JS.API.STREAM.CREATE.AA_CORE_HOT", body.to_string().into())
                .await
                .ok()?;
            let v: serde_json::Value = serde_json::from_slice(&reply.payload).ok()?;
            (v.get("error").is_none() || v.to_string().contains("already in use")).then_some(())
        })
        .await;
        let mut config = source(&url, None);
        // One monitoring endpoint per node: only the meta leader lists its peers.
        config.monitor_url = Some(OneOrMany::Many(
            cluster
                .nodes
                .iter()
                .flatten()
                .map(|n| n.monitor_url())
                .collect(),
        ));
        let healthy = wait_for_async(
            "all three replicas current",
            Duration::from_secs(30),
            || async {
                let facts = collect(config.clone()).await.facts?;
                let s = facts.stream("AA_CORE_HOT")?;
                let cl = s.cluster.as_ref()?;
                (cl.leader.is_some()
                    && cl.replicas.len() == 2
                    && cl
                        .replicas
                        .iter()
                        .all(|p| p.current == Some(true) && p.offline == Some(false)))
                .then_some(facts)
            },
        )
        .await;
        let meta = healthy.cluster.as_ref().unwrap();
        assert_eq!(meta.error, None, "{version:?}");
        assert_eq!(meta.healthy, Some(true));
        assert!(meta.meta_leader.is_some());
        assert_eq!(meta.cluster_name.as_deref(), Some("gk"));
        // Every node's /routez: each node has routes to both others, each
        // with a measured round trip (seed 003: latency between nodes < 10 ms).
        let mut peers: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
            Default::default();
        for r in &meta.routes {
            assert_ne!(r.from, r.to, "{version:?}: {r:?}");
            let rtt = r
                .rtt_ms
                .unwrap_or_else(|| panic!("{version:?}: no rtt in {r:?}"));
            assert!((0.0..1000.0).contains(&rtt), "{version:?}: {r:?}");
            peers
                .entry(r.from.as_str())
                .or_default()
                .insert(r.to.as_str());
        }
        assert_eq!(peers.len(), 3, "{version:?}: {:?}", meta.routes);
        assert!(
            peers.values().all(|to| to.len() == 2),
            "{version:?}: {peers:?}"
        );
        if version != NatsVersion::V2_9 {
            // 2.10+ names the nodes; 2.9 gives server ids.
            let names: Vec<&str> = peers.keys().copied().collect();
            assert_eq!(names, ["n1", "n2", "n3"], "{version:?}");
        }

        // Kill a node that is not the one we are connected to.
        let leader = healthy
            .stream("AA_CORE_HOT")
            .unwrap()
            .cluster
            .clone()
            .unwrap()
            .leader
            .unwrap();
        let victim = (1..3)
            .find(|i| cluster.nodes[*i].as_ref().unwrap().name != leader)
            .unwrap_or(1);
        let victim_name = cluster.nodes[victim].as_ref().unwrap().name.clone();
        let victim_port = cluster.nodes[victim].as_ref().unwrap().monitor_port;
        cluster.kill(victim);

        let degraded = wait_for_async(
            "the killed replica reported offline",
            Duration::from_secs(60),
            || async {
                let src = collect(config.clone()).await;
                let facts = src.facts.clone()?;
                let s = facts.stream("AA_CORE_HOT")?;
                let peer = s
                    .cluster
                    .as_ref()?
                    .replicas
                    .iter()
                    .find(|p| p.name == victim_name)?
                    .clone();
                (peer.offline == Some(true) || peer.current == Some(false)).then_some(src)
            },
        )
        .await;
        let facts = degraded.facts.unwrap();
        // The stream keeps its leader with 2 of 3 up.
        let s = facts.stream("AA_CORE_HOT").unwrap();
        assert!(s.cluster.as_ref().unwrap().leader.is_some());
        // The dead node's monitoring endpoint does not answer: the source is
        // partial, and the error names that endpoint.
        assert_eq!(degraded.status, SourceStatus::Partial, "{version:?}");
        let victim_monitor = format!("127.0.0.1:{}", victim_port);
        let error = facts.cluster.as_ref().unwrap().error.clone().unwrap();
        assert!(error.contains(&victim_monitor), "{error}");

        // A second node down: no quorum. Whatever the survivor answers, the
        // stream is never reported healthy: the source is unavailable, or the
        // stream is marked (missing / no leader / not read).
        let second = (0..3)
            .find(|i| *i != victim && cluster.nodes[*i].as_ref().is_some_and(|n| n.url() != url))
            .unwrap();
        cluster.kill(second);
        let mut short = config.clone();
        short.timeout = Some(gatekeeper::config::DurationValue(Duration::from_secs(2)));
        let lost = wait_for_async("quorum loss to show", Duration::from_secs(60), || async {
            let src = collect(short.clone()).await;
            let marked = match &src.facts {
                None => true,
                Some(f) => f.stream("AA_CORE_HOT").is_none_or(|s| s.error.is_some()),
            };
            marked.then_some(src)
        })
        .await;
        assert_ne!(lost.status, SourceStatus::Ok, "{version:?}");
    }
}

#[tokio::test]
async fn nkey_auth_from_a_seed_file() {
    let user = nkeys::KeyPair::new_user();
    let server = NatsServer::start_with(
        NatsVersion::V2_9,
        &NatsOptions {
            nkey: Some(user.public_key()),
            ..NatsOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.nk"), user.seed().unwrap()).unwrap();
    let mut config = source(&server.url(), None);
    config.nkey_file = Some("app.nk".into());
    // Relative paths resolve against the config file's directory.
    let src = run_collector(&NatsCollector::new(config, dir.path())).await;
    assert_eq!(src.status, SourceStatus::Ok, "{:?}", src.error);

    // Without the key: refused.
    let src = collect(source(&server.url(), None)).await;
    assert_eq!(src.status, SourceStatus::Unavailable);
}

#[tokio::test]
async fn tls_with_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca = write("ca.pem", ca_cert.pem());
    let cert = write("server.pem", server_cert.pem());
    let key = write("server-key.pem", server_key.serialize_pem());
    for version in NatsVersion::ALL {
        let server = NatsServer::start_with(
            version,
            &NatsOptions {
                tls: Some((cert.clone(), key.clone())),
                ..NatsOptions::default()
            },
        );
        let mut config = source(&server.url(), None);
        config.tls.required = true;
        config.tls.ca_file = Some(ca.clone());
        let src = collect(config).await;
        assert_eq!(src.status, SourceStatus::Ok, "{version:?}: {:?}", src.error);

        // Without our CA the server's certificate is not trusted.
        let mut untrusted = source(&server.url(), None);
        untrusted.tls.required = true;
        let src = collect(untrusted).await;
        assert_eq!(src.status, SourceStatus::Unavailable, "{version:?}");
    }
}

/// The fault matrix's "deadline part-way through the stream listing": the
/// server stops answering after the first page (a proxy drops its answers
/// from the second `STREAM.LIST` on). The first page is kept, the listing is
/// incomplete, the source partial, and a stream on the unread page is not
/// read — never absent.
#[tokio::test]
async fn a_deadline_mid_listing_keeps_the_first_page_and_marks_the_rest_not_read() {
    for version in NatsVersion::ALL {
        let server = NatsServer::start(version);
        let c = client(&server.url()).await;
        for i in 0..300 {
            create_stream_in(&c, &format!("S{i:03}"), &[&format!("s.{i}")], 1, "memory").await;
        }
        let upstream: std::net::SocketAddr =
            server.url().trim_start_matches("nats://").parse().unwrap();
        let proxy = gatekeeper_testsupport::StallingProxy::start(upstream, "STREAM.LIST", 2);
        let mut config = source(&format!("nats://127.0.0.1:{}", proxy.port()), None);
        config.timeout = Some(gatekeeper::config::DurationValue(Duration::from_secs(2)));
        let started = std::time::Instant::now();
        let src = collect(config).await;
        assert!(started.elapsed() < Duration::from_secs(10), "{version:?}");
        assert_eq!(
            src.status,
            SourceStatus::Partial,
            "{version:?}: {:?}",
            src.error
        );
        let facts = src.facts.unwrap();
        assert_eq!(facts.streams.len(), 256, "{version:?}: the first page");
        assert!(!facts.streams_complete);
        assert!(
            facts
                .missing_streams
                .iter()
                .any(|m| m.starts_with("(listing from offset 256:")),
            "{version:?}: {:?}",
            facts.missing_streams
        );
        // The last stream was on the page that never came: not read.
        assert!(!facts.stream_absent("S299"));
        assert_eq!(
            facts.stream_or_why("S299").unwrap_err(),
            "stream S299 not read: the stream listing is incomplete"
        );
    }
}
