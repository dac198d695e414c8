//! Warnings for rules that are valid but dangerous: known privilege escape hatches (shells,
//! editors, pagers, interpreters, find, tar, env…) allowed as root with free arguments, and
//! commands living where unprivileged users can write; variables passed unchecked
//! (`env_keep_unsafe`); and lease settings that quietly turn just-in-time access back into
//! standing access.

use crate::diag::{Diagnostic, Severity};
use crate::lease::OnExpiry;
use crate::model::{Access, ArgPattern, CommandRule, Profile, Rest};
use elevate_base::duration::{format_duration, MAX_DURATION};
use std::path::Path;
use std::time::Duration;

/// Self-approved (and break-glass) leases longer than this are flagged.
pub const LONG_LEASE: Duration = Duration::from_secs(8 * 3600);

/// The key a lease finding is about, so the loader can point at it (it has the positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseKey {
    /// The profile's name (the finding is about a key that is missing).
    Name,
    MaxDuration,
    OnExpiry,
}

/// Lease settings that are valid but weaken just-in-time access.
pub(crate) fn lease_findings(p: &Profile) -> Vec<(LeaseKey, String)> {
    let mut out = Vec::new();
    if p.access != Access::Lease {
        return out;
    }
    let (key, longest) = match p.max_duration {
        Some(m) => (LeaseKey::MaxDuration, m),
        None => (LeaseKey::Name, MAX_DURATION),
    };
    if longest > LONG_LEASE {
        let upto = match p.max_duration {
            Some(m) => format!("max_duration is {}", format_duration(m)),
            None => format!(
                "there is no max_duration, so a lease may last up to {}",
                format_duration(MAX_DURATION)
            ),
        };
        let limit = format_duration(LONG_LEASE);
        if p.break_glass {
            out.push((
                key,
                format!(
                    "break-glass profile \"{}\": {upto}; emergency access should be short: set max_duration to {limit} or less",
                    p.name
                ),
            ));
        } else if p.approval.is_none() {
            out.push((
                key,
                format!(
                    "self-approved lease profile \"{}\": {upto}; long self-approved leases are standing privilege by another name: set max_duration to {limit} or less, or require approval",
                    p.name
                ),
            ));
        }
    }
    if p.on_expiry == OnExpiry::Keep {
        out.push((
            LeaseKey::OnExpiry,
            format!(
                "on_expiry = \"keep\" on \"{}\": processes keep the group after expiry, so for them the lease never ends; prefer \"terminate\"",
                p.name
            ),
        ));
    }
    out
}

/// The warning every name acknowledged in `env_keep_unsafe` draws, each time the policy is
/// checked or loaded: acknowledging it does not make it safe.
pub(crate) fn unsafe_env_warning(profile: &str, name: &str) -> String {
    format!(
        "env_keep_unsafe passes {name} unchecked from the caller to every command of profile \"{profile}\": a kept variable is as powerful as a free argument; keep it only if no command of the profile can be made to run code, or to read, write or fetch something else, through its value"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Danger {
    /// Has an interactive shell escape even with pinned arguments (editors, pagers).
    Interactive,
    /// Gives a shell/REPL when run with no arguments, anything with free ones.
    Session,
    /// Dangerous only with free arguments.
    FreeArgs,
}

/// Known escape hatches: names, when they are dangerous, and why.
const HATCHES: &[(&[&str], Danger, &str)] = &[
    (
        &["sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox"],
        Danger::Session,
        "is a shell: it runs any command",
    ),
    (
        &["su", "sudo", "doas", "pkexec", "runuser", "login"],
        Danger::Session,
        "switches users: it runs anything as anyone",
    ),
    (
        &["vi", "vim", "nvim", "view", "ex", "ed", "nano", "pico", "emacs", "joe", "mcedit"],
        Danger::Interactive,
        "is an editor: it writes any file and can start a shell (:!sh)",
    ),
    (
        &["less", "more", "most", "pg", "man"],
        Danger::Interactive,
        "is a pager: it reads any file and can start a shell (!sh)",
    ),
    (
        &[
            "perl", "python", "python2", "python3", "ruby", "irb", "node", "nodejs", "lua",
            "php", "tclsh", "wish", "awk", "gawk", "mawk", "nawk",
        ],
        Danger::Session,
        "is an interpreter: it runs any code",
    ),
    (&["find"], Danger::FreeArgs, "runs any command through -exec"),
    (
        &[
            "xargs", "env", "nice", "nohup", "timeout", "stdbuf", "setsid", "chroot", "unshare",
            "nsenter", "systemd-run",
        ],
        Danger::FreeArgs,
        "runs the command given in its arguments",
    ),
    (
        &["strace", "ltrace", "gdb"],
        Danger::FreeArgs,
        "runs and controls any program (and can inject code)",
    ),
    (
        &["tar", "zip", "rsync", "scp", "ssh"],
        Danger::FreeArgs,
        "runs commands through its options (--to-command, -e, -T, ProxyCommand) and writes any file",
    ),
    (
        &["sed"],
        Danger::FreeArgs,
        "writes any file (w) and runs commands (e)",
    ),
    (
        &["dd", "tee", "cp", "mv", "install", "chmod", "chown", "ln"],
        Danger::FreeArgs,
        "overwrites or re-permissions any file (e.g. /etc/shadow, /etc/sudoers)",
    ),
    (
        &["git"],
        Danger::FreeArgs,
        "runs configured commands (-c core.pager=..., hooks, aliases)",
    ),
    (
        &["docker", "podman"],
        Danger::FreeArgs,
        "starts containers with the host's filesystem mounted: root on the host",
    ),
    (
        &["crontab", "at"],
        Danger::FreeArgs,
        "schedules arbitrary commands",
    ),
    (&["mount"], Danger::FreeArgs, "mounts over system paths"),
    (
        &["journalctl", "systemctl"],
        Danger::FreeArgs,
        "starts a pager or editor with shell escapes (systemctl edit, --pager) and controls the whole system",
    ),
];

/// Interpreters that commonly carry a version suffix (`python3.11`, `lua5.4`, `php8.2`).
const VERSIONED: &[&str] = &[
    "python", "python2", "python3", "perl", "ruby", "lua", "php", "tclsh", "wish",
];

/// Where unprivileged users can create files.
const USER_WRITABLE: &[&str] = &["/tmp", "/var/tmp", "/dev/shm", "/home", "/run/user"];

fn hatch_for(basename: &str) -> Option<(Danger, &'static str)> {
    for (names, danger, why) in HATCHES {
        if names.contains(&basename) {
            return Some((*danger, why));
        }
    }
    for base in VERSIONED {
        if let Some(suffix) = basename.strip_prefix(base) {
            if !suffix.is_empty()
                && suffix.starts_with(|c: char| c.is_ascii_digit() || c == '.')
                && suffix.chars().all(|c| c.is_ascii_digit() || c == '.')
            {
                return hatch_for(base);
            }
        }
    }
    None
}

fn basename(p: &Path) -> Option<&str> {
    p.file_name().and_then(|n| n.to_str())
}

/// The rule lets the caller choose arguments.
fn has_free_args(rule: &CommandRule) -> bool {
    rule.rest == Rest::Any
        || rule
            .args
            .iter()
            .any(|a| matches!(a, ArgPattern::Regex { .. }))
}

fn warn(rule: &CommandRule, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning,
        location: rule.location.clone(),
        message,
    }
}

pub fn lint(profile: &Profile, sys: &dyn crate::system::System) -> Vec<Diagnostic> {
    // Any account with uid 0 is root (a "toor" alias must not dodge the lint).
    let as_root =
        profile.run_as == "root" || sys.user_uid(&profile.run_as).is_some_and(|u| u.is_root());
    let mut out = Vec::new();
    for rule in &profile.commands {
        lint_rule(profile, as_root, rule, &mut out);
    }
    out
}

fn lint_rule(profile: &Profile, as_root: bool, rule: &CommandRule, out: &mut Vec<Diagnostic>) {
    let shown = rule.path.display();
    if as_root {
        let hatch = [&rule.path, &rule.canonical]
            .iter()
            .filter_map(|p| basename(p))
            .find_map(hatch_for);
        if let Some((danger, why)) = hatch {
            let free = has_free_args(rule);
            let bare = rule.args.is_empty() && rule.rest == Rest::Deny;
            let name = basename(&rule.canonical)
                .or_else(|| basename(&rule.path))
                .unwrap_or_default();
            let msg = match danger {
                _ if free => Some(format!(
                    "{shown} as root with free arguments: {name} {why}; pin its arguments (literals or one_of, no regex, rest = \"deny\")"
                )),
                Danger::Interactive => Some(format!(
                    "{shown} as root: {name} {why}, even with pinned arguments; use a dedicated, non-interactive command instead"
                )),
                Danger::Session if bare => Some(format!(
                    "{shown} as root with no arguments starts an interactive session: {name} {why}; pin the arguments to a specific script or command"
                )),
                _ => None,
            };
            if let Some(m) = msg {
                out.push(warn(rule, m));
            }
        }
    }
    for dir in USER_WRITABLE {
        if rule.path.starts_with(dir) || rule.canonical.starts_with(dir) {
            out.push(warn(
                rule,
                format!(
                    "{shown} is under {dir}, where users can write: whoever replaces it runs code as {}; install it under a root-owned directory",
                    profile.run_as
                ),
            ));
            break;
        }
    }
}
