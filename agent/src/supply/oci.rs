//! Gates in an OCI registry, laid out as Kubewarden lays out its policies
//! (and the CNCF wasm OCI artifact layout): an image manifest whose config
//! is `application/vnd.wasm.config.v1+json` and whose one layer is the
//! component, `application/vnd.wasm.content.layer.v1+wasm`. A gate's
//! signature is a second artifact whose `subject` is the gate's manifest,
//! tagged `sha256-<hex>.minisig` (the tag scheme cosign uses, for
//! registries without the referrers API, as distribution 2.8).
//!
//! Everything fetched is checked against the digest that names it before
//! it is kept. Registries on loopback are spoken to over plain HTTP, any
//! other over HTTPS. Registry authentication is not implemented.

pub use super::reference::Reference;
use sha2::{Digest, Sha256};
use std::time::Duration;

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.wasm.config.v1+json";
pub const LAYER_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
pub const SIGNATURE_ARTIFACT: &str = "application/vnd.gatekeeper.signature.minisign.v1";
const SIGNATURE_LAYER: &str = "application/vnd.gatekeeper.signature.minisign.v1+text";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The largest manifest read (a gate's is under 1 KiB).
const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(
        "`{0}` is not an OCI reference: expected oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]"
    )]
    BadReference(String),
    #[error("{registry}: {what}: {message}")]
    Registry {
        registry: String,
        what: String,
        message: String,
    },
    #[error("{what}: the registry sent content whose digest is {actual}, not {expected}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{0}: not a gate artifact ({1})")]
    NotAGate(String, String),
}

/// A gate as it travels: its component, and its signature when it has one.
#[derive(Debug, Clone)]
pub struct GateArtifact {
    pub wasm: Vec<u8>,
    pub signature: Option<String>,
    /// `sha256:<hex>` of the manifest: what a config pins.
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The manifest for a gate (deterministic: the same gate gives the same
/// manifest, so the same digest).
pub fn gate_manifest(
    wasm: &[u8],
    title: &str,
    annotations: &[(&str, String)],
) -> (Vec<u8>, Vec<u8>) {
    let layer_digest = digest_of(wasm);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
    }))
    .expect("encodes");
    let mut notes = serde_json::Map::new();
    for (k, v) in annotations {
        notes.insert((*k).to_owned(), v.clone().into());
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": digest_of(&config), "size": config.len()},
        "layers": [{
            "mediaType": LAYER_TYPE,
            "digest": layer_digest,
            "size": wasm.len(),
            "annotations": {"org.opencontainers.image.title": title},
        }],
        "annotations": notes,
    }))
    .expect("encodes");
    (manifest, config)
}

/// Why a manifest is not a gate's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotAGateManifest(pub String);

/// The wasm layer's digest and size in a gate manifest.
pub fn wasm_layer(manifest: &[u8]) -> Result<(String, u64), NotAGateManifest> {
    let bad = |m: String| NotAGateManifest(m);
    let m: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| bad(format!("manifest is not JSON: {e}")))?;
    let layers = m["layers"]
        .as_array()
        .ok_or_else(|| bad("manifest has no layers".into()))?;
    let wasm: Vec<&serde_json::Value> = layers
        .iter()
        .filter(|l| l["mediaType"] == LAYER_TYPE)
        .collect();
    match wasm.as_slice() {
        [l] => {
            let digest = l["digest"]
                .as_str()
                .ok_or_else(|| bad("layer without a digest".into()))?;
            let size = l["size"]
                .as_u64()
                .ok_or_else(|| bad("layer without a size".into()))?;
            if Reference::parse(&format!("x/y@{digest}")).is_err() {
                return Err(bad(format!("layer digest `{digest}` is not sha256:<hex>")));
            }
            Ok((digest.to_owned(), size))
        }
        [] => Err(bad(format!(
            "no `{LAYER_TYPE}` layer (media types: {})",
            layers
                .iter()
                .map(|l| l["mediaType"].as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        _ => Err(bad(format!("more than one `{LAYER_TYPE}` layer"))),
    }
}

/// A registry client for one reference.
pub struct Registry {
    client: reqwest::Client,
    reference: Reference,
}

impl Registry {
    /// (The caller installs the TLS crypto provider first:
    /// `clients::install_crypto_provider`.)
    pub fn new(reference: &Reference, timeout: Duration) -> Result<Registry, OciError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("gatekeeper/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| OciError::Registry {
                registry: reference.registry.clone(),
                what: "client".into(),
                message: e.without_url().to_string(),
            })?;
        Ok(Registry {
            client,
            reference: reference.clone(),
        })
    }

    fn error(&self, what: impl Into<String>, message: impl std::fmt::Display) -> OciError {
        OciError::Registry {
            registry: self.reference.registry.clone(),
            what: what.into(),
            message: message.to_string(),
        }
    }

    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OciError> {
        let response = request
            .send()
            .await
            .map_err(|e| self.error(what, e.without_url()))?;
        self.success(what, response).await
    }

    /// The response when it succeeded, else the error naming its status and
    /// (the start of) what the registry said.
    async fn success(
        &self,
        what: &str,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, OciError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = crate::text::untrusted_line(&body)
            .chars()
            .take(300)
            .collect();
        Err(self.error(what, format!("HTTP {status}: {body}")))
    }

    /// Uploads a blob unless the registry has it.
    async fn put_blob(&self, bytes: &[u8]) -> Result<String, OciError> {
        let digest = digest_of(bytes);
        let base = self.reference.base_url();
        let head = self
            .client
            .head(format!("{base}/blobs/{digest}"))
            .send()
            .await
            .map_err(|e| self.error("blob", e.without_url()))?;
        if head.status().is_success() {
            return Ok(digest);
        }
        let started = self
            .send(
                "start upload",
                self.client.post(format!("{base}/blobs/uploads/")),
            )
            .await?;
        let location = started
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| self.error("start upload", "no Location header"))?
            .to_owned();
        let mut url = reqwest::Url::parse(&base)
            .and_then(|b| b.join(&location))
            .map_err(|e| self.error("upload location", e))?;
        url.query_pairs_mut().append_pair("digest", &digest);
        self.send(
            "upload",
            self.client
                .put(url)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(bytes.to_vec()),
        )
        .await?;
        Ok(digest)
    }

    async fn put_manifest(&self, reference: &str, manifest: &[u8]) -> Result<(), OciError> {
        self.send(
            "put manifest",
            self.client
                .put(format!(
                    "{}/manifests/{reference}",
                    self.reference.base_url()
                ))
                .header(reqwest::header::CONTENT_TYPE, MANIFEST_TYPE)
                .body(manifest.to_vec()),
        )
        .await?;
        Ok(())
    }

    /// Pushes a gate (and its signature); returns the manifest digest.
    pub async fn push(
        &self,
        wasm: &[u8],
        signature: Option<&str>,
        title: &str,
        annotations: &[(&str, String)],
    ) -> Result<GateArtifact, OciError> {
        let (manifest, config) = gate_manifest(wasm, title, annotations);
        self.put_blob(&config).await?;
        self.put_blob(wasm).await?;
        let digest = digest_of(&manifest);
        self.put_manifest(self.reference.tag.as_deref().unwrap_or(&digest), &manifest)
            .await?;
        if let Some(sig) = signature {
            self.push_signature(&digest, manifest.len(), sig).await?;
        }
        Ok(GateArtifact {
            wasm: wasm.to_vec(),
            signature: signature.map(str::to_owned),
            manifest_digest: digest,
            manifest,
        })
    }

    async fn push_signature(&self, subject: &str, size: usize, sig: &str) -> Result<(), OciError> {
        let empty = b"{}";
        self.put_blob(empty).await?;
        let layer = self.put_blob(sig.as_bytes()).await?;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "artifactType": SIGNATURE_ARTIFACT,
            "config": {"mediaType": EMPTY_TYPE, "digest": digest_of(empty), "size": 2},
            "layers": [{"mediaType": SIGNATURE_LAYER, "digest": layer, "size": sig.len()}],
            "subject": {"mediaType": MANIFEST_TYPE, "digest": subject, "size": size},
        }))
        .expect("encodes");
        self.put_manifest(&signature_tag(subject), &manifest).await
    }

    /// Fetches a manifest by tag or digest, checked against the digest.
    async fn get_manifest(&self, reference: &str) -> Result<Option<Vec<u8>>, OciError> {
        let what = format!("manifest {reference}");
        let response = self
            .client
            .get(format!(
                "{}/manifests/{reference}",
                self.reference.base_url()
            ))
            .header(reqwest::header::ACCEPT, MANIFEST_TYPE)
            .send()
            .await
            .map_err(|e| self.error(&what, e.without_url()))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.success(&what, response).await?;
        let bytes = self
            .read_capped(&what, response, MAX_MANIFEST_BYTES)
            .await?;
        if reference.starts_with("sha256:") {
            check_digest(&what, reference, &bytes)?;
        }
        Ok(Some(bytes))
    }

    async fn get_blob(&self, digest: &str, limit: usize) -> Result<Vec<u8>, OciError> {
        let what = format!("blob {digest}");
        let response = self
            .send(
                &what,
                self.client
                    .get(format!("{}/blobs/{digest}", self.reference.base_url())),
            )
            .await?;
        let bytes = self.read_capped(&what, response, limit).await?;
        check_digest(&what, digest, &bytes)?;
        Ok(bytes)
    }

    async fn read_capped(
        &self,
        what: &str,
        mut response: reqwest::Response,
        limit: usize,
    ) -> Result<Vec<u8>, OciError> {
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.error(what, e.without_url()))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > limit {
                return Err(self.error(what, format!("larger than {limit} bytes")));
            }
        }
        Ok(bytes)
    }

    /// Pulls a gate and its signature (if the registry has one).
    pub async fn pull(&self, max_gate_bytes: usize) -> Result<GateArtifact, OciError> {
        let reference = self.reference.manifest_ref().to_owned();
        let manifest = self.get_manifest(&reference).await?.ok_or_else(|| {
            self.error(format!("manifest {reference}"), "not found in the registry")
        })?;
        let digest = digest_of(&manifest);
        let (layer, size) = wasm_layer(&manifest)
            .map_err(|e| OciError::NotAGate(self.reference.to_string(), e.0))?;
        if size > max_gate_bytes as u64 {
            return Err(OciError::NotAGate(
                self.reference.to_string(),
                format!("its layer is {size} bytes, over the {max_gate_bytes}-byte gate limit"),
            ));
        }
        let wasm = self.get_blob(&layer, max_gate_bytes).await?;
        if wasm.len() as u64 != size {
            return Err(OciError::NotAGate(
                self.reference.to_string(),
                format!(
                    "its layer is {} bytes, the manifest says {size}",
                    wasm.len()
                ),
            ));
        }
        let signature = match self.get_manifest(&signature_tag(&digest)).await? {
            None => None,
            Some(sig_manifest) => Some(self.signature_from(&sig_manifest, &digest).await?),
        };
        Ok(GateArtifact {
            wasm,
            signature,
            manifest_digest: digest,
            manifest,
        })
    }

    async fn signature_from(&self, manifest: &[u8], subject: &str) -> Result<String, OciError> {
        let what = format!("signature of {subject}");
        let m: serde_json::Value =
            serde_json::from_slice(manifest).map_err(|e| self.error(&what, e))?;
        if m["subject"]["digest"] != subject {
            return Err(self.error(&what, "its subject is another manifest"));
        }
        let digest = m["layers"][0]["digest"]
            .as_str()
            .filter(|_| m["layers"][0]["mediaType"] == SIGNATURE_LAYER)
            .ok_or_else(|| self.error(&what, "no signature layer"))?;
        let bytes = self
            .get_blob(digest, super::signature::MAX_SIGNATURE_BYTES as usize)
            .await?;
        String::from_utf8(bytes).map_err(|_| self.error(&what, "not text"))
    }
}

/// The tag a gate's signature artifact is pushed under.
pub fn signature_tag(manifest_digest: &str) -> String {
    format!("{}.minisig", manifest_digest.replace(':', "-"))
}

fn check_digest(what: &str, expected: &str, bytes: &[u8]) -> Result<(), OciError> {
    let actual = digest_of(bytes);
    if actual != expected {
        return Err(OciError::DigestMismatch {
            what: what.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_deterministic_and_names_its_layer() {
        let (a, _) = gate_manifest(b"wasm", "g.wasm", &[("k", "v".into())]);
        let (b, _) = gate_manifest(b"wasm", "g.wasm", &[("k", "v".into())]);
        assert_eq!(a, b);
        assert_eq!(wasm_layer(&a).unwrap(), (digest_of(b"wasm"), 4));
        assert!(
            wasm_layer(b"{\"layers\":[]}")
                .unwrap_err()
                .0
                .starts_with("no `")
        );
        assert_eq!(signature_tag("sha256:ab"), "sha256-ab.minisig");
    }
}
