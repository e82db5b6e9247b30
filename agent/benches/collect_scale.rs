//! Collection at scale: `gatekeeper snapshot` against a local nats-server
//! holding 100, 300 and 1,000 streams with 10 consumers each (1,000 streams →
//! 10,000 consumers). Reports wall time and peak RSS of the real binary.
//!
//!     cargo bench -p gatekeeper --bench collect_scale
//!
//! `GATEKEEPER_BENCH_NATS=2.9` runs it against nats-server 2.9 (default 2.15).
//! Peak RSS is the kernel's `ru_maxrss` over the children waited for so far;
//! sizes run in increasing order, so each row's figure is that size's peak.

use futures::StreamExt as _;
use gatekeeper_testsupport::{NatsServer, NatsVersion, js_request};
use nix::sys::resource::{UsageWho, getrusage};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");
const SIZES: [usize; 3] = [100, 300, 1000];
const CONSUMERS_PER_STREAM: usize = 10;
const RUNS: usize = 5;

async fn grow_to(client: &async_nats::Client, from: usize, to: usize) {
    let streams = futures::stream::iter(from..to).map(|i| async move {
        js_request(
            client,
            &format!("$JS.API.STREAM.CREATE.BENCH_{i:04}"),
            json!({"name": format!("BENCH_{i:04}"), "subjects": [format!("bench.{i}.>")],
                   "storage": "memory", "max_age": 172_800_000_000_000u64}),
        )
        .await;
    });
    streams.buffer_unordered(32).collect::<Vec<_>>().await;
    let consumers = futures::stream::iter(
        (from..to).flat_map(|i| (0..CONSUMERS_PER_STREAM).map(move |c| (i, c))),
    )
    .map(|(i, c)| async move {
        let stream = format!("BENCH_{i:04}");
        let durable = format!("c{c}");
        js_request(
            client,
            &format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}"),
            json!({"stream_name": stream, "config": {"durable_name": durable,
                       "filter_subject": format!("bench.{i}.{c}"), "ack_policy": "explicit"}}),
        )
        .await;
    });
    consumers.buffer_unordered(64).collect::<Vec<_>>().await;
}

fn main() {
    let version = match std::env::var("GATEKEEPER_BENCH_NATS").as_deref() {
        Ok("2.9") => NatsVersion::V2_9,
        _ => NatsVersion::V2_15,
    };
    let server = NatsServer::start(version);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(
        &config,
        format!(
            "[sources.nats]\nurl = \"{}\"\ntimeout = \"60s\"\n",
            server.url()
        ),
    )
    .expect("write config");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = runtime
        .block_on(async_nats::connect(server.url()))
        .expect("connect");

    println!(
        "nats-server {version:?}, {CONSUMERS_PER_STREAM} consumers per stream, {RUNS} runs per size"
    );
    println!("| streams | consumers | wall min | wall median | peak RSS | snapshot JSON |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut have = 0;
    for size in SIZES {
        runtime.block_on(grow_to(&client, have, size));
        have = size;
        let out = dir.path().join(format!("snap-{size}.json"));
        let mut walls = Vec::new();
        for _ in 0..RUNS {
            let start = Instant::now();
            let status = Command::new(BIN)
                .args([
                    "snapshot",
                    "-c",
                    config.to_str().unwrap(),
                    "-o",
                    out.to_str().unwrap(),
                ])
                .env("XDG_CACHE_HOME", dir.path())
                .env_remove("NATS_URL")
                .env_remove("RUST_LOG")
                .stderr(std::process::Stdio::null())
                .status()
                .expect("run gatekeeper snapshot");
            walls.push(start.elapsed());
            assert!(status.success(), "gatekeeper snapshot failed: {status}");
        }
        let rss_kib = getrusage(UsageWho::RUSAGE_CHILDREN)
            .expect("getrusage")
            .max_rss();
        let text = std::fs::read(&out).expect("snapshot written");
        let snapshot: gatekeeper_model::Snapshot =
            serde_json::from_slice(&text).expect("snapshot JSON");
        let facts = snapshot.nats.facts.expect("nats facts");
        let consumers: usize = facts.streams.iter().map(|s| s.consumers.len()).sum();
        assert_eq!(snapshot.nats.status, gatekeeper_model::SourceStatus::Ok);
        assert_eq!(facts.streams.len(), size);
        assert_eq!(consumers, size * CONSUMERS_PER_STREAM);
        walls.sort();
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {size} | {consumers} | {} | {} | {:.1} MiB | {:.1} MiB |",
            ms(walls[0]),
            ms(walls[RUNS / 2]),
            rss_kib as f64 / 1024.0,
            text.len() as f64 / (1 << 20) as f64
        );
    }
}
