//! The gates compiled into the binary by `build.rs`.

include!(concat!(env!("OUT_DIR"), "/builtin_gates.rs"));

/// The component bytes of a built-in gate.
pub fn builtin_gate(name: &str) -> Option<&'static [u8]> {
    BUILTIN_GATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// Names of the built-in gates, sorted.
pub fn builtin_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = BUILTIN_GATES.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names
}
