//! PostgreSQL: the server and the named queries.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PostgresFacts {
    pub server_version: Option<String>,
    pub ping_ms: Option<f64>,
    pub connections_used: Option<u64>,
    pub max_connections: Option<u64>,
    pub in_recovery: Option<bool>,
    pub replay_lag_ms: Option<u64>,
    /// Named queries from config; each carries its own result or error.
    pub queries: Vec<NamedQuery>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NamedQuery {
    pub name: String,
    pub value: Option<f64>,
    pub error: Option<String>,
}
