//! `gatekeeper plan PHASE`: what `apply` would change, step by step and
//! field by field, worked out against the live state as each earlier step
//! would leave it (a stream a step creates exists for the next one). After
//! every step that touches stream subjects, the planned topology is checked
//! for overlapping subjects, which nats-server refuses (seed 002: the
//! legacy stream had to leave `athlete-ally.>` before `AA_CORE_HOT` could
//! take it): a phase whose steps would collide cannot be planned.
//!
//! The per-kind comparisons are the steps' own ([`crate::actions::streams`]),
//! so what `plan` says is what the step does.

use crate::actions::consumers;
use crate::actions::streams::{self, Change, Converge, NotInPlace};
use crate::actions::{already_done, current_replicas, describe};
use crate::clients::kubernetes::{self as kube_client, Cluster};
use crate::clients::nats::JetStream;
use crate::config::{Config, DEFAULT_STEP_TIMEOUT, SpecError, StepConfig};
use gatekeeper_model::subjects_overlap;
use serde_json::Value;
use std::collections::BTreeMap;

mod plan;
pub use plan::{ItemState, Plan, PlanItem};

/// Why a step cannot be planned: the plan shows it as `CANNOT`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unplannable {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    NotInPlace(#[from] NotInPlace),
    /// The state it depends on could not be read (NATS or the cluster
    /// down, a command that would not start).
    #[error("{0}")]
    Unreadable(String),
    /// The state the steps before would leave makes it fail (subjects
    /// overlapping, a stream nothing creates).
    #[error("{0}")]
    Refused(String),
}

/// The state the steps so far would leave, read lazily from the servers.
struct World<'a> {
    config: &'a Config,
    /// The phase planned: `unless` checks see it as the step will.
    phase: &'a str,
    js: Option<Result<JetStream, Unplannable>>,
    /// Every stream's config as it would be (`None`: listing failed).
    streams: Option<Result<BTreeMap<String, Value>, Unplannable>>,
    /// Streams a planned step creates (their consumers do not exist yet).
    created: Vec<String>,
    consumers: BTreeMap<(String, String), Option<Value>>,
    kube: Option<Result<Cluster, Unplannable>>,
    config_maps: BTreeMap<(String, String), BTreeMap<String, String>>,
    replicas: BTreeMap<(String, String), i32>,
    /// An earlier step changes something (a restart would run).
    changed: bool,
}

impl<'a> World<'a> {
    async fn js(&mut self) -> Result<JetStream, Unplannable> {
        if self.js.is_none() {
            self.js = Some(
                JetStream::open(self.config)
                    .await
                    .map_err(|e| Unplannable::Unreadable(format!("NATS: {e}"))),
            );
        }
        self.js.clone().expect("set above")
    }

    async fn streams(&mut self) -> Result<&mut BTreeMap<String, Value>, Unplannable> {
        if self.streams.is_none() {
            let listed = match self.js().await {
                Ok(js) => streams::stream_configs(&js).await.map_err(|e| {
                    Unplannable::Unreadable(format!("NATS: listing streams: {}", e.message))
                }),
                Err(e) => Err(e),
            };
            self.streams = Some(listed);
        }
        match self.streams.as_mut().expect("set above") {
            Ok(s) => Ok(s),
            Err(e) => Err(e.clone()),
        }
    }

    async fn kube(&mut self) -> Result<Cluster, Unplannable> {
        if self.kube.is_none() {
            let connected = match &self.config.sources.kubernetes {
                Some(source) => {
                    kube_client::connect(source, &self.config.base_dir, DEFAULT_STEP_TIMEOUT)
                        .await
                        .map_err(|e| Unplannable::Unreadable(format!("Kubernetes: {e}")))
                }
                None => Err(Unplannable::Unreadable("no [sources.kubernetes]".into())),
            };
            self.kube = Some(connected);
        }
        self.kube.clone().expect("set above")
    }

    fn namespace(&self, cluster: &Cluster, ns: Option<&String>) -> String {
        ns.cloned()
            .unwrap_or_else(|| cluster.default_namespace.clone())
    }

    /// The first pair of subjects that overlap, in one stream or across
    /// two, as a sentence.
    async fn overlap(&mut self) -> Result<Option<String>, Unplannable> {
        let streams = self.streams().await?;
        let subjects: Vec<(&String, Vec<String>)> = streams
            .iter()
            .map(|(name, c)| (name, streams::subjects_of(c)))
            .collect();
        for (name, list) in &subjects {
            for (i, x) in list.iter().enumerate() {
                if let Some(y) = list[i + 1..].iter().find(|y| subjects_overlap(x, y)) {
                    return Ok(Some(format!(
                        "{name} would hold both `{x}` and `{y}`, which overlap: nats-server refuses that"
                    )));
                }
            }
        }
        for (i, (a, sa)) in subjects.iter().enumerate() {
            for (b, sb) in &subjects[i + 1..] {
                for x in sa {
                    if let Some(y) = sb.iter().find(|y| subjects_overlap(x, y)) {
                        return Ok(Some(format!(
                            "{a}'s `{x}` would overlap {b}'s `{y}`, which nats-server refuses (seed 002): move the subjects off the other stream in an earlier step"
                        )));
                    }
                }
            }
        }
        Ok(None)
    }

    async fn plan_step(&mut self, step: &StepConfig) -> ItemState {
        match self.plan_step_inner(step).await {
            Ok(state) => {
                if matches!(state, ItemState::Changes(_) | ItemState::Runs) {
                    self.changed = true;
                }
                state
            }
            Err(why) => ItemState::Cannot(why.to_string()),
        }
    }

    async fn plan_step_inner(&mut self, step: &StepConfig) -> Result<ItemState, Unplannable> {
        let changes = |lines: Vec<String>| {
            if lines.is_empty() {
                ItemState::Done
            } else {
                ItemState::Changes(lines)
            }
        };
        match step {
            StepConfig::EnsureStream { .. } => {
                let specs = step.stream_specs(self.config)?;
                let mut lines = Vec::new();
                for spec in &specs {
                    let streams = self.streams().await?;
                    let Change { converge, fields } =
                        streams::stream_change(streams.get(&spec.name), spec)?;
                    let shown = fields.iter().map(ToString::to_string).collect::<Vec<_>>();
                    match converge {
                        Converge::Create(c) => {
                            lines.push(format!("+ create stream {}", spec.name));
                            lines.extend(shown.iter().map(|f| format!("    {f}")));
                            streams.insert(spec.name.clone(), c);
                            self.created.push(spec.name.clone());
                        }
                        Converge::Update(c) => {
                            lines.extend(
                                shown.iter().map(|f| format!("~ stream {}: {f}", spec.name)),
                            );
                            streams.insert(spec.name.clone(), c);
                        }
                        Converge::Unchanged => {}
                    }
                }
                if let Some(why) = self.overlap().await? {
                    return Err(Unplannable::Refused(why));
                }
                Ok(changes(lines))
            }
            StepConfig::EnsureConsumer { .. } => {
                let specs = step.consumer_specs(self.config)?;
                let mut lines = Vec::new();
                for spec in &specs {
                    if !self.streams().await?.contains_key(&spec.stream) {
                        return Err(Unplannable::Refused(format!(
                            "stream {} does not exist and no earlier step creates it",
                            spec.stream
                        )));
                    }
                    let js = self.js().await?;
                    let version = js.client().server_info().version;
                    if let Some(why) = consumers::filters_unsupported(&version, spec) {
                        return Err(Unplannable::Refused(format!(
                            "consumer {}/{}: {why}",
                            spec.stream, spec.name
                        )));
                    }
                    let key = (spec.stream.clone(), spec.name.clone());
                    if !self.consumers.contains_key(&key) {
                        let current = if self.created.contains(&spec.stream) {
                            None
                        } else {
                            let js = self.js().await?;
                            consumers::consumer_config(&js, &spec.stream, &spec.name)
                                .await
                                .map_err(|e| {
                                    Unplannable::Unreadable(format!(
                                        "NATS: consumer {}/{}: {}",
                                        spec.stream, spec.name, e.message
                                    ))
                                })?
                        };
                        self.consumers.insert(key.clone(), current);
                    }
                    let Change { converge, fields } =
                        consumers::consumer_change(self.consumers[&key].as_ref(), spec)?;
                    let shown = fields.iter().map(ToString::to_string).collect::<Vec<_>>();
                    match converge {
                        Converge::Create(c) => {
                            lines.push(format!("+ create consumer {}/{}", spec.stream, spec.name));
                            lines.extend(shown.iter().map(|f| format!("    {f}")));
                            self.consumers.insert(key, Some(c));
                        }
                        Converge::Update(c) => {
                            lines.extend(
                                shown.iter().map(|f| {
                                    format!("~ consumer {}/{}: {f}", spec.stream, spec.name)
                                }),
                            );
                            self.consumers.insert(key, Some(c));
                        }
                        Converge::Unchanged => {}
                    }
                }
                Ok(changes(lines))
            }
            StepConfig::MoveSubjects { subjects, from, to } => {
                let streams = self.streams().await?;
                let mut lines = Vec::new();
                for name in from {
                    let Some(c) = streams.get_mut(name) else {
                        continue;
                    };
                    let have = streams::subjects_of(c);
                    let (gone, kept): (Vec<String>, Vec<String>) =
                        have.into_iter().partition(|s| subjects.contains(s));
                    if !gone.is_empty() {
                        lines.push(format!("~ stream {name}: remove {}", gone.join(", ")));
                        c["subjects"] = serde_json::json!(kept);
                    }
                }
                let Some(c) = streams.get_mut(to) else {
                    return Err(Unplannable::Refused(format!(
                        "stream {to} does not exist and no earlier step creates it"
                    )));
                };
                let mut have = streams::subjects_of(c);
                let missing: Vec<String> = subjects
                    .iter()
                    .filter(|s| !have.contains(s))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    lines.push(format!("~ stream {to}: add {}", missing.join(", ")));
                    have.extend(missing);
                    c["subjects"] = serde_json::json!(have);
                }
                if let Some(why) = self.overlap().await? {
                    return Err(Unplannable::Refused(why));
                }
                Ok(changes(lines))
            }
            StepConfig::DeleteStream { stream } => {
                let streams = self.streams().await?;
                Ok(match streams.remove(stream) {
                    Some(_) => ItemState::Changes(vec![format!(
                        "- delete stream {stream} and every message it holds"
                    )]),
                    None => ItemState::Done,
                })
            }
            StepConfig::PatchConfigMap {
                namespace,
                name,
                data,
            } => {
                let cluster = self.kube().await?;
                let ns = self.namespace(&cluster, namespace.as_ref());
                let key = (ns.clone(), name.clone());
                if !self.config_maps.contains_key(&key) {
                    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
                        kube::Api::namespaced(cluster.client.clone(), &ns);
                    let cm = api.get(name).await.map_err(|e| {
                        Unplannable::Unreadable(format!(
                            "configmap {ns}/{name}: {}",
                            kube_client::describe(&e)
                        ))
                    })?;
                    self.config_maps
                        .insert(key.clone(), cm.data.unwrap_or_default());
                }
                let have = self.config_maps.get_mut(&key).expect("inserted above");
                let mut lines = Vec::new();
                for (k, v) in data {
                    if have.get(k) != Some(v) {
                        lines.push(format!(
                            "~ configmap {ns}/{name}: {k}: {} → {v}",
                            have.get(k).map_or("unset", String::as_str)
                        ));
                        have.insert(k.clone(), v.clone());
                    }
                }
                Ok(changes(lines))
            }
            StepConfig::ScaleDeployment {
                namespace,
                name,
                replicas,
                ..
            } => {
                let cluster = self.kube().await?;
                let ns = self.namespace(&cluster, namespace.as_ref());
                let key = (ns.clone(), name.clone());
                if !self.replicas.contains_key(&key) {
                    let have = current_replicas(&cluster, Some(&ns), name)
                        .await
                        .map_err(|e| Unplannable::Unreadable(e.to_string()))?;
                    self.replicas.insert(key.clone(), have);
                }
                let have = self
                    .replicas
                    .insert(key, *replicas as i32)
                    .expect("inserted above");
                Ok(changes(if have == *replicas as i32 {
                    Vec::new()
                } else {
                    vec![format!(
                        "~ deployment {ns}/{name}: replicas {have} → {replicas}"
                    )]
                }))
            }
            StepConfig::RestartDeployments { names, .. } => Ok(if self.changed {
                ItemState::Changes(vec![format!(
                    "~ rollout restart {} (an earlier step changes something)",
                    names.join(", ")
                )])
            } else {
                ItemState::Done
            }),
            StepConfig::Exec {
                unless: Some(unless),
                timeout,
                ..
            } => {
                let timeout = timeout.map_or(DEFAULT_STEP_TIMEOUT, |t| t.0);
                program_found(&unless[0])?;
                match already_done(unless, timeout, self.phase).await {
                    Ok(true) => Ok(ItemState::Done),
                    Ok(false) => Ok(ItemState::Changes(vec![format!(
                        "! {} exits non-zero: the command runs",
                        unless.join(" ")
                    )])),
                    Err(e) => Err(Unplannable::Unreadable(e.to_string())),
                }
            }
            StepConfig::Exec {
                unless: None,
                command,
                ..
            } => {
                program_found(&command[0])?;
                Ok(ItemState::Runs)
            }
            StepConfig::Webhook { .. } => Ok(ItemState::Notifies),
            StepConfig::WaitFor { .. } => Ok(ItemState::Waits),
        }
    }
}

/// An `exec` program that would not start: a path that is not a file, or
/// a name on no `PATH` directory (relative paths resolve against the
/// working directory, as the step's do).
fn program_found(program: &str) -> Result<(), Unplannable> {
    let found = if program.contains('/') {
        std::path::Path::new(program).is_file()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    };
    if found {
        Ok(())
    } else {
        Err(Unplannable::Refused(format!(
            "`{program}` is not a file and not on PATH: the command would not start"
        )))
    }
}

/// Plans `phase`'s steps against the live state.
pub async fn plan_phase(config: &Config, phase: &str) -> Plan {
    let mut world = World {
        config,
        phase,
        js: None,
        streams: None,
        created: Vec::new(),
        consumers: BTreeMap::new(),
        kube: None,
        config_maps: BTreeMap::new(),
        replicas: BTreeMap::new(),
        changed: false,
    };
    let mut items = Vec::new();
    for (i, step) in config.phases[phase].steps.iter().enumerate() {
        let state = world.plan_step(step).await;
        items.push(PlanItem {
            step: i + 1,
            action: step.action(),
            summary: describe(step),
            state,
        });
    }
    Plan {
        phase: phase.to_owned(),
        items,
    }
}
