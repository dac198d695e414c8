//! `elevate status` for people: the daemon's version, uptime, policy, last reload, how many
//! commands it is running, and what on this host weakens it.

use elevate_proto::StatusReply;

/// `3725` → `1h02m`: two units at most.
fn format_uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// The daemon's health, a few lines. Ends with a newline.
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
    for w in &s.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_proto::ReloadReport;

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
            warnings: vec![],
        };
        let out = format_status(&s);
        assert!(out.contains("up 1h02m"));
        assert!(out.contains("FAILED"));
        assert!(out.contains("/p/b.toml:3:1: error: bad"));
    }
}
