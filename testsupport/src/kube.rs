//! A fake Kubernetes API server: the real REST paths and JSON (k8s-openapi
//! types), for testing the collector through the real `kube::Client`.
//!
//! Serves list (label selectors, `limit`/`continue` paging), get and pod logs
//! for Deployments, Pods and ConfigMaps, JSON merge patches
//! (`application/merge-patch+json`) of ConfigMaps and Deployments, and
//! injects faults (HTTP status or delay) by path. A Deployment whose spec a
//! patch changes gets a new `generation`, observed at once (with every replica
//! the spec asks for updated and ready) by a pretend
//! controller unless rollouts are held. It is not an API server: no watch,
//! no creates or deletes, no auth.

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
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
    /// Every patch: (path, body).
    patches: Vec<(String, serde_json::Value)>,
    /// Patched Deployments stay unobserved (their rollout never finishes).
    hold_rollouts: bool,
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

    /// Every request so far (path and query; other methods than GET first, e.g. `PATCH /api/…`).
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }

    /// Every patch so far: (path, merge-patch body).
    pub fn patches(&self) -> Vec<(String, serde_json::Value)> {
        self.with(|s| s.patches.clone())
    }

    /// While held, a patched Deployment's new generation is never observed.
    pub fn hold_rollouts(&self, hold: bool) {
        self.with(|s| s.hold_rollouts = hold);
    }

    pub fn config_map(&self, namespace: &str, name: &str) -> Option<ConfigMap> {
        self.with(|s| find(&s.config_maps, namespace, name).cloned())
    }

    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Deployment> {
        self.with(|s| find(&s.deployments, namespace, name).cloned())
    }
}

type ObjectMeta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn find<'o, T: k8s_openapi::Metadata<Ty = ObjectMeta>>(
    items: &'o [T],
    ns: &str,
    name: &str,
) -> Option<&'o T> {
    items.iter().find(|o| {
        o.metadata().namespace.as_deref() == Some(ns) && o.metadata().name.as_deref() == Some(name)
    })
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(p) => {
            if !target.is_object() {
                *target = serde_json::json!({});
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Applies a merge patch to the named object; `Err` is the response to send.
fn patch_object<T>(
    items: &mut [T],
    ns: &str,
    name: &str,
    kind: &str,
    body: &serde_json::Value,
) -> Result<(T, T), Box<Response>>
where
    T: k8s_openapi::Metadata<Ty = ObjectMeta>
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Clone,
{
    let Some(obj) = items.iter_mut().find(|o| {
        o.metadata().namespace.as_deref() == Some(ns) && o.metadata().name.as_deref() == Some(name)
    }) else {
        return Err(Box::new(status(
            404,
            "NotFound",
            &format!("{kind} \"{name}\" not found"),
        )));
    };
    let before = obj.clone();
    let mut value = serde_json::to_value(&*obj).expect("encodes");
    merge_patch(&mut value, body);
    *obj = serde_json::from_value(value).map_err(|e| {
        Box::new(status(
            422,
            "Invalid",
            &format!("{kind} \"{name}\" is invalid: {e}"),
        ))
    })?;
    Ok((before, obj.clone()))
}

fn patch(s: &mut Objects, segments: &[&str], headers: &HeaderMap, body: &[u8]) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/merge-patch+json" {
        return status(
            415,
            "UnsupportedMediaType",
            &format!("the fake serves merge patches only, not {content_type:?}"),
        );
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(body) else {
        return status(400, "BadRequest", "the patch is not JSON");
    };
    let path = format!("/{}", segments.join("/"));
    match segments {
        ["api", "v1", "namespaces", ns, "configmaps", name] => {
            match patch_object(&mut s.config_maps, ns, name, "configmaps", &body) {
                Ok((_, after)) => {
                    s.patches.push((path, body));
                    json(serde_json::to_value(after).expect("encodes"))
                }
                Err(r) => *r,
            }
        }
        ["apis", "apps", "v1", "namespaces", ns, "deployments", name] => {
            let hold = s.hold_rollouts;
            match patch_object(&mut s.deployments, ns, name, "deployments.apps", &body) {
                Ok((before, _)) => {
                    s.patches.push((path, body));
                    let d = s
                        .deployments
                        .iter_mut()
                        .find(|d| {
                            d.metadata.name.as_deref() == Some(*name)
                                && d.metadata.namespace.as_deref() == Some(*ns)
                        })
                        .expect("just patched");
                    if serde_json::to_value(&before.spec).ok() != serde_json::to_value(&d.spec).ok()
                    {
                        let generation = d.metadata.generation.unwrap_or(1) + 1;
                        d.metadata.generation = Some(generation);
                        if !hold {
                            // The pretend controller: every replica the
                            // spec asks for is updated, ready and available.
                            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                            let status = d.status.get_or_insert_with(Default::default);
                            status.observed_generation = Some(generation);
                            status.replicas = Some(want);
                            status.updated_replicas = Some(want);
                            status.ready_replicas = Some(want);
                            status.available_replicas = Some(want);
                        }
                    }
                    json(serde_json::to_value(&*d).expect("encodes"))
                }
                Err(r) => *r,
            }
        }
        _ => status(
            405,
            "MethodNotAllowed",
            &format!("the fake cannot patch {path}"),
        ),
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

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let mut shown = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    if method != Method::GET {
        shown = format!("{method} {shown}");
    }
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
    let mut s = state.lock().expect("fake state");
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if method == Method::PATCH {
        return patch(&mut s, &segments, &headers, &body);
    }
    if method != Method::GET {
        return status(
            405,
            "MethodNotAllowed",
            &format!("the fake serves GET and PATCH, not {method}"),
        );
    }
    match segments.as_slice() {
        ["apis", "apps", "v1", "namespaces", ns, "deployments", name] => {
            find(&s.deployments, ns, name)
                .map(|d| json(serde_json::to_value(d).expect("encodes")))
                .unwrap_or_else(|| {
                    status(
                        404,
                        "NotFound",
                        &format!("deployments.apps \"{name}\" not found"),
                    )
                })
        }
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
