//! The fence on a real nats-server: a step may run only while the lease key
//! names this agent at (or after) the epoch it wrote, within its TTL.

use gatekeeper::actions::fence::{Fence, Fenced, HeldLease};
use gatekeeper::config::Config;
use gatekeeper_testsupport::{NatsServer, NatsVersion, js_request};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_fence_passes_only_the_current_holder_within_its_ttl() {
    let mut nats = NatsServer::start(NatsVersion::V2_9);
    let config = Config::parse(
        &format!(
            "[sources.nats]\nurl = \"{}\"\n[ledger]\nlease_ttl = \"3s\"\n",
            nats.url()
        ),
        "test.toml",
        None,
    )
    .unwrap();
    let c = async_nats::connect(nats.url()).await.unwrap();
    js_request(
        &c,
        "$JS.API.STREAM.CREATE.KV_gatekeeper-lease",
        json!({"name": "KV_gatekeeper-lease", "subjects": ["$KV.gatekeeper-lease.>"],
               "max_msgs_per_subject": 1, "storage": "memory"}),
    )
    .await;
    let put = |holder: &'static str| {
        let c = c.clone();
        async move {
            let ack = c
                .request(
                    "$KV.gatekeeper-lease.canary",
                    json!({"holder": holder, "ttl_ms": 3000}).to_string().into(),
                )
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&ack.payload).unwrap()["seq"]
                .as_u64()
                .unwrap()
        }
    };
    let held = HeldLease::default();
    let fence = Fence::new(Arc::new(config), "canary", "agent-a", held.clone());
    assert_eq!(fence.check().await, Err(Fenced::NotHeld));

    let epoch = put("agent-a").await;
    *held.lock().unwrap() = Some((epoch, Instant::now()));
    assert_eq!(fence.check().await, Ok(epoch));
    // Our own renewal moves the revision on: still ours.
    let renewed = put("agent-a").await;
    assert_eq!(fence.check().await, Ok(renewed));

    // Someone else took it: refused, naming them.
    let taken = put("agent-b").await;
    assert_eq!(
        fence.check().await,
        Err(Fenced::Moved {
            epoch,
            current: taken,
            holder: "agent-b".into()
        })
    );

    // Our own write older than the TTL: refused without asking NATS.
    *held.lock().unwrap() = Some((taken, Instant::now() - Duration::from_secs(4)));
    assert!(matches!(
        fence.check().await,
        Err(Fenced::Expired { epoch: e, ttl_ms: 3000, .. }) if e == taken
    ));

    // NATS gone: it cannot prove it holds the lease, so it does not act.
    *held.lock().unwrap() = Some((taken, Instant::now()));
    nats.kill();
    assert!(matches!(fence.check().await, Err(Fenced::Unreadable(_))));
}
