//! Lease transitions as pure functions on a `Lease` value. The state loop clones the lease,
//! applies a transition, journals the result and only then swaps it in — so a failed disk
//! write leaves nothing half-done in memory, and every rule here is testable with a fake clock.

use super::model::{Approval, BootStamp, EndReason, Lease, LeaseState, PendingExtension};
use elevate_base::duration::{format_duration, millis, MAX_DURATION};
use elevate_base::Uid;
use elevate_policy::TicketPattern;
use std::time::Duration;

/// What a profile says about leases on it (built from the policy in one place).
#[derive(Debug, Clone, Default)]
pub struct LeaseRules {
    pub profile: String,
    pub default_duration: Duration,
    pub max_duration: Option<Duration>,
    pub require_reason: bool,
    /// The whole-string ticket pattern, compiled by the policy.
    pub ticket: Option<TicketPattern>,
    /// 0 = approved automatically.
    pub approvals_needed: u32,
    pub break_glass: bool,
}

/// Why a lease operation was refused. `NotFound` hides leases the caller may not see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Denied {
        reason: String,
        hint: Option<String>,
    },
    NotFound(u64),
    Invalid(String),
}

fn denied(reason: impl Into<String>) -> Refusal {
    Refusal::Denied {
        reason: reason.into(),
        hint: None,
    }
}

/// Who is asking to request: uid and name from the kernel and NSS.
pub struct Requester<'a> {
    pub uid: Uid,
    pub user: &'a str,
}

pub struct NewRequest<'a> {
    pub duration: Option<Duration>,
    pub reason: Option<&'a str>,
    pub ticket: Option<&'a str>,
    pub break_glass: bool,
}

/// Validate a request against the profile's lease rules and build the lease (pending, or
/// active at once when no approval is needed). Eligibility, conflicts and duplicates are the
/// caller's checks; they need the whole table and the policy.
pub fn new_lease(
    id: u64,
    who: &Requester<'_>,
    req: &NewRequest<'_>,
    rules: &LeaseRules,
    now_ms: u64,
    pending_ttl: Duration,
) -> Result<Lease, Refusal> {
    check_break_glass(req, rules)?;
    let duration = check_duration(req.duration.unwrap_or(rules.default_duration), rules)?;
    let reason = check_reason(req.reason, rules)?;
    let ticket = check_ticket(req.ticket, rules)?;
    // req.break_glass implies rules.break_glass (checked above).
    let needed = if req.break_glass {
        0
    } else {
        rules.approvals_needed
    };
    let mut lease = Lease {
        id,
        uid: who.uid,
        user: who.user.to_string(),
        profile: rules.profile.clone(),
        state: LeaseState::Pending,
        reason: reason.map(String::from),
        ticket: ticket.map(String::from),
        duration_ms: millis(duration),
        requested_at_ms: now_ms,
        pending_until_ms: Some(now_ms.saturating_add(millis(pending_ttl))),
        approvals_needed: needed,
        break_glass: req.break_glass,
        ..Lease::default()
    };
    if needed == 0 {
        activate(&mut lease, now_ms);
    }
    Ok(lease)
}

/// Break-glass only for break-glass profiles; and a break-glass profile without approvers is
/// taken only through `elevate break-glass`, which is loud: a plain request must not
/// activate it quietly.
fn check_break_glass(req: &NewRequest<'_>, rules: &LeaseRules) -> Result<(), Refusal> {
    let p = &rules.profile;
    if req.break_glass && !rules.break_glass {
        return Err(Refusal::Denied {
            reason: format!("profile {p} is not a break-glass profile"),
            hint: Some(format!("request it normally: elevate request {p}")),
        });
    }
    if rules.break_glass && !req.break_glass && rules.approvals_needed == 0 {
        return Err(Refusal::Denied {
            reason: format!("profile {p} is for emergencies only"),
            hint: Some(format!(
                "in an emergency: elevate break-glass {p} --reason \"...\" (audited at alert level; admins are told)"
            )),
        });
    }
    Ok(())
}

/// Longer than zero, at most the profile's `max_duration`.
fn check_duration(duration: Duration, rules: &LeaseRules) -> Result<Duration, Refusal> {
    if duration.is_zero() {
        return Err(Refusal::Invalid(
            "a lease must last longer than zero seconds".into(),
        ));
    }
    let max = ceiling(rules.max_duration);
    if duration <= max {
        return Ok(duration);
    }
    let (asked, shown) = (format_duration(duration), format_duration(max));
    let reason = match rules.max_duration {
        Some(m) if m <= MAX_DURATION => {
            format!(
                "{asked} is longer than profile {}'s maximum of {shown}",
                rules.profile
            )
        }
        _ => format!("{asked} is longer than the longest lease elevate grants, {shown}"),
    };
    Err(Refusal::Denied {
        reason,
        hint: Some(format!("ask for at most {shown}: --for {shown}")),
    })
}

/// The longest a lease on a profile may last from activation: its `max_duration`, and never
/// more than [`MAX_DURATION`] (366 days) — whatever a client sends, over any front end.
fn ceiling(max: Option<Duration>) -> Duration {
    max.map_or(MAX_DURATION, |m| m.min(MAX_DURATION))
}

/// Present when the profile (or break-glass) requires it; one line of at most 1024 bytes.
fn check_reason<'a>(
    reason: Option<&'a str>,
    rules: &LeaseRules,
) -> Result<Option<&'a str>, Refusal> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if (rules.require_reason || rules.break_glass) && reason.is_none() {
        return Err(Refusal::Denied {
            reason: format!("profile {} requires a reason", rules.profile),
            hint: Some("say why: --reason \"...\"".into()),
        });
    }
    if reason.is_some_and(|r| r.len() > 1024 || r.chars().any(|c| c.is_control())) {
        return Err(Refusal::Invalid(
            "the reason must be one line of at most 1024 bytes".into(),
        ));
    }
    Ok(reason)
}

/// Present and matching when the profile has a ticket pattern; at most 128 printable bytes.
fn check_ticket<'a>(
    ticket: Option<&'a str>,
    rules: &LeaseRules,
) -> Result<Option<&'a str>, Refusal> {
    let ticket = ticket.map(str::trim).filter(|t| !t.is_empty());
    if let Some(pattern) = &rules.ticket {
        match ticket {
            None => {
                return Err(Refusal::Denied {
                    reason: format!("profile {} requires a ticket", rules.profile),
                    hint: Some(format!("add --ticket ID matching {}", pattern.source)),
                })
            }
            Some(t) if !pattern.regex.is_match(t) => {
                return Err(Refusal::Denied {
                    reason: format!("ticket {t:?} does not match {}", pattern.source),
                    hint: None,
                })
            }
            Some(_) => {}
        }
    }
    if ticket.is_some_and(|t| t.len() > 128 || t.chars().any(|c| c.is_control())) {
        return Err(Refusal::Invalid(
            "the ticket must be at most 128 printable bytes".into(),
        ));
    }
    Ok(ticket)
}

pub fn activate(lease: &mut Lease, now_ms: u64) {
    lease.state = LeaseState::Active;
    lease.pending_until_ms = None;
    lease.activated_at_ms = Some(now_ms);
    lease.expires_at_ms = Some(now_ms.saturating_add(lease.duration_ms));
}

/// Record one approval. `may_approve` is whether the policy names this person an approver of
/// the profile. The requester never counts, whatever the policy says. Returns true when the
/// lease became active.
pub fn approve(
    lease: &mut Lease,
    approver: &Requester<'_>,
    comment: Option<&str>,
    may_approve: bool,
    now_ms: u64,
) -> Result<bool, Refusal> {
    if lease.state != LeaseState::Pending {
        return Err(denied(format!(
            "lease {} is {}, not pending",
            lease.id,
            lease.state.as_str()
        )));
    }
    if approver.uid == lease.uid {
        return Err(Refusal::Denied {
            reason: "you cannot approve your own request".into(),
            hint: Some("ask one of the profile's approvers".into()),
        });
    }
    if !may_approve {
        return Err(denied(format!(
            "you are not an approver for profile {}",
            lease.profile
        )));
    }
    if lease.approvals.iter().any(|a| a.uid == approver.uid) {
        return Err(denied(format!("you already approved lease {}", lease.id)));
    }
    let comment = comment
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.len() <= 1024)
        .map(String::from);
    lease.approvals.push(Approval {
        uid: approver.uid,
        user: approver.user.to_string(),
        at_ms: now_ms,
        comment,
    });
    if lease.approvals.len() as u32 >= lease.approvals_needed {
        activate(lease, now_ms);
        return Ok(true);
    }
    Ok(false)
}

pub fn end(lease: &mut Lease, reason: EndReason, by: Option<&str>, now_ms: u64) {
    lease.state = LeaseState::Ended;
    lease.extension = None;
    lease.end_reason = Some(reason);
    lease.ended_by = by.map(String::from);
    lease.ended_at_ms = Some(now_ms);
    lease.pending_until_ms = None;
}

/// Lengthen an active lease; the total from activation stays within the maximum.
pub fn extend(lease: &mut Lease, by: Duration, max: Option<Duration>) -> Result<(), Refusal> {
    if lease.state != LeaseState::Active {
        return Err(denied(format!(
            "lease {} is {}, only active leases can be extended",
            lease.id,
            lease.state.as_str()
        )));
    }
    let (Some(start), Some(exp)) = (lease.activated_at_ms, lease.expires_at_ms) else {
        return Err(Refusal::Invalid("lease has no activation time".into()));
    };
    let new_exp = exp.saturating_add(millis(by));
    let ceiling = ceiling(max);
    if new_exp.saturating_sub(start) > millis(ceiling) {
        let left = millis(ceiling).saturating_sub(exp.saturating_sub(start));
        let whose = match max {
            Some(m) if m <= MAX_DURATION => "the profile's maximum",
            _ => "the longest lease elevate grants,",
        };
        return Err(Refusal::Denied {
            reason: format!(
                "that would exceed {whose} {} from activation",
                format_duration(ceiling)
            ),
            hint: Some(format!(
                "you can extend by at most {}",
                format_duration(Duration::from_millis(left))
            )),
        });
    }
    lease.expires_at_ms = Some(new_exp);
    lease.duration_ms = new_exp.saturating_sub(start);
    Ok(())
}

/// Ask to extend a lease whose profile needs approval: checked against the maximum now, applied
/// once enough approvers (never the holder) agree.
pub fn request_extension(
    lease: &mut Lease,
    by: Duration,
    max: Option<Duration>,
    now_ms: u64,
) -> Result<(), Refusal> {
    if lease.extension.is_some() {
        return Err(denied(format!(
            "lease {} already has an extension waiting for approval",
            lease.id
        )));
    }
    extend(&mut lease.clone(), by, max)?;
    lease.extension = Some(PendingExtension {
        by_ms: millis(by),
        requested_at_ms: now_ms,
        approvals: vec![],
    });
    Ok(())
}

/// Approve a pending extension. Returns true when it took effect.
pub fn approve_extension(
    lease: &mut Lease,
    approver: &Requester<'_>,
    comment: Option<&str>,
    may_approve: bool,
    needed: u32,
    max: Option<Duration>,
    now_ms: u64,
) -> Result<bool, Refusal> {
    let Some(mut ext) = lease.extension.clone() else {
        return Err(denied(format!(
            "lease {} is active and has no extension waiting for approval",
            lease.id
        )));
    };
    if approver.uid == lease.uid {
        return Err(Refusal::Denied {
            reason: "you cannot approve your own extension".into(),
            hint: Some("ask one of the profile's approvers".into()),
        });
    }
    if !may_approve {
        return Err(denied(format!(
            "you are not an approver for profile {}",
            lease.profile
        )));
    }
    if ext.approvals.iter().any(|a| a.uid == approver.uid) {
        return Err(denied(format!(
            "you already approved the extension of lease {}",
            lease.id
        )));
    }
    let comment = comment
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.len() <= 1024)
        .map(String::from);
    ext.approvals.push(Approval {
        uid: approver.uid,
        user: approver.user.to_string(),
        at_ms: now_ms,
        comment,
    });
    if ext.approvals.len() as u32 >= needed.max(1) {
        lease.extension = None;
        extend(lease, Duration::from_millis(ext.by_ms), max)?;
        return Ok(true);
    }
    lease.extension = Some(ext);
    Ok(false)
}

/// What is due at `now_ms` (wall clock) and `boot` (the boot clock now): pending requests
/// that waited too long, active leases past their end. An active lease ends at whichever
/// comes first: its wall-clock deadline (so a forward jump ends it), or its duration of boot
/// time since activation in the same boot (so moving the wall clock back does not stretch it,
/// and a suspend counts).
pub fn due(lease: &Lease, now_ms: u64, boot: Option<&BootStamp>) -> Option<EndReason> {
    match lease.state {
        LeaseState::Pending if lease.pending_until_ms.is_some_and(|t| t <= now_ms) => {
            Some(EndReason::RequestExpired)
        }
        LeaseState::Active
            if lease.expires_at_ms.is_some_and(|t| t <= now_ms)
                || boot_elapsed(lease, boot).is_some_and(|e| e >= lease.duration_ms) =>
        {
            Some(EndReason::Expired)
        }
        _ => None,
    }
}

/// Boot time since activation, when both readings are from this boot.
fn boot_elapsed(lease: &Lease, now: Option<&BootStamp>) -> Option<u64> {
    let (start, now) = (lease.activated_boot.as_ref()?, now?);
    (start.boot_id == now.boot_id).then(|| now.ms.saturating_sub(start.ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ticket pattern as the policy compiles it.
    fn ticket_pattern(source: &str) -> TicketPattern {
        let text = format!(
            "[[profile]]\nname = \"p\"\nusers = [\"u\"]\naccess = \"lease\"\nticket = {source:?}\n[[profile.command]]\npath = \"/bin/true\"\n"
        );
        let sys = elevate_policy::FakeSystem::new()
            .user("u")
            .executable("/bin/true");
        let (profiles, diags) =
            elevate_policy::parse_str(std::path::Path::new("t.toml"), &text, &sys);
        assert!(
            diags
                .iter()
                .all(|d| d.severity != elevate_policy::Severity::Error),
            "{diags:?}"
        );
        profiles[0].ticket.clone().expect("a ticket pattern")
    }

    fn rules() -> LeaseRules {
        LeaseRules {
            profile: "db".into(),
            default_duration: Duration::from_secs(1800),
            max_duration: Some(Duration::from_secs(7200)),
            require_reason: true,
            ticket: Some(ticket_pattern("(INC|CHG)-[0-9]+")),
            approvals_needed: 2,
            ..LeaseRules::default()
        }
    }
    const ALICE: Requester<'static> = Requester {
        uid: elevate_base::Uid(1000),
        user: "alice",
    };
    const BOB: Requester<'static> = Requester {
        uid: elevate_base::Uid(1001),
        user: "bob",
    };
    const CAROL: Requester<'static> = Requester {
        uid: elevate_base::Uid(1002),
        user: "carol",
    };

    fn req<'a>(
        reason: Option<&'a str>,
        ticket: Option<&'a str>,
        dur: Option<u64>,
    ) -> NewRequest<'a> {
        NewRequest {
            duration: dur.map(Duration::from_secs),
            reason,
            ticket,
            break_glass: false,
        }
    }

    #[test]
    fn request_validation_table() {
        let r = rules();
        let ttl = Duration::from_secs(3600);
        let cases: &[(NewRequest<'_>, bool)] = &[
            (req(Some("fix"), Some("INC-1"), None), true),
            (req(None, Some("INC-1"), None), false),
            (req(Some("  "), Some("INC-1"), None), false),
            (req(Some("fix"), None, None), false),
            (req(Some("fix"), Some("INC-"), None), false),
            (req(Some("fix"), Some("xINC-1"), None), false),
            (req(Some("fix"), Some("INC-1x"), None), false),
            (req(Some("fix"), Some("CHG-22"), Some(7200)), true),
            (req(Some("fix"), Some("CHG-22"), Some(7201)), false),
            (req(Some("fix"), Some("CHG-22"), Some(0)), false),
            (req(Some("a\nb"), Some("INC-1"), None), false),
        ];
        for (i, (rq, ok)) in cases.iter().enumerate() {
            assert_eq!(
                new_lease(1, &ALICE, rq, &r, 0, ttl).is_ok(),
                *ok,
                "case {i}"
            );
        }
        let l = new_lease(1, &ALICE, &cases[0].0, &r, 5, ttl).unwrap();
        assert_eq!(l.state, LeaseState::Pending);
        assert_eq!(l.pending_until_ms, Some(5 + 3_600_000));
        assert_eq!(l.duration_ms, 1_800_000);
    }

    #[test]
    fn maximum_is_stated_in_the_refusal() {
        let e = new_lease(
            1,
            &ALICE,
            &req(Some("x"), Some("INC-1"), Some(9000)),
            &rules(),
            0,
            Duration::from_secs(60),
        )
        .unwrap_err();
        assert!(
            matches!(e, Refusal::Denied { ref reason, .. } if reason.contains("maximum of 2h")),
            "{e:?}"
        );
    }

    #[test]
    fn two_distinct_approvers_never_the_requester() {
        let mut l = new_lease(
            1,
            &ALICE,
            &req(Some("x"), Some("INC-1"), None),
            &rules(),
            0,
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(
            approve(&mut l, &ALICE, None, true, 1).is_err(),
            "self-approval, even if the policy lists them"
        );
        assert!(
            approve(&mut l, &BOB, None, false, 1).is_err(),
            "not an approver"
        );
        assert_eq!(approve(&mut l, &BOB, Some("ok"), true, 2), Ok(false));
        assert!(
            approve(&mut l, &BOB, None, true, 3).is_err(),
            "the same approver twice"
        );
        assert_eq!(approve(&mut l, &CAROL, None, true, 4), Ok(true));
        assert_eq!(l.state, LeaseState::Active);
        assert_eq!(l.expires_at_ms, Some(4 + 1_800_000));
        assert!(
            approve(&mut l, &CAROL, None, true, 5).is_err(),
            "no longer pending"
        );
    }

    #[test]
    fn automatic_approval_and_break_glass() {
        let mut r = rules();
        r.approvals_needed = 0;
        let l = new_lease(
            1,
            &ALICE,
            &req(Some("x"), Some("INC-1"), None),
            &r,
            10,
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(l.state, LeaseState::Active);
        let mut bg = NewRequest {
            break_glass: true,
            ..req(Some("fire"), Some("INC-1"), None)
        };
        assert!(
            new_lease(2, &ALICE, &bg, &rules(), 0, Duration::from_secs(60)).is_err(),
            "not a break-glass profile"
        );
        let mut r = rules();
        r.break_glass = true;
        let l = new_lease(2, &ALICE, &bg, &r, 0, Duration::from_secs(60)).unwrap();
        assert!(
            l.break_glass && l.state == LeaseState::Active,
            "break-glass never waits for approval"
        );
        // A plain request for it: refused when nobody would approve it (it would be a quiet
        // break-glass), an ordinary approval request when the profile names approvers.
        let plain = req(Some("fire"), Some("INC-1"), None);
        let mut quiet = r.clone();
        quiet.approvals_needed = 0;
        let e = new_lease(4, &ALICE, &plain, &quiet, 0, Duration::from_secs(60)).unwrap_err();
        assert!(format!("{e:?}").contains("emergencies only"), "{e:?}");
        let l = new_lease(5, &ALICE, &plain, &r, 0, Duration::from_secs(60)).unwrap();
        assert!(!l.break_glass && l.state == LeaseState::Pending);
        bg.reason = None;
        assert!(
            new_lease(3, &ALICE, &bg, &r, 0, Duration::from_secs(60)).is_err(),
            "break-glass needs a reason"
        );
    }

    #[test]
    fn extend_within_max_from_activation() {
        let mut r = rules();
        r.approvals_needed = 0;
        let mut l = new_lease(
            1,
            &ALICE,
            &req(Some("x"), Some("INC-1"), Some(3600)),
            &r,
            0,
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(extend(&mut l, Duration::from_secs(3600), r.max_duration).is_ok());
        assert_eq!(l.expires_at_ms, Some(7_200_000));
        let e = extend(&mut l, Duration::from_secs(1), r.max_duration).unwrap_err();
        assert!(matches!(e, Refusal::Denied { .. }));
    }

    #[test]
    fn extension_needs_approval_again_never_by_the_holder() {
        let mut l = new_lease(
            1,
            &ALICE,
            &req(Some("x"), Some("INC-1"), Some(1800)),
            &rules(),
            0,
            Duration::from_secs(60),
        )
        .unwrap();
        approve(&mut l, &BOB, None, true, 0).unwrap();
        approve(&mut l, &CAROL, None, true, 0).unwrap();
        let max = rules().max_duration;
        assert!(
            request_extension(&mut l, Duration::from_secs(9000), max, 1).is_err(),
            "beyond the maximum"
        );
        request_extension(&mut l, Duration::from_secs(1800), max, 1).unwrap();
        assert!(
            request_extension(&mut l, Duration::from_secs(60), max, 1).is_err(),
            "one at a time"
        );
        assert!(
            approve_extension(&mut l, &ALICE, None, true, 2, max, 2).is_err(),
            "not by the holder"
        );
        assert_eq!(
            approve_extension(&mut l, &BOB, None, true, 2, max, 2),
            Ok(false)
        );
        assert!(
            approve_extension(&mut l, &BOB, None, true, 2, max, 2).is_err(),
            "distinct approvers"
        );
        assert_eq!(l.expires_at_ms, Some(1_800_000));
        assert_eq!(
            approve_extension(&mut l, &CAROL, None, true, 2, max, 3),
            Ok(true)
        );
        assert_eq!(l.expires_at_ms, Some(3_600_000));
        assert!(l.extension.is_none());
    }

    #[test]
    fn due_uses_the_wall_clock_deadline() {
        let mut r = rules();
        r.approvals_needed = 0;
        let l = new_lease(
            1,
            &ALICE,
            &req(Some("x"), Some("INC-1"), Some(60)),
            &r,
            1000,
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(due(&l, 60_999, None), None);
        assert_eq!(due(&l, 61_000, None), Some(EndReason::Expired));
        let p = new_lease(
            2,
            &ALICE,
            &req(Some("x"), Some("INC-1"), None),
            &rules(),
            0,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(due(&p, 10_000, None), Some(EndReason::RequestExpired));
    }

    /// Whatever a client sends: no lease lasts longer than 366 days, with or without a
    /// profile maximum, on request and on extension.
    #[test]
    fn the_daemon_enforces_the_global_ceiling() {
        let open = LeaseRules {
            profile: "open".into(),
            default_duration: Duration::from_secs(600),
            max_duration: None,
            ..LeaseRules::default()
        };
        let ttl = Duration::from_secs(3600);
        let huge = req(Some("x"), None, Some(1_000_000_000_000));
        match new_lease(1, &ALICE, &huge, &open, 0, ttl) {
            Err(Refusal::Denied { reason, hint }) => {
                assert!(
                    reason.contains("longest lease elevate grants, 366d"),
                    "{reason}"
                );
                assert_eq!(hint.as_deref(), Some("ask for at most 366d: --for 366d"));
            }
            other => panic!("{other:?}"),
        }
        let year = req(Some("x"), None, Some(366 * 86_400));
        let mut l = new_lease(1, &ALICE, &year, &open, 0, ttl).expect("366d is allowed");
        match extend(&mut l, Duration::from_secs(1), None) {
            Err(Refusal::Denied { reason, .. }) => {
                assert!(
                    reason.contains("longest lease elevate grants, 366d"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        // A profile maximum above the ceiling is capped too.
        let loose = LeaseRules {
            max_duration: Some(Duration::from_secs(400 * 86_400)),
            ..open.clone()
        };
        let over = req(Some("x"), None, Some(367 * 86_400));
        assert!(new_lease(2, &ALICE, &over, &loose, 0, ttl).is_err());
        let mut l =
            new_lease(3, &ALICE, &req(Some("x"), None, Some(60)), &open, 0, ttl).expect("a minute");
        assert!(extend(&mut l, Duration::from_secs(u64::MAX / 2), None).is_err());
        assert!(extend(&mut l, Duration::from_secs(3600), None).is_ok());
    }
}
