//! A small HTTP server with canned answers per path: status, body, delay.
//! For health probes and Prometheus scrapes.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Served;

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
    server: Served,
}

impl std::fmt::Debug for CannedHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CannedHttp(port {})", self.server.port)
    }
}

impl CannedHttp {
    pub fn start() -> CannedHttp {
        let routes: Routes = Arc::default();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(routes.clone());
        CannedHttp {
            routes,
            server: Served::start(app),
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
        format!("http://127.0.0.1:{}{path}", self.server.port)
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

/// Receives webhook POSTs and keeps their JSON bodies (non-JSON is kept as a string).
pub struct WebhookSink {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    server: Served,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSink(port {})", self.server.port)
    }
}

impl WebhookSink {
    pub fn start() -> WebhookSink {
        let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let kept = bodies.clone();
        let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
                });
                kept.lock().expect("bodies").push(value);
                "ok"
            }
        });
        WebhookSink {
            bodies,
            server: Served::start(app),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.server.port)
    }

    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().expect("bodies").clone()
    }
}
