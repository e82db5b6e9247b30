//! The command line, parsed with clap. Exit codes: 0 go, 1 no-go, 2 defer,
//! 3 could not evaluate (usage errors included).

use crate::report::OutputFormat;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// A duration flag clap could not take.
#[derive(Debug, thiserror::Error)]
enum BadDuration {
    #[error(transparent)]
    Syntax(#[from] gatekeeper_model::DurationError),
    #[error("must be greater than 0")]
    Zero,
}

/// `250ms`, `5s`, `10m`, `1h`, as in the config.
fn parse_duration(text: &str) -> Result<Duration, BadDuration> {
    match parse_duration_or_zero(text)? {
        d if d.is_zero() => Err(BadDuration::Zero),
        d => Ok(d),
    }
}

/// `0s` included: for `--sample`, where 0 turns sampling off.
fn parse_duration_or_zero(text: &str) -> Result<Duration, BadDuration> {
    Ok(Duration::from_millis(gatekeeper_model::parse_duration_ms(
        text,
    )?))
}

pub const EXIT_GO: u8 = 0;
pub const EXIT_NO_GO: u8 = 1;
pub const EXIT_DEFER: u8 = 2;
pub const EXIT_CANNOT_EVALUATE: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "gatekeeper",
    version,
    about = "Go / no-go for risky infrastructure changes, decided by sandboxed WASM gates over one snapshot of the world."
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The config file.
    #[arg(long, short = 'c', default_value = "gatekeeper.toml")]
    pub config: PathBuf,
    /// A profile from the config (e.g. local, staging, production).
    #[arg(long, short = 'p')]
    pub profile: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate a phase's gates. Exit 0 go, 1 no-go, 2 defer, 3 could not evaluate.
    Check(CheckArgs),
    /// Collect every configured source once and write the snapshot (JSON).
    /// Exit 0 even when a source is down (that is a fact in the snapshot);
    /// 3 only when it cannot run (bad config, unwritable output).
    Snapshot(SnapshotArgs),
    /// Evaluate the watched phase (default `canary`) every interval and run the
    /// rollback plan when an automatic trigger fires. Stops on SIGTERM/SIGINT
    /// (exit 0); exit 3 when it cannot start.
    Watch(WatchArgs),
    /// Record in the ledger that a person verified a criterion (a sign-off,
    /// "staging verified", "on-call available"); `check` reads it.
    Attest(AttestArgs),
    /// Print the ledger's records (JSON lines, oldest first): verdicts,
    /// incidents, plan steps, alerts, attestations.
    Ledger(LedgerArgs),
    /// Check a config without touching any source: the file, every profile,
    /// every gate loads, and every gate's params under every profile (what
    /// CI should run). Exit 0 valid, 1 a gate does not load, 3 invalid.
    Validate(ValidateArgs),
    /// Gates: list, inspect, run one on a snapshot, golden tests, scaffold
    /// a new one, sign and verify, push to and pull from an OCI registry.
    #[command(subcommand, alias = "gates")]
    Gate(GatesCommand),
    /// Evaluate a phase (or one gate) at every point of a recording, each
    /// snapshot with the ones before it as history, and print the timeline:
    /// when each criterion changed, when each trigger was raised and
    /// cleared, how many times a plan would have run. Exit 0 when it ran.
    Backtest(BacktestArgs),
    /// Show what `apply PHASE` would change, step by step and field by
    /// field, against the live state (nothing is changed). Exit 0 nothing
    /// to change, 2 changes pending, 3 cannot plan (a step the server would
    /// refuse, a state that cannot be read).
    Plan(PlanArgs),
    /// Run a phase's steps: its pre-gates (`requires`) must be go, the
    /// steps run in order (each recorded in the ledger), then the `verify`
    /// phase must go; on failure the phase's `on_failure` plan runs. One
    /// apply at a time (the lease). Exit 0 done and verified, 1 blocked by
    /// the pre-gates or not verified, 2 pre-gates defer, 3 a step failed or
    /// it could not run.
    Apply(ApplyArgs),
    /// Check a verdict statement written by `check --attest`: that it is
    /// consistent, and with --snapshot, that the snapshot is its subject and
    /// re-evaluating it with the config gives the identical report. Exit 0
    /// verified, 1 it does not hold, 3 could not check.
    VerifyAttestation(VerifyAttestationArgs),
}

// `gatekeeper verify-attestation`.
#[derive(Debug, clap::Args)]
pub struct VerifyAttestationArgs {
    /// The statement (`*.intoto.json`).
    pub statement: PathBuf,
    /// The snapshot or recording it names as subject: re-evaluate it.
    #[arg(long)]
    pub snapshot: Option<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

// `gatekeeper check` (the variant\'s doc is its help).
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The phase, as named in the config (e.g. phase-2).
    pub phase: String,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Evaluate a recorded snapshot (or recording) instead of collecting live.
    #[arg(long)]
    pub snapshot: Option<PathBuf>,
    /// Keep the live snapshot this check used in DIR, for replay with --snapshot.
    #[arg(long, value_name = "DIR", conflicts_with = "snapshot")]
    pub record: Option<PathBuf>,
    /// Re-collect and re-evaluate until go or --timeout (e.g. wait for a drain).
    #[arg(long, conflicts_with = "snapshot")]
    pub wait: bool,
    /// With --wait: give up after this long; the last verdict stands.
    #[arg(long, value_name = "DURATION", default_value = "10m", requires = "wait", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Time between collections, for --wait rounds and --sample.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Live one-shot check: sample the sources for this long first, so rates
    /// and holds have history (overrides the phase's `sample`; 0s: none).
    #[arg(long, value_name = "DURATION", conflicts_with_all = ["snapshot", "wait"], value_parser = parse_duration_or_zero)]
    pub sample: Option<Duration>,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Write the verdict as an in-toto statement into DIR (with the
    /// recording it was decided on, when collected live), for
    /// `gatekeeper verify-attestation`.
    #[arg(long, value_name = "DIR")]
    pub attest: Option<PathBuf>,
}

// `gatekeeper plan` (the variant\'s doc is its help).
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The phase whose steps to plan (e.g. phase-2).
    pub phase: String,
    #[command(flatten)]
    pub config: ConfigArgs,
}

// `gatekeeper apply` (the variant\'s doc is its help).
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The phase whose steps to run (e.g. phase-2).
    pub phase: String,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Do not ask: needed when stdin is not a terminal (CI).
    #[arg(long)]
    pub yes: bool,
    /// Check the pre-gates and record every step as `would-run`; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Who applies, for the ledger (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    /// This agent's name in the lease and the ledger (default: host-pid).
    #[arg(long)]
    pub agent: Option<String>,
    /// Time between collections while waiting for gates.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,
}

// `gatekeeper snapshot` (the variant\'s doc is its help).
#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Write here (atomically) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

// `gatekeeper watch` (the variant\'s doc is its help).
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The phase to watch (overrides `watch.phase`).
    #[arg(long)]
    pub phase: Option<String>,
    /// Time between rounds (overrides `watch.interval`, default 5s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// Record what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Serve /metrics, /healthz, /readyz on this address (overrides `watch.listen`).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// This agent's name in the HA lease and the ledger (default: host name and pid).
    #[arg(long)]
    pub agent: Option<String>,
}

// `gatekeeper attest` (the variant\'s doc is its help).
#[derive(Debug, clap::Args)]
pub struct AttestArgs {
    /// The phase, as named in the config.
    pub phase: String,
    /// The criterion id the attestation satisfies.
    pub criterion: String,
    /// Who attests.
    #[arg(long)]
    pub by: String,
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

// `gatekeeper ledger` (the variant\'s doc is its help).
#[derive(Debug, clap::Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    pub command: Option<LedgerCommand>,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Only records of this kind (verdict, incident-opened, incident-closed,
    /// step, plan, apply, alert, alert-delivery, attestation).
    #[arg(long)]
    pub kind: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Follow the ledger's hash chain from its first record to its head.
    /// Exit 0 intact, 1 broken (the first edited, removed, moved or forged
    /// record is named), 3 could not read it.
    Verify(VerifyArgs),
}

// `gatekeeper ledger verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A digest `verify` printed before (`sha256:…`): the chain must still
    /// hold that record, so a ledger rewritten from scratch is found too.
    #[arg(long, value_name = "DIGEST")]
    pub expect_head: Option<String>,
}

// `gatekeeper validate` (the variant\'s doc is its help).
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Subcommand)]
pub enum GatesCommand {
    /// Built-in gates and the gates the config defines.
    List(ConfigArgs),
    /// A gate's metadata, digest, signer, limits and effective params.
    Inspect(InspectArgs),
    /// Evaluate one gate on one snapshot or recording: no config or phase
    /// needed. Exit 0 go, 1 no-go, 2 defer, 3 could not evaluate.
    Run(RunArgs),
    /// Run a gate crate's golden cases (tests/golden/<case>/: snapshot.json,
    /// params.json, expected.json) against its built wasm; --bless
    /// rewrites expected.json. Exit 0 all pass, 1 a case fails, 3 cannot run.
    Test(GateTestArgs),
    /// Scaffold a gate crate that builds outside this repository: one
    /// criterion, a native test, a golden case and a README.
    New(GateNewArgs),
    /// Make a signing key pair (minisign format): NAME.pub and NAME.key.
    Keygen(KeygenArgs),
    /// Sign a gate: writes GATE.wasm.minisig beside it (minisign format).
    Sign(SignArgs),
    /// Check a gate's signature against a public key. Exit 0 valid, 1 not.
    Verify(VerifySigArgs),
    /// Push a gate (and its signature, if one is beside it) to an OCI
    /// registry; prints the digest-pinned reference to put in a config.
    Push(PushArgs),
    /// Pull a gate (and its signature) into the local cache `check` reads;
    /// with no reference, every `oci` gate of the config.
    Pull(PullArgs),
}

/// Where a gate comes from on the command line.
#[derive(Debug, clap::Args)]
pub struct GateSourceArgs {
    /// A `.wasm` file, a built-in gate's name, or a pinned OCI reference
    /// (`oci://host/repo@sha256:…`, pulled first).
    pub gate: String,
    /// Params as a JSON object.
    #[arg(long, conflicts_with = "params_file")]
    pub params: Option<String>,
    /// Params from a JSON or TOML file.
    #[arg(long, value_name = "FILE")]
    pub params_file: Option<PathBuf>,
}

// `gatekeeper gate run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: GateSourceArgs,
    /// The snapshot or recording to evaluate it on.
    #[arg(long)]
    pub snapshot: PathBuf,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

// `gatekeeper gate test`.
#[derive(Debug, clap::Args)]
pub struct GateTestArgs {
    /// The gate crate (default: here).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The built gate (default: the crate's
    /// target/wasm32-wasip2/release/<crate>.wasm).
    #[arg(long)]
    pub wasm: Option<PathBuf>,
    /// Write each case's actual result as its expected.json.
    #[arg(long)]
    pub bless: bool,
    /// Also write the results as JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

// `gatekeeper gate new`.
#[derive(Debug, clap::Args)]
pub struct GateNewArgs {
    /// The gate's name (kebab-case): the crate and the gate are called so.
    pub name: String,
    /// Where to create it (default: ./NAME).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The gate SDK as a path (default: the SDK this binary was built from,
    /// when its source is still there).
    #[arg(long, conflicts_with = "sdk_git")]
    pub sdk: Option<PathBuf>,
    /// The gate SDK from a git repository (e.g. this project's URL).
    #[arg(long, value_name = "URL")]
    pub sdk_git: Option<String>,
}

// `gatekeeper gate keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Writes NAME.pub (share it) and NAME.key (keep it secret).
    pub name: PathBuf,
    /// Encrypt the secret key with the password in $GATEKEEPER_SIGNING_PASSWORD.
    #[arg(long)]
    pub encrypt: bool,
}

// `gatekeeper gate sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The gate (`.wasm`).
    pub wasm: PathBuf,
    /// The secret key (from `gate keygen` or `minisign -G`); an encrypted
    /// one takes its password from $GATEKEEPER_SIGNING_PASSWORD.
    #[arg(long)]
    pub key: PathBuf,
}

// `gatekeeper gate verify`.
#[derive(Debug, clap::Args)]
pub struct VerifySigArgs {
    /// The gate (`.wasm`).
    pub wasm: PathBuf,
    /// The public key (`.pub`).
    #[arg(long)]
    pub pubkey: PathBuf,
    /// The signature (default: GATE.wasm.minisig).
    #[arg(long)]
    pub signature: Option<PathBuf>,
}

// `gatekeeper gate push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The gate (`.wasm`); GATE.wasm.minisig beside it is pushed too.
    pub wasm: PathBuf,
    /// Where: `oci://host[:port]/repository[:tag]`.
    pub reference: String,
}

// `gatekeeper gate pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// `oci://host[:port]/repository(:tag|@sha256:…)`; omitted: every
    /// `oci` gate of the config.
    pub reference: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

// `gatekeeper backtest`.
#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// The phase to replay (from the config); or use --gate.
    #[arg(required_unless_present = "gate")]
    pub phase: Option<String>,
    /// Replay one gate instead of a phase: a `.wasm` file, a built-in
    /// name or a pinned OCI reference.
    #[arg(long, conflicts_with = "phase")]
    pub gate: Option<String>,
    /// With --gate: params as a JSON object.
    #[arg(long, requires = "gate", conflicts_with = "params_file")]
    pub params: Option<String>,
    /// With --gate: params from a JSON or TOML file.
    #[arg(long, value_name = "FILE", requires = "gate")]
    pub params_file: Option<PathBuf>,
    /// A recording (`{"snapshots":[…]}`), or a directory of snapshots and
    /// recordings (as `check --record` writes them); repeatable.
    #[arg(long, required = true)]
    pub recording: Vec<PathBuf>,
    /// Also show the verdicts `watch` recorded in the config's ledger over
    /// the same span, and where the replay disagrees with them.
    #[arg(long, requires = "phase")]
    pub ledger: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[arg(long, short = 'o', value_enum, default_value_t = InspectFormat::Table)]
    pub output: InspectFormat,
}

// `gatekeeper gates inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A gate name from the config, a built-in gate's name, a `.wasm`
    /// file, or a pinned OCI reference.
    pub gate: String,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[arg(long, short = 'o', value_enum, default_value_t = InspectFormat::Table)]
    pub output: InspectFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Table,
    Json,
}
