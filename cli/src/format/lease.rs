//! Leases for people: the summary after a request or transition, the `elevate leases` table,
//! and the break-glass notice. Pure functions of a `LeaseInfo` and the time now; text in a
//! lease (reasons, tickets, comments) was typed by some other user, so it goes through
//! [`clean`] before it is shown.

use crate::output::{clean, truncate};
use elevate_base::duration::human;
use elevate_base::time::{parse_rfc3339, wall_ms};
use elevate_proto::{EndReason, LeaseInfo, LeaseState};
use std::time::SystemTime;

/// Seconds since the epoch, now (what the relative times are counted from).
pub fn now_unix() -> i64 {
    i64::try_from(wall_ms(SystemTime::now()) / 1000).unwrap_or(i64::MAX)
}

/// `2024-05-01T12:00:00Z` (whole seconds), or the text as given if it does not parse.
fn short_time(s: &str) -> String {
    match (parse_rfc3339(s), s.get(..19)) {
        (Some(_), Some(head)) if s.ends_with('Z') => format!("{head}Z"),
        _ => clean(s),
    }
}

/// `in 12m` / `5m ago` / `just now` relative to `now`, or None if the timestamp does not parse.
fn relative(ts: &str, now: i64) -> Option<String> {
    let t = parse_rfc3339(ts)?;
    Some(if t == now {
        "just now".to_string()
    } else if t > now {
        format!("in {}", human(t.abs_diff(now)))
    } else {
        format!("{} ago", human(t.abs_diff(now)))
    })
}

/// Why a lease ended, in words: `revoked by bob`, `request expired`.
fn end_words(l: &LeaseInfo) -> String {
    let why = match l.end_reason {
        Some(EndReason::RequestExpired) => "request expired unapproved",
        Some(EndReason::ProcessExited) => "bound process exited",
        Some(EndReason::PolicyChanged) => "policy changed",
        Some(r) => r.as_str(),
        None => "ended",
    };
    match &l.ended_by {
        Some(by) => format!("{why} by {}", clean(by)),
        None => why.to_string(),
    }
}

fn approvals(l: &LeaseInfo) -> String {
    format!("{}/{}", l.approvals.len(), l.approvals_needed)
}

/// One lease for people: a headline, then indented details. Ends with a newline.
pub fn summary(l: &LeaseInfo, now: i64) -> String {
    let glass = if l.break_glass { " [BREAK-GLASS]" } else { "" };
    let mut s = format!(
        "lease {}: {} for {}{glass} — ",
        l.id,
        clean(&l.profile),
        clean(&l.user)
    );
    match l.state {
        LeaseState::Active => active_lines(&mut s, l),
        LeaseState::Pending => pending_lines(&mut s, l, now),
        LeaseState::Ended => ended_lines(&mut s, l, now),
    }
    detail_lines(&mut s, l, now);
    s
}

/// The rest of an active lease's headline (time left), then what it allows and how.
fn active_lines(s: &mut String, l: &LeaseInfo) {
    s.push_str(state_word(l));
    if let Some(left) = l.time_left_secs {
        s.push_str(&format!(", {} left", human(left)));
    }
    if let Some(exp) = &l.expires_at {
        s.push_str(&format!(" (until {})", short_time(exp)));
    }
    s.push('\n');
    if !l.granting.is_empty() {
        let groups: Vec<String> = l.granting.iter().map(|g| clean(g)).collect();
        s.push_str(&format!(
            "  not in force yet: adding you to {} waits for /etc/group; the daemon retries{}\n",
            groups.join(", "),
            l.granting_error
                .as_deref()
                .map(|e| format!(" ({})", clean(e)))
                .unwrap_or_default()
        ));
    }
    if !l.grant_groups.is_empty() {
        let groups: Vec<String> = l.grant_groups.iter().map(|g| clean(g)).collect();
        s.push_str(&format!(
            "  groups: {} — for a command now: elevate with {} -- CMD [ARG...]\n",
            groups.join(", "),
            l.id
        ));
    }
    if let Some(by) = l.extension_pending_secs {
        s.push_str(&format!(
            "  extension by {} waiting for approval ({}/{}): an approver runs: elevate approve {}\n",
            human(by),
            l.extension_approvals.len(),
            l.approvals_needed.max(1),
            l.id
        ));
    }
    s.push_str(&format!(
        "  what it allows: elevate list -p {}; end it early: elevate revoke {}\n",
        clean(&l.profile),
        l.id
    ));
}

/// The rest of a pending request's headline, then what it waits for and from whom.
fn pending_lines(s: &mut String, l: &LeaseInfo, now: i64) {
    s.push_str(&format!("pending, {} approvals\n", approvals(l)));
    let missing = (l.approvals_needed as usize).saturating_sub(l.approvals.len());
    let mut line = format!(
        "  needs {missing} more approval{}",
        if missing == 1 { "" } else { "s" }
    );
    if let Some(until) = &l.pending_until {
        line.push_str(&format!(" before {}", short_time(until)));
        if let Some(rel) = relative(until, now) {
            line.push_str(&format!(" ({rel})"));
        }
    }
    s.push_str(&line);
    s.push('\n');
    if !l.approvers.is_empty() {
        let who: Vec<String> = l.approvers.iter().map(|a| clean(a)).collect();
        s.push_str(&format!("  approvers: {}\n", who.join(", ")));
    }
    s.push_str(&format!(
        "  an approver runs: elevate approve {} (withdraw it: elevate revoke {})\n",
        l.id, l.id
    ));
}

/// The rest of an ended lease's headline: when, and why.
fn ended_lines(s: &mut String, l: &LeaseInfo, now: i64) {
    s.push_str("ended");
    if let Some(at) = &l.ended_at {
        match relative(at, now) {
            Some(rel) => s.push_str(&format!(" {rel}")),
            None => s.push_str(&format!(" at {}", clean(at))),
        }
    }
    s.push_str(&format!(": {}\n", end_words(l)));
    if let Some(c) = &l.end_comment {
        s.push_str(&format!("  comment: {}\n", clean(c)));
    }
}

/// What every lease shows, whatever its state: approvals, reason, ticket, bound process.
fn detail_lines(s: &mut String, l: &LeaseInfo, now: i64) {
    for a in &l.approvals {
        s.push_str(&format!("  approved by {}", clean(&a.user)));
        if let Some(rel) = relative(&a.at, now) {
            s.push_str(&format!(" {rel}"));
        }
        if let Some(c) = &a.comment {
            s.push_str(&format!(": {}", clean(c)));
        }
        s.push('\n');
    }
    if let Some(r) = &l.reason {
        s.push_str(&format!("  reason: {}\n", clean(r)));
    }
    if let Some(t) = &l.ticket {
        s.push_str(&format!("  ticket: {}\n", clean(t)));
    }
    if let Some(pid) = l.bound_pid {
        s.push_str(&format!("  ends when process {pid} exits\n"));
    }
}

/// The state as people read it: an active lease whose groups are not written yet is
/// `granting`, not `active`.
fn state_word(l: &LeaseInfo) -> &'static str {
    if l.state == LeaseState::Active && !l.granting.is_empty() {
        "granting"
    } else {
        l.state.as_str()
    }
}

/// The TIME LEFT / ENDED cell.
fn when_cell(l: &LeaseInfo, now: i64) -> String {
    match l.state {
        LeaseState::Active => l
            .time_left_secs
            .map_or_else(|| "-".to_string(), |s| format!("{} left", human(s))),
        LeaseState::Pending => {
            let mut c = format!("{} approvals", approvals(l));
            if let Some(rel) = l.pending_until.as_deref().and_then(|u| relative(u, now)) {
                c.push_str(&format!(", expires {rel}"));
            }
            c
        }
        LeaseState::Ended => {
            let ago = l
                .ended_at
                .as_deref()
                .and_then(|t| relative(t, now))
                .map(|r| format!("{r}: "))
                .unwrap_or_default();
            format!("{ago}{}", end_words(l))
        }
    }
}

const REASON_WIDTH: usize = 40;

/// The `elevate leases` table. Ends with a newline.
pub fn table(leases: &[LeaseInfo], now: i64) -> String {
    if leases.is_empty() {
        return "no leases\n".to_string();
    }
    let header = [
        "ID",
        "USER",
        "PROFILE",
        "STATE",
        "TIME LEFT / ENDED",
        "REASON",
        "TICKET",
    ];
    let rows: Vec<[String; 7]> = leases
        .iter()
        .map(|l| {
            let state = if l.break_glass {
                format!("{} (break-glass)", state_word(l))
            } else {
                state_word(l).to_string()
            };
            [
                l.id.to_string(),
                clean(&l.user),
                clean(&l.profile),
                state,
                when_cell(l, now),
                truncate(&clean(l.reason.as_deref().unwrap_or("-")), REASON_WIDTH),
                clean(l.ticket.as_deref().unwrap_or("-")),
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else if i == 0 {
                out.push_str(&format!("{cell:>w$}  "));
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(&header.map(String::from));
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

/// The loud notice after a break-glass lease, for stderr.
pub fn break_glass_notice(l: &LeaseInfo) -> String {
    format!(
        "elevate: *** BREAK-GLASS: lease {id} on {profile} is {state} WITHOUT APPROVAL. ***\n\
         elevate: This is audited at alert level and the administrators have been notified;\n\
         elevate: be ready to explain it. End it as soon as you are done: elevate revoke {id}\n",
        id = l.id,
        profile = clean(&l.profile),
        state = l.state,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_proto::ApprovalInfo;

    const NOW: i64 = 1_714_564_800; // 2024-05-01T12:00:00Z

    fn lease(state: LeaseState) -> LeaseInfo {
        LeaseInfo {
            id: 7,
            user: "alice".into(),
            uid: elevate_base::Uid(1000),
            profile: "db-admin".into(),
            state,
            reason: Some("vacuum".into()),
            ticket: Some("INC-1".into()),
            duration_secs: 1800,
            requested_at: "2024-05-01T11:50:00.000Z".into(),
            pending_until: None,
            activated_at: None,
            expires_at: None,
            time_left_secs: None,
            ended_at: None,
            end_reason: None,
            ended_by: None,
            approvals: vec![],
            approvals_needed: 0,
            grant_groups: vec![],
            break_glass: false,
            bound_pid: None,
            approvers: vec![],
            end_comment: None,
            extension_pending_secs: None,
            extension_approvals: vec![],
            granting: vec![],
            granting_error: None,
        }
    }

    fn active() -> LeaseInfo {
        LeaseInfo {
            activated_at: Some("2024-05-01T11:59:00.000Z".into()),
            expires_at: Some("2024-05-01T13:29:00.000Z".into()),
            time_left_secs: Some(5340),
            grant_groups: vec!["pgadmin".into()],
            ..lease(LeaseState::Active)
        }
    }

    fn pending() -> LeaseInfo {
        LeaseInfo {
            pending_until: Some("2024-05-01T12:15:00.000Z".into()),
            approvals_needed: 2,
            approvals: vec![ApprovalInfo {
                user: "bob".into(),
                at: "2024-05-01T11:55:00.000Z".into(),
                comment: Some("ok".into()),
            }],
            ..lease(LeaseState::Pending)
        }
    }

    fn ended() -> LeaseInfo {
        LeaseInfo {
            ended_at: Some("2024-05-01T11:55:00.000Z".into()),
            end_reason: Some(EndReason::Revoked),
            ended_by: Some("carol".into()),
            ..lease(LeaseState::Ended)
        }
    }

    #[test]
    fn short_times() {
        assert_eq!(
            short_time("2024-05-01T12:00:00.123Z"),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(short_time("not a time\u{1b}"), "not a time\\u{1b}");
        let good = "2024-05-01T14:00:00.5+02:00";
        for (i, _) in good.char_indices() {
            let _ = short_time(&good[..i]);
        }
    }

    #[test]
    fn summary_active() {
        let s = summary(&active(), NOW);
        assert!(
            s.starts_with(
                "lease 7: db-admin for alice — active, 1h29m left (until 2024-05-01T13:29:00Z)\n"
            ),
            "{s}"
        );
        assert!(s.contains("groups: pgadmin"));
        assert!(s.contains("elevate with 7 -- CMD"));
        assert!(s.contains("reason: vacuum") && s.contains("ticket: INC-1"));
    }

    #[test]
    fn summary_pending() {
        let s = summary(&pending(), NOW);
        assert!(s.contains("— pending, 1/2 approvals\n"), "{s}");
        assert!(
            s.contains("needs 1 more approval before 2024-05-01T12:15:00Z (in 15m)"),
            "{s}"
        );
        assert!(s.contains("elevate approve 7"));
        assert!(s.contains("approved by bob 5m ago: ok"), "{s}");
    }

    #[test]
    fn summary_ended_and_break_glass() {
        let s = summary(&ended(), NOW);
        assert!(s.contains("— ended 5m ago: revoked by carol"), "{s}");
        let e = LeaseInfo {
            end_reason: Some(EndReason::RequestExpired),
            ended_by: None,
            ..ended()
        };
        assert!(summary(&e, NOW).contains("request expired unapproved"));
        let now = LeaseInfo {
            ended_at: Some("2024-05-01T12:00:00.400Z".into()),
            ..ended()
        };
        assert!(summary(&now, NOW).contains("ended just now: revoked by carol"));
        let g = LeaseInfo {
            break_glass: true,
            ..active()
        };
        assert!(summary(&g, NOW).contains("[BREAK-GLASS]"));
        let n = break_glass_notice(&g);
        assert!(n.contains("audited") && n.contains("notified") && n.contains("revoke 7"));
        assert!(n.lines().all(|l| l.starts_with("elevate: ")));
    }

    #[test]
    fn table_layout() {
        let t = table(&[active(), pending(), ended()], NOW);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with("ID  USER"), "{t}");
        assert!(lines[0].contains("TIME LEFT / ENDED") && lines[0].ends_with("TICKET"));
        assert!(lines[1].contains("active") && lines[1].contains("1h29m left"));
        assert!(lines[2].contains("1/2 approvals, expires in 15m"), "{t}");
        assert!(lines[3].contains("5m ago: revoked by carol"), "{t}");
        // Columns line up: every row has REASON where the header does.
        let col = lines[0].find("REASON").unwrap();
        for l in &lines[1..] {
            assert_eq!(
                l.chars().skip(col).take(6).collect::<String>(),
                "vacuum",
                "{t}"
            );
        }
        assert_eq!(table(&[], NOW), "no leases\n");
    }

    #[test]
    fn hostile_text_is_escaped_and_long_reasons_cut() {
        let l = LeaseInfo {
            reason: Some(format!("\x1b]0;pwned\x07{}", "x".repeat(100))),
            ticket: Some("a\nb\u{202e}c".into()),
            ..pending()
        };
        let t = table(std::slice::from_ref(&l), NOW);
        assert!(!t.contains('\x1b') && !t.contains('\u{202e}'));
        assert_eq!(
            t.lines().count(),
            2,
            "a newline in a field must not add a row"
        );
        assert!(t.contains('…'));
        let s = summary(&l, NOW);
        assert!(!s.contains('\x1b') && s.contains("\\u{1b}]0;pwned"));
        assert!(s.contains("ticket: a\\nb\\u{202e}c"));
    }
}
