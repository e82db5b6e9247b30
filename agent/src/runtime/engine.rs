//! [`GateRuntime`]: the engines (one per stack limit), the compiled
//! components, the epoch ticker and the gate threads; [`GateRuntime::load`]
//! and the checks a component passes before it is a [`LoadedGate`].

use super::call::GateInner;
use super::contract::{self, Contract};
use super::sandbox::GateState;
use super::sniff;
use super::{
    EvaluationError, EvaluationLimits, LoadError, LoadedGate, RuntimeOptions, limits, pool, ticker,
    wasi,
};
use gatekeeper_model as model;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

/// The interface whose version names the contract a component was built for.
const CONTRACT_TYPES: &str = "gatekeeper:gate/types@";

/// Bytes of each pooled memory slot kept resident between instances.
const POOL_KEEP_RESIDENT_BYTES: usize = 1 << 20;

pub(super) struct EngineEntry {
    pub(super) engine: Engine,
    pub(super) linker: Linker<GateState>,
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
                if let Some(e) = sniff::not_a_component(wasm) {
                    return Err(e);
                }
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
            .map_err(|e| LoadError::Metadata(EvaluationError::Instantiate(e.to_string())))?;
        gate = returned;
        gate.metadata = metadata.map_err(LoadError::Metadata)?;
        check_metadata(&gate.metadata)?;
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

/// Refuses metadata the host cannot use: a bad name, an unknown source, a
/// bad or repeated param name, a snapshot schema it does not provide.
fn check_metadata(md: &model::Metadata) -> Result<(), LoadError> {
    let bad = |m: String| Err(LoadError::BadMetadata(m));
    if !model::is_kebab_id(&md.name) {
        return bad(format!(
            "name {:?} is not kebab-case",
            crate::text::untrusted_line(&md.name)
        ));
    }
    if let Some(s) = md
        .sources
        .iter()
        .find(|s| !model::SOURCE_NAMES.contains(&s.as_str()))
    {
        return bad(format!(
            "unknown fact source {:?} (known: {})",
            crate::text::untrusted_line(s),
            model::SOURCE_NAMES.join(", ")
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &md.params {
        if !model::is_param_name(&p.name) {
            return bad(format!(
                "param name {:?} is not a name ([a-z][a-z0-9_-]*, at most 64 characters)",
                crate::text::untrusted_line(&p.name)
            ));
        }
        if !seen.insert(p.name.as_str()) {
            return bad(format!("param `{}` is declared twice", p.name));
        }
    }
    if md.snapshot_schema == 0 || md.snapshot_schema > model::SNAPSHOT_SCHEMA_VERSION {
        return bad(format!(
            "built for snapshot schema {}, this host provides schema {}",
            md.snapshot_schema,
            model::SNAPSHOT_SCHEMA_VERSION
        ));
    }
    Ok(())
}
