//! Saving a lease transition: the journal and the audit log, in the order that makes a crash
//! at any point safe. A transition the daemon makes by itself (activation bookkeeping, an
//! ending) is journaled first: an ending must take effect even when the audit log cannot be
//! written. A transition someone asked for (request, approval, extension) may grant privilege,
//! so it is audited first: nothing takes effect unrecorded.
//!
//! On a full state directory the journal writes endings on its reserve and refuses what may
//! grant privilege (`lease/reserve.rs`); an ending it cannot write at all still takes effect.

use super::State;
use crate::effects::audit::{fields, AuditError, AuditEvent};
use crate::lease::journal::Kind;
use crate::lease::model::{Lease, LeaseState};
use crate::lease::reserve::is_state_full;
use elevate_proto::ErrorKind;
use serde_json::{json, Value};
use std::fmt;
use std::io;

/// Why a transition was not saved.
#[derive(Debug)]
pub enum CommitError {
    /// The lease journal could not be written.
    Journal(io::Error),
    /// The audit records could not be written durably.
    Audit(AuditError),
}

impl CommitError {
    /// The kind of error a client is told: a full state directory is one to try again later.
    pub fn error_kind(&self) -> ErrorKind {
        match self {
            CommitError::Journal(e) if is_state_full(e) => ErrorKind::StateFull,
            _ => ErrorKind::Internal,
        }
    }
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Says itself what was refused and why.
            CommitError::Journal(e) if is_state_full(e) => write!(f, "{e}"),
            CommitError::Journal(e) => write!(f, "lease state not saved: {e}"),
            CommitError::Audit(e) => write!(f, "audit log: {e}"),
        }
    }
}

/// Audit records of one transition, written together.
pub type Records = [(AuditEvent, Value)];

impl State {
    /// Save a transition the daemon makes by itself (activation bookkeeping, endings): the
    /// journal first, then the audit records. An ending must take effect even when the
    /// audit log cannot be written (less privilege is the safe side); the error is returned.
    /// So must it when the journal cannot be written: the table takes it anyway (so the
    /// memberships are removed now) and the journal writes it later.
    pub(super) async fn commit(
        &mut self,
        leases: &[Lease],
        events: &Records,
    ) -> Result<(), CommitError> {
        let kind = if leases.iter().all(|l| l.state == LeaseState::Ended) {
            Kind::Ending
        } else {
            Kind::Granting
        };
        let journaled = match self.leases.journal.commit(leases, kind) {
            Err(e) if kind == Kind::Granting => return Err(CommitError::Journal(e)),
            r => r,
        };
        for l in leases {
            self.leases.table.insert(l.id, l.clone());
        }
        let audited = self.audit_durably(events).await;
        journaled.map_err(CommitError::Journal)?;
        audited
    }

    /// Save a transition someone asked for (request, approval, extension), which may grant
    /// privilege: the audit records first, so that nothing takes effect unrecorded. If the
    /// journal then fails, a record says the transition did not happen. On a full state
    /// directory it is refused before anything is audited.
    pub(super) async fn commit_requested(
        &mut self,
        lease: &Lease,
        events: &Records,
    ) -> Result<(), CommitError> {
        self.leases
            .journal
            .ensure_reserve()
            .map_err(CommitError::Journal)?;
        // A write that fails part-way may have put some of the records on disk: whichever
        // step fails, a record says the transition did not take effect.
        if let Err(why) = self.audit_durably(events).await {
            self.not_saved(lease, &why);
            return Err(why);
        }
        let saved = self
            .leases
            .journal
            .commit(std::slice::from_ref(lease), Kind::Granting);
        if let Err(e) = saved {
            let why = CommitError::Journal(e);
            self.not_saved(lease, &why);
            return Err(why);
        }
        self.leases.table.insert(lease.id, lease.clone());
        Ok(())
    }

    /// `lease.not_saved`: the records of this transition just before it did not take effect.
    fn not_saved(&self, lease: &Lease, why: &CommitError) {
        let rec = json!({"host": self.host.name, "lease": lease.id, "user": lease.user,
            "error": why.to_string(), "note": "the records just before this one did not take effect"});
        self.audit.post(AuditEvent::LeaseNotSaved, fields(rec));
    }

    pub(super) async fn audit_durably(&self, events: &Records) -> Result<(), CommitError> {
        if events.is_empty() {
            return Ok(());
        }
        let records = events
            .iter()
            .map(|(e, r)| (*e, fields(r.clone())))
            .collect();
        self.audit
            .durable(records)
            .await
            .map(drop)
            .map_err(CommitError::Audit)
    }
}
