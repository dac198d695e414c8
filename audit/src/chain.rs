//! Canonical JSON, record hashing, and the record rules shared by the writer and the verifier.
//!
//! Everything here is pure. The crate documentation describes the format these functions
//! implement; the writer and the verifier both go through `record_line` and
//! `check_record`, so what one writes is exactly what the other accepts.

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use std::fmt;

/// The value of every record's `v` key.
pub const FORMAT_VERSION: u64 = 1;

/// `prev` of the very first record of a fresh log (64 zeros).
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Keys the writer sets itself. Caller fields using any of them are rejected.
pub const RESERVED_KEYS: [&str; 6] = ["v", "seq", "time", "event", "prev", "hash"];

/// Largest integer magnitude allowed anywhere in a record (2^53 - 1, as in I-JSON, RFC 7493):
/// every such integer survives tools that read numbers as doubles (jq 1.6, JavaScript).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Longest line (excluding its newline) the writer writes; the verifier treats longer lines
/// as unparseable.
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// Deepest nesting of arrays/objects allowed in a caller field's value.
pub const MAX_FIELD_DEPTH: usize = 32;

/// The canonical form of `v`: compact (no whitespace), object keys sorted by byte order at every
/// level, strings escaped as described in the crate documentation, integers in plain decimal.
///
/// Records never contain floats (the writer rejects them, the verifier flags them); should `v`
/// hold one anyway it is written as serde_json displays it.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

/// Hex SHA-256 of the canonical form of `obj` without its top-level `hash` key: the value a
/// record's `hash` must have.
pub fn record_hash(obj: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_object(&mut out, obj, Some("hash"));
    sha256_hex(out.as_bytes())
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// 64 lower-case hex digits.
pub(crate) fn is_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// 1 to 64 characters of `[a-z0-9._-]`: what an `event` may be called.
pub(crate) fn is_event_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(m) => write_object(out, m, None),
    }
}

fn write_object(out: &mut String, m: &Map<String, Value>, skip: Option<&str>) {
    let mut entries: Vec<(&String, &Value)> =
        m.iter().filter(|(k, _)| Some(k.as_str()) != skip).collect();
    // `str` orders by bytes, i.e. by Unicode code point: independent of the Map's own order.
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else {
        out.push_str(&n.to_string());
    }
}

/// JSON string escaping: `"` and `\` backslash-escaped; `\b \f \n \r \t` short escapes; every
/// other control character (U+0000..U+001F) and U+007F as `\u00xx` (lower-case hex); everything
/// else, including non-ASCII, as raw UTF-8. This is serde_json's escaping plus U+007F, i.e.
/// exactly what `jq -c` prints.
fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let b = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[(b >> 4) & 0x0f]));
                out.push(char::from(HEX[b & 0x0f]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The exact bytes of a record's line (without the newline): `v`, `seq`, `time`, `event`, then
/// the remaining keys in byte order, then `prev` and `hash`; every value in canonical form.
/// `None` if one of the reserved keys is missing.
pub(crate) fn record_line(rec: &Map<String, Value>) -> Option<String> {
    let mut out = String::with_capacity(256);
    out.push('{');
    let head = ["v", "seq", "time", "event"];
    for (i, key) in head.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, key);
        out.push(':');
        write_value(&mut out, rec.get(*key)?);
    }
    let mut rest: Vec<(&String, &Value)> = rec
        .iter()
        .filter(|(k, _)| !RESERVED_KEYS.contains(&k.as_str()))
        .collect();
    rest.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (k, v) in rest {
        out.push(',');
        write_str(&mut out, k);
        out.push(':');
        write_value(&mut out, v);
    }
    for key in ["prev", "hash"] {
        out.push(',');
        write_str(&mut out, key);
        out.push(':');
        write_value(&mut out, rec.get(key)?);
    }
    out.push('}');
    Some(out)
}

/// Why a value may not be in a record. `Display` is the text of the writer's error and of
/// the verifier's `Malformed` problem.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ValueError {
    NotInteger(Number),
    Unsafe(Number),
    TooDeep,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::NotInteger(n) => write!(f, "non-integer number {n}"),
            ValueError::Unsafe(n) => write!(f, "integer {n} beyond ±(2^53-1)"),
            ValueError::TooDeep => f.write_str("nested too deeply"),
        }
    }
}

/// Numbers must be integers within ±[`MAX_SAFE_INTEGER`]; nesting at most `max_depth` deep.
pub(crate) fn check_value(v: &Value, max_depth: usize) -> Result<(), ValueError> {
    match v {
        Value::Number(n) => {
            let ok = match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u <= MAX_SAFE_INTEGER,
                (None, Some(i)) => i.unsigned_abs() <= MAX_SAFE_INTEGER,
                (None, None) => return Err(ValueError::NotInteger(n.clone())),
            };
            if ok {
                Ok(())
            } else {
                Err(ValueError::Unsafe(n.clone()))
            }
        }
        Value::Array(items) => {
            if max_depth == 0 {
                return Err(ValueError::TooDeep);
            }
            items.iter().try_for_each(|i| check_value(i, max_depth - 1))
        }
        Value::Object(m) => {
            if max_depth == 0 {
                return Err(ValueError::TooDeep);
            }
            m.values().try_for_each(|i| check_value(i, max_depth - 1))
        }
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

/// The reserved keys of a record, checked for type and shape (not the hash's correctness).
#[derive(Debug, Clone)]
pub(crate) struct RecordHead {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
}

/// Which reserved key of a record is wrong, and how. `Display` is the text of the verifier's
/// `Malformed` problem.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RecordError {
    Missing(&'static str),
    Version(Value),
    Seq(Value),
    Time(Value),
    Event(Value),
    /// `prev` or `hash`, and its value.
    Hex(&'static str, Value),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Missing(key) => write!(f, "missing `{key}`"),
            RecordError::Version(v) => write!(f, "unsupported format version `v`: {v}"),
            RecordError::Seq(v) => write!(f, "`seq` is not a non-negative integer: {v}"),
            RecordError::Time(v) => write!(f, "`time` is not a UTC RFC 3339 timestamp: {v}"),
            RecordError::Event(v) => write!(f, "`event` is not a non-empty string: {v}"),
            RecordError::Hex(key, v) => write!(f, "`{key}` is not 64 lower-case hex digits: {v}"),
        }
    }
}

/// Check a parsed record's reserved keys: `v` is 1, `seq` an integer, `time` an RFC 3339 UTC
/// timestamp with milliseconds, `event` a non-empty string, `prev`/`hash` 64 lower-case hex.
pub(crate) fn check_record(rec: &Map<String, Value>) -> Result<RecordHead, RecordError> {
    match rec.get("v") {
        Some(v) if v.as_u64() == Some(FORMAT_VERSION) => {}
        Some(v) => return Err(RecordError::Version(v.clone())),
        None => return Err(RecordError::Missing("v")),
    }
    let seq = match rec.get("seq") {
        Some(v) => v.as_u64().ok_or_else(|| RecordError::Seq(v.clone()))?,
        None => return Err(RecordError::Missing("seq")),
    };
    match rec.get("time") {
        Some(Value::String(t)) if elevate_base::time::is_record_time(t) => {}
        Some(v) => return Err(RecordError::Time(v.clone())),
        None => return Err(RecordError::Missing("time")),
    }
    match rec.get("event") {
        Some(Value::String(e)) if !e.is_empty() => {}
        Some(v) => return Err(RecordError::Event(v.clone())),
        None => return Err(RecordError::Missing("event")),
    }
    let hex = |key: &'static str| match rec.get(key) {
        Some(Value::String(h)) if is_hash(h) => Ok(h.clone()),
        Some(v) => Err(RecordError::Hex(key, v.clone())),
        None => Err(RecordError::Missing(key)),
    };
    let prev = hex("prev")?;
    let hash = hex("hash")?;
    Ok(RecordHead { seq, prev, hash })
}

/// Parse one line as a well-formed record (used by the writer's tail recovery): JSON object with
/// valid reserved keys. The hash is not recomputed.
pub(crate) fn parse_record(line: &[u8]) -> Option<RecordHead> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => check_record(&m).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"z": [true, null, {"y": "x", "x": -3}], "m": "é"}, "A": 0});
        assert_eq!(
            canonical_json(&v),
            r#"{"A":0,"a":{"m":"é","z":[true,null,{"x":-3,"y":"x"}]},"b":1}"#
        );
        // Byte order, not locale order: upper case before lower case, multi-byte last.
        let v = json!({"é": 1, "z": 2, "Z": 3, "": 4});
        assert_eq!(canonical_json(&v), r#"{"":4,"Z":3,"z":2,"é":1}"#);
    }

    #[test]
    fn string_escaping_matches_serde_json_except_del() {
        for c in (0u32..0x80).chain([0x80, 0xe9, 0x2028, 0x1f600]) {
            let Some(c) = char::from_u32(c) else { continue };
            let s = format!("a{c}b");
            let ours = canonical_json(&Value::String(s.clone()));
            let theirs = serde_json::to_string(&s).unwrap_or_default();
            if c == '\u{7f}' {
                assert_eq!(ours, "\"a\\u007fb\"");
            } else {
                assert_eq!(ours, theirs, "char {:#x}", u32::from(c));
            }
            // And it parses back to the same string.
            let back: Value = serde_json::from_str(&ours).unwrap_or(Value::Null);
            assert_eq!(back, Value::String(s));
        }
    }

    #[test]
    fn record_hash_ignores_hash_key_and_map_order() {
        let a = json!({"v": 1, "seq": 2, "hash": "whatever", "x": [1, 2]});
        let b = json!({"x": [1, 2], "seq": 2, "v": 1});
        let (Value::Object(a), Value::Object(b)) = (a, b) else {
            unreachable!()
        };
        assert_eq!(record_hash(&a), record_hash(&b));
        assert_eq!(record_hash(&b), sha256_hex(br#"{"seq":2,"v":1,"x":[1,2]}"#));
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn value_checks() {
        assert!(check_value(&json!({"a": [1, -2, "x", null]}), 4).is_ok());
        assert!(check_value(&json!(1.5), 4).is_err());
        assert!(check_value(&json!(1.0), 4).is_err());
        assert!(check_value(&json!(MAX_SAFE_INTEGER), 4).is_ok());
        assert!(check_value(&json!(MAX_SAFE_INTEGER + 1), 4).is_err());
        assert!(check_value(&json!(-(MAX_SAFE_INTEGER as i64) - 1), 4).is_err());
        assert!(check_value(&json!([[[1]]]), 2).is_err());
        assert!(check_value(&json!([[[1]]]), 3).is_ok());
        let why = |v: Value, depth| check_value(&v, depth).unwrap_err().to_string();
        assert_eq!(why(json!(1.5), 4), "non-integer number 1.5");
        assert_eq!(
            why(json!(MAX_SAFE_INTEGER + 1), 4),
            "integer 9007199254740992 beyond ±(2^53-1)"
        );
        assert_eq!(why(json!([[1]]), 1), "nested too deeply");
    }

    #[test]
    fn record_errors_name_the_key() {
        let why = |v: Value| match v {
            Value::Object(m) => check_record(&m).unwrap_err().to_string(),
            _ => unreachable!(),
        };
        let t = "2026-11-22T22:50:01.123Z";
        let h = "ab".repeat(32);
        assert_eq!(why(json!({})), "missing `v`");
        assert_eq!(why(json!({"v": 2})), "unsupported format version `v`: 2");
        assert_eq!(
            why(json!({"v": 1, "seq": -1})),
            "`seq` is not a non-negative integer: -1"
        );
        assert_eq!(why(json!({"v": 1, "seq": 1})), "missing `time`");
        assert_eq!(
            why(json!({"v": 1, "seq": 1, "time": "x"})),
            "`time` is not a UTC RFC 3339 timestamp: \"x\""
        );
        assert_eq!(
            why(json!({"v": 1, "seq": 1, "time": t, "event": ""})),
            "`event` is not a non-empty string: \"\""
        );
        assert_eq!(
            why(json!({"v": 1, "seq": 1, "time": t, "event": "e", "prev": h})),
            "missing `hash`"
        );
        assert_eq!(
            why(json!({"v": 1, "seq": 1, "time": t, "event": "e", "prev": 7})),
            "`prev` is not 64 lower-case hex digits: 7"
        );
    }
}
