//! The WASI a gate is linked against: an allow-list of interfaces that can
//! only compute, none of which can wait.
//!
//! - `wasi:cli/*` (no arguments, no environment, stdin closed; stdout and
//!   stderr captured into a bounded tail), `wasi:clocks/wall-clock` (the
//!   snapshot's time), `wasi:random/*` (seeded) and `wasi:io/error` come from
//!   wasmtime-wasi, whose implementations of these never block.
//! - `wasi:clocks/monotonic-clock` is virtual: it starts at 0 and moves only
//!   when the gate sleeps, by the time it asked to sleep, at once. A gate that
//!   sleeps returns immediately; a gate that spins until time passes runs out
//!   of fuel. Deterministic either way.
//! - `wasi:io/poll` and `wasi:io/streams` poll what they wait on exactly once:
//!   every pollable a gate can create is ready at once, and anything that is
//!   not (there is none) would trap instead of waiting. No tokio runtime is
//!   entered, so a gate may run on any thread.
//! - `wasi:filesystem/*` and `wasi:sockets/*` (which Rust's std imports when a
//!   gate touches files or the network) are linked as functions that trap
//!   when called: such a gate loads, and fails the moment it tries.
//! - Any other import (e.g. `wasi:http`) is refused when the gate loads.

use super::sandbox::GateState;
use bytes::Bytes;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::bindings::wasi::io::streams as async_streams;

/// Interface families a gate may import and use.
const LINKED: &[&str] = &[
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:io/",
    "gatekeeper:gate/",
];

/// Interface families a gate may import but not use: every call traps.
pub(crate) const DENIED: &[&str] = &["wasi:filesystem/", "wasi:sockets/"];

/// Whether an import of this name is provided (linked or denied), or refused at load.
pub(crate) fn import_allowed(name: &str) -> bool {
    LINKED.iter().chain(DENIED).any(|p| name.starts_with(p))
        // The gate world's own top-level import.
        || name == "log"
        // Type imports of the gate world (`metadata`, `gate-input`, …) carry no code.
        || !name.contains(':')
}

/// Adds the gate's WASI to `linker` (the denied families are added per
/// component, see [`deny_unlinked`]).
pub(crate) fn add_to_linker(linker: &mut Linker<GateState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::WasiView;
    use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};
    use wasmtime_wasi::random::WasiRandom;
    type S = GateState;
    let l = linker;
    clocks::wall_clock::add_to_linker::<S, WasiClocks>(l, S::clocks)?;
    clocks::monotonic_clock::add_to_linker::<S, HasVirtualClock>(l, |s| s.virtual_clock())?;
    random::random::add_to_linker::<S, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    random::insecure::add_to_linker::<S, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<S, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    cli::exit::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::environment::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::stdin::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::stdout::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::stderr::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_input::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_output::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_stdin::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_stdout::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_stderr::add_to_linker::<S, WasiCli>(l, S::cli)?;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<S, HasTable>(l, |s| s.table())?;
    poll::add_to_linker::<S, HasNeverWait>(l, |s| NeverWait(s.table()))?;
    streams::add_to_linker::<S, HasNeverWait>(l, |s| NeverWait(s.table()))?;
    Ok(())
}

/// A copy of `base` in which every import of `component` from a denied
/// family is defined: its functions trap when called, its resources exist.
pub(crate) fn deny_unlinked(
    base: &Linker<GateState>,
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> wasmtime::Result<Linker<GateState>> {
    use wasmtime::component::ResourceType;
    use wasmtime::component::types::ComponentItem;
    let component_type = component.component_type();
    let imports: Vec<(&str, ComponentItem)> = component_type
        .imports(engine)
        .map(|(name, import)| (name, import.ty))
        .collect();
    let denied = |name: &str| DENIED.iter().any(|p| name.starts_with(p));
    // Resources the linked interfaces define (wasi:io's streams, pollable,
    // error), which the denied ones use: they keep their real host types.
    let mut linked_resources: Vec<(ResourceType, ResourceType)> = Vec::new();
    for (name, item) in &imports {
        let ComponentItem::ComponentInstance(instance) = item else {
            continue;
        };
        if denied(name) {
            continue;
        }
        for (export, item) in instance.exports(engine) {
            if let ComponentItem::Resource(ty) = item.ty {
                let host = match export {
                    "pollable" => ResourceType::host::<DynPollable>(),
                    "input-stream" => {
                        ResourceType::host::<wasmtime_wasi_io::streams::DynInputStream>()
                    }
                    "output-stream" => {
                        ResourceType::host::<wasmtime_wasi_io::streams::DynOutputStream>()
                    }
                    "error" => ResourceType::host::<wasmtime_wasi_io::streams::Error>(),
                    _ => continue,
                };
                linked_resources.push((ty, host));
            }
        }
    }
    let mut linker = base.clone();
    for (name, item) in &imports {
        let (true, ComponentItem::ComponentInstance(instance)) = (denied(name), item) else {
            continue;
        };
        let mut defs = linker.instance(name)?;
        for (export, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let called = format!("{name}#{export}");
                    defs.func_new(export, move |_, _, _, _| {
                        Err(wasmtime::format_err!("{DENIED_CALL}`{called}`"))
                    })?;
                }
                ComponentItem::Resource(ty) => {
                    let host = linked_resources
                        .iter()
                        .find(|(linked, _)| *linked == ty)
                        .map_or_else(ResourceType::host::<DeniedResource>, |(_, h)| *h);
                    defs.resource(export, host, |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(linker)
}

/// The host type of every resource a denied interface defines (one type for
/// all, so the interfaces that use each other's resources agree): none can
/// ever be created, since every function that would make one traps.
struct DeniedResource;

const DENIED_CALL: &str = "denied call: ";

/// The message of the trap a denied call raises, made readable; `None` for other traps.
pub(crate) fn denied_call(message: &str) -> Option<String> {
    let name = message.strip_prefix(DENIED_CALL)?;
    Some(format!(
        "called {name}: a gate may not use files or the network (it can only compute)"
    ))
}

struct HasTable;
impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// `wasi:io` over the resource table, never waiting.
pub(crate) struct NeverWait<'a>(&'a mut ResourceTable);

struct HasNeverWait;
impl HasData for HasNeverWait {
    type Data<'a> = NeverWait<'a>;
}

/// Polls `future` once. A gate may not wait: anything not ready at once traps.
fn at_once<T>(what: &str, future: impl Future<Output = T>) -> wasmtime::Result<T> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(wasmtime::format_err!(
            "{what} would wait; a gate may not wait for anything"
        )),
    }
}

/// [`at_once`] for stream operations, whose own errors pass through.
fn stream_at_once<T>(what: &str, future: impl Future<Output = StreamResult<T>>) -> StreamResult<T> {
    at_once(what, future).map_err(StreamError::Trap)?
}

impl poll::Host for NeverWait<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        at_once("poll", async_poll::Host::poll(self.0, pollables))?
    }
}

impl poll::HostPollable for NeverWait<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        at_once(
            "pollable.ready",
            async_poll::HostPollable::ready(self.0, pollable),
        )?
    }
    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        at_once(
            "pollable.block",
            async_poll::HostPollable::block(self.0, pollable),
        )?
    }
    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(self.0, pollable)
    }
}

impl streams::Host for NeverWait<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        Ok(
            match async_streams::Host::convert_stream_error(self.0, err)? {
                async_streams::StreamError::LastOperationFailed(e) => {
                    streams::StreamError::LastOperationFailed(e)
                }
                async_streams::StreamError::Closed => streams::StreamError::Closed,
            },
        )
    }
}

use async_streams::{HostInputStream as AsyncIn, HostOutputStream as AsyncOut};
use streams::{InputStream, OutputStream as OutStream};

impl streams::HostOutputStream for NeverWait<'_> {
    fn drop(&mut self, stream: Resource<OutStream>) -> wasmtime::Result<()> {
        at_once("output-stream.drop", AsyncOut::drop(self.0, stream))?
    }
    fn check_write(&mut self, stream: Resource<OutStream>) -> StreamResult<u64> {
        AsyncOut::check_write(self.0, stream)
    }
    fn write(&mut self, stream: Resource<OutStream>, bytes: Vec<u8>) -> StreamResult<()> {
        AsyncOut::write(self.0, stream, bytes)
    }
    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<OutStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        stream_at_once(
            "blocking-write-and-flush",
            AsyncOut::blocking_write_and_flush(self.0, stream, bytes),
        )
    }
    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<OutStream>,
        len: u64,
    ) -> StreamResult<()> {
        stream_at_once(
            "blocking-write-zeroes-and-flush",
            AsyncOut::blocking_write_zeroes_and_flush(self.0, stream, len),
        )
    }
    fn subscribe(
        &mut self,
        stream: Resource<OutStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        AsyncOut::subscribe(self.0, stream)
    }
    fn write_zeroes(&mut self, stream: Resource<OutStream>, len: u64) -> StreamResult<()> {
        AsyncOut::write_zeroes(self.0, stream, len)
    }
    fn flush(&mut self, stream: Resource<OutStream>) -> StreamResult<()> {
        AsyncOut::flush(self.0, stream)
    }
    fn blocking_flush(&mut self, stream: Resource<OutStream>) -> StreamResult<()> {
        stream_at_once("blocking-flush", AsyncOut::blocking_flush(self.0, stream))
    }
    fn splice(
        &mut self,
        dst: Resource<OutStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        AsyncOut::splice(self.0, dst, src, len)
    }
    fn blocking_splice(
        &mut self,
        dst: Resource<OutStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        stream_at_once(
            "blocking-splice",
            AsyncOut::blocking_splice(self.0, dst, src, len),
        )
    }
}

impl streams::HostInputStream for NeverWait<'_> {
    fn drop(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<()> {
        at_once("input-stream.drop", AsyncIn::drop(self.0, stream))?
    }
    fn read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        AsyncIn::read(self.0, stream, len)
    }
    fn blocking_read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        stream_at_once("blocking-read", AsyncIn::blocking_read(self.0, stream, len))
    }
    fn skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        AsyncIn::skip(self.0, stream, len)
    }
    fn blocking_skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        stream_at_once("blocking-skip", AsyncIn::blocking_skip(self.0, stream, len))
    }
    fn subscribe(
        &mut self,
        stream: Resource<InputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        AsyncIn::subscribe(self.0, stream)
    }
}

/// The monotonic clock a gate sees: virtual time, in nanoseconds, that only
/// sleeping moves (by the time slept, at once).
pub(crate) struct VirtualClock<'a> {
    pub(crate) now: &'a mut u64,
    pub(crate) table: &'a mut ResourceTable,
}

struct HasVirtualClock;
impl HasData for HasVirtualClock {
    type Data<'a> = VirtualClock<'a>;
}

impl monotonic_clock::Host for VirtualClock<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(*self.now)
    }
    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(1)
    }
    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        *self.now = (*self.now).max(when);
        ready_pollable(self.table)
    }
    fn subscribe_duration(&mut self, duration: u64) -> wasmtime::Result<Resource<DynPollable>> {
        *self.now = self.now.saturating_add(duration);
        ready_pollable(self.table)
    }
}

/// A pollable that is always ready: the time it stands for has passed.
struct Elapsed;

#[wasmtime_wasi::async_trait]
impl Pollable for Elapsed {
    async fn ready(&mut self) {}
}

fn ready_pollable(table: &mut ResourceTable) -> wasmtime::Result<Resource<DynPollable>> {
    let elapsed = table.push(Elapsed)?;
    wasmtime_wasi::p2::subscribe(table, elapsed)
}

/// What a gate writes to stdout and stderr, interleaved: the last
/// [`OUTPUT_TAIL_BYTES`] are kept (a panic message comes last), the rest
/// counted and dropped. Writing never fails and never waits.
#[derive(Clone, Default)]
pub(crate) struct GateOutput(Arc<Mutex<OutputTail>>);

#[derive(Default)]
struct OutputTail {
    tail: std::collections::VecDeque<u8>,
    written: u64,
}

/// Bytes of a gate's stdout/stderr kept.
pub(crate) const OUTPUT_TAIL_BYTES: usize = 4 << 10;

impl GateOutput {
    fn push(&self, bytes: &[u8]) {
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        out.written += bytes.len() as u64;
        let keep = &bytes[bytes.len().saturating_sub(OUTPUT_TAIL_BYTES)..];
        let overflow = (out.tail.len() + keep.len()).saturating_sub(OUTPUT_TAIL_BYTES);
        out.tail.drain(..overflow);
        out.tail.extend(keep);
    }

    /// The kept tail as text, and how many bytes were written in all.
    pub(crate) fn tail(&self) -> (String, u64) {
        let out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let bytes: Vec<u8> = out.tail.iter().copied().collect();
        (String::from_utf8_lossy(&bytes).into_owned(), out.written)
    }
}

impl wasmtime_wasi::cli::IsTerminal for GateOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GateOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GateOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GateOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for GateOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
