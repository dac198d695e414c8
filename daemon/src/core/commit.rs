//! Saving a lease transition: the journal and the audit log, in the order that makes a crash
//! at any point safe. A transition the daemon makes by itself (activation bookkeeping, an
//! ending) is journaled first: an ending must take effect even when the audit log cannot be
//! written. A transition someone asked for (request, approval, extension) may grant privilege,
//! so it is audited first: nothing takes effect unrecorded.

use super::State;
use crate::effects::audit::{fields, AuditError, AuditEvent};
use crate::lease::model::Lease;
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

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
    pub(super) async fn commit(
        &mut self,
        leases: &[Lease],
        events: &Records,
    ) -> Result<(), CommitError> {
        self.leases
            .journal
            .commit(leases)
            .map_err(CommitError::Journal)?;
        for l in leases {
            self.leases.table.insert(l.id, l.clone());
        }
        self.audit_durably(events).await
    }

    /// Save a transition someone asked for (request, approval, extension), which may grant
    /// privilege: the audit records first, so that nothing takes effect unrecorded. If the
    /// journal then fails, a record says the transition did not happen.
    pub(super) async fn commit_requested(
        &mut self,
        lease: &Lease,
        events: &Records,
    ) -> Result<(), CommitError> {
        self.audit_durably(events).await?;
        if let Err(e) = self.leases.journal.commit(std::slice::from_ref(lease)) {
            let why = CommitError::Journal(e);
            self.audit.post(
                AuditEvent::LeaseNotSaved,
                fields(
                    json!({"host": self.host.name, "lease": lease.id, "user": lease.user,
                    "error": why.to_string(), "note": "the records just before this one did not take effect"}),
                ),
            );
            return Err(why);
        }
        self.leases.table.insert(lease.id, lease.clone());
        Ok(())
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
