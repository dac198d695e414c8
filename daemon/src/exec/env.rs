//! The command's environment: an allow-list of the caller's terminal and locale settings
//! (values checked), the profile's `env_keep`, and a fixed part that says who runs what.
//! Which names are inert, which are refused and how values are checked is
//! `elevate_policy::env`, the same lists the policy loader judges `env_keep` by.

use elevate_base::Uid;
use elevate_policy::env::{inert_value_ok, is_inert, refusal_reason, taken_from_caller};

/// Who the command runs as and on whose behalf, for the fixed part of the environment.
pub struct EnvContext<'a> {
    pub caller_user: &'a str,
    pub caller_uid: Uid,
    pub profile: &'a str,
    pub target_user: &'a str,
    pub target_home: &'a str,
    pub target_shell: &'a str,
}

/// The command's environment: built from an allow-list, never by removing bad names from the
/// caller's environment (a deny-list always misses one).
pub fn build_env(
    caller_env: &[(String, String)],
    env_keep: &[String],
    ctx: &EnvContext<'_>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in caller_env {
        if !seen.insert(k.as_str()) || k.contains('=') || v.contains('\0') {
            continue; // first occurrence wins; later duplicates are ignored, as getenv would
        }
        // An inert variable keeps its value checks even when a profile lists it in env_keep:
        // `env_keep = ["TERM"]` must not let a TERM with a path through. A refused name never
        // passes, whatever the policy says (the loader refuses it already; this is the same
        // list, checked again where it matters).
        let kept = || env_keep.iter().any(|e| e == k);
        let pass = if is_inert(k) {
            (taken_from_caller(k) || kept()) && inert_value_ok(k, v)
        } else {
            kept() && refusal_reason(k).is_none()
        };
        if pass {
            out.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in [
        ("PATH", elevate_proto::SECURE_PATH.to_string()),
        ("HOME", ctx.target_home.to_string()),
        ("USER", ctx.target_user.to_string()),
        ("LOGNAME", ctx.target_user.to_string()),
        ("SHELL", ctx.target_shell.to_string()),
        ("ELEVATE_USER", ctx.caller_user.to_string()),
        ("ELEVATE_UID", ctx.caller_uid.to_string()),
        ("ELEVATE_PROFILE", ctx.profile.to_string()),
        // Pagers a command may start (journalctl, systemctl, git, man) refuse shell escapes.
        ("LESSSECURE", "1".to_string()),
        ("SYSTEMD_PAGERSECURE", "1".to_string()),
    ] {
        out.retain(|(name, _)| name != k);
        out.push((k.to_string(), v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> EnvContext<'static> {
        EnvContext {
            caller_user: "alice",
            caller_uid: elevate_base::Uid(1000),
            profile: "p",
            target_user: "root",
            target_home: "/root",
            target_shell: "/bin/bash",
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn get<'a>(e: &'a [(String, String)], k: &str) -> Option<&'a str> {
        e.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn dangerous_variables_never_pass() {
        let caller = env(&[
            ("LD_PRELOAD", "/tmp/evil.so"),
            ("LD_LIBRARY_PATH", "/tmp"),
            ("PATH", "/tmp:/usr/bin"),
            ("BASH_ENV", "/tmp/x"),
            ("PYTHONPATH", "/tmp"),
            ("IFS", " "),
            ("HOME", "/home/alice"),
            ("ELEVATE_USER", "root"),
            ("TERM", "xterm-256color"),
        ]);
        let e = build_env(&caller, &[], &ctx());
        for bad in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "BASH_ENV",
            "PYTHONPATH",
            "IFS",
        ] {
            assert_eq!(get(&e, bad), None, "{bad}");
        }
        assert_eq!(get(&e, "PATH"), Some(elevate_proto::SECURE_PATH));
        assert_eq!(get(&e, "HOME"), Some("/root"));
        assert_eq!(get(&e, "ELEVATE_USER"), Some("alice"));
        assert_eq!(get(&e, "TERM"), Some("xterm-256color"));
        assert_eq!(e.iter().filter(|(k, _)| k == "PATH").count(), 1);
    }

    #[test]
    fn safe_set_is_sanitized() {
        let caller = env(&[
            ("TERM", "../../tmp/terminfo"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "%n%n"),
            ("LC_TIME", "en_GB.UTF-8"),
            ("TZ", "/etc/shadow"),
            ("LC_", "x"),
        ]);
        let e = build_env(&caller, &[], &ctx());
        assert_eq!(get(&e, "TERM"), None);
        assert_eq!(get(&e, "LANG"), Some("C.UTF-8"));
        assert_eq!(get(&e, "LC_ALL"), None);
        assert_eq!(get(&e, "LC_TIME"), Some("en_GB.UTF-8"));
        assert_eq!(get(&e, "TZ"), None);
        assert_eq!(get(&e, "LC_"), None);
        let e = build_env(&env(&[("TZ", "Europe/Berlin")]), &[], &ctx());
        assert_eq!(
            get(&e, "TZ"),
            Some("Europe/Berlin"),
            "relative names resolve inside zoneinfo"
        );
        let e = build_env(&env(&[("TZ", "../../../etc/shadow")]), &[], &ctx());
        assert_eq!(get(&e, "TZ"), None);
        let e = build_env(
            &env(&[("TZ", ":/usr/share/zoneinfo/Europe/Berlin")]),
            &[],
            &ctx(),
        );
        assert!(get(&e, "TZ").is_some());
    }

    #[test]
    fn env_keep_passes_named_variables_only() {
        let caller = env(&[("HTTP_PROXY", "http://proxy:3128"), ("EDITOR", "vim")]);
        let e = build_env(&caller, &["HTTP_PROXY".to_string()], &ctx());
        assert_eq!(get(&e, "HTTP_PROXY"), Some("http://proxy:3128"));
        assert_eq!(get(&e, "EDITOR"), None);
        // Listing a safe-set variable does not switch off its value checks.
        let caller = env(&[
            ("TERM", "../../tmp/evil"),
            ("LANG", "%n%n"),
            ("TZ", "/tmp/tz"),
        ]);
        let keep = ["TERM", "LANG", "TZ"].map(String::from);
        let e = build_env(&caller, &keep, &ctx());
        assert_eq!(
            (get(&e, "TERM"), get(&e, "LANG"), get(&e, "TZ")),
            (None, None, None)
        );
        let caller = env(&[("TERM", "xterm-256color"), ("LANG", "C.UTF-8")]);
        let e = build_env(&caller, &keep, &ctx());
        assert_eq!(get(&e, "TERM"), Some("xterm-256color"));
        assert_eq!(get(&e, "LANG"), Some("C.UTF-8"));
    }

    #[test]
    fn inert_when_kept_only_and_value_checked() {
        let caller = env(&[("COLUMNS", "132"), ("LINES", "40;x"), ("NO_COLOR", "1")]);
        let e = build_env(&caller, &[], &ctx());
        assert_eq!((get(&e, "COLUMNS"), get(&e, "NO_COLOR")), (None, None));
        let keep = ["COLUMNS", "LINES", "NO_COLOR"].map(String::from);
        let e = build_env(&caller, &keep, &ctx());
        assert_eq!(get(&e, "COLUMNS"), Some("132"));
        assert_eq!(get(&e, "LINES"), None, "not a number");
        assert_eq!(get(&e, "NO_COLOR"), Some("1"));
    }

    #[test]
    fn refused_names_never_pass_even_if_kept() {
        // The loader refuses these; a policy that slipped through still passes none of them.
        let caller = env(&[
            ("TAR_OPTIONS", "--checkpoint-action=exec=sh"),
            ("GIT_SSH_COMMAND", "sh"),
            ("ld_preload", "/tmp/x.so"),
            ("HTTP_PROXY", "http://proxy:3128"),
        ]);
        let keep = ["TAR_OPTIONS", "GIT_SSH_COMMAND", "ld_preload", "HTTP_PROXY"].map(String::from);
        let e = build_env(&caller, &keep, &ctx());
        for bad in ["TAR_OPTIONS", "GIT_SSH_COMMAND", "ld_preload"] {
            assert_eq!(get(&e, bad), None, "{bad}");
        }
        assert_eq!(get(&e, "HTTP_PROXY"), Some("http://proxy:3128"));
    }

    #[test]
    fn first_duplicate_wins_and_fixed_values_override() {
        let caller = env(&[("LANG", "C"), ("LANG", "../x"), ("USER", "root2")]);
        let e = build_env(&caller, &[], &ctx());
        assert_eq!(get(&e, "LANG"), Some("C"));
        assert_eq!(get(&e, "USER"), Some("root"));
    }
}
