//! Group edits in flight. The core never edits /etc/group itself: it hands each batch to the
//! editor thread (`effects::groups::GroupEditor`) and waits for the outcome at most
//! `Settings::group_edit_wait` — and only when no other batch is ahead of it, so a held
//! `/etc/.pwd.lock` costs the decisions queued behind one edit that much, once, and nothing
//! after. An outcome that comes later arrives through the core's loop ([`State::edit_done`]);
//! the editor applies batches in order, so outcomes arrive in the order they were submitted.
//!
//! Meanwhile the state says what it is waiting for: a lease whose memberships are not written
//! yet is shown as granting, and `status` shows the edits in flight and the last failure.

use super::State;
use crate::effects::groups::{EditDone, GroupEditor};
use crate::effects::procs::Carriers;
use elevate_base::Uid;
use elevate_groupdb::{Change, Outcome};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::time::{Duration, Instant};

/// The first wait before a failed edit is tried again; it doubles up to [`RETRY_MAX`], so a
/// read-only /etc costs one attempt (and one `group.error`) a minute, not one a tick.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What a batch is for: what to do with its outcome.
pub(super) enum Purpose {
    /// The memberships an active lease grants.
    Grant(u64),
    /// The memberships ending leases take back, and the processes that keep them.
    Remove(Removals),
    /// Memberships no readable lease accounts for, after a damaged journal.
    Reclaim,
}

struct InFlight {
    ticket: u64,
    purpose: Purpose,
    since: Instant,
}

/// When to try again after a failure, and the current back-off. `None` while nothing waits.
#[derive(Default, Clone, Copy)]
pub(super) struct Backoff(Option<(Instant, Duration)>);

impl Backoff {
    /// A failure: the first retry after [`RETRY_FIRST`], later ones twice as far apart. Several
    /// failures of one round (a retry submits every stuck lease) count once.
    pub fn failed(&mut self, now: Instant) {
        let next = match self.0 {
            Some((at, _)) if at > now => return,
            Some((_, d)) => (d * 2).min(RETRY_MAX),
            None => RETRY_FIRST,
        };
        self.0 = Some((now + next, next));
    }

    /// Whether a retry is due now (a failure happened and its wait is over).
    pub fn due(&self, now: Instant) -> bool {
        self.0.is_some_and(|(at, _)| now >= at)
    }

    pub fn waiting(&self) -> bool {
        self.0.is_some()
    }

    pub fn succeeded(&mut self) {
        self.0 = None;
    }
}

pub(super) struct EditBook {
    editor: GroupEditor,
    in_flight: VecDeque<InFlight>,
    next_ticket: u64,
    /// The last failure, until an edit succeeds: shown in `status` and on granting leases.
    pub last_error: Option<String>,
    pub grant_retry: Backoff,
    pub removal_retry: Backoff,
}

impl EditBook {
    pub fn new(editor: GroupEditor) -> EditBook {
        EditBook {
            editor,
            in_flight: VecDeque::new(),
            next_ticket: 0,
            last_error: None,
            grant_retry: Backoff::default(),
            removal_retry: Backoff::default(),
        }
    }

    /// The next outcome from the editor (the core's loop waits on this beside its queue).
    pub async fn next_done(&mut self) -> Option<EditDone> {
        self.editor.next_done().await
    }

    pub fn busy(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Edits in flight, and how long the oldest has waited.
    pub fn pending(&self, now: Instant) -> (usize, Duration) {
        let oldest = self
            .in_flight
            .front()
            .map(|f| now.saturating_duration_since(f.since))
            .unwrap_or_default();
        (self.in_flight.len(), oldest)
    }

    /// Whether this lease's grant is with the editor now.
    pub fn granting(&self, lease: u64) -> bool {
        self.in_flight
            .iter()
            .any(|f| matches!(f.purpose, Purpose::Grant(id) if id == lease))
    }
}

impl State {
    /// Hand a batch to the editor; see to its outcome now if it comes within the wait.
    pub(super) async fn edit_groups(&mut self, changes: Vec<Change>, purpose: Purpose) {
        let idle = !self.edits.busy();
        let ticket = self.edits.next_ticket;
        self.edits.next_ticket += 1;
        if let Err(e) = self.edits.editor.submit(ticket, changes) {
            self.edit_finished(purpose, Err(e)).await;
            return;
        }
        let since = self.clock.now();
        self.edits.in_flight.push_back(InFlight {
            ticket,
            purpose,
            since,
        });
        if idle {
            let wait = self.settings.group_edit_wait;
            if let Ok(Some(done)) = tokio::time::timeout(wait, self.edits.next_done()).await {
                self.edit_done(done).await;
            }
        }
    }

    /// An outcome from the editor: the oldest batch in flight.
    pub(super) async fn edit_done(&mut self, done: EditDone) {
        let Some(pos) = self
            .edits
            .in_flight
            .iter()
            .position(|f| f.ticket == done.ticket)
        else {
            tracing::error!("group edit {}: outcome of an unknown batch", done.ticket);
            return;
        };
        let Some(f) = self.edits.in_flight.remove(pos) else {
            return;
        };
        let EditDone {
            changes, result, ..
        } = done;
        self.edit_finished(f.purpose, result.map(|o| (changes, o)))
            .await;
    }

    async fn edit_finished(
        &mut self,
        purpose: Purpose,
        result: io::Result<(Vec<Change>, Vec<Outcome>)>,
    ) {
        match &result {
            Ok(_) => self.edits.last_error = None,
            Err(e) => self.edits.last_error = Some(format!("cannot edit /etc/group: {e}")),
        }
        match purpose {
            Purpose::Grant(id) => self.grant_written(id, result).await,
            Purpose::Remove(plan) => self.removal_written(plan, result).await,
            Purpose::Reclaim => self.reclaim_written(result),
        }
    }
}

/// One membership an ending takes back.
pub(super) struct Removal {
    pub lease: u64,
    pub change: Change,
}

/// What ending a batch of leases takes away (see `State::removals`).
#[derive(Default)]
pub(super) struct Removals {
    pub changes: Vec<Removal>,
    pub revoked: Carriers,
    pub terminate: HashMap<Uid, bool>,
}
