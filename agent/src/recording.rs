//! Recorded snapshots: one snapshot (`{"schema_version":…}`) or a recording
//! of several (`{"snapshots":[…]}`, oldest first, the last is current), as
//! `check --record` writes them and `check --snapshot` reads them.
//!
//! Read as untrusted input: a regular file under a size cap, checked for
//! duplicate keys in one streaming pass, then decoded straight into the
//! typed model (no intermediate JSON tree, so memory stays near the file's
//! size), and refused when a name that must be unique appears twice.

use gatekeeper_model::{SNAPSHOT_SCHEMA_VERSION, Snapshot};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;

/// A recorded snapshot, or a recording: earlier snapshots then the current one.
#[derive(Debug, Clone)]
pub struct Recording {
    pub current: Snapshot,
    /// Oldest first.
    pub history: Vec<Snapshot>,
}

/// A snapshot and the history before it as `--snapshot` reads them: the
/// snapshot alone, or `{"snapshots": […]}` oldest first.
pub fn to_json(current: &Snapshot, history: &[Snapshot]) -> String {
    if history.is_empty() {
        serde_json::to_string_pretty(current)
    } else {
        let all: Vec<&Snapshot> = history.iter().chain([current]).collect();
        serde_json::to_string_pretty(&serde_json::json!({ "snapshots": all }))
    }
    .expect("snapshots always encode")
}

/// `<taken_at>-<phase>`: the name a recorded snapshot (`.json`) and its
/// statement (`.intoto.json`) share.
pub fn file_stem(taken_at: gatekeeper_model::Timestamp, phase: &str) -> String {
    format!("{}-{phase}", taken_at.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Why a recording file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct RecordingError {
    pub path: String,
    pub problem: BadRecording,
}

/// What is wrong with a recording's bytes.
#[derive(Debug, thiserror::Error)]
pub enum BadRecording {
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error("not a JSON object")]
    NotAnObject,
    #[error("a file is either a snapshot or a recording (`{{\"snapshots\": […]}}`), not both")]
    Both,
    /// A field that does not decode, with its path.
    #[error("field `{path}`: {error}")]
    Field {
        path: String,
        error: serde_json::Error,
    },
    #[error(
        "snapshot {index}: schema_version {version} is not supported (this gatekeeper reads 1..={SNAPSHOT_SCHEMA_VERSION})"
    )]
    Schema { index: usize, version: u32 },
    /// A name that must be unique appears twice (the model's words).
    #[error("snapshot {index}: {duplicate}; a snapshot must name each once")]
    Duplicate { index: usize, duplicate: String },
    #[error("snapshots must be in increasing taken_at order")]
    OutOfOrder,
    #[error("a recording needs at least one snapshot")]
    Empty,
}

/// Reads a snapshot or recording file of at most `limit` bytes, streaming
/// it twice (the key check, then the decoding): only the model is held.
pub fn read_recording(path: &Path, limit: u64) -> Result<Recording, RecordingError> {
    use std::io::{BufReader, Read, Seek};
    let read = || -> Result<Recording, BadRecording> {
        let mut file =
            crate::files::open_untrusted(path, limit, "a snapshot (runtime.max_snapshot_size)")?;
        let is_recording = check_keys(serde_json::Deserializer::from_reader(BufReader::new(
            (&mut file).take(limit),
        )))?;
        file.rewind()?;
        decode(
            serde_json::Deserializer::from_reader(BufReader::new(file.take(limit))),
            is_recording,
        )
    };
    read().map_err(|problem| RecordingError {
        path: path.display().to_string(),
        problem,
    })
}

/// Decodes a snapshot or a recording held in memory.
pub fn parse_recording(bytes: &[u8]) -> Result<Recording, BadRecording> {
    let is_recording = check_keys(serde_json::Deserializer::from_slice(bytes))?;
    decode(serde_json::Deserializer::from_slice(bytes), is_recording)
}

fn decode<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    is_recording: bool,
) -> Result<Recording, BadRecording> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RecordingFile {
        snapshots: Vec<Snapshot>,
    }
    let field = |e: serde_path_to_error::Error<serde_json::Error>| BadRecording::Field {
        path: e.path().to_string(),
        error: e.into_inner(),
    };
    let mut snapshots = if is_recording {
        serde_path_to_error::deserialize::<_, RecordingFile>(&mut de)
            .map_err(field)?
            .snapshots
    } else {
        vec![serde_path_to_error::deserialize::<_, Snapshot>(&mut de).map_err(field)?]
    };
    de.end().map_err(BadRecording::Json)?;
    for (index, s) in snapshots.iter().enumerate() {
        if s.schema_version == 0 || s.schema_version > SNAPSHOT_SCHEMA_VERSION {
            return Err(BadRecording::Schema {
                index,
                version: s.schema_version,
            });
        }
        if let Some(duplicate) = s.duplicate_name() {
            return Err(BadRecording::Duplicate { index, duplicate });
        }
    }
    if snapshots.windows(2).any(|w| w[0].taken_at >= w[1].taken_at) {
        return Err(BadRecording::OutOfOrder);
    }
    let current = snapshots.pop().ok_or(BadRecording::Empty)?;
    Ok(Recording {
        current,
        history: snapshots,
    })
}

/// One streaming pass over the document: it is JSON, no object has the same
/// key twice (JSON parsers disagree on which one wins), and whether the top
/// level is a recording (`snapshots`) or a snapshot.
fn check_keys<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
) -> Result<bool, BadRecording> {
    let top = Keys { top: true }
        .deserialize(&mut de)
        .map_err(BadRecording::Json)?;
    de.end().map_err(BadRecording::Json)?;
    match top {
        Some(keys) if keys.contains("snapshots") && keys.len() > 1 => Err(BadRecording::Both),
        Some(keys) => Ok(keys.contains("snapshots")),
        None => Err(BadRecording::NotAnObject),
    }
}

/// Walks any JSON value; refuses duplicate keys. At the top level it also
/// returns the object's keys (`None` when the top is not an object).
struct Keys {
    top: bool,
}

impl<'de> DeserializeSeed<'de> for Keys {
    type Value = Option<HashSet<String>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keys {
    type Value = Option<HashSet<String>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if keys.contains(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key `{}`",
                    crate::text::untrusted_line(&key)
                )));
            }
            map.next_value_seed(Keys { top: false })?;
            keys.insert(key);
        }
        Ok(self
            .top
            .then(|| keys.into_iter().map(Cow::into_owned).collect()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element_seed(Keys { top: false })?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t: &str, v: u32) -> String {
        format!(r#"{{"schema_version":{v},"taken_at":"{t}"}}"#)
    }

    #[test]
    fn recordings_must_be_ordered_and_supported() {
        let one = parse_recording(snap("2025-10-02T17:00:00Z", 1).as_bytes()).unwrap();
        assert!(one.history.is_empty());
        let rec = format!(
            r#"{{"snapshots":[{},{}]}}"#,
            snap("2025-10-02T17:00:00Z", 1),
            snap("2025-10-02T17:01:00Z", 1)
        );
        assert_eq!(parse_recording(rec.as_bytes()).unwrap().history.len(), 1);
        let backwards = format!(
            r#"{{"snapshots":[{},{}]}}"#,
            snap("2025-10-02T17:01:00Z", 1),
            snap("2025-10-02T17:00:00Z", 1)
        );
        assert_eq!(
            parse_recording(backwards.as_bytes())
                .unwrap_err()
                .to_string(),
            "snapshots must be in increasing taken_at order"
        );
        assert_eq!(
            parse_recording(snap("2025-10-02T17:00:00Z", 9).as_bytes())
                .unwrap_err()
                .to_string(),
            "snapshot 0: schema_version 9 is not supported (this gatekeeper reads 1..=1)"
        );
        assert_eq!(
            parse_recording(br#"{"schema_version":1}"#)
                .unwrap_err()
                .to_string(),
            "field `.`: missing field `taken_at` at line 1 column 20"
        );
        assert!(
            parse_recording(br#"{"schema_version":1,"taken_at":"x"}"#)
                .unwrap_err()
                .to_string()
                .starts_with("field `taken_at`:")
        );
    }

    #[test]
    fn duplicates_are_refused_not_resolved() {
        assert_eq!(
            parse_recording(
                br#"{"schema_version":1,"taken_at":"2025-10-02T17:00:00Z","taken_at":"2026-01-01T00:00:00Z"}"#
            )
            .unwrap_err().to_string(),
            "not valid JSON: duplicate key `taken_at` at line 1 column 64"
        );
        // Inside a map the model keeps as a map, too.
        let labels = br#"{"schema_version":1,"taken_at":"2025-10-02T17:00:00Z","kubernetes":{"status":"ok","facts":{"pods":[{"name":"p","labels":{"app":"a","app":"b"}}]}}}"#;
        assert!(
            parse_recording(labels)
                .unwrap_err()
                .to_string()
                .starts_with("not valid JSON: duplicate key `app`"),
        );
        let streams = br#"{"schema_version":1,"taken_at":"2025-10-02T17:00:00Z","nats":{"status":"ok","facts":{"streams_complete":true,"streams":[{"name":"S"},{"name":"S"}]}}}"#;
        assert_eq!(
            parse_recording(streams).unwrap_err().to_string(),
            "snapshot 0: stream `S` appears twice; a snapshot must name each once"
        );
        let consumers = br#"{"schema_version":1,"taken_at":"2025-10-02T17:00:00Z","nats":{"status":"ok","facts":{"streams":[{"name":"S","consumers":[{"name":"c"},{"name":"c"}]}]}}}"#;
        assert_eq!(
            parse_recording(consumers).unwrap_err().to_string(),
            "snapshot 0: consumer `S/c` appears twice; a snapshot must name each once"
        );
        let both = r#"{"snapshots":[],"schema_version":1,"taken_at":"2025-10-02T17:00:00Z"}"#;
        assert_eq!(
            parse_recording(both.as_bytes()).unwrap_err().to_string(),
            "a file is either a snapshot or a recording (`{\"snapshots\": […]}`), not both"
        );
        assert_eq!(
            parse_recording(b"[1]").unwrap_err().to_string(),
            "not a JSON object"
        );
        assert!(
            parse_recording(b"{\"a\":1} x")
                .unwrap_err()
                .to_string()
                .starts_with("not valid JSON: trailing characters")
        );
    }
}
