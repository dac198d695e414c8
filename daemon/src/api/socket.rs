//! The socket front end: one task per client connection. Read a request, ask the core through
//! its handle, answer; `run` and `with` go on to the run path (`run.rs`) for the rest of the
//! connection. Handlers hold no shared state; all they know arrives in answers.

use super::run::{handle_run, ExecRequest};
use super::step_up::step_up;
use super::transport::{error, Conn};
use super::Ctx;
use crate::core::{checked, Gone, LeaseOp, LoginOp, PRESSED_IDLE, PRESSED_READ};
use crate::peer::Peer;
use elevate_proto::frame::{self, FrameError};
use elevate_proto::{Denial, ErrorKind, LeaseRequest, Request, Response};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::UnixStream;

/// How long a connection refused at admission is read from before it is closed.
const REFUSED_LINGER: Duration = Duration::from_millis(200);
/// At most this many refused connections linger at once (a flood of them is closed at once:
/// the wait is a courtesy to ordinary clients, not a cost anyone can grow).
const MAX_LINGERING: usize = 64;
static LINGERING: AtomicUsize = AtomicUsize::new(0);

/// What to do after a request was handled: answer, or (`None`) close the connection because
/// it is done (a command ran, or the core is gone).
type Next = Option<Response>;

pub async fn serve(stream: UnixStream, ctx: Ctx) {
    let peer = match Peer::from_stream(&stream) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("connection without peer credentials: {e}");
            return;
        }
    };
    let mut conn = Conn::new(stream);
    // The slot is given back however this handler ends.
    let slot = match ctx.core.open(peer.uid).await {
        Ok(Ok(slot)) => slot,
        Ok(Err(e)) => {
            if conn.send(&Response::Error(e)).await.is_ok() {
                linger(&mut conn).await;
            }
            return;
        }
        Err(Gone) => return,
    };
    // Admitted under pressure: little patience for a slow or idle client (core::admission).
    let limits = &ctx.settings.limits;
    let (read, idle) = if slot.pressed() {
        (PRESSED_READ, PRESSED_IDLE)
    } else {
        let ms = Duration::from_millis;
        (ms(limits.read_timeout_ms), ms(limits.idle_timeout_ms))
    };
    let mut wait = read;
    while let Some(req) = next_request(&mut conn, wait).await {
        wait = idle;
        let Some(resp) = answer(&mut conn, &ctx, &peer, req).await else {
            return;
        };
        if conn.send(&resp).await.is_err() {
            return;
        }
    }
}

/// Read what a refused client is still sending before closing, so it sees the refusal
/// rather than a reset connection — unless [`MAX_LINGERING`] refused connections already wait.
async fn linger(conn: &mut Conn) {
    if LINGERING.fetch_add(1, Ordering::SeqCst) < MAX_LINGERING {
        conn.drain(REFUSED_LINGER).await;
    }
    LINGERING.fetch_sub(1, Ordering::SeqCst);
}

/// The next request, within `wait`. `None`: the client is gone, idle too long, or sent
/// something that is not a request (it was told why).
async fn next_request(conn: &mut Conn, wait: Duration) -> Option<Request> {
    let payload = match tokio::time::timeout(wait, conn.read_frame()).await {
        Err(_) | Ok(Ok(None)) => return None,
        Ok(Err(e)) => {
            if !matches!(e, FrameError::Closed | FrameError::Io(_)) {
                conn.refuse(ErrorKind::BadRequest, e.to_string()).await;
            }
            return None;
        }
        Ok(Ok(Some(p))) => p,
    };
    match frame::decode(&payload) {
        Ok(r) => Some(r),
        Err(e) => {
            conn.refuse(ErrorKind::BadRequest, e.to_string()).await;
            None
        }
    }
}

async fn answer(conn: &mut Conn, ctx: &Ctx, peer: &Peer, req: Request) -> Next {
    // Only `run` may carry descriptors; anything else that brought some has them closed here.
    let fds = std::mem::take(&mut conn.fds);
    let core = &ctx.core;
    let answered = |r: Result<Response, Gone>| r.ok();
    let lease = |op| async { Some(core.lease(peer.clone(), op).await) };
    let login = |op| async { Some(core.login(peer.clone(), op).await) };
    match req {
        Request::Run(run) => {
            handle_run(conn, ctx, peer.clone(), ExecRequest::Run(run), fds).await;
            None // one command per connection
        }
        Request::With(with) => {
            handle_run(conn, ctx, peer.clone(), ExecRequest::With(with), fds).await;
            None
        }
        // Waiting may take as long as approval does: no idle timeout on this connection.
        Request::Wait { id } => answered(core.wait(peer.uid, id).await),
        Request::RequestLease(r) => Some(request_lease(conn, ctx, peer, r).await),
        Request::Approve { id, comment } => lease(LeaseOp::Approve { id, comment }).await,
        Request::Deny { id, reason } => lease(LeaseOp::Deny { id, reason }).await,
        Request::Revoke { id, reason } => lease(LeaseOp::Revoke { id, reason }).await,
        Request::Extend { id, by_secs } => lease(LeaseOp::Extend { id, by_secs }).await,
        Request::Leases { all } => lease(LeaseOp::List { all }).await,
        Request::LoginCheck(q) => login(LoginOp::Check(q)).await,
        Request::SessionOpen(q) => login(LoginOp::Open(q)).await,
        Request::SessionClose { id } => login(LoginOp::Close { id }).await,
        Request::Check(run) => match core.decide(peer.clone(), run, true).await {
            Ok((_, d)) => Some(checked(&d)),
            Err(Gone) => None,
        },
        Request::List {} => answered(core.list(peer.clone()).await),
        Request::Reload {} if !peer.uid.is_root() => Some(Response::Denied(Denial {
            reason: "only root may reload the policy".into(),
            hint: Some("sudo systemctl reload elevated, or elevated --check to validate".into()),
        })),
        Request::Reload {} => answered(core.reload().await.map(Response::Reloaded)),
        Request::Status {} => answered(core.status().await),
        Request::Signal { .. } => Some(error(
            ErrorKind::BadRequest,
            "no command is running on this connection",
        )),
        Request::PromptReply { .. } => Some(error(
            ErrorKind::BadRequest,
            "no prompt is waiting for an answer",
        )),
    }
}

/// A lease request; if the profile wants step-up, authenticate and ask again.
async fn request_lease(conn: &mut Conn, ctx: &Ctx, peer: &Peer, r: LeaseRequest) -> Response {
    let resp = ctx
        .core
        .lease(peer.clone(), LeaseOp::Request(r.clone()))
        .await;
    match resp {
        Response::Error(e) if e.kind == ErrorKind::AuthenticationRequired => {
            match step_up(conn, ctx, peer, &r.profile, "request").await {
                Ok(authenticated) => ctx.core.lease(authenticated, LeaseOp::Request(r)).await,
                Err(denied) => denied,
            }
        }
        other => other,
    }
}
