//! Commands that ask the daemon something: `list` and `status`.

use crate::args::ListArgs;
use crate::run::{denied, refusal, request_argv};
use crate::{connect, fail, Failure};
use elevate_proto::{exit, ListReply, Request, Response, RunRequest, StatusReply};
use std::path::Path;

fn ask(socket: &Path, req: &Request) -> Result<Response, Failure> {
    let mut client = connect(socket)?;
    client
        .call(req)
        .map_err(|e| fail(exit::SOFTWARE, e.to_string()))
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn list(socket: &Path, args: ListArgs) -> Result<i32, Failure> {
    if !args.command.is_empty() {
        let argv = request_argv(&args.command)?;
        let req = Request::Check(RunRequest {
            argv,
            profile: args.profile,
            run_as: args.user,
            env: vec![],
        });
        return match ask(socket, &req)? {
            Response::Checked(c) => {
                if args.json {
                    print_json(&c);
                }
                if c.allowed {
                    if !args.json {
                        println!(
                            "allowed: {} as {} (profile {})",
                            c.path.unwrap_or_default(),
                            c.run_as.unwrap_or_default(),
                            c.profile.unwrap_or_default()
                        );
                    }
                    Ok(0)
                } else if args.json {
                    Ok(exit::DENIED)
                } else {
                    Err(denied(
                        c.reason.as_deref().unwrap_or("not allowed"),
                        c.hint.as_deref(),
                    ))
                }
            }
            other => Err(refusal(other)),
        };
    }
    match ask(socket, &Request::List {})? {
        Response::List(mut reply) => {
            if let Some(p) = &args.profile {
                reply.profiles.retain(|x| &x.name == p);
            }
            if args.json {
                print_json(&reply);
            } else {
                print!("{}", format_list(&reply));
            }
            Ok(0)
        }
        other => Err(refusal(other)),
    }
}

pub fn format_list(r: &ListReply) -> String {
    if r.profiles.is_empty() {
        return format!(
            "User {} may not run anything with elevate on {}.\n",
            r.user, r.host
        );
    }
    let mut out = format!("User {} may run the following on {}:\n", r.user, r.host);
    for p in &r.profiles {
        let group = p
            .run_as_group
            .as_deref()
            .map(|g| format!(":{g}"))
            .unwrap_or_default();
        let state = if p.usable_now {
            String::new()
        } else {
            ", not active".to_string()
        };
        out.push_str(&format!(
            "\n  {} ({}{state}, as {}{group})",
            p.name, p.access, p.run_as
        ));
        if !p.description.is_empty() {
            out.push_str(&format!(" — {}", p.description));
        }
        out.push('\n');
        for c in &p.commands {
            out.push_str(&format!("      {c}\n"));
        }
        if !p.usable_now {
            if let Some(h) = &p.hint {
                out.push_str(&format!("    to use it: {h}\n"));
            }
        }
    }
    out
}

pub fn status(socket: &Path, json: bool) -> Result<i32, Failure> {
    match ask(socket, &Request::Status {})? {
        Response::Status(s) => {
            if json {
                print_json(&s);
            } else {
                print!("{}", format_status(&s));
            }
            Ok(0)
        }
        other => Err(refusal(other)),
    }
}

/// `elevate reload`: 0 when the new policy is in force, 1 when it was rejected (the previous
/// one stays), with the daemon's diagnostics either way.
pub fn reload(socket: &Path, json: bool) -> Result<i32, Failure> {
    match ask(socket, &Request::Reload {})? {
        Response::Reloaded(r) => {
            if json {
                print_json(&r);
            } else {
                // Each line already reads `file:line:col: error|warning: …`.
                for line in r.warnings.iter().chain(&r.errors) {
                    eprintln!("{line}");
                }
                if r.ok {
                    println!("policy reloaded ({} warnings)", r.warnings.len());
                } else {
                    println!(
                        "policy NOT reloaded: {} errors; the previous policy stays in force",
                        r.errors.len()
                    );
                }
            }
            Ok(if r.ok { 0 } else { 1 })
        }
        other => Err(refusal(other)),
    }
}

fn format_uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

pub fn format_status(s: &StatusReply) -> String {
    let mut out = format!(
        "elevated {} (protocol {}), pid {}, up {}\nhost: {}\npolicy: {} — {} profiles from {} files, digest {}\n",
        s.version,
        s.protocol,
        s.pid,
        format_uptime(s.uptime_secs),
        s.host,
        s.policy_dir,
        s.profiles,
        s.policy_files.len(),
        s.policy_digest.get(..16).unwrap_or(&s.policy_digest),
    );
    let r = &s.last_reload;
    if r.ok {
        out.push_str(&format!(
            "last reload: {} ok ({} warnings)\n",
            r.at,
            r.warnings.len()
        ));
    } else {
        out.push_str(&format!(
            "last reload: {} FAILED, the previous policy is still in force:\n",
            r.at
        ));
        for e in &r.errors {
            out.push_str(&format!("  {e}\n"));
        }
    }
    out.push_str(&format!("running commands: {}\n", s.running_commands));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_proto::{ListedProfile, ReloadReport};

    #[test]
    fn list_output() {
        let r = ListReply {
            user: "alice".into(),
            host: "web-1".into(),
            profiles: vec![
                ListedProfile {
                    name: "web".into(),
                    description: "Restart".into(),
                    run_as: "root".into(),
                    run_as_group: None,
                    access: "standing".into(),
                    usable_now: true,
                    commands: vec!["/usr/bin/systemctl restart {a|b}".into()],
                    hint: None,
                },
                ListedProfile {
                    name: "db".into(),
                    description: String::new(),
                    run_as: "postgres".into(),
                    run_as_group: None,
                    access: "lease".into(),
                    usable_now: false,
                    commands: vec![],
                    hint: Some("request a lease: elevate request db".into()),
                },
            ],
        };
        let s = format_list(&r);
        assert!(s.contains("User alice may run the following on web-1:"));
        assert!(s.contains("web (standing, as root) — Restart"));
        assert!(s.contains("      /usr/bin/systemctl restart {a|b}"));
        assert!(s.contains("db (lease, not active, as postgres)"));
        assert!(s.contains("to use it: request a lease: elevate request db"));
        let empty = ListReply {
            user: "bob".into(),
            host: "h".into(),
            profiles: vec![],
        };
        assert!(format_list(&empty).contains("may not run anything"));
    }

    #[test]
    fn status_output_shows_failed_reload() {
        let s = StatusReply {
            version: "0.1.0".into(),
            protocol: 1,
            pid: 7,
            host: "h".into(),
            uptime_secs: 3725,
            policy_dir: "/etc/elevate/policy.d".into(),
            policy_digest: "0123456789abcdef0123".into(),
            policy_files: vec!["a".into()],
            profiles: 2,
            last_reload: ReloadReport {
                at: "t".into(),
                ok: false,
                errors: vec!["/p/b.toml:3:1: error: bad".into()],
                warnings: vec![],
            },
            running_commands: 0,
        };
        let out = format_status(&s);
        assert!(out.contains("up 1h02m"));
        assert!(out.contains("FAILED"));
        assert!(out.contains("/p/b.toml:3:1: error: bad"));
    }
}
