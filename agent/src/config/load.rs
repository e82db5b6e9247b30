//! Reading a config: the file (as untrusted), every profile built and
//! validated, the selected one applied, then the environment.

use super::locate::{Locator, ParamsByProfile};
use super::{Config, ConfigError, NatsSourceConfig, OneOrMany, PostgresSourceConfig, SecretUrl};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_sources_config_loads() {
        let text = include_str!("../../../examples/athlete-ally/sources.toml");
        let config = Config::parse(text, "sources.toml", None).unwrap();
        let s = &config.sources;
        assert_eq!(s.nats.as_ref().unwrap().monitor_urls().len(), 3);
        assert_eq!(s.postgres.as_ref().unwrap().queries.len(), 2);
        assert_eq!(s.kubernetes.as_ref().unwrap().log_patterns.len(), 3);
        assert_eq!((s.metrics.len(), s.http.len()), (2, 2));
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
