//! NATS: one way to connect with `[sources.nats]` (credentials, TLS,
//! domain), and the JetStream API requests the collector, the ledger, the
//! lease and the NATS actions make (`$JS.API.…` JSON, as the `nats` CLI
//! sends them), through one request helper with one error type.

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

    /// Publishes and waits for the stream's ack; `expected_last` is a
    /// compare-and-set on the subject's last sequence (0: no message yet).
    pub async fn publish(
        &self,
        subject: &str,
        payload: Vec<u8>,
        expected_last: Option<u64>,
    ) -> Result<u64, JsError> {
        #[derive(Deserialize)]
        struct PubAck {
            seq: u64,
        }
        let mut headers = async_nats::HeaderMap::new();
        if let Some(rev) = expected_last {
            headers.insert("Nats-Expected-Last-Subject-Sequence", rev.to_string());
        }
        let request = async_nats::Request::new()
            .payload(payload.into())
            .headers(headers)
            .timeout(Some(self.timeout));
        let reply = self
            .client
            .send_request(subject.to_owned(), request)
            .await
            .map_err(|e| JsError::transport(format!("publish to {subject}: {e}")))?;
        let ack: PubAck = decode_api(subject, &reply.payload)?;
        Ok(ack.seq)
    }

    /// The last message on `subject` in `stream`: (sequence, payload).
    pub async fn last_by_subject(
        &self,
        stream: &str,
        subject: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, JsError> {
        #[derive(Deserialize)]
        struct Stored {
            seq: u64,
            #[serde(default)]
            data: String,
        }
        #[derive(Deserialize)]
        struct Answer {
            message: Stored,
        }
        let answer: Result<Answer, JsError> = self
            .api(
                &format!("STREAM.MSG.GET.{stream}"),
                serde_json::json!({ "last_by_subj": subject }),
            )
            .await;
        match answer {
            Ok(a) => {
                use base64::Engine as _;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(a.message.data.as_bytes())
                    .map_err(|e| {
                        JsError::transport(format!("{stream} {subject}: bad payload: {e}"))
                    })?;
                Ok(Some((a.message.seq, data)))
            }
            Err(e) if e.code == ERR_NO_MESSAGE => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every message of `stream` on `filter`, oldest first, read with an
    /// ephemeral pull consumer that JetStream forgets after 30s.
    pub async fn read_all(&self, stream: &str, filter: &str) -> Result<Vec<Vec<u8>>, JsError> {
        Ok(self
            .read_from(stream, filter, 1)
            .await?
            .into_iter()
            .map(|(_, payload)| payload)
            .collect())
    }

    /// The messages of `stream` on `filter` from stream sequence `start` on,
    /// oldest first, each with its stream sequence (so the next read can
    /// start after the last one).
    pub async fn read_from(
        &self,
        stream: &str,
        filter: &str,
        start: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, JsError> {
        use futures::StreamExt as _;
        #[derive(Deserialize)]
        struct Created {
            name: String,
            num_pending: u64,
        }
        let mut config = serde_json::json!({
            "deliver_policy": "all",
            "ack_policy": "none",
            "filter_subject": filter,
            "inactive_threshold": 30_000_000_000u64,
            "mem_storage": true,
            "num_replicas": 1,
        });
        if start > 1 {
            config["deliver_policy"] = "by_start_sequence".into();
            config["opt_start_seq"] = start.into();
        }
        let created: Created = self
            .api(
                &format!("CONSUMER.CREATE.{stream}"),
                serde_json::json!({ "stream_name": stream, "config": config }),
            )
            .await?;
        let inbox = self.client.new_inbox();
        let mut sub = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| JsError::transport(format!("subscribe: {e}")))?;
        let next = format!(
            "{}.CONSUMER.MSG.NEXT.{stream}.{}",
            self.prefix, created.name
        );
        let mut out = Vec::with_capacity(created.num_pending as usize);
        let deadline = Instant::now() + self.timeout * 4;
        while (out.len() as u64) < created.num_pending {
            let batch = (created.num_pending - out.len() as u64).min(1000);
            self.client
                .publish_with_reply(
                    next.clone(),
                    inbox.clone(),
                    serde_json::json!({ "batch": batch, "expires": 2_000_000_000u64 })
                        .to_string()
                        .into(),
                )
                .await
                .map_err(|e| JsError::transport(format!("{next}: {e}")))?;
            let mut got = 0;
            while got < batch {
                let msg = tokio::time::timeout_at(deadline, sub.next())
                    .await
                    .map_err(|_| {
                        JsError::transport(format!(
                            "{stream}: read {} of {} records before the timeout",
                            out.len(),
                            created.num_pending
                        ))
                    })?
                    .ok_or_else(|| JsError::transport(format!("{stream}: subscription closed")))?;
                if msg.status.is_some() {
                    // 404/408: this pull is over; ask again.
                    break;
                }
                let seq = msg
                    .reply
                    .as_deref()
                    .and_then(stream_sequence)
                    .ok_or_else(|| {
                        JsError::transport(format!(
                            "{stream}: a message without its JetStream metadata"
                        ))
                    })?;
                out.push((seq, msg.payload.to_vec()));
                got += 1;
            }
        }
        let _ = self
            .api::<serde_json::Value>(
                &format!("CONSUMER.DELETE.{stream}.{}", created.name),
                serde_json::json!({}),
            )
            .await;
        Ok(out)
    }
}

/// The stream sequence in a delivered message's reply subject:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.…` (9 tokens), or with a
/// domain and account hash `$JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.…`.
fn stream_sequence(reply: &str) -> Option<u64> {
    let tokens: Vec<&str> = reply.split('.').collect();
    if tokens.get(..2) != Some(&["$JS", "ACK"][..]) {
        return None;
    }
    let index = match tokens.len() {
        9 => 5,
        n if n >= 11 => 7,
        _ => return None,
    };
    tokens[index].parse().ok()
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

    #[test]
    fn stream_sequences_from_both_ack_formats() {
        assert_eq!(
            stream_sequence("$JS.ACK.S.C.1.42.7.1700000000000000000.3"),
            Some(42)
        );
        assert_eq!(
            stream_sequence("$JS.ACK.hub.ACCHASH.S.C.1.42.7.1700000000000000000.3.rand"),
            Some(42)
        );
        assert_eq!(stream_sequence("_INBOX.x"), None);
        assert_eq!(stream_sequence("$JS.ACK.S.C.1"), None);
    }
}
