//! Where a gate's bytes come from and who vouches for them: a built-in, a
//! `.wasm` file with its `.minisig` beside it, or an OCI artifact pinned
//! by digest and read from the local cache ([`cache`]) that `gate pull`
//! fills from a registry ([`oci`]); and the config's `[trust]` policy that
//! checks a signature ([`signature`]) before a gate is compiled.

pub mod cache;
pub mod oci;
pub mod reference;
pub mod signature;
