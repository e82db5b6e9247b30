//! A fake Kubernetes API server: the real REST paths and JSON (k8s-openapi
//! types), for testing the collector through the real `kube::Client`.
//!
//! Serves list (label selectors, `limit`/`continue` paging), get and pod logs
//! for Deployments, Pods and ConfigMaps, and injects faults (HTTP status or
//! delay) by path. It is not an API server: no watch, no writes, no auth.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Served;

/// A fault applied to every request whose path contains `path_contains`.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this HTTP status and a k8s `Status` body.
    Status { path_contains: String, code: u16 },
    /// Wait this long before answering.
    Delay {
        path_contains: String,
        delay: Duration,
    },
}

#[derive(Default)]
struct Objects {
    deployments: Vec<Deployment>,
    pods: Vec<Pod>,
    config_maps: Vec<ConfigMap>,
    /// (namespace, pod, container) → log text.
    logs: HashMap<(String, String, String), String>,
    faults: Vec<Fault>,
    /// Every request's path and query, in order.
    requests: Vec<String>,
    /// Items per page when the client sends no smaller `limit`.
    page_size: Option<usize>,
}

type Shared = Arc<Mutex<Objects>>;

/// The fake API server, on a random loopback port; stopped on drop.
pub struct FakeKube {
    state: Shared,
    server: Served,
}

impl std::fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FakeKube(port {})", self.server.port)
    }
}

impl FakeKube {
    pub fn start() -> FakeKube {
        let state: Shared = Arc::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        FakeKube {
            state,
            server: Served::start(app),
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    /// Writes a kubeconfig pointing at this server (context `fake`,
    /// namespace `namespace`) into `dir`; returns its path.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             users:\n- name: fake\n  user:\n    token: fake-token\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\n\
             current-context: fake\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    fn with<T>(&self, f: impl FnOnce(&mut Objects) -> T) -> T {
        f(&mut self.state.lock().expect("fake state"))
    }

    pub fn add_deployment(&self, d: Deployment) {
        self.with(|s| s.deployments.push(d));
    }

    pub fn add_pod(&self, p: Pod) {
        self.with(|s| s.pods.push(p));
    }

    pub fn add_config_map(&self, c: ConfigMap) {
        self.with(|s| s.config_maps.push(c));
    }

    pub fn set_log(&self, namespace: &str, pod: &str, container: &str, text: &str) {
        self.with(|s| {
            s.logs.insert(
                (namespace.into(), pod.into(), container.into()),
                text.into(),
            )
        });
    }

    pub fn fault(&self, fault: Fault) {
        self.with(|s| s.faults.push(fault));
    }

    pub fn clear_faults(&self) {
        self.with(|s| s.faults.clear());
    }

    /// Serve lists in pages of `n` (exercises `continue`).
    pub fn page_size(&self, n: usize) {
        self.with(|s| s.page_size = Some(n));
    }

    /// Every request so far (path and query).
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    });
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("response")
}

fn json(value: serde_json::Value) -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))
        .expect("response")
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Equality-based selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated.
fn selects(selector: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                labels.get(k.trim()).map(String::as_str) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                labels.get(k.trim()).map(String::as_str) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                !labels.contains_key(k)
            } else {
                labels.contains_key(term)
            }
        })
}

fn list<
    T: serde::Serialize
        + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
>(
    items: &[T],
    ns: &str,
    kind: &str,
    api_version: &str,
    q: &BTreeMap<String, String>,
    page_size: Option<usize>,
) -> Response {
    let selector = q.get("labelSelector").map(String::as_str).unwrap_or("");
    let matching: Vec<&T> = items
        .iter()
        .filter(|o| o.metadata().namespace.as_deref() == Some(ns))
        .filter(|o| selects(selector, o.metadata().labels.as_ref()))
        .collect();
    let start: usize = q.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX)
        .min(page_size.unwrap_or(usize::MAX));
    let end = start.saturating_add(limit).min(matching.len());
    let page: Vec<serde_json::Value> = matching[start.min(end)..end]
        .iter()
        .map(|o| serde_json::to_value(o).expect("encodes"))
        .collect();
    let mut metadata = serde_json::json!({"resourceVersion": "1"});
    if end < matching.len() {
        metadata["continue"] = end.to_string().into();
    }
    json(serde_json::json!({
        "apiVersion": api_version, "kind": kind, "metadata": metadata, "items": page
    }))
}

async fn handle(State(state): State<Shared>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    let shown = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let faults = {
        let mut s = state.lock().expect("fake state");
        s.requests.push(shown);
        s.faults.clone()
    };
    for fault in faults {
        match fault {
            Fault::Delay {
                path_contains,
                delay,
            } if path.contains(&path_contains) => {
                tokio::time::sleep(delay).await;
            }
            Fault::Status {
                path_contains,
                code,
            } if path.contains(&path_contains) => {
                return status(code, "InternalError", "injected fault");
            }
            _ => {}
        }
    }
    let q = query(&uri);
    let s = state.lock().expect("fake state");
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["apis", "apps", "v1", "namespaces", ns, "deployments"] => list(
            &s.deployments,
            ns,
            "DeploymentList",
            "apps/v1",
            &q,
            s.page_size,
        ),
        ["api", "v1", "namespaces", ns, "pods"] => {
            list(&s.pods, ns, "PodList", "v1", &q, s.page_size)
        }
        ["api", "v1", "namespaces", ns, "configmaps", name] => s
            .config_maps
            .iter()
            .find(|c| {
                c.metadata.namespace.as_deref() == Some(*ns)
                    && c.metadata.name.as_deref() == Some(*name)
            })
            .map(|c| json(serde_json::to_value(c).expect("encodes")))
            .unwrap_or_else(|| {
                status(404, "NotFound", &format!("configmaps \"{name}\" not found"))
            }),
        ["api", "v1", "namespaces", ns, "pods", name, "log"] => {
            let container = q.get("container").cloned().unwrap_or_default();
            match s
                .logs
                .get(&(ns.to_string(), name.to_string(), container.clone()))
            {
                Some(text) => Response::builder()
                    .header("content-type", "text/plain")
                    .body(Body::from(text.clone()))
                    .expect("response"),
                None => status(
                    400,
                    "BadRequest",
                    &format!("container \"{container}\" in pod \"{name}\" is waiting to start"),
                ),
            }
        }
        _ => status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({path})"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [
            ("app".to_owned(), "api".to_owned()),
            ("tier".to_owned(), "web".to_owned()),
        ]
        .into();
        assert!(selects("app=api", Some(&labels)));
        assert!(selects("app==api,tier", Some(&labels)));
        assert!(!selects("app!=api", Some(&labels)));
        assert!(!selects("!tier", Some(&labels)));
        assert!(selects("", None));
        assert!(!selects("app=api", None));
        assert_eq!(decode("app%3Dapi%2Ctier"), "app=api,tier");
    }
}
