//! Gate signatures: minisign (Ed25519 over the BLAKE2b-512 prehash of the
//! component bytes), so a gate signed here verifies with `minisign -V` and
//! one signed with `minisign -S` verifies here. A signature sits beside
//! its gate (`gate.wasm.minisig`, or its own artifact in the registry).
//!
//! What is checked at load is [`TrustPolicy::check`]: the signature must
//! verify under a key the config's `[trust]` lets sign that gate. Anything
//! else (no signature, a bad one, an unknown or unauthorised key) refuses
//! the gate: it never runs.

use crate::text::glob_match;
use minisign::{KeyPair, PublicKey, PublicKeyBox, SecretKeyBox, SignatureBox};
use std::io::Cursor;

/// The suffix of a signature file beside its gate.
pub const SIGNATURE_SUFFIX: &str = ".minisig";

/// The largest signature file read.
pub const MAX_SIGNATURE_BYTES: u64 = 64 << 10;

/// Where a gate file's signature sits by default: `<file>.minisig`.
pub fn signature_beside(wasm: &std::path::Path) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}{SIGNATURE_SUFFIX}", wasm.display()))
}

/// A signature file's text; `None` when there is no such file.
pub fn read_signature(path: &std::path::Path) -> Result<Option<String>, crate::files::FileError> {
    match crate::files::read_untrusted_text(path, MAX_SIGNATURE_BYTES, "a signature") {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The environment variable holding an encrypted secret key's password.
pub const PASSWORD_ENV: &str = "GATEKEEPER_SIGNING_PASSWORD";

/// Why a signature could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "not a minisign public key ({0}); expected the `RW…` line of a `.pub` file, or the file"
    )]
    BadPublicKey(String),
    #[error(
        "not a minisign secret key ({0}); make one with `gatekeeper gate keygen` or `minisign -G`"
    )]
    BadSecretKey(String),
    #[error("the secret key is encrypted: set {PASSWORD_ENV} to its password")]
    NeedsPassword,
    #[error("cannot decrypt the secret key (wrong {PASSWORD_ENV}?): {0}")]
    Decrypt(String),
    #[error("not a minisign signature ({0})")]
    BadSignature(String),
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// A public key by the name the config gives it.
#[derive(Debug, Clone)]
pub struct NamedKey {
    pub name: String,
    pub key: PublicKey,
    /// Gate names (config names, `*` matches any run) this key may sign.
    pub gates: Vec<String>,
}

/// Who vouches for a gate that loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// Compiled into this binary: its bytes are the binary's.
    BuiltIn,
    /// No `[trust]` in the config, so signatures are not checked.
    Unchecked,
    /// Verified under this config key.
    Key { name: String, key_id: String },
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signer::BuiltIn => f.write_str("built-in"),
            Signer::Unchecked => f.write_str("unchecked (no [trust] in the config)"),
            Signer::Key { name, key_id } => write!(f, "{name} (key {key_id})"),
        }
    }
}

/// Why a gate is refused by the trust policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error(
        "unsigned: [trust] requires a signature and there is none ({where_}); sign it with \
         `gatekeeper gate sign` (or `minisign -S`)"
    )]
    Unsigned { where_: String },
    #[error("its signature is unreadable: {0}")]
    Unreadable(String),
    #[error(
        "a legacy minisign signature (not prehashed), which is not accepted: sign again with \
         `gatekeeper gate sign` or `minisign -S` (without -l)"
    )]
    Legacy,
    #[error("signed by key {key_id}, which is not a trusted key")]
    UnknownKey { key_id: String },
    #[error("signed by `{key}` (key {key_id}), which [trust] does not allow to sign gate `{gate}`")]
    NotAllowed {
        key: String,
        key_id: String,
        gate: String,
    },
    #[error("BAD SIGNATURE: the bytes are not what key `{key}` (key {key_id}) signed ({reason})")]
    Forged {
        key: String,
        key_id: String,
        reason: String,
    },
}

/// The config's `[trust]`: which keys may sign which gates.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    pub keys: Vec<NamedKey>,
}

impl TrustPolicy {
    /// Checks `bytes` against `signature` (the `.minisig` text, if any) for
    /// the gate configured as `gate`; `where_` says where the signature was
    /// looked for.
    pub fn check(
        &self,
        gate: &str,
        bytes: &[u8],
        signature: Option<&str>,
        where_: &str,
    ) -> Result<Signer, Untrusted> {
        let text = signature.ok_or_else(|| Untrusted::Unsigned {
            where_: where_.to_owned(),
        })?;
        let sig =
            SignatureBox::from_string(text).map_err(|e| Untrusted::Unreadable(e.to_string()))?;
        if !sig.is_prehashed() {
            return Err(Untrusted::Legacy);
        }
        let key_id = key_id_hex(sig.keynum());
        let candidates: Vec<&NamedKey> = self
            .keys
            .iter()
            .filter(|k| k.key.keynum() == sig.keynum())
            .collect();
        let Some(first) = candidates.first() else {
            return Err(Untrusted::UnknownKey { key_id });
        };
        let Some(key) = candidates
            .iter()
            .find(|k| k.gates.iter().any(|p| glob_match(p, gate)))
        else {
            return Err(Untrusted::NotAllowed {
                key: first.name.clone(),
                key_id,
                gate: gate.to_owned(),
            });
        };
        minisign::verify(&key.key, &sig, Cursor::new(bytes), true, false, false).map_err(|e| {
            Untrusted::Forged {
                key: key.name.clone(),
                key_id: key_id.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(Signer::Key {
            name: key.name.clone(),
            key_id,
        })
    }
}

/// A key id as minisign prints it: 16 upper-case hex digits of the
/// little-endian key number.
pub fn key_id_hex(keynum: &[u8]) -> String {
    keynum.iter().rev().map(|b| format!("{b:02X}")).collect()
}

/// A public key from a `.pub` file's text or its bare `RW…` line.
pub fn parse_public_key(text: &str) -> Result<PublicKey, SignatureError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .unwrap_or("");
    PublicKey::from_base64(line).map_err(|e| SignatureError::BadPublicKey(e.to_string()))
}

/// Why a public key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    #[error(transparent)]
    Key(#[from] SignatureError),
}

/// A minisign public key file (`.pub`).
pub fn read_public_key(path: &std::path::Path) -> Result<PublicKey, KeyFileError> {
    let text = crate::files::read_untrusted_text(
        path,
        crate::files::MAX_SECRET_FILE_BYTES,
        "a public key",
    )?;
    Ok(parse_public_key(&text)?)
}

/// Signs `bytes` with the secret key file's text; the trusted comment
/// names the file and its digest (both covered by the signature).
pub fn sign(
    secret_key: &str,
    password: Option<String>,
    bytes: &[u8],
    file_name: &str,
    sha256: &str,
) -> Result<String, SignatureError> {
    let sk_box = SecretKeyBox::from_string(secret_key)
        .map_err(|e| SignatureError::BadSecretKey(e.to_string()))?;
    // An unencrypted key (`minisign -G -W`) opens without a password; an
    // encrypted one is refused as "might be encrypted" and needs one.
    let sk = match sk_box.clone().into_unencrypted_secret_key() {
        Ok(sk) => sk,
        Err(e) if e.to_string().contains("encrypted") => {
            let password = password.ok_or(SignatureError::NeedsPassword)?;
            sk_box
                .into_secret_key(Some(password))
                .map_err(|e| SignatureError::Decrypt(e.to_string()))?
        }
        Err(e) => return Err(SignatureError::BadSecretKey(e.to_string())),
    };
    let trusted = format!(
        "timestamp:{}\tfile:{file_name}\tsha256:{sha256}",
        chrono::Utc::now().timestamp()
    );
    let signature = minisign::sign(
        None,
        &sk,
        Cursor::new(bytes),
        Some(&trusted),
        Some("signature from gatekeeper gate sign"),
    )
    .map_err(|e| SignatureError::Sign(e.to_string()))?;
    Ok(signature.into_string())
}

/// A new key pair as (public `.pub` text, secret key text); encrypted with
/// `password` when given (scrypt, as `minisign -G`), else unencrypted (as
/// `minisign -G -W`).
pub fn keygen(password: Option<String>) -> Result<(String, String), SignatureError> {
    let pair = match password {
        Some(p) => KeyPair::generate_encrypted_keypair(Some(p)),
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| SignatureError::Sign(e.to_string()))?;
    let public: PublicKeyBox = pair
        .pk
        .to_box()
        .map_err(|e| SignatureError::Sign(e.to_string()))?;
    let secret = pair
        .sk
        .to_box(None)
        .map_err(|e| SignatureError::Sign(e.to_string()))?;
    Ok((public.into_string(), secret.into_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(public: &str, gates: &[&str]) -> TrustPolicy {
        TrustPolicy {
            keys: vec![NamedKey {
                name: "platform".into(),
                key: parse_public_key(public).unwrap(),
                gates: gates.iter().map(|g| (*g).to_owned()).collect(),
            }],
        }
    }

    #[test]
    fn a_signature_verifies_only_for_its_bytes_key_and_allowed_gates() {
        let (public, secret) = keygen(None).unwrap();
        let bytes = b"\0asm\x0d\0\x01\0 a gate";
        let sig = sign(&secret, None, bytes, "g.wasm", "ab").unwrap();
        let p = policy(&public, &["team-*"]);
        let signer = p
            .check("team-a", bytes, Some(&sig), "g.wasm.minisig")
            .unwrap();
        assert!(
            matches!(&signer, Signer::Key { name, .. } if name == "platform"),
            "{signer}"
        );
        let mut tampered = bytes.to_vec();
        tampered[9] ^= 1;
        assert!(matches!(
            p.check("team-a", &tampered, Some(&sig), "x"),
            Err(Untrusted::Forged { .. })
        ));
        assert!(matches!(
            p.check("other", bytes, Some(&sig), "x"),
            Err(Untrusted::NotAllowed { .. })
        ));
        assert!(matches!(
            p.check("team-a", bytes, None, "x"),
            Err(Untrusted::Unsigned { .. })
        ));
        let (other_public, _) = keygen(None).unwrap();
        assert!(matches!(
            policy(&other_public, &["*"]).check("team-a", bytes, Some(&sig), "x"),
            Err(Untrusted::UnknownKey { .. })
        ));
        assert!(matches!(
            p.check("team-a", bytes, Some("garbage"), "x"),
            Err(Untrusted::Unreadable(_))
        ));
    }

    #[test]
    fn an_encrypted_key_needs_its_password() {
        let (public, secret) = keygen(Some("pw".into())).unwrap();
        assert!(matches!(
            sign(&secret, None, b"x", "f", "s"),
            Err(SignatureError::NeedsPassword)
        ));
        assert!(matches!(
            sign(&secret, Some("wrong".into()), b"x", "f", "s"),
            Err(SignatureError::Decrypt(_))
        ));
        let sig = sign(&secret, Some("pw".into()), b"x", "f", "s").unwrap();
        assert!(
            policy(&public, &["*"])
                .check("g", b"x", Some(&sig), "")
                .is_ok()
        );
    }
}
