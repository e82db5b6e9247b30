//! The per-call store state: a WASI context that grants nothing, a
//! deterministic clock and RNG, one memory budget for the whole gate
//! instance, and bounded log/output capture.

use super::limits::{
    EvaluationLimits, MAX_CORE_INSTANCES, MAX_LOG_BYTES, MAX_LOG_LINES, MAX_MEMORIES,
    MAX_TABLE_ELEMENTS, MAX_TABLES, TABLE_ELEMENT_BYTES,
};
use super::wasi::{GateOutput, VirtualClock};
use crate::text::untrusted_line;
use gatekeeper_model::{LogLevel, Timestamp};
use rand::SeedableRng;
use std::time::Duration;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// Characters of a gate's output quoted in an error.
const OUTPUT_SHOWN_CHARS: usize = 400;

pub(crate) struct GateState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The virtual monotonic clock (nanoseconds); see `wasi::VirtualClock`.
    virtual_now: u64,
    pub(crate) limits: GateLimiter,
    output: GateOutput,
    gate: String,
    log_lines: usize,
    log_bytes: usize,
    log_dropped: usize,
}

impl GateState {
    pub(crate) fn new(
        taken_at: Timestamp,
        seed: u64,
        limits: &EvaluationLimits,
        gate: String,
    ) -> Self {
        let output = GateOutput::default();
        let since_epoch = Duration::from_millis(taken_at.timestamp_millis().max(0) as u64);
        // No preopened dirs, no env, no args, stdin closed: the builder grants
        // nothing unless asked. The wall clock and randomness are deterministic.
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .wall_clock(SnapshotClock(since_epoch))
            .secure_random(rand::rngs::SmallRng::seed_from_u64(seed))
            .insecure_random(rand::rngs::SmallRng::seed_from_u64(seed.rotate_left(17)))
            .insecure_random_seed(u128::from(seed))
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        GateState {
            wasi,
            table: ResourceTable::new(),
            virtual_now: 0,
            limits: GateLimiter::new(limits.memory_bytes),
            output,
            gate,
            log_lines: 0,
            log_bytes: 0,
            log_dropped: 0,
        }
    }

    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    pub(crate) fn virtual_clock(&mut self) -> VirtualClock<'_> {
        VirtualClock {
            now: &mut self.virtual_now,
            table: &mut self.table,
        }
    }

    /// The end of what the gate wrote to stdout/stderr (a panic message
    /// comes last), on one line, or `None` when it wrote nothing.
    pub(crate) fn output_text(&self) -> Option<String> {
        let (tail, written) = self.output.tail();
        let tail = tail.trim_end();
        let start = tail
            .char_indices()
            .rev()
            .nth(OUTPUT_SHOWN_CHARS - 1)
            .map_or(0, |(i, _)| i);
        let shown = untrusted_line(tail[start..].trim_start());
        if shown.is_empty() {
            return None;
        }
        Some(if start > 0 || written > tail.len() as u64 {
            format!(
                "…{shown} (the last {} of {written} bytes)",
                tail.len() - start
            )
        } else {
            shown
        })
    }

    pub(crate) fn log_line(&mut self, level: LogLevel, message: &str) {
        if self.log_lines >= MAX_LOG_LINES || self.log_bytes + message.len() > MAX_LOG_BYTES {
            self.log_dropped += 1;
            return;
        }
        self.log_lines += 1;
        self.log_bytes += message.len();
        let message = untrusted_line(message);
        let gate = self.gate.as_str();
        match level {
            LogLevel::Debug => tracing::debug!(target: "gate", gate, "{message}"),
            LogLevel::Info => tracing::info!(target: "gate", gate, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "gate", gate, "{message}"),
            LogLevel::Error => tracing::error!(target: "gate", gate, "{message}"),
        }
    }

    pub(crate) fn flush_log_summary(&mut self) {
        if self.log_dropped > 0 {
            tracing::warn!(
                target: "gate",
                gate = self.gate.as_str(),
                dropped = self.log_dropped,
                "gate exceeded its log budget ({MAX_LOG_LINES} lines / {MAX_LOG_BYTES} bytes per evaluation); lines dropped"
            );
            self.log_dropped = 0;
        }
    }
}

impl WasiView for GateState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// One budget for the whole gate instance: every linear memory and every
/// table of every core instance it creates count against `limit` together,
/// and the number of core instances, memories and tables is capped. Growing
/// past the budget traps, and is remembered so the failure is reported as
/// the memory limit, not as a generic trap.
pub(crate) struct GateLimiter {
    limit: usize,
    /// Bytes of memory and table the instance holds now.
    used: usize,
    /// The request that went over the budget.
    pub(crate) hit: Option<usize>,
}

impl GateLimiter {
    fn new(limit: usize) -> Self {
        GateLimiter {
            limit,
            used: 0,
            hit: None,
        }
    }

    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            self.hit = Some(total);
            wasmtime::bail!(
                "memory limit of {} bytes for the whole gate reached (it asked for {total})",
                self.limit
            );
        }
        self.used = total;
        Ok(true)
    }
}

impl ResourceLimiter for GateLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!("table limit of {MAX_TABLE_ELEMENTS} elements reached");
        }
        self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        )
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// The wall clock a gate sees: always the snapshot's time.
struct SnapshotClock(Duration);

impl HostWallClock for SnapshotClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}
