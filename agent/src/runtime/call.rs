//! One call into a gate in a fresh sandbox (store, limits, epoch deadline,
//! fuel for host calls), its answer checked, its failure classified.

use super::contract::{self, Contract, from_wit_error, from_wit_evaluation, output_size, w};
use super::engine::EngineEntry;
use super::sandbox::GateState;
use super::{Budget, EvaluationError, EvaluationLimits, GateNeeds, limits, ticker, wasi};
use gatekeeper_model as model;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Store, Trap};

/// What a loaded gate is made of; shared by its clones and the gate threads.
pub(super) struct GateInner {
    pub(super) entry: Arc<EngineEntry>,
    pub(super) pre: contract::GatePre,
    pub(super) contract: Contract,
    pub(super) digest: String,
    /// The first 64 bits of the digest; mixed with the snapshot time to seed
    /// the gate's randomness.
    pub(super) seed_base: u64,
    pub(super) limits: EvaluationLimits,
    pub(super) metadata: model::Metadata,
    pub(super) ticker: Arc<ticker::EpochTicker>,
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

    pub(super) fn call_metadata(&self) -> Result<model::Metadata, EvaluationError> {
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

    pub(super) fn call_needs(&self, params_json: &str) -> Result<GateNeeds, EvaluationError> {
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

    pub(super) fn call_evaluate(
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
