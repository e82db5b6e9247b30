//! The per-evaluation store state: a WASI context that grants nothing, a
//! deterministic clock and RNG, a memory cap, and bounded log/stderr capture.

use super::limits::{EvaluationLimits, MAX_LOG_BYTES, MAX_LOG_LINES, MAX_STDERR_BYTES};
use gatekeeper_model::{LogLevel, Timestamp};
use rand::SeedableRng;
use std::time::Duration;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

pub(crate) struct GateState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: MemoryCap,
    stderr: MemoryOutputPipe,
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
        let stderr = MemoryOutputPipe::new(MAX_STDERR_BYTES);
        let since_epoch = Duration::from_millis(taken_at.timestamp_millis().max(0) as u64);
        // No preopened dirs, no env, no args, no network: the builder grants
        // nothing unless asked. Clocks and randomness are made deterministic.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(SnapshotClock(since_epoch))
            .monotonic_clock(FrozenMonotonicClock)
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
            limits: MemoryCap {
                limit: limits.memory_bytes,
                hit: false,
            },
            stderr,
            gate,
            log_lines: 0,
            log_bytes: 0,
            log_dropped: 0,
        }
    }

    pub(crate) fn memory_limit_hit(&self) -> bool {
        self.limits.hit
    }

    /// What the gate wrote to stderr (e.g. a panic message), trimmed.
    pub(crate) fn stderr_text(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = sanitize(String::from_utf8_lossy(&bytes).trim());
        (!text.is_empty()).then_some(text)
    }

    pub(crate) fn log_line(&mut self, level: LogLevel, message: &str) {
        if self.log_lines >= MAX_LOG_LINES || self.log_bytes + message.len() > MAX_LOG_BYTES {
            self.log_dropped += 1;
            return;
        }
        self.log_lines += 1;
        self.log_bytes += message.len();
        let message = sanitize(message);
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

/// Escapes control characters so a gate cannot forge terminal output or log lines.
pub(crate) fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

impl WasiView for GateState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory; growing past the cap traps (and is remembered, so the
/// failure is reported as a memory limit, not a generic trap).
pub(crate) struct MemoryCap {
    limit: usize,
    hit: bool,
}

/// Table elements a gate may have; far above what Rust gates use.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            wasmtime::bail!(
                "memory limit of {} bytes reached (asked for {desired})",
                self.limit
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!("table limit of {MAX_TABLE_ELEMENTS} elements reached");
        }
        Ok(true)
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

/// A monotonic clock that never moves: elapsed time inside a gate is zero.
struct FrozenMonotonicClock;

impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}
