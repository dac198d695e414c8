//! Approvals: of a pending request (it activates once enough approvers agree) and of an
//! extension (it applies once enough agree). Never by the holder, once per approver.

use super::lifetime::{activate, extend};
use super::request::check_text;
use super::{denied, Refusal, Requester};
use crate::lease::model::{Approval, Lease, LeaseState};
use std::time::Duration;

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
    let what = Approved {
        own: "request",
        subject: format!("lease {}", lease.id),
    };
    let mut approvals = std::mem::take(&mut lease.approvals);
    let added = add_approval(
        lease,
        &mut approvals,
        &what,
        approver,
        comment,
        may_approve,
        now_ms,
    );
    lease.approvals = approvals;
    added?;
    if lease.approvals.len() as u32 >= lease.approvals_needed {
        activate(lease, now_ms);
        return Ok(true);
    }
    Ok(false)
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
    let what = Approved {
        own: "extension",
        subject: format!("the extension of lease {}", lease.id),
    };
    add_approval(
        lease,
        &mut ext.approvals,
        &what,
        approver,
        comment,
        may_approve,
        now_ms,
    )?;
    if ext.approvals.len() as u32 >= needed.max(1) {
        lease.extension = None;
        extend(lease, Duration::from_millis(ext.by_ms), max)?;
        return Ok(true);
    }
    lease.extension = Some(ext);
    Ok(false)
}

/// What an approval is for, in the words its refusals use.
struct Approved {
    /// "you cannot approve your own {own}"
    own: &'static str,
    /// "you already approved {subject}"
    subject: String,
}

/// The checks every approval passes — never the holder, only an approver, once each — then
/// the approval itself, with its comment trimmed to one short line of plain text.
fn add_approval(
    lease: &Lease,
    approvals: &mut Vec<Approval>,
    what: &Approved,
    approver: &Requester<'_>,
    comment: Option<&str>,
    may_approve: bool,
    now_ms: u64,
) -> Result<(), Refusal> {
    if approver.uid == lease.uid {
        return Err(Refusal::Denied {
            reason: format!("you cannot approve your own {}", what.own),
            hint: Some("ask one of the profile's approvers".into()),
        });
    }
    if !may_approve {
        return Err(denied(format!(
            "you are not an approver for profile {}",
            lease.profile
        )));
    }
    if approvals.iter().any(|a| a.uid == approver.uid) {
        return Err(denied(format!("you already approved {}", what.subject)));
    }
    check_text("comment", comment)?;
    let comment = comment
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.len() <= 1024)
        .map(String::from);
    approvals.push(Approval {
        uid: approver.uid,
        user: approver.user.to_string(),
        at_ms: now_ms,
        comment,
    });
    Ok(())
}
