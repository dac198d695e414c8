//! A lease's time: activation, extension within the ceiling, the end, and what is due when —
//! on the wall clock and on the boot clock, whichever comes first.

use super::{denied, Refusal};
use crate::lease::model::{BootStamp, EndReason, Lease, LeaseState, PendingExtension};
use elevate_base::duration::{format_duration, millis, MAX_DURATION};
use std::time::Duration;

pub fn activate(lease: &mut Lease, now_ms: u64) {
    lease.state = LeaseState::Active;
    lease.pending_until_ms = None;
    lease.activated_at_ms = Some(now_ms);
    lease.expires_at_ms = Some(now_ms.saturating_add(lease.duration_ms));
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

/// The longest a lease on a profile may last from activation: its `max_duration`, and never
/// more than [`MAX_DURATION`] (366 days) — whatever a client sends, over any front end.
pub(super) fn ceiling(max: Option<Duration>) -> Duration {
    max.map_or(MAX_DURATION, |m| m.min(MAX_DURATION))
}
