//! The config's sections and fields, as serde reads them. Values that need
//! checking are typed ([`super::values`]); what types cannot say is checked
//! in `validate`.

use super::values::{ByteSize, DurationValue, KebabId, Secret, SecretUrl};
use crate::runtime::LimitOverrides;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    pub nats: Option<NatsSourceConfig>,
    pub postgres: Option<PostgresSourceConfig>,
    pub kubernetes: Option<KubernetesSourceConfig>,
    /// Health probes: GET → status code and latency.
    #[serde(default)]
    pub http: Vec<HttpProbeConfig>,
    /// Prometheus text-format scrapes.
    #[serde(default)]
    pub metrics: Vec<MetricsScrapeConfig>,
    /// A Prometheus server asked named PromQL queries.
    pub prometheus: Option<PrometheusSourceConfig>,
}

/// Default per-source timeout when the config sets none.
pub const DEFAULT_SOURCE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSourceConfig {
    /// `nats://[user:password@]host:port`, or `nats://token@host:port`.
    pub url: SecretUrl,
    /// Monitoring endpoint(s) (`http://host:8222`) for `/healthz`, `/jsz`,
    /// `/varz`: one URL or a list, best one per cluster node.
    pub monitor_url: Option<OneOrMany>,
    pub timeout: Option<DurationValue>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub token: Option<Secret>,
    /// An nkey seed (`SU…`); prefer `nkey_file` so the seed stays out of the config.
    pub nkey: Option<Secret>,
    /// A file holding an nkey seed.
    pub nkey_file: Option<PathBuf>,
    /// A `.creds` file (JWT + nkey seed).
    pub creds_file: Option<PathBuf>,
    #[serde(default)]
    pub tls: TlsConfig,
    /// JetStream domain; the API prefix becomes `$JS.<domain>.API`.
    pub domain: Option<String>,
    /// Stream names to read (`*` matches any run of characters). Empty: all.
    #[serde(default)]
    pub streams: Vec<String>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

impl NatsSourceConfig {
    /// The monitoring endpoints, if any.
    pub fn monitor_urls(&self) -> Vec<String> {
        self.monitor_url
            .as_ref()
            .map(OneOrMany::to_vec)
            .unwrap_or_default()
    }

    /// A source with only a URL (what `NATS_URL` alone gives).
    pub fn new(url: SecretUrl) -> Self {
        NatsSourceConfig {
            url,
            monitor_url: None,
            timeout: None,
            user: None,
            password: None,
            token: None,
            nkey: None,
            nkey_file: None,
            creds_file: None,
            tls: TlsConfig::default(),
            domain: None,
            streams: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Refuse a plain-text connection.
    #[serde(default)]
    pub required: bool,
    /// PEM CA bundle to trust (beyond the system roots).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSourceConfig {
    /// `postgresql://user:password@host:port/db`; the password is never shown.
    pub url: SecretUrl,
    /// The whole source's budget (connect included).
    pub timeout: Option<DurationValue>,
    /// Named queries; each returns one scalar and runs READ ONLY.
    #[serde(default)]
    pub queries: Vec<NamedQueryConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedQueryConfig {
    pub name: KebabId,
    /// One row, one column; numbers, booleans (1/0) and numeric text are read.
    pub sql: String,
    /// The statement timeout (default 2s).
    pub timeout: Option<DurationValue>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSourceConfig {
    /// A kubeconfig file; default: `KUBECONFIG`, `~/.kube/config`, or in-cluster.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Namespaces to read; default: the context's namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Label selector for Deployments (`app=normalize`); unset: none read.
    pub deployments: Option<String>,
    /// Label selector for Pods; unset: none read.
    pub pods: Option<String>,
    /// ConfigMaps to read by name, in every namespace read.
    #[serde(default)]
    pub config_maps: Vec<String>,
    #[serde(default)]
    pub log_patterns: Vec<LogPatternConfig>,
    pub timeout: Option<DurationValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogPatternConfig {
    pub name: KebabId,
    /// Pods whose logs are read (label selector).
    pub selector: String,
    /// A regular expression (Rust `regex` syntax) matched against each line.
    pub pattern: String,
    /// How far back to read (`sinceSeconds`).
    pub window: DurationValue,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbeConfig {
    pub name: KebabId,
    pub url: SecretUrl,
    pub timeout: Option<DurationValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsScrapeConfig {
    pub name: KebabId,
    pub url: SecretUrl,
    /// Metric families to keep (exact names); empty keeps all.
    #[serde(default)]
    pub families: Vec<String>,
    pub timeout: Option<DurationValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSourceConfig {
    /// The server (`http://prometheus:9090`, or a path prefix behind a proxy).
    pub url: SecretUrl,
    /// The whole source's budget (default 5s).
    pub timeout: Option<DurationValue>,
    /// Sent as `Authorization: Bearer …`.
    pub bearer_token: Option<Secret>,
    /// A file holding the bearer token (e.g. a mounted service-account token).
    pub bearer_token_file: Option<PathBuf>,
    /// Basic auth (the password never shown).
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// A PEM CA bundle to trust beyond the system roots.
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub queries: Vec<PromQueryConfig>,
}

/// A range query's step when the config gives none: the range / 60, at least 1s.
pub fn default_step(range: Duration) -> Duration {
    (range / 60).max(Duration::from_secs(1))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromQueryConfig {
    pub name: KebabId,
    /// A PromQL expression.
    pub query: String,
    /// Set for a range query: how far back from now (`10m`).
    pub range: Option<DurationValue>,
    /// A range query's resolution (default: the range / 60, at least 1s).
    pub step: Option<DurationValue>,
    /// This query's own budget, also sent to the server (default 2s).
    pub timeout: Option<DurationValue>,
}

/// `[watch.alertmanager]`: where `watch` delivers its alerts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// `http://alertmanager:9093` (credentials in the URL are never shown).
    pub url: SecretUrl,
    /// Linked from every alert (`runbook_url`).
    pub runbook: Option<String>,
    /// How often an open incident's alerts are sent again (default 1m).
    pub repeat: Option<DurationValue>,
    /// One delivery's budget (default 5s).
    pub timeout: Option<DurationValue>,
}

impl AlertmanagerConfig {
    pub fn repeat(&self) -> Duration {
        self.repeat.map_or(Duration::from_secs(60), |d| d.0)
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(Duration::from_secs(5), |d| d.0)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Compiled-gate cache; default `$XDG_CACHE_HOME/gatekeeper/wasmtime`.
    pub cache_dir: Option<PathBuf>,
    /// Set false to compile every time. Default on, except with `[trust]`:
    /// compiled code read back from the cache is not checked against the
    /// signatures, so with `[trust]` it is on only when set true (and the
    /// cache directory is then trusted like the binary).
    pub cache: Option<bool>,
    /// The pooling instance allocator (default: on for `watch`, off for the
    /// one-shot commands; see README benchmarks).
    pub pooling: Option<bool>,
    /// Wall-clock budget for all the gates of one phase together (default
    /// 2s); gates that run past it are errors.
    pub phase_budget: Option<DurationValue>,
    /// Gates evaluated at once (default: one per core, at most 8).
    pub threads: Option<usize>,
    /// The largest gate (`.wasm`) read from a file (default 32MiB).
    pub max_gate_size: Option<ByteSize>,
    /// The largest snapshot or recording read from a file (default 256MiB).
    pub max_snapshot_size: Option<ByteSize>,
    /// Defaults for every gate.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// Limit overrides; unset fields keep the defaults in `runtime::limits`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub fuel: Option<u64>,
    pub deadline: Option<DurationValue>,
    pub memory: Option<ByteSize>,
    pub stack: Option<ByteSize>,
    pub output: Option<ByteSize>,
}

impl LimitsConfig {
    pub fn overrides(&self) -> LimitOverrides {
        LimitOverrides {
            fuel: self.fuel,
            deadline: self.deadline.map(|d| d.0),
            memory_bytes: self.memory.map(|b| b.0),
            stack_bytes: self.stack.map(|b| b.0),
            output_bytes: self.output.map(|b| b.0),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// A built-in gate's name, or
    pub builtin: Option<String>,
    /// a path to a `.wasm` component (relative to the config file), or
    pub wasm: Option<PathBuf>,
    /// an OCI reference pinned by digest
    /// (`oci://registry/repository@sha256:<hex>`), read from the local
    /// cache `gatekeeper gate pull` fills.
    pub oci: Option<String>,
    /// The `wasm` gate's signature file (default: `<wasm>.minisig` beside it).
    pub signature: Option<PathBuf>,
    /// Refuse to load unless the component's sha256 is this (hex).
    pub sha256: Option<String>,
    #[serde(default)]
    pub params: toml::Table,
    #[serde(default)]
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseConfig {
    pub description: Option<String>,
    pub gates: Vec<String>,
    /// A live one-shot `check` first samples the sources for this long (every
    /// `--interval`), so rates and holds have a history window to read.
    pub sample: Option<DurationValue>,
    /// `apply`: phases that must be go before any step runs (default: this
    /// phase itself).
    pub requires: Option<Vec<String>>,
    /// `apply`: what it changes, in order (`plan` shows it first).
    #[serde(default)]
    pub steps: Vec<super::StepConfig>,
    /// `apply`: the phase that must be go after the steps (the post-gates).
    pub verify: Option<String>,
    /// How long `apply` waits for `verify` (default 5m).
    pub verify_timeout: Option<DurationValue>,
    /// A `[watch.plans]` plan `apply` runs when a step fails or `verify`
    /// does not go (the rollback); without it, it stops and alerts.
    pub on_failure: Option<String>,
}

/// How long `apply` waits for the `verify` phase by default.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
