//! Free text one person typed (a reason, a ticket, a comment) that reaches someone else: an
//! admin's terminal, a listing, a log line. Characters that a terminal or a text renderer
//! would act on instead of showing — C0/C1 controls (ESC sequences among them), bidi
//! overrides and isolates that reorder what follows (`U+202E` makes `exe.txt` read as
//! `txt.exe`), zero-width and other invisible formatting characters, line separators — are
//! [`hidden`]: the daemon refuses them in new text ([`first_hidden`]), and everything that
//! shows text escapes them visibly ([`escape`], [`shown`]) so records from before are safe too.

/// A character that would be acted on, or be invisible, rather than be seen.
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'                      // soft hyphen
            | '\u{061c}'                    // Arabic letter mark
            | '\u{180e}'                    // Mongolian vowel separator
            | '\u{200b}'..='\u{200f}'       // zero-width space, (non-)joiner, LRM, RLM
            | '\u{2028}'..='\u{2029}'       // line and paragraph separators
            | '\u{202a}'..='\u{202e}'       // bidi embeddings and overrides
            | '\u{2060}'..='\u{206f}'       // word joiner, invisible operators, bidi isolates
            | '\u{feff}'                    // zero-width no-break space (BOM)
            | '\u{fff9}'..='\u{fffb}'       // interlinear annotation
            | '\u{e0000}'..='\u{e007f}' // tag characters
        )
}

/// The first [`hidden`] character of `s`, if any: what a validator names in its refusal.
pub fn first_hidden(s: &str) -> Option<char> {
    s.chars().find(|&c| hidden(c))
}

/// How a character is written: itself, or, when [`hidden`], a visible escape (`\n`, `\t`,
/// `\r`, else `\u{202e}`). Backslashes stay as they are, so escaping twice changes nothing.
fn piece(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        c => out.push(c),
    }
}

/// `s` with every [`hidden`] character written as a visible escape.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        piece(c, &mut out);
    }
    out
}

/// [`escape`]d, and at most `max` characters long: cut with `…` when longer (an escape is
/// never cut in half).
pub fn shown(s: &str, max: usize) -> String {
    let all = escape(s);
    if all.chars().count() <= max {
        return all;
    }
    let (mut out, mut count, mut one) = (String::new(), 0, String::new());
    for c in s.chars() {
        one.clear();
        piece(c, &mut one);
        let n = one.chars().count();
        if count + n > max.saturating_sub(1) {
            break;
        }
        out.push_str(&one);
        count += n;
    }
    out.push('…');
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_bidi_and_invisible_characters_are_escaped_visibly() {
        assert_eq!(escape("a\nb\u{202e}c\x1b[2J"), "a\\nb\\u{202e}c\\u{1b}[2J");
        for c in [
            '\u{0}',
            '\u{7f}',
            '\u{85}',
            '\u{9b}',
            '\u{200b}',
            '\u{200f}',
            '\u{202a}',
            '\u{2066}',
            '\u{2069}',
            '\u{feff}',
            '\u{2028}',
            '\u{e0041}',
        ] {
            assert!(hidden(c), "{c:?}");
            assert!(escape(&c.to_string()).starts_with("\\u{"), "{c:?}");
        }
        assert_eq!(
            escape("plain — text, ünïcode, 日本, \\u{41}"),
            "plain — text, ünïcode, 日本, \\u{41}"
        );
        assert_eq!(first_hidden("ok\u{2067}x"), Some('\u{2067}'));
        assert_eq!(first_hidden("INC-1234 schema migration"), None);
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = escape("x\u{202e}y\tz\r\n");
        assert_eq!(escape(&once), once);
        assert_eq!(first_hidden(&once), None);
    }

    #[test]
    fn shown_caps_the_length_without_cutting_an_escape() {
        assert_eq!(shown("abcdef", 4), "abc…");
        assert_eq!(shown("abcd", 4), "abcd");
        assert_eq!(shown("", 4), "");
        // "ab" + "\u{202e}" (8) would pass 6: cut before the escape, not inside it.
        assert_eq!(shown("ab\u{202e}cd", 6), "ab…");
        assert_eq!(shown("ab\u{202e}", 10), "ab\\u{202e}");
        assert_eq!(shown(&"x".repeat(5000), 100).chars().count(), 100);
    }

    #[test]
    fn cut_never_splits_a_character() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(cut("", 0), "");
    }
}
