//! `gatekeeper.toml`: sources, runtime limits, gates, phases and profiles.
//!
//! Every error names the file, the line and the field. A profile is an
//! overlay: its tables merge into the base config, its other values replace.
//! Every profile is checked when the file loads, so a typo in `production`
//! fails in CI, not during the production window.

mod watch;

pub use watch::*;

use crate::builtin;
use crate::runtime::{LimitOverrides, limits};
use gatekeeper_model::{is_kebab_id, parse_duration_ms};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: crate::files::FileError,
    },
    /// Not valid TOML.
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    /// A field is missing, unknown, of the wrong type, or has a bad value.
    #[error("{path}:{line}: {profile}{field}: {message}")]
    Field {
        path: String,
        line: usize,
        profile: String,
        field: String,
        message: String,
    },
    #[error("{path}: unknown profile `{name}` (defined: {defined})")]
    UnknownProfile {
        path: String,
        name: String,
        defined: String,
    },
}

/// The whole config after the profile and environment were applied.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub sources: SourcesConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub gates: BTreeMap<String, GateConfig>,
    #[serde(default)]
    pub phases: BTreeMap<String, PhaseConfig>,
    /// `gatekeeper watch`: interval, plans, safety.
    pub watch: Option<WatchConfig>,
    /// Where verdicts, incidents, actions and attestations are kept.
    pub ledger: Option<LedgerConfig>,
    /// The directory of the config file; relative gate paths start there.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The profile that was applied, if any.
    #[serde(skip)]
    pub profile: Option<String>,
    /// Every gate's params in the base config and under every profile, to
    /// check against the gates once they are loaded.
    #[serde(skip)]
    pub params_by_profile: std::sync::Arc<ParamsByProfile>,
}

/// Each gate's params in the base config (`profile: None`) and under each
/// profile, with what it takes to point at a field of the file.
#[derive(Debug, Default)]
pub struct ParamsByProfile {
    shown: String,
    text: String,
    pub variants: Vec<(Option<String>, BTreeMap<String, toml::Table>)>,
}

impl ParamsByProfile {
    /// The error for `field` (a path from the top of the file) under
    /// `profile`, located as [`ParamsByProfile::error`] does.
    pub fn error_at(
        &self,
        profile: Option<&str>,
        field: &[String],
        message: String,
    ) -> ConfigError {
        let Ok(doc) = toml_edit::Document::parse(self.text.clone()) else {
            return ConfigError::Syntax {
                path: self.shown.clone(),
                message,
            };
        };
        Locator {
            path: &self.shown,
            text: &self.text,
            doc: &doc,
        }
        .error(profile, field, message)
    }

    /// The error for `field` (below `gates.<gate>.params`) under `profile`,
    /// located in the file: the profile's overlay when it sets the field,
    /// else the base config.
    pub fn error(
        &self,
        profile: Option<&str>,
        gate: &str,
        field: &[String],
        message: String,
    ) -> ConfigError {
        let path: Vec<String> = ["gates".to_owned(), gate.to_owned(), "params".to_owned()]
            .into_iter()
            .chain(field.iter().cloned())
            .collect();
        self.error_at(profile, &path, message)
    }
}

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
    pub name: String,
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
    pub name: String,
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
    pub name: String,
    pub url: SecretUrl,
    pub timeout: Option<DurationValue>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsScrapeConfig {
    pub name: String,
    pub url: SecretUrl,
    /// Metric families to keep (exact names); empty keeps all.
    #[serde(default)]
    pub families: Vec<String>,
    pub timeout: Option<DurationValue>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Compiled-gate cache; default `$XDG_CACHE_HOME/gatekeeper/wasmtime`.
    pub cache_dir: Option<PathBuf>,
    /// Set false to compile every time.
    pub cache: Option<bool>,
    /// The pooling instance allocator (default on; see README benchmarks).
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
    /// a path to a `.wasm` component (relative to the config file).
    pub wasm: Option<PathBuf>,
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
}

/// A duration written as `250ms`, `60s`, `5m`, `48h`, `14d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration_ms(&text)
            .map(|ms| DurationValue(Duration::from_millis(ms)))
            .map_err(D::Error::custom)
    }
}

/// A size written as a number of bytes or with a unit: `512KiB`, `64MiB`, `1GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        let bad = |t: &str| {
            D::Error::custom(format!(
                "invalid size `{t}` (use bytes or KiB, MiB, GiB, e.g. `64MiB`)"
            ))
        };
        match Raw::deserialize(d)? {
            Raw::Number(n) => usize::try_from(n)
                .map(ByteSize)
                .map_err(|_| bad(&n.to_string())),
            Raw::Text(t) => {
                let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                let n: usize = t[..digits].parse().map_err(|_| bad(&t))?;
                let factor = match t[digits..].trim() {
                    "" | "B" => 1,
                    "KiB" => 1 << 10,
                    "MiB" => 1 << 20,
                    "GiB" => 1 << 30,
                    _ => return Err(bad(&t)),
                };
                n.checked_mul(factor).map(ByteSize).ok_or_else(|| bad(&t))
            }
        }
    }
}

/// A URL that may carry a password; never shown with it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }

    /// The URL with its secret, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password or token replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
            return url.clone();
        };
        let authority_end = url[scheme_end..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |i| scheme_end + i);
        match url[scheme_end..authority_end].rfind('@') {
            None => url.clone(),
            Some(at) => {
                let userinfo = &url[scheme_end..scheme_end + at];
                let shown = match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***"),
                    None => "***".to_owned(),
                };
                format!("{}{}{}", &url[..scheme_end], shown, &url[scheme_end + at..])
            }
        }
    }
}

/// A secret value (password, token, nkey seed); shown only as `***`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for authenticating only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Reads environment overrides; a seam so tests need not touch the process env.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Environment for BTreeMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.to_string())
    }
}

impl Config {
    /// Loads, validates every profile, applies `profile` and the environment
    /// (`NATS_URL`, `NATS_MONITOR_URL`, `DATABASE_URL`, `KUBECONFIG`).
    pub fn load(
        path: &Path,
        profile: Option<&str>,
        env: &dyn Environment,
    ) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = crate::files::read_untrusted_text(
            path,
            crate::files::MAX_CONFIG_BYTES,
            "a config file",
        )
        .map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut config = Self::parse(&text, &shown, profile)?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.apply_env(env);
        Ok(config)
    }

    /// Parses config text; `shown` is the file name used in errors.
    pub fn parse(text: &str, shown: &str, profile: Option<&str>) -> Result<Config, ConfigError> {
        let syntax = |message: String| ConfigError::Syntax {
            path: shown.to_owned(),
            message,
        };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| syntax(e.to_string().trim_end().to_owned()))?;
        let spans =
            toml_edit::Document::parse(text.to_owned()).map_err(|e| syntax(e.to_string()))?;
        let locator = Locator {
            path: shown,
            text,
            doc: &spans,
        };

        let profiles = match table.remove("profiles") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => {
                return Err(locator.error(
                    None,
                    &["profiles".into()],
                    "must be a table of profiles".into(),
                ));
            }
        };
        let base = locator.build(None, toml::Value::Table(table.clone()))?;
        let params_of = |c: &Config| -> BTreeMap<String, toml::Table> {
            c.gates
                .iter()
                .map(|(n, g)| (n.clone(), g.params.clone()))
                .collect()
        };
        let mut variants = vec![(None, params_of(&base))];
        let mut selected = None;
        for (name, overlay) in &profiles {
            let toml::Value::Table(overlay) = overlay else {
                return Err(locator.error(
                    None,
                    &["profiles".into(), name.clone()],
                    "a profile must be a table".into(),
                ));
            };
            if overlay.contains_key("profiles") {
                return Err(locator.error(
                    Some(name),
                    &["profiles".into()],
                    "profiles cannot nest".into(),
                ));
            }
            let mut merged = table.clone();
            merge(&mut merged, overlay);
            let built = locator.build(Some(name), toml::Value::Table(merged))?;
            variants.push((Some(name.clone()), params_of(&built)));
            if profile == Some(name.as_str()) {
                selected = Some(built);
            }
        }
        let params_by_profile = std::sync::Arc::new(ParamsByProfile {
            shown: shown.to_owned(),
            text: text.to_owned(),
            variants,
        });
        let mut base = base;
        base.params_by_profile = params_by_profile.clone();
        if let Some(s) = selected.as_mut() {
            s.params_by_profile = params_by_profile;
        }
        match profile {
            None => Ok(base),
            Some(name) => {
                let mut config = selected.ok_or_else(|| ConfigError::UnknownProfile {
                    path: shown.to_owned(),
                    name: name.to_owned(),
                    defined: if profiles.is_empty() {
                        "none".into()
                    } else {
                        profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                    },
                })?;
                config.profile = Some(name.to_owned());
                Ok(config)
            }
        }
    }

    fn apply_env(&mut self, env: &dyn Environment) {
        if let Some(url) = env.var("NATS_URL") {
            match &mut self.sources.nats {
                Some(nats) => nats.url = SecretUrl::new(url),
                None => self.sources.nats = Some(NatsSourceConfig::new(SecretUrl::new(url))),
            }
        }
        // One URL per node, comma-separated (only the meta leader lists peers).
        if let (Some(urls), Some(nats)) = (env.var("NATS_MONITOR_URL"), &mut self.sources.nats) {
            let urls: Vec<String> = urls
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect();
            nats.monitor_url = Some(OneOrMany::Many(urls));
        }
        if let Some(url) = env.var("DATABASE_URL") {
            match &mut self.sources.postgres {
                Some(pg) => pg.url = SecretUrl::new(url),
                None => {
                    self.sources.postgres = Some(PostgresSourceConfig {
                        url: SecretUrl::new(url),
                        timeout: None,
                        queries: Vec::new(),
                    })
                }
            }
        }
        // KUBECONFIG only redirects a configured Kubernetes source; it does not
        // switch one on (it is set on most workstations).
        if let (Some(path), Some(kube)) = (env.var("KUBECONFIG"), &mut self.sources.kubernetes) {
            kube.kubeconfig = Some(PathBuf::from(path));
        }
    }

    /// The ledger's JSONL file (the `file` backend), resolved against the config dir.
    pub fn ledger_file(&self) -> PathBuf {
        let file = self
            .ledger
            .as_ref()
            .and_then(|l| l.file.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LEDGER_FILE));
        if file.is_absolute() {
            file
        } else {
            self.base_dir.join(file)
        }
    }

    /// Where a gate's component comes from, resolved against the config dir.
    pub fn gate_wasm_path(&self, gate: &GateConfig) -> Option<PathBuf> {
        gate.wasm.as_ref().map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                self.base_dir.join(p)
            }
        })
    }
}

/// Deep merge: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, overlay: &toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Maps field paths back to lines of the original text.
struct Locator<'a> {
    path: &'a str,
    text: &'a str,
    doc: &'a toml_edit::Document<String>,
}

impl Locator<'_> {
    /// Deserializes and validates one variant (base or base + profile).
    fn build(&self, profile: Option<&str>, value: toml::Value) -> Result<Config, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let mut field: Vec<String> = e
                .path()
                .iter()
                .filter_map(|seg| match seg {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                    _ => None,
                })
                .collect();
            // toml's Display appends "in `path`"; we give the path ourselves.
            let message = e.inner().message().trim_end().to_owned();
            // serde names an unknown field in the message; point at it.
            if let Some(name) = message
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
                && field.last().map(String::as_str) != Some(name)
            {
                field.push(name.to_owned());
            }
            self.error(profile, &field, message)
        })?;
        validate(&config).map_err(|(field, message)| self.error(profile, &field, message))?;
        Ok(config)
    }

    fn error(&self, profile: Option<&str>, field: &[String], message: String) -> ConfigError {
        // Look in the profile's overlay first, then in the base document.
        let in_profile: Option<Vec<String>> = profile.map(|p| {
            ["profiles".to_owned(), p.to_owned()]
                .into_iter()
                .chain(field.iter().cloned())
                .collect()
        });
        let offset = in_profile
            .as_ref()
            .and_then(|p| self.offset_exact(p))
            .or_else(|| self.offset_exact(field))
            .or_else(|| in_profile.as_ref().and_then(|p| self.offset_prefix(p)))
            .or_else(|| self.offset_prefix(field))
            .unwrap_or(0);
        let line = self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1;
        ConfigError::Field {
            path: self.path.to_owned(),
            line,
            profile: profile
                .map(|p| format!("profile `{p}`: "))
                .unwrap_or_default(),
            field: if field.is_empty() {
                "(top level)".into()
            } else {
                render_field(field)
            },
            message,
        }
    }

    fn offset_exact(&self, field: &[String]) -> Option<usize> {
        let (found, offset) = self.walk(field);
        (found == field.len()).then_some(offset).flatten()
    }

    fn offset_prefix(&self, field: &[String]) -> Option<usize> {
        self.walk(field).1
    }

    /// Follows the path as far as it exists: (segments found, offset of the deepest).
    fn walk(&self, field: &[String]) -> (usize, Option<usize>) {
        enum Node<'d> {
            Item(&'d toml_edit::Item),
            Value(&'d toml_edit::Value),
            Table(&'d toml_edit::Table),
        }
        let mut node = Node::Item(self.doc.as_item());
        let mut offset = None;
        for (depth, seg) in field.iter().enumerate() {
            let table = match &node {
                Node::Item(i) => i.as_table_like(),
                Node::Value(v) => v.as_inline_table().map(|t| t as &dyn toml_edit::TableLike),
                Node::Table(t) => Some(*t as &dyn toml_edit::TableLike),
            };
            if let Some(table) = table {
                let Some((key, child)) = table.get_key_value(seg) else {
                    return (depth, offset);
                };
                offset = key
                    .span()
                    .or_else(|| child.span())
                    .map(|r| r.start)
                    .or(offset);
                node = Node::Item(child);
                continue;
            }
            let Ok(index) = seg.parse::<usize>() else {
                return (depth, offset);
            };
            match &node {
                Node::Item(toml_edit::Item::ArrayOfTables(a)) => {
                    let Some(t) = a.get(index) else {
                        return (depth, offset);
                    };
                    offset = t.span().map(|r| r.start).or(offset);
                    node = Node::Table(t);
                }
                Node::Item(i) => {
                    let Some(v) = i.as_array().and_then(|a| a.get(index)) else {
                        return (depth, offset);
                    };
                    offset = v.span().map(|r| r.start).or(offset);
                    node = Node::Value(v);
                }
                Node::Table(_) => return (depth, offset),
                Node::Value(v) => {
                    let Some(v) = v.as_array().and_then(|a| a.get(index)) else {
                        return (depth, offset);
                    };
                    offset = v.span().map(|r| r.start).or(offset);
                    node = Node::Value(v);
                }
            }
        }
        (field.len(), offset)
    }
}

fn render_field(field: &[String]) -> String {
    let mut out = String::new();
    for seg in field {
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

type Invalid = (Vec<String>, String);

fn at(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Checks what the types alone cannot: names, references, exclusive choices, ranges.
fn validate(config: &Config) -> Result<(), Invalid> {
    validate_limits(&config.runtime.limits, &["runtime", "limits"])?;
    for (name, gate) in &config.gates {
        if !is_kebab_id(name) {
            return Err((
                at(&["gates", name]),
                format!("gate name `{name}` must be kebab-case ([a-z0-9-])"),
            ));
        }
        match (&gate.builtin, &gate.wasm) {
            (Some(_), Some(_)) => {
                return Err((
                    at(&["gates", name, "wasm"]),
                    "set either `builtin` or `wasm`, not both".into(),
                ));
            }
            (None, None) => {
                return Err((
                    at(&["gates", name]),
                    "set `builtin = \"<name>\"` or `wasm = \"<path>\"`".into(),
                ));
            }
            (Some(b), None) if builtin::builtin_gate(b).is_none() => {
                return Err((
                    at(&["gates", name, "builtin"]),
                    format!(
                        "no built-in gate `{b}` (built-in: {})",
                        builtin::builtin_names().join(", ")
                    ),
                ));
            }
            _ => {}
        }
        if let Some(sha) = &gate.sha256
            && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err((
                at(&["gates", name, "sha256"]),
                "must be 64 hex characters".into(),
            ));
        }
        validate_limits(&gate.limits, &["gates", name, "limits"])?;
    }
    for (name, phase) in &config.phases {
        if !is_kebab_id(name) {
            return Err((
                at(&["phases", name]),
                format!("phase name `{name}` must be kebab-case ([a-z0-9-])"),
            ));
        }
        if phase.gates.is_empty() {
            return Err((
                at(&["phases", name, "gates"]),
                "a phase needs at least one gate".into(),
            ));
        }
        for (i, gate) in phase.gates.iter().enumerate() {
            let field = at(&["phases", name, "gates", &i.to_string()]);
            if !config.gates.contains_key(gate) {
                let known = config.gates.keys().cloned().collect::<Vec<_>>().join(", ");
                return Err((field, format!("no gate named `{gate}` (gates: {known})")));
            }
            if phase.gates[..i].contains(gate) {
                return Err((field, format!("gate `{gate}` is listed twice")));
            }
        }
    }
    validate_sources(&config.sources)?;
    if let Some(ledger) = &config.ledger {
        watch::validate_ledger(ledger, &config.sources)?;
    }
    if let Some(w) = &config.watch {
        watch::validate_watch(w, config)?;
    }
    Ok(())
}

fn validate_sources(sources: &SourcesConfig) -> Result<(), Invalid> {
    fn unique_kebab<'a>(
        names: impl Iterator<Item = &'a str>,
        field: &[&str],
        what: &str,
    ) -> Result<(), Invalid> {
        let mut seen = Vec::new();
        for (i, name) in names.enumerate() {
            let f = || at(&[field, &[&i.to_string(), "name"]].concat());
            if !is_kebab_id(name) {
                return Err((f(), format!("{what} names must be kebab-case ([a-z0-9-])")));
            }
            if seen.contains(&name) {
                return Err((f(), format!("{what} `{name}` is defined twice")));
            }
            seen.push(name);
        }
        Ok(())
    }
    let http_url = |url: &str, field: Vec<String>| -> Result<(), Invalid> {
        if url.starts_with("http://") || url.starts_with("https://") {
            Ok(())
        } else {
            Err((field, "must be an http:// or https:// URL".into()))
        }
    };
    let positive = |d: &Option<DurationValue>, field: Vec<String>| -> Result<(), Invalid> {
        match d {
            Some(d) if d.0.is_zero() => Err((field, "must be greater than 0s".into())),
            _ => Ok(()),
        }
    };
    if let Some(nats) = &sources.nats {
        let url = nats.url.expose();
        if !["nats://", "tls://", "ws://", "wss://"]
            .iter()
            .any(|p| url.starts_with(p))
            && url.contains("://")
        {
            return Err((
                at(&["sources", "nats", "url"]),
                "must be a nats://, tls://, ws:// or wss:// URL".into(),
            ));
        }
        match &nats.monitor_url {
            Some(OneOrMany::One(m)) => http_url(m, at(&["sources", "nats", "monitor_url"]))?,
            Some(OneOrMany::Many(list)) => {
                for (i, m) in list.iter().enumerate() {
                    http_url(m, at(&["sources", "nats", "monitor_url", &i.to_string()]))?;
                }
            }
            None => {}
        }
        positive(&nats.timeout, at(&["sources", "nats", "timeout"]))?;
        let methods = [
            nats.token.is_some(),
            nats.user.is_some() || nats.password.is_some(),
            nats.nkey.is_some() || nats.nkey_file.is_some(),
            nats.creds_file.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err((
                at(&["sources", "nats"]),
                "choose one authentication: `user`+`password`, `token`, `nkey`/`nkey_file` or `creds_file`".into(),
            ));
        }
        if nats.user.is_some() != nats.password.is_some() {
            let (set, missing) = if nats.user.is_some() {
                ("user", "password")
            } else {
                ("password", "user")
            };
            return Err((
                at(&["sources", "nats", set]),
                format!("`{set}` needs `{missing}` too"),
            ));
        }
        if nats.nkey.is_some() && nats.nkey_file.is_some() {
            return Err((
                at(&["sources", "nats", "nkey_file"]),
                "set either `nkey` or `nkey_file`, not both".into(),
            ));
        }
        if nats.tls.cert_file.is_some() != nats.tls.key_file.is_some() {
            return Err((
                at(&["sources", "nats", "tls"]),
                "`cert_file` and `key_file` go together".into(),
            ));
        }
        for (i, pattern) in nats.streams.iter().enumerate() {
            if pattern.is_empty() || pattern.contains(char::is_whitespace) {
                return Err((
                    at(&["sources", "nats", "streams", &i.to_string()]),
                    "a stream name pattern must be non-empty without spaces".into(),
                ));
            }
        }
    }
    if let Some(pg) = &sources.postgres {
        let url = pg.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err((
                at(&["sources", "postgres", "url"]),
                "must be a postgres:// or postgresql:// URL".into(),
            ));
        }
        positive(&pg.timeout, at(&["sources", "postgres", "timeout"]))?;
        unique_kebab(
            pg.queries.iter().map(|q| q.name.as_str()),
            &["sources", "postgres", "queries"],
            "query",
        )?;
        for (i, q) in pg.queries.iter().enumerate() {
            let f = |name: &str| at(&["sources", "postgres", "queries", &i.to_string(), name]);
            if q.sql.trim().is_empty() {
                return Err((f("sql"), "must not be empty".into()));
            }
            positive(&q.timeout, f("timeout"))?;
        }
    }
    if let Some(kube) = &sources.kubernetes {
        positive(&kube.timeout, at(&["sources", "kubernetes", "timeout"]))?;
        unique_kebab(
            kube.log_patterns.iter().map(|p| p.name.as_str()),
            &["sources", "kubernetes", "log_patterns"],
            "log pattern",
        )?;
        for (i, p) in kube.log_patterns.iter().enumerate() {
            let f = |name: &str| {
                at(&[
                    "sources",
                    "kubernetes",
                    "log_patterns",
                    &i.to_string(),
                    name,
                ])
            };
            if let Err(e) = regex::Regex::new(&p.pattern) {
                let first = e.to_string();
                let last = first.lines().last().unwrap_or("invalid").trim().to_owned();
                return Err((f("pattern"), format!("not a valid regex: {last}")));
            }
            if p.window.0 < Duration::from_secs(1) {
                return Err((f("window"), "must be at least 1s".into()));
            }
            if p.selector.trim().is_empty() {
                return Err((f("selector"), "must not be empty".into()));
            }
        }
    }
    unique_kebab(
        sources.http.iter().map(|p| p.name.as_str()),
        &["sources", "http"],
        "probe",
    )?;
    for (i, probe) in sources.http.iter().enumerate() {
        http_url(
            probe.url.expose(),
            at(&["sources", "http", &i.to_string(), "url"]),
        )?;
        positive(
            &probe.timeout,
            at(&["sources", "http", &i.to_string(), "timeout"]),
        )?;
    }
    unique_kebab(
        sources.metrics.iter().map(|p| p.name.as_str()),
        &["sources", "metrics"],
        "scrape",
    )?;
    for (i, scrape) in sources.metrics.iter().enumerate() {
        http_url(
            scrape.url.expose(),
            at(&["sources", "metrics", &i.to_string(), "url"]),
        )?;
        positive(
            &scrape.timeout,
            at(&["sources", "metrics", &i.to_string(), "timeout"]),
        )?;
    }
    Ok(())
}

fn validate_limits(l: &LimitsConfig, field: &[&str]) -> Result<(), Invalid> {
    let err = |name: &str, message: String| {
        let mut f = at(field);
        f.push(name.to_owned());
        Err((f, message))
    };
    if l.fuel == Some(0) {
        return err("fuel", "must be greater than 0".into());
    }
    if l.deadline.is_some_and(|d| d.0.is_zero()) {
        return err("deadline", "must be greater than 0s".into());
    }
    if let Some(m) = l.memory
        && (m.0 < 1 << 20 || m.0 > 4 << 30)
    {
        return err("memory", "must be between 1MiB and 4GiB".into());
    }
    if let Some(s) = l.stack
        && (s.0 < 64 << 10 || s.0 > limits::MAX_STACK_BYTES)
    {
        return err(
            "stack",
            format!(
                "must be between 64KiB and {}KiB",
                limits::MAX_STACK_BYTES >> 10
            ),
        );
    }
    if l.output.is_some_and(|o| o.0 < 1 << 10) {
        return err("output", "must be at least 1KiB".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_sources_config_loads() {
        let text = include_str!("../../examples/athlete-ally/sources.toml");
        let config = Config::parse(text, "sources.toml", None).unwrap();
        let s = &config.sources;
        assert_eq!(s.nats.as_ref().unwrap().monitor_urls().len(), 3);
        assert_eq!(s.postgres.as_ref().unwrap().queries.len(), 2);
        assert_eq!(s.kubernetes.as_ref().unwrap().log_patterns.len(), 3);
        assert_eq!((s.metrics.len(), s.http.len()), (2, 2));
    }

    #[test]
    fn secrets_debug_as_stars() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "\"***\"");
        let mut nats = NatsSourceConfig::new(SecretUrl::new("nats://a:hunter2@h:1"));
        nats.password = Some(Secret::new("hunter2"));
        assert!(!format!("{nats:?}").contains("hunter2"));
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            SecretUrl::new("nats://app:s3cret@nats:4222").to_string(),
            "nats://app:***@nats:4222"
        );
        assert_eq!(
            SecretUrl::new("nats://tok3n@nats:4222").redacted(),
            "nats://***@nats:4222"
        );
        assert_eq!(
            SecretUrl::new("postgres://athlete:pw@db:5432/athlete_normalize?sslmode=disable")
                .redacted(),
            "postgres://athlete:***@db:5432/athlete_normalize?sslmode=disable"
        );
        assert_eq!(
            SecretUrl::new("http://svc:4102/metrics").redacted(),
            "http://svc:4102/metrics"
        );
        assert_eq!(
            format!("{:?}", SecretUrl::new("nats://a:b@h")),
            "\"nats://a:***@h\""
        );
    }

    #[test]
    fn profiles_merge_tables_and_replace_values() {
        let text = r#"
[gates.core]
builtin = "stream-topology"
params = { streams = [{ name = "A", replicas = 1 }] }
limits = { fuel = 1000 }

[phases.phase-2]
gates = ["core"]

[profiles.production.gates.core]
params = { streams = [{ name = "A", replicas = 3 }] }
"#;
        let base = Config::parse(text, "g.toml", None).unwrap();
        assert_eq!(
            base.gates["core"].params["streams"][0]["replicas"].as_integer(),
            Some(1)
        );
        let prod = Config::parse(text, "g.toml", Some("production")).unwrap();
        assert_eq!(
            prod.gates["core"].params["streams"][0]["replicas"].as_integer(),
            Some(3)
        );
        assert_eq!(prod.gates["core"].limits.fuel, Some(1000));
        assert_eq!(prod.profile.as_deref(), Some("production"));
    }

    #[test]
    fn env_overrides_urls() {
        let mut env = BTreeMap::new();
        env.insert("NATS_URL", "nats://u:p@127.0.0.1:14222");
        env.insert("KUBECONFIG", "/tmp/kc");
        let mut config = Config::parse("", "g.toml", None).unwrap();
        config.apply_env(&env);
        assert_eq!(
            config.sources.nats.as_ref().unwrap().url.expose(),
            "nats://u:p@127.0.0.1:14222"
        );
        assert!(config.sources.postgres.is_none());
        env.insert(
            "NATS_MONITOR_URL",
            "http://127.0.0.1:18222, http://127.0.0.1:18223",
        );
        config.apply_env(&env);
        assert_eq!(
            config.sources.nats.as_ref().unwrap().monitor_urls(),
            ["http://127.0.0.1:18222", "http://127.0.0.1:18223"]
        );
        assert!(
            config.sources.kubernetes.is_none(),
            "KUBECONFIG alone does not enable Kubernetes"
        );
    }
}
