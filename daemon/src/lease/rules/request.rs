//! A new request checked against the profile's lease rules: break-glass, duration (never over
//! 366 days), reason, ticket; the lease it becomes, pending or active at once.

use super::lifetime::{activate, ceiling};
use super::{LeaseRules, NewRequest, Refusal, Requester};
use crate::lease::model::{Lease, LeaseState};
use elevate_base::duration::{format_duration, millis, MAX_DURATION};
use std::time::Duration;

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

/// Present when the profile (or break-glass) requires it; one line of at most 1024 bytes, in
/// plain text ([`check_text`]).
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
    check_text("reason", reason)?;
    if reason.is_some_and(|r| r.len() > 1024) {
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
    check_text("ticket", ticket)?;
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
    if ticket.is_some_and(|t| t.len() > 128) {
        return Err(Refusal::Invalid(
            "the ticket must be at most 128 printable bytes".into(),
        ));
    }
    Ok(ticket)
}

/// Free text that others will read — a reason, a ticket, a comment — holds no control, bidi
/// or invisible formatting character ([`elevate_base::text::hidden`]): an ESC sequence or a
/// U+202E in a break-glass reason would act on an admin's terminal or make it read backwards.
/// Refused with the character named, so the requester knows what to take out.
pub fn check_text(what: &str, text: Option<&str>) -> Result<(), Refusal> {
    match text.and_then(elevate_base::text::first_hidden) {
        None => Ok(()),
        Some(c) => Err(Refusal::Invalid(format!(
            "the {what} contains U+{:04X}, a control, bidi or invisible formatting character: write it as plain text on one line",
            u32::from(c)
        ))),
    }
}
