//! What a caller asks the writer to record, and the rules an entry must follow.

use crate::chain::{check_value, is_event_name, MAX_FIELD_DEPTH, RESERVED_KEYS};
use crate::faults::SEALED_EVENT;
use serde_json::{Map, Value};
use std::io;

/// One record to append: its event name and the event's fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    /// 1 to 64 characters of `[a-z0-9._-]`, e.g. `run.allowed`; not `audit.sealed`, which
    /// only the writer may write (right after a torn line).
    pub event: String,
    /// Must not use a reserved key (`v seq time event prev hash`): such entries are rejected
    /// (`InvalidInput`), not renamed. Values: no floats, integers within ±(2^53-1), nesting at
    /// most 32 levels.
    pub fields: Map<String, Value>,
}

impl Entry {
    pub fn new(event: impl Into<String>) -> Entry {
        Entry {
            event: event.into(),
            fields: Map::new(),
        }
    }

    /// Builder: add (or replace) one field.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Entry {
        self.fields.insert(key.into(), value.into());
        self
    }
}

pub(crate) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The event name and every field value follow the rules above.
pub(crate) fn validate_entry(e: &Entry) -> io::Result<()> {
    if !is_event_name(&e.event) {
        return Err(invalid(format!(
            "audit event name {:?} is not 1-64 characters of [a-z0-9._-]",
            e.event
        )));
    }
    if e.event == SEALED_EVENT {
        return Err(invalid(format!(
            "audit event `{SEALED_EVENT}` is written by the audit log itself"
        )));
    }
    for (k, v) in &e.fields {
        if RESERVED_KEYS.contains(&k.as_str()) {
            return Err(invalid(format!(
                "audit event `{}`: field `{k}` is reserved",
                e.event
            )));
        }
        check_value(v, MAX_FIELD_DEPTH)
            .map_err(|why| invalid(format!("audit event `{}`: field `{k}`: {why}", e.event)))?;
    }
    Ok(())
}
