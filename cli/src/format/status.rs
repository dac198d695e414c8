//! `elevate status` for people: the daemon's version, uptime, policy, last reload, how many
//! commands it is running, and whether lease housekeeping keeps up (expiry lag, group edits
//! waiting for /etc/group).

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
    out.push_str(&format!(
        "expiry lag: {} (the last lease to expire ended that long after its deadline)\n",
        format_millis(s.expiry_lag_ms)
    ));
    if s.group_edits_pending > 0 {
        out.push_str(&format!(
            "group edits pending: {}, the oldest waiting {} (another program may hold /etc/.pwd.lock)\n",
            s.group_edits_pending,
            format_millis(s.group_edit_wait_ms)
        ));
    }
    if let Some(e) = &s.group_edit_error {
        out.push_str(&format!("last group edit FAILED, retrying: {e}\n"));
    }
    for w in &s.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// `250` → `250 ms`, `8200` → `8.2 s`.
fn format_millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
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
            group_edits_pending: 2,
            group_edit_wait_ms: 8200,
            group_edit_error: Some("cannot edit /etc/group: locked".into()),
            expiry_lag_ms: 40,
            warnings: vec!["state directory /s full: running on reserve".into()],
        };
        let out = format_status(&s);
        assert!(out.contains("warning: state directory /s full: running on reserve\n"));
        assert!(out.contains("up 1h02m"));
        assert!(out.contains("expiry lag: 40 ms"));
        assert!(out.contains("group edits pending: 2, the oldest waiting 8.2 s"));
        assert!(out.contains("last group edit FAILED, retrying: cannot edit /etc/group: locked"));
        assert!(out.contains("FAILED"));
        assert!(out.contains("/p/b.toml:3:1: error: bad"));
    }
}
