//! `gatekeeper gate keygen | sign | verify | push | pull`: signing gates
//! (minisign format, so `minisign -S/-V` interoperate) and moving them
//! through an OCI registry into the local cache `check` reads.

use super::{AppError, async_runtime, emit, load_config, note, write_atomically};
use crate::cli::{EXIT_GO, EXIT_NO_GO, KeygenArgs, PullArgs, PushArgs, SignArgs, VerifySigArgs};
use crate::files::{DEFAULT_MAX_GATE_BYTES, read_untrusted, read_untrusted_text};
use crate::gate_set::GateSet;
use crate::supply::cache::{self, Cache};
use crate::supply::oci::{Reference, Registry};
use crate::supply::signature::{
    self, NamedKey, PASSWORD_ENV, TrustPolicy, read_signature, signature_beside,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A client for `reference`'s registry.
fn registry(reference: &Reference) -> Result<Registry, AppError> {
    crate::clients::install_crypto_provider();
    Registry::new(reference, REGISTRY_TIMEOUT).map_err(usage)
}

/// How long one registry request may take.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(60);

fn unreadable(path: &Path, message: impl std::fmt::Display) -> AppError {
    AppError::Unreadable {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn usage(message: impl std::fmt::Display) -> AppError {
    AppError::Usage {
        command: "gate",
        message: message.to_string(),
    }
}

fn password() -> Option<String> {
    std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty())
}

pub(super) fn keygen(args: KeygenArgs) -> Result<u8, AppError> {
    // NAME.pub and NAME.key, whatever dots NAME has (`release-1.2`).
    let public = PathBuf::from(format!("{}.pub", args.name.display()));
    let secret = PathBuf::from(format!("{}.key", args.name.display()));
    for path in [&public, &secret] {
        // A dangling link counts: nothing is written through it.
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(usage(format!(
                "{} exists: not overwriting a key",
                path.display()
            )));
        }
    }
    let password = match (args.encrypt, password()) {
        (true, None) => {
            return Err(usage(format!(
                "--encrypt takes the password from {PASSWORD_ENV}"
            )));
        }
        (true, p) => p,
        (false, _) => None,
    };
    let (pub_text, sec_text) = signature::keygen(password).map_err(usage)?;
    write_atomically(&public, pub_text.as_bytes())?;
    write_secret(&secret, sec_text.as_bytes())?;
    let key = signature::parse_public_key(&pub_text).map_err(usage)?;
    emit(&format!(
        "public key {} (key id {}): {}\nsecret key {}: keep it secret\n",
        public.display(),
        signature::key_id_hex(key.keynum()),
        key.to_base64(),
        secret.display()
    ))?;
    Ok(EXIT_GO)
}

/// A secret key file, readable by its owner only.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let write_error = |error| AppError::Write {
        path: path.display().to_string(),
        error,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    file.write_all(bytes).map_err(write_error)
}

/// A gate file's bytes and sha256.
fn read_gate(path: &Path) -> Result<crate::files::FileBytes, AppError> {
    read_untrusted(path, DEFAULT_MAX_GATE_BYTES, "a gate").map_err(|e| unreadable(path, e))
}

pub(super) fn sign(args: SignArgs) -> Result<u8, AppError> {
    let gate = read_gate(&args.wasm)?;
    let key = read_untrusted_text(
        &args.key,
        crate::files::MAX_SECRET_FILE_BYTES,
        "a secret key",
    )
    .map_err(|e| unreadable(&args.key, e))?;
    let file_name = args
        .wasm
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let sig = signature::sign(&key, password(), &gate.bytes, &file_name, &gate.sha256)
        .map_err(|e| unreadable(&args.key, e))?;
    let out = signature_beside(&args.wasm);
    write_atomically(&out, sig.as_bytes())?;
    emit(&format!(
        "signed {} (sha256 {}): {}\n",
        args.wasm.display(),
        gate.sha256,
        out.display()
    ))?;
    Ok(EXIT_GO)
}

pub(super) fn verify(args: VerifySigArgs) -> Result<u8, AppError> {
    let gate = read_gate(&args.wasm)?;
    let key = signature::read_public_key(&args.pubkey).map_err(|e| unreadable(&args.pubkey, e))?;
    let sig_path = args
        .signature
        .clone()
        .unwrap_or_else(|| signature_beside(&args.wasm));
    let sig = read_signature(&sig_path).map_err(|e| unreadable(&sig_path, e))?;
    let policy = TrustPolicy {
        keys: vec![NamedKey {
            name: args.pubkey.display().to_string(),
            key,
            gates: vec!["*".into()],
        }],
    };
    match policy.check(
        "gate",
        &gate.bytes,
        sig.as_deref(),
        &sig_path.display().to_string(),
    ) {
        Ok(signer) => {
            emit(&format!(
                "valid: {} (sha256 {}) signed by {signer}\n",
                args.wasm.display(),
                gate.sha256
            ))?;
            Ok(EXIT_GO)
        }
        Err(e) => {
            emit(&format!("INVALID: {}: {e}\n", args.wasm.display()))?;
            Ok(EXIT_NO_GO)
        }
    }
}

pub(super) fn push(args: PushArgs) -> Result<u8, AppError> {
    let reference = Reference::parse(&args.reference).map_err(usage)?;
    if reference.digest.is_some() {
        return Err(usage(
            "push to a tag or a bare repository; the registry gives the digest",
        ));
    }
    let gate = read_gate(&args.wasm)?;
    // Only a gate that loads is pushed: the registry should never hold
    // something `check` would refuse.
    let (config, name) =
        super::gate_run::one_gate_config(&args.wasm.display().to_string(), None, None)?;
    let set = GateSet::load(&config, None);
    let loaded = set
        .gate(&name)
        .map(|g| g.loaded.as_ref())
        .ok_or_else(|| usage("the gate did not load"))?
        .map_err(|e| unreadable(&args.wasm, format!("not pushed: it does not load: {e}")))?;
    let md = loaded.metadata();
    let sig_path = signature_beside(&args.wasm);
    let sig = read_signature(&sig_path).map_err(|e| unreadable(&sig_path, e))?;
    let title = args.wasm.file_name().map_or_else(
        || "gate.wasm".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let annotations = [
        ("org.opencontainers.image.title", md.name.clone()),
        ("org.opencontainers.image.version", md.version.clone()),
        (
            "org.opencontainers.image.description",
            md.description.clone(),
        ),
        (
            "dev.gatekeeper.gate.contract",
            loaded.contract().version().to_owned(),
        ),
    ];
    let registry = registry(&reference)?;
    let artifact = async_runtime()?
        .block_on(registry.push(&gate.bytes, sig.as_deref(), &title, &annotations))
        .map_err(usage)?;
    let cache = Cache::new(cache::default_dir().map_err(usage)?);
    cache.store(&artifact).map_err(usage)?;
    let pinned = reference.pinned(&artifact.manifest_digest);
    note(&format!(
        "pushed {} ({}@{}, {}) to {reference}",
        args.wasm.display(),
        md.name,
        md.version,
        if sig.is_some() {
            "with its .minisig, checked against [trust] where it is loaded"
        } else {
            "unsigned"
        }
    ));
    emit(&format!("{pinned}\n"))?;
    Ok(EXIT_GO)
}

pub(super) fn pull(args: PullArgs) -> Result<u8, AppError> {
    // From a config: its `oci` gates, bounded by its `runtime.max_gate_size`.
    let (references, max_gate_bytes): (Vec<String>, u64) = match &args.reference {
        Some(r) => (vec![r.clone()], DEFAULT_MAX_GATE_BYTES),
        None => {
            let config = load_config(&args.config)?;
            let refs: Vec<String> = config
                .gates
                .values()
                .filter_map(|g| g.oci.clone())
                .collect();
            if refs.is_empty() {
                return Err(usage(format!(
                    "{}: no gate with `oci`; name a reference",
                    args.config.config.display()
                )));
            }
            (refs, config.max_gate_bytes())
        }
    };
    let cache = Cache::new(cache::default_dir().map_err(usage)?);
    let runtime = async_runtime()?;
    for text in references {
        let reference = Reference::parse(&text).map_err(usage)?;
        let registry = registry(&reference)?;
        let artifact = runtime
            .block_on(registry.pull(max_gate_bytes as usize))
            .map_err(usage)?;
        cache.store(&artifact).map_err(usage)?;
        note(&format!(
            "pulled {reference} into {} ({})",
            cache.dir().display(),
            if artifact.signature.is_some() {
                "with a signature, checked against [trust] where it is loaded"
            } else {
                "unsigned"
            }
        ));
        emit(&format!(
            "{}\n",
            reference.pinned(&artifact.manifest_digest)
        ))?;
    }
    Ok(EXIT_GO)
}
