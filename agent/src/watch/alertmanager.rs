//! Delivery of `watch`'s alerts to Alertmanager (`POST /api/v2/alerts`).
//!
//! Each alert becomes an Alertmanager alert labelled with what identifies it
//! (`alertname`, `phase`, `trigger`, `incident`, `agent`, `severity`) and
//! annotated with what a person needs (`summary`, `reason`, `observed`,
//! `expected`, `runbook_url`). An alert of an open incident is sent again
//! every `repeat` while the incident is open (with `endsAt` a few repeats
//! ahead, so a dead agent's alerts resolve on their own) and sent once more
//! with `endsAt` = now when the incident closes. An alert outside any
//! incident is sent once and expires after four repeats.
//!
//! A task of its own does the sending: the watch loop only hands alerts
//! over (never waiting, never blocked by a slow or dead Alertmanager); a
//! failed post is counted and retried with backoff.

use crate::config::AlertmanagerConfig;
use crate::metrics::Metrics;
use crate::verdict::PhaseReport;
use gatekeeper_model::{Severity, Timestamp, format_timestamp};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Alerts waiting for the sender at most; beyond, new ones are counted as
/// failed deliveries and dropped (the ledger still has every alert).
const QUEUE: usize = 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One alert as Alertmanager takes it.
#[derive(Debug, Clone, PartialEq)]
struct AmAlert {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: Timestamp,
    /// Set when it is resolved (or, outside an incident, when it expires).
    ends_at: Option<Timestamp>,
}

enum Event {
    Fire(AmAlert),
    Close(String),
}

/// The watch loop's handle: hands alerts to the sending task.
#[derive(Clone)]
pub(super) struct AlertmanagerSender {
    tx: mpsc::Sender<Event>,
    metrics: Arc<Metrics>,
    agent: String,
    runbook: Option<String>,
}

impl AlertmanagerSender {
    /// Starts the sending task.
    pub fn start(
        config: &AlertmanagerConfig,
        metrics: Arc<Metrics>,
        agent: &str,
    ) -> Result<AlertmanagerSender, super::WatchError> {
        crate::clients::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("gatekeeper/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout())
            .build()
            .map_err(|e| super::WatchError::Alertmanager(format!("client: {}", e.without_url())))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = Task {
            client,
            url: format!(
                "{}/api/v2/alerts",
                config.url.expose().trim_end_matches('/')
            ),
            repeat: config.repeat(),
            metrics: metrics.clone(),
            active: BTreeMap::new(),
        };
        tokio::spawn(task.run(rx));
        Ok(AlertmanagerSender {
            tx,
            metrics,
            agent: agent.to_owned(),
            runbook: config.runbook.clone(),
        })
    }

    /// Hands one alert over. `trigger` is `gate/trigger`; its severity,
    /// reason, observed and expected come from the report.
    pub fn fire(
        &self,
        incident: Option<&str>,
        trigger: Option<&str>,
        message: &str,
        report: &PhaseReport,
    ) {
        self.send("GatekeeperAlert", incident, trigger, message, report);
    }

    /// An incident opened (named after its first trigger); it resolves
    /// when the incident closes.
    pub fn incident(
        &self,
        incident: &str,
        trigger: Option<&str>,
        summary: &str,
        report: &PhaseReport,
    ) {
        self.send(
            "GatekeeperIncident",
            Some(incident),
            trigger,
            summary,
            report,
        );
    }

    fn send(
        &self,
        alertname: &str,
        incident: Option<&str>,
        trigger: Option<&str>,
        message: &str,
        report: &PhaseReport,
    ) {
        let alert = build(
            alertname,
            &self.agent,
            self.runbook.as_deref(),
            incident,
            trigger,
            message,
            report,
        );
        if self.tx.try_send(Event::Fire(alert)).is_err() {
            self.metrics.alertmanager_errors.inc();
            tracing::warn!(
                "alertmanager: the delivery queue is full; alert dropped (it is in the ledger)"
            );
        }
    }

    /// The incident closed: its alerts resolve.
    pub fn close(&self, incident: &str) {
        if self.tx.try_send(Event::Close(incident.to_owned())).is_err() {
            self.metrics.alertmanager_errors.inc();
        }
    }
}

fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Automatic => "critical",
        Severity::Manual => "warning",
    }
}

fn build(
    alertname: &str,
    agent: &str,
    runbook: Option<&str>,
    incident: Option<&str>,
    trigger: Option<&str>,
    message: &str,
    report: &PhaseReport,
) -> AmAlert {
    let mut labels = BTreeMap::from([
        ("alertname".to_owned(), alertname.to_owned()),
        ("agent".to_owned(), agent.to_owned()),
        ("phase".to_owned(), report.phase.clone()),
    ]);
    let mut annotations = BTreeMap::from([("summary".to_owned(), message.to_owned())]);
    let mut severity = "warning";
    if let Some(incident) = incident.filter(|i| !i.is_empty()) {
        labels.insert("incident".into(), incident.to_owned());
    }
    if let Some(key) = trigger.filter(|t| !t.is_empty()) {
        labels.insert("trigger".into(), key.to_owned());
        if let Some((gate, id)) = key.split_once('/')
            && let Some(g) = report.gates.iter().find(|g| g.name == gate)
        {
            if let Some(t) = g.triggers.iter().find(|t| t.id == id) {
                severity = severity_label(t.severity);
                annotations.insert("reason".into(), t.reason.clone());
            }
            if let Some(c) = g.criteria.iter().find(|c| c.id == id) {
                if let Some(o) = &c.observed {
                    annotations.insert("observed".into(), o.clone());
                }
                if let Some(e) = &c.expected {
                    annotations.insert("expected".into(), e.clone());
                }
            }
        }
    }
    labels.insert("severity".into(), severity.to_owned());
    if let Some(r) = runbook {
        annotations.insert("runbook_url".into(), r.to_owned());
    }
    AmAlert {
        labels,
        annotations,
        starts_at: chrono::Utc::now(),
        ends_at: None,
    }
}

struct Task {
    client: reqwest::Client,
    url: String,
    repeat: Duration,
    metrics: Arc<Metrics>,
    /// By their labels (Alertmanager's identity of an alert).
    active: BTreeMap<String, AmAlert>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Event>) {
        let mut next_send: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_secs(1);
        loop {
            let wake = next_send.unwrap_or_else(|| tokio::time::Instant::now() + self.repeat);
            tokio::select! {
                event = rx.recv() => match event {
                    None => return,
                    Some(event) => {
                        self.apply(event);
                        next_send = Some(tokio::time::Instant::now());
                    }
                },
                () = tokio::time::sleep_until(wake) => {
                    if self.active.is_empty() {
                        next_send = None;
                        continue;
                    }
                    match self.post().await {
                        Ok(()) => {
                            backoff = Duration::from_secs(1);
                            self.metrics.alertmanager_posts.inc();
                            self.forget_ended();
                            next_send = Some(tokio::time::Instant::now() + self.repeat);
                        }
                        Err(e) => {
                            self.metrics.alertmanager_errors.inc();
                            tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "alertmanager: delivery failed");
                            next_send = Some(tokio::time::Instant::now() + backoff);
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                }
            }
        }
    }

    fn apply(&mut self, event: Event) {
        let now = chrono::Utc::now();
        match event {
            Event::Fire(mut alert) => {
                let key = fingerprint(&alert.labels);
                if !alert.labels.contains_key("incident") {
                    // No incident will close it: it expires on its own.
                    alert.ends_at =
                        Some(now + chrono::Duration::from_std(self.repeat * 4).unwrap_or_default());
                }
                if let Some(old) = self.active.get(&key) {
                    alert.starts_at = old.starts_at;
                }
                self.active.insert(key, alert);
            }
            Event::Close(incident) => {
                for alert in self.active.values_mut() {
                    if alert.labels.get("incident") == Some(&incident) {
                        alert.ends_at = Some(now);
                    }
                }
            }
        }
    }

    /// After a successful post: resolved and expiring alerts were told.
    fn forget_ended(&mut self) {
        self.active.retain(|_, a| a.ends_at.is_none());
    }

    async fn post(&self) -> Result<(), Delivery> {
        let now = chrono::Utc::now();
        let ahead = now + chrono::Duration::from_std(self.repeat * 4).unwrap_or_default();
        let body: Vec<serde_json::Value> = self
            .active
            .values()
            .map(|a| {
                json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": format_timestamp(a.starts_at),
                    "endsAt": format_timestamp(a.ends_at.unwrap_or(ahead)),
                })
            })
            .collect();
        let response = self
            .client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| Delivery::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(Delivery::Refused {
                status: status.as_u16(),
                body: crate::text::untrusted_line(&text),
            })
        }
    }
}

/// Why a post to Alertmanager failed.
#[derive(Debug, thiserror::Error)]
enum Delivery {
    #[error("{0}")]
    Unreachable(String),
    #[error("answered HTTP {status}: {body}")]
    Refused { status: u16, body: String },
}

fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{GateReport, GateVerdict};
    use gatekeeper_model::{Criterion, Decision, Trigger};

    fn report() -> PhaseReport {
        PhaseReport {
            phase: "canary".into(),
            verdict: Decision::NoGo,
            taken_at: chrono::Utc::now(),
            snapshot_digest: String::new(),
            gates: vec![GateReport {
                name: "triggers".into(),
                implementation: "signals@0.1.0".into(),
                sha256: None,
                signer: None,
                verdict: GateVerdict::NoGo,
                error: None,
                criteria: vec![
                    Criterion::fail("dlq-spike", "DLQ spike", "42 > 10")
                        .observed("42 msg/min")
                        .expected("<= 10 msg/min"),
                ],
                triggers: vec![Trigger {
                    id: "dlq-spike".into(),
                    severity: Severity::Automatic,
                    reason: "42 msg/min for 3s".into(),
                    since: None,
                }],
            }],
        }
    }

    #[test]
    fn an_alert_carries_its_trigger_severity_figures_and_runbook() {
        let a = build(
            "GatekeeperAlert",
            "agent-a",
            Some("https://runbooks/dlq"),
            Some("inc-1"),
            Some("triggers/dlq-spike"),
            "rolling back",
            &report(),
        );
        assert_eq!(a.labels["alertname"], "GatekeeperAlert");
        assert_eq!(a.labels["severity"], "critical");
        assert_eq!(a.labels["incident"], "inc-1");
        assert_eq!(a.labels["trigger"], "triggers/dlq-spike");
        assert_eq!(a.labels["phase"], "canary");
        assert_eq!(a.annotations["observed"], "42 msg/min");
        assert_eq!(a.annotations["expected"], "<= 10 msg/min");
        assert_eq!(a.annotations["reason"], "42 msg/min for 3s");
        assert_eq!(a.annotations["runbook_url"], "https://runbooks/dlq");
        let plain = build(
            "GatekeeperAlert",
            "a",
            None,
            None,
            None,
            "source down",
            &report(),
        );
        assert_eq!(plain.labels["severity"], "warning");
        assert!(
            !plain.labels.contains_key("incident")
                && !plain.annotations.contains_key("runbook_url")
        );
    }
}
