use super::*;
use gatekeeper_gate_sdk::testing::Testcase;
use gatekeeper_gate_sdk::{CriterionStatus, Decision, Snapshot};
use serde_json::{Value, json};

/// A snapshot at 10:MM on 2025-10-02 with these sources.
fn snap(minute: u32, sources: Value) -> Snapshot {
    let mut doc = json!({
        "schema_version": gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        "taken_at": format!("2025-10-02T10:{minute:02}:00Z"),
    });
    for (k, v) in sources.as_object().unwrap() {
        doc[k] = v.clone();
    }
    serde_json::from_value(doc).unwrap()
}

/// Snapshots at the given minutes; the last one is current.
fn case(points: Vec<(u32, Value)>, signals: Value) -> Testcase {
    let mut snaps: Vec<Snapshot> = points.into_iter().map(|(m, s)| snap(m, s)).collect();
    let current = snaps.pop().unwrap();
    Testcase::new(current, json!({ "signals": signals })).with_history(snaps)
}

fn nats_streams(streams: Value) -> Value {
    json!({"nats": {"status": "ok", "facts": {"streams": streams, "streams_complete": true}}})
}

fn dlq(last_seq: u64) -> Value {
    nats_streams(json!([{"name": "AA_DLQ", "state": {"messages": last_seq, "last_seq": last_seq}}]))
}

fn dlq_spike() -> Value {
    json!([{
        "id": "dlq-spike", "title": "DLQ > 10 msg/min sustained",
        "measure": {"kind": "stream-publish-rate", "streams": ["AA_DLQ"], "window": "1m"},
        "when": "> 10", "for": "5m", "trigger": "automatic"
    }])
}

#[test]
fn dlq_spike_fires_once_sustained_for_the_hold() {
    // 20 messages a minute from 10:00 to 10:07.
    let points = (0..=7).map(|m| (m, dlq(100 + 20 * m as u64))).collect();
    let e = case(points, dlq_spike()).run::<Signals>().unwrap();
    assert_eq!(e.decision, Decision::NoGo);
    let c = &e.criteria[0];
    assert_eq!(c.status, CriterionStatus::Fail);
    assert_eq!(c.observed.as_deref(), Some("20 msg/min"));
    assert_eq!(c.expected.as_deref(), Some("not > 10 msg/min for 5m"));
    assert_eq!(
        c.message,
        "fired: 20 msg/min (> 10 msg/min) since at least 2025-10-02T10:01:00Z (6m; the start of the history window)"
    );
    assert_eq!(e.triggers.len(), 1);
    let t = &e.triggers[0];
    assert_eq!(t.id, "dlq-spike");
    assert_eq!(t.severity, Severity::Automatic);
    assert_eq!(
        t.since.map(format_timestamp).as_deref(),
        Some("2025-10-02T10:01:00Z"),
        "since is when the spike began, not now - for"
    );
    assert_eq!(
        t.reason,
        "DLQ > 10 msg/min sustained: 20 msg/min (> 10 msg/min) since at least 2025-10-02T10:01:00Z (6m; the start of the history window)"
    );
}

#[test]
fn a_spike_that_stopped_or_is_too_young_does_not_fire() {
    // The spike ended at 10:06: 2 a minute since.
    let seqs = [0, 20, 40, 60, 80, 100, 102, 104];
    let points = seqs
        .iter()
        .enumerate()
        .map(|(m, s)| (m as u32, dlq(*s)))
        .collect();
    let e = case(points, dlq_spike()).run::<Signals>().unwrap();
    assert_eq!(e.criteria[0].status, CriterionStatus::Pass);
    assert_eq!(
        e.criteria[0].message,
        "2 msg/min (fires when > 10 msg/min for 5m)"
    );
    assert!(e.triggers.is_empty());
    assert_eq!(e.decision, Decision::Go);

    // Spiking for 3 minutes only: pending, so unknown, no trigger.
    let points = (0..=3).map(|m| (m, dlq(20 * m as u64))).collect();
    let e = case(points, dlq_spike()).run::<Signals>().unwrap();
    assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
    assert_eq!(
        e.criteria[0].message,
        "20 msg/min (> 10 msg/min) since 2025-10-02T10:01:00Z, 2m of 5m so far"
    );
    assert!(e.triggers.is_empty());
    assert_eq!(e.decision, Decision::Defer);
}

#[test]
fn a_source_down_inside_the_hold_never_fires() {
    let mut points: Vec<(u32, Value)> = (0..=7).map(|m| (m, dlq(20 * m as u64))).collect();
    points[4].1 = json!({"nats": {"status": "unavailable", "error": "connection refused"}});
    let e = case(points, dlq_spike()).run::<Signals>().unwrap();
    assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
    assert!(
        e.criteria[0]
            .message
            .contains("nats source unavailable: connection refused"),
        "{}",
        e.criteria[0].message
    );
    assert!(e.triggers.is_empty());
}

fn consumer(pending: Option<u64>) -> Value {
    let consumers = match pending {
        Some(n) => json!([{"name": "normalize-hrv-durable", "state": {"num_pending": n}}]),
        None => json!([]),
    };
    nats_streams(
        json!([{"name": "ATHLETE_ALLY_EVENTS", "consumers": consumers, "consumers_complete": true}]),
    )
}

fn drained() -> Value {
    json!([{
        "id": "legacy-consumer-drained", "title": "Old consumer drained",
        "measure": {"kind": "consumer-pending", "stream": "ATHLETE_ALLY_EVENTS", "consumer": "normalize-hrv-durable"},
        "when": "== 0"
    }])
}

#[test]
fn requirement_consumer_drained() {
    let run = |pending| {
        case(vec![(0, consumer(pending))], drained())
            .run::<Signals>()
            .unwrap()
    };
    let e = run(Some(37));
    assert_eq!(e.decision, Decision::NoGo);
    assert_eq!(e.criteria[0].message, "37 pending, required = 0 pending");
    assert_eq!(e.criteria[0].observed.as_deref(), Some("37 pending"));
    assert!(
        e.triggers.is_empty(),
        "a requirement never raises a trigger"
    );
    let e = run(Some(0));
    assert_eq!(e.decision, Decision::Go);
    assert_eq!(e.criteria[0].message, "0 pending (required = 0 pending)");
    let e = run(None);
    assert_eq!(e.decision, Decision::Defer);
    assert_eq!(
        e.criteria[0].message,
        "consumer normalize-hrv-durable does not exist on ATHLETE_ALLY_EVENTS"
    );
}

fn counters(success: f64, error: f64, dlq: f64) -> Value {
    let s = |result: &str, v: f64| json!({"name": "normalize_hrv_messages_total", "labels": {"result": result, "stream": "AA_CORE_HOT"}, "value": v});
    json!({"metrics": {"status": "ok", "facts": {"targets": [{
        "name": "normalize", "url": "http://normalize:4102/metrics", "status_code": 200,
        "families": [{"name": "normalize_hrv_messages_total", "kind": "counter",
            "samples": [s("success", success), s("error", error), s("dlq", dlq)]}]
    }]}}})
}

fn error_rate(when: &str, hold: &str, trigger: &str) -> Value {
    json!([{
        "id": "error-rate", "title": "Error rate",
        "measure": {"kind": "metric-ratio", "target": "normalize", "family": "normalize_hrv_messages_total",
            "numerator": {"result": "!success"}, "window": "5m"},
        "when": when, "for": hold, "trigger": trigger
    }])
}

#[test]
fn error_rate_ratio_automatic_and_manual_bands() {
    // Per minute: 40 successes, 45 errors, 15 dlq → 60% not success.
    let points: Vec<(u32, Value)> = (0..=10)
        .map(|m| {
            let m = m as f64;
            (m as u32, counters(40.0 * m, 45.0 * m, 15.0 * m))
        })
        .collect();
    let auto = case(points.clone(), error_rate("> 50", "5m", "automatic"))
        .run::<Signals>()
        .unwrap();
    assert_eq!(auto.criteria[0].observed.as_deref(), Some("60%"));
    assert_eq!(auto.triggers.len(), 1, "{:?}", auto.criteria[0]);
    assert_eq!(
        auto.triggers[0].since.map(format_timestamp).as_deref(),
        Some("2025-10-02T10:05:00Z")
    );
    let manual = case(points, error_rate("in 10..50", "10m", "manual"))
        .run::<Signals>()
        .unwrap();
    assert_eq!(manual.criteria[0].status, CriterionStatus::Pass);
    assert_eq!(
        manual.criteria[0].expected.as_deref(),
        Some("not in [10, 50%) for 10m")
    );

    // A counter reset (a restarted pod) counts from zero, as Prometheus does.
    let mut points: Vec<(u32, Value)> = (0..=5)
        .map(|m| (m, counters(90.0 * m as f64, 10.0 * m as f64, 0.0)))
        .collect();
    points[3].1 = counters(5.0, 1.0, 0.0);
    // success 90+90+5+355+90 = 630, errors 10+10+1+39+10 = 70: 10% of 700.
    let e = case(points.clone(), error_rate("in 10..50", "0s", "manual"))
        .run::<Signals>()
        .unwrap();
    assert_eq!(e.criteria[0].observed.as_deref(), Some("10%"));
    assert_eq!(e.triggers[0].severity, Severity::Manual);
    let e = case(points, error_rate("in 10..50", "", "manual")).run::<Signals>();
    assert!(matches!(e, Err(GateError::BadParams(m)) if m.contains("for:")));
}

#[test]
fn no_traffic_makes_a_ratio_unknown() {
    let points = (0..=5).map(|m| (m, counters(7.0, 1.0, 0.0))).collect();
    let e = case(points, error_rate("> 50", "0s", "automatic"))
        .run::<Signals>()
        .unwrap();
    assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
    assert_eq!(
        e.criteria[0].message,
        "no normalize_hrv_messages_total traffic in the last 5m"
    );
}

fn histogram(scale: f64) -> Value {
    let b = |le: &str, v: f64| json!({"name": "normalize_hrv_duration_seconds_bucket", "labels": {"le": le}, "value": v * scale});
    json!({"metrics": {"status": "ok", "facts": {"targets": [{
        "name": "normalize", "url": "http://n/metrics",
        "families": [{"name": "normalize_hrv_duration_seconds", "kind": "histogram",
            "samples": [b("0.5", 50.0), b("1", 80.0), b("2", 100.0), b("+Inf", 100.0),
                {"name": "normalize_hrv_duration_seconds_count", "value": 100.0 * scale}]}]
    }]}}})
}

#[test]
fn p95_latency_from_histogram_buckets() {
    let p95 = |window: Value| {
        json!([{"id": "p95-latency", "title": "p95 latency",
            "measure": {"kind": "metric-quantile", "target": "normalize",
                "family": "normalize_hrv_duration_seconds", "q": 0.95, "window": window},
            "when": "> 1", "trigger": "manual"}])
    };
    // Cumulative: rank 95 falls in (1, 2]: 1 + (95 - 80) / 20 = 1.75 s.
    let e = case(vec![(0, histogram(1.0))], p95(Value::Null))
        .run::<Signals>()
        .unwrap();
    assert_eq!(e.criteria[0].observed.as_deref(), Some("1.75"));
    assert_eq!(e.triggers[0].severity, Severity::Manual);
    // Over a window: the increase between 10:00 and 10:05 has the same shape.
    let e = case(
        vec![(0, histogram(1.0)), (5, histogram(3.0))],
        p95(json!("5m")),
    )
    .run::<Signals>()
    .unwrap();
    assert_eq!(e.criteria[0].observed.as_deref(), Some("1.75"));
    // No observations in the window: unknown.
    let e = case(
        vec![(0, histogram(1.0)), (5, histogram(1.0))],
        p95(json!("5m")),
    )
    .run::<Signals>()
    .unwrap();
    assert_eq!(
        e.criteria[0].message,
        "normalize_hrv_duration_seconds: no observations"
    );
}

fn probe(status: Option<u16>, error: Option<&str>) -> Value {
    json!({"http": {"status": "ok", "facts": {"probes": [
        {"name": "ingest-health", "url": "http://ingest/health", "status_code": status, "error": error}]}}})
}

#[test]
fn health_checks_failing_for_five_minutes() {
    let signal = json!([{"id": "health-failing", "title": "Health checks failing",
        "measure": {"kind": "probe-failing", "probe": "ingest-health"},
        "when": "== 1", "for": "5m", "trigger": "automatic"}]);
    // 500, then no answer at all: both are failing.
    let mut points: Vec<(u32, Value)> = (0..=3).map(|m| (m, probe(Some(500), None))).collect();
    points.extend((4..=6).map(|m| (m, probe(None, Some("cannot connect")))));
    let e = case(points, signal.clone()).run::<Signals>().unwrap();
    assert_eq!(e.triggers.len(), 1);
    assert_eq!(e.criteria[0].observed.as_deref(), Some("1 failing"));
    // The http collector itself down: unknown, never a rollback.
    let mut points: Vec<(u32, Value)> = (0..=5).map(|m| (m, probe(Some(500), None))).collect();
    points.push((
        6,
        json!({"http": {"status": "unavailable", "error": "no client"}}),
    ));
    let e = case(points, signal.clone()).run::<Signals>().unwrap();
    assert!(e.triggers.is_empty());
    assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
    // Healthy.
    let e = case(vec![(0, probe(Some(200), None))], signal)
        .run::<Signals>()
        .unwrap();
    assert_eq!(e.criteria[0].status, CriterionStatus::Pass);
}

#[test]
fn db_inserts_log_lines_crash_loops_and_nodes_down_fire() {
    let k8s = |errors: Value| {
        json!({"kubernetes": {"status": "ok", "facts": {
            "errors": errors,
            "pods": [
                {"namespace": "staging", "name": "normalize-1", "labels": {"app": "normalize-service"},
                 "waiting_reasons": ["CrashLoopBackOff"], "restart_count": 12},
                {"namespace": "staging", "name": "ingest-1", "labels": {"app": "ingest-service"}, "waiting_reasons": []}],
            "log_patterns": [{"name": "hrv-consumer-missing", "pattern": "Failed to find HRV consumer on any available stream",
                "selector": "app=normalize-service", "matches": 3, "pods_read": 2}]
        }}})
    };
    let mut sources = k8s(json!([]));
    sources["postgres"] =
        json!({"status": "ok", "facts": {"queries": [{"name": "hrv-inserts-10m", "value": 0.0}]}});
    sources["nats"] = json!({"status": "partial", "facts": {"cluster": {"healthy": true, "nodes": [
        {"name": "n1", "up": true}, {"name": "n2", "up": false}, {"name": "n3", "up": true}]}}});
    let signals = json!([
        {"id": "db-inserts-stopped", "title": "DB inserts = 0 for 10 min",
         "measure": {"kind": "query", "name": "hrv-inserts-10m"}, "when": "== 0", "trigger": "automatic"},
        {"id": "hrv-consumer-missing", "title": "Failed to find HRV consumer",
         "measure": {"kind": "log-matches", "pattern": "hrv-consumer-missing"}, "when": "> 0", "trigger": "automatic"},
        {"id": "crash-loop", "title": "CrashLoopBackOff",
         "measure": {"kind": "pods-waiting", "reason": "CrashLoopBackOff", "labels": {"app": "normalize-service"}},
         "when": "> 0", "trigger": "automatic"},
        {"id": "nats-node-down", "title": "Any NATS node down",
         "measure": {"kind": "nats-nodes-down", "expected": 3}, "when": "> 0", "trigger": "automatic"}
    ]);
    let e = case(vec![(0, sources.clone())], signals.clone())
        .run::<Signals>()
        .unwrap();
    let fired: Vec<&str> = e.triggers.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        fired,
        [
            "db-inserts-stopped",
            "hrv-consumer-missing",
            "crash-loop",
            "nats-node-down"
        ]
    );
    let observed: Vec<&str> = e
        .criteria
        .iter()
        .map(|c| c.observed.as_deref().unwrap())
        .collect();
    assert_eq!(
        observed,
        ["0", "3 matching lines", "1 pods", "1 nodes down"]
    );

    // A partial Kubernetes listing cannot prove no pod crash-loops — nor that
    // one does: unknown.
    let mut partial = sources;
    partial["kubernetes"]["facts"]["errors"] = json!(["pods in staging: HTTP 500"]);
    let e = case(vec![(0, partial)], signals).run::<Signals>().unwrap();
    let crash = e.criteria.iter().find(|c| c.id == "crash-loop").unwrap();
    assert_eq!(crash.status, CriterionStatus::Unknown);
    assert_eq!(
        crash.message,
        "kubernetes listing incomplete: pods in staging: HTTP 500"
    );
}

#[test]
fn reads_name_only_what_the_measures_need() {
    let params = json!({"signals": [
        {"id": "a", "title": "a", "measure": {"kind": "stream-publish-rate", "streams": ["AA_DLQ", "X"], "window": "1m"}, "when": "> 1"},
        {"id": "b", "title": "b", "measure": {"kind": "consumer-pending", "stream": "S", "consumer": "c"}, "when": "== 0"},
        {"id": "c", "title": "c", "measure": {"kind": "stream-messages", "stream": "AA_DLQ"}, "when": "> 50"},
        {"id": "d", "title": "d", "measure": {"kind": "query", "name": "q"}, "when": "> 50", "for": "10m", "trigger": "manual"}
    ]});
    let needs = Signals::needs(&params).unwrap();
    assert_eq!(
        needs.reads,
        [
            "nats.consumers.S.c",
            "nats.streams.AA_DLQ",
            "nats.streams.X",
            "postgres"
        ]
    );
    // The longest hold plus its window; the one trigger, as the gate proposes it.
    assert_eq!(needs.history_ms, 10 * 60_000);
    assert_eq!(needs.triggers.len(), 1);
    assert_eq!(needs.triggers[0].id, "d");
    assert_eq!(needs.triggers[0].severity, Severity::Manual);
}

#[test]
fn bad_params_name_the_signal_and_field() {
    let run = |signal: Value| {
        case(vec![(0, dlq(1))], json!([signal]))
            .run::<Signals>()
            .unwrap_err()
    };
    let base = || json!({"id": "x", "title": "x", "measure": {"kind": "stream-messages", "stream": "AA_DLQ"}, "when": "> 50"});
    let mut s = base();
    s["when"] = json!("over 50");
    assert_eq!(
        run(s),
        GateError::BadParams(
            "signals[0] (x): when = \"over 50\": want `> X`, `>= X`, `< X`, `<= X`, `== X`, `!= X` or `in A..B`".into()
        )
    );
    let mut s = base();
    s["when"] = json!("in 50..10");
    assert!(matches!(run(s), GateError::BadParams(m) if m.ends_with("want A < B")));
    let mut s = base();
    s["measure"] = json!({"kind": "stream-published", "stream": "AA_DLQ"});
    assert!(
        matches!(run(s), GateError::BadParams(m) if m.contains("unknown variant `stream-published`"))
    );
    let mut s = base();
    s["measure"] = json!({"kind": "stream-messages", "stream": "AA_DLQ", "sream": 1});
    assert!(matches!(run(s), GateError::BadParams(m) if m.contains("unknown field `sream`")));
    let mut s = base();
    s["measure"] = json!({"kind": "metric-quantile", "target": "t", "family": "f", "q": 95});
    assert!(matches!(run(s), GateError::BadParams(m) if m.contains("q = 95")));
    let mut s = base();
    s["trigger"] = json!("sometimes");
    assert!(matches!(run(s), GateError::BadParams(_)));
}

#[test]
fn conditions_and_numbers_render() {
    assert_eq!(Condition::parse(">= 0.5").unwrap(), Condition::Ge(0.5));
    assert_eq!(
        Condition::parse("in 10..50").unwrap(),
        Condition::In(10.0, 50.0)
    );
    assert!(Condition::parse("== NaN").is_err());
    assert!(Condition::In(10.0, 50.0).holds(10.0));
    assert!(!Condition::In(10.0, 50.0).holds(50.0));
    assert_eq!(show_value(1.23456, "s"), "1.235 s");
    assert_eq!(show_value(60.0, "%"), "60%");
}

/// A condition that began 9 minutes ago with a 3-minute hold: `since` is
/// 9 minutes ago (the run's first sample), not `now - for`.
#[test]
fn since_is_the_start_of_the_unbroken_run() {
    let volume = json!([{
        "id": "dlq-volume", "title": "DLQ volume",
        "measure": {"kind": "stream-messages", "stream": "AA_DLQ"},
        "when": "> 30", "for": "3m", "trigger": "manual"
    }]);
    // Quiet at 10:00, over 30 from 10:01 to 10:10.
    let points = (0..=10)
        .map(|m| (m, dlq(if m == 0 { 5 } else { 40 })))
        .collect();
    let e = case(points, volume).run::<Signals>().unwrap();
    let t = &e.triggers[0];
    assert_eq!(
        t.since.map(format_timestamp).as_deref(),
        Some("2025-10-02T10:01:00Z")
    );
    assert_eq!(
        t.reason,
        "DLQ volume: 40 messages (> 30 messages) since 2025-10-02T10:01:00Z (9m)"
    );
}

fn rows(v: f64) -> Value {
    json!({"postgres": {"status": "ok", "facts": {"queries": [{"name": "rows-10m", "value": v}]}}})
}

/// A gauge (rows in the last 10 minutes) as a counter misreads every drop as
/// a reset; `growth` and `change` read it as the gauge it is.
#[test]
fn gauges_are_read_as_gauges() {
    let series = [40.0, 42.0, 38.0, 40.0, 41.0, 43.0];
    let run = |over: &str| {
        let points = series
            .iter()
            .enumerate()
            .map(|(m, v)| (m as u32, rows(*v)))
            .collect();
        let signal = json!([{ "id": "rows", "title": "Rows",
            "measure": {"kind": "query", "name": "rows-10m", over: "5m"}, "when": "> 100" }]);
        case(points, signal).run::<Signals>().unwrap().criteria[0]
            .observed
            .clone()
            .unwrap()
    };
    assert_eq!(run("rate"), "9 /min");
    assert_eq!(run("growth"), "1.4 /min");
    assert_eq!(run("change"), "0.6 /min");
}

#[test]
fn a_counter_rate_of_a_gauge_family_is_unknown_and_one_way_only() {
    let gauge = |v: f64| {
        json!({"metrics": {"status": "ok", "facts": {"targets": [{
            "name": "normalize", "url": "http://n/metrics", "status_code": 200,
            "families": [{"name": "queue_depth", "kind": "gauge",
                "samples": [{"name": "queue_depth", "labels": {}, "value": v}]}]}]}}})
    };
    let points = (0..=5)
        .map(|m| (m, gauge(10.0 + m as f64)))
        .collect::<Vec<_>>();
    let signal = |over: Value| {
        let mut measure = json!({"kind": "metric", "target": "normalize", "family": "queue_depth"});
        for (k, v) in over.as_object().unwrap() {
            measure[k] = v.clone();
        }
        json!([{ "id": "depth", "title": "Queue depth", "measure": measure, "when": "> 100" }])
    };
    let e = case(points.clone(), signal(json!({"rate": "5m"})))
        .run::<Signals>()
        .unwrap();
    assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
    assert_eq!(
        e.criteria[0].message,
        "queue_depth is a gauge; `rate` is for counters: use `change` or `growth`"
    );
    let e = case(points.clone(), signal(json!({"change": "5m"})))
        .run::<Signals>()
        .unwrap();
    assert_eq!(e.criteria[0].observed.as_deref(), Some("1 /min"));
    let err = case(points, signal(json!({"rate": "5m", "growth": "5m"})))
        .run::<Signals>()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("set one of rate (a counter), change or growth (a gauge)"),
        "{err}"
    );
}

fn prometheus(series: Value) -> Value {
    json!({"prometheus": {"status": "partial", "facts": {"url": "http://p:9090", "queries": [
        {"name": "firing", "result_type": "vector", "series": series},
        {"name": "broken", "error": "the server refused the query (bad_data): parse error"}
    ]}}})
}

fn alert(name: &str) -> Value {
    json!({"labels": {"alertname": name, "alertstate": "firing"}, "points": [{"t_ms": 0, "value": 1.0}]})
}

fn promql_signal(measure: Value, when: &str) -> Value {
    json!([{"id": "s", "title": "t", "measure": measure, "when": when, "trigger": "automatic"}])
}

#[test]
fn promql_counts_picks_one_series_or_says_why_not() {
    let firing = || {
        prometheus(json!([
            alert("HRVDLQMessagesDetected"),
            alert("StreamFallbackDetected")
        ]))
    };
    let run = |measure: Value, when: &str, series: Value| {
        let e = case(vec![(0, series)], promql_signal(measure, when))
            .run::<Signals>()
            .unwrap();
        e.criteria[0].clone()
    };
    // One alert by name, counted: firing → the trigger fails its criterion.
    let dlq = json!({"kind": "promql", "query": "firing", "labels": {"alertname": "HRVDLQMessagesDetected"}, "aggregate": "count"});
    let c = run(dlq.clone(), "> 0", firing());
    assert_eq!(c.status, CriterionStatus::Fail, "{c:?}");
    assert_eq!(c.observed.as_deref(), Some("1 series"));
    // Nothing firing: count is 0, a pass (not "no data").
    let c = run(dlq, "> 0", prometheus(json!([])));
    assert_eq!(c.status, CriterionStatus::Pass, "{c:?}");
    // Two series without `aggregate`: unknown, and why.
    let c = run(
        json!({"kind": "promql", "query": "firing"}),
        "> 0",
        firing(),
    );
    assert_eq!(c.status, CriterionStatus::Unknown);
    assert!(
        c.message
            .contains("returned 2 series; narrow it with `labels` or set `aggregate`"),
        "{}",
        c.message
    );
    // No series, no aggregate: no data is unknown.
    let c = run(
        json!({"kind": "promql", "query": "firing"}),
        "> 0",
        prometheus(json!([])),
    );
    assert!(
        c.message.contains("returned no series (no data)"),
        "{}",
        c.message
    );
    // A refused query, a NaN, a source down: unknown with the reason.
    let c = run(
        json!({"kind": "promql", "query": "broken"}),
        "> 0",
        firing(),
    );
    assert!(c.message.contains("bad_data"), "{}", c.message);
    let nan =
        prometheus(json!([{"labels": {}, "points": [{"t_ms": 0, "value": null, "raw": "NaN"}]}]));
    let c = run(json!({"kind": "promql", "query": "firing"}), "> 0", nan);
    assert!(c.message.contains("non-finite value NaN"), "{}", c.message);
    let down = json!({"prometheus": {"status": "unavailable", "error": "cannot connect"}});
    let c = run(json!({"kind": "promql", "query": "firing"}), "> 0", down);
    assert_eq!(c.status, CriterionStatus::Unknown);
    assert!(
        c.message
            .contains("prometheus source unavailable: cannot connect"),
        "{}",
        c.message
    );
}

#[test]
fn route_rtt_is_the_slowest_route_and_unknown_without_routes() {
    let cluster = |routes: Value| {
        json!({"nats": {"status": "ok", "facts": {"streams": [], "streams_complete": true,
            "cluster": {"healthy": true, "routes": routes}}}})
    };
    let signal = json!([{"id": "rtt", "title": "latency between nodes < 10ms",
        "measure": {"kind": "nats-route-rtt"}, "when": "< 10"}]);
    let run = |routes: Value| {
        case(vec![(0, cluster(routes))], signal.clone())
            .run::<Signals>()
            .unwrap()
            .criteria[0]
            .clone()
    };
    let c = run(
        json!([{"from": "n1", "to": "n2", "rtt_ms": 0.4}, {"from": "n2", "to": "n3", "rtt_ms": 12.5}]),
    );
    assert_eq!(c.status, CriterionStatus::Fail, "{c:?}");
    assert_eq!(c.observed.as_deref(), Some("12.5 ms"));
    let c = run(json!([{"from": "n1", "to": "n2", "rtt_ms": 0.4}]));
    assert_eq!(c.status, CriterionStatus::Pass);
    let c = run(json!([]));
    assert_eq!(c.status, CriterionStatus::Unknown);
    let c = run(json!([{"from": "n1", "to": "n2"}]));
    assert_eq!(c.message, "route n1 → n2: round trip not reported");
}

#[test]
fn a_spike_built_as_a_series_fires_only_once_held_for_five_minutes() {
    use gatekeeper_gate_sdk::testing::Series;
    let base = r#"{"schema_version":1,"taken_at":"2025-10-02T10:10:00Z",
        "nats":{"status":"ok","collected_at":"2025-10-02T10:10:00Z","facts":{
            "streams_complete":true,"streams":[{"name":"AA_DLQ","state":{"messages":0,"last_seq":0}}]}}}"#;
    // A snapshot every 5 s from 10:00:00; from 10:03:00 one DLQ message per
    // snapshot (12 a minute, over the 10/min threshold).
    let t = Series::from_json(base, 5)
        .count(121)
        .stream("AA_DLQ", |i, s| {
            let seq = i.saturating_sub(36) as u64;
            let state = s.state.get_or_insert_default();
            state.messages = Some(seq);
            state.last_seq = Some(seq);
        })
        .testcase(json!({ "signals": dlq_spike() }));
    let at = |time: &str| t.clone().until(time).run::<Signals>().unwrap();
    let early = at("2025-10-02T10:07:30Z");
    assert!(early.triggers.is_empty(), "{:?}", early.criteria[0].message);
    assert_eq!(early.criteria[0].observed.as_deref(), Some("12 msg/min"));
    let late = at("2025-10-02T10:10:00Z");
    assert_eq!(late.triggers.len(), 1, "{}", late.criteria[0].message);
    let since = format_timestamp(late.triggers[0].since.unwrap());
    assert!(
        ("2025-10-02T10:03:00Z"..="2025-10-02T10:04:00Z").contains(&since.as_str()),
        "{since}"
    );
}
