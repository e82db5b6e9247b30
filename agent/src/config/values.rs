//! Config values checked while they are read: durations, sizes, secrets
//! (never shown), and kebab-case ids.

use gatekeeper_model::{is_kebab_id, parse_duration_ms};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

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

/// A name in kebab-case (`[a-z0-9-]`): a gate, phase, plan, probe, scrape,
/// query or log pattern name. Checked while deserializing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct KebabId(String);

/// A name that is not kebab-case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not kebab-case ([a-z0-9-])")]
pub struct NotKebab(pub String);

impl KebabId {
    /// `name`, if it is kebab-case.
    pub fn parse(name: &str) -> Result<KebabId, NotKebab> {
        match is_kebab_id(name) {
            true => Ok(KebabId(name.to_owned())),
            false => Err(NotKebab(name.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KebabId {
    type Error = NotKebab;
    fn try_from(name: String) -> Result<KebabId, NotKebab> {
        KebabId::parse(&name)
    }
}

impl std::ops::Deref for KebabId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KebabId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NatsSourceConfig;

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
    fn kebab_ids_are_checked_while_read() {
        assert_eq!(KebabId::parse("dlq-spike").unwrap().as_str(), "dlq-spike");
        assert_eq!(
            KebabId::parse("DLQ_spike").unwrap_err().to_string(),
            "`DLQ_spike` is not kebab-case ([a-z0-9-])"
        );
        let t: Result<KebabId, _> = toml::Value::String("a b".into()).try_into();
        assert!(t.is_err());
    }
}
