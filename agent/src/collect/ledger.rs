//! The ledger, read and folded into the snapshot's `ledger` section (for
//! `check`; `watch` reads it through its journal, only what is new).

use super::{Collector, SourceError};
use crate::config::Config;
use crate::ledger::{Ledger, fold};
use gatekeeper_model::LedgerFacts;
use std::time::Duration;

/// Reads the ledger into the snapshot's `ledger` section (for `check`).
pub struct LedgerCollector<'c> {
    config: &'c Config,
}

impl<'c> LedgerCollector<'c> {
    pub fn new(config: &'c Config) -> Self {
        LedgerCollector { config }
    }
}

impl Collector for LedgerCollector<'_> {
    type Facts = LedgerFacts;
    const NAME: &'static str = "ledger";

    fn timeout(&self) -> Duration {
        crate::config::DEFAULT_SOURCE_TIMEOUT
    }

    async fn collect(&self, _deadline: tokio::time::Instant) -> Result<LedgerFacts, SourceError> {
        let ledger = Ledger::open_to_read(self.config).await?;
        let records = ledger.read().await?;
        Ok(fold(&records))
    }

    fn complete(_facts: &LedgerFacts) -> bool {
        true
    }
}
