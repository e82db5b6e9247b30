//! Advances the engines' epochs while evaluations run, so wall-clock deadlines
//! fire. Parks when nothing runs, so an idle daemon costs no CPU.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use wasmtime::Engine;

#[derive(Default)]
struct State {
    engines: Vec<Engine>,
    active: usize,
    stop: bool,
}

pub(crate) struct EpochTicker {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// Keeps the ticker running while alive.
pub(crate) struct Running<'a>(&'a EpochTicker);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let (lock, _) = &*self.0.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).active -= 1;
    }
}

impl EpochTicker {
    pub(crate) fn start() -> Self {
        let shared: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("gatekeeper-epoch".into())
            .spawn(move || {
                let (lock, wake) = &*thread_shared;
                loop {
                    let engines = {
                        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
                        while state.active == 0 && !state.stop {
                            state = wake.wait(state).unwrap_or_else(|p| p.into_inner());
                        }
                        if state.stop {
                            return;
                        }
                        state.engines.clone()
                    };
                    std::thread::sleep(super::limits::EPOCH_TICK);
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                }
            })
            .expect("spawn the epoch ticker thread");
        EpochTicker {
            shared,
            thread: Some(thread),
        }
    }

    pub(crate) fn add_engine(&self, engine: &Engine) {
        let (lock, _) = &*self.shared;
        lock.lock()
            .unwrap_or_else(|p| p.into_inner())
            .engines
            .push(engine.clone());
    }

    pub(crate) fn running(&self) -> Running<'_> {
        let (lock, wake) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).active += 1;
        wake.notify_one();
        Running(self)
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        let (lock, wake) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
