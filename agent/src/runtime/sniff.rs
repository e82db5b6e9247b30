//! What a file that is not a gate component is, told from its first bytes,
//! so a load error says what was given and how to get a gate instead of a
//! parser's complaint about a magic number.

use super::LoadError;

/// The build that gives a gate component.
const BUILD: &str = "build the gate with `cargo build --release --target wasm32-wasip2` \
                     (`rustup target add wasm32-wasip2` once) and load \
                     `target/wasm32-wasip2/release/<crate>.wasm`";

/// `None` when the bytes start like a WebAssembly component (the compiler
/// then judges the rest); else what they are and the fix.
pub(super) fn not_a_component(bytes: &[u8]) -> Option<LoadError> {
    let what: &str = match bytes {
        [] => "an empty file",
        [0, b'a', b's', b'm', 0x0d, 0, 0x01, 0, ..] => return None,
        [0, b'a', b's', b'm', 0x01, 0, 0, 0, ..] => {
            return Some(LoadError::NotAComponent {
                what: "this is a core wasm module, not a component (wasm32-unknown-unknown \
                       and wasm32-wasip1 build modules; gates are components)"
                    .into(),
                fix: BUILD.into(),
            });
        }
        [0, b'a', b's', b'm', ..] => return None,
        [0x7f, b'E', b'L', b'F', ..] => "an ELF file: a native library or program, not wasm",
        [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..]
        | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..]
        | [0xca, 0xfe, 0xba, 0xbe, ..] => "a Mach-O file: a native library or program, not wasm",
        [b'M', b'Z', ..] => "a PE file (Windows DLL or program): native, not wasm",
        [b'!', b'<', b'a', b'r', b'c', b'h', b'>', b'\n', ..] => {
            "an `ar` archive (a Rust `.rlib` or a static library), not wasm"
        }
        _ if is_wat(bytes) => {
            return Some(LoadError::NotAComponent {
                what: "this is WebAssembly text (WAT), not a binary component".into(),
                fix: "assemble it with `wasm-tools parse`, or build the gate from Rust: \
                      `cargo build --release --target wasm32-wasip2`"
                    .into(),
            });
        }
        _ => "not WebAssembly (no `\\0asm` magic)",
    };
    Some(LoadError::NotAComponent {
        what: what.into(),
        fix: BUILD.into(),
    })
}

/// Text starting with `(module` or `(component`, after blanks and `;;` comments.
fn is_wat(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(&bytes[..bytes.len().min(4096)]) else {
        return false;
    };
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        match rest.strip_prefix(";;") {
            Some(comment) => rest = comment.split_once('\n').map_or("", |(_, r)| r),
            None => break,
        }
    }
    rest.starts_with("(module") || rest.starts_with("(component")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(bytes: &[u8]) -> String {
        not_a_component(bytes)
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn each_kind_of_file_is_named_with_its_fix() {
        assert!(said(b"\0asm\x0d\0\x01\0rest").is_empty());
        assert!(
            said(b"\0asm\x0e\0\x01\0").is_empty(),
            "other versions: the compiler says"
        );
        let core = said(b"\0asm\x01\0\0\0");
        assert!(core.starts_with("this is a core wasm module"), "{core}");
        assert!(core.contains("--target wasm32-wasip2"), "{core}");
        assert!(said(b"\x7fELF\x02\x01").starts_with("an ELF file: a native library"));
        assert!(said(b"\xcf\xfa\xed\xfe").starts_with("a Mach-O file"));
        assert!(said(b"MZ\x90\0").starts_with("a PE file"));
        assert!(said(b"!<arch>\n").contains(".rlib"));
        assert!(said(b"").starts_with("an empty file"));
        let wat = said(b";; a gate\n  (component (core module))");
        assert!(
            wat.contains("WebAssembly text") && wat.contains("wasm-tools parse"),
            "{wat}"
        );
        assert!(said(b"{\"json\": 1}").starts_with("not WebAssembly"));
        for s in [said(b"\x7fELF"), said(b"garbage")] {
            assert!(s.contains("rustup target add wasm32-wasip2"), "{s}");
            assert!(s.contains("target/wasm32-wasip2/release/"), "{s}");
        }
    }
}
