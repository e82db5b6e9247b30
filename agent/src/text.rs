//! The one sanitizer for text that did not come from Gatekeeper itself: what
//! gates say (criteria, triggers, errors, metadata, log lines, their
//! stdout/stderr) before any renderer shows it to a person — the table,
//! `gates inspect`, logs, progress lines, JUnit.
//!
//! The result is one line of printable text: control characters (newlines
//! included), bidirectional overrides, zero-width and other invisible format
//! characters, line/paragraph separators and byte-order marks are written
//! as visible escapes (`\n`, `\u{202e}`), runs of whitespace collapse to one
//! space, and the text is cut at [`MAX_SHOWN_CHARS`]. So a gate cannot move
//! the cursor, recolour the terminal, forge a log line, reorder what is shown,
//! or push a forged `verdict: GO` onto a line of its own.
//!
//! Also here, as the other small piece of text handling every layer uses:
//! [`glob_match`] for the name patterns a config gives.

/// The longest a piece of untrusted text is shown, in characters.
pub const MAX_SHOWN_CHARS: usize = 1000;

/// Untrusted text made safe to show on one line (see the module docs).
pub fn untrusted_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_SHOWN_CHARS + 16));
    let mut shown = 0usize;
    let mut last_space = false;
    let mut chars = text.chars();
    for c in chars.by_ref() {
        if shown >= MAX_SHOWN_CHARS {
            let rest = chars.count() + 1;
            out.push_str(&format!("… ({rest} more characters)"));
            return out;
        }
        if c == ' ' || c == '\t' {
            if !last_space {
                out.push(' ');
                shown += 1;
            }
            last_space = true;
            continue;
        }
        last_space = false;
        match escape(c) {
            Some(e) => {
                shown += e.chars().count();
                out.push_str(&e);
            }
            None => {
                out.push(c);
                shown += 1;
            }
        }
    }
    out
}

/// The visible escape for a character that must not reach a terminal raw.
fn escape(c: char) -> Option<String> {
    Some(match c {
        '\n' => "\\n".to_owned(),
        '\r' => "\\r".to_owned(),
        c if c.is_control() || invisible(c) => format!("\\u{{{:x}}}", c as u32),
        _ => return None,
    })
}

/// Format characters (Unicode category Cf), line and paragraph separators,
/// noncharacters and Unicode whitespace other than the plain space: they are
/// invisible or change how the text around them is laid out.
fn invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD
        | 0x0600..=0x0605
        | 0x061C
        | 0x06DD
        | 0x070F
        | 0x0890..=0x0891
        | 0x08E2
        | 0x1680
        | 0x180E
        | 0x2000..=0x200F
        | 0x2028..=0x202F
        | 0x205F..=0x206F
        | 0x3000
        | 0xFEFF
        | 0xFFF9..=0xFFFB
        | 0xFFFE..=0xFFFF
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0001
        | 0xE0020..=0xE007F
    )
}

/// A name pattern from the config (`[sources.nats] streams`, `[trust.keys.*]
/// gates`): `*` matches any run of characters; everything else itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_globs() {
        assert!(glob_match("AA_*", "AA_CORE_HOT"));
        assert!(glob_match("*_HOT", "AA_CORE_HOT"));
        assert!(glob_match("AA_*_HOT", "AA_CORE_HOT"));
        assert!(!glob_match("AA_*_HOT", "AA_DLQ"));
        assert!(glob_match("AA_DLQ", "AA_DLQ"));
        assert!(!glob_match("AA_DLQ", "AA_DLQ2"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("team-*", "team-a"));
        assert!(!glob_match("team-*", "teams"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "acb"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("é*ü", "éxü"));
    }

    #[test]
    fn control_and_layout_characters_become_visible_escapes() {
        assert_eq!(untrusted_line("a\nb\r\x1b[31mc"), "a\\nb\\r\\u{1b}[31mc");
        assert_eq!(
            untrusted_line("\u{202e}og\u{200b}\u{2028}\u{feff}"),
            "\\u{202e}og\\u{200b}\\u{2028}\\u{feff}"
        );
        assert_eq!(untrusted_line("\x07\u{9b}"), "\\u{7}\\u{9b}");
        // Ordinary text, including non-Latin scripts and emoji, is unchanged.
        assert_eq!(untrusted_line("λ 62 → 4.127 ✓ 日本"), "λ 62 → 4.127 ✓ 日本");
    }

    #[test]
    fn padding_collapses_and_long_text_is_cut() {
        let forged = format!("ok{}verdict: GO", " ".repeat(500));
        assert_eq!(untrusted_line(&forged), "ok verdict: GO");
        assert_eq!(untrusted_line("a\t\t b"), "a b");
        let long = "x".repeat(MAX_SHOWN_CHARS + 10);
        let shown = untrusted_line(&long);
        assert!(shown.ends_with("… (10 more characters)"), "{shown}");
        assert_eq!(shown.chars().filter(|c| *c == 'x').count(), MAX_SHOWN_CHARS);
    }
}
