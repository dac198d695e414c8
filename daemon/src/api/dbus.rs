//! The daemon on D-Bus: `org.elevate.Elevated1` at `/org/elevate/Elevated1` on the system bus,
//! for monitoring, desktop notifiers and approval bots; and logind, when it is there, to end
//! login sessions whole.
//!
//! Same rule as the socket: this module only translates. The caller's uid comes from the bus
//! daemon (GetConnectionCredentials of the message's sender, which the bus took from the
//! kernel when the caller connected), never from arguments. Each method becomes the same
//! [`Event`] the socket handler sends, so one code path decides. A caller whose credentials
//! cannot be established — for instance because it disconnected before we asked, the race
//! behind polkit's CVE-2021-3560 — is refused, never treated as anyone in particular.
//!
//! Answers that carry structured data are JSON text, the same objects `elevate … --json`
//! prints, so a script handles both the same way.
//!
//! Signals are never broadcast: a broadcast reaches every process on the bus, and who holds
//! what (break-glass included) is not everyone's business. A listener calls `Subscribe`; each
//! signal about a lease then goes, addressed to that listener alone, to those whose
//! `ListLeases` would show the lease at that moment (the core decides: [`Handle::audience`]).
//! They carry ids and names only; reasons and tickets are for the methods.

use crate::core::{BusEvent, Gone, Handle, LeaseOp};
use crate::effects::procs::{self, ProcId};
use crate::peer::Peer;
use elevate_base::Uid;
use elevate_proto::{ErrorKind, LeaseInfo, LeaseRequest, LeaseState, Response};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::Connection;

pub const NAME: &str = "org.elevate.Elevated1";
pub const PATH: &str = "/org/elevate/Elevated1";
const LOGIND: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const LOGIND_MANAGER: &str = "org.freedesktop.login1.Manager";

/// How often a missing bus is looked for again, and a present one checked.
const RETRY: Duration = Duration::from_secs(30);

/// Longest JSON answer sent on the bus: half the system bus's default `max_message_size`
/// (32 MiB). dbus-daemon disconnects a peer that sends a longer message, and the daemon would
/// lose its name until it connects again; a longer answer is a `Failed` error instead.
const MAX_BUS_ANSWER: usize = 16 * 1024 * 1024;

/// The errors callers see, as `org.elevate.Elevated1.Error.<Name>`.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.elevate.Elevated1.Error")]
pub enum ApiError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The policy said no; the message says why and what to do instead.
    Denied(String),
    /// Who is calling could not be established.
    AccessDenied(String),
    NotFound(String),
    RateLimited(String),
    BadRequest(String),
    /// The profile needs step-up authentication, which needs a terminal: use `elevate`.
    AuthenticationRequired(String),
    /// The audit record could not be written, so nothing was done.
    AuditFailed(String),
    Failed(String),
}

impl ApiError {
    fn from_response(r: Response) -> ApiError {
        match r {
            Response::Denied(d) => ApiError::Denied(match d.hint {
                Some(h) => format!("{} ({h})", d.reason),
                None => d.reason,
            }),
            Response::Error(e) => {
                let m = e.message;
                match e.kind {
                    ErrorKind::NotFound => ApiError::NotFound(m),
                    ErrorKind::RateLimited | ErrorKind::Busy => ApiError::RateLimited(m),
                    ErrorKind::BadRequest => ApiError::BadRequest(m),
                    ErrorKind::AuthenticationRequired => ApiError::AuthenticationRequired(format!(
                        "{m}; request it with the elevate command on a terminal"
                    )),
                    ErrorKind::AuditFailed => ApiError::AuditFailed(m),
                    ErrorKind::SpawnFailed | ErrorKind::Internal | ErrorKind::StateFull => {
                        ApiError::Failed(m)
                    }
                }
            }
            other => ApiError::Failed(format!("unexpected answer from the daemon: {other:?}")),
        }
    }
}

/// How many bus connections may listen at once, in all and per uid: each costs a little
/// memory and a question to the core per signal.
const MAX_LISTENERS: usize = 1024;
const MAX_LISTENERS_PER_UID: usize = 16;

/// Who called `Subscribe`: unique bus name → uid. A unique name is never reused on a bus, so
/// an entry whose connection is gone reaches no one else; such entries are pruned at the
/// periodic check.
#[derive(Clone, Default)]
struct Listeners(Arc<Mutex<BTreeMap<String, Uid>>>);

impl Listeners {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Uid>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn add(&self, name: String, uid: Uid) -> Result<(), ApiError> {
        let mut map = self.lock();
        if map.contains_key(&name) {
            return Ok(());
        }
        let full = map.len() >= MAX_LISTENERS
            || map.values().filter(|u| **u == uid).count() >= MAX_LISTENERS_PER_UID;
        if full {
            return Err(ApiError::RateLimited(
                "too many listeners: unsubscribe another connection first".into(),
            ));
        }
        map.insert(name, uid);
        Ok(())
    }

    fn snapshot(&self) -> Vec<(String, Uid)> {
        self.lock().iter().map(|(n, u)| (n.clone(), *u)).collect()
    }
}

struct Api {
    core: Handle,
    listeners: Listeners,
}

impl Api {
    /// The caller, from the bus's credentials for the message's sender. Any failure refuses.
    async fn caller(&self, conn: &Connection, hdr: &Header<'_>) -> Result<Peer, ApiError> {
        let refuse =
            |why: String| ApiError::AccessDenied(format!("cannot tell who is calling: {why}"));
        let sender = hdr
            .sender()
            .ok_or_else(|| refuse("the message has no sender".into()))?;
        let bus = zbus::fdo::DBusProxy::new(conn)
            .await
            .map_err(|e| refuse(e.to_string()))?;
        let creds = bus
            .get_connection_credentials(sender.clone().into())
            .await
            .map_err(|e| refuse(e.to_string()))?;
        let uid = creds
            .unix_user_id()
            .ok_or_else(|| refuse("the bus reported no uid".into()))?;
        Ok(Peer::from_bus(elevate_base::Uid(uid), creds.process_id()))
    }

    async fn lease(&self, peer: Peer, op: LeaseOp) -> Response {
        self.core.lease(peer, op).await
    }

    /// A lease operation by the caller; the lease as it is afterwards.
    async fn transition(
        &self,
        conn: &Connection,
        hdr: &Header<'_>,
        op: LeaseOp,
    ) -> Result<LeaseInfo, ApiError> {
        let peer = self.caller(conn, hdr).await?;
        lease_state(self.lease(peer, op).await)
    }

    async fn leases(&self, peer: Peer, all: bool) -> Result<Vec<LeaseInfo>, ApiError> {
        match self.lease(peer, LeaseOp::List { all }).await {
            Response::Leases { leases } => Ok(leases),
            other => Err(ApiError::from_response(other)),
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, ApiError> {
    let json = serde_json::to_string(v).map_err(|e| ApiError::Failed(e.to_string()))?;
    if json.len() > MAX_BUS_ANSWER {
        return Err(ApiError::Failed(format!(
            "the answer is {} bytes, more than the {MAX_BUS_ANSWER} a D-Bus answer may carry; the elevate command (--json) takes up to {} bytes",
            json.len(),
            elevate_proto::MAX_REPLY
        )));
    }
    Ok(json)
}

fn leases_json(leases: Vec<LeaseInfo>) -> Result<String, ApiError> {
    to_json(&serde_json::json!({ "leases": leases }))
}

/// An empty string argument means "not given".
fn given(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn lease_state(r: Response) -> Result<LeaseInfo, ApiError> {
    match r {
        Response::Lease(l) => Ok(l),
        other => Err(ApiError::from_response(other)),
    }
}

#[zbus::interface(name = "org.elevate.Elevated1")]
impl Api {
    /// The daemon's status as JSON (what `elevate status --json` prints).
    async fn status(&self) -> Result<String, ApiError> {
        match self.core.status().await.unwrap_or_else(Gone::response) {
            Response::Status(s) => to_json(&s),
            other => Err(ApiError::from_response(other)),
        }
    }

    /// The caller's leases and requests (`all`: everyone's, for admins and auditors), as
    /// `{"leases": [...]}`.
    async fn list_leases(
        &self,
        all: bool,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, ApiError> {
        let peer = self.caller(conn, &hdr).await?;
        leases_json(self.leases(peer, all).await?)
    }

    /// Requests from others that the caller may approve, as `{"leases": [...]}`.
    async fn list_pending(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, ApiError> {
        let peer = self.caller(conn, &hdr).await?;
        let uid = peer.uid;
        let mine = self.leases(peer, false).await?;
        leases_json(
            mine.into_iter()
                .filter(|l| l.state == LeaseState::Pending && l.uid != uid)
                .collect(),
        )
    }

    /// Request a lease. `duration_secs` 0 means the profile's default; empty strings mean not
    /// given. Returns the lease id and its state ("pending" or "active").
    async fn request(
        &self,
        profile: String,
        duration_secs: u64,
        reason: String,
        ticket: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(u64, String), ApiError> {
        let req = LeaseRequest {
            profile,
            duration_secs: (duration_secs != 0).then_some(duration_secs),
            reason: given(reason),
            ticket: given(ticket),
            ..Default::default()
        };
        let l = self.transition(conn, &hdr, LeaseOp::Request(req)).await?;
        Ok((l.id, l.state.as_str().to_string()))
    }

    /// Approve someone else's request; returns the lease's state afterwards.
    async fn approve(
        &self,
        id: u64,
        comment: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, ApiError> {
        let op = LeaseOp::Approve {
            id,
            comment: given(comment),
        };
        Ok(self
            .transition(conn, &hdr, op)
            .await?
            .state
            .as_str()
            .to_string())
    }

    /// Deny someone else's request.
    async fn deny(
        &self,
        id: u64,
        reason: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        let reason = given(reason);
        self.transition(conn, &hdr, LeaseOp::Deny { id, reason })
            .await
            .map(drop)
    }

    /// End a lease early, or withdraw one's own pending request.
    async fn revoke(
        &self,
        id: u64,
        reason: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        let reason = given(reason);
        self.transition(conn, &hdr, LeaseOp::Revoke { id, reason })
            .await
            .map(drop)
    }

    /// Hear this daemon's signals on this connection: those about leases the caller's
    /// `ListLeases` would show (theirs, requests they may approve, everyone's for admins and
    /// auditors), sent to this connection alone, until it unsubscribes or disconnects.
    async fn subscribe(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), ApiError> {
        let peer = self.caller(conn, &hdr).await?;
        let name = hdr
            .sender()
            .ok_or_else(|| ApiError::AccessDenied("the message has no sender".into()))?;
        self.listeners.add(name.to_string(), peer.uid)
    }

    /// Stop hearing signals on this connection.
    async fn unsubscribe(&self, #[zbus(header)] hdr: Header<'_>) {
        if let Some(name) = hdr.sender() {
            self.listeners.lock().remove(name.as_str());
        }
    }

    /// A request is waiting for approval by `approvers` (`user` or `group:NAME`).
    #[zbus(signal)]
    async fn request_pending(
        emitter: &SignalEmitter<'_>,
        id: u64,
        user: &str,
        profile: &str,
        approvers: &[String],
    ) -> zbus::Result<()>;

    /// A lease became active; it expires at `expires_at` (RFC 3339, UTC).
    #[zbus(signal)]
    async fn lease_active(
        emitter: &SignalEmitter<'_>,
        id: u64,
        user: &str,
        profile: &str,
        expires_at: &str,
    ) -> zbus::Result<()>;

    /// A lease or request ended: expired, revoked, denied, request_expired, process_exited,
    /// policy_changed or withdrawn.
    #[zbus(signal)]
    async fn lease_ended(
        emitter: &SignalEmitter<'_>,
        id: u64,
        user: &str,
        profile: &str,
        reason: &str,
    ) -> zbus::Result<()>;
}

/// Own the name while a system bus exists; look for one again every [`RETRY`] when it does
/// not. Says once that there is none, then stays quiet until that changes.
pub async fn serve(
    core: Handle,
    bus: broadcast::Sender<BusEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut said_missing = false;
    loop {
        // Subscribe before connecting: nothing announced meanwhile is lost.
        let rx = bus.subscribe();
        let listeners = Listeners::default();
        match connect(core.clone(), listeners.clone()).await {
            Ok(conn) => {
                tracing::info!("D-Bus: serving {NAME} on the system bus");
                said_missing = false;
                let to = Relay {
                    conn: &conn,
                    core: &core,
                    listeners: &listeners,
                };
                to.relay(rx, &mut shutdown).await;
                if *shutdown.borrow() {
                    return;
                }
                tracing::warn!("D-Bus: lost the system bus; looking for it again");
            }
            Err(e) => {
                // Not listening while there is no bus: the state loop then skips building
                // announcements altogether.
                drop(rx);
                if !said_missing {
                    tracing::info!("D-Bus: no system bus ({e}); the socket serves alone");
                    said_missing = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The bus from DBUS_SYSTEM_BUS_ADDRESS, else the standard system socket.
async fn connect(core: Handle, listeners: Listeners) -> zbus::Result<Connection> {
    zbus::connection::Builder::system()?
        .name(NAME)?
        .serve_at(PATH, Api { core, listeners })?
        .build()
        .await
}

/// Where announcements go: the bus connection, the core (which decides each signal's
/// audience) and the listeners.
struct Relay<'a> {
    conn: &'a Connection,
    core: &'a Handle,
    listeners: &'a Listeners,
}

impl Relay<'_> {
    /// Turn state announcements into signals and logind calls until the bus goes away or
    /// the daemon stops.
    async fn relay(
        &self,
        mut rx: broadcast::Receiver<BusEvent>,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let Ok(emitter) = SignalEmitter::new(self.conn, PATH) else {
            return;
        };
        let mut check = tokio::time::interval(RETRY);
        check.tick().await;
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                _ = check.tick() => {
                    if !self.check().await {
                        return;
                    }
                    continue;
                }
                _ = shutdown.changed() => return,
            };
            let ev = match ev {
                Ok(ev) => ev,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("D-Bus: {n} signals dropped (the bus is too slow)");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            match lease_of(&ev) {
                Some(id) => self.signal(&emitter, id, &ev).await,
                None => self.logind(ev),
            }
        }
    }

    /// Whether the bus is still there; listeners whose connection is gone are forgotten.
    async fn check(&self) -> bool {
        let Ok(bus) = zbus::fdo::DBusProxy::new(self.conn).await else {
            return false;
        };
        if bus.get_id().await.is_err() {
            return false;
        }
        for (name, _) in self.listeners.snapshot() {
            let gone = match zbus::names::BusName::try_from(name.as_str()) {
                Ok(n) => matches!(bus.name_has_owner(n).await, Ok(false)),
                Err(_) => true,
            };
            if gone {
                self.listeners.lock().remove(&name);
            }
        }
        true
    }

    /// A lease's signal, to each listener whose `ListLeases` shows the lease now.
    async fn signal(&self, emitter: &SignalEmitter<'_>, id: u64, ev: &BusEvent) {
        let listeners = self.listeners.snapshot();
        if listeners.is_empty() {
            return;
        }
        // Each uid asked about once, however many of its connections listen.
        let uids: Vec<Uid> = listeners
            .iter()
            .map(|(_, u)| *u)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let Ok(shown) = self.core.audience(id, uids.clone()).await else {
            return;
        };
        let allowed: std::collections::BTreeSet<Uid> = uids
            .into_iter()
            .zip(shown)
            .filter_map(|(u, yes)| yes.then_some(u))
            .collect();
        for (name, _) in listeners.iter().filter(|(_, u)| allowed.contains(u)) {
            let Ok(to) = zbus::names::BusName::try_from(name.as_str()) else {
                continue;
            };
            if let Err(e) = emit(&emitter.clone().set_destination(to), ev).await {
                tracing::warn!("D-Bus: cannot send a signal to {name}: {e}");
            }
        }
    }

    /// A logind call, on a task of its own (logind may be slow).
    fn logind(&self, ev: BusEvent) {
        let (conn, core) = (self.conn.clone(), self.core.clone());
        match ev {
            BusEvent::SessionOpened { session, leader } => {
                tokio::spawn(async move {
                    match logind_session(&conn, leader).await {
                        Ok(Some(logind_id)) => {
                            core.logind_session(session, logind_id);
                        }
                        Ok(None) => {}
                        Err(e) => tracing::debug!("logind: session of pid {}: {e}", leader.pid),
                    }
                });
            }
            BusEvent::TerminateSession { logind_id } => {
                tokio::spawn(async move {
                    let r = conn
                        .call_method(
                            Some(LOGIND),
                            LOGIND_PATH,
                            Some(LOGIND_MANAGER),
                            "TerminateSession",
                            &(logind_id.as_str(),),
                        )
                        .await;
                    match r {
                        Ok(_) => tracing::info!("logind: terminated session {logind_id}"),
                        Err(e) => tracing::warn!("logind: TerminateSession {logind_id}: {e}"),
                    }
                });
            }
            _ => {}
        }
    }
}

/// The lease an announcement is about, when it is a signal's.
fn lease_of(ev: &BusEvent) -> Option<u64> {
    match ev {
        BusEvent::RequestPending { id, .. }
        | BusEvent::LeaseActive { id, .. }
        | BusEvent::LeaseEnded { id, .. } => Some(*id),
        BusEvent::SessionOpened { .. } | BusEvent::TerminateSession { .. } => None,
    }
}

/// One lease signal through `emitter` (addressed to one listener).
async fn emit(emitter: &SignalEmitter<'_>, ev: &BusEvent) -> zbus::Result<()> {
    match ev {
        BusEvent::RequestPending {
            id,
            user,
            profile,
            approvers,
        } => Api::request_pending(emitter, *id, user, profile, approvers).await,
        BusEvent::LeaseActive {
            id,
            user,
            profile,
            expires_at,
        } => Api::lease_active(emitter, *id, user, profile, expires_at).await,
        BusEvent::LeaseEnded {
            id,
            user,
            profile,
            reason,
        } => Api::lease_ended(emitter, *id, user, profile, reason).await,
        BusEvent::SessionOpened { .. } | BusEvent::TerminateSession { .. } => Ok(()),
    }
}

/// logind's id for the session `leader` belongs to, when logind is on the bus and the leader
/// is still the process that opened the PAM session.
async fn logind_session(conn: &Connection, leader: ProcId) -> zbus::Result<Option<String>> {
    let bus = zbus::fdo::DBusProxy::new(conn).await?;
    if !bus.name_has_owner(LOGIND.try_into()?).await? {
        return Ok(None);
    }
    let Ok(pid) = u32::try_from(leader.pid.get()) else {
        return Ok(None);
    };
    let reply = conn
        .call_method(
            Some(LOGIND),
            LOGIND_PATH,
            Some(LOGIND_MANAGER),
            "GetSessionByPID",
            &(pid,),
        )
        .await?;
    let path: zbus::zvariant::OwnedObjectPath = reply.body().deserialize()?;
    let reply = conn
        .call_method(
            Some(LOGIND),
            path.as_str(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.freedesktop.login1.Session", "Id"),
        )
        .await?;
    let value: zbus::zvariant::OwnedValue = reply.body().deserialize()?;
    let id = String::try_from(value)?;
    // The pid may have been reused while we asked: only the opener's session counts.
    if procs::start_time(leader.pid) != Some(leader.start_time) || !valid_session_id(&id) {
        return Ok(None);
    }
    Ok(Some(id))
}

/// logind session ids are short words ("3", "c12"); anything else is not used.
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_proto::Denial;

    #[test]
    fn refusals_keep_their_kind_and_say_what_to_do() {
        let e = ApiError::from_response(Response::Denied(Denial {
            reason: "not eligible".into(),
            hint: Some("elevate list".into()),
        }));
        assert!(matches!(e, ApiError::Denied(ref m) if m == "not eligible (elevate list)"));
        let e = ApiError::from_response(Response::Error(elevate_proto::ErrorReply {
            kind: ErrorKind::AuthenticationRequired,
            message: "profile x requires authentication".into(),
        }));
        assert!(matches!(e, ApiError::AuthenticationRequired(ref m) if m.contains("terminal")));
        assert!(matches!(
            ApiError::from_response(Response::Leases { leases: vec![] }),
            ApiError::Failed(_)
        ));
    }

    #[test]
    fn answers_too_long_for_the_bus_are_an_error_not_a_lost_connection() {
        let lease = |id: u64| {
            serde_json::from_value::<LeaseInfo>(serde_json::json!({
                "id": id, "user": "alice", "uid": 1000, "profile": "p", "state": "active",
                "reason": "r".repeat(1000), "duration_secs": 60,
                "requested_at": "2024-05-01T12:00:00.000Z", "approvals_needed": 0,
            }))
            .unwrap()
        };
        let json = leases_json((1..=2000).map(lease).collect()).unwrap();
        assert!(json.len() > 2_000_000, "{}", json.len());
        let huge = to_json(&"x".repeat(MAX_BUS_ANSWER));
        assert!(matches!(huge, Err(ApiError::Failed(ref m)) if m.contains("D-Bus")));
    }

    #[test]
    fn listeners_are_bounded_per_uid_and_subscribing_twice_is_once() {
        let l = Listeners::default();
        for i in 0..MAX_LISTENERS_PER_UID {
            assert!(l.add(format!(":1.{i}"), Uid(1000)).is_ok());
        }
        assert!(
            l.add(":1.0".into(), Uid(1000)).is_ok(),
            "the same name again"
        );
        assert!(matches!(
            l.add(":1.999".into(), Uid(1000)),
            Err(ApiError::RateLimited(_))
        ));
        assert!(l.add(":1.999".into(), Uid(1001)).is_ok(), "another uid");
        assert_eq!(l.snapshot().len(), MAX_LISTENERS_PER_UID + 1);
    }

    #[test]
    fn session_ids_are_plain_words() {
        assert!(valid_session_id("3") && valid_session_id("c12"));
        for bad in ["", "../x", "a b", "x\n", &"1".repeat(65)] {
            assert!(!valid_session_id(bad), "{bad:?}");
        }
    }
}
