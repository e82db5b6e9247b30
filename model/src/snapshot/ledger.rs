//! Gatekeeper's own record: phases, open incidents, attestations.

use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// Facts Gatekeeper itself recorded: phase history, incidents, attestations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LedgerFacts {
    pub phase_history: Vec<PhaseRecord>,
    pub incidents: Vec<Incident>,
    pub attestations: Vec<Attestation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    pub phase: String,
    pub verdict: crate::Decision,
    pub at: Timestamp,
    /// The same verdict was recorded until then with no gap longer than the
    /// recorder's (15 m): one record stands for the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

impl PhaseRecord {
    /// The last time this verdict is known to have held.
    pub fn last_seen(&self) -> Timestamp {
        self.until.unwrap_or(self.at).max(self.at)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub opened_at: Timestamp,
    #[serde(default)]
    pub closed_at: Option<Timestamp>,
    #[serde(default)]
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attestation {
    pub phase: String,
    pub criterion: String,
    pub by: String,
    pub at: Timestamp,
    #[serde(default)]
    pub note: Option<String>,
}
