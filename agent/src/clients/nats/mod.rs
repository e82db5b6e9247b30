//! NATS: one way to connect with `[sources.nats]` (credentials, TLS,
//! domain), and the JetStream API requests the collector, the ledger, the
//! lease and the NATS actions make (`$JS.API.…` JSON, as the `nats` CLI
//! sends them), through one request helper with one error type.

mod messages;

pub use messages::Expected;

use super::{SourceError, install_crypto_provider, remaining, resolve};
use crate::config::{Config, DEFAULT_SOURCE_TIMEOUT, NatsSourceConfig};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// `stream not found`
pub const ERR_STREAM_NOT_FOUND: u16 = 10059;
/// `no message found` (STREAM.MSG.GET)
pub const ERR_NO_MESSAGE: u16 = 10037;
/// `wrong last sequence` (a compare-and-set lost)
pub const ERR_WRONG_LAST_SEQUENCE: u16 = 10071;

/// A JetStream API error, or a transport failure (`code` 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JsError {
    /// JetStream's `err_code` (0: not an API error).
    pub code: u16,
    pub message: String,
}

impl JsError {
    fn transport(message: String) -> Self {
        JsError { code: 0, message }
    }
}

impl From<JsError> for SourceError {
    fn from(e: JsError) -> SourceError {
        match e.code {
            0 => SourceError::Unreachable(e.message),
            _ => SourceError::Refused(e.message),
        }
    }
}

#[derive(Deserialize)]
struct ApiError {
    code: Option<u16>,
    err_code: Option<u16>,
    description: Option<String>,
}

/// Decodes an API answer; the API's own error is an error naming the subject.
pub fn decode_api<T: DeserializeOwned>(subject: &str, payload: &[u8]) -> Result<T, JsError> {
    #[derive(Deserialize)]
    struct MaybeError {
        error: Option<ApiError>,
    }
    if let Ok(MaybeError { error: Some(e) }) = serde_json::from_slice(payload) {
        return Err(JsError {
            code: e.err_code.unwrap_or(0),
            message: format!(
                "{subject}: JetStream API error {} ({}): {}",
                e.code.unwrap_or(0),
                e.err_code.unwrap_or(0),
                e.description.unwrap_or_default()
            ),
        });
    }
    serde_json::from_slice(payload)
        .map_err(|e| JsError::transport(format!("{subject}: unreadable answer: {e}")))
}

/// A connection to the configured NATS with its JetStream API prefix.
#[derive(Clone)]
pub struct JetStream {
    client: async_nats::Client,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for JetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JetStream({})", self.prefix)
    }
}

/// The JetStream API prefix: `$JS.API`, or `$JS.<domain>.API`.
pub fn api_prefix(config: &NatsSourceConfig) -> String {
    match &config.domain {
        Some(domain) => format!("$JS.{domain}.API"),
        None => "$JS.API".to_owned(),
    }
}

/// Connects with `config` by `deadline`, not reconnecting. `base_dir`
/// resolves relative credential and TLS paths. Secrets never reach an error.
pub async fn connect(
    config: &NatsSourceConfig,
    base_dir: &Path,
    deadline: Instant,
) -> Result<async_nats::Client, SourceError> {
    install_crypto_provider();
    let c = config;
    let path = |p: &Path| resolve(base_dir, p);
    let (address, user, password) = split_userinfo(c.url.expose());
    let mut options = async_nats::ConnectOptions::new()
        .name("gatekeeper")
        .connection_timeout(remaining(deadline, "connect")?)
        .max_reconnects(0);
    if let Some(creds) = &c.creds_file {
        let path = path(creds);
        options = options.credentials_file(&path).await.map_err(|e| {
            SourceError::Setup(format!("creds_file {}: cannot read: {e}", path.display()))
        })?;
    } else if let Some(token) = &c.token {
        options = options.token(token.expose().to_owned());
    } else if let (Some(u), Some(p)) = (&c.user, &c.password) {
        options = options.user_and_password(u.clone(), p.expose().to_owned());
    } else if let Some(seed) = &c.nkey {
        options = options.nkey(seed.expose().trim().to_owned());
    } else if let Some(file) = &c.nkey_file {
        let path = path(file);
        let seed = crate::files::read_untrusted_text(
            &path,
            crate::files::MAX_SECRET_FILE_BYTES,
            "an nkey seed file",
        )
        .map_err(|e| SourceError::Setup(format!("nkey_file {}: {e}", path.display())))?;
        options = options.nkey(seed.trim().to_owned());
    } else if let Some(user) = user {
        // Credentials in the URL: passed as options so the URL that the
        // client keeps (and may log) carries no secret.
        options = match password {
            Some(p) => options.user_and_password(user, p),
            None => options.token(user),
        };
    }
    if c.tls.required {
        options = options.require_tls(true);
    }
    if let Some(ca) = &c.tls.ca_file {
        options = options.add_root_certificates(path(ca));
    }
    if let (Some(cert), Some(key)) = (&c.tls.cert_file, &c.tls.key_file) {
        options = options.add_client_certificate(path(cert), path(key));
    }
    let shown = c.url.redacted();
    options
        .connect(address.as_str())
        .await
        .map_err(|e| SourceError::Unreachable(format!("cannot connect to {shown}: {e}")))
}

impl JetStream {
    /// Connects with `[sources.nats]` within its timeout (the ledger, the
    /// lease and the actions: each request then has that timeout).
    pub async fn open(config: &Config) -> Result<JetStream, SourceError> {
        let nats = config
            .sources
            .nats
            .as_ref()
            .ok_or_else(|| SourceError::Setup("no [sources.nats] in the config".into()))?;
        let timeout = nats.timeout.map_or(DEFAULT_SOURCE_TIMEOUT, |d| d.0);
        JetStream::connect(nats, &config.base_dir, Instant::now() + timeout, timeout).await
    }

    /// Connects by `deadline`; `timeout` bounds each later request made
    /// without a deadline of its own ([`Self::api`]).
    pub async fn connect(
        config: &NatsSourceConfig,
        base_dir: &Path,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<JetStream, SourceError> {
        Ok(JetStream {
            client: connect(config, base_dir, deadline).await?,
            prefix: api_prefix(config),
            timeout,
        })
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The one API request: `suffix` after the prefix (`STREAM.INFO.S`), a
    /// JSON body, an answer by `deadline`; the API's own error is an error.
    pub async fn request<T: DeserializeOwned>(
        &self,
        suffix: &str,
        body: String,
        deadline: Instant,
    ) -> Result<T, JsError> {
        let subject = format!("{}.{suffix}", self.prefix);
        let timeout =
            remaining(deadline, &subject).map_err(|e| JsError::transport(e.to_string()))?;
        let request = async_nats::Request::new()
            .payload(body.into())
            .timeout(Some(timeout));
        let reply = self
            .client
            .send_request(subject.clone(), request)
            .await
            .map_err(|e| JsError::transport(format!("{subject}: {e}")))?;
        decode_api(&subject, &reply.payload)
    }

    /// [`Self::request`] within the connection's request timeout.
    pub async fn api<T: DeserializeOwned>(
        &self,
        suffix: &str,
        body: serde_json::Value,
    ) -> Result<T, JsError> {
        self.request(suffix, body.to_string(), Instant::now() + self.timeout)
            .await
    }

    /// A stream's config as JetStream returns it (every field, for read-modify-write).
    pub async fn stream_config(&self, stream: &str) -> Result<serde_json::Value, JsError> {
        let info: serde_json::Value = self
            .api(&format!("STREAM.INFO.{stream}"), serde_json::json!({}))
            .await?;
        info.get("config").cloned().ok_or_else(|| {
            JsError::transport(format!("STREAM.INFO.{stream}: answer without `config`"))
        })
    }

    /// Writes back a whole stream config (read with [`Self::stream_config`]).
    pub async fn update_stream(&self, config: &serde_json::Value) -> Result<(), JsError> {
        let name = config["name"].as_str().unwrap_or_default();
        let _: serde_json::Value = self
            .api(&format!("STREAM.UPDATE.{name}"), config.clone())
            .await?;
        Ok(())
    }

    /// Creates the stream unless it exists (its config is then left alone).
    pub async fn ensure_stream(&self, config: serde_json::Value) -> Result<(), JsError> {
        let name = config["name"].as_str().unwrap_or_default().to_owned();
        match self.stream_config(&name).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == ERR_STREAM_NOT_FOUND => {
                let created: Result<serde_json::Value, JsError> =
                    self.api(&format!("STREAM.CREATE.{name}"), config).await;
                match created {
                    // Another agent created it first.
                    Err(e) if e.message.contains("already in use") => Ok(()),
                    other => other.map(drop),
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// `nats://user:pass@host:4222` → (`nats://host:4222`, user, pass).
fn split_userinfo(url: &str) -> (String, Option<String>, Option<String>) {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return (url.to_owned(), None, None);
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    let Some(at) = url[scheme_end..authority_end].rfind('@') else {
        return (url.to_owned(), None, None);
    };
    let userinfo = &url[scheme_end..scheme_end + at];
    let stripped = format!("{}{}", &url[..scheme_end], &url[scheme_end + at + 1..]);
    match userinfo.split_once(':') {
        Some((u, p)) => (stripped, Some(percent_decode(u)), Some(percent_decode(p))),
        None => (stripped, Some(percent_decode(userinfo)), None),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_moved_out_of_the_url() {
        assert_eq!(
            split_userinfo("nats://app:s%40cret@127.0.0.1:4223"),
            (
                "nats://127.0.0.1:4223".to_owned(),
                Some("app".to_owned()),
                Some("s@cret".to_owned())
            )
        );
        assert_eq!(
            split_userinfo("nats://tok@h:1"),
            ("nats://h:1".to_owned(), Some("tok".to_owned()), None)
        );
        assert_eq!(
            split_userinfo("nats://h:1"),
            ("nats://h:1".to_owned(), None, None)
        );
    }

    #[test]
    fn api_errors_are_errors_naming_the_subject() {
        let e = decode_api::<serde_json::Value>(
            "$JS.API.STREAM.LIST",
            br#"{"type":"x","error":{"code":503,"err_code":10039,"description":"jetstream not enabled"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, 10039);
        assert_eq!(
            SourceError::from(e).to_string(),
            "$JS.API.STREAM.LIST: JetStream API error 503 (10039): jetstream not enabled"
        );
    }
}
