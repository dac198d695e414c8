//! The checks of one line: on its own, then how it follows the record before it, and for an
//! `audit.sealed` record, whether it describes the torn line before it.

use super::report::ProblemKind;
use crate::chain::{check_record, check_value, record_hash, record_line, RecordHead, GENESIS_PREV};
use crate::faults::{Seal, TornLine};
use serde_json::{Map, Value};

/// A problem with one line: the record's seq when known, what, and the message.
#[derive(Debug)]
pub(super) struct Fault(pub Option<u64>, pub ProblemKind, pub String);

/// A parsed record: its reserved keys checked, and all of it.
pub(super) type Parsed = (RecordHead, Map<String, Value>);

/// The checks of one line on its own (`Unparseable` to `NotCanonical`); the record if it is
/// one exactly as the writer writes it.
pub(super) fn parse_line(line: &[u8], terminated: bool) -> Result<Parsed, Fault> {
    use ProblemKind::*;
    if line.is_empty() {
        return Err(Fault(None, Unparseable, "empty line".into()));
    }
    let rec = match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(Fault(None, Unparseable, "not a JSON object".into())),
        Err(e) if !terminated => {
            return Err(Fault(
                None,
                Unparseable,
                format!("incomplete last line (no newline; an interrupted write?): {e}"),
            ))
        }
        Err(e) => return Err(Fault(None, Unparseable, format!("invalid JSON: {e}"))),
    };
    let stated_seq = rec.get("seq").and_then(Value::as_u64);
    let head = check_record(&rec).map_err(|why| Fault(stated_seq, Malformed, why.to_string()))?;
    let seq = Some(head.seq);
    rec.values()
        .try_for_each(|v| check_value(v, usize::MAX))
        .map_err(|why| Fault(seq, Malformed, why.to_string()))?;
    let computed = record_hash(&rec);
    if computed != head.hash {
        return Err(Fault(
            seq,
            HashMismatch,
            format!(
                "the record was modified: its content hashes to {computed}, not to its `hash` {}",
                head.hash
            ),
        ));
    }
    if record_line(&rec).as_deref().map(str::as_bytes) != Some(line) {
        return Err(Fault(
            seq,
            NotCanonical,
            "the line is not byte-for-byte as the writer writes this record \
             (duplicate keys, whitespace, key order or escaping differ)"
                .into(),
        ));
    }
    Ok((head, rec))
}

/// `ChainBroken` and `SeqGap`: how the record follows `last`, the last good record (`None`:
/// this is the first record verified, whose predecessors may have been rotated away).
pub(super) fn check_link(last: Option<&(u64, String)>, head: &RecordHead) -> Result<(), Fault> {
    let seq = Some(head.seq);
    match last {
        Some((last_seq, last_hash)) => {
            if head.prev != *last_hash {
                let hint = if head.prev == GENESIS_PREV {
                    " (it starts a new chain: was the log recreated without its anchor?)"
                } else {
                    ""
                };
                return Err(Fault(
                    seq,
                    ProblemKind::ChainBroken,
                    format!(
                        "`prev` {} is not the hash of the previous record (seq {last_seq}, {last_hash}): \
                         a record was deleted, inserted or reordered here{hint}",
                        head.prev
                    ),
                ));
            }
            if Some(head.seq) != last_seq.checked_add(1) {
                return Err(Fault(
                    seq,
                    ProblemKind::SeqGap,
                    format!("seq {} follows seq {last_seq}", head.seq),
                ));
            }
        }
        None => {
            if head.prev == GENESIS_PREV && head.seq != 1 {
                return Err(Fault(
                    seq,
                    ProblemKind::SeqGap,
                    format!(
                        "the first record of a fresh log must have seq 1, not {}",
                        head.seq
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// An `audit.sealed` record (`head`, `rec`) right after the torn line `torn` (line `torn_line`)
/// must describe exactly those bytes and the record before them (`last`, when known), and chain
/// to that record. Returns what it says.
pub(super) fn check_seal(
    torn: &TornLine,
    torn_line: u64,
    last: Option<&(u64, String)>,
    (head, rec): &Parsed,
) -> Result<Seal, Fault> {
    let bad = |message: String| Fault(Some(head.seq), ProblemKind::BadSeal, message);
    let seal = Seal::from_record(rec).map_err(|field| {
        bad(format!(
            "the audit.sealed record lacks `{field}` or it is not of the right type"
        ))
    })?;
    if seal.torn != *torn {
        return Err(bad(format!(
            "the audit.sealed record describes {} but line {torn_line} is {torn}: \
             the torn line was changed or replaced",
            seal.torn
        )));
    }
    let named = (seal.last_good_seq, seal.last_good_hash.clone());
    if let Some(last) = last.filter(|last| **last != named) {
        return Err(bad(format!(
            "the audit.sealed record names seq {} ({}) as the last record before the torn line, \
             but that is seq {} ({})",
            named.0, named.1, last.0, last.1
        )));
    }
    check_link(Some(&named), head)?;
    Ok(seal)
}
