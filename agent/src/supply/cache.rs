//! The local content-addressed store of pulled gates, so `check` and
//! `watch` never need the registry: `blobs/sha256/<hex>` (manifests and
//! components) and `signatures/<manifest hex>.minisig`. Every read is
//! checked against the digest that names it; a file changed in the cache
//! is refused, not trusted.

use super::oci::{GateArtifact, digest_of, wasm_layer};
use std::path::{Path, PathBuf};

/// The environment variable that moves the cache.
pub const CACHE_ENV: &str = "GATEKEEPER_OCI_CACHE";

/// Why a pinned gate cannot be read from the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "{reference} is not in the local gate cache ({dir}); run `gatekeeper gate pull {reference}`"
    )]
    Missing { reference: String, dir: String },
    #[error("{path}: {message}")]
    Corrupt { path: String, message: String },
    #[error("{path}: cannot write: {error}")]
    Write { path: String, error: std::io::Error },
    #[error("no cache directory: set {CACHE_ENV} (or HOME / XDG_CACHE_HOME)")]
    NoDirectory,
}

/// `$GATEKEEPER_OCI_CACHE`, else `$XDG_CACHE_HOME/gatekeeper/oci` or
/// `~/.cache/gatekeeper/oci`.
pub fn default_dir() -> Result<PathBuf, CacheError> {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    crate::runtime::default_cache_dir()
        .and_then(|wasmtime| wasmtime.parent().map(|p| p.join("oci")))
        .ok_or(CacheError::NoDirectory)
}

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join("blobs").join("sha256").join(hex)
    }

    fn signature(&self, manifest_digest: &str) -> PathBuf {
        let hex = manifest_digest
            .strip_prefix("sha256:")
            .unwrap_or(manifest_digest);
        self.dir.join("signatures").join(format!("{hex}.minisig"))
    }

    /// Keeps a pulled or pushed gate.
    pub fn store(&self, artifact: &GateArtifact) -> Result<(), CacheError> {
        let write = |path: PathBuf, bytes: &[u8]| -> Result<(), CacheError> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|error| CacheError::Write {
                    path: parent.display().to_string(),
                    error,
                })?;
            }
            crate::files::write_exactly(&path, bytes).map_err(|error| CacheError::Write {
                path: path.display().to_string(),
                error,
            })
        };
        write(self.blob(&artifact.manifest_digest), &artifact.manifest)?;
        write(self.blob(&digest_of(&artifact.wasm)), &artifact.wasm)?;
        if let Some(sig) = &artifact.signature {
            write(self.signature(&artifact.manifest_digest), sig.as_bytes())?;
        }
        Ok(())
    }

    /// The gate pinned by `manifest_digest`, checked against its digests.
    pub fn load(
        &self,
        reference: &str,
        manifest_digest: &str,
        max_gate_bytes: u64,
    ) -> Result<GateArtifact, CacheError> {
        let manifest_path = self.blob(manifest_digest);
        if !manifest_path.exists() {
            return Err(CacheError::Missing {
                reference: reference.to_owned(),
                dir: self.dir.display().to_string(),
            });
        }
        let manifest = read_checked(&manifest_path, manifest_digest, 1 << 20)?;
        let corrupt = |path: &Path, message: String| CacheError::Corrupt {
            path: path.display().to_string(),
            message,
        };
        let (layer, size) = wasm_layer(&manifest).map_err(|e| corrupt(&manifest_path, e.0))?;
        let wasm_path = self.blob(&layer);
        if !wasm_path.exists() {
            return Err(CacheError::Missing {
                reference: reference.to_owned(),
                dir: self.dir.display().to_string(),
            });
        }
        let wasm = read_checked(&wasm_path, &layer, max_gate_bytes)?;
        if wasm.len() as u64 != size {
            return Err(corrupt(
                &wasm_path,
                format!("{} bytes, the manifest says {size}", wasm.len()),
            ));
        }
        let sig_path = self.signature(manifest_digest);
        let signature = super::signature::read_signature(&sig_path)
            .map_err(|e| corrupt(&sig_path, e.to_string()))?;
        Ok(GateArtifact {
            wasm,
            signature,
            manifest_digest: manifest_digest.to_owned(),
            manifest,
        })
    }

    /// Where a pinned gate's signature is kept (for messages).
    pub fn signature_path(&self, manifest_digest: &str) -> PathBuf {
        self.signature(manifest_digest)
    }
}

fn read_checked(path: &Path, digest: &str, limit: u64) -> Result<Vec<u8>, CacheError> {
    let file = crate::files::read_untrusted(path, limit, "a cached gate blob").map_err(|e| {
        CacheError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    })?;
    let actual = format!("sha256:{}", file.sha256);
    if actual != digest {
        return Err(CacheError::Corrupt {
            path: path.display().to_string(),
            message: format!(
                "its content is {actual}, not {digest}: changed in the cache; pull it again"
            ),
        });
    }
    Ok(file.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supply::oci::gate_manifest;

    #[test]
    fn a_stored_gate_loads_and_a_changed_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        let wasm = b"\0asm\x0d\0\x01\0gate".to_vec();
        let (manifest, _) = gate_manifest(&wasm, "g.wasm", &[]);
        let artifact = GateArtifact {
            manifest_digest: digest_of(&manifest),
            manifest,
            wasm: wasm.clone(),
            signature: Some("sig".into()),
        };
        cache.store(&artifact).unwrap();
        let d = &artifact.manifest_digest;
        let back = cache.load("oci://r/g", d, 1 << 20).unwrap();
        assert_eq!(
            (back.wasm, back.signature.as_deref()),
            (wasm.clone(), Some("sig"))
        );
        let missing = cache
            .load("oci://r/g", &digest_of(b"other"), 1 << 20)
            .unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("run `gatekeeper gate pull oci://r/g`"),
            "{missing}"
        );
        std::fs::write(cache.blob(&digest_of(&wasm)), b"\0asm\x0d\0\x01\0evil").unwrap();
        let changed = cache.load("oci://r/g", d, 1 << 20).unwrap_err().to_string();
        assert!(changed.contains("changed in the cache"), "{changed}");
    }
}
