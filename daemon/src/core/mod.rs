//! The core: the daemon's state and the one loop that owns it. Front ends never touch state:
//! they ask through a [`Handle`], which sends a private [`Event`] over a bounded queue and
//! waits for the answer. Decisions are microseconds of computation, so a single owner costs
//! nothing and removes every question of lock ordering or a decision seeing half a reload.
//!
//! The core reaches the world only through the seams in [`World`] (clocks, accounts, the group
//! database, the process table, the lease journal, the audit sink, the policy source,
//! terminals), so its tests build it over in-memory fakes, without root, in milliseconds —
//! and stop the world after any step of a transition to see what a restarted core makes of it.
//!
//! | file | what |
//! |---|---|
//! | `handle.rs` | the typed handle front ends ask through; slots given back on drop |
//! | `admission.rs` | which connections are let in: caps, a reserve for root and admins, fairness |
//! | `decide.rs` | runs: standing and leased access, run-as, `elevate with`, list, status |
//! | `leases.rs` | lease operations: request, approve, deny, revoke, extend, list, wait |
//! | `commit.rs` | saving a transition: journal and audit, in a crash-safe order |
//! | `grants.rs` | group memberships a lease adds and removes; processes that keep them |
//! | `expiry.rs` | endings in batches, the tick, reload re-evaluation, start-up reconciliation |
//! | `logins.rs` | PAM account questions and the login sessions leases admit |
//! | `announce.rs` | lease views, audit records, D-Bus announcements, the notify hook, break-glass |
//! | `reload.rs` | loading the policy all-or-nothing |
//! | `damage.rs` | state found damaged at start-up: audited, memberships taken back |
//! | `sweep.rs` | the set-gid sweep after an ending: handed to the sweeper, its report audited |
//! | `step_up.rs`, `identity_cache.rs`, `limits.rs` | the step-up cache, cached NSS answers, rate limits |

mod admission;
mod announce;
mod commit;
mod damage;
mod decide;
mod edits;
mod expiry;
mod grants;
mod handle;
mod identity_cache;
mod leases;
pub mod limits;
mod logins;
mod reload;
mod step_up;
mod sweep;
#[cfg(test)]
mod tests;

pub use admission::{Admission, PRESSED_IDLE, PRESSED_READ};
pub use announce::BusEvent;
pub use decide::checked;
pub use handle::{Gone, Handle};
pub use leases::LeaseOp;
pub use logins::LoginOp;

pub use crate::exec::Plan;

use crate::effects::accounts::Accounts;
use crate::effects::audit::AuditSink;
use crate::effects::audit_history::AuditHistory;
use crate::effects::clock::Clock;
use crate::effects::groups::{GroupDatabase, GroupEditor};
use crate::effects::policy_files::PolicySource;
use crate::effects::procs::ProcessTable;
use crate::effects::setgid::SweepReport;
use crate::effects::wall::Terminals;
use crate::lease::journal::LeaseStore;
use crate::lease::model::{BootStamp, Lease};
use crate::login::sessions::SessionBook;
use crate::peer::Peer;
use crate::settings::Settings;
use edits::EditBook;
use elevate_base::Uid;
use elevate_policy::{HostInfo, Policy};
use elevate_proto::{ErrorKind, ErrorReply, ReloadReport, Response, RunRequest, WithRequest};
use identity_cache::IdentityCache;
use leases::LeaseBook;
use limits::RateLimiter;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

/// How often expiries and pending KILLs are checked.
const TICK: Duration = Duration::from_millis(250);

/// What the core is asked. Private: front ends use [`Handle`].
enum Event {
    /// A connection arrived; admit it or say why not.
    Open {
        uid: Uid,
        reply: oneshot::Sender<Result<Admission, ErrorReply>>,
    },
    Close {
        uid: Uid,
    },
    /// Decide a run (or, with `dry_run`, a check). The peer comes back with its user name.
    Decide {
        peer: Peer,
        req: RunRequest,
        dry_run: bool,
        reply: oneshot::Sender<(Peer, Decision)>,
    },
    /// Decide an `elevate with`: the caller's own active lease, its groups added.
    DecideWith {
        peer: Peer,
        req: WithRequest,
        reply: oneshot::Sender<(Peer, Decision)>,
    },
    List {
        peer: Peer,
        reply: oneshot::Sender<Response>,
    },
    Status {
        reply: oneshot::Sender<Response>,
    },
    /// SIGHUP or `elevate reload`: re-read the policy; the outcome.
    Reload {
        reply: oneshot::Sender<ReloadReport>,
    },
    CommandStarted,
    CommandEnded,
    /// A lease operation (request, approve, deny, revoke, extend, list).
    Lease {
        peer: Peer,
        op: LeaseOp,
        reply: oneshot::Sender<Response>,
    },
    /// D-Bus signals: which of these users would see lease `id` in their `ListLeases`.
    Audience {
        id: u64,
        uids: Vec<Uid>,
        reply: oneshot::Sender<Vec<bool>>,
    },
    /// `request --wait`: answer when the lease leaves `pending`.
    Wait {
        uid: Uid,
        id: u64,
        reply: oneshot::Sender<Response>,
    },
    /// Periodic: expiries, KILLs after grace, retries. `done` when someone waits for it.
    Tick {
        done: Option<oneshot::Sender<()>>,
    },
    /// A lease's bound process exited.
    BoundExited {
        id: u64,
    },
    /// pam_elevate.so: a login question, a session opened or closed.
    Login {
        peer: Peer,
        op: LoginOp,
        reply: oneshot::Sender<Response>,
    },
    /// The bus side found which logind session a registered PAM session belongs to.
    LogindSession {
        session: u64,
        logind_id: String,
    },
    /// The set-gid sweeper finished a walk.
    SetgidSwept(Box<SweepReport>),
}

#[derive(Debug)]
#[must_use]
pub enum Decision {
    Allow(Box<Plan>),
    Deny {
        reason: String,
        hint: Option<String>,
        profile: Option<String>,
    },
    /// Not a policy decision: the request could not be decided (rate limit, unknown user…).
    Refuse(ErrorReply),
    /// Allowed once the requester passes step-up authentication (profile `authenticate`).
    Authenticate {
        profile: String,
    },
}

/// The seams the core is built over: the real machine in the daemon, fakes in tests.
pub struct World {
    pub clock: Arc<dyn Clock>,
    pub accounts: Box<dyn Accounts>,
    pub groups: Arc<dyn GroupDatabase>,
    /// The thread that applies group edits (over `groups`).
    pub editor: GroupEditor,
    pub procs: Arc<dyn ProcessTable>,
    pub audit: Arc<dyn AuditSink>,
    /// What the audit log already holds (start-up reconciliation of endings).
    pub audit_history: Box<dyn AuditHistory>,
    pub policy: Box<dyn PolicySource>,
    pub terminals: Box<dyn Terminals>,
    /// Where lease records go, and what it held at start.
    pub journal: Box<dyn LeaseStore>,
    pub leases: BTreeMap<u64, Lease>,
    /// Login sessions registered before this start.
    pub sessions: SessionBook,
    /// State found damaged at start-up, each a sentence; whether the lease journal was.
    pub damage: Vec<String>,
    pub journal_damaged: bool,
}

pub struct State {
    settings: Arc<Settings>,
    host: HostInfo,
    policy: Arc<Policy>,
    /// A policy was loaded from a source that is there: from now on a missing source keeps
    /// it rather than emptying it.
    policy_present: bool,
    last_reload: ReloadReport,
    started: Instant,
    identities: IdentityCache,
    limiter: RateLimiter,
    /// New connections per uid (root's are never limited: PAM checks arrive as root).
    conn_limiter: RateLimiter,
    conns_total: usize,
    conns_by_uid: HashMap<Uid, usize>,
    running: usize,
    leases: LeaseBook,
    sessions: SessionBook,
    auth_cache: step_up::AuthCache,
    clock: Arc<dyn Clock>,
    /// Read here; written only through `edits`, off the core's task.
    groupdb: Arc<dyn GroupDatabase>,
    edits: EditBook,
    procs: Arc<dyn ProcessTable>,
    audit: Arc<dyn AuditSink>,
    audit_history: Box<dyn AuditHistory>,
    policy_source: Box<dyn PolicySource>,
    terminals: Box<dyn Terminals>,
    setgid: sweep::Setgid,
    /// The core's own queue, for what it hears back from tasks it started (bound processes).
    events: mpsc::Sender<Event>,
    /// Announcements for the D-Bus side (signals, logind); nobody listens without a bus.
    bus: broadcast::Sender<BusEvent>,
}

/// The core before it serves: reconcile first ([`Core::start`]), then [`Core::run`].
pub struct Core {
    state: State,
    rx: mpsc::Receiver<Event>,
    damage: Vec<String>,
    journal_damaged: bool,
}

impl Core {
    /// Build the core over `world` and load the policy once. A broken policy at start-up
    /// means an empty one (nothing allowed) with the errors reported in `status`: fail
    /// closed, but keep serving so the admin can see why.
    pub fn new(
        settings: Arc<Settings>,
        world: World,
        bus: broadcast::Sender<BusEvent>,
    ) -> (Core, Handle) {
        let (tx, rx) = mpsc::channel(handle::QUEUE);
        let clock = world.clock;
        let (damage, journal_damaged) = (world.damage, world.journal_damaged);
        let mut state = State {
            host: settings.host.clone(),
            policy: Arc::new(Policy::default()),
            policy_present: false,
            last_reload: ReloadReport {
                at: elevate_base::time::rfc3339_from_ms(clock.wall_ms()),
                ok: false,
                errors: vec![],
                warnings: vec![],
            },
            started: clock.now(),
            identities: IdentityCache::new(world.accounts, Arc::clone(&clock)),
            limiter: RateLimiter::new(settings.limits.requests_per_second, settings.limits.burst),
            // Twice the request rate, and at least 20/s (burst 40): a client makes one
            // connection per request or fewer, so this only stops connecting without asking
            // (the request limit answers first).
            conn_limiter: RateLimiter::new(
                settings
                    .limits
                    .requests_per_second
                    .saturating_mul(2)
                    .max(20),
                settings.limits.burst.saturating_mul(2).max(40),
            ),
            conns_total: 0,
            conns_by_uid: HashMap::new(),
            running: 0,
            leases: LeaseBook::new(world.journal, world.leases),
            sessions: world.sessions,
            auth_cache: Default::default(),
            clock,
            groupdb: world.groups,
            edits: EditBook::new(world.editor),
            procs: world.procs,
            audit: world.audit,
            audit_history: world.audit_history,
            policy_source: world.policy,
            terminals: world.terminals,
            setgid: Default::default(),
            events: tx.clone(),
            bus,
            settings,
        };
        state.load_policy();
        let core = Core {
            state,
            rx,
            damage,
            journal_damaged,
        };
        (core, Handle::new(tx))
    }

    pub fn policy_digest(&self) -> &str {
        &self.state.policy.digest
    }

    /// Before serving: record damaged state, finish what a crash or downtime left (expired
    /// leases, memberships).
    pub async fn start(&mut self) {
        self.state.report_damage(std::mem::take(&mut self.damage));
        if std::mem::take(&mut self.journal_damaged) {
            self.state.reclaim_after_damage().await;
        }
        self.state.reconcile_leases().await;
        // The audit log's tail, read once for both questions of the moments before a crash.
        let recent = self.state.recent_lease_records();
        self.state.audit_unaudited_endings(Some(&recent)).await;
        self.state.audit_unjournaled_requests(&recent).await;
        self.state.reconcile_sessions();
    }

    /// Serve for the life of the process, ticking every [`TICK`].
    pub async fn run(self) {
        let ticker = self.state.events.clone();
        tokio::spawn(async move {
            // Expiry is checked against the wall clock on every tick, so a suspend or a
            // clock jump is honoured within one tick (deadlines are UTC instants).
            let mut iv = tokio::time::interval(TICK);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                iv.tick().await;
                if ticker.send(Event::Tick { done: None }).await.is_err() {
                    break;
                }
            }
        });
        self.serve().await
    }

    /// Serve without the periodic tick (tests tick by hand): events from the queue, and the
    /// outcomes of group edits that took longer than the core waited for them.
    async fn serve(mut self) {
        loop {
            tokio::select! {
                ev = self.rx.recv() => match ev {
                    Some(ev) => self.state.handle(ev).await,
                    None => break,
                },
                Some(done) = self.state.edits.next_done() => self.state.edit_done(done).await,
            }
        }
    }
}

impl State {
    async fn handle(&mut self, ev: Event) {
        match ev {
            Event::Open { uid, reply } => {
                let _ = reply.send(self.admit(uid));
            }
            Event::Close { uid } => self.release(uid),
            Event::Decide {
                mut peer,
                req,
                dry_run,
                reply,
            } => {
                let d = self.decide(&mut peer, &req, dry_run);
                let _ = reply.send((peer, d));
            }
            Event::DecideWith {
                mut peer,
                req,
                reply,
            } => {
                let d = self.decide_with(&mut peer, &req);
                let _ = reply.send((peer, d));
            }
            Event::List { mut peer, reply } => {
                let r = self.list(&mut peer);
                let _ = reply.send(r);
            }
            Event::Status { reply } => {
                let _ = reply.send(Response::Status(self.status()));
            }
            Event::Reload { reply } => {
                if self.load_policy() {
                    self.reevaluate_leases().await;
                }
                let _ = reply.send(self.last_reload.clone());
            }
            Event::CommandStarted => self.running += 1,
            Event::CommandEnded => self.running = self.running.saturating_sub(1),
            Event::Lease {
                mut peer,
                op,
                reply,
            } => {
                let r = self.lease_op(&mut peer, op).await;
                let _ = reply.send(r);
            }
            Event::Wait { uid, id, reply } => self.wait_lease(uid, id, reply),
            Event::Audience { id, uids, reply } => {
                let _ = reply.send(self.audience(id, &uids));
            }
            Event::Tick { done } => {
                self.tick().await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Event::BoundExited { id } => self.bound_exited(id).await,
            Event::Login {
                mut peer,
                op,
                reply,
            } => {
                let r = self.login_op(&mut peer, op).await;
                let _ = reply.send(r);
            }
            Event::LogindSession { session, logind_id } => self.logind_session(session, logind_id),
            Event::SetgidSwept(report) => self.setgid_swept(*report),
        }
    }

    /// The rate limit every request from a user passes first.
    fn rate_limited(&mut self, uid: Uid) -> Option<ErrorReply> {
        let now = self.clock.now();
        (!self.limiter.allow(uid, now)).then(|| ErrorReply {
            kind: ErrorKind::RateLimited,
            message: "too many requests from your user; slow down and retry".into(),
        })
    }

    /// The boot clock now, with this boot's id (`None` if either is unavailable).
    fn boot_stamp(&self) -> Option<BootStamp> {
        let ms = elevate_base::duration::millis(self.clock.boottime()?);
        Some(BootStamp {
            boot_id: self.clock.boot_id()?,
            ms,
        })
    }

    fn now_rfc3339(&self) -> String {
        elevate_base::time::rfc3339_from_ms(self.clock.wall_ms())
    }
}

fn busy(msg: &str) -> ErrorReply {
    ErrorReply {
        kind: ErrorKind::Busy,
        message: msg.to_string(),
    }
}

/// uid `uid` is not a user here: the refusal every operation gives.
fn no_account(uid: Uid) -> ErrorReply {
    ErrorReply {
        kind: ErrorKind::BadRequest,
        message: format!("uid {uid} has no user account on this host"),
    }
}
