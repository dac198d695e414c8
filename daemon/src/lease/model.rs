//! A lease as stored: everything needed to enforce, end and explain it, keyed by uid and
//! timed in UTC milliseconds on the daemon's wall clock.

use elevate_base::{Gid, Pid, Uid};
use serde::{Deserialize, Serialize};

/// The lease's state and end reason are the protocol's: the journal spells them as clients
/// see them.
pub use elevate_proto::{EndReason, LeaseState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub uid: Uid,
    pub user: String,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A Unix group the lease grants, and whether the daemon added the membership (and so must
/// remove it) or the user already had it (and keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub group: String,
    pub gid: Gid,
    /// The user was a member before the lease: never added, never removed by us.
    pub standing: bool,
    /// Our membership is in /etc/group now (set after the add, cleared after the removal).
    pub applied: bool,
}

/// A reading of the boot clock (CLOCK_BOOTTIME: monotonic, counting suspend) and the boot it
/// belongs to: readings compare only within one boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootStamp {
    pub boot_id: String,
    pub ms: u64,
}

/// A process the lease is bound to: the pid and its start time (field 22 of /proc/PID/stat),
/// so a recycled pid is never mistaken for the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    pub pid: Pid,
    pub start_time: u64,
}

/// An extension of an active lease that waits for approval (profiles that need approval need
/// it again to last longer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingExtension {
    pub by_ms: u64,
    pub requested_at_ms: u64,
    #[serde(default)]
    pub approvals: Vec<Approval>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Lease {
    pub id: u64,
    pub uid: Uid,
    pub user: String,
    pub profile: String,
    pub state: LeaseState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    pub duration_ms: u64,
    pub requested_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_until_ms: Option<u64>,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    #[serde(default)]
    pub approvals_needed: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// When it became active on the boot clock: it ends after `duration_ms` of boot time even
    /// if the wall clock is moved back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_boot: Option<BootStamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    /// The denier's or revoker's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_comment: Option<String>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub break_glass: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<Bound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<PendingExtension>,
    /// Ended, and its ending record not known to be in the audit log yet (journaled before
    /// the record is written; cleared once it is): see `core/expiry.rs`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ending_unaudited: bool,
}

impl Lease {
    pub fn is_live(&self) -> bool {
        self.state != LeaseState::Ended
    }

    /// Memberships still in /etc/group that this lease put there.
    pub fn applied_grants(&self) -> impl Iterator<Item = &Grant> {
        self.grants.iter().filter(|g| g.applied && !g.standing)
    }
}
