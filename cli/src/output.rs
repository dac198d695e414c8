//! What the CLI prints beyond plain text: JSON output, and text someone else typed made safe
//! for a terminal ([`clean`], [`truncate`]).

/// `--json` output: pretty-printed, one value, then a newline.
pub fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Text someone else typed, made safe for a terminal: control characters and bidi overrides
/// are shown escaped instead of being interpreted.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `max` characters, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_escapes_controls_and_bidi_and_truncate_marks_the_cut() {
        assert_eq!(clean("a\nb\u{202e}c\x1b"), "a\\nb\\u{202e}c\\u{1b}");
        assert_eq!(clean("plain — text"), "plain — text");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
