//! Endings in batches, reload re-evaluation, and what a core starting over a journal does.

use super::*;
use crate::lease::model::{EndReason, LeaseState};

#[tokio::test]
async fn a_thousand_leases_due_together_end_in_one_group_rewrite() {
    let w = machine();
    let users: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
    for (i, name) in users.iter().enumerate() {
        w.user(name, 20_000 + i as u32);
    }
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    w.group("staff", 4003, &names);
    let h = boot(&w).await;
    for i in 0..1000u32 {
        let l = lease(op(&h, 20_000 + i, LeaseOp::Request(request("ops"))).await);
        assert_eq!(l.state, LeaseState::Active);
    }
    assert_eq!(w.machine().members("pgadmin").len(), 1000);
    let before = w.machine().group_rewrites;
    w.advance(Duration::from_secs(601));
    tick(&h).await;
    let m = w.machine();
    assert_eq!(
        m.group_rewrites - before,
        1,
        "one rewrite for the whole batch"
    );
    assert!(m.members("pgadmin").is_empty() && m.members("ops").is_empty());
    let expired = m.events().iter().filter(|e| **e == "lease.expired").count();
    assert_eq!(expired, 1000);
    assert!(m.journaled().values().all(|l| l.state == LeaseState::Ended));
}

#[tokio::test]
async fn nothing_ends_before_its_time() {
    let w = machine();
    let h = boot(&w).await;
    lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    w.advance(Duration::from_secs(599));
    tick(&h).await;
    assert_eq!(w.machine().members("ops"), ["alice"]);
    w.advance(Duration::from_secs(1));
    tick(&h).await;
    assert!(w.machine().members("ops").is_empty());
}

#[tokio::test]
async fn a_reload_that_takes_the_profile_away_ends_its_leases() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    let without_ops = POLICY.replace("name = \"ops\"", "name = \"ops-renamed\"");
    w.machine().policy = Some(without_ops);
    let report = h.reload().await.expect("core");
    assert!(report.ok, "{:?}", report.errors);
    let m = w.machine();
    let l = &m.journaled()[&id];
    assert_eq!(l.state, LeaseState::Ended);
    assert_eq!(l.end_reason, Some(EndReason::PolicyChanged));
    assert!(m.members("ops").is_empty());
}

#[tokio::test]
async fn a_broken_reload_keeps_the_policy_and_the_leases() {
    let w = machine();
    let h = boot(&w).await;
    lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    w.machine().policy = Some("[[profile]]\nname = ".into());
    let report = h.reload().await.expect("core");
    assert!(!report.ok && !report.errors.is_empty());
    assert_eq!(w.machine().members("ops"), ["alice"]);
}

#[tokio::test]
async fn a_core_starting_after_the_deadline_ends_the_lease_before_serving() {
    let w = machine();
    let h = boot(&w).await;
    lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    drop(h);
    w.advance(Duration::from_secs(3600));
    let _h = boot(&w).await;
    let m = w.machine();
    assert!(m.members("ops").is_empty() && m.members("pgadmin").is_empty());
    assert!(m.events().contains(&"lease.expired"));
}

#[tokio::test]
async fn a_core_starting_over_an_unapplied_grant_applies_it() {
    let w = machine();
    let h = boot(&w).await;
    lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    drop(h);
    // As if the daemon stopped between journaling the grant and editing /etc/group.
    {
        let mut m = w.machine();
        m.groups.get_mut("ops").expect("ops").1.clear();
        m.groups.get_mut("pgadmin").expect("pgadmin").1.clear();
        let mut l = m.journal.last().cloned().expect("a record");
        for g in &mut l.grants {
            g.applied = false;
        }
        m.journal.push(l);
    }
    let _h = boot(&w).await;
    assert_eq!(w.machine().members("ops"), ["alice"]);
    assert_eq!(w.machine().members("pgadmin"), ["alice"]);
}

#[tokio::test]
async fn pending_requests_expire_after_the_pending_ttl() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("db"))).await).id;
    w.advance(Duration::from_secs(3601));
    tick(&h).await;
    let l = &w.machine().journaled()[&id];
    assert_eq!(l.end_reason, Some(EndReason::RequestExpired));
}

#[tokio::test]
async fn a_missing_policy_directory_keeps_the_last_good_policy_and_the_leases() {
    let w = machine();
    let h = boot(&w).await;
    lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    w.machine().policy = None;
    let report = h.reload().await.expect("core");
    assert!(!report.ok);
    assert!(
        report.errors[0].contains("does not exist; keeping the previous policy"),
        "{:?}",
        report.errors
    );
    assert_eq!(w.machine().members("ops"), ["alice"], "no lease ended");
    // An empty directory that is there is a policy: nothing allowed, leases end.
    w.machine().policy = Some(String::new());
    let report = h.reload().await.expect("core");
    assert!(report.ok, "{:?}", report.errors);
    assert!(w.machine().members("ops").is_empty());
}

#[tokio::test]
async fn a_core_starting_without_a_policy_directory_allows_nothing() {
    let w = machine();
    w.machine().policy = None;
    let h = boot(&w).await;
    let why = refusal(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    assert!(why.contains("no such profile"), "{why}");
    w.machine().policy = Some(POLICY.into());
    assert!(h.reload().await.expect("core").ok);
    lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
}

/// The wall clock moved back an hour does not stretch a lease: it ends after its duration of
/// boot time (issue 11: a 5-second lease stayed active for an hour).
#[tokio::test]
async fn moving_the_wall_clock_back_does_not_stretch_a_lease() {
    let w = machine();
    let h = boot(&w).await;
    lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    let start = w.machine().wall_ms;
    w.set_wall(start - 3_600_000);
    w.advance(Duration::from_secs(599));
    tick(&h).await;
    assert_eq!(w.machine().members("ops"), ["alice"], "599 s of 600");
    w.advance(Duration::from_secs(1));
    tick(&h).await;
    assert!(
        w.machine().members("ops").is_empty(),
        "600 s of boot time, whatever the wall says"
    );
}

/// A forward jump of the wall clock ends leases as their wall deadline says; after a reboot
/// (another boot id) the boot clock no longer compares and the wall deadline rules.
#[tokio::test]
async fn a_forward_jump_ends_leases_and_a_reboot_falls_back_to_the_wall_clock() {
    let w = machine();
    let h = boot(&w).await;
    lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    let start = w.machine().wall_ms;
    w.set_wall(start + 3_600_000);
    tick(&h).await;
    assert!(w.machine().members("ops").is_empty(), "a forward jump");
    drop(h);
    let w = machine();
    let h = boot(&w).await;
    lease(op(&h, BOB, LeaseOp::Request(request("ops"))).await);
    drop(h);
    {
        let mut m = w.machine();
        m.boot_id = "boot-2".into();
        m.mono = Duration::ZERO;
    }
    let h = boot(&w).await;
    assert_eq!(
        w.machine().members("ops"),
        ["bob"],
        "a new boot: the wall clock says 600 s left"
    );
    let wall = w.machine().wall_ms;
    w.set_wall(wall + 600_000);
    tick(&h).await;
    assert!(w.machine().members("ops").is_empty());
}

/// A suspend counts: the boot clock runs on while the wall clock may be corrected back.
#[tokio::test]
async fn the_boot_clock_is_journaled_with_the_lease() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    let l = &w.machine().journaled()[&id];
    let stamp = l
        .activated_boot
        .as_ref()
        .expect("activated on the boot clock");
    assert_eq!(stamp.boot_id, "boot-1");
}

/// A damaged lease journal at start-up (its records for alice's ops lease lost): the core
/// says so in the audit log and takes back the memberships no readable lease accounts for —
/// only in groups the policy grants, and never one a readable record calls standing.
#[tokio::test]
async fn a_damaged_journal_is_reported_and_unaccounted_memberships_are_taken_back() {
    let w = machine();
    w.group("ops", OPS, &["carol"]); // carol's membership is standing
    w.group("audit-only", 4100, &["alice"]); // a group no profile grants
    let h = boot(&w).await;
    lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    lease(op(&h, CAROL, LeaseOp::Request(request("ops"))).await);
    drop(h);
    {
        let mut m = w.machine();
        // Alice's records are lost; carol's (standing in ops) remain.
        m.journal.retain(|l| l.user != "alice");
        m.damage = vec!["the lease journal had 2 unreadable line(s)".into()];
        m.journal_damaged = true;
    }
    let _h = boot(&w).await;
    let m = w.machine();
    assert!(m.events().contains(&"state.damaged"));
    assert_eq!(
        m.members("ops"),
        ["carol"],
        "alice's unaccounted membership is taken back"
    );
    assert!(!m.members("pgadmin").contains(&"alice".to_string()));
    assert_eq!(
        m.members("audit-only"),
        ["alice"],
        "a group no profile grants is not touched"
    );
}
