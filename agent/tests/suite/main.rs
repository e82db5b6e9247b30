//! The host's integration and end-to-end tests, one binary (each test
//! binary links wasmtime, kube and the rest: one link instead of fourteen).
//! The tiers are in `tests/README.md`.

mod apply;
mod attestation;
mod backtest;
mod bad_configs;
mod cli;
mod collect_http;
mod collect_kubernetes;
mod collect_nats;
mod collect_postgres;
mod containment;
mod demo_live;
mod determinism;
mod fence;
mod gate_author;
mod k8s_manifests;
mod layout;
mod ledger_chain;
mod live_cli;
mod migration_e2e;
mod prometheus;
mod properties;
mod sandbox;
mod supply;
mod watch;
