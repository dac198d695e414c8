//! elevate's tamper-evident audit log: hash-chained JSON Lines. [`AuditLog`] is the writer
//! (used by `elevated` from one thread), [`verify_files`] the verifier (`elevate audit verify`).
//!
//! # Files
//!
//! * **The log** (default `/var/log/elevate/audit.jsonl`): UTF-8 JSON Lines, one record per
//!   line, every line ending in `\n` (0x0A). Created mode 0640 in a directory created 0750, both
//!   with group `adm` when that group exists. Opened `O_APPEND|O_NOFOLLOW`.
//! * **Rotated logs**: when logrotate renames the log, the writer (on [`AuditLog::reopen`] or
//!   [`AuditLog::reopen_if_rotated`]) continues the same chain in the new file: the new file's
//!   first record has the next `seq` and chains to the old file's last record. Verify rotated
//!   files oldest first, the live log last, as one chain. (Compressed files must be decompressed
//!   first.)
//! * **The anchor** (`<state_dir>/`[`ANCHOR_FILE`], default `/var/lib/elevate/audit-anchor.json`):
//!   `{"seq":N,"hash":"<hex>"}` and a newline — the last record's `seq` and `hash`, replaced
//!   atomically (temporary file + rename) after every append. A hash chain alone cannot reveal
//!   that its last records were deleted; the anchor can.
//!
//! # Records
//!
//! ```text
//! {"v":1,"seq":42,"time":"2026-11-22T22:50:01.123Z","event":"run.allowed","argv":["systemctl","restart","nginx"],"requester":"alice","prev":"9f86…","hash":"3a1b…"}
//! ```
//!
//! | key | value |
//! |-----|-------|
//! | `v` | `1`, the format version |
//! | `seq` | integer: 1 for the first record of a fresh log, then +1 per record, across daemon restarts and log rotations |
//! | `time` | string, UTC, exactly `YYYY-MM-DDTHH:MM:SS.mmmZ` (records written in one batch share it) |
//! | `event` | string of 1–64 `[a-z0-9._-]`: `run.allowed`, `run.denied`, `run.exit`, `daemon.start`, `policy.reload`, `audit.recovered`, `audit.sealed`, `audit.gap`, … |
//! | *event fields* | any keys but the six reserved ones: the writer **rejects** (does not rename or nest) an entry using `v`, `seq`, `time`, `event`, `prev` or `hash` |
//! | `prev` | `hash` of the previous record; 64 zeros (`000…0`) for the first record of a fresh log |
//! | `hash` | lower-case hex SHA-256 of the record's canonical form without `hash` (below) |
//!
//! Values are JSON without floating-point numbers: every number is an integer within
//! ±(2^53−1) (durations are integer milliseconds), so that every JSON tool, `jq` included, reads
//! it exactly. Event fields nest at most 32 levels; a line is at most 1 MiB ([`MAX_RECORD_LEN`]).
//!
//! ## Canonical form (what is hashed)
//!
//! `canonical(x)`, see [`canonical_json`], has no whitespace anywhere and is:
//! * object: `{`, then `"key":canonical(value)` pairs joined by `,` in ascending byte order of
//!   the keys' UTF-8 (= Unicode code point order), then `}`;
//! * array: `[`, the canonical values joined by `,`, `]`;
//! * integer: plain decimal, `-` for negatives, no exponent, no leading zeros;
//! * `true`, `false`, `null`;
//! * string: `"`, the characters, `"`, where `"` and `\` are written `\"` and `\\`; U+0008,
//!   U+000C, U+000A, U+000D, U+0009 as `\b \f \n \r \t`; every other character below U+0020, and
//!   U+007F, as `\u00xx` with lower-case hex; everything else (including `/` and all non-ASCII)
//!   as raw UTF-8. This is serde_json's escaping plus U+007F, and exactly `jq -c`'s.
//!
//! `hash = sha256_hex(canonical(record minus its "hash" key))`, see [`record_hash`]. `prev` is
//! inside the hashed content, which chains each record to all before it. Because control
//! characters are always escaped, no field (an argv holding `\n`, say) can break a line or forge
//! one.
//!
//! ## Line form (what is on disk)
//!
//! A record's line is fully determined by its content: the keys `v`, `seq`, `time`, `event`,
//! then the event fields in ascending byte order, then `prev`, `hash`; every value in canonical
//! form; no whitespace. (So a line is the canonical form with the reserved keys moved to the
//! front and the back, for human readers.) The verifier rejects any other spelling of the same
//! JSON — a duplicated key, a space, `\u0041` for `A` — so what a reader sees is exactly what
//! was hashed.
//!
//! # Verification ([`verify_files`])
//!
//! Lines are checked in order, as one chain across all files given; verification stops at the
//! first problem ([`ProblemKind`], in the order of the checks):
//!
//! 1. `Unparseable`: not a JSON object — an empty line, garbage, a line over 1 MiB, or a partial
//!    line (no final newline) left by an interrupted write. Unless the next line seals it (see
//!    below): then it is a warning.
//! 2. `Malformed`: `v` is not 1, `seq` not a non-negative integer, `time` not of the form above,
//!    `event` empty or not a string, `prev`/`hash` not 64 lower-case hex digits; or a float or
//!    unsafe integer anywhere.
//! 3. `HashMismatch`: `hash` ≠ the hash of the record's content: the record was edited.
//! 4. `NotCanonical`: the line's bytes differ from the line form of its content.
//! 5. `BadSeal`: an `audit.sealed` record that does not directly follow an unparseable line, or
//!    that describes other bytes or another last record than the ones before it.
//! 6. `ChainBroken`: `prev` ≠ the previous record's `hash` (the previous record may be the last
//!    of the previous file): a record was deleted, inserted or reordered. For the very first
//!    record verified, see `MissingStart`.
//! 7. `SeqGap`: `seq` ≠ previous `seq` + 1; or the first record has `prev` of 64 zeros (starts a
//!    fresh log) but `seq` ≠ 1.
//! 8. `AnchorMismatch`: the record whose `seq` is the anchor's has another hash.
//! 9. `Truncated` (after the last line): the log ends before the anchor's `seq`.
//!
//! and what the chain cannot show by itself, unless [`VerifyOptions`] allows leaving it
//! unproven (then it is listed in [`VerifyReport::unproven`]):
//!
//! 10. `MissingStart` (at the first record verified, checked with 6–7): it is not a log's
//!     first record — `seq` 1 and `prev` of 64 zeros. Only that record can start a chain that
//!     the writer began, so anything else means older records, or whole rotated files, are
//!     missing. (Every log has such a first record — logs from before this check too, whose
//!     first record is a `daemon.start` — so no separate genesis record is needed; an attacker
//!     able to write a new first record must rewrite every later one, and the anchor.)
//! 11. `Unanchored` (after the last line): no anchor was compared with the chain — none given,
//!     unreadable, or its `seq` precedes the first record verified: the newest records could
//!     have been cut.
//!
//! An unparseable line (of at most 1 MiB) directly followed, in the same file, by the
//! `audit.sealed` record describing it — its byte `offset` in the file, its `length` (without
//! the newline), the `sha256` of those bytes, and the `last_good_seq` / `last_good_hash` of the
//! record before it, to which the seal chains — is a torn write, not tampering: verification
//! goes on and the report carries a [`Warning`] naming the line. Anything else about it fails:
//! a torn line not followed by its seal (at the end of the log, before the writer reopened it,
//! or at the end of a file rotated while the daemon was down, too), a changed torn line, a
//! seal elsewhere. Each `audit.gap` record is a warning as well (it is a record like any other:
//! the chain is intact). Warnings never change the outcome.
//!
//! A missing or unreadable anchor is `Unanchored` (or, when allowed, unproven): the report
//! says why ([`VerifyReport::anchor`]). An anchor older than the log's end (the writer replaces
//! it after each append, so it lags only while a write is under way, after a crash between an
//! append and its update, or when updating it failed) checks the chain up to its `seq`: the
//! report's `anchor` is `Verified` with that `seq`, and the records after it are chained to it.
//!
//! # Crashes and write errors (the writer)
//!
//! On open, and before the next append after a failed write or sync, the writer reads the log's
//! tail backwards (never the whole file) to find the chain head; it never trusts memory over
//! the disk:
//!
//! * Last line a record: the next record gets its `seq` + 1 and chains to its `hash`.
//! * Last line damaged (typically a partial line from a crash, a power loss, or a full disk
//!   whose failed write could not be cut off): the writer seals it at once, on opening (or, if
//!   that write fails, in front of the next record): on a fresh line (a `\n` is written first
//!   if the file does not end with one), an `audit.sealed` record with the damaged line's
//!   `offset`, `length` and `sha256` and the `last_good_seq` / `last_good_hash` of the last
//!   intact record before it, from which the chain continues (compared with the anchor as
//!   below: when the anchor is ahead, the chain continues from it and verify fails at the seal).
//!   The damaged line stays where it is; verify accepts it with a warning. [`Recovery::torn`]
//!   tells the daemon.
//! * Empty log: the chain continues from the anchor (that is the rotation case); with no anchor
//!   a fresh chain starts (`seq` 1, `prev` zeros).
//! * The anchor is ahead of the log's last record, or names the same `seq` with another hash:
//!   records were deleted or lost. The writer continues the chain **from the anchor**, so the
//!   gap stays visible to every later verification as a `ChainBroken` right after it, and
//!   reports [`AnchorStatus::LogBehind`] / [`AnchorStatus::Conflict`]; the daemon should append
//!   [`Recovery::to_entry`] (`audit.recovered`) to record what it found.
//! * The log is ahead of the anchor (a crash between an append and the anchor's update): the
//!   chain continues from the log.
//!
//! An append is one `write(2)` of all its records and, when durable, one `fdatasync(2)`; if
//! either fails, the call fails and the batch is cut off again. If that fails too, some of its
//! records may stay on disk — the log then records decisions whose effect the daemon did not
//! carry out (an audit log errs on the side of recording). The anchor is updated after a
//! successful append, without fsync.
//!
//! **Records that could not be written** (a full disk, an I/O error, an invalid entry) are
//! counted: which of a failed write's records are lost is decided from the tail read before
//! the next append — a record found in the file is never counted. The first append that works
//! again writes, before its own records (after a seal, if any), an `audit.gap` record:
//! `{"lost":N,"events":{"run.denied":3,…},"from":T1,"to":T2,"error":"…"}` — how many, of which
//! events (beyond 64 names, and invalid names, under `other`), the time of the first and the
//! last failed write, and the first error. Losses the writer still holds when it is dropped
//! are not recorded ([`AuditLog::pending_gap`] tells them).
//!
//! # Checking by hand with `jq` and `sha256sum`
//!
//! ```sh
//! n=0; last=
//! while IFS= read -r line; do
//!   n=$((n+1))
//!   hash=$(printf '%s' "$line" | jq -r .hash)
//!   [ "$(printf '%s' "$line" | jq -cjS 'del(.hash)' | sha256sum | cut -c1-64)" = "$hash" ] \
//!     || echo "line $n: record edited"
//!   [ -z "$last" ] || [ "$(printf '%s' "$line" | jq -r .prev)" = "$last" ] \
//!     || echo "line $n: chain broken"
//!   last=$hash
//! done < /var/log/elevate/audit.jsonl
//! echo "last hash: $last"; cat /var/lib/elevate/audit-anchor.json   # equal, or truncated
//! ```
//!
//! `jq -cjS` prints exactly the canonical form (sorted keys at every level, compact, jq's
//! escaping, no trailing newline) because records hold only integers within ±(2^53−1). The line
//! form can be checked too: `printf '%s' "$line" | jq -cj "$LINE"` must print `$line` again, with
//!
//! ```sh
//! LINE='def c: if type == "object" then to_entries | sort_by(.key) | map({(.key): (.value | c)}) | add // {}
//!              elif type == "array" then map(c) else . end;
//!       {v, seq, time, event} + (del(.v, .seq, .time, .event, .prev, .hash) | c) + {prev, hash}'
//! ```
//!
//! # What the chain does not do
//!
//! The hash is unkeyed. It detects damage and any edit, deletion, insertion or reordering by
//! someone who does not also rewrite every later record and the anchor — but root can do exactly
//! that. Tamper-*proof* needs a copy of the chain head off the host (e.g. the daemon logging
//! [`AuditLog::head`] to a remote syslog periodically): a head that was published once must
//! remain in the chain.

mod anchor;
pub mod chain;
mod entry;
mod faults;
mod os;
mod recovery;
mod tail;
mod verify;
mod writer;

pub use anchor::{Anchor, ANCHOR_FILE};
pub use chain::{
    canonical_json, record_hash, sha256_hex, FORMAT_VERSION, GENESIS_PREV, MAX_RECORD_LEN,
    MAX_SAFE_INTEGER, RESERVED_KEYS,
};
pub use entry::Entry;
pub use faults::{Gap, Seal, TornLine, GAP_EVENT, SEALED_EVENT};
pub use recovery::{AnchorStatus, Recovery};
pub use verify::{
    verify_files, AnchorCheck, Problem, ProblemKind, Unproven, Verifier, VerifyOptions,
    VerifyReport, Warning, WarningKind, MAX_WARNINGS,
};
pub use writer::{AuditLog, AuditOptions};

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;
