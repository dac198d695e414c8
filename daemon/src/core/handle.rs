//! The typed handle front ends hold: one async method per question, each hiding the
//! request/reply channel. The queue behind it is bounded, so a flood of requests slows the
//! producers down instead of growing the daemon's memory.

use super::{Admission, Decision, Event, LeaseOp, LoginOp};
use crate::peer::Peer;
use elevate_base::Uid;
use elevate_proto::{ErrorKind, ErrorReply, ReloadReport, Response, RunRequest, WithRequest};
use tokio::sync::{mpsc, oneshot};

/// How many questions may wait for the core at once before senders wait too.
pub const QUEUE: usize = 1024;

/// The core is gone: the daemon is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl Gone {
    /// The answer a client gets when the core stopped while it waited.
    pub fn response(self) -> Response {
        Response::Error(ErrorReply {
            kind: ErrorKind::Internal,
            message: "the daemon is shutting down".into(),
        })
    }
}

#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Event>,
}

impl Handle {
    pub(super) fn new(tx: mpsc::Sender<Event>) -> Handle {
        Handle { tx }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Event) -> Result<T, Gone> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| Gone)?;
        answer.await.map_err(|_| Gone)
    }

    /// Admit a connection from `uid`: a slot that is given back when dropped, or why not.
    pub async fn open(&self, uid: Uid) -> Result<Result<Slot, ErrorReply>, Gone> {
        let admitted = self.ask(|reply| Event::Open { uid, reply }).await?;
        Ok(admitted.map(|admission| Slot {
            tx: self.tx.clone(),
            closing: Some(Event::Close { uid }),
            admission: Some(admission),
        }))
    }

    /// Decide a run (`dry_run`: only check). The peer comes back with its user name.
    pub async fn decide(
        &self,
        peer: Peer,
        req: RunRequest,
        dry_run: bool,
    ) -> Result<(Peer, Decision), Gone> {
        self.ask(|reply| Event::Decide {
            peer,
            req,
            dry_run,
            reply,
        })
        .await
    }

    /// Decide an `elevate with`.
    pub async fn decide_with(
        &self,
        peer: Peer,
        req: WithRequest,
    ) -> Result<(Peer, Decision), Gone> {
        self.ask(|reply| Event::DecideWith { peer, req, reply })
            .await
    }

    pub async fn list(&self, peer: Peer) -> Result<Response, Gone> {
        self.ask(|reply| Event::List { peer, reply }).await
    }

    pub async fn status(&self) -> Result<Response, Gone> {
        self.ask(|reply| Event::Status { reply }).await
    }

    /// Re-read the policy now; the outcome.
    pub async fn reload(&self) -> Result<ReloadReport, Gone> {
        self.ask(|reply| Event::Reload { reply }).await
    }

    /// A lease operation; a shut-down core answers with an error.
    /// For each of `uids`, whether its `ListLeases` would show lease `id` now: who may hear
    /// a D-Bus signal about it.
    pub async fn audience(&self, id: u64, uids: Vec<Uid>) -> Result<Vec<bool>, Gone> {
        self.ask(|reply| Event::Audience { id, uids, reply }).await
    }

    pub async fn lease(&self, peer: Peer, op: LeaseOp) -> Response {
        self.ask(|reply| Event::Lease { peer, op, reply })
            .await
            .unwrap_or_else(Gone::response)
    }

    /// Answer when lease `id` of `uid` leaves `pending`.
    pub async fn wait(&self, uid: Uid, id: u64) -> Result<Response, Gone> {
        self.ask(|reply| Event::Wait { uid, id, reply }).await
    }

    /// A PAM question or session registration; a shut-down core answers with an error.
    pub async fn login(&self, peer: Peer, op: LoginOp) -> Response {
        self.ask(|reply| Event::Login { peer, op, reply })
            .await
            .unwrap_or_else(Gone::response)
    }

    /// A command started; it counts as running until the guard is dropped. Sent (not
    /// posted), so the core always hears of the start before the guard's end.
    pub async fn command_started(&self) -> Slot {
        let _ = self.tx.send(Event::CommandStarted).await;
        Slot {
            tx: self.tx.clone(),
            closing: Some(Event::CommandEnded),
            admission: None,
        }
    }

    /// The bus side found the logind session of a registered PAM session.
    pub fn logind_session(&self, session: u64, logind_id: String) {
        post(&self.tx, Event::LogindSession { session, logind_id });
    }

    /// Run one tick now and wait for it (tests move their clock, then tick).
    #[cfg(test)]
    pub async fn tick(&self) -> Result<(), Gone> {
        self.ask(|done| Event::Tick { done: Some(done) }).await
    }
}

/// Send without waiting for room: when the queue is full, a task delivers it later. For
/// notices that must not be lost (a closed connection gives its slot back) from places that
/// cannot wait (`Drop`).
fn post(tx: &mpsc::Sender<Event>, ev: Event) {
    if let Err(mpsc::error::TrySendError::Full(ev)) = tx.try_send(ev) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let tx = tx.clone();
            rt.spawn(async move {
                let _ = tx.send(ev).await;
            });
        }
    }
}

/// Something the core counts (an open connection, a running command), given back on drop
/// however the holder ends.
pub struct Slot {
    tx: mpsc::Sender<Event>,
    closing: Option<Event>,
    /// For a connection's slot: how it was admitted.
    admission: Option<Admission>,
}

impl Slot {
    /// Whether the daemon was under pressure when this connection was admitted.
    pub fn pressed(&self) -> bool {
        self.admission.is_some_and(|a| a.pressed)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ev) = self.closing.take() {
            post(&self.tx, ev);
        }
    }
}
