//! Real servers for tests, each on random free loopback ports in a temp dir,
//! killed on drop: nats-server (2.9 and 2.15, single node or a 3-node
//! JetStream cluster), PostgreSQL (initdb + pg_ctl), Prometheus and
//! Alertmanager, and a fake Kubernetes API server that serves the real REST
//! paths and JSON.
//!
//! A missing server binary is a test failure with the command that installs
//! it, never a skip.
//!
//! ```no_run
//! use gatekeeper_testsupport::{NatsServer, NatsVersion, Postgres, FakeKube};
//! let nats = NatsServer::start(NatsVersion::V2_9);
//! let pg = Postgres::start();
//! let kube = FakeKube::start();
//! ```

mod component;
mod http;
mod kube;
mod nats;
mod postgres;
mod prometheus;
mod registry;

pub use component::WatGate;
pub use http::{CannedHttp, WebhookSink};
pub use kube::{FakeKube, Fault};
pub use nats::{
    NatsCluster, NatsOptions, NatsServer, NatsVersion, SEED_ACK_WAIT, SEED_MAX_ACK_PENDING,
    create_consumer, js_request,
};
pub use postgres::Postgres;
pub use prometheus::{Alertmanager, Prometheus, PrometheusSetup};
pub use registry::OciRegistry;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1, and never handed out
/// before in this process (the kernel may give a just-released port again:
/// a server's client and monitoring ports must not be the same).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind 127.0.0.1:0");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The async twin of [`wait_for`].
pub async fn wait_for_async<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An axum app served on a random loopback port from a thread with its own
/// runtime, so sync and async tests alike can use it; stopped on drop.
pub(crate) struct Served {
    pub port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    pub fn start(app: axum::Router) -> Served {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        Served {
            port,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The workspace root (where `.tools/` lives).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testsupport sits in the workspace")
        .to_path_buf()
}

/// The last `n` lines of a log file, for failure messages.
fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A TCP proxy in front of a real server that stops passing the server's
/// answers once the client has sent `marker` `after` times: the server keeps
/// running, the client just stops hearing from it — a deadline hit
/// part-way through a conversation (e.g. between two pages of a listing).
pub struct StallingProxy {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StallingProxy {
    pub fn start(upstream: std::net::SocketAddr, marker: &str, after: usize) -> StallingProxy {
        use std::io::{Read, Write};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let marker = marker.as_bytes().to_vec();
        let stop_accept = Arc::clone(&stop);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop_accept.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut client) = client else { continue };
                let Ok(mut server) = std::net::TcpStream::connect(upstream) else {
                    continue;
                };
                let (mut client_r, mut server_w) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let (seen_up, marker) = (Arc::clone(&seen), marker.clone());
                // Client → server: passed through, markers counted.
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = client_r.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        let hits = buf[..n]
                            .windows(marker.len())
                            .filter(|w| *w == marker.as_slice())
                            .count();
                        seen_up.fetch_add(hits, Ordering::SeqCst);
                        if server_w.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
                let seen_down = Arc::clone(&seen);
                // Server → client: passed until the marker was seen `after`
                // times, then read and dropped.
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = server.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        if seen_down.load(Ordering::SeqCst) >= after {
                            continue;
                        }
                        if client.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        StallingProxy { port, stop }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wake the accept loop so it sees the stop.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
