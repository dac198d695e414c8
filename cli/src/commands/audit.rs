//! `elevate audit verify`: check the audit log's hash chain offline, with the same crate
//! the daemon writes it with.

use crate::args::VerifyArgs;
use crate::error::Failure;
use crate::output::{clean, outln, print_json};
use elevate_audit::{AnchorCheck, VerifyOptions, VerifyReport, Warning, WarningKind};
use elevate_policy::config::Config;
use elevate_proto::exit;
use serde_json::{json, Value};

/// `elevate audit verify`: 0 when the chain is proven whole (or as far as `--no-anchor` /
/// `--allow-missing-start` ask, which is printed), 1 at the first broken record or what could
/// not be proven. Warnings (a torn line the daemon sealed, records it could not write) are
/// printed and leave it 0.
pub fn verify(config: &Config, args: VerifyArgs) -> Result<i32, Failure> {
    // The state dir's anchor belongs to the configured log: apply it by default only there.
    // A missing one is not skipped: it is what deleting the newest records would look like.
    let (files, default_anchor) = if args.files.is_empty() {
        (
            vec![config.audit_log()],
            Some(config.state_dir().join(elevate_audit::ANCHOR_FILE)),
        )
    } else {
        (args.files, None)
    };
    let anchor = match args.no_anchor {
        true => None,
        false => args.anchor.or(default_anchor),
    };
    let opts = VerifyOptions {
        allow_missing_start: args.allow_missing_start,
        allow_unanchored: args.no_anchor,
    };
    let report = elevate_audit::verify_files(&files, anchor.as_deref(), opts)
        .map_err(Failure::AuditUnreadable)?;
    let range = match (report.first_seq, report.last_seq) {
        (Some(a), Some(b)) => format!("seq {a}..{b}"),
        _ => "empty".to_string(),
    };
    if args.json {
        let out = json!({
            "ok": report.is_ok(),
            "records": report.records,
            "files": report.files,
            "first_seq": report.first_seq,
            "last_seq": report.last_seq,
            "last_hash": report.last_hash,
            "anchor_checked": report.anchor_checked(),
            "unproven": report.unproven.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
            "problem": report.problem.as_ref().map(|p| json!({
                "file": p.file.display().to_string(), "line": p.line, "seq": p.seq, "message": p.to_string(),
            })),
            "warnings": report.warnings.iter().map(warning_json).collect::<Vec<_>>(),
            "warnings_omitted": report.warnings_omitted,
        });
        print_json(&out);
        return Ok(exit_code(&report));
    }
    if let Some(p) = &report.problem {
        outln!("audit log BROKEN: {p}");
        outln!("{} records verified before it ({range})", report.records);
    } else {
        outln!(
            "audit log OK: {} records ({range}) in {} files, chain intact{}",
            report.records,
            report.files,
            anchor_note(&report)
        );
    }
    for u in &report.unproven {
        outln!("{}", clean(&u.to_string()));
    }
    for w in &report.warnings {
        outln!("warning: {}", clean(&w.to_string()));
    }
    if report.warnings_omitted > 0 {
        outln!(
            "warning: {} more warnings not shown",
            report.warnings_omitted
        );
    }
    Ok(exit_code(&report))
}

/// What the anchor proved about the end. It is replaced after every append, so it names the
/// last record unless the daemon is writing right now, crashed between the two, or could not
/// replace it: then the records after it are chained to it but newer than it.
fn anchor_note(report: &VerifyReport) -> String {
    match (&report.anchor, report.last_seq) {
        (AnchorCheck::Verified { seq }, Some(last)) if last > *seq => format!(
            ", anchor matches seq {seq} (the {} records after it are newer than the anchor)",
            last - seq
        ),
        (AnchorCheck::Verified { .. }, _) => ", anchor matches".to_owned(),
        _ => String::new(),
    }
}

fn exit_code(report: &VerifyReport) -> i32 {
    if report.is_ok() {
        0
    } else {
        exit::INVALID
    }
}

/// One warning for `--json`: where, what, and what the record says.
fn warning_json(w: &Warning) -> Value {
    let mut v = json!({
        "file": w.file.display().to_string(), "line": w.line, "seq": w.seq,
        "kind": w.kind.as_str(), "message": w.to_string(),
    });
    let details = match &w.kind {
        WarningKind::TornLine {
            torn,
            last_good_seq,
        } => json!({
            "offset": torn.offset, "length": torn.length, "sha256": torn.sha256,
            "last_good_seq": last_good_seq,
        }),
        WarningKind::Gap(gap) => json!({
            "lost": gap.lost, "events": gap.events, "from": gap.from, "to": gap.to,
            "error": gap.error,
        }),
    };
    if let (Value::Object(v), Value::Object(details)) = (&mut v, details) {
        v.extend(details);
    }
    v
}
