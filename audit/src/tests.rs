//! Writer + verifier together, on real files.

use super::*;
use serde_json::{json, Map, Value};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "elevate-audit-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub(crate) fn log(&self) -> PathBuf {
        self.join("log/audit.jsonl")
    }
    pub(crate) fn anchor(&self) -> PathBuf {
        self.join("anchor.json")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(crate) const NOW_MS: u64 = 1_795_387_801_123;

pub(crate) fn fixed_clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(NOW_MS)
}

pub(crate) fn options(dir: &TempDir) -> AuditOptions {
    AuditLog::options()
        .anchor(dir.anchor())
        .clock(fixed_clock)
        .group(None)
}

pub(crate) fn open(dir: &TempDir) -> AuditLog {
    options(dir).open(&dir.log()).unwrap()
}

pub(crate) fn entry(i: u64) -> Entry {
    Entry::new("run.allowed")
        .with("requester", "alice")
        .with("argv", json!(["systemctl", "restart", format!("svc{i}")]))
        .with("duration_ms", i)
}

/// A log of `n` records written one per append, with an anchor.
pub(crate) fn log_with(dir: &TempDir, n: u64) -> Vec<(u64, String)> {
    let mut log = open(dir);
    (1..=n)
        .flat_map(|i| log.append(&[entry(i)], false).unwrap())
        .collect()
}

pub(crate) fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub(crate) fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    fs::write(path, s).unwrap();
}

/// Verify strictly, but without an anchor when none is given (most tests are about the chain).
pub(crate) fn verify(paths: &[PathBuf], anchor: Option<&Path>) -> VerifyReport {
    let opts = VerifyOptions {
        allow_unanchored: anchor.is_none(),
        ..VerifyOptions::default()
    };
    verify_with(paths, anchor, opts)
}

pub(crate) fn verify_with(
    paths: &[PathBuf],
    anchor: Option<&Path>,
    opts: VerifyOptions,
) -> VerifyReport {
    verify_files(paths, anchor, opts).unwrap()
}

pub(crate) fn problem(r: &VerifyReport) -> (ProblemKind, u64, Option<u64>) {
    let p = r.problem.as_ref().expect("a problem");
    (p.kind, p.line, p.seq)
}

pub(crate) fn parse(line: &str) -> Map<String, Value> {
    match serde_json::from_str(line).unwrap() {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// A record with a correct hash over `fields` (which include prev, seq, ...).
pub(crate) fn forge(fields: Value) -> String {
    let Value::Object(mut m) = fields else {
        panic!()
    };
    let h = record_hash(&m);
    m.insert("hash".into(), h.into());
    chain::record_line(&m).unwrap()
}

#[test]
fn chain_continues_across_opens_and_verifies() {
    let dir = TempDir::new("two-opens");
    let mut log = open(&dir);
    assert_eq!(log.recovery().unwrap().anchor, AnchorStatus::Absent);
    assert_eq!(log.head(), None);
    let mut written = Vec::new();
    for i in 1..=3 {
        written.extend(log.append(&[entry(i)], true).unwrap());
    }
    written.extend(log.append(&[entry(4), entry(5)], false).unwrap());
    drop(log);

    let mut log = open(&dir);
    let rec = log.recovery().unwrap().clone();
    assert_eq!(rec.anchor, AnchorStatus::Matches);
    assert_eq!((rec.log_seq, rec.next_seq), (Some(5), 6));
    assert!(!rec.needs_attention() && rec.to_entry().is_none());
    written.extend(log.append(&[entry(6), entry(7), entry(8)], true).unwrap());
    written.extend(log.append(&[entry(9)], false).unwrap());
    assert_eq!(log.head(), Some((9, written[8].1.as_str())));

    let lines = lines(&dir.log());
    assert_eq!(lines.len(), 9);
    let mut prev = GENESIS_PREV.to_owned();
    for (i, line) in lines.iter().enumerate() {
        let m = parse(line);
        assert_eq!(m["seq"], json!(i + 1));
        assert_eq!(m["v"], json!(1));
        assert_eq!(m["time"], json!("2026-11-22T22:50:01.123Z"));
        assert_eq!(m["event"], json!("run.allowed"));
        assert_eq!(m["prev"], json!(prev));
        assert_eq!(m["hash"], json!(written[i].1));
        assert_eq!(record_hash(&m), written[i].1);
        assert_eq!(written[i].0, i as u64 + 1);
        prev = written[i].1.clone();
    }
    // Reserved keys first and last, fields sorted in between.
    assert!(lines[0].starts_with(
        r#"{"v":1,"seq":1,"time":"2026-11-22T22:50:01.123Z","event":"run.allowed","argv":["systemctl","restart","svc1"],"duration_ms":1,"requester":"alice","prev":"0000"#
    ));

    let anchor = Anchor::read(&dir.anchor()).unwrap();
    assert_eq!(
        anchor,
        Anchor {
            seq: 9,
            hash: prev.clone()
        }
    );
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    assert_eq!(
        (r.records, r.files, r.first_seq, r.last_seq),
        (9, 1, Some(1), Some(9))
    );
    assert_eq!(r.last_hash.as_deref(), Some(prev.as_str()));
    assert_eq!(r.anchor, AnchorCheck::Verified { seq: 9 });
    assert!(r.anchor_checked());
}

#[test]
fn edited_record_is_a_hash_mismatch() {
    let dir = TempDir::new("edit");
    log_with(&dir, 9);
    let mut l = lines(&dir.log());
    l[4] = l[4].replace("\"alice\"", "\"bobby\"");
    write_lines(&dir.log(), &l);
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert_eq!(problem(&r), (ProblemKind::HashMismatch, 5, Some(5)));
    assert_eq!(r.records, 4);
    assert_eq!(r.anchor, AnchorCheck::NotReached { seq: 9 });
    let shown = r.problem.as_ref().unwrap().to_string();
    assert!(shown.contains("audit.jsonl:5: seq 5: hash-mismatch: the record was modified"));

    // Re-hashing the edited record moves the break to the next record.
    let mut m = parse(&l[4]);
    m.remove("hash");
    l[4] = forge(Value::Object(m));
    write_lines(&dir.log(), &l);
    let r = verify(&[dir.log()], None);
    assert_eq!(problem(&r), (ProblemKind::ChainBroken, 6, Some(6)));
}

#[test]
fn deleted_swapped_and_inserted_records_break_the_chain() {
    let dir = TempDir::new("chain");
    log_with(&dir, 9);
    let orig = lines(&dir.log());

    let mut l = orig.clone();
    l.remove(4);
    write_lines(&dir.log(), &l);
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert_eq!(problem(&r), (ProblemKind::ChainBroken, 5, Some(6)));

    let mut l = orig.clone();
    l.swap(3, 4);
    write_lines(&dir.log(), &l);
    assert_eq!(
        problem(&verify(&[dir.log()], None)),
        (ProblemKind::ChainBroken, 4, Some(5))
    );

    // A forged record with a correct hash of its own but a made-up prev.
    let forged = forge(json!({
        "v": 1, "seq": 4, "time": "2026-11-22T22:50:01.123Z", "event": "run.allowed",
        "requester": "mallory", "prev": "ab".repeat(32),
    }));
    let mut l = orig.clone();
    l.insert(3, forged);
    write_lines(&dir.log(), &l);
    assert_eq!(
        problem(&verify(&[dir.log()], None)),
        (ProblemKind::ChainBroken, 4, Some(4))
    );

    // Chained correctly to its predecessor, it breaks its successor's link instead.
    let prev = parse(&orig[2])["hash"].clone();
    let forged = forge(json!({
        "v": 1, "seq": 4, "time": "2026-11-22T22:50:01.123Z", "event": "run.allowed",
        "requester": "mallory", "prev": prev,
    }));
    let mut l = orig.clone();
    l.insert(3, forged);
    write_lines(&dir.log(), &l);
    assert_eq!(
        problem(&verify(&[dir.log()], None)),
        (ProblemKind::ChainBroken, 5, Some(4))
    );

    // A well-chained record with a wrong seq.
    let forged = forge(json!({
        "v": 1, "seq": 7, "time": "2026-11-22T22:50:01.123Z", "event": "x", "prev": prev,
    }));
    let mut l = orig[..3].to_vec();
    l.push(forged);
    write_lines(&dir.log(), &l);
    assert_eq!(
        problem(&verify(&[dir.log()], None)),
        (ProblemKind::SeqGap, 4, Some(7))
    );
}

#[test]
fn truncation_is_caught_by_the_anchor_only() {
    let dir = TempDir::new("truncate");
    log_with(&dir, 9);
    let mut l = lines(&dir.log());
    l.truncate(7);
    write_lines(&dir.log(), &l);

    // The chain alone cannot tell: only when asked to, verification accepts that, and says so.
    let r = verify(&[dir.log()], None);
    assert!(r.is_ok());
    assert!(!r.anchor_checked());
    assert_eq!(
        r.unproven,
        [Unproven::End {
            last_seq: Some(7),
            why: "no anchor".into()
        }]
    );
    let r = verify_with(&[dir.log()], None, VerifyOptions::default());
    assert_eq!(problem(&r), (ProblemKind::Unanchored, 8, None));
    assert!(r.unproven.is_empty());
    // A deleted anchor is no anchor.
    let r = verify(&[dir.log()], Some(&dir.join("no-such-anchor")));
    assert_eq!(problem(&r), (ProblemKind::Unanchored, 8, None));
    assert!(matches!(r.anchor, AnchorCheck::Unavailable(_)));
    let opts = VerifyOptions {
        allow_unanchored: true,
        ..VerifyOptions::default()
    };
    let r = verify_with(&[dir.log()], Some(&dir.join("no-such-anchor")), opts);
    assert!(r.is_ok() && !r.anchor_checked());
    assert!(r.unproven[0].to_string().starts_with(
        "not proven: the newest records (after seq 7) could have been removed: no anchor ("
    ));

    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert_eq!(problem(&r), (ProblemKind::Truncated, 8, Some(8)));
    assert!(r
        .problem
        .as_ref()
        .unwrap()
        .message
        .contains("records 8..=9 are missing"));
    assert_eq!(r.anchor, AnchorCheck::Failed { seq: 9 });
    assert_eq!(r.records, 7);

    // The writer notices too and continues from the anchor: the gap stays visible.
    let mut log = open(&dir);
    let rec = log.recovery().unwrap().clone();
    assert_eq!(rec.anchor, AnchorStatus::LogBehind);
    assert_eq!(
        (rec.log_seq, rec.anchor_seq, rec.next_seq),
        (Some(7), Some(9), 10)
    );
    assert!(rec.needs_attention());
    let e = rec.to_entry().unwrap();
    assert_eq!(e.fields["anchor"], json!("log-behind"));
    log.append(&[e], true).unwrap();
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert_eq!(problem(&r), (ProblemKind::ChainBroken, 8, Some(10)));
}

#[test]
fn rewritten_end_is_an_anchor_mismatch() {
    let dir = TempDir::new("anchor-mismatch");
    log_with(&dir, 5);
    let mut l = lines(&dir.log());
    let mut m = parse(&l[4]);
    m.remove("hash");
    m.insert("requester".into(), "mallory".into());
    l[4] = forge(Value::Object(m));
    write_lines(&dir.log(), &l);
    assert!(verify(&[dir.log()], None).is_ok());
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert_eq!(problem(&r), (ProblemKind::AnchorMismatch, 5, Some(5)));
    assert_eq!(r.anchor, AnchorCheck::Failed { seq: 5 });
    // The writer sees the conflict and keeps the anchored hash.
    let log = open(&dir);
    assert_eq!(log.recovery().unwrap().anchor, AnchorStatus::Conflict);
    assert_eq!(
        log.head().unwrap().1,
        Anchor::read(&dir.anchor()).unwrap().hash
    );
}

#[test]
fn failed_append_rereads_the_tail() {
    let dir = TempDir::new("failed");
    let mut log = open(&dir);
    log.append(&[entry(1), entry(2), entry(3)], true).unwrap();

    // Nothing reached the disk: the chain simply continues.
    log.mark_failed();
    log.append(&[entry(4)], false).unwrap();
    assert_eq!(log.recovery().unwrap().anchor, AnchorStatus::Matches);
    assert!(verify(&[dir.log()], Some(&dir.anchor())).is_ok());

    // The failed batch reached the disk whole (another handle writes it here): chain from it.
    let mut other = AuditLog::options()
        .clock(fixed_clock)
        .group(None)
        .open(&dir.log())
        .unwrap();
    other.append(&[entry(5), entry(6)], false).unwrap();
    log.mark_failed();
    assert_eq!(log.append(&[entry(7)], false).unwrap()[0].0, 7);
    assert_eq!(log.recovery().unwrap().anchor, AnchorStatus::LogAhead);
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    assert_eq!(r.last_seq, Some(7));

    // Part of a line reached the disk: it is sealed, and the chain continues from record 7.
    fs::OpenOptions::new()
        .append(true)
        .open(dir.log())
        .unwrap()
        .write_all(b"{\"v\":1,\"seq\":8,\"ti")
        .unwrap();
    log.mark_failed();
    let out = log.append(&[entry(9)], true).unwrap();
    assert_eq!(out[0].0, 9);
    assert!(log.recovery().unwrap().torn.is_some());
    let l = lines(&dir.log());
    assert_eq!(l[7], "{\"v\":1,\"seq\":8,\"ti");
    let seal = parse(&l[8]);
    assert_eq!(seal["event"], json!("audit.sealed"));
    assert_eq!(seal["sha256"], json!(sha256_hex(l[7].as_bytes())));
    assert_eq!(seal["prev"], parse(&l[6])["hash"]);
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    assert_eq!(r.warnings.len(), 1);
    assert_eq!((r.warnings[0].line, r.warnings[0].seq), (8, 8));
}

#[test]
fn hostile_strings_stay_on_one_line() {
    let dir = TempDir::new("strings");
    let argv = json!([
        "sh",
        "-c",
        "echo ok\n{\"v\":1,\"seq\":99,\"event\":\"run.allowed\"}\r\n",
        "quote\" back\\slash \u{1} \u{1b}[31m \u{7f} \t tab",
        "ünïcödé ✓ 😀 \u{2028}\u{2029} /",
    ]);
    let mut log = open(&dir);
    let e = Entry::new("run.allowed")
        .with("argv", argv.clone())
        .with("cwd", "/tmp/\nfake")
        .with(
            "key\nwith newline",
            json!({"nested\u{0}": [null, true, -5]}),
        );
    log.append(&[e.clone(), e], true).unwrap();
    let text = fs::read_to_string(dir.log()).unwrap();
    assert_eq!(text.matches('\n').count(), 2);
    assert!(!text.bytes().any(|b| b < 0x20 && b != b'\n' || b == 0x7f));
    let m = parse(text.lines().next().unwrap());
    assert_eq!(m["argv"], argv);
    assert_eq!(
        m["key\nwith newline"],
        json!({"nested\u{0}": [null, true, -5]})
    );
    assert!(verify(&[dir.log()], Some(&dir.anchor())).is_ok());
}

#[test]
fn invalid_entries_are_rejected_before_writing() {
    let dir = TempDir::new("reject");
    let mut log = open(&dir);
    log.append(&[entry(1)], false).unwrap();
    let size = fs::metadata(dir.log()).unwrap().len();
    let mut bad = Vec::new();
    for key in RESERVED_KEYS {
        bad.push(entry(2).with(key, 5));
    }
    bad.push(entry(2).with("duration", 1.5));
    bad.push(entry(2).with("big", json!({"n": [MAX_SAFE_INTEGER + 1]})));
    bad.push(entry(2).with("huge", "x".repeat(MAX_RECORD_LEN)));
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    bad.push(entry(2).with("deep", deep));
    for name in [
        "",
        "Run.Allowed",
        "run allowed",
        "run\n.x",
        &"x".repeat(65),
        "audit.sealed",
    ] {
        bad.push(Entry::new(name));
    }
    for e in bad {
        // Alone, and with a valid entry before it: the whole batch fails.
        let err = log.append(&[entry(2), e], true).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    }
    assert!(log
        .append(&[entry(2).with("seq", 1)], true)
        .unwrap_err()
        .to_string()
        .contains("field `seq` is reserved"));
    assert_eq!(fs::metadata(dir.log()).unwrap().len(), size);
    assert_eq!(log.next_seq(), 2);
    assert_eq!(log.append(&[], true).unwrap(), vec![]);
    log.append(&[entry(2).with("n", -(MAX_SAFE_INTEGER as i64))], false)
        .unwrap();
    assert!(verify(&[dir.log()], Some(&dir.anchor())).is_ok());
}

#[test]
fn not_canonical_and_malformed_lines() {
    let dir = TempDir::new("canon");
    log_with(&dir, 3);
    let orig = lines(&dir.log());
    let cases: Vec<(String, ProblemKind)> = vec![
        // Duplicate key: parsers keep the last value, a reader may see the first.
        (
            orig[1].replacen("{\"v\":1,", "{\"v\":1,\"requester\":\"root\",", 1),
            ProblemKind::NotCanonical,
        ),
        (orig[1].replacen(",", ", ", 1), ProblemKind::NotCanonical),
        (
            orig[1].replacen("alice", "\\u0061lice", 1),
            ProblemKind::NotCanonical,
        ),
        (format!("{} ", orig[1]), ProblemKind::NotCanonical),
        (
            orig[1].replacen("\"v\":1", "\"v\":2", 1),
            ProblemKind::Malformed,
        ),
        (
            orig[1].replacen("\"v\":1", "\"v\":1.0", 1),
            ProblemKind::Malformed,
        ),
        (orig[1].replacen(".123Z", "Z", 1), ProblemKind::Malformed),
        ("[1,2]".into(), ProblemKind::Unparseable),
        ("not json".into(), ProblemKind::Unparseable),
        (String::new(), ProblemKind::Unparseable),
    ];
    for (line, kind) in cases {
        let mut l = orig.clone();
        l[1] = line.clone();
        write_lines(&dir.log(), &l);
        let r = verify(&[dir.log()], None);
        assert_eq!(problem(&r).0, kind, "{line}");
        assert_eq!(problem(&r).1, 2, "{line}");
    }
    // A float with a correct hash.
    let prev = parse(&orig[0])["hash"].clone();
    let mut l = orig.clone();
    l[1] = forge(json!({"v": 1, "seq": 2, "time": "2026-11-22T22:50:01.123Z",
        "event": "x", "d": 0.5, "prev": prev}));
    write_lines(&dir.log(), &l);
    assert_eq!(
        problem(&verify(&[dir.log()], None)),
        (ProblemKind::Malformed, 2, Some(2))
    );
    // Invalid UTF-8.
    let mut bytes = fs::read(dir.log()).unwrap();
    let at = bytes.iter().position(|&b| b == b'a').unwrap();
    bytes[at] = 0xff;
    fs::write(dir.log(), bytes).unwrap();
    assert_eq!(
        problem(&verify(&[dir.log()], None)).0,
        ProblemKind::Unparseable
    );
}

#[test]
fn rotation_continues_the_chain() {
    let dir = TempDir::new("rotate");
    let rotated = dir.join("log/audit.jsonl.1");
    let mut log = open(&dir);
    log.append(&[entry(1), entry(2), entry(3)], true).unwrap();
    assert!(!log.reopen_if_rotated().unwrap());
    fs::rename(dir.log(), &rotated).unwrap();
    assert!(log.reopen_if_rotated().unwrap());
    assert_eq!(log.recovery().unwrap().anchor, AnchorStatus::Resumed);
    log.append(&[entry(4), entry(5)], true).unwrap();
    drop(log);

    let r = verify(&[rotated.clone(), dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    assert_eq!(
        (r.records, r.files, r.first_seq, r.last_seq),
        (5, 2, Some(1), Some(5))
    );
    assert!(r.anchor_checked());
    // The live log alone: its first record may chain to anything, so the start is not proven.
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert_eq!(problem(&r), (ProblemKind::MissingStart, 1, Some(4)));
    let opts = VerifyOptions {
        allow_missing_start: true,
        ..VerifyOptions::default()
    };
    let r = verify_with(&[dir.log()], Some(&dir.anchor()), opts);
    assert!(r.is_ok() && r.first_seq == Some(4) && r.anchor_checked());
    assert!(matches!(r.unproven[..], [Unproven::Start { seq: 4, .. }]));
    // Only the rotated file: the anchor shows records are missing after it.
    let r = verify(std::slice::from_ref(&rotated), Some(&dir.anchor()));
    assert_eq!(problem(&r).0, ProblemKind::Truncated);
    // Wrong order: the live log does not start a log; when that is allowed, the rotated file
    // does not follow it.
    let r = verify(&[dir.log(), rotated.clone()], None);
    assert_eq!(problem(&r), (ProblemKind::MissingStart, 1, Some(4)));
    let r = verify_with(&[dir.log(), rotated.clone()], None, opts);
    assert_eq!(problem(&r), (ProblemKind::ChainBroken, 1, Some(1)));
    assert_eq!(r.problem.unwrap().file, rotated);

    // Rotation while the daemon was down: a fresh open resumes from the anchor.
    fs::rename(dir.log(), dir.join("log/audit.jsonl.2")).unwrap();
    let mut log = open(&dir);
    assert_eq!(log.recovery().unwrap().anchor, AnchorStatus::Resumed);
    assert_eq!(log.append(&[entry(6)], false).unwrap()[0].0, 6);
    let r = verify(
        &[rotated, dir.join("log/audit.jsonl.2"), dir.log()],
        Some(&dir.anchor()),
    );
    assert!(r.is_ok() && r.records == 6 && r.files == 3);

    // Without an anchor, reopen continues from memory.
    let dir = TempDir::new("rotate-no-anchor");
    let mut log = AuditLog::options().group(None).open(&dir.log()).unwrap();
    log.append(&[entry(1)], false).unwrap();
    fs::rename(dir.log(), dir.join("old")).unwrap();
    log.reopen().unwrap();
    log.append(&[entry(2)], false).unwrap();
    assert!(verify(&[dir.join("old"), dir.log()], None).is_ok());
}

#[test]
fn huge_file_recovery_reads_only_the_tail() {
    let dir = TempDir::new("huge");
    let src = TempDir::new("huge-src");
    log_with(&src, 3);
    fs::create_dir_all(dir.join("log")).unwrap();
    let f = fs::File::create(dir.log()).unwrap();
    f.set_len(4 << 30).unwrap(); // 4 GiB hole: one giant garbage line
    drop(f);
    let mut tail = String::from("\n");
    for l in lines(&src.log()) {
        tail.push_str(&l);
        tail.push('\n');
    }
    fs::OpenOptions::new()
        .append(true)
        .open(dir.log())
        .unwrap()
        .write_all(tail.as_bytes())
        .unwrap();

    let mut log = AuditLog::options().group(None).open(&dir.log()).unwrap();
    let rec = log.recovery().unwrap();
    assert_eq!((rec.log_seq, rec.next_seq, &rec.torn), (Some(3), 4, &None));
    assert!(rec.bytes_read < 256 * 1024, "read {} bytes", rec.bytes_read);
    log.append(&[entry(4)], false).unwrap();

    // The verifier streams: the giant first line is reported without buffering it.
    let r = verify(&[dir.log()], None);
    assert_eq!(problem(&r), (ProblemKind::Unparseable, 1, None));
    assert!(r.problem.unwrap().message.contains("longer than"));
}

#[test]
fn empty_file_and_lone_newline() {
    let dir = TempDir::new("empty");
    fs::create_dir_all(dir.join("log")).unwrap();
    fs::write(dir.log(), "").unwrap();
    let r = verify(&[dir.log()], None);
    assert!(r.is_ok());
    assert_eq!(
        (r.records, r.files, r.first_seq, r.last_hash),
        (0, 1, None, None)
    );
    assert_eq!(verify(&[], None).files, 0);
    let log = open(&dir);
    assert_eq!(log.next_seq(), 1);
    assert_eq!(log.recovery().unwrap().anchor, AnchorStatus::Absent);
    drop(log);
    // An anchor, but no records: truncated.
    Anchor {
        seq: 5,
        hash: "ab".repeat(32),
    }
    .write(&dir.anchor())
    .unwrap();
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert_eq!(problem(&r), (ProblemKind::Truncated, 1, Some(5)));

    let dir = TempDir::new("newline");
    fs::create_dir_all(dir.join("log")).unwrap();
    fs::write(dir.log(), "\n").unwrap();
    let r = verify(&[dir.log()], None);
    assert_eq!(problem(&r), (ProblemKind::Unparseable, 1, None));
    assert!(r.problem.unwrap().message.contains("empty line"));
    let mut log = open(&dir);
    let rec = log.recovery().unwrap().clone();
    let torn = rec
        .torn
        .as_ref()
        .map(|t| (t.offset, t.length, t.sha256.as_str()));
    assert_eq!(torn, Some((0, 0, sha256_hex(b"").as_str())));
    assert_eq!((rec.log_seq, rec.next_seq), (None, 1));
    // The empty line is sealed by seq 1 of a fresh chain.
    assert_eq!(log.append(&[entry(2)], true).unwrap()[0].0, 2);
    let text = fs::read_to_string(dir.log()).unwrap();
    assert!(text.starts_with("\n{"), "no extra newline: {text:?}");
    let seal = parse(&lines(&dir.log())[1]);
    assert_eq!(
        (&seal["seq"], &seal["event"], &seal["prev"]),
        (&json!(1), &json!("audit.sealed"), &json!(GENESIS_PREV))
    );
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    assert_eq!((r.warnings.len(), r.warnings[0].line), (1, 1));
}

#[test]
fn many_appends() {
    let dir = TempDir::new("many");
    let mut log = open(&dir);
    for i in 1..=1000 {
        let out = log.append(&[entry(i)], false).unwrap();
        assert_eq!(out[0].0, i);
    }
    let batch: Vec<Entry> = (1001..=1100).map(entry).collect();
    let out = log.append(&batch, true).unwrap();
    assert_eq!(out.len(), 100);
    assert_eq!(out[99].0, 1100);
    assert!(log.take_anchor_error().is_none());
    log.sync().unwrap();
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    assert_eq!((r.records, r.last_seq), (1100, Some(1100)));
    assert_eq!(r.last_hash.as_deref(), Some(out[99].1.as_str()));
}

#[test]
fn refuses_symlinks_hard_links_and_odd_files() {
    let dir = TempDir::new("links");
    let target = dir.join("target");
    fs::write(&target, "").unwrap();
    std::os::unix::fs::symlink(&target, dir.join("sym")).unwrap();
    let err = AuditLog::open(&dir.join("sym")).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    std::os::unix::fs::symlink(dir.join("dangling"), dir.join("dsym")).unwrap();
    assert!(AuditLog::open(&dir.join("dsym")).is_err());
    assert!(!dir.join("dangling").exists());
    fs::hard_link(&target, dir.join("hard")).unwrap();
    let err = AuditLog::open(&dir.join("hard")).unwrap_err();
    assert!(err.to_string().contains("hard links"), "{err}");
    fs::create_dir(dir.join("d")).unwrap();
    assert!(AuditLog::open(&dir.join("d")).is_err());
}

#[test]
fn creates_directory_and_file_with_modes() {
    let dir = TempDir::new("modes");
    let path = dir.join("a/b/audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    drop(log);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&path), 0o640);
    assert_eq!(mode(&dir.join("a/b")), 0o750);
    // Group `adm` when it exists and we may chown (root).
    let adm = fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("adm:x:")?
                .split(':')
                .next()?
                .parse::<u32>()
                .ok()
        });
    let root = fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if let (Some(gid), true) = (adm, root) {
        assert_eq!(fs::metadata(&path).unwrap().gid(), gid);
    }
}

#[test]
fn corrupt_anchor_is_reported_not_fatal() {
    let dir = TempDir::new("bad-anchor");
    log_with(&dir, 2);
    fs::write(dir.anchor(), "garbage").unwrap();
    let mut log = open(&dir);
    assert!(matches!(
        log.recovery().unwrap().anchor,
        AnchorStatus::Invalid(_)
    ));
    assert!(log.recovery().unwrap().needs_attention());
    assert!(log.recovery().unwrap().describe().contains("invalid"));
    log.append(&[entry(3)], false).unwrap();
    // The append rewrote it.
    assert_eq!(Anchor::read(&dir.anchor()).unwrap().seq, 3);
    fs::write(dir.anchor(), "garbage").unwrap();
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert_eq!(problem(&r).0, ProblemKind::Unanchored);
    assert!(!r.anchor_checked());
    // An anchor older than the files given cannot be checked.
    Anchor {
        seq: 0,
        hash: "00".repeat(32),
    }
    .write(&dir.anchor())
    .unwrap();
    let r = verify(&[dir.log()], Some(&dir.anchor()));
    assert_eq!(r.anchor, AnchorCheck::BeforeFirstRecord { seq: 0 });
    assert_eq!(problem(&r).0, ProblemKind::Unanchored);
    // A failed anchor write does not fail the append.
    let mut log = AuditLog::options()
        .anchor(dir.join("missing-dir/anchor.json"))
        .group(None)
        .open(&dir.log())
        .unwrap();
    log.append(&[entry(4)], false).unwrap();
    assert!(log.take_anchor_error().is_some());
}

/// The hand check documented in the crate docs, run for real when jq is installed.
#[test]
fn jq_recipe_matches() {
    if std::process::Command::new("jq")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("jq not installed; skipped");
        return;
    }
    let dir = TempDir::new("jq");
    let mut log = open(&dir);
    log.append(
        &[
            entry(1),
            Entry::new("run.denied")
                .with(
                    "argv",
                    json!(["a\nb", "q\"\\", "\u{1}\u{7f}\u{1b}", "é😀\u{2028}", "/"]),
                )
                .with(
                    "z",
                    json!({"b": [1, {"d": null, "c": false}], "a": -9007199254740991i64, "": {}}),
                ),
        ],
        true,
    )
    .unwrap();
    let script = r#"
LINE='def c: if type == "object" then to_entries | sort_by(.key) | map({(.key): (.value | c)}) | add // {}
             elif type == "array" then map(c) else . end;
      {v, seq, time, event} + (del(.v, .seq, .time, .event, .prev, .hash) | c) + {prev, hash}'
n=0; last=
while IFS= read -r line; do
  n=$((n+1))
  hash=$(printf '%s' "$line" | jq -r .hash)
  [ "$(printf '%s' "$line" | jq -cjS 'del(.hash)' | sha256sum | cut -c1-64)" = "$hash" ] \
    || echo "line $n: record edited"
  [ -z "$last" ] || [ "$(printf '%s' "$line" | jq -r .prev)" = "$last" ] \
    || echo "line $n: chain broken"
  [ "$(printf '%s' "$line" | jq -cj "$LINE")" = "$line" ] || echo "line $n: not canonical"
  last=$hash
done < "$1"
echo "last hash: $last"
"#;
    let run = |path: &Path| {
        let out = std::process::Command::new("bash")
            .args(["-c", script, "check"])
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let head = log.head().unwrap().1.to_owned();
    assert_eq!(run(&dir.log()), format!("last hash: {head}\n"));
    let mut l = lines(&dir.log());
    l[0] = l[0].replace("alice", "bob");
    write_lines(&dir.log(), &l);
    assert!(run(&dir.log()).starts_with("line 1: record edited\n"));
}

#[test]
fn writer_is_send() {
    fn send<T: Send>() {}
    send::<AuditLog>();
    send::<Entry>();
}

/// Every single-byte change anywhere is detected, and nothing panics.
#[test]
fn every_byte_flip_is_detected() {
    let dir = TempDir::new("flip");
    let mut log = open(&dir);
    log.append(
        &[
            entry(1),
            Entry::new("x").with("s", "é\u{1b}\n\"\\"),
            entry(3),
        ],
        true,
    )
    .unwrap();
    drop(log);
    let orig = fs::read(dir.log()).unwrap();
    let copy = dir.join("copy.jsonl");
    for i in 0..orig.len() {
        for new in [
            orig[i] ^ 0x01,
            orig[i] ^ 0x20,
            b'\n',
            b' ',
            b'"',
            b'0',
            0xff,
        ] {
            if new == orig[i] {
                continue;
            }
            let mut bytes = orig.clone();
            bytes[i] = new;
            fs::write(&copy, &bytes).unwrap();
            let r = verify(std::slice::from_ref(&copy), Some(&dir.anchor()));
            assert!(!r.is_ok(), "byte {i} -> {new:#x} undetected");
            // The writer recovers from anything.
            AuditLog::options().group(None).open(&copy).unwrap();
        }
    }
}

#[test]
fn a_proven_chain_starts_at_a_fresh_logs_first_record_and_ends_at_the_anchor() {
    let dir = TempDir::new("proven");
    log_with(&dir, 6);
    let strict = |paths: &[PathBuf], anchor: Option<&Path>| {
        verify_with(paths, anchor, VerifyOptions::default())
    };
    let r = strict(&[dir.log()], Some(&dir.anchor()));
    assert!(r.is_ok(), "{:?}", r.problem);
    assert!(r.unproven.is_empty() && r.first_seq == Some(1));
    let first = parse(&lines(&dir.log())[0]);
    assert_eq!(first["prev"], GENESIS_PREV);

    // The oldest records cut: the chain starts in the middle.
    let all = lines(&dir.log());
    let cut = dir.join("cut");
    write_lines(&cut, &all[2..]);
    let r = strict(std::slice::from_ref(&cut), Some(&dir.anchor()));
    assert_eq!(problem(&r), (ProblemKind::MissingStart, 1, Some(3)));
    assert!(r
        .problem
        .unwrap()
        .message
        .contains("the oldest records are missing"));
    // Both ends cut, both allowed: accepted, and both said.
    write_lines(&cut, &all[2..4]);
    let opts = VerifyOptions {
        allow_missing_start: true,
        allow_unanchored: true,
    };
    let r = verify_with(std::slice::from_ref(&cut), None, opts);
    assert!(r.is_ok());
    let said: Vec<String> = r.unproven.iter().map(ToString::to_string).collect();
    assert_eq!(said.len(), 2);
    assert!(said[0].contains("the oldest records (before seq 3) could have been removed"));
    assert!(said[1].contains("the newest records (after seq 4) could have been removed"));

    // A whole rotated file removed: the first one, or one in the middle.
    let (first, middle) = (dir.join("audit.1"), dir.join("audit.2"));
    write_lines(&first, &all[..2]);
    write_lines(&middle, &all[2..4]);
    let live = dir.join("audit.3");
    write_lines(&live, &all[4..]);
    let r = strict(
        &[first.clone(), middle.clone(), live.clone()],
        Some(&dir.anchor()),
    );
    assert!(r.is_ok() && r.files == 3, "{:?}", r.problem);
    let r = strict(&[middle, live.clone()], Some(&dir.anchor()));
    assert_eq!(problem(&r), (ProblemKind::MissingStart, 1, Some(3)));
    let r = strict(&[first, live], Some(&dir.anchor()));
    assert_eq!(problem(&r), (ProblemKind::ChainBroken, 1, Some(5)));

    // A deleted anchor proves nothing about the end.
    fs::remove_file(dir.anchor()).unwrap();
    let r = strict(&[dir.log()], Some(&dir.anchor()));
    assert_eq!(problem(&r).0, ProblemKind::Unanchored);
    // An empty log without an anchor could be anything.
    fs::write(&cut, "").unwrap();
    let r = strict(std::slice::from_ref(&cut), None);
    assert_eq!(problem(&r), (ProblemKind::Unanchored, 1, None));
}
