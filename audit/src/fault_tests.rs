//! Accidents against tampering: torn last lines sealed by `audit.sealed`, records that could
//! not be written counted by `audit.gap`, and every way of faking either still failing.

use super::tests::*;
use super::*;
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

fn append_bytes(path: &Path, bytes: &[u8]) {
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// Byte offset where each line of `bytes` starts.
fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1),
    );
    starts
}

/// A log of `n` records whose anchor names record `n - 1`, as after a crash in the middle of
/// writing record `n` (the anchor is updated after each append). Returns the log's bytes.
fn crashed_while_writing_last(dir: &TempDir, n: u64) -> Vec<u8> {
    let written = log_with(dir, n);
    let (seq, hash) = written[written.len() - 2].clone();
    Anchor { seq, hash }.write(&dir.anchor()).unwrap();
    fs::read(dir.log()).unwrap()
}

fn torn_warning(r: &VerifyReport) -> (u64, u64, TornLine, u64) {
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    let w = &r.warnings[0];
    match &w.kind {
        WarningKind::TornLine {
            torn,
            last_good_seq,
        } => (w.line, w.seq, torn.clone(), *last_good_seq),
        other => panic!("not a torn line: {other:?}"),
    }
}

#[test]
fn torn_last_record_at_every_offset_is_sealed() {
    let dir = TempDir::new("torn-every");
    let orig = crashed_while_writing_last(&dir, 4);
    let start = line_starts(&orig)[3];
    let copy = dir.join("copy.jsonl");
    let anchor = dir.join("copy-anchor.json");
    // From one byte of the last record to all of it but its closing brace.
    for cut in start + 1..orig.len() - 1 {
        fs::write(&copy, &orig[..cut]).unwrap();
        fs::copy(dir.anchor(), &anchor).unwrap();
        let r = verify(std::slice::from_ref(&copy), Some(&anchor));
        assert_eq!(
            problem(&r),
            (ProblemKind::Unparseable, 4, None),
            "cut {cut}"
        );
        assert!(r.problem.unwrap().message.contains("incomplete last line"));

        let mut log = AuditLog::options()
            .anchor(&anchor)
            .group(None)
            .open(&copy)
            .unwrap();
        let rec = log.recovery().unwrap().clone();
        assert_eq!(rec.anchor, AnchorStatus::Matches, "cut {cut}");
        assert_eq!((rec.log_seq, rec.next_seq), (Some(3), 4));
        // The seal is written on opening; the next record follows it.
        assert_eq!(log.append(&[entry(5)], true).unwrap()[0].0, 5);

        let r = verify(std::slice::from_ref(&copy), Some(&anchor));
        assert!(r.is_ok(), "cut {cut}: {:?}", r.problem);
        assert!(r.anchor_checked());
        assert_eq!((r.records, r.last_seq), (5, Some(5)));
        let (line, seq, torn, last_good) = torn_warning(&r);
        let expect = TornLine {
            offset: start as u64,
            length: (cut - start) as u64,
            sha256: sha256_hex(&orig[start..cut]),
        };
        assert_eq!((line, seq, torn, last_good), (4, 4, expect, 3), "cut {cut}");
        let shown = r.warnings[0].to_string();
        assert!(shown.contains("copy.jsonl:4: torn line ("), "{shown}");
        assert!(shown.contains("sealed by seq 4"), "{shown}");
    }
}

/// A crash can cut the log anywhere: complete lines need nothing, anything else is sealed, and
/// the log verifies again once the writer has opened it.
#[test]
fn cut_anywhere_then_resume() {
    let dir = TempDir::new("cut");
    log_with(&dir, 4);
    let orig = fs::read(dir.log()).unwrap();
    let copy = dir.join("copy.jsonl");
    for cut in 0..=orig.len() {
        fs::write(&copy, &orig[..cut]).unwrap();
        // Records entirely in the prefix: complete lines, plus a last one missing only its
        // newline (which counts: the writer adds the newline before the next record).
        let records = orig[..cut].iter().filter(|&&b| b == b'\n').count() as u64
            + u64::from(orig.get(cut) == Some(&b'\n'));
        let whole = cut == 0 || orig[cut - 1] == b'\n' || orig.get(cut) == Some(&b'\n');
        let r = verify(std::slice::from_ref(&copy), None);
        assert_eq!(r.is_ok(), whole, "cut at {cut}");
        let mut log = AuditLog::options().group(None).open(&copy).unwrap();
        let sealed = u64::from(!whole);
        assert_eq!(log.next_seq(), records + 1 + sealed, "cut at {cut}");
        log.append(&[entry(9)], false).unwrap();
        let r = verify(std::slice::from_ref(&copy), None);
        assert!(r.is_ok(), "cut at {cut}: {:?}", r.problem);
        assert_eq!(r.records, records + 1 + sealed);
        assert_eq!(r.warnings.len() as u64, sealed, "cut at {cut}");
        if !whole {
            assert_eq!(torn_warning(&r).0, records + 1);
        }
    }
}

/// The sealed log of [`crashed_while_writing_last`] with one more record: lines r1 r2 r3,
/// the torn line, the seal (seq 4), r5.
fn sealed_log(dir: &TempDir) -> Vec<String> {
    let orig = crashed_while_writing_last(dir, 4);
    let start = line_starts(&orig)[3];
    fs::write(dir.log(), &orig[..start + 30]).unwrap();
    let mut log = open(dir);
    log.append(&[entry(5)], true).unwrap();
    let l = lines(&dir.log());
    assert_eq!(l.len(), 6);
    assert!(verify(&[dir.log()], Some(&dir.anchor())).is_ok());
    l
}

/// `line` (a record) with `change` applied and its hash recomputed.
fn rehashed(line: &str, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut m = parse(line);
    m.remove("hash");
    change(&mut m);
    forge(Value::Object(m))
}

#[test]
fn tampering_around_a_seal_still_fails() {
    let dir = TempDir::new("seal-tamper");
    let orig = sealed_log(&dir);
    let copy = dir.join("copy.jsonl");
    let check = |l: Vec<String>| {
        write_lines(&copy, &l);
        let r = verify(std::slice::from_ref(&copy), Some(&dir.anchor()));
        (problem(&r), r.problem.unwrap().message)
    };
    use ProblemKind::*;

    let mut l = orig.clone();
    l[3] = l[3].replacen("seq", "SEQ", 1);
    let (p, msg) = check(l);
    assert_eq!(p, (BadSeal, 5, Some(4)), "the torn line changed: {msg}");
    assert!(msg.contains("line 4 is"), "{msg}");

    let mut l = orig.clone();
    l.remove(3);
    let (p, msg) = check(l);
    assert_eq!(p, (BadSeal, 4, Some(4)), "torn line removed: {msg}");
    assert!(msg.contains("must directly follow"), "{msg}");

    let mut l = orig.clone();
    l.drain(3..5);
    assert_eq!(
        check(l).0,
        (ChainBroken, 4, Some(5)),
        "torn line and seal removed"
    );

    let mut l = orig.clone();
    l.insert(4, orig[2].clone());
    let (p, msg) = check(l);
    assert_eq!(p, (Unparseable, 4, None), "a line between them: {msg}");
    assert!(msg.contains("not sealed: the next line is a `run.allowed` record"));

    let mut l = orig.clone();
    l.swap(3, 4);
    assert_eq!(
        check(l).0,
        (BadSeal, 4, Some(4)),
        "seal before the torn line"
    );

    let mut l = orig.clone();
    let seal = l.remove(4);
    l.push(seal);
    assert_eq!(
        check(l).0 .0,
        Unparseable,
        "seal not right after the torn line"
    );

    let mut l = orig.clone();
    l[4] = rehashed(&l[4], |m| {
        m.insert("sha256".into(), json!("ab".repeat(32)));
    });
    assert_eq!(check(l).0, (BadSeal, 5, Some(4)), "seal of other bytes");

    let mut l = orig.clone();
    l[4] = rehashed(&l[4], |m| {
        m.insert("length".into(), json!(29));
    });
    assert_eq!(check(l).0, (BadSeal, 5, Some(4)), "seal of another length");

    let mut l = orig.clone();
    let r1 = parse(&orig[1]);
    l[4] = rehashed(&l[4], |m| {
        m.insert("last_good_seq".into(), r1["seq"].clone());
        m.insert("last_good_hash".into(), r1["hash"].clone());
    });
    let (p, msg) = check(l);
    assert_eq!(
        p,
        (BadSeal, 5, Some(4)),
        "seal naming another record: {msg}"
    );
    assert!(msg.contains("names seq 2"), "{msg}");

    let mut l = orig.clone();
    l[4] = rehashed(&l[4], |m| {
        m.remove("offset");
    });
    let (p, msg) = check(l);
    assert_eq!(p, (BadSeal, 5, Some(4)), "seal without an offset: {msg}");
    assert!(msg.contains("lacks `offset`"), "{msg}");

    let mut l = orig.clone();
    l[4] = l[4].replacen("\"length\":30", "\"length\":31", 1);
    let (p, msg) = check(l);
    assert_eq!(p, (Unparseable, 4, None), "seal edited: {msg}");
    assert!(msg.contains("not sealed: the next line is not a valid record: hash-mismatch"));
}

#[test]
fn torn_lines_in_the_middle_fail() {
    let dir = TempDir::new("torn-middle");
    log_with(&dir, 5);
    let orig = lines(&dir.log());
    let copy = dir.join("copy.jsonl");
    let check = |l: &[String]| {
        write_lines(&copy, l);
        let r = verify(std::slice::from_ref(&copy), Some(&dir.anchor()));
        (problem(&r), r.problem.unwrap().message)
    };

    let mut l = orig.clone();
    l[1].truncate(40);
    let (p, msg) = check(&l);
    assert_eq!(p, (ProblemKind::Unparseable, 2, None));
    assert!(msg.contains("not sealed"), "{msg}");

    // With a seal forged for it (correct fields, chained to record 1), the next record no
    // longer chains.
    let r1 = parse(&orig[0]);
    let seal = forge(json!({
        "v": 1, "seq": 2, "time": "2026-11-22T22:50:01.123Z", "event": "audit.sealed",
        "offset": orig[0].len() + 1, "length": 40, "sha256": sha256_hex(l[1].as_bytes()),
        "last_good_seq": 1, "last_good_hash": r1["hash"], "prev": r1["hash"],
    }));
    l.insert(2, seal);
    assert_eq!(check(&l).0, (ProblemKind::ChainBroken, 4, Some(3)));

    // Two damaged lines in a row.
    let mut l = orig.clone();
    l[1].truncate(40);
    l[2].truncate(40);
    assert_eq!(check(&l).0, (ProblemKind::Unparseable, 2, None));

    // A seal with no torn line before it.
    let mut l = orig[..2].to_vec();
    l.push(rehashed(&orig[2], |m| {
        m.insert("event".into(), json!("audit.sealed"));
    }));
    let (p, msg) = check(&l);
    assert_eq!(p, (ProblemKind::BadSeal, 3, Some(3)));
    assert!(msg.contains("must directly follow"), "{msg}");
}

/// Cutting the last record by hand and letting the daemon seal it does not hide it: the anchor
/// names it, so the seal chains from the anchor and verification fails there for good.
#[test]
fn sealing_a_cut_anchored_record_still_fails() {
    let dir = TempDir::new("seal-cut-anchored");
    let orig = log_with(&dir, 4);
    let bytes = fs::read(dir.log()).unwrap();
    let start = line_starts(&bytes)[3];
    fs::write(dir.log(), &bytes[..start + 30]).unwrap();
    let mut log = open(&dir);
    assert_eq!(log.recovery().unwrap().anchor, AnchorStatus::LogBehind);
    log.append(&[entry(5)], true).unwrap();
    for anchor in [Some(dir.anchor()), None] {
        let r = verify(&[dir.log()], anchor.as_deref());
        let p = r.problem.expect("a problem");
        assert_eq!(
            (p.kind, p.line, p.seq),
            (ProblemKind::ChainBroken, 5, Some(5))
        );
        assert!(p.message.contains(&orig[2].1), "{}", p.message);
    }
}

#[test]
fn seals_across_rotated_files() {
    let dir = TempDir::new("seal-rotate");
    let rotated = dir.join("log/audit.jsonl.1");
    let bytes = crashed_while_writing_last(&dir, 4);
    let start = line_starts(&bytes)[3];
    fs::write(dir.log(), &bytes[..start + 30]).unwrap();
    let mut log = open(&dir);
    log.append(&[entry(5)], true).unwrap();
    fs::rename(dir.log(), &rotated).unwrap();
    assert!(log.reopen_if_rotated().unwrap());
    log.append(&[entry(6)], true).unwrap();
    // A crash in the new file's first record.
    append_bytes(&dir.log(), &fs::read(dir.log()).unwrap()[..20]);
    drop(log);
    let mut log = open(&dir);
    log.append(&[entry(8)], true).unwrap();
    // live: r6, torn, seal (seq 7), r8
    let r = verify(&[rotated.clone(), dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    assert_eq!((r.records, r.files, r.last_seq), (8, 2, Some(8)));
    let at: Vec<(PathBuf, u64, u64)> = r
        .warnings
        .iter()
        .map(|w| (w.file.clone(), w.line, w.seq))
        .collect();
    assert_eq!(at, vec![(rotated.clone(), 4, 4), (dir.log(), 2, 7)]);

    // The live file alone, whose first line is torn: the seal names the anchored head.
    let fresh = TempDir::new("seal-rotate-fresh");
    log_with(&fresh, 3);
    fs::rename(fresh.log(), fresh.join("old")).unwrap();
    fs::write(fresh.log(), b"{\"v\":1,\"seq\":4").unwrap();
    let mut log = open(&fresh);
    assert_eq!(log.recovery().unwrap().anchor, AnchorStatus::NotCompared);
    log.append(&[entry(5)], true).unwrap();
    let both = [fresh.join("old"), fresh.log()];
    let r = verify(&both, Some(&fresh.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    assert_eq!(torn_warning(&r).3, 3);
    // Alone, it starts at the seal, which chains to a record that is not there.
    let r = verify(&both[1..], Some(&fresh.anchor()));
    assert_eq!(problem(&r), (ProblemKind::MissingStart, 2, Some(4)));
    let opts = VerifyOptions {
        allow_missing_start: true,
        ..VerifyOptions::default()
    };
    let r = verify_with(&both[1..], Some(&fresh.anchor()), opts);
    assert!(r.is_ok(), "{:?}", r.problem);
    assert_eq!(torn_warning(&r).3, 3);

    // A torn line left at the end of a file that was rotated while the daemon was down is
    // never sealed: the chain continues in the next file, but verification stops there.
    let down = TempDir::new("seal-rotate-down");
    let bytes = crashed_while_writing_last(&down, 4);
    fs::write(down.log(), &bytes[..line_starts(&bytes)[3] + 30]).unwrap();
    fs::rename(down.log(), down.join("old")).unwrap();
    open(&down).append(&[entry(4)], true).unwrap();
    let r = verify(&[down.join("old"), down.log()], Some(&down.anchor()));
    assert_eq!(problem(&r), (ProblemKind::Unparseable, 4, None));
    assert!(r.problem.unwrap().message.contains("incomplete last line"));
}

/// A clock that moves one second per call.
fn ticking_clock() -> impl Fn() -> std::time::SystemTime + Send + Sync + 'static {
    let ticks = Arc::new(AtomicU64::new(0));
    move || UNIX_EPOCH + Duration::from_secs(1_795_387_801 + ticks.fetch_add(1, Ordering::SeqCst))
}

fn gap_warnings(r: &VerifyReport) -> Vec<(u64, u64, Gap)> {
    r.warnings
        .iter()
        .filter_map(|w| match &w.kind {
            WarningKind::Gap(g) => Some((w.line, w.seq, g.clone())),
            WarningKind::TornLine { .. } => None,
        })
        .collect()
}

#[test]
fn gap_record_round_trip() {
    let dir = TempDir::new("gap");
    let mut log = options(&dir)
        .clock(ticking_clock())
        .open(&dir.log())
        .unwrap();
    log.append(&[entry(1), entry(2)], true).unwrap(); // time :01
    log.fail_writes(Some(0));
    let denied = || Entry::new("run.denied").with("requester", "bob");
    for batch in [
        vec![denied()],                         // :02
        vec![denied(), Entry::new("run.exit")], // :03
        vec![Entry::new("lease.requested")],    // :04
    ] {
        let err = log.append(&batch, true).unwrap_err();
        assert!(err.to_string().contains("No space left on device"), "{err}");
    }
    // A record the caller could not even build counts as well.
    assert!(log.append(&[Entry::new("Not A Name")], false).is_err()); // :05
    assert_eq!(fs::read_to_string(dir.log()).unwrap().lines().count(), 2);
    assert_eq!(log.pending_gap().map(|g| g.lost), Some(1)); // the rest is settled on re-reading
    log.fail_writes(None);
    assert_eq!(log.append(&[entry(4)], false).unwrap()[0].0, 4); // :06
    assert!(log.pending_gap().is_none());

    let l = lines(&dir.log());
    let gap = parse(&l[2]);
    assert_eq!(gap["event"], json!("audit.gap"));
    assert_eq!(gap["lost"], json!(5));
    assert_eq!(
        gap["events"],
        json!({"run.denied": 2, "run.exit": 1, "lease.requested": 1, "other": 1})
    );
    assert_eq!(
        (&gap["from"], &gap["to"], &gap["time"]),
        (
            &json!("2026-11-22T22:50:02.000Z"),
            &json!("2026-11-22T22:50:05.000Z"),
            &json!("2026-11-22T22:50:06.000Z")
        )
    );
    let error = gap["error"].as_str().unwrap();
    assert!(
        error.contains("audit.jsonl: No space left on device"),
        "{error}"
    );

    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    let gaps = gap_warnings(&r);
    assert_eq!(gaps.len(), 1);
    assert_eq!((gaps[0].0, gaps[0].1, gaps[0].2.lost), (3, 3, 5));
    let shown = r.warnings[0].to_string();
    assert!(
        shown.contains(
            "audit.jsonl:3: seq 3: gap: 5 records (lease.requested 1, other 1, run.denied 2, \
             run.exit 1) not written between 2026-11-22T22:50:02.000Z and 2026-11-22T22:50:05.000Z"
        ),
        "{shown}"
    );
}

/// Records that reached the file although their write failed are never counted as lost.
#[test]
fn gap_never_counts_what_was_written() {
    let dir = TempDir::new("gap-written");
    let mut log = open(&dir);
    log.append(&[entry(1)], true).unwrap();

    // The whole batch reached the file, then the sync failed.
    log.fail_writes(Some(usize::MAX));
    log.append(&[entry(2), entry(3)], true).unwrap_err();
    log.fail_writes(None);
    assert_eq!(log.append(&[entry(4)], true).unwrap()[0].0, 4);
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok() && r.warnings.is_empty(), "{:?}", r.warnings);

    // Part of it did: record 5 whole, record 6 torn, record 7 not at all.
    let before = fs::metadata(dir.log()).unwrap().len() as usize;
    log.fail_writes(Some(usize::MAX));
    let batch = [entry(5), Entry::new("run.exit"), Entry::new("run.denied")];
    log.append(&batch, false).unwrap_err();
    let bytes = fs::read(dir.log()).unwrap();
    let torn_at = line_starts(&bytes[before..])[1] + before + 25;
    fs::write(dir.log(), &bytes[..torn_at]).unwrap();
    log.fail_writes(None);
    assert_eq!(log.append(&[entry(9)], true).unwrap()[0].0, 8);
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    let events: Vec<String> = lines(&dir.log())
        .iter()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(r) => r["event"].as_str().unwrap_or_default().to_owned(),
            Err(_) => "torn".to_owned(),
        })
        .collect();
    assert_eq!(
        events[4..],
        [
            "run.allowed",
            "torn",
            "audit.sealed",
            "audit.gap",
            "run.allowed"
        ]
    );
    assert_eq!(torn_warning_of(&r), Some(6));
    let gaps = gap_warnings(&r);
    assert_eq!(gaps.len(), 1);
    let g = &gaps[0].2;
    assert_eq!(
        (g.lost, g.events.clone()),
        (
            2,
            [("run.denied".to_owned(), 1), ("run.exit".to_owned(), 1)].into()
        )
    );
}

fn torn_warning_of(r: &VerifyReport) -> Option<u64> {
    r.warnings.iter().find_map(|w| match w.kind {
        WarningKind::TornLine { .. } => Some(w.line),
        WarningKind::Gap(_) => None,
    })
}

/// A gap record that could not be written is written later with everything lost since; one
/// that reached the file is not written twice.
#[test]
fn gap_records_are_written_once() {
    let dir = TempDir::new("gap-once");
    let mut log = open(&dir);
    log.append(&[entry(1)], true).unwrap();
    log.fail_writes(Some(0));
    log.append(&[entry(2)], true).unwrap_err();
    // The gap record fails with the next batch: its losses join the new ones.
    log.append(&[entry(3), entry(4)], true).unwrap_err();
    // The gap record and this batch reach the file, though the call fails.
    log.fail_writes(Some(usize::MAX));
    log.append(&[entry(5)], true).unwrap_err();
    log.fail_writes(None);
    log.append(&[entry(6)], true).unwrap();
    log.write_pending().unwrap();
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    let gaps = gap_warnings(&r);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!((gaps[0].0, gaps[0].2.lost), (2, 3));
    assert_eq!(r.last_seq, Some(4)); // 1, gap, 5, 6
}

/// Losses counted while the write's outcome is still open are kept apart from it and merged in
/// order once it is known.
#[test]
fn gap_adds_later_losses_in_order() {
    let dir = TempDir::new("gap-reread");
    let mut log = open(&dir);
    log.append(&[entry(1)], true).unwrap();
    log.fail_writes(Some(0));
    log.append(&[entry(2)], true).unwrap_err();
    assert!(log.append(&[Entry::new("")], true).is_err());
    log.fail_writes(None);
    log.write_pending().unwrap();
    let l = lines(&dir.log());
    assert_eq!(l.len(), 2);
    let gap = parse(&l[1]);
    assert_eq!(
        (&gap["lost"], &gap["events"]),
        (&json!(2), &json!({"run.allowed": 1, "other": 1}))
    );
    assert!(gap["error"].as_str().unwrap().contains("No space left"));
}
