use super::*;
use gatekeeper_gate_sdk::model::{
    PromPoint, PromQuery, PromSeries, PrometheusFacts, Source, Timestamp,
};
use gatekeeper_gate_sdk::testing::Testcase;
use gatekeeper_gate_sdk::{CriterionStatus, Decision};
use serde_json::json;

fn series(labels: &[(&str, &str)], values: &[f64]) -> PromSeries {
    PromSeries {
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        points: values
            .iter()
            .enumerate()
            .map(|(i, v)| PromPoint {
                t_ms: 15_000 * i as i64,
                value: Some(*v),
                raw: None,
            })
            .collect(),
    }
}

fn query(name: &str, series: Vec<PromSeries>) -> PromQuery {
    PromQuery {
        name: name.into(),
        series,
        ..PromQuery::default()
    }
}

fn snapshot(queries: Vec<PromQuery>) -> Snapshot {
    let mut s = Snapshot::empty(Timestamp::default());
    s.prometheus = Source::ok(PrometheusFacts {
        url: "http://prometheus:9090".into(),
        queries,
    });
    s
}

/// A deterministic sample around `center` with a spread of `spread`.
fn sample(n: usize, center: f64, spread: f64, seed: u64) -> Vec<f64> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            center + spread * (u - 0.5)
        })
        .collect()
}

fn latency_params() -> serde_json::Value {
    json!({"metrics": [{
        "id": "latency", "title": "p95 latency", "kind": "continuous",
        "canary": "canary", "baseline": "baseline", "trigger": "automatic"
    }]})
}

fn judge_latency(canary: Vec<f64>, baseline: Vec<f64>) -> Evaluation {
    let s = snapshot(vec![
        query("canary", vec![series(&[("pod", "c")], &canary)]),
        query("baseline", vec![series(&[("pod", "b")], &baseline)]),
    ]);
    Testcase::new(s, latency_params())
        .run::<CanaryJudge>()
        .unwrap()
}

#[test]
fn a_canary_like_its_baseline_is_go() {
    let e = judge_latency(sample(120, 0.2, 0.04, 1), sample(240, 0.2, 0.04, 2));
    let c = &e.criteria[0];
    assert_eq!(e.decision, Decision::Go, "{c:?}");
    assert!(
        c.message.starts_with("no worse than the baseline: shift "),
        "{}",
        c.message
    );
    assert!(
        c.observed
            .as_deref()
            .unwrap()
            .ends_with("120 canary vs 240 baseline observations"),
        "{c:?}"
    );
    assert!(e.triggers.is_empty());
}

#[test]
fn a_slower_canary_is_no_go_and_triggers() {
    let e = judge_latency(sample(120, 0.26, 0.04, 1), sample(240, 0.2, 0.04, 2));
    let c = &e.criteria[0];
    assert_eq!(c.status, CriterionStatus::Fail, "{c:?}");
    assert!(
        c.message
            .starts_with("the canary is worse: shifted +29.9 % (tolerated 10.0 %)"),
        "{}",
        c.message
    );
    assert_eq!(e.triggers.len(), 1);
    assert_eq!(e.triggers[0].id, "latency");
    assert_eq!(e.triggers[0].reason, c.message);
}

#[test]
fn a_faster_canary_passes_when_higher_is_worse() {
    let e = judge_latency(sample(120, 0.15, 0.04, 1), sample(240, 0.2, 0.04, 2));
    assert_eq!(e.decision, Decision::Go, "{:?}", e.criteria[0]);
}

#[test]
fn a_shift_within_tolerance_passes_even_when_significant() {
    // 5 % slower, tolerance 10 %: significant with this many points, but tolerated.
    let e = judge_latency(sample(400, 0.21, 0.02, 1), sample(400, 0.2, 0.02, 2));
    assert_eq!(e.decision, Decision::Go, "{:?}", e.criteria[0]);
}

#[test]
fn a_canary_whose_spread_grew_is_no_go_though_its_median_did_not_move() {
    let e = judge_latency(sample(200, 0.2, 0.2, 1), sample(200, 0.2, 0.04, 2));
    let c = &e.criteria[0];
    assert_eq!(c.status, CriterionStatus::Fail, "{c:?}");
    assert!(
        c.message.starts_with("the canary varies more: spread ×"),
        "{}",
        c.message
    );
}

#[test]
fn too_few_points_or_all_identical_points_are_unknown() {
    let e = judge_latency(sample(10, 0.2, 0.04, 1), sample(240, 0.2, 0.04, 2));
    assert_eq!(e.decision, Decision::Defer);
    assert_eq!(
        e.criteria[0].message,
        "too few observations to judge: 10 canary vs 240 baseline observations (need 20 each)"
    );
    let e = judge_latency(vec![0.0; 50], vec![0.0; 50]);
    assert_eq!(e.decision, Decision::Defer);
    assert_eq!(
        e.criteria[0].message,
        "every observation is 0 in both groups: nothing to compare (no traffic?)"
    );
}

#[test]
fn non_finite_points_carry_no_observation() {
    let mut canary = series(&[("pod", "c")], &sample(30, 0.2, 0.04, 1));
    for p in canary.points.iter_mut().take(15) {
        p.value = None;
        p.raw = Some("NaN".into());
    }
    let s = snapshot(vec![
        query("canary", vec![canary]),
        query("baseline", vec![series(&[], &sample(240, 0.2, 0.04, 2))]),
    ]);
    let e = Testcase::new(s, latency_params())
        .run::<CanaryJudge>()
        .unwrap();
    assert_eq!(
        e.criteria[0].message,
        "too few observations to judge: 15 canary vs 240 baseline observations (need 20 each)"
    );
}

#[test]
fn a_failed_query_or_an_unreachable_prometheus_is_unknown() {
    let mut broken = query("canary", vec![]);
    broken.error = Some("the server refused the query (bad_data): parse error".into());
    let s = snapshot(vec![broken, query("baseline", vec![])]);
    let e = Testcase::new(s, latency_params())
        .run::<CanaryJudge>()
        .unwrap();
    assert_eq!(e.decision, Decision::Defer);
    assert_eq!(
        e.criteria[0].message,
        "prometheus query `canary`: the server refused the query (bad_data): parse error"
    );
    let mut s = Snapshot::empty(Timestamp::default());
    s.prometheus = Source::unavailable("cannot connect: connection refused");
    let e = Testcase::new(s, latency_params())
        .run::<CanaryJudge>()
        .unwrap();
    assert_eq!(
        e.criteria[0].message,
        "prometheus source unavailable: cannot connect: connection refused"
    );
    assert!(e.triggers.is_empty());
}

/// One query by `result`, one by group: events and totals split by labels.
fn errors(canary: (f64, f64), baseline: (f64, f64), tolerance: f64) -> Criterion {
    let counts = |group: &str, (errors, total): (f64, f64)| {
        vec![
            series(&[("group", group), ("result", "error")], &[errors]),
            series(&[("group", group), ("result", "ok")], &[total - errors]),
        ]
    };
    let mut all = counts("canary", canary);
    all.extend(counts("baseline", baseline));
    let s = snapshot(vec![query("requests", all)]);
    let group = |g: &str, error: bool| {
        let mut labels = json!({"group": g});
        if error {
            labels["result"] = json!("error");
        }
        json!({"query": "requests", "labels": labels})
    };
    let params = json!({"metrics": [{
        "id": "errors", "title": "error proportion", "kind": "proportion",
        "canary_events": group("canary", true), "canary_total": group("canary", false),
        "baseline_events": group("baseline", true), "baseline_total": group("baseline", false),
        "tolerance": tolerance
    }]});
    let e = Testcase::new(s, params).run::<CanaryJudge>().unwrap();
    e.criteria[0].clone()
}

#[test]
fn error_proportions_fail_pass_or_wait_for_traffic() {
    // 5 % vs 0.1 %: worse beyond 0.5 points, significant.
    let c = errors((500.0, 10_000.0), (100.0, 100_000.0), 0.005);
    assert_eq!(c.status, CriterionStatus::Fail, "{c:?}");
    assert_eq!(
        c.observed.as_deref(),
        Some("canary 500 of 10000 (5 %) vs baseline 100 of 100000 (0.1 %)")
    );
    assert!(
        c.message
            .starts_with("the canary is worse: +4.9 percentage points"),
        "{}",
        c.message
    );
    // The same rate on both sides, enough traffic: the bound is within tolerance.
    let c = errors((10.0, 10_000.0), (100.0, 100_000.0), 0.005);
    assert_eq!(c.status, CriterionStatus::Pass, "{c:?}");
    // Zero errors in 40 requests: below min_total, never a pass.
    let c = errors((0.0, 40.0), (100.0, 100_000.0), 0.005);
    assert_eq!(c.status, CriterionStatus::Unknown, "{c:?}");
    assert!(
        c.message.starts_with("too little traffic to judge: 40 and"),
        "{}",
        c.message
    );
    // Zero errors in 150 requests: enough traffic counted, but 0 of 150
    // cannot show the rate is within 0.5 points.
    let c = errors((0.0, 150.0), (0.0, 100_000.0), 0.005);
    assert_eq!(c.status, CriterionStatus::Unknown, "{c:?}");
    assert!(
        c.message
            .starts_with("cannot tell yet: the difference is between"),
        "{}",
        c.message
    );
    // Zero errors in 10,000 on both sides: enough to show it.
    let c = errors((0.0, 10_000.0), (0.0, 100_000.0), 0.005);
    assert_eq!(c.status, CriterionStatus::Pass, "{c:?}");
}

#[test]
fn the_score_summarises_and_never_outvotes_a_failing_metric() {
    let s = snapshot(vec![
        query("canary", vec![series(&[], &sample(120, 0.26, 0.04, 1))]),
        query("baseline", vec![series(&[], &sample(240, 0.2, 0.04, 2))]),
    ]);
    let mut params = latency_params();
    params["score"] = json!({"pass": 95, "marginal": 0});
    let e = Testcase::new(s, params).run::<CanaryJudge>().unwrap();
    assert_eq!(e.decision, Decision::NoGo);
    let score = e.criteria.iter().find(|c| c.id == "canary-score").unwrap();
    assert_eq!(score.status, CriterionStatus::Unknown);
    assert_eq!(score.observed.as_deref(), Some("0 (0 of 1 metrics passed)"));
}

#[test]
fn bad_params_name_the_field() {
    let bad = |params: serde_json::Value| match CanaryJudge::needs(&params) {
        Err(GateError::BadParams(m)) => m,
        other => panic!("expected BadParams, got {other:?}"),
    };
    assert_eq!(bad(json!({"metrics": []})), "`metrics` is empty");
    assert_eq!(
        bad(
            json!({"metrics": [{"id": "e", "title": "t", "kind": "proportion",
            "canary": "x", "baseline": "y"}]})
        ),
        "field `metrics[0].canary`: not used by a `proportion` metric"
    );
    assert_eq!(
        bad(json!({"metrics": [{"id": "e", "title": "t", "kind": "continuous", "canary": "x"}]})),
        "field `metrics[0].baseline`: a `continuous` metric needs it"
    );
    assert_eq!(
        bad(
            json!({"metrics": [{"id": "e", "title": "t", "kind": "proportion",
            "canary_events": "a", "canary_total": "b", "baseline_events": "c",
            "baseline_total": "d", "tolerance": 5}]})
        ),
        "field `metrics[0].tolerance`: a proportion's tolerance is a fraction below 1"
    );
    assert!(
        bad(json!({"metrics": [{"id": "e", "title": "t", "kind": "median"}]}))
            .starts_with("field `metrics[0].kind`")
    );
    assert_eq!(
        bad(
            json!({"confidence": 1.5, "metrics": [{"id": "e", "title": "t", "kind": "continuous", "canary": "x", "baseline": "y"}]})
        ),
        "confidence = 1.5: want 0.5 < confidence < 1"
    );
    let needs = CanaryJudge::needs(&latency_params()).unwrap();
    assert_eq!(needs.reads, ["prometheus"]);
    assert_eq!(needs.triggers[0].id, "latency");
}
