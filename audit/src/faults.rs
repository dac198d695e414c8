//! The two records the writer adds on its own, so that an accident is visible in the chain and
//! cannot be mistaken for tampering: `audit.sealed` (a torn last line found when the log was
//! opened) and `audit.gap` (records that could not be written). The writer builds their fields
//! here and the verifier reads them back here, so what one writes is what the other checks.

use crate::chain::is_event_name;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Event of the record that seals a torn last line.
pub const SEALED_EVENT: &str = "audit.sealed";

/// Event of the record that counts records which could not be written.
pub const GAP_EVENT: &str = "audit.gap";

/// At most this many distinct event names are counted by name in a gap; the rest are counted
/// under [`OTHER_EVENTS`], so that a gap record always stays small enough to be written.
const MAX_GAP_EVENT_NAMES: usize = 64;
/// The key counting the events beyond [`MAX_GAP_EVENT_NAMES`] and invalid event names.
const OTHER_EVENTS: &str = "other";
/// Longest error text kept in a gap record (bytes, cut at a character boundary).
const MAX_GAP_ERROR: usize = 512;

/// A damaged line: where it is in its file and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLine {
    /// Byte offset of its first byte in the file.
    pub offset: u64,
    /// Its length in bytes, without a newline.
    pub length: u64,
    /// Lower-case hex SHA-256 of those bytes.
    pub sha256: String,
}

impl fmt::Display for TornLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes at offset {}, sha256 {}",
            self.length, self.offset, self.sha256
        )
    }
}

/// What an `audit.sealed` record says: the torn line right before it, and the last intact
/// record before that line (the chain continues from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub torn: TornLine,
    /// `seq` and `hash` of the last intact record before the torn line; when the file holds
    /// none, the head the chain continues from (the anchor's, or 0 and 64 zeros for a fresh log).
    pub last_good_seq: u64,
    pub last_good_hash: String,
}

impl Seal {
    pub(crate) fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("offset".into(), self.torn.offset.into());
        m.insert("length".into(), self.torn.length.into());
        m.insert("sha256".into(), self.torn.sha256.clone().into());
        m.insert("last_good_seq".into(), self.last_good_seq.into());
        m.insert("last_good_hash".into(), self.last_good_hash.clone().into());
        m
    }

    /// The seal in an `audit.sealed` record, or which field is missing or of the wrong type.
    pub(crate) fn from_record(rec: &Map<String, Value>) -> Result<Seal, &'static str> {
        let int = |k: &'static str| rec.get(k).and_then(Value::as_u64).ok_or(k);
        let text = |k: &'static str| {
            rec.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(k)
        };
        Ok(Seal {
            torn: TornLine {
                offset: int("offset")?,
                length: int("length")?,
                sha256: text("sha256")?,
            },
            last_good_seq: int("last_good_seq")?,
            last_good_hash: text("last_good_hash")?,
        })
    }
}

/// Records that could not be written: how many, of which events, over which time span, and
/// the first error. Only records known not to be in the log are counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gap {
    pub lost: u64,
    /// Event name → records lost.
    pub events: BTreeMap<String, u64>,
    /// Time of the first and the last failed write (the records' `time` format).
    pub from: String,
    pub to: String,
    /// The error of the first failed write.
    pub error: String,
}

impl Gap {
    /// Count one lost record of `event`, from a write that failed at `time` with `error`.
    pub(crate) fn count(&mut self, event: &str, time: &str, error: &str) {
        self.count_n(event, time, error, 1);
    }

    /// `n` records of `event` lost at `time`, in one step (a flood's drops cost one update).
    pub(crate) fn count_n(&mut self, event: &str, time: &str, error: &str, n: u64) {
        if n == 0 {
            return;
        }
        if self.lost == 0 {
            self.from = time.to_owned();
            self.error = elevate_base::text::cut(error, MAX_GAP_ERROR).to_owned();
        }
        self.to = time.to_owned();
        self.lost += n;
        let key = self.key_for(event);
        *self.events.entry(key).or_insert(0) += n;
    }

    /// The name losses of `event` are counted under: its own while it is a record name and
    /// there is room for one more name, else [`OTHER_EVENTS`].
    fn key_for(&self, event: &str) -> String {
        let known = self.events.contains_key(event)
            || (self.events.len() < MAX_GAP_EVENT_NAMES && is_event_name(event));
        if known { event } else { OTHER_EVENTS }.to_owned()
    }

    /// Add the losses of `older`, a gap whose first failure came before this one's.
    pub(crate) fn absorb_older(&mut self, older: Gap) {
        if older.lost == 0 {
            return;
        }
        if self.lost == 0 {
            *self = older;
            return;
        }
        self.lost += older.lost;
        self.from = older.from;
        self.error = older.error;
        for (event, n) in older.events {
            let key = self.key_for(&event);
            *self.events.entry(key).or_insert(0) += n;
        }
    }

    pub(crate) fn fields(&self) -> Map<String, Value> {
        let events: Map<String, Value> = self
            .events
            .iter()
            .map(|(k, n)| (k.clone(), Value::from(*n)))
            .collect();
        let mut m = Map::new();
        m.insert("lost".into(), self.lost.into());
        m.insert("events".into(), Value::Object(events));
        m.insert("from".into(), self.from.clone().into());
        m.insert("to".into(), self.to.clone().into());
        m.insert("error".into(), self.error.clone().into());
        m
    }

    /// The gap an `audit.gap` record reports; fields it lacks are left empty (the record is
    /// hashed and chained like any other: its content is what the writer wrote).
    pub(crate) fn from_record(rec: &Map<String, Value>) -> Gap {
        let text = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let events = match rec.get("events") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect(),
            _ => BTreeMap::new(),
        };
        Gap {
            lost: rec.get("lost").and_then(Value::as_u64).unwrap_or(0),
            events,
            from: text("from"),
            to: text("to"),
            error: text("error"),
        }
    }
}

impl fmt::Display for Gap {
    /// `12 records (run.denied 10, run.exit 2) not written between FROM and TO: ERROR`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.lost == 1 { "" } else { "s" };
        write!(f, "{} record{plural} (", self.lost)?;
        for (i, (event, n)) in self.events.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            write!(f, "{sep}{event} {n}")?;
        }
        write!(
            f,
            ") not written between {} and {}: {}",
            self.from, self.to, self.error
        )
    }
}
