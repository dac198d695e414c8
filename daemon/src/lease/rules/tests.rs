//! The lease rules, table by table, with a fake clock.

use super::*;
use crate::lease::model::{EndReason, LeaseState};

/// A ticket pattern as the policy compiles it.
fn ticket_pattern(source: &str) -> TicketPattern {
    let text = format!(
        "[[profile]]\nname = \"p\"\nusers = [\"u\"]\naccess = \"lease\"\nticket = {source:?}\n[[profile.command]]\npath = \"/bin/true\"\n"
    );
    let sys = elevate_policy::FakeSystem::new()
        .user("u")
        .executable("/bin/true");
    let (profiles, diags) = elevate_policy::parse_str(std::path::Path::new("t.toml"), &text, &sys);
    assert!(
        diags
            .iter()
            .all(|d| d.severity != elevate_policy::Severity::Error),
        "{diags:?}"
    );
    profiles[0].ticket.clone().expect("a ticket pattern")
}

fn rules() -> LeaseRules {
    LeaseRules {
        profile: "db".into(),
        default_duration: Duration::from_secs(1800),
        max_duration: Some(Duration::from_secs(7200)),
        require_reason: true,
        ticket: Some(ticket_pattern("(INC|CHG)-[0-9]+")),
        approvals_needed: 2,
        ..LeaseRules::default()
    }
}
const ALICE: Requester<'static> = Requester {
    uid: elevate_base::Uid(1000),
    user: "alice",
};
const BOB: Requester<'static> = Requester {
    uid: elevate_base::Uid(1001),
    user: "bob",
};
const CAROL: Requester<'static> = Requester {
    uid: elevate_base::Uid(1002),
    user: "carol",
};

fn req<'a>(reason: Option<&'a str>, ticket: Option<&'a str>, dur: Option<u64>) -> NewRequest<'a> {
    NewRequest {
        duration: dur.map(Duration::from_secs),
        reason,
        ticket,
        break_glass: false,
    }
}

#[test]
fn request_validation_table() {
    let r = rules();
    let ttl = Duration::from_secs(3600);
    let cases: &[(NewRequest<'_>, bool)] = &[
        (req(Some("fix"), Some("INC-1"), None), true),
        (req(None, Some("INC-1"), None), false),
        (req(Some("  "), Some("INC-1"), None), false),
        (req(Some("fix"), None, None), false),
        (req(Some("fix"), Some("INC-"), None), false),
        (req(Some("fix"), Some("xINC-1"), None), false),
        (req(Some("fix"), Some("INC-1x"), None), false),
        (req(Some("fix"), Some("CHG-22"), Some(7200)), true),
        (req(Some("fix"), Some("CHG-22"), Some(7201)), false),
        (req(Some("fix"), Some("CHG-22"), Some(0)), false),
        (req(Some("a\nb"), Some("INC-1"), None), false),
    ];
    for (i, (rq, ok)) in cases.iter().enumerate() {
        assert_eq!(
            new_lease(1, &ALICE, rq, &r, 0, ttl).is_ok(),
            *ok,
            "case {i}"
        );
    }
    let l = new_lease(1, &ALICE, &cases[0].0, &r, 5, ttl).unwrap();
    assert_eq!(l.state, LeaseState::Pending);
    assert_eq!(l.pending_until_ms, Some(5 + 3_600_000));
    assert_eq!(l.duration_ms, 1_800_000);
}

#[test]
fn maximum_is_stated_in_the_refusal() {
    let e = new_lease(
        1,
        &ALICE,
        &req(Some("x"), Some("INC-1"), Some(9000)),
        &rules(),
        0,
        Duration::from_secs(60),
    )
    .unwrap_err();
    assert!(
        matches!(e, Refusal::Denied { ref reason, .. } if reason.contains("maximum of 2h")),
        "{e:?}"
    );
}

#[test]
fn reasons_tickets_and_comments_are_plain_text() {
    let ttl = Duration::from_secs(60);
    for (reason, ticket, what, code) in [
        ("fix \u{202e}gnp.exe", "INC-1", "reason", "U+202E"),
        ("fix\x1b[2J", "INC-1", "reason", "U+001B"),
        ("zero\u{200b}width", "INC-1", "reason", "U+200B"),
        ("fix", "INC-1\u{2066}", "ticket", "U+2066"),
        ("fix", "\u{feff}INC-1", "ticket", "U+FEFF"),
    ] {
        let e = new_lease(
            1,
            &ALICE,
            &req(Some(reason), Some(ticket), None),
            &rules(),
            0,
            ttl,
        )
        .unwrap_err();
        assert!(
            matches!(e, Refusal::Invalid(ref m) if m.starts_with(&format!("the {what} contains {code}"))),
            "{reason:?} {ticket:?}: {e:?}"
        );
    }
    let plain = req(
        Some("schema migration — ünïcode, 日本"),
        Some("INC-1"),
        None,
    );
    assert!(new_lease(1, &ALICE, &plain, &rules(), 0, ttl).is_ok());
    let mut l = new_lease(1, &ALICE, &plain, &rules(), 0, ttl).unwrap();
    let e = approve(&mut l, &BOB, Some("ok\u{202e}"), true, 1).unwrap_err();
    assert!(
        matches!(e, Refusal::Invalid(ref m) if m.contains("comment contains U+202E")),
        "{e:?}"
    );
    assert!(l.approvals.is_empty(), "a refused approval is not recorded");
    assert!(check_text("reason", Some("done")).is_ok() && check_text("reason", None).is_ok());
}

#[test]
fn two_distinct_approvers_never_the_requester() {
    let mut l = new_lease(
        1,
        &ALICE,
        &req(Some("x"), Some("INC-1"), None),
        &rules(),
        0,
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(
        approve(&mut l, &ALICE, None, true, 1).is_err(),
        "self-approval, even if the policy lists them"
    );
    assert!(
        approve(&mut l, &BOB, None, false, 1).is_err(),
        "not an approver"
    );
    assert_eq!(approve(&mut l, &BOB, Some("ok"), true, 2), Ok(false));
    assert!(
        approve(&mut l, &BOB, None, true, 3).is_err(),
        "the same approver twice"
    );
    assert_eq!(approve(&mut l, &CAROL, None, true, 4), Ok(true));
    assert_eq!(l.state, LeaseState::Active);
    assert_eq!(l.expires_at_ms, Some(4 + 1_800_000));
    assert!(
        approve(&mut l, &CAROL, None, true, 5).is_err(),
        "no longer pending"
    );
}

#[test]
fn automatic_approval_and_break_glass() {
    let mut r = rules();
    r.approvals_needed = 0;
    let l = new_lease(
        1,
        &ALICE,
        &req(Some("x"), Some("INC-1"), None),
        &r,
        10,
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(l.state, LeaseState::Active);
    let mut bg = NewRequest {
        break_glass: true,
        ..req(Some("fire"), Some("INC-1"), None)
    };
    assert!(
        new_lease(2, &ALICE, &bg, &rules(), 0, Duration::from_secs(60)).is_err(),
        "not a break-glass profile"
    );
    let mut r = rules();
    r.break_glass = true;
    let l = new_lease(2, &ALICE, &bg, &r, 0, Duration::from_secs(60)).unwrap();
    assert!(
        l.break_glass && l.state == LeaseState::Active,
        "break-glass never waits for approval"
    );
    // A plain request for it: refused when nobody would approve it (it would be a quiet
    // break-glass), an ordinary approval request when the profile names approvers.
    let plain = req(Some("fire"), Some("INC-1"), None);
    let mut quiet = r.clone();
    quiet.approvals_needed = 0;
    let e = new_lease(4, &ALICE, &plain, &quiet, 0, Duration::from_secs(60)).unwrap_err();
    assert!(format!("{e:?}").contains("emergencies only"), "{e:?}");
    let l = new_lease(5, &ALICE, &plain, &r, 0, Duration::from_secs(60)).unwrap();
    assert!(!l.break_glass && l.state == LeaseState::Pending);
    bg.reason = None;
    assert!(
        new_lease(3, &ALICE, &bg, &r, 0, Duration::from_secs(60)).is_err(),
        "break-glass needs a reason"
    );
}

#[test]
fn extend_within_max_from_activation() {
    let mut r = rules();
    r.approvals_needed = 0;
    let mut l = new_lease(
        1,
        &ALICE,
        &req(Some("x"), Some("INC-1"), Some(3600)),
        &r,
        0,
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(extend(&mut l, Duration::from_secs(3600), r.max_duration).is_ok());
    assert_eq!(l.expires_at_ms, Some(7_200_000));
    let e = extend(&mut l, Duration::from_secs(1), r.max_duration).unwrap_err();
    assert!(matches!(e, Refusal::Denied { .. }));
}

#[test]
fn extension_needs_approval_again_never_by_the_holder() {
    let mut l = new_lease(
        1,
        &ALICE,
        &req(Some("x"), Some("INC-1"), Some(1800)),
        &rules(),
        0,
        Duration::from_secs(60),
    )
    .unwrap();
    approve(&mut l, &BOB, None, true, 0).unwrap();
    approve(&mut l, &CAROL, None, true, 0).unwrap();
    let max = rules().max_duration;
    assert!(
        request_extension(&mut l, Duration::from_secs(9000), max, 1).is_err(),
        "beyond the maximum"
    );
    request_extension(&mut l, Duration::from_secs(1800), max, 1).unwrap();
    assert!(
        request_extension(&mut l, Duration::from_secs(60), max, 1).is_err(),
        "one at a time"
    );
    assert!(
        approve_extension(&mut l, &ALICE, None, true, 2, max, 2).is_err(),
        "not by the holder"
    );
    assert_eq!(
        approve_extension(&mut l, &BOB, None, true, 2, max, 2),
        Ok(false)
    );
    assert!(
        approve_extension(&mut l, &BOB, None, true, 2, max, 2).is_err(),
        "distinct approvers"
    );
    assert_eq!(l.expires_at_ms, Some(1_800_000));
    assert_eq!(
        approve_extension(&mut l, &CAROL, None, true, 2, max, 3),
        Ok(true)
    );
    assert_eq!(l.expires_at_ms, Some(3_600_000));
    assert!(l.extension.is_none());
}

#[test]
fn due_uses_the_wall_clock_deadline() {
    let mut r = rules();
    r.approvals_needed = 0;
    let l = new_lease(
        1,
        &ALICE,
        &req(Some("x"), Some("INC-1"), Some(60)),
        &r,
        1000,
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(due(&l, 60_999, None), None);
    assert_eq!(due(&l, 61_000, None), Some(EndReason::Expired));
    let p = new_lease(
        2,
        &ALICE,
        &req(Some("x"), Some("INC-1"), None),
        &rules(),
        0,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(due(&p, 10_000, None), Some(EndReason::RequestExpired));
}

/// Whatever a client sends: no lease lasts longer than 366 days, with or without a
/// profile maximum, on request and on extension.
#[test]
fn the_daemon_enforces_the_global_ceiling() {
    let open = LeaseRules {
        profile: "open".into(),
        default_duration: Duration::from_secs(600),
        max_duration: None,
        ..LeaseRules::default()
    };
    let ttl = Duration::from_secs(3600);
    let huge = req(Some("x"), None, Some(1_000_000_000_000));
    match new_lease(1, &ALICE, &huge, &open, 0, ttl) {
        Err(Refusal::Denied { reason, hint }) => {
            assert!(
                reason.contains("longest lease elevate grants, 366d"),
                "{reason}"
            );
            assert_eq!(hint.as_deref(), Some("ask for at most 366d: --for 366d"));
        }
        other => panic!("{other:?}"),
    }
    let year = req(Some("x"), None, Some(366 * 86_400));
    let mut l = new_lease(1, &ALICE, &year, &open, 0, ttl).expect("366d is allowed");
    match extend(&mut l, Duration::from_secs(1), None) {
        Err(Refusal::Denied { reason, .. }) => {
            assert!(
                reason.contains("longest lease elevate grants, 366d"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A profile maximum above the ceiling is capped too.
    let loose = LeaseRules {
        max_duration: Some(Duration::from_secs(400 * 86_400)),
        ..open.clone()
    };
    let over = req(Some("x"), None, Some(367 * 86_400));
    assert!(new_lease(2, &ALICE, &over, &loose, 0, ttl).is_err());
    let mut l =
        new_lease(3, &ALICE, &req(Some("x"), None, Some(60)), &open, 0, ttl).expect("a minute");
    assert!(extend(&mut l, Duration::from_secs(u64::MAX / 2), None).is_err());
    assert!(extend(&mut l, Duration::from_secs(3600), None).is_ok());
}
