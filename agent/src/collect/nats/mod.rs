//! NATS JetStream: server, streams (every page), consumers, and cluster
//! health from the monitoring endpoint ([`monitor`]). The API's JSON and its
//! conversion to facts are in [`wire`]; the connection is the client's
//! ([`crate::clients::nats`]).

mod monitor;
mod wire;

use super::{Collector, timeout_or_default};
use crate::clients::SourceError;
use crate::clients::nats::JetStream;
use crate::config::NatsSourceConfig;
use futures::StreamExt as _;
use gatekeeper_model::{ConsumerFacts, NatsFacts, NatsServer, StreamFacts};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;
use wire::{ListPage, RawConsumerInfo, RawStreamInfo, consumer_facts, stream_facts};

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

    /// Reads every page of a JetStream listing (`{"offset":n}` requests until
    /// `total`). `Err` only when the first page fails; a later failure or an
    /// empty page before `total` ends the listing with `gap` set.
    async fn list_pages<T: DeserializeOwned>(
        &self,
        js: &JetStream,
        suffix: &str,
        deadline: Instant,
    ) -> Result<Listing<T>, SourceError> {
        let mut listing = Listing {
            items: Vec::new(),
            missing: Vec::new(),
            gap: None,
            failed: false,
        };
        let mut offset = 0u64;
        loop {
            let body = format!(r#"{{"offset":{offset}}}"#);
            let page: ListPage<T> = match js.request(suffix, body, deadline).await {
                Ok(page) => page,
                Err(e) if offset == 0 => return Err(e.into()),
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
        js: &JetStream,
        deadline: Instant,
        facts: &mut NatsFacts,
    ) -> Result<(), SourceError> {
        // Nothing listed at all: the source is unavailable.
        let listing: Listing<RawStreamInfo> = self.list_pages(js, "STREAM.LIST", deadline).await?;
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
        js: &JetStream,
        stream: &str,
        deadline: Instant,
    ) -> Result<(Vec<ConsumerFacts>, bool), SourceError> {
        let suffix = format!("CONSUMER.LIST.{stream}");
        let listing: Listing<RawConsumerInfo> = self.list_pages(js, &suffix, deadline).await?;
        // A failed page loses the stream's consumers; an early empty page
        // keeps what was read, marked incomplete.
        if let (true, Some(gap)) = (listing.failed, &listing.gap) {
            return Err(SourceError::Unreachable(format!(
                "{}.{suffix}: {gap}",
                crate::clients::nats::api_prefix(&self.config)
            )));
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
        self.config.streams.is_empty()
            || self
                .config
                .streams
                .iter()
                .any(|p| crate::text::glob_match(p, name))
    }
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

impl Collector for NatsCollector {
    type Facts = NatsFacts;
    const NAME: &'static str = "nats";

    fn timeout(&self) -> Duration {
        timeout_or_default(self.config.timeout)
    }

    async fn collect(&self, deadline: Instant) -> Result<NatsFacts, SourceError> {
        let monitor = async {
            let urls = self.config.monitor_urls();
            match urls.is_empty() {
                false => Some(monitor::monitor(&urls, deadline).await),
                true => None,
            }
        };
        let jetstream = async {
            let js =
                JetStream::connect(&self.config, &self.base_dir, deadline, self.timeout()).await?;
            let info = js.client().server_info();
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
                return Err(SourceError::Refused(format!(
                    "{}: JetStream is not enabled on server {}",
                    self.config.url.redacted(),
                    info.server_name
                )));
            }
            self.list_streams(&js, deadline, &mut facts).await?;
            let names: Vec<String> = facts
                .streams
                .iter()
                .filter(|s| s.error.is_none())
                .map(|s| s.name.clone())
                .collect();
            let listings: Vec<_> = futures::stream::iter(names)
                .map(|name| {
                    let js = &js;
                    async move {
                        let result = self.list_consumers(js, &name, deadline).await;
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
            let _ = js.client().drain().await;
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
                error: Some(error.to_string()),
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
