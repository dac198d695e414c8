//! Unit tests of the core over the in-memory machine ([`FakeWorld`]): no root, no files but
//! a temporary policy file, milliseconds each. The core runs on its own task exactly as in the
//! daemon and is asked through its [`Handle`]; time moves only when a test moves it.
//!
//! | file | what |
//! |---|---|
//! | `decide.rs` | standing and leased runs, run-as, host scoping, rate limits |
//! | `leases.rs` | request, N-of-M approval, self-approval, deny, extend, revoke, break-glass, bound processes |
//! | `expiry.rs` | expiry batches, reload re-evaluation, start-up reconciliation |
//! | `crash.rs` | a grant and an ending stopped at every step, then a restarted core |
//! | `edits.rs` | group edits behind a held `/etc/.pwd.lock`: the daemon goes on |
//! | `full.rs` | a full state directory: what grants is refused, endings take effect |

mod crash;
mod decide;
mod edits;
mod expiry;
mod full;
mod leases;

use super::{Core, Decision, Handle, LeaseOp};
use crate::effects::fake::FakeWorld;
use crate::peer::Peer;
use crate::settings::Settings;
pub use elevate_base::{Gid, Pid, Uid};
use elevate_policy::{config::Limits, HostInfo};
use elevate_proto::{LeaseInfo, LeaseRequest, Response, RunRequest};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const ALICE: u32 = 1000;
pub const BOB: u32 = 1001;
pub const CAROL: u32 = 1002;
pub const DAVE: u32 = 1003;
pub const PGADMIN: u32 = 5000;
pub const OPS: u32 = 5001;

/// The policy every test starts from.
pub const POLICY: &str = r#"
[admin]
groups = ["sre"]
auditors = ["group:auditors"]

[[profile]]
name = "web"
users = ["alice"]
[[profile.command]]
path = "/usr/bin/systemctl"
args = ["restart", { one_of = ["nginx.service"] }]

[[profile]]
name = "elsewhere"
hosts = ["web-*"]
users = ["alice"]
[[profile.command]]
path = "/usr/bin/uptime"

[[profile]]
name = "db"
users = ["alice", "bob"]
run_as = "postgres"
access = "lease"
default_duration = "30m"
max_duration = "2h"
approval = { approvers = ["group:leads"], count = 2 }
grant_groups = ["pgadmin"]
[[profile.command]]
path = "/usr/bin/psql"

[[profile]]
name = "ops"
users = ["alice", "bob", "carol"]
groups = ["staff"]
access = "lease"
default_duration = "10m"
max_duration = "1h"
grant_groups = ["pgadmin", "ops"]
[[profile.command]]
path = "/usr/bin/id"

[[profile]]
name = "glass"
users = ["alice"]
access = "lease"
break_glass = true
max_duration = "1h"
[[profile.command]]
path = "/usr/bin/id"
"#;

/// Users, groups and commands the policy names. Carol leads; dave leads and is an admin.
pub fn machine() -> FakeWorld {
    let w = FakeWorld::new(POLICY);
    w.user("root", 0)
        .user("alice", ALICE)
        .user("bob", BOB)
        .user("carol", CAROL)
        .user("dave", DAVE)
        .user("postgres", 70)
        .group("leads", 4000, &["carol", "dave"])
        .group("sre", 4001, &["dave"])
        .group("auditors", 4002, &[])
        .group("pgadmin", PGADMIN, &[])
        .group("ops", OPS, &[])
        .group("staff", 4003, &[])
        .executable("/usr/bin/systemctl")
        .executable("/usr/bin/uptime")
        .executable("/usr/bin/psql")
        .executable("/usr/bin/id");
    w.machine().ttys.insert(Uid(DAVE));
    w
}

pub fn settings() -> Arc<Settings> {
    Arc::new(Settings {
        socket: PathBuf::from("/nonexistent/elevated.sock"),
        policy_dir: PathBuf::from("/nonexistent/policy.d"),
        state_dir: PathBuf::from("/nonexistent/state"),
        audit_log: PathBuf::from("/nonexistent/audit.jsonl"),
        host: HostInfo {
            name: "db-1".into(),
            labels: BTreeMap::new(),
        },
        limits: Limits {
            requests_per_second: 1000,
            burst: 1000,
            ..Limits::default()
        },
        notify_command: None,
        pending_ttl: Duration::from_secs(3600),
        // The fake's edits take microseconds; wait for them as long as a slow test machine
        // may need (tests of a held lock set their own).
        group_edit_wait: Duration::from_secs(10),
        setgid_scan: vec![],
    })
}

/// A core serving on its own task; dropping it stops the core (a crash, as far as the
/// machine is concerned: only what reached the machine remains).
pub struct Booted {
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
}

impl std::ops::Deref for Booted {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A core (re)starting on `w`: reconciled, serving on its own task, no periodic tick.
pub async fn boot(w: &FakeWorld) -> Booted {
    boot_with(w, settings()).await
}

pub async fn boot_with(w: &FakeWorld, settings: Arc<Settings>) -> Booted {
    let (bus, _) = tokio::sync::broadcast::channel(16);
    let (mut core, handle) = Core::new(settings, w.world(), bus);
    core.start().await;
    let task = tokio::spawn(core.serve());
    Booted { handle, task }
}

pub fn peer(uid: u32) -> Peer {
    Peer::for_uid(uid)
}

pub async fn run(h: &Handle, uid: u32, argv: &[&str]) -> Decision {
    let req = RunRequest {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        profile: None,
        run_as: None,
        env: vec![],
    };
    h.decide(peer(uid), req, false)
        .await
        .map(|(_, d)| d)
        .expect("core running")
}

pub fn request(profile: &str) -> LeaseRequest {
    LeaseRequest {
        profile: profile.into(),
        reason: Some("tests".into()),
        ..Default::default()
    }
}

/// The lease in an answer, or the answer itself as the failure.
pub fn lease(r: Response) -> LeaseInfo {
    match r {
        Response::Lease(l) => l,
        other => panic!("expected a lease, got {other:?}"),
    }
}

/// The sentence of a refusal (denial or error).
pub fn refusal(r: Response) -> String {
    match r {
        Response::Denied(d) => d.reason,
        Response::Error(e) => e.message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub async fn op(h: &Handle, uid: u32, op: LeaseOp) -> Response {
    h.lease(peer(uid), op).await
}

pub async fn tick(h: &Handle) {
    h.tick().await.expect("core running");
}
