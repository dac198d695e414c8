//! Step-up authentication over the socket: the PAM transaction runs on a blocking thread;
//! each conversation turn comes back here, goes to the client as a `Prompt` and waits for
//! its `PromptReply`. The answer never reaches a log or the audit trail.

use super::transport::Conn;
use super::Ctx;
use crate::effects::audit::fields;
use crate::effects::audit::AuditEvent;
use crate::os::pam_auth;
use crate::peer::Peer;
use elevate_proto::{frame, Denial, PromptStyle, Request, Response, MAX_PROMPT_REPLY};
use serde_json::json;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long the requester has to answer one prompt.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

type Turn = (PromptStyle, String, oneshot::Sender<Option<String>>);

/// Authenticate `peer` for `profile` (`via`: run or request). `Ok`: the peer, marked as
/// stepped up. `Err`: the answer to send instead (a denial). Audited either way.
pub async fn step_up(
    conn: &mut Conn,
    ctx: &Ctx,
    peer: &Peer,
    profile: &str,
    via: &str,
) -> Result<Peer, Response> {
    let (tx, mut turns) = mpsc::channel::<Turn>(1);
    let uid = peer.uid;
    let tty = peer.tty.clone();
    let mut pam = tokio::task::spawn_blocking(move || {
        // The account of the kernel-reported uid, looked up here (NSS may be slow): the
        // requester authenticates as themselves, whatever any field says.
        let Some(pw) = elevate_policy::RealSystem.passwd_by_uid(uid) else {
            return Err(format!("uid {uid} has no user account"));
        };
        let user = pw.name;
        let mut converse = |style: PromptStyle, text: &str| -> Option<String> {
            let (reply_tx, reply_rx) = oneshot::channel();
            tx.blocking_send((style, text.to_string(), reply_tx)).ok()?;
            reply_rx.blocking_recv().ok().flatten()
        };
        pam_auth::authenticate(&user, tty.as_deref(), &mut converse).map_err(|e| e.to_string())
    });
    let result = loop {
        tokio::select! {
            done = &mut pam => break done.unwrap_or_else(|e| Err(format!("authentication task failed: {e}"))),
            Some((style, text, reply)) = turns.recv() => {
                let answer = relay(conn, style, text).await;
                let _ = reply.send(answer);
            }
        }
    };
    let record = |outcome: &str, error: Option<&str>| {
        json!({"requester": peer.audit_json(), "host": ctx.settings.host.name, "profile": profile,
            "via": via, "service": pam_auth::SERVICE, "outcome": outcome, "error": error})
    };
    match result {
        Ok(()) => {
            // Fail closed: no record, no step-up.
            if let Err(e) = ctx
                .audit
                .write_durable(AuditEvent::AuthSucceeded, fields(record("success", None)))
                .await
            {
                tracing::error!("step-up for uid {}: audit write failed: {e}", peer.uid);
                return Err(Response::Error(elevate_proto::ErrorReply {
                    kind: elevate_proto::ErrorKind::AuditFailed,
                    message: format!("the audit log cannot be written ({e}); nothing was done"),
                }));
            }
            let mut p = peer.clone();
            p.stepped_up = true;
            Ok(p)
        }
        Err(e) => {
            tracing::info!(uid = %peer.uid, user = %peer.user, "step-up authentication failed for {profile}: {e}");
            ctx.audit
                .post(AuditEvent::AuthFailed, fields(record("failure", Some(&e))));
            Err(Response::Denied(Denial {
                reason: format!("authentication failed ({e}); profile {profile} requires it"),
                hint: None,
            }))
        }
    }
}

/// One turn: show the prompt; for prompts, read the reply (`None` on anything else).
async fn relay(conn: &mut Conn, style: PromptStyle, text: String) -> Option<String> {
    conn.send(&Response::Prompt { style, text }).await.ok()?;
    if !style.wants_reply() {
        return Some(String::new());
    }
    let payload = tokio::time::timeout(ANSWER_TIMEOUT, conn.read_frame())
        .await
        .ok()?
        .ok()??;
    conn.fds.clear();
    match frame::decode::<Request>(&payload) {
        Ok(Request::PromptReply { text }) => text.filter(|t| t.len() <= MAX_PROMPT_REPLY),
        _ => None,
    }
}
