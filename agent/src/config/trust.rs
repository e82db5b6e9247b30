//! `[trust]`: which keys may sign which gates. With it, every gate that is
//! not built in must carry a signature that verifies under a key allowed
//! to sign it, or it is refused at load (it never runs). Without it,
//! signatures are not checked, and reports say so.

use super::{Config, Invalid, at};
use crate::supply::signature::{NamedKey, TrustPolicy, parse_public_key, read_public_key};
use crate::text::glob_match;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// The keys, by a name reports and the ledger show as the signer.
    #[serde(default)]
    pub keys: BTreeMap<String, TrustKeyConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustKeyConfig {
    /// The minisign public key (`RW…`, the second line of a `.pub` file), or
    pub public_key: Option<String>,
    /// a minisign `.pub` file (relative to the config file).
    pub public_key_file: Option<PathBuf>,
    /// The gates (config names; `*` matches any run of characters) this
    /// key may sign.
    pub gates: Vec<String>,
}

/// Why the trust policy cannot be built from the key files.
#[derive(Debug, thiserror::Error)]
#[error("trust.keys.{key}.public_key_file: {path}: {message}")]
pub struct TrustKeyError {
    pub key: String,
    pub path: String,
    pub message: String,
}

pub(super) fn validate_trust(trust: &TrustConfig, config: &Config) -> Result<(), Invalid> {
    if trust.keys.is_empty() {
        return Err((
            at(&["trust", "keys"]),
            "[trust] without keys would refuse every gate that is not built in; \
             add `[trust.keys.<name>]` with `public_key` and `gates`"
                .into(),
        ));
    }
    for (name, key) in &trust.keys {
        let here = |field: &str| at(&["trust", "keys", name, field]);
        match (&key.public_key, &key.public_key_file) {
            (Some(_), Some(_)) => {
                return Err((
                    here("public_key_file"),
                    "set either `public_key` or `public_key_file`, not both".into(),
                ));
            }
            (None, None) => {
                return Err((
                    at(&["trust", "keys", name]),
                    "set `public_key = \"RW…\"` or `public_key_file = \"<file>.pub\"`".into(),
                ));
            }
            (Some(text), None) => {
                parse_public_key(text).map_err(|e| (here("public_key"), e.to_string()))?;
            }
            (None, Some(_)) => {}
        }
        if key.gates.is_empty() || key.gates.iter().any(|g| g.trim().is_empty()) {
            return Err((
                here("gates"),
                "list the gates this key may sign (config names, `*` for all)".into(),
            ));
        }
    }
    for (name, gate) in &config.gates {
        let covered = trust
            .keys
            .values()
            .any(|k| k.gates.iter().any(|p| glob_match(p, name)));
        if gate.builtin.is_none() && !covered {
            return Err((
                at(&["gates", name]),
                format!(
                    "[trust] is set and no key may sign gate `{name}`: add it to a key's `gates`"
                ),
            ));
        }
    }
    Ok(())
}

impl Config {
    /// The `[trust]` policy with every key read; `None` without `[trust]`.
    pub fn trust_policy(&self) -> Result<Option<TrustPolicy>, TrustKeyError> {
        let Some(trust) = &self.trust else {
            return Ok(None);
        };
        let mut keys = Vec::new();
        for (name, k) in &trust.keys {
            let (path, key) = match (&k.public_key, &k.public_key_file) {
                (Some(text), _) => (
                    "(inline)".to_owned(),
                    parse_public_key(text).map_err(|e| e.to_string()),
                ),
                (None, Some(file)) => {
                    let path = if file.is_absolute() {
                        file.clone()
                    } else {
                        self.base_dir.join(file)
                    };
                    (
                        path.display().to_string(),
                        read_public_key(&path).map_err(|e| e.to_string()),
                    )
                }
                (None, None) => continue,
            };
            let key = key.map_err(|message| TrustKeyError {
                key: name.clone(),
                path: path.clone(),
                message,
            })?;
            // A key id must name one key: with two, a signature would be
            // checked against whichever came first.
            if let Some(same) = keys
                .iter()
                .find(|o: &&NamedKey| o.key.keynum() == key.keynum())
            {
                return Err(TrustKeyError {
                    key: name.clone(),
                    path,
                    message: format!(
                        "has the key id {} of key `{}`: give one key each id",
                        crate::supply::signature::key_id_hex(key.keynum()),
                        same.name
                    ),
                });
            }
            keys.push(NamedKey {
                name: name.clone(),
                key,
                gates: k.gates.clone(),
            });
        }
        Ok(Some(TrustPolicy { keys }))
    }
}
