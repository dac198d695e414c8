//! Group edits off the core's task: another program holding `/etc/.pwd.lock` (useradd,
//! vipw) delays the edit, never the decisions, `status` or the ending itself; meanwhile a
//! new lease shows as granting and `status` shows the edit waiting.

use super::*;
use elevate_proto::LeaseState;

/// The core waits this long for an edit before going on without it.
const WAIT: Duration = Duration::from_millis(20);

fn impatient() -> Arc<Settings> {
    let mut s = (*settings()).clone();
    s.group_edit_wait = WAIT;
    Arc::new(s)
}

fn status(r: Response) -> elevate_proto::StatusReply {
    match r {
        Response::Status(s) => s,
        other => panic!("expected a status, got {other:?}"),
    }
}

/// Let the core run until `done` holds (the editor's outcome arrives through its loop).
async fn until(w: &FakeWorld, done: impl Fn(&FakeWorld) -> bool) {
    for _ in 0..2000 {
        if done(w) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("gave up waiting");
}

/// Let the core run until it has seen to every group edit's outcome.
async fn settled(h: &Handle) {
    for _ in 0..2000 {
        if status(h.status().await.expect("core running")).group_edits_pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("group edits still pending");
}

#[tokio::test]
async fn a_held_lock_delays_the_removal_not_the_daemon() {
    let w = machine();
    let h = boot_with(&w, impatient()).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    assert_eq!(w.machine().members("ops"), ["alice"]);
    w.machine().group_lock_held = true;
    let started = std::time::Instant::now();
    let l = lease(op(&h, ALICE, LeaseOp::Revoke { id, reason: None }).await);
    assert_eq!(
        l.state,
        LeaseState::Ended,
        "the ending is journaled at once"
    );
    let st = status(h.status().await.unwrap());
    assert_eq!(st.group_edits_pending, 1);
    let d = run(&h, ALICE, &["systemctl", "restart", "nginx.service"]).await;
    assert!(matches!(d, Decision::Allow(_)), "{d:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the revoke, status and a decision answered while the lock is held"
    );
    assert_eq!(w.machine().members("ops"), ["alice"], "still locked");
    w.machine().group_lock_held = false;
    until(&w, |w| w.machine().members("ops").is_empty()).await;
    settled(&h).await;
    assert!(w.machine().members("pgadmin").is_empty());
    let removed = w
        .machine()
        .events()
        .iter()
        .filter(|e| **e == "group.removed")
        .count();
    assert_eq!(removed, 2, "each removal audited once");
}

#[tokio::test]
async fn a_lease_granted_behind_a_held_lock_shows_as_granting() {
    let w = machine();
    let h = boot_with(&w, impatient()).await;
    w.machine().group_lock_held = true;
    let l = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    assert_eq!(l.state, LeaseState::Active);
    assert_eq!(l.granting, ["pgadmin", "ops"], "not in force yet");
    w.machine().group_lock_held = false;
    until(&w, |w| w.machine().members("ops") == ["alice"]).await;
    settled(&h).await;
    let l = lease(h.wait(Uid(ALICE), l.id).await.unwrap());
    assert!(l.granting.is_empty(), "{:?}", l.granting);
    assert_eq!(w.machine().members("pgadmin"), ["alice"]);
}

/// Revoked while its grant waits for the lock: the add and then the removal happen in that
/// order, and nothing is left.
#[tokio::test]
async fn a_lease_revoked_while_granting_leaves_nothing() {
    let w = machine();
    let h = boot_with(&w, impatient()).await;
    w.machine().group_lock_held = true;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    lease(op(&h, ALICE, LeaseOp::Revoke { id, reason: None }).await);
    w.machine().group_lock_held = false;
    until(&w, |w| w.machine().group_rewrites == 2).await;
    settled(&h).await;
    let m = w.machine();
    assert!(m.members("ops").is_empty() && m.members("pgadmin").is_empty());
    let journaled = m.journaled();
    assert!(journaled[&id].applied_grants().next().is_none());
}

/// Two of bob's leases grant pgadmin, both waiting for the lock, and the first is revoked
/// meanwhile: the membership stays with the second, which records it as its own.
#[tokio::test]
async fn a_membership_two_leases_wait_for_stays_with_the_one_left() {
    let w = machine();
    let h = boot_with(&w, impatient()).await;
    w.machine().group_lock_held = true;
    let first = lease(op(&h, BOB, LeaseOp::Request(request("ops"))).await).id;
    let second = lease(op(&h, BOB, LeaseOp::Request(request("db"))).await).id;
    for approver in [CAROL, DAVE] {
        let approve = LeaseOp::Approve {
            id: second,
            comment: None,
        };
        lease(op(&h, approver, approve).await);
    }
    lease(
        op(
            &h,
            BOB,
            LeaseOp::Revoke {
                id: first,
                reason: None,
            },
        )
        .await,
    );
    w.machine().group_lock_held = false;
    until(&w, |w| w.machine().group_rewrites >= 3).await;
    settled(&h).await;
    {
        let m = w.machine();
        assert_eq!(m.members("pgadmin"), ["bob"], "the second lease is active");
        assert!(m.members("ops").is_empty(), "only the first granted ops");
        let journaled = m.journaled();
        assert!(journaled[&first].applied_grants().next().is_none());
        assert_eq!(journaled[&second].applied_grants().count(), 1);
    }
    lease(
        op(
            &h,
            BOB,
            LeaseOp::Revoke {
                id: second,
                reason: None,
            },
        )
        .await,
    );
    until(&w, |w| w.machine().members("pgadmin").is_empty()).await;
    settled(&h).await;
    let m = w.machine();
    let removed: Vec<_> = m
        .audit
        .iter()
        .filter(|(e, _, _)| e.as_str() == "group.removed")
        .collect();
    assert_eq!(
        removed.len(),
        2,
        "ops with the first lease, pgadmin with the second: {removed:?}"
    );
}
