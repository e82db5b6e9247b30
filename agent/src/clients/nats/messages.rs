//! Messages in a stream: publishing with a compare-and-set, getting one by
//! sequence or by subject, and reading a range with an ephemeral consumer.

use super::{ERR_NO_MESSAGE, JetStream, JsError, decode_api};
use serde::Deserialize;
use tokio::time::Instant;

/// A compare-and-set on a publish: the sequence the last message must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Of the subject published to (a KV key's revision).
    SubjectSequence(u64),
    /// Of the whole stream (the ledger's chain).
    StreamSequence(u64),
}

impl JetStream {
    /// Publishes and waits for the stream's ack; `expected` is a
    /// compare-and-set on the last sequence (0: no message yet).
    pub async fn publish(
        &self,
        subject: &str,
        payload: Vec<u8>,
        expected: Option<Expected>,
    ) -> Result<u64, JsError> {
        #[derive(Deserialize)]
        struct PubAck {
            seq: u64,
        }
        let mut headers = async_nats::HeaderMap::new();
        match expected {
            Some(Expected::SubjectSequence(seq)) => {
                headers.insert("Nats-Expected-Last-Subject-Sequence", seq.to_string())
            }
            Some(Expected::StreamSequence(seq)) => {
                headers.insert("Nats-Expected-Last-Sequence", seq.to_string())
            }
            None => {}
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

    /// The stream's first and last sequence (`last` 0: it never held a message).
    pub async fn stream_bounds(&self, stream: &str) -> Result<(u64, u64), JsError> {
        #[derive(Deserialize)]
        struct State {
            first_seq: u64,
            last_seq: u64,
        }
        #[derive(Deserialize)]
        struct Info {
            state: State,
        }
        let info: Info = self
            .api(&format!("STREAM.INFO.{stream}"), serde_json::json!({}))
            .await?;
        Ok((info.state.first_seq, info.state.last_seq))
    }

    /// The message at `seq` in `stream` (`None`: deleted or aged out).
    pub async fn message_at(&self, stream: &str, seq: u64) -> Result<Option<Vec<u8>>, JsError> {
        self.get_message(stream, serde_json::json!({ "seq": seq }))
            .await
            .map(|m| m.map(|(_, data)| data))
    }

    /// The last message on `subject` in `stream`: (sequence, payload).
    pub async fn last_by_subject(
        &self,
        stream: &str,
        subject: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, JsError> {
        self.get_message(stream, serde_json::json!({ "last_by_subj": subject }))
            .await
    }

    /// `STREAM.MSG.GET`: (sequence, payload), `None` when there is no such message.
    async fn get_message(
        &self,
        stream: &str,
        query: serde_json::Value,
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
        let answer: Result<Answer, JsError> =
            self.api(&format!("STREAM.MSG.GET.{stream}"), query).await;
        match answer {
            Ok(a) => {
                use base64::Engine as _;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(a.message.data.as_bytes())
                    .map_err(|e| JsError::transport(format!("{stream}: bad payload: {e}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
