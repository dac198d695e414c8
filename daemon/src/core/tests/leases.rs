//! Lease transitions through the core: request, N-of-M approval, self-approval, deny, extend
//! within the maximum, revoke, break-glass, and a lease bound to a process.

use super::*;
use elevate_proto::{EndReason, LeaseState};

#[tokio::test]
async fn a_self_approved_request_is_active_at_once_and_its_groups_are_added() {
    let w = machine();
    let h = boot(&w).await;
    let l = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    assert_eq!(l.state, LeaseState::Active);
    assert_eq!(l.duration_secs, 600, "the profile's default_duration");
    assert_eq!(l.grant_groups, ["pgadmin", "ops"]);
    let m = w.machine();
    assert_eq!(m.members("pgadmin"), ["alice"]);
    assert_eq!(m.members("ops"), ["alice"]);
    assert_eq!(m.group_rewrites, 1, "both groups in one rewrite");
    let events = m.events();
    let at = |e| events.iter().position(|x| *x == e).unwrap_or(usize::MAX);
    assert!(at("lease.requested") < at("lease.activated"));
    assert!(at("lease.activated") < at("group.added"), "{events:?}");
}

#[tokio::test]
async fn two_of_n_approvals_activate_and_the_requester_never_approves() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("db"))).await).id;
    let own = refusal(op(&h, ALICE, LeaseOp::Approve { id, comment: None }).await);
    assert!(own.contains("your own"), "{own}");
    // Bob is eligible for the profile but not an approver: the lease is not even visible.
    let bob = refusal(op(&h, BOB, LeaseOp::Approve { id, comment: None }).await);
    assert!(bob.contains(&format!("no lease or request {id}")), "{bob}");
    let l = lease(
        op(
            &h,
            CAROL,
            LeaseOp::Approve {
                id,
                comment: Some("ok".into()),
            },
        )
        .await,
    );
    assert_eq!((l.state, l.approvals.len()), (LeaseState::Pending, 1));
    let twice = refusal(op(&h, CAROL, LeaseOp::Approve { id, comment: None }).await);
    assert!(twice.contains("already approved"), "{twice}");
    assert!(w.machine().members("pgadmin").is_empty());
    let l = lease(op(&h, DAVE, LeaseOp::Approve { id, comment: None }).await);
    assert_eq!(l.state, LeaseState::Active);
    assert_eq!(w.machine().members("pgadmin"), ["alice"]);
}

#[tokio::test]
async fn an_approver_denies_and_the_request_ends_without_groups() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("db"))).await).id;
    let reason = Some("not now".into());
    let l = lease(op(&h, CAROL, LeaseOp::Deny { id, reason }).await);
    assert_eq!(
        (l.state, l.end_reason),
        (LeaseState::Ended, Some(EndReason::Denied))
    );
    assert_eq!(l.end_comment.as_deref(), Some("not now"));
    assert!(w.machine().members("pgadmin").is_empty());
    assert!(w.machine().events().contains(&"lease.denied"));
}

#[tokio::test]
async fn extend_within_the_maximum_and_not_beyond() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    let l = lease(op(&h, ALICE, LeaseOp::Extend { id, by_secs: 1200 }).await);
    assert_eq!(l.duration_secs, 1800);
    let too_long = refusal(op(&h, ALICE, LeaseOp::Extend { id, by_secs: 3600 }).await);
    assert!(too_long.contains("1h"), "{too_long}");
    let others = refusal(op(&h, BOB, LeaseOp::Extend { id, by_secs: 60 }).await);
    assert!(
        others.contains(&format!("no lease or request {id}")),
        "{others}"
    );
}

#[tokio::test]
async fn revoke_removes_the_membership_and_ends_processes_that_carry_it() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    let shell = w.process(300, ALICE, &[ALICE, PGADMIN]);
    let unrelated = w.process(301, ALICE, &[ALICE]);
    let l = lease(op(&h, ALICE, LeaseOp::Revoke { id, reason: None }).await);
    assert_eq!(l.end_reason, Some(EndReason::Revoked));
    assert!(w.machine().members("pgadmin").is_empty());
    assert!(w.machine().members("ops").is_empty());
    // TERM goes out from the tick once TERM_DELAY has passed: the answer first.
    tick(&h).await;
    assert!(w.machine().signals.is_empty(), "not before TERM_DELAY");
    w.advance(crate::core::grants::TERM_DELAY);
    tick(&h).await;
    let m = w.machine();
    assert_eq!(m.signals, [(shell.pid, libc::SIGTERM)]);
    assert!(m.procs.contains_key(&unrelated.pid));
    let removed = m.events().iter().filter(|e| **e == "group.removed").count();
    assert_eq!(removed, 2, "{:?}", m.events());
}

#[tokio::test]
async fn a_standing_member_keeps_the_group_after_the_lease() {
    let w = machine();
    w.group("ops", OPS, &["bob"]);
    let h = boot(&w).await;
    let id = lease(op(&h, BOB, LeaseOp::Request(request("ops"))).await).id;
    assert_eq!(w.machine().members("ops"), ["bob"]);
    lease(op(&h, BOB, LeaseOp::Revoke { id, reason: None }).await);
    assert_eq!(
        w.machine().members("ops"),
        ["bob"],
        "standing: never removed"
    );
    assert!(w.machine().members("pgadmin").is_empty());
}

#[tokio::test]
async fn break_glass_is_active_at_once_and_loud() {
    let w = machine();
    let h = boot(&w).await;
    let plain = refusal(op(&h, ALICE, LeaseOp::Request(request("glass"))).await);
    assert!(plain.contains("emergencies only"), "{plain}");
    let mut req = request("glass");
    req.break_glass = true;
    let l = lease(op(&h, ALICE, LeaseOp::Request(req)).await);
    assert!(l.break_glass && l.state == LeaseState::Active);
    let m = w.machine();
    assert!(m.events().contains(&"lease.break_glass"));
    let (to, msg) = m.notices.first().expect("a notice to admins");
    assert_eq!(to.iter().copied().collect::<Vec<_>>(), [Uid(DAVE)]);
    assert!(
        msg.contains("BREAK-GLASS") && msg.contains("alice"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_lease_bound_to_a_process_ends_when_it_exits() {
    let w = machine();
    let job = w.process(400, ALICE, &[ALICE]);
    let h = boot(&w).await;
    let mut req = request("ops");
    req.bind_pid = Some(job.pid);
    let id = lease(op(&h, ALICE, LeaseOp::Request(req)).await).id;
    let mut someone_elses = request("ops");
    someone_elses.bind_pid = Some(w.process(401, BOB, &[]).pid);
    let refused = refusal(op(&h, CAROL, LeaseOp::Request(someone_elses)).await);
    assert!(refused.contains("do not own process 401"), "{refused}");
    w.machine().exit(job.pid);
    // The watch reports the exit through the core's own queue; a status round-trip later
    // the ending has been handled.
    for _ in 0..100 {
        tokio::task::yield_now().await;
        let _ = h.status().await;
        if w.machine().members("ops").is_empty() {
            break;
        }
    }
    let l = lease(
        op(&h, ALICE, LeaseOp::List { all: false })
            .await
            .leases_one(id),
    );
    assert_eq!(l.end_reason, Some(EndReason::ProcessExited));
    assert!(w.machine().members("ops").is_empty());
}

#[tokio::test]
async fn a_duplicate_request_and_an_ineligible_user_are_refused() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    let again = refusal(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    assert!(
        again.contains(&format!("already have lease {id}")),
        "{again}"
    );
    let dave = refusal(op(&h, DAVE, LeaseOp::Request(request("ops"))).await);
    assert!(dave.contains("not eligible"), "{dave}");
}

/// Picking one lease out of a `leases` answer.
trait LeasesOne {
    fn leases_one(self, id: u64) -> Response;
}

impl LeasesOne for Response {
    fn leases_one(self, id: u64) -> Response {
        match self {
            Response::Leases { leases } => Response::Lease(
                leases
                    .into_iter()
                    .find(|l| l.id == id)
                    .expect("the lease is listed"),
            ),
            other => other,
        }
    }
}

#[tokio::test]
async fn a_process_that_ignores_term_gets_kill_after_the_grace() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    let stubborn = w.process(500, ALICE, &[OPS]);
    w.machine()
        .procs
        .get_mut(&stubborn.pid)
        .expect("proc")
        .ignores_term = true;
    // A set-uid program: real uid someone else, effective uid alice.
    let setuid = w.process(501, BOB, &[PGADMIN]);
    w.machine().procs.get_mut(&setuid.pid).expect("proc").euid = Uid(ALICE);
    lease(op(&h, ALICE, LeaseOp::Revoke { id, reason: None }).await);
    w.advance(crate::core::grants::TERM_DELAY);
    tick(&h).await;
    {
        let m = w.machine();
        assert!(m.procs.contains_key(&stubborn.pid), "TERM ignored");
        assert!(
            !m.procs.contains_key(&setuid.pid),
            "found by effective uid, ended"
        );
    }
    w.advance(Duration::from_millis(settings().limits.kill_grace_ms - 1));
    tick(&h).await;
    assert!(
        w.machine().procs.contains_key(&stubborn.pid),
        "not before the grace"
    );
    w.advance(Duration::from_millis(1));
    tick(&h).await;
    let m = w.machine();
    assert!(!m.procs.contains_key(&stubborn.pid));
    let signals: Vec<i32> = m
        .signals
        .iter()
        .filter(|(p, _)| *p == Pid(500))
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(signals, [libc::SIGTERM, libc::SIGKILL]);
}

#[tokio::test]
async fn signals_reach_only_those_whose_list_shows_the_lease() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("db"))).await).id;
    let who: Vec<Uid> = [ALICE, BOB, CAROL, DAVE].into_iter().map(Uid).collect();
    // The holder, an approver (carol leads), an admin (dave); never bob.
    assert_eq!(
        h.audience(id, who.clone()).await,
        Ok(vec![true, false, true, true])
    );
    let bidi = Some("done\u{202e}".to_string());
    let r = refusal(op(&h, ALICE, LeaseOp::Revoke { id, reason: bidi }).await);
    assert!(r.contains("reason contains U+202E"), "{r}");
    let _ = lease(op(&h, ALICE, LeaseOp::Revoke { id, reason: None }).await);
    // Ended, it is no longer a request carol may approve: her list does not show it.
    assert_eq!(
        h.audience(id, who).await,
        Ok(vec![true, false, false, true])
    );
    assert_eq!(h.audience(9999, vec![Uid(DAVE)]).await, Ok(vec![false]));
}
