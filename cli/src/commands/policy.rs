//! `elevate policy check` and `elevate policy explain`: offline, with no daemon and no
//! privileges. They load the policy with the same crate the daemon uses, so they are its
//! test oracle.

use crate::args::{CheckArgs, ExplainArgs, HostArgs};
use crate::argv::request_argv;
use crate::error::Failure;
use crate::output::{errln, outln, print_json};
use elevate_policy::config::Config;
use elevate_policy::{HostInfo, LoadOptions, LoadOutcome, Passwd, Query, RealSystem, Verdict};
use elevate_proto::exit;
use serde_json::json;
use std::path::PathBuf;

/// The host to evaluate `hosts` against: as elevated would see it, or as `--host` and
/// `--labels` say.
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
                .ok_or_else(|| Failure::BadLabel(pair.to_string()))?;
            host.labels
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    Ok(host)
}

/// The policy in `paths` (one directory, or files), or in `default_dir` when none is given.
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
                return Err(Failure::DirAmongFiles(d.clone()));
            }
            Ok(elevate_policy::load_files(many, &opts, &RealSystem))
        }
    }
}

/// `elevate policy check`: 0 when the policy is valid, 1 when not; diagnostics on stderr.
pub fn check(config: &Config, args: CheckArgs) -> Result<i32, Failure> {
    let host = host_for(config, &args.host)?;
    let outcome = load(&args.paths, config.policy_dir(), args.host.no_permissions)?;
    let errors: Vec<String> = outcome.errors().map(|d| d.to_string()).collect();
    let mut warnings: Vec<String> = outcome.warnings().map(|d| d.to_string()).collect();
    let show_host = args.host.host.is_some() || args.host.labels.is_some();
    // This host's mounts say nothing about a policy checked for another one.
    let here = setgid_warnings(
        config,
        outcome.policy.as_ref().filter(|_| args.host.host.is_none()),
    );
    warnings.extend(here.iter().cloned());
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
        print_json(&out);
    } else {
        for d in &outcome.diagnostics {
            errln!("{d}");
        }
        for w in &here {
            errln!("{w}");
        }
        match &outcome.policy {
            Some(p) => {
                outln!(
                    "policy OK: {} profiles in {} files, {} warnings",
                    p.profiles.len(),
                    p.files.len(),
                    warnings.len()
                );
                if show_host {
                    outln!(
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
            None => outln!(
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

/// `warning: …` for each place the set-gid sweep covers (or would, were it on) that is
/// not mounted `nosuid` here, when `policy` grants groups at all.
fn setgid_warnings(config: &Config, policy: Option<&elevate_policy::Policy>) -> Vec<String> {
    let grants = policy.is_some_and(|p| p.profiles.iter().any(|x| !x.grant_groups.is_empty()));
    if !grants {
        return Vec::new();
    }
    let found = elevate_policy::setgid::nosuid_warnings(&config.setgid_scan());
    found.iter().map(|w| format!("warning: {w}")).collect()
}

/// `elevate policy explain`: which rule allows a command, or why none does (0 or 77),
/// assuming no active lease.
pub fn explain(config: &Config, args: ExplainArgs) -> Result<i32, Failure> {
    let host = host_for(config, &args.host)?;
    let dir = args
        .policy_dir
        .clone()
        .unwrap_or_else(|| config.policy_dir());
    let outcome = load(&[], dir, args.host.no_permissions)?;
    let Some(policy) = outcome.policy else {
        for d in outcome.errors() {
            errln!("{d}");
        }
        return Err(Failure::PolicyInvalid);
    };
    let subject = RealSystem.subject_for(&account(args.user.as_deref())?);
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
                print_json(&out);
            } else {
                outln!(
                    "ALLOWED for {} on {}: profile {} ({}), rule {}, runs as {}: {}",
                    subject.user,
                    host.name,
                    profile.name,
                    profile.location,
                    rule.location,
                    profile.run_as,
                    cmdline.join(" ")
                );
                outln!("(assuming no active lease)");
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

/// The account to decide for: `--user`'s, or the caller's.
fn account(user: Option<&str>) -> Result<Passwd, Failure> {
    match user {
        Some(u) => RealSystem
            .passwd_by_name(u)
            .ok_or_else(|| Failure::NoSuchUser(u.to_string())),
        None => {
            let uid = elevate_base::os::process::getuid();
            RealSystem.passwd_by_uid(uid).ok_or(Failure::NoAccount(uid))
        }
    }
}

/// The verdict "denied", for people or as JSON; returns the exit status (77).
fn report_denied(json: bool, reason: &str, nearest: Option<String>, hint: Option<String>) -> i32 {
    if json {
        let out = json!({"allowed": false, "reason": reason, "nearest": nearest, "hint": hint});
        print_json(&out);
    } else {
        outln!("DENIED: {reason}");
        if let Some(n) = nearest {
            outln!("{n}");
        }
        if let Some(h) = hint {
            outln!("hint: {h}");
        }
        outln!("(assuming no active lease)");
    }
    exit::DENIED
}
