//! Gatekeeper: collects facts into one snapshot, evaluates sandboxed WASM
//! gates against it, and returns a verdict per phase.
//!
//! `main.rs` is thin; everything it calls lives here so tests drive the same code.

pub mod actions;
pub mod apply;
pub mod attestation;
pub mod backtest;
pub mod builtin;
pub mod cli;
pub mod clients;
pub mod cmd;
pub mod collect;
pub mod config;
pub mod files;
pub mod gate_set;
pub mod history;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod recording;
pub mod report;
pub mod runtime;
pub mod supply;
pub mod text;
pub mod verdict;
pub mod wait;
pub mod watch;
