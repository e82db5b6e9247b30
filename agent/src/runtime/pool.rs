//! The threads gates run on. Never the async runtime's: a gate call may take
//! up to its deadline, and wasm runs on the native stack of the thread that
//! calls it, so these threads have a stack sized for the largest wasm stack.

use super::limits::GATE_THREAD_STACK_BYTES;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// Set on the gate threads.
    static GATE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a gate may run on the current thread instead of being handed to
/// a gate thread (which costs two thread wake-ups, tens of microseconds on
/// a VM): a gate thread, or the process's main thread when it is not inside
/// the async runtime and its stack (`RLIMIT_STACK`) is at least a gate
/// thread's.
pub fn may_run_gates_here() -> bool {
    if GATE_THREAD.with(std::cell::Cell::get) {
        return true;
    }
    static MAIN_STACK_OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    std::thread::current().name() == Some("main")
        && tokio::runtime::Handle::try_current().is_err()
        && *MAIN_STACK_OK.get_or_init(|| {
            // The soft limit is the main thread's stack size.
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK)
                .is_ok_and(|(soft, _)| soft >= GATE_THREAD_STACK_BYTES as u64)
        })
}

pub(crate) struct GatePool {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    workers: Vec<JoinHandle<()>>,
}

/// Why a job handed to the pool gave no result (a host bug or shutdown,
/// never a gate's doing: guest failures are results).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    #[error("a gate thread panicked: {0}")]
    Panicked(String),
    #[error("the gate threads stopped")]
    Stopped,
}

/// The result of a job that was handed to the pool.
pub(crate) struct Pending<R>(mpsc::Receiver<std::thread::Result<R>>);

impl<R> Pending<R> {
    /// Waits for the job. `Err` when the job panicked (a host bug, never a
    /// gate's doing) or the pool was shut down before it ran.
    pub(crate) fn wait(self) -> Result<R, PoolError> {
        match self.0.recv() {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(panic)) => Err(PoolError::Panicked(
                panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".to_owned()),
            )),
            Err(_) => Err(PoolError::Stopped),
        }
    }
}

impl GatePool {
    /// `threads` workers (at least one).
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("gatekeeper-gate-{i}"))
                    .stack_size(GATE_THREAD_STACK_BYTES)
                    .spawn(move || {
                        GATE_THREAD.with(|g| g.set(true));
                        loop {
                            let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                            match job {
                                Ok(job) => job(),
                                Err(_) => return,
                            }
                        }
                    })?,
            );
        }
        Ok(GatePool {
            jobs: Mutex::new(Some(tx)),
            workers,
        })
    }

    /// The number of gate threads.
    pub(crate) fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Runs `job` on a gate thread.
    pub(crate) fn spawn<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Pending<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        let boxed: Job = Box::new(move || {
            let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(job)));
        });
        if let Some(jobs) = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            // A send error drops the job, and with it `tx`: wait() reports it.
            let _ = jobs.send(boxed);
        }
        Pending(rx)
    }
}

impl Drop for GatePool {
    fn drop(&mut self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
