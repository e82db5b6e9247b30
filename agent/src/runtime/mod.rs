//! The gate runtime: the one place that runs `bindgen!` and owns the wasmtime
//! engines. Every call into a gate (metadata, reads, evaluate) runs on a gate
//! thread ([`pool`]), never on the async runtime, in a fresh `Store` from a
//! pre-instantiated component, with fuel, an epoch deadline, one memory
//! budget for the whole instance, a stack cap and an output cap. Gates see no
//! files, network, environment, arguments or real clock, and nothing they
//! can call waits ([`wasi`]): the clock is the snapshot's time and randomness
//! is seeded, so the same input gives the same output.

mod contract;
pub mod limits;
mod pool;
mod sandbox;
mod ticker;
mod wasi;

use crate::runtime::sandbox::GateState;
use gatekeeper_model as model;
pub use limits::{EvaluationLimits, LimitOverrides};
pub use pool::may_run_gates_here;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, Trap};

/// The interface whose version names the contract a component was built for.
const CONTRACT_TYPES: &str = "gatekeeper:gate/types@";

pub use contract::{Contract, SUPPORTED as SUPPORTED_CONTRACTS};
use contract::{from_wit_error, from_wit_evaluation, output_size, w};

/// `gatekeeper:gate@0.1.0 and gatekeeper:gate@0.2.0`
fn supported(joiner: &str) -> String {
    SUPPORTED_CONTRACTS
        .iter()
        .map(|v| format!("gatekeeper:gate@{v}"))
        .collect::<Vec<_>>()
        .join(joiner)
}

/// Bytes of each pooled memory slot kept resident between instances.
const POOL_KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// How the runtime builds its engines.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled gates are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling instance allocator (faster fresh instances).
    pub pooling: bool,
    /// The largest memory cap any gate will use (sizes the pool's slots).
    pub max_memory_bytes: usize,
    /// Gate threads: how many gates of a phase run at once.
    pub threads: usize,
}

/// One gate thread per core, at most 8.
pub fn default_gate_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8))
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: default_cache_dir(),
            pooling: true,
            max_memory_bytes: limits::DEFAULT_MEMORY_BYTES,
            threads: default_gate_threads(),
        }
    }
}

/// `$XDG_CACHE_HOME/gatekeeper` or `~/.cache/gatekeeper`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("gatekeeper").join("wasmtime"))
}

/// Why a gate could not be loaded. The phase treats it as that gate's error.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid wasm component: {0}")]
    Compile(String),
    /// The component imports something the host does not provide.
    #[error("imports the host does not provide: {0}")]
    Link(String),
    /// The component does not export the gate world.
    #[error("does not implement {}: {reason}", supported(" or "))]
    Interface { reason: String },
    /// The component was built for a contract version this host does not load.
    #[error(
        "built for gatekeeper:gate@{found}; this host loads {}",
        supported(" and ")
    )]
    Contract { found: String },
    /// The component needs more core instances, memories or tables than a gate may have.
    #[error("exceeds a sandbox limit: {0}")]
    SandboxLimit(String),
    /// The `sha256` pin in config does not match the bytes.
    #[error("sha256 mismatch: config pins {expected}, the gate is {actual}")]
    DigestMismatch { expected: String, actual: String },
    /// Calling `metadata` failed.
    #[error("metadata call failed: {0}")]
    Metadata(EvaluationError),
    /// The metadata is unusable (bad name, unknown source, newer schema).
    #[error("bad metadata: {0}")]
    BadMetadata(String),
    /// The engine could not be set up.
    #[error("engine: {0}")]
    Engine(String),
}

/// Why an evaluation gave no usable answer. Each becomes the gate's verdict
/// `error` with this text as the reason; the host keeps running.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvaluationError {
    #[error("ran out of fuel (limit {limit} units)")]
    FuelExhausted { limit: u64 },
    #[error("exceeded its deadline of {deadline_ms} ms (stopped after {elapsed_ms} ms)")]
    DeadlineExceeded { deadline_ms: u64, elapsed_ms: u64 },
    /// The phase's evaluation budget ran out before or while this gate ran.
    #[error("the phase's evaluation budget of {budget_ms} ms ran out ({})", if *.elapsed_ms == 0 { "before this gate started".to_owned() } else { format!("stopped after {elapsed_ms} ms") })]
    BudgetExhausted { budget_ms: u64, elapsed_ms: u64 },
    #[error("exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit { limit_bytes: usize },
    /// It created more core instances, memories or tables than a gate may.
    #[error("exceeded a sandbox limit: {0}")]
    ResourceLimit(String),
    #[error("overflowed its stack (limit {limit_bytes} bytes)")]
    StackOverflow { limit_bytes: usize },
    /// Any other trap, e.g. a panic (its message is included when the gate wrote one).
    #[error("trapped: {0}")]
    Trap(String),
    #[error("output of {bytes} bytes exceeds the limit of {limit} bytes")]
    OutputTooLarge { bytes: usize, limit: usize },
    #[error("malformed output: {0}")]
    MalformedOutput(String),
    /// The gate itself reported it could not decide.
    #[error("gate error: {0}")]
    Gate(model::GateError),
    #[error("could not start the sandbox: {0}")]
    Instantiate(String),
}

/// When a whole phase's evaluation must end (see [`limits::DEFAULT_PHASE_BUDGET`]).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub end: Instant,
    pub total: Duration,
}

impl Budget {
    pub fn starting_now(total: Duration) -> Self {
        Budget {
            end: Instant::now() + total,
            total,
        }
    }
}

struct EngineEntry {
    engine: Engine,
    linker: Linker<GateState>,
}

/// Owns the engines (one per distinct stack limit, since wasmtime sets the
/// stack size per engine), the epoch ticker and the gate threads.
pub struct GateRuntime {
    options: RuntimeOptions,
    engines: Mutex<BTreeMap<usize, Arc<EngineEntry>>>,
    /// Compiled components by (sha256, stack limit): several configured gates
    /// often share one component (a built-in with different params).
    components: Mutex<BTreeMap<(String, usize), Component>>,
    ticker: Arc<ticker::EpochTicker>,
    pool: Arc<pool::GatePool>,
}

impl GateRuntime {
    pub fn new(options: RuntimeOptions) -> Self {
        let pool = pool::GatePool::new(options.threads).expect("start the gate threads");
        GateRuntime {
            options,
            engines: Mutex::default(),
            components: Mutex::default(),
            ticker: Arc::new(ticker::EpochTicker::start()),
            pool: Arc::new(pool),
        }
    }

    /// How many gates run at once.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    fn engine_for(&self, stack_bytes: usize) -> Result<Arc<EngineEntry>, LoadError> {
        let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = engines.get(&stack_bytes) {
            return Ok(Arc::clone(e));
        }
        let engine = Engine::new(&self.engine_config(stack_bytes)?)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        contract::add_to_linker(&mut linker).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        self.ticker.add_engine(&engine);
        let entry = Arc::new(EngineEntry { engine, linker });
        engines.insert(stack_bytes, Arc::clone(&entry));
        Ok(entry)
    }

    fn engine_config(&self, stack_bytes: usize) -> Result<Config, LoadError> {
        let mut config = Config::new();
        // Gates are synchronous: concurrency support only slows calls down.
        config.concurrency_support(false);
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(stack_bytes);
        // wasmtime requires max_wasm_stack <= async_stack_size (2 MiB by
        // default) even though gates never run on async fibers.
        config.async_stack_size(stack_bytes.max(2 << 20));
        if let Some(dir) = &self.options.cache_dir {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir);
            let cache = wasmtime::Cache::new(cache).map_err(|e| {
                LoadError::Engine(format!("compile cache at {}: {e:#}", dir.display()))
            })?;
            config.cache(Some(cache));
        }
        if self.options.pooling {
            // The pool's per-component limits are the sandbox's (limits.rs):
            // an instance the limiter would refuse does not fit a slot either.
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(64)
                .total_core_instances(256)
                .total_memories(128)
                .total_tables(256)
                .max_core_instances_per_component(limits::MAX_CORE_INSTANCES as u32)
                .max_memories_per_component(limits::MAX_MEMORIES as u32)
                .max_tables_per_component(limits::MAX_TABLES as u32)
                .table_elements(limits::MAX_TABLE_ELEMENTS)
                .max_memory_size(self.options.max_memory_bytes)
                // Reset a freed slot's first pages with memset instead of
                // madvise: a fresh gate instance then takes no page faults
                // for the heap it always touches (measured in benches/).
                .linear_memory_keep_resident(POOL_KEEP_RESIDENT_BYTES)
                .table_keep_resident(64 << 10);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        Ok(config)
    }

    /// Drops the compiled components kept in memory, so the next load reads
    /// the on-disk cache (or compiles). For config reloads and benchmarks.
    pub fn forget_compiled(&self) {
        self.components
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Compiles (or loads from the cache) and checks a gate: its imports, the
    /// contract version it was built for, its exports, and its metadata.
    pub fn load(
        &self,
        wasm: &[u8],
        pinned_sha256: Option<&str>,
        limits: EvaluationLimits,
    ) -> Result<LoadedGate, LoadError> {
        let digest = hex::encode(Sha256::digest(wasm));
        if let Some(expected) = pinned_sha256
            && !expected.eq_ignore_ascii_case(&digest)
        {
            return Err(LoadError::DigestMismatch {
                expected: expected.to_owned(),
                actual: digest,
            });
        }
        if limits.memory_bytes > self.options.max_memory_bytes && self.options.pooling {
            return Err(LoadError::Engine(format!(
                "memory limit {} exceeds the runtime's pool slot size {}",
                limits.memory_bytes, self.options.max_memory_bytes
            )));
        }
        if limits.stack_bytes > limits::MAX_STACK_BYTES {
            return Err(LoadError::Engine(format!(
                "stack limit {} exceeds the maximum of {} bytes",
                limits.stack_bytes,
                limits::MAX_STACK_BYTES
            )));
        }
        let entry = self.engine_for(limits.stack_bytes)?;
        let key = (digest.clone(), limits.stack_bytes);
        let known = self
            .components
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let component = match known {
            Some(c) => c,
            None => {
                let c = Component::new(&entry.engine, wasm).map_err(|e| {
                    let text = format!("{e:#}");
                    // The pool's per-component limits are the sandbox's.
                    if text.contains("in the pooling allocator") {
                        LoadError::SandboxLimit(text)
                    } else {
                        LoadError::Compile(text)
                    }
                })?;
                self.components
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, c.clone());
                c
            }
        };
        let contract = check_imports(&entry.engine, &component)?;
        let linker = wasi::deny_unlinked(&entry.linker, &entry.engine, &component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre =
            contract::GatePre::new(contract, instance_pre).map_err(|e| LoadError::Interface {
                reason: format!("{e:#}"),
            })?;
        let mut gate = GateInner {
            entry,
            pre,
            contract,
            seed_base: u64::from_str_radix(&digest[..16], 16).unwrap_or(0),
            digest,
            limits,
            ticker: Arc::clone(&self.ticker),
            metadata: model::Metadata {
                name: String::new(),
                version: String::new(),
                description: String::new(),
                sources: vec![],
                params: vec![],
                snapshot_schema: 0,
            },
        };
        // Metadata is called on a gate thread too, but before the gate is shared.
        let pool = Arc::clone(&self.pool);
        let (metadata, returned) = pool
            .spawn(move || (gate.call_metadata(), gate))
            .wait()
            .map_err(|e| LoadError::Metadata(EvaluationError::Instantiate(e)))?;
        gate = returned;
        gate.metadata = metadata.map_err(LoadError::Metadata)?;
        check_metadata(&gate.metadata).map_err(LoadError::BadMetadata)?;
        Ok(LoadedGate {
            inner: Arc::new(gate),
            pool,
        })
    }
}

/// Refuses a component whose imports the host does not provide, or that was
/// built for a contract version the host does not load.
fn check_imports(engine: &Engine, component: &Component) -> Result<Contract, LoadError> {
    let names: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    if let Some(unknown) = names.iter().find(|n| !wasi::import_allowed(n)) {
        return Err(LoadError::Link(format!(
            "imports `{unknown}`, which gates are not given (a gate can only compute)"
        )));
    }
    let version = names
        .iter()
        .find_map(|n| n.strip_prefix(CONTRACT_TYPES))
        .ok_or_else(|| {
            LoadError::Interface { reason: format!(
                "it does not import `{CONTRACT_TYPES}<version>`, so the contract version it was built for is unknown"
            ) }
        })?;
    Contract::parse(version).ok_or_else(|| LoadError::Contract {
        found: version.to_owned(),
    })
}

fn check_metadata(md: &model::Metadata) -> Result<(), String> {
    if !model::is_kebab_id(&md.name) {
        return Err(format!(
            "name {:?} is not kebab-case",
            crate::text::untrusted_line(&md.name)
        ));
    }
    if let Some(s) = md
        .sources
        .iter()
        .find(|s| !model::SOURCE_NAMES.contains(&s.as_str()))
    {
        return Err(format!(
            "unknown fact source {:?} (known: {})",
            crate::text::untrusted_line(s),
            model::SOURCE_NAMES.join(", ")
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &md.params {
        if !model::is_param_name(&p.name) {
            return Err(format!(
                "param name {:?} is not a name ([a-z][a-z0-9_-]*, at most 64 characters)",
                crate::text::untrusted_line(&p.name)
            ));
        }
        if !seen.insert(p.name.as_str()) {
            return Err(format!("param `{}` is declared twice", p.name));
        }
    }
    if md.snapshot_schema == 0 || md.snapshot_schema > model::SNAPSHOT_SCHEMA_VERSION {
        return Err(format!(
            "built for snapshot schema {}, this host provides schema {}",
            md.snapshot_schema,
            model::SNAPSHOT_SCHEMA_VERSION
        ));
    }
    Ok(())
}

/// What a gate needs with given params, checked (see [`LoadedGate::needs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GateNeeds {
    /// The facts it reads: the host sends only these.
    pub reads: Vec<model::FactPath>,
    /// The history it needs (ms); `None` from a 0.1 gate, which cannot say.
    pub history_ms: Option<u64>,
    /// Every trigger it can raise; `None` from a 0.1 gate.
    pub triggers: Option<Vec<model::TriggerSpec>>,
    /// The attestations it reads.
    pub attestations: Vec<model::AttestationSpec>,
}

/// What one evaluation is given; the snapshot and history are JSON documents
/// already narrowed to the facts the gate reads (see [`LoadedGate::reads`]).
#[derive(Debug, Clone)]
pub struct EvaluationInput<'a> {
    pub taken_at: model::Timestamp,
    pub snapshot_json: &'a str,
    pub history_json: &'a [String],
    pub params_json: &'a str,
}

/// A compiled, checked gate, ready for many evaluations. Cheap to clone.
#[derive(Clone)]
pub struct LoadedGate {
    inner: Arc<GateInner>,
    pool: Arc<pool::GatePool>,
}

struct GateInner {
    entry: Arc<EngineEntry>,
    pre: contract::GatePre,
    contract: Contract,
    digest: String,
    /// The first 64 bits of the digest; mixed with the snapshot time to seed
    /// the gate's randomness.
    seed_base: u64,
    limits: EvaluationLimits,
    metadata: model::Metadata,
    ticker: Arc<ticker::EpochTicker>,
}

/// An evaluation running on a gate thread; [`PendingEvaluation::wait`] for it.
pub struct PendingEvaluation(pool::Pending<Result<model::Evaluation, EvaluationError>>);

impl PendingEvaluation {
    pub fn wait(self) -> Result<model::Evaluation, EvaluationError> {
        self.0
            .wait()
            .unwrap_or_else(|e| Err(EvaluationError::Instantiate(e)))
    }
}

/// The wall-clock limit one call runs under: the gate's deadline, or what
/// is left of the phase's budget when that is shorter.
#[derive(Debug, Clone, Copy)]
struct CallDeadline {
    limit: Duration,
    budget: Option<Duration>,
}

impl CallDeadline {
    fn of(limits: &EvaluationLimits, budget: Option<Budget>) -> Result<Self, EvaluationError> {
        let Some(b) = budget else {
            return Ok(CallDeadline {
                limit: limits.deadline,
                budget: None,
            });
        };
        let left = b.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(EvaluationError::BudgetExhausted {
                budget_ms: b.total.as_millis() as u64,
                elapsed_ms: 0,
            });
        }
        Ok(if left < limits.deadline {
            CallDeadline {
                limit: left,
                budget: Some(b.total),
            }
        } else {
            CallDeadline {
                limit: limits.deadline,
                budget: None,
            }
        })
    }
}

impl LoadedGate {
    pub fn metadata(&self) -> &model::Metadata {
        &self.inner.metadata
    }

    /// Hex sha256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    pub fn limits(&self) -> &EvaluationLimits {
        &self.inner.limits
    }

    /// The contract version the gate was built for.
    pub fn contract(&self) -> Contract {
        self.inner.contract
    }

    /// Asks the gate what it needs with these params (once per load and
    /// params): the facts it reads — every path must parse and lie within
    /// its declared sources — and, from a 0.2 gate, its history, triggers
    /// and attestations.
    pub fn needs(&self, params_json: &str) -> Result<GateNeeds, EvaluationError> {
        let inner = Arc::clone(&self.inner);
        let params = params_json.to_owned();
        self.pool
            .spawn(move || inner.call_needs(&params))
            .wait()
            .unwrap_or_else(|e| Err(EvaluationError::Instantiate(e)))
    }

    /// One evaluation in a fresh sandbox; waits for it. It runs right here
    /// when this thread may run gates ([`pool::may_run_gates_here`]: a gate
    /// thread, or the main thread outside the async runtime with a stack as
    /// large as a gate thread's), else on a gate thread. Never panics on
    /// guest behaviour.
    pub fn evaluate(
        &self,
        input: &EvaluationInput<'_>,
    ) -> Result<model::Evaluation, EvaluationError> {
        self.evaluate_within(input, None)
    }

    /// [`LoadedGate::evaluate`] within a phase's `budget`.
    pub fn evaluate_within(
        &self,
        input: &EvaluationInput<'_>,
        budget: Option<Budget>,
    ) -> Result<model::Evaluation, EvaluationError> {
        if pool::may_run_gates_here() {
            let wit_input = w::GateInput {
                snapshot: input.snapshot_json.to_owned(),
                history: input.history_json.to_vec(),
                params: input.params_json.to_owned(),
            };
            return self.inner.call_evaluate(input.taken_at, &wit_input, budget);
        }
        self.start_evaluate(input, budget).wait()
    }

    /// Starts one evaluation on a gate thread, within the phase's `budget`.
    pub fn start_evaluate(
        &self,
        input: &EvaluationInput<'_>,
        budget: Option<Budget>,
    ) -> PendingEvaluation {
        let inner = Arc::clone(&self.inner);
        let taken_at = input.taken_at;
        let wit_input = w::GateInput {
            snapshot: input.snapshot_json.to_owned(),
            history: input.history_json.to_vec(),
            params: input.params_json.to_owned(),
        };
        PendingEvaluation(
            self.pool
                .spawn(move || inner.call_evaluate(taken_at, &wit_input, budget)),
        )
    }
}

impl GateInner {
    fn new_store(
        &self,
        taken_at: model::Timestamp,
        seed: u64,
        deadline: &CallDeadline,
    ) -> Result<Store<GateState>, EvaluationError> {
        let state = GateState::new(taken_at, seed, &self.limits, self.metadata.name.clone());
        let mut store = Store::new(&self.entry.engine, state);
        store.limiter(|s| &mut s.limits);
        store
            .set_fuel(self.limits.fuel)
            .map_err(|e| EvaluationError::Instantiate(format!("{e:#}")))?;
        store.set_epoch_deadline(limits::ticks_for(deadline.limit));
        store.epoch_deadline_trap();
        // Calls out of the gate cost fuel too (see limits::HOST_CALL_FUEL).
        store.call_hook(|mut ctx, hook| {
            if matches!(hook, wasmtime::CallHook::CallingHost) {
                let left = ctx.get_fuel()?;
                if left < limits::HOST_CALL_FUEL {
                    ctx.set_fuel(0)?;
                    return Err(Trap::OutOfFuel.into());
                }
                ctx.set_fuel(left - limits::HOST_CALL_FUEL)?;
            }
            Ok(())
        });
        Ok(store)
    }

    /// Runs `call` in a fresh sandbox: a new store with this gate's limits, the
    /// epoch ticker running, the component instantiated. Guest failures come
    /// back classified; log overflow is reported either way.
    fn in_sandbox<R>(
        &self,
        taken_at: model::Timestamp,
        seed: u64,
        budget: Option<Budget>,
        call: impl FnOnce(&contract::Gate, &mut Store<GateState>) -> wasmtime::Result<R>,
    ) -> Result<R, EvaluationError> {
        let deadline = CallDeadline::of(&self.limits, budget)?;
        let started = Instant::now();
        let mut store = self.new_store(taken_at, seed, &deadline)?;
        let _running = self.ticker.running();
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|gate| call(&gate, &mut store))
            .map_err(|e| self.classify(e, &store, &deadline, started.elapsed()));
        let fuel_used = self
            .limits
            .fuel
            .saturating_sub(store.get_fuel().unwrap_or(0));
        store.data_mut().flush_log_summary();
        tracing::debug!(
            fuel_used,
            elapsed_us = started.elapsed().as_micros() as u64,
            "sandbox call finished"
        );
        result
    }

    fn call_metadata(&self) -> Result<model::Metadata, EvaluationError> {
        let md = self.in_sandbox(model::Timestamp::default(), 0, None, |gate, store| {
            gate.call_metadata(store)
        })?;
        let size = md.name.len()
            + md.version.len()
            + md.description.len()
            + md.sources.iter().map(String::len).sum::<usize>()
            + md.params
                .iter()
                .map(|p| {
                    p.name.len()
                        + p.description.len()
                        + p.default_json.as_ref().map_or(0, String::len)
                })
                .sum::<usize>();
        if size > self.limits.output_bytes {
            return Err(EvaluationError::OutputTooLarge {
                bytes: size,
                limit: self.limits.output_bytes,
            });
        }
        let params = md
            .params
            .into_iter()
            .map(|p| {
                let default = p
                    .default_json
                    .map(|d| {
                        serde_json::from_str(&d).map_err(|e| {
                            EvaluationError::MalformedOutput(format!(
                                "param {} default is not JSON: {e}",
                                crate::text::untrusted_line(&p.name)
                            ))
                        })
                    })
                    .transpose()?;
                Ok(model::ParamSpec {
                    name: p.name,
                    description: p.description,
                    default,
                })
            })
            .collect::<Result<Vec<_>, EvaluationError>>()?;
        Ok(model::Metadata {
            name: md.name,
            version: md.version,
            description: md.description,
            sources: md.sources,
            params,
            snapshot_schema: md.snapshot_schema,
        })
    }

    fn call_needs(&self, params_json: &str) -> Result<GateNeeds, EvaluationError> {
        let needs = self
            .in_sandbox(model::Timestamp::default(), 0, None, |gate, store| {
                gate.call_needs(store, params_json)
            })?
            .map_err(|e| EvaluationError::Gate(from_wit_error(e)))?;
        let size: usize = needs.reads.iter().map(String::len).sum::<usize>()
            + needs
                .triggers
                .iter()
                .map(|t| t.id.len() + t.title.len())
                .sum::<usize>()
            + needs
                .attestations
                .iter()
                .map(|a| a.phase.len() + a.criterion.len() + a.title.len())
                .sum::<usize>();
        if size > self.limits.output_bytes {
            return Err(EvaluationError::OutputTooLarge {
                bytes: size,
                limit: self.limits.output_bytes,
            });
        }
        let bad = |m: String| EvaluationError::MalformedOutput(format!("needs: {m}"));
        let mut reads = Vec::with_capacity(needs.reads.len());
        for path in &needs.reads {
            let fact = model::FactPath::parse(path).map_err(EvaluationError::MalformedOutput)?;
            if !self.metadata.sources.iter().any(|s| s == fact.source()) {
                return Err(EvaluationError::MalformedOutput(format!(
                    "reads `{path}` but declares only the sources [{}]",
                    self.metadata.sources.join(", ")
                )));
            }
            reads.push(fact);
        }
        reads.sort();
        reads.dedup();
        if needs.history_ms > limits::MAX_DECLARED_HISTORY.as_millis() as u64 {
            return Err(bad(format!(
                "a history of {} is more than the {} a gate may ask for",
                model::format_duration_ms(needs.history_ms),
                model::format_duration(limits::MAX_DECLARED_HISTORY)
            )));
        }
        let mut ids = std::collections::BTreeSet::new();
        let mut triggers = Vec::new();
        for t in needs.triggers {
            if !model::is_kebab_id(&t.id) {
                return Err(bad(format!(
                    "trigger id {:?} is not kebab-case",
                    crate::text::untrusted_line(&t.id)
                )));
            }
            if !ids.insert(t.id.clone()) {
                return Err(bad(format!("trigger `{}` is declared twice", t.id)));
            }
            triggers.push(model::TriggerSpec {
                id: t.id,
                title: t.title,
                severity: contract::severity(t.severity),
            });
        }
        let mut attestations = Vec::new();
        for a in needs.attestations {
            if !model::is_kebab_id(&a.phase) || !model::is_kebab_id(&a.criterion) {
                return Err(bad(format!(
                    "attestation {:?} / {:?}: phase and criterion must be kebab-case",
                    crate::text::untrusted_line(&a.phase),
                    crate::text::untrusted_line(&a.criterion)
                )));
            }
            attestations.push(model::AttestationSpec {
                phase: a.phase,
                criterion: a.criterion,
                title: a.title,
            });
        }
        let declared = self.contract != Contract::V0_1;
        Ok(GateNeeds {
            reads,
            history_ms: declared.then_some(needs.history_ms),
            triggers: declared.then_some(triggers),
            attestations,
        })
    }

    fn call_evaluate(
        &self,
        taken_at: model::Timestamp,
        input: &w::GateInput,
        budget: Option<Budget>,
    ) -> Result<model::Evaluation, EvaluationError> {
        let span = tracing::debug_span!("gate.evaluate", gate = %self.metadata.name);
        let _enter = span.enter();
        let seed = (taken_at.timestamp_millis() as u64) ^ self.seed_base;
        let evaluation = self
            .in_sandbox(taken_at, seed, budget, |gate, store| {
                gate.call_evaluate(store, input)
            })?
            .map_err(|e| EvaluationError::Gate(from_wit_error(e)))?;
        let bytes = output_size(&evaluation);
        if bytes > self.limits.output_bytes {
            return Err(EvaluationError::OutputTooLarge {
                bytes,
                limit: self.limits.output_bytes,
            });
        }
        let evaluation = from_wit_evaluation(evaluation)?;
        let problems = evaluation.problems();
        if !problems.is_empty() {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(EvaluationError::MalformedOutput(text.join("; ")));
        }
        Ok(evaluation)
    }

    /// Turns a wasmtime error into the reason the gate failed.
    fn classify(
        &self,
        error: wasmtime::Error,
        store: &Store<GateState>,
        deadline: &CallDeadline,
        elapsed: Duration,
    ) -> EvaluationError {
        let elapsed_ms = elapsed.as_millis() as u64;
        if let Some(trap) = error.downcast_ref::<Trap>() {
            match trap {
                Trap::OutOfFuel => {
                    return EvaluationError::FuelExhausted {
                        limit: self.limits.fuel,
                    };
                }
                Trap::Interrupt => {
                    return match deadline.budget {
                        Some(total) => EvaluationError::BudgetExhausted {
                            budget_ms: total.as_millis() as u64,
                            elapsed_ms: elapsed_ms.max(1),
                        },
                        None => EvaluationError::DeadlineExceeded {
                            deadline_ms: deadline.limit.as_millis() as u64,
                            elapsed_ms,
                        },
                    };
                }
                Trap::StackOverflow => {
                    return EvaluationError::StackOverflow {
                        limit_bytes: self.limits.stack_bytes,
                    };
                }
                _ => {}
            }
        }
        if store.data().limits.hit.is_some() {
            return EvaluationError::MemoryLimit {
                limit_bytes: self.limits.memory_bytes,
            };
        }
        let root = error.root_cause().to_string();
        if root.contains("resource limit exceeded") {
            return EvaluationError::ResourceLimit(format!(
                "{root} (a gate may have at most {} core instances, {} memories and {} tables)",
                limits::MAX_CORE_INSTANCES,
                limits::MAX_MEMORIES,
                limits::MAX_TABLES
            ));
        }
        // The trap itself (or the root cause), not wasmtime's backtrace header.
        let mut message = match error.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => wasi::denied_call(&root).unwrap_or(root),
        };
        if let Some(output) = store.data().output_text() {
            message = format!("{message}; gate output: {output}");
        }
        EvaluationError::Trap(message)
    }
}
