//! Health probes and Prometheus scrapes against a real HTTP server.

use gatekeeper::collect::{MetricsCollector, ProbeCollector, run_collector};
use gatekeeper::config::{DurationValue, HttpProbeConfig, KebabId, MetricsScrapeConfig, SecretUrl};
use gatekeeper_model::SourceStatus;
use gatekeeper_testsupport::{CannedHttp, free_port};
use std::time::Duration;

const METRICS: &str = r#"# HELP normalize_hrv_messages_total HRV messages by result.
# TYPE normalize_hrv_messages_total counter
normalize_hrv_messages_total{result="success",subject="athlete-ally.hrv.raw-received",stream="AA_CORE_HOT",durable="normalize-hrv-durable"} 1042
normalize_hrv_messages_total{result="dlq",subject="athlete-ally.hrv.raw-received",stream="AA_CORE_HOT",durable="normalize-hrv-durable"} 2
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
"#;

fn ms(n: u64) -> Option<DurationValue> {
    Some(DurationValue(Duration::from_millis(n)))
}

#[tokio::test]
async fn probes_report_status_latency_and_failures() {
    let http = CannedHttp::start();
    http.route("/health", 200, "ok", Duration::ZERO);
    http.route("/broken", 503, "down", Duration::ZERO);
    http.route("/slow", 200, "ok", Duration::from_millis(1500));
    let probe = |name: &str, url: String| HttpProbeConfig {
        name: KebabId::parse(name).expect("a kebab-case name"),
        url: SecretUrl::new(url),
        timeout: ms(500),
    };
    let closed = free_port();
    let src = run_collector(&ProbeCollector::new(vec![
        probe("ingest", http.url("/health")),
        probe("broken", http.url("/broken")),
        probe("slow", http.url("/slow")),
        probe(
            "closed",
            format!("http://user:pa55word@127.0.0.1:{closed}/health"),
        ),
    ]))
    .await;
    // Two probes got no answer: partial, each gap named.
    assert_eq!(src.status, SourceStatus::Partial);
    let facts = src.facts.unwrap();
    let p = |name: &str| {
        facts
            .probes
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (p("ingest").status_code, p("ingest").error),
        (Some(200), None)
    );
    assert!(p("ingest").latency_ms.unwrap() < 500.0);
    assert_eq!(
        p("broken").status_code,
        Some(503),
        "a 503 is an answer, a fact"
    );
    assert_eq!(p("slow").status_code, None);
    assert!(p("slow").error.unwrap().starts_with("timed out"));
    let closed = p("closed");
    assert!(
        closed
            .error
            .as_deref()
            .unwrap()
            .starts_with("cannot connect"),
        "{closed:?}"
    );
    assert!(closed.url.contains("user:***@"), "{}", closed.url);
    assert!(!serde_json::to_string(&facts).unwrap().contains("pa55word"));
}

#[tokio::test]
async fn scrapes_keep_configured_families_with_labels() {
    let http = CannedHttp::start();
    http.route("/metrics", 200, METRICS, Duration::ZERO);
    http.route("/error", 500, "boom", Duration::ZERO);
    http.route("/gone", 404, "no such page", Duration::ZERO);
    http.route("/slow", 200, METRICS, Duration::from_secs(3));
    let scrape = |name: &str, path: &str, families: &[&str]| MetricsScrapeConfig {
        name: KebabId::parse(name).expect("a kebab-case name"),
        url: SecretUrl::new(http.url(path)),
        families: families.iter().map(|s| s.to_string()).collect(),
        timeout: ms(1000),
    };
    let src = run_collector(&MetricsCollector::new(vec![
        scrape(
            "normalize",
            "/metrics",
            &["normalize_hrv_messages_total", "normalize_not_exported_yet"],
        ),
        scrape("broken", "/error", &[]),
        scrape("gone", "/gone", &[]),
        scrape("slow", "/slow", &[]),
    ]))
    .await;
    assert_eq!(src.status, SourceStatus::Partial);
    let facts = src.facts.unwrap();
    let target = &facts.targets[0];
    assert_eq!(target.error, None);
    assert_eq!(target.status_code, Some(200));
    let names: Vec<&str> = target.families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["normalize_hrv_messages_total", "normalize_not_exported_yet"]
    );
    let counter = &target.families[0];
    assert_eq!(counter.kind, "counter");
    let dlq = counter
        .samples
        .iter()
        .find(|s| s.labels["result"] == "dlq")
        .unwrap();
    assert_eq!(dlq.value, Some(2.0));
    assert_eq!(dlq.labels["durable"], "normalize-hrv-durable");
    assert_eq!(target.families[1].kind, "absent");
    assert!(target.families[1].samples.is_empty());
    assert_eq!(facts.targets[1].error.as_deref(), Some("answered HTTP 500"));
    // A 404 and a scrape past its timeout: that target's error, no families
    // (nothing read is "not read", never an empty family).
    assert_eq!(facts.targets[2].error.as_deref(), Some("answered HTTP 404"));
    let slow = &facts.targets[3];
    assert!(
        slow.error
            .as_deref()
            .is_some_and(|e| e.contains("timed out") || e.contains("timeout")),
        "{:?}",
        slow.error
    );
    assert!(slow.families.is_empty() && facts.targets[2].families.is_empty());
}
