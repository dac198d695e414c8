//! Commands that need no daemon and no privileges: `policy check`, `policy explain` and
//! `audit verify`. They use the same crates the daemon uses, so they are its test oracle.

use crate::args::{CheckArgs, ExplainArgs, HostArgs, VerifyArgs};
use crate::run::request_argv;
use crate::{fail, sys, Failure, NOINPUT};
use elevate_policy::config::Config;
use elevate_policy::{HostInfo, LoadOptions, LoadOutcome, Query, RealSystem, Verdict};
use elevate_proto::exit;
use serde_json::json;
use std::path::PathBuf;

fn host_for(config: &Config, args: &HostArgs) -> Result<HostInfo, Failure> {
    let mut host = config.host();
    if let Some(h) = &args.host {
        host.name = h.to_ascii_lowercase();
    }
    if let Some(labels) = &args.labels {
        host.labels.clear();
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| fail(exit::USAGE, format!("--labels: {pair:?} is not key=value")))?;
            host.labels
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    Ok(host)
}

fn load(
    paths: &[PathBuf],
    default_dir: PathBuf,
    no_permissions: bool,
) -> Result<LoadOutcome, Failure> {
    let opts = LoadOptions {
        check_permissions: !no_permissions,
    };
    match paths {
        [] => Ok(elevate_policy::load_dir(&default_dir, &opts, &RealSystem)),
        [one] if one.is_dir() => Ok(elevate_policy::load_dir(one, &opts, &RealSystem)),
        many => {
            if let Some(d) = many.iter().find(|p| p.is_dir()) {
                return Err(fail(
                    exit::USAGE,
                    format!("{}: give either one directory or files", d.display()),
                ));
            }
            Ok(elevate_policy::load_files(many, &opts, &RealSystem))
        }
    }
}

pub fn policy_check(config: &Config, args: CheckArgs) -> Result<i32, Failure> {
    let host = host_for(config, &args.host)?;
    let outcome = load(&args.paths, config.policy_dir(), args.host.no_permissions)?;
    let errors: Vec<String> = outcome.errors().map(|d| d.to_string()).collect();
    let warnings: Vec<String> = outcome.warnings().map(|d| d.to_string()).collect();
    let show_host = args.host.host.is_some() || args.host.labels.is_some();
    let applying: Vec<String> = match (&outcome.policy, show_host) {
        (Some(p), true) => p
            .profiles
            .iter()
            .filter(|x| x.applies_to_host(&host))
            .map(|x| x.name.clone())
            .collect(),
        _ => vec![],
    };
    if args.json {
        let p = outcome.policy.as_ref();
        let out = json!({
            "valid": p.is_some(),
            "errors": errors,
            "warnings": warnings,
            "profiles": p.map(|p| p.profiles.len()),
            "files": p.map(|p| p.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>()),
            "digest": p.map(|p| p.digest.clone()),
            "host": show_host.then(|| json!({"name": host.name, "labels": host.labels, "profiles": applying})),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        for d in &outcome.diagnostics {
            eprintln!("{d}");
        }
        match &outcome.policy {
            Some(p) => {
                println!(
                    "policy OK: {} profiles in {} files, {} warnings",
                    p.profiles.len(),
                    p.files.len(),
                    warnings.len()
                );
                if show_host {
                    println!(
                        "on host {}: {}",
                        host.name,
                        if applying.is_empty() {
                            "no profile applies".into()
                        } else {
                            applying.join(", ")
                        }
                    );
                }
            }
            None => println!(
                "policy INVALID: {} errors, {} warnings",
                errors.len(),
                warnings.len()
            ),
        }
    }
    Ok(if outcome.policy.is_some() {
        0
    } else {
        exit::INVALID
    })
}

pub fn policy_explain(config: &Config, args: ExplainArgs) -> Result<i32, Failure> {
    let host = host_for(config, &args.host)?;
    let dir = args
        .policy_dir
        .clone()
        .unwrap_or_else(|| config.policy_dir());
    let outcome = load(&[], dir, args.host.no_permissions)?;
    let Some(policy) = outcome.policy else {
        for d in outcome.errors() {
            eprintln!("{d}");
        }
        return Err(fail(
            exit::INVALID,
            "the policy is invalid; fix the errors above (elevate policy check)",
        ));
    };
    let passwd = match &args.user {
        Some(u) => RealSystem
            .passwd_by_name(u)
            .ok_or_else(|| fail(exit::USAGE, format!("no such user: {u}")))?,
        None => {
            let uid = sys::getuid();
            RealSystem
                .passwd_by_uid(uid)
                .ok_or_else(|| fail(exit::USAGE, format!("uid {uid} has no user account")))?
        }
    };
    let subject = RealSystem.subject_for(&passwd);
    let argv = request_argv(&args.command)?;
    let path = match elevate_policy::resolve_command(&argv[0], &RealSystem) {
        Ok(p) => p,
        Err(e) => return Ok(report_denied(args.json, &e.to_string(), None, None)),
    };
    let query = Query {
        path: &path,
        args: &argv[1..],
        profile: args.profile.as_deref(),
        run_as: args.run_as.as_deref(),
    };
    match policy.decide(&host, &subject, &query, &|_| false) {
        Verdict::Allow { profile, rule } => {
            let cmdline = std::iter::once(path.display().to_string())
                .chain(argv[1..].iter().cloned())
                .collect::<Vec<_>>();
            if args.json {
                let out = json!({
                    "allowed": true, "user": subject.user, "host": host.name, "profile": profile.name,
                    "profile_location": profile.location.to_string(), "rule": rule.location.to_string(),
                    "run_as": profile.run_as, "path": path.display().to_string(), "argv": cmdline,
                });
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                println!(
                    "ALLOWED for {} on {}: profile {} ({}), rule {}, runs as {}: {}",
                    subject.user,
                    host.name,
                    profile.name,
                    profile.location,
                    rule.location,
                    profile.run_as,
                    cmdline.join(" ")
                );
                println!("(assuming no active lease)");
            }
            Ok(0)
        }
        Verdict::Deny(denied) => {
            let nearest = denied
                .nearest
                .as_ref()
                .map(|(p, r, m)| format!("nearest rule {} in profile {}: {m}", r.location, p.name));
            Ok(report_denied(
                args.json,
                &denied.message(),
                nearest,
                denied.hint(),
            ))
        }
    }
}

fn report_denied(json: bool, reason: &str, nearest: Option<String>, hint: Option<String>) -> i32 {
    if json {
        let out = json!({"allowed": false, "reason": reason, "nearest": nearest, "hint": hint});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        println!("DENIED: {reason}");
        if let Some(n) = nearest {
            println!("{n}");
        }
        if let Some(h) = hint {
            println!("hint: {h}");
        }
        println!("(assuming no active lease)");
    }
    exit::DENIED
}

pub fn audit_verify(config: &Config, args: VerifyArgs) -> Result<i32, Failure> {
    // The state dir's anchor belongs to the configured log: apply it by default only there.
    let (files, default_anchor) = if args.files.is_empty() {
        (
            vec![config.audit_log()],
            Some(config.state_dir().join(elevate_audit::ANCHOR_FILE)),
        )
    } else {
        (args.files, None)
    };
    let anchor = args
        .anchor
        .or_else(|| default_anchor.filter(|a| std::fs::File::open(a).is_ok()));
    let report = elevate_audit::verify_files(&files, anchor.as_deref())
        .map_err(|e| fail(NOINPUT, format!("cannot read the audit log: {e}")))?;
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
            "problem": report.problem.as_ref().map(|p| json!({
                "file": p.file.display().to_string(), "line": p.line, "seq": p.seq, "message": p.to_string(),
            })),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if let Some(p) = &report.problem {
        println!("audit log BROKEN: {p}");
        println!("{} records verified before it ({range})", report.records);
    } else {
        let anchor_note = if report.anchor_checked() {
            "anchor matches"
        } else {
            "no anchor checked: truncation at the end would go unnoticed"
        };
        println!(
            "audit log OK: {} records ({range}) in {} files, chain intact, {anchor_note}",
            report.records, report.files
        );
    }
    Ok(if report.is_ok() { 0 } else { exit::INVALID })
}
