//! Lease transitions as pure functions on a `Lease` value. The state loop clones the lease,
//! applies a transition, journals the result and only then swaps it in — so a failed disk
//! write leaves nothing half-done in memory, and every rule here is testable with a fake clock.
//!
//! | file | what |
//! |---|---|
//! | `request.rs` | a new request checked against the profile's lease rules |
//! | `approval.rs` | approvals of requests and of extensions |
//! | `lifetime.rs` | activation, extension, ending, and what is due when |

use elevate_base::Uid;
use elevate_policy::TicketPattern;
use std::time::Duration;

mod approval;
mod lifetime;
mod request;
#[cfg(test)]
mod tests;

pub use approval::{approve, approve_extension};
pub use lifetime::{due, end, extend, request_extension};
pub use request::{check_text, new_lease};

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

pub(super) fn denied(reason: impl Into<String>) -> Refusal {
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
