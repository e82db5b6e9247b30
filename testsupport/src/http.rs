//! A small HTTP server with canned answers per path: status, body, delay.
//! For health probes and Prometheus scrapes.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Canned {
    status: u16,
    body: String,
    delay: Duration,
}

type Routes = Arc<Mutex<HashMap<String, Canned>>>;

/// Serves canned answers on a random loopback port; stopped on drop.
pub struct CannedHttp {
    routes: Routes,
    pub port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for CannedHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CannedHttp(port {})", self.port)
    }
}

impl CannedHttp {
    pub fn start() -> CannedHttp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let routes: Routes = Arc::default();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(routes.clone());
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
        CannedHttp {
            routes,
            port,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Answer `path` with `status` and `body` after `delay`.
    pub fn route(&self, path: &str, status: u16, body: &str, delay: Duration) {
        self.routes.lock().expect("routes").insert(
            path.to_owned(),
            Canned {
                status,
                body: body.to_owned(),
                delay,
            },
        );
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for CannedHttp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn answer(State(routes): State<Routes>, uri: Uri) -> Response {
    let canned = routes.lock().expect("routes").get(uri.path()).cloned();
    let Some(c) = canned else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("not found"))
            .expect("response");
    };
    tokio::time::sleep(c.delay).await;
    Response::builder()
        .status(StatusCode::from_u16(c.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "text/plain; version=0.0.4")
        .body(Body::from(c.body))
        .expect("response")
}
