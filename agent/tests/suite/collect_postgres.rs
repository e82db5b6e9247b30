//! The PostgreSQL collector against a real server made with initdb/pg_ctl.

use gatekeeper::collect::{PostgresCollector, run_collector};
use gatekeeper::config::{
    DurationValue, KebabId, NamedQueryConfig, PostgresSourceConfig, SecretUrl,
};
use gatekeeper_model::SourceStatus;
use gatekeeper_testsupport::Postgres;
use std::time::Duration;

fn query(name: &str, sql: &str, timeout_ms: Option<u64>) -> NamedQueryConfig {
    NamedQueryConfig {
        name: KebabId::parse(name).expect("a kebab-case name"),
        sql: sql.into(),
        timeout: timeout_ms.map(|ms| DurationValue(Duration::from_millis(ms))),
    }
}

#[tokio::test]
async fn ping_connections_named_queries_and_a_stopped_server() {
    let mut pg = Postgres::start();
    pg.psql(
        "CREATE TABLE hrv_data (id serial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO hrv_data (created_at) SELECT now() - (i || ' minutes')::interval FROM generate_series(1, 30) AS i;",
    );
    let config = PostgresSourceConfig {
        url: SecretUrl::new(pg.url()),
        timeout: Some(DurationValue(Duration::from_secs(10))),
        queries: vec![
            query(
                "hrv-rows-10m",
                "SELECT count(*) FROM hrv_data WHERE created_at > now() - interval '10 minutes 30 seconds';",
                None,
            ),
            query("avg-id", "SELECT avg(id) FROM hrv_data", None),
            query("flag", "SELECT true", None),
            query("slow", "SELECT pg_sleep(5)::text::int", Some(200)),
            query("no-table", "SELECT count(*) FROM nope", None),
            query("two-rows", "SELECT 1 UNION ALL SELECT 2", None),
            query("two-columns", "SELECT 1, 2", None),
            query(
                "writes",
                "INSERT INTO hrv_data DEFAULT VALUES RETURNING id",
                None,
            ),
            query("null", "SELECT NULL::int", None),
        ],
    };
    let src = run_collector(&PostgresCollector::new(config.clone())).await;
    // A failing named query is that query's error: the source is partial.
    assert_eq!(src.status, SourceStatus::Partial, "{:?}", src.error);
    let facts = src.facts.unwrap();
    assert!(
        facts.server_version.as_deref().unwrap().starts_with("15"),
        "{:?}",
        facts.server_version
    );
    assert!(facts.ping_ms.unwrap() >= 0.0);
    assert_eq!(facts.max_connections, Some(20));
    assert!(facts.connections_used.unwrap() >= 1);
    assert_eq!(facts.in_recovery, Some(false));
    assert_eq!(facts.replay_lag_ms, None, "a primary has no replay lag");

    let q = |name: &str| {
        facts
            .queries
            .iter()
            .find(|q| q.name == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (q("hrv-rows-10m").value, q("hrv-rows-10m").error),
        (Some(10.0), None)
    );
    assert_eq!(q("avg-id").value, Some(15.5));
    assert_eq!(q("flag").value, Some(1.0));
    let slow = q("slow");
    assert_eq!(slow.value, None);
    assert!(
        slow.error.as_deref().unwrap().contains("statement timeout"),
        "{slow:?}"
    );
    assert!(
        q("no-table")
            .error
            .unwrap()
            .contains("relation \"nope\" does not exist")
    );
    assert_eq!(
        q("two-rows").error.as_deref(),
        Some("returned 2 rows; a named query returns exactly one")
    );
    assert_eq!(
        q("two-columns").error.as_deref(),
        Some("returns 2 columns; a named query returns exactly one")
    );
    let writes = q("writes").error.unwrap();
    assert!(
        writes.contains("read-only transaction") || writes.contains("syntax error"),
        "{writes}"
    );
    assert_eq!(q("null").error.as_deref(), Some("returned NULL"));
    // The write did not happen.
    assert_eq!(pg.psql("SELECT count(*) FROM hrv_data"), "30");

    // Wrong password: unavailable, and the password is not in the error.
    let mut wrong = config.clone();
    wrong.url = SecretUrl::new(pg.url().replace(&pg.password, "not-the-password"));
    let src = run_collector(&PostgresCollector::new(wrong)).await;
    assert_eq!(src.status, SourceStatus::Unavailable);
    let error = src.error.unwrap();
    assert!(error.contains("password authentication failed"), "{error}");
    assert!(error.contains("gatekeeper:***@127.0.0.1"), "{error}");
    assert!(!error.contains("not-the-password") && !error.contains(&pg.password));

    pg.stop();
    let src = run_collector(&PostgresCollector::new(config)).await;
    assert_eq!(src.status, SourceStatus::Unavailable);
    let error = src.error.unwrap();
    assert!(
        error.starts_with("cannot connect to postgresql://gatekeeper:***@127.0.0.1:"),
        "{error}"
    );
    assert!(!error.contains(&pg.password));
    assert!(src.duration_ms.is_some() && src.collected_at.is_some());
}
