//! Gatekeeper: collects facts into one snapshot, evaluates sandboxed WASM
//! gates against it, and returns a verdict per phase.
//!
//! `main.rs` is thin; everything it calls lives here so tests drive the same code.

pub mod actions;
pub mod app;
pub mod builtin;
pub mod check;
pub mod cli;
pub mod clients;
pub mod collect;
pub mod config;
pub mod files;
pub mod history;
pub mod ledger;
pub mod metrics;
pub mod recording;
pub mod report;
pub mod runtime;
pub mod text;
pub mod wait;
pub mod watch;
