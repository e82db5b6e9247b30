//! Gate `database-responsive`: PostgreSQL answers a ping within `max_ping_ms`
//! and uses less than `max_connections_percent` of `max_connections`
//! (seed 003: "ping < 50 ms, connections < 80 % of max").

use gatekeeper_gate_sdk::check::{Part, all_of, id};
use gatekeeper_gate_sdk::{Evaluation, Gate, GateError, Input, Metadata, ParamSpec};
use serde::Deserialize;

pub struct DatabaseResponsive;

gatekeeper_gate_sdk::export_gate!(DatabaseResponsive);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    pub id: String,
    pub title: String,
    pub max_ping_ms: f64,
    pub max_connections_percent: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            id: "database-responsive".into(),
            title: "Database responsive".into(),
            max_ping_ms: 50.0,
            max_connections_percent: 80.0,
        }
    }
}

impl Gate for DatabaseResponsive {
    fn metadata() -> Metadata {
        Metadata {
            name: "database-responsive".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "PostgreSQL answers a ping fast enough and has connections to spare."
                .into(),
            sources: vec!["postgres".into()],
            params: vec![
                ParamSpec::with_default(
                    "id",
                    "criterion id",
                    serde_json::json!("database-responsive"),
                ),
                ParamSpec::with_default(
                    "title",
                    "criterion title",
                    serde_json::json!("Database responsive"),
                ),
                ParamSpec::with_default(
                    "max_ping_ms",
                    "ping must be below this (ms)",
                    serde_json::json!(50),
                ),
                ParamSpec::with_default(
                    "max_connections_percent",
                    "connections in use must be below this share of max_connections",
                    serde_json::json!(80),
                ),
            ],
            snapshot_schema: gatekeeper_gate_sdk::model::SNAPSHOT_SCHEMA_VERSION,
        }
    }

    fn evaluate(input: &Input) -> Result<Evaluation, GateError> {
        let p: Params = input.params()?;
        if !(p.max_ping_ms > 0.0 && p.max_connections_percent > 0.0) {
            return Err(GateError::BadParams(
                "max_ping_ms and max_connections_percent must be greater than 0".into(),
            ));
        }
        let parts = match input.snapshot.postgres.usable("postgres") {
            Err(why) => vec![Part::Unknown(why)],
            Ok(pg) => {
                let ping = match pg.ping_ms {
                    None => Part::Unknown("ping not reported".into()),
                    Some(ms) if ms < p.max_ping_ms => Part::Pass(format!("ping {ms:.1} ms")),
                    Some(ms) => {
                        Part::Fail(format!("ping {ms:.1} ms, required < {} ms", p.max_ping_ms))
                    }
                };
                let connections = match (pg.connections_used, pg.max_connections) {
                    (Some(used), Some(max)) if max > 0 => {
                        let percent = used as f64 * 100.0 / max as f64;
                        let shown = format!("connections {used}/{max} ({percent:.0}%)");
                        if percent < p.max_connections_percent {
                            Part::Pass(shown)
                        } else {
                            Part::Fail(format!(
                                "{shown}, required < {}%",
                                p.max_connections_percent
                            ))
                        }
                    }
                    _ => Part::Unknown("connections or max_connections not reported".into()),
                };
                vec![ping, connections]
            }
        };
        Ok(Evaluation::from_criteria(vec![all_of(
            id(&p.id, &p.title),
            parts,
        )]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekeeper_gate_sdk::model::{PostgresFacts, Snapshot, Source, Timestamp};
    use gatekeeper_gate_sdk::testing::Testcase;
    use gatekeeper_gate_sdk::{CriterionStatus, Decision};
    use serde_json::json;

    fn with(pg: Source<PostgresFacts>) -> Testcase {
        let mut s = Snapshot::empty(Timestamp::default());
        s.postgres = pg;
        Testcase::new(s, json!({}))
    }

    fn facts(ping: Option<f64>, used: Option<u64>, max: Option<u64>) -> Source<PostgresFacts> {
        Source::ok(PostgresFacts {
            ping_ms: ping,
            connections_used: used,
            max_connections: max,
            ..PostgresFacts::default()
        })
    }

    #[test]
    fn fast_and_roomy_is_go() {
        let e = with(facts(Some(3.24), Some(12), Some(100)))
            .run::<DatabaseResponsive>()
            .unwrap();
        assert_eq!(e.decision, Decision::Go);
        let c = &e.criteria[0];
        assert_eq!(c.id, "database-responsive");
        assert_eq!(c.message, "ping 3.2 ms, connections 12/100 (12%)");
    }

    #[test]
    fn slow_ping_or_crowded_connections_fail_with_both_named() {
        let e = with(facts(Some(75.0), Some(85), Some(100)))
            .run::<DatabaseResponsive>()
            .unwrap();
        assert_eq!(e.decision, Decision::NoGo);
        assert_eq!(
            e.criteria[0].message,
            "ping 75.0 ms, required < 50 ms; connections 85/100 (85%), required < 80%"
        );
    }

    #[test]
    fn unknown_facts_defer() {
        let e = with(facts(Some(3.0), None, Some(100)))
            .run::<DatabaseResponsive>()
            .unwrap();
        assert_eq!(e.decision, Decision::Defer);
        assert_eq!(e.criteria[0].status, CriterionStatus::Unknown);
        let e = with(Source::unavailable("cannot connect"))
            .run::<DatabaseResponsive>()
            .unwrap();
        assert_eq!(
            e.criteria[0].message,
            "postgres source unavailable: cannot connect"
        );
    }

    #[test]
    fn thresholds_and_ids_are_params() {
        let mut t = with(facts(Some(75.0), Some(10), Some(100)));
        t.params = json!({"id": "db-ok", "max_ping_ms": 100});
        let e = t.run::<DatabaseResponsive>().unwrap();
        assert_eq!(
            (e.criteria[0].id.as_str(), e.decision),
            ("db-ok", Decision::Go)
        );
        t.params = json!({"max_ping": 1});
        assert!(matches!(
            t.run::<DatabaseResponsive>(),
            Err(GateError::BadParams(_))
        ));
    }
}
