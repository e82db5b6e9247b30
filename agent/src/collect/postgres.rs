//! PostgreSQL: ping latency, connections vs `max_connections`, version,
//! recovery state and replay lag, and named scalar queries.
//!
//! Named queries run in a READ ONLY transaction with a statement timeout,
//! through the extended protocol (one statement, no `; DROP …` piggyback).
//! A failing query is that query's error, not the source's.

use super::{Collector, timeout_or_default};
use crate::clients::{SourceError, remaining};
use crate::config::PostgresSourceConfig;
use gatekeeper_model::{NamedQuery, PostgresFacts};
use std::future::Future;
use std::str::FromStr as _;
use std::time::Duration;
use tokio::time::Instant;

/// Statement timeout of a named query that sets none.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

pub struct PostgresCollector {
    config: PostgresSourceConfig,
}

impl PostgresCollector {
    pub fn new(config: PostgresSourceConfig) -> Self {
        PostgresCollector { config }
    }

    async fn named_query(
        client: &mut tokio_postgres::Client,
        sql: &str,
        timeout: Duration,
        deadline: Instant,
    ) -> Result<Option<f64>, SourceError> {
        let sql = sql.trim().trim_end_matches(';');
        let left = remaining(deadline, "query")?;
        let tx = bounded(left, client.build_transaction().read_only(true).start()).await?;
        // Server-side limit; the client-side bound below covers a dead link.
        let ms = timeout.as_millis().max(1);
        bounded(
            left,
            tx.batch_execute(&format!("SET LOCAL statement_timeout = {ms}")),
        )
        .await?;
        let statement = bounded(left, tx.prepare(sql)).await?;
        if statement.columns().len() != 1 {
            return Err(SourceError::Refused(format!(
                "returns {} columns; a named query returns exactly one",
                statement.columns().len()
            )));
        }
        let wrapped = format!("SELECT (q.v)::text FROM ({sql}) AS q(v)");
        let client_bound = left.min(timeout + Duration::from_secs(1));
        let rows = bounded(client_bound, tx.query(&wrapped, &[])).await?;
        let _ = tx.rollback().await;
        match rows.as_slice() {
            [row] => {
                let text: Option<String> = row
                    .try_get(0)
                    .map_err(|e| SourceError::Unreadable(pg_error(&e)))?;
                let Some(text) = text else {
                    return Err(SourceError::Unreadable("returned NULL".into()));
                };
                parse_scalar(&text).map(Some)
            }
            rows => Err(SourceError::Unreadable(format!(
                "returned {} rows; a named query returns exactly one",
                rows.len()
            ))),
        }
    }
}

/// Runs `fut` within `limit`: the server's error, or no answer.
async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.as_db_error().is_some() => Err(SourceError::Refused(pg_error(&e))),
        Ok(Err(e)) => Err(SourceError::Unreachable(pg_error(&e))),
        Err(_) => Err(SourceError::Unreachable(format!(
            "no answer within {}ms",
            limit.as_millis()
        ))),
    }
}

/// The server's message when there is one (tokio-postgres' Display says only "db error").
fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

/// A scalar as text → number: integers, decimals, booleans (1/0).
fn parse_scalar(text: &str) -> Result<f64, SourceError> {
    match text {
        "t" | "true" => Ok(1.0),
        "f" | "false" => Ok(0.0),
        _ => text.trim().parse::<f64>().map_err(|_| {
            SourceError::Unreadable(format!(
                "returned `{text}`, which is not a number or boolean"
            ))
        }),
    }
}

impl Collector for PostgresCollector {
    type Facts = PostgresFacts;
    const NAME: &'static str = "postgres";

    fn timeout(&self) -> Duration {
        timeout_or_default(self.config.timeout)
    }

    async fn collect(&self, deadline: Instant) -> Result<PostgresFacts, SourceError> {
        let shown = self.config.url.redacted();
        let mut pg = tokio_postgres::Config::from_str(self.config.url.expose())
            .map_err(|e| SourceError::Setup(format!("{shown}: invalid URL: {}", pg_error(&e))))?;
        let left = remaining(deadline, "connect")?;
        pg.connect_timeout(left);
        pg.application_name("gatekeeper");
        let (mut client, connection) = bounded(left, pg.connect(tokio_postgres::NoTls))
            .await
            .map_err(|e| e.context(format_args!("cannot connect to {shown}")))?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %pg_error(&e), "postgres connection closed");
            }
        });

        let mut facts = PostgresFacts::default();
        let start = Instant::now();
        bounded(
            remaining(deadline, "ping")?,
            client.simple_query("SELECT 1"),
        )
        .await
        .map_err(|e| e.context(format_args!("{shown}: ping failed")))?;
        facts.ping_ms = Some(start.elapsed().as_secs_f64() * 1000.0);

        let status = bounded(
            remaining(deadline, "server status")?,
            client.query_one(
                "SELECT current_setting('server_version'),
                        current_setting('max_connections')::bigint,
                        (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
                        pg_is_in_recovery(),
                        CASE WHEN pg_is_in_recovery() THEN
                          (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint
                        END",
                &[],
            ),
        )
        .await
        .map_err(|e| e.context(format_args!("{shown}: server status")))?;
        facts.server_version = status.try_get::<_, String>(0).ok();
        facts.max_connections = status
            .try_get::<_, i64>(1)
            .ok()
            .and_then(|v| u64::try_from(v).ok());
        facts.connections_used = status
            .try_get::<_, i64>(2)
            .ok()
            .and_then(|v| u64::try_from(v).ok());
        facts.in_recovery = status.try_get::<_, bool>(3).ok();
        facts.replay_lag_ms = status
            .try_get::<_, Option<i64>>(4)
            .ok()
            .flatten()
            .map(|v| u64::try_from(v).unwrap_or(0));

        for q in &self.config.queries {
            let timeout = q.timeout.map_or(DEFAULT_QUERY_TIMEOUT, |d| d.0);
            let result = Self::named_query(&mut client, &q.sql, timeout, deadline).await;
            let (value, error) = match result {
                Ok(v) => (v, None),
                Err(e) => (None, Some(e.to_string())),
            };
            if let Some(e) = &error {
                tracing::warn!(query = %q.name, error = %e, "named query failed");
            }
            facts.queries.push(NamedQuery {
                name: q.name.to_string(),
                value,
                error,
            });
        }
        drop(client);
        connection.abort();
        Ok(facts)
    }

    fn complete(facts: &PostgresFacts) -> bool {
        facts.queries.iter().all(|q| q.error.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        assert_eq!(parse_scalar("42"), Ok(42.0));
        assert_eq!(parse_scalar("3.50"), Ok(3.5));
        assert_eq!(parse_scalar("t"), Ok(1.0));
        assert_eq!(parse_scalar("f"), Ok(0.0));
        assert_eq!(
            parse_scalar("abc"),
            Err(SourceError::Unreadable(
                "returned `abc`, which is not a number or boolean".into()
            ))
        );
    }
}
