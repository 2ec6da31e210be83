//! The one choke point every untrusted string passes before it reaches a terminal, an error
//! message or a log line written for humans. It escapes *visibly* rather than dropping, so an
//! analyst sees that `micro\u{200b}soft.com` is not `microsoft.com`.
use std::borrow::Cow;
use std::fmt::Write;

/// Characters that render as nothing or reorder text: zero-width spaces/joiners, bidi
/// embeddings, overrides and isolates, word joiner and invisible operators, BOM, and the
/// Unicode "tag" and variation-selector blocks.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{034F}'
        | '\u{061C}'
        | '\u{115F}'..='\u{1160}'
        | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// True when `c` must not reach a terminal raw.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_invisible(c)
}

/// Returns `s` with every control, bidi and zero-width character shown as `\u{..}` (or `\t`,
/// `\n`, `\r`, `\e` for the common ones). Borrowed when nothing needed escaping.
pub fn display_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Sanitises lossily-decoded bytes (invalid UTF-8 becomes U+FFFD, which is visible).
pub fn display_safe_bytes(b: &[u8]) -> String {
    display_safe(&String::from_utf8_lossy(b)).into_owned()
}

/// Sanitises and cuts to at most `max` characters, marking the cut with `…`.
pub fn display_safe_truncated(s: &str, max: usize) -> String {
    let safe = display_safe(s);
    if safe.chars().count() <= max {
        return safe.into_owned();
    }
    let mut out: String = safe.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// CSV cells that a spreadsheet would run as a formula get a leading apostrophe.
pub fn csv_safe(s: &str) -> Cow<'_, str> {
    let safe = display_safe(s);
    match safe.chars().next() {
        Some('=' | '+' | '-' | '@') => Cow::Owned(format!("'{safe}")),
        _ => safe,
    }
}

/// Makes serialised JSON safe to print: every character [`display_safe`] would escape is
/// written as a `\uXXXX` escape (a surrogate pair above the BMP) instead. Such characters only
/// occur inside JSON strings, so the document parses back to exactly the same data, but `cat`
/// on it cannot drive a terminal (serde_json leaves DEL, C1, bidi and zero-width raw).
pub fn json_text_safe(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unsafe) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{:04x}", u);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_terminal_sequences_visibly() {
        assert_eq!(display_safe("evil\u{1b}]0;pwned\u{7}.com"), "evil\\e]0;pwned\\u{7}.com");
        assert_eq!(display_safe("micro\u{200b}soft.com"), "micro\\u{200b}soft.com");
        assert_eq!(display_safe("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe");
        assert_eq!(display_safe("a\u{9b}2J"), "a\\u{9b}2J");
        assert_eq!(display_safe("tab\there"), "tab\\there");
        assert!(matches!(display_safe("plain.example.com"), Cow::Borrowed(_)));
        assert_eq!(display_safe("Speciäl Ö01 – ok"), "Speciäl Ö01 – ok");
    }

    #[test]
    fn csv_neutralises_formulas() {
        assert_eq!(csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_safe("+1"), "'+1");
        assert_eq!(csv_safe("dropbox.com"), "dropbox.com");
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(display_safe_truncated("abcdef", 4), "abc…");
        assert_eq!(display_safe_truncated("abc", 4), "abc");
    }

    proptest! {
        #[test]
        fn output_never_contains_unsafe_chars(s in any::<String>()) {
            let out = display_safe(&s);
            prop_assert!(!out.chars().any(is_unsafe));
        }

        #[test]
        fn json_text_safe_round_trips(s in any::<String>()) {
            let json = serde_json::to_string(&s).unwrap();
            let safe = json_text_safe(&json);
            prop_assert!(!safe.chars().any(is_unsafe));
            prop_assert_eq!(serde_json::from_str::<String>(&safe).unwrap(), s);
        }

        #[test]
        fn safe_strings_pass_unchanged(s in "[a-zA-Z0-9 ._@:/-]{0,40}") {
            let out = display_safe(&s);
            prop_assert_eq!(out.as_ref(), s.as_str());
        }
    }
}
