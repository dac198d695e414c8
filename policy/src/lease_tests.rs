//! Table-driven tests of the just-in-time policy: lease keys, `[admin]`, `[[login]]`,
//! the cross-file rules and the helpers the daemon uses.

use crate::diag::{Diagnostic, Severity};
use crate::lease::{Approval, Approver, LoginAccess, OnExpiry};
use crate::load::{load_texts, LoadOutcome};
use crate::model::{Access, Policy, Subject};
use crate::tests::{errors, parse, sys, warnings, HEAD};
use std::time::Duration;

/// A lease profile header (4 lines); cases append from line 5.
const LEASE: &str = "[[profile]]\nname = \"p\"\nusers = [\"alice\"]\naccess = \"lease\"\n";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn load(files: &[(&str, &str)]) -> LoadOutcome {
    load_texts(files, &sys())
}

fn subject(user: &str, groups: &[&str]) -> Subject {
    Subject {
        uid: elevate_base::Uid(1000),
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn shown(diags: &[Diagnostic]) -> Vec<String> {
    diags.iter().map(|d| d.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Durations.

// ---------------------------------------------------------------------------------------------
// Parsing into the model.

const FULL: &str = r#"[admin]
users = ["alice"]
groups = ["sre-leads"]
auditors = ["group:auditors", "carol"]

[[profile]]
name = "db-admin"
groups = ["dba"]
access = "lease"
default_duration = "30m"
max_duration = "2h"
require_reason = true
ticket = "^(INC|CHG)-[0-9]+$"
approval = { approvers = ["dbalead", "group:dba-leads"], count = 1 }
grant_groups = ["postgres-admin"]
conflicts = ["db-auditor"]
on_expiry = "terminate"
break_glass = false
login = ["sshd", "cockpit.socket-1_x"]

[[profile]]
name = "db-auditor"
groups = ["auditors"]
access = "lease"
max_duration = "8h"
grant_groups = ["pg-audit"]

[[login]]
services = ["sshd"]
users = ["bob"]
groups = ["dba"]
access = "lease"

[[login]]
services = ["su", "login"]
groups = ["support"]
access = "deny"
"#;

#[test]
fn lease_keys_parse_into_the_model() {
    let out = load(&[("t.toml", FULL)]);
    assert!(out.diagnostics.is_empty(), "{:#?}", shown(&out.diagnostics));
    let policy = out.policy.expect("policy");

    let a = &policy.admin;
    assert_eq!(a.users, ["alice"]);
    assert_eq!(a.groups, ["sre-leads"]);
    assert_eq!(
        a.auditors,
        [
            Approver::Group("auditors".into()),
            Approver::User("carol".into())
        ]
    );
    let loc = a.location.as_ref().expect("location");
    assert_eq!((loc.line, loc.col), (1, 2));

    let p = policy.profile("db-admin").expect("db-admin");
    assert_eq!(p.access, Access::Lease);
    assert_eq!(p.default_duration, Some(secs(1800)));
    assert_eq!(p.max_duration, Some(secs(7200)));
    assert_eq!(p.effective_default_duration(), secs(1800));
    assert!(p.require_reason);
    let t = p.ticket.as_ref().expect("ticket");
    assert_eq!(t.source, "^(INC|CHG)-[0-9]+$");
    // Whole-string, and the written anchors are harmless.
    for (ticket, ok) in [
        ("INC-42", true),
        ("CHG-1", true),
        ("INC-", false),
        ("XINC-42", false),
        ("INC-42x", false),
        ("INC-42\n", false),
        ("inc-42", false),
    ] {
        assert_eq!(t.regex.is_match(ticket), ok, "{ticket:?}");
    }
    let ap = p.approval.as_ref().expect("approval");
    assert_eq!(ap.count, 1);
    assert_eq!(
        ap.approvers,
        [
            Approver::User("dbalead".into()),
            Approver::Group("dba-leads".into())
        ]
    );
    assert_eq!(p.grant_groups, ["postgres-admin"]);
    assert_eq!(p.conflicts, ["db-auditor"]);
    assert_eq!(p.on_expiry, OnExpiry::Terminate);
    assert!(!p.break_glass);
    assert_eq!(p.login, ["sshd", "cockpit.socket-1_x"]);

    let q = policy.profile("db-auditor").expect("db-auditor");
    assert_eq!(
        (q.default_duration, q.max_duration),
        (None, Some(secs(8 * 3600)))
    );
    assert_eq!(q.effective_default_duration(), secs(3600));
    assert!(q.approval.is_none() && q.ticket.is_none() && !q.require_reason);

    let [l1, l2] = policy.logins.as_slice() else {
        panic!("{:?}", policy.logins)
    };
    assert_eq!(l1.services, ["sshd"]);
    assert_eq!(l1.users, ["bob"]);
    assert_eq!(l1.groups, ["dba"]);
    assert_eq!(l1.access, LoginAccess::Lease);
    assert_eq!((l1.location.line, l1.location.col), (28, 1));
    assert_eq!(l2.services, ["su", "login"]);
    assert!(l2.users.is_empty());
    assert_eq!(l2.groups, ["support"]);
    assert_eq!(l2.access, LoginAccess::Deny);
    assert_eq!((l2.location.line, l2.location.col), (34, 1));

    // `on_expiry = "keep"` and `break_glass = true` parse too (with their warnings).
    let (ps, diags) = parse(&format!(
        "{LEASE}on_expiry = \"keep\"\nbreak_glass = true\nmax_duration = \"1h\"\n"
    ));
    assert_eq!(ps.len(), 1, "{diags:?}");
    assert_eq!(ps[0].on_expiry, OnExpiry::Keep);
    assert!(ps[0].break_glass);
    assert_eq!(ps[0].effective_default_duration(), secs(900));
    // A missing approval count means 1; with groups it may exceed the listed approvers.
    let (ps, diags) = parse(&format!(
        "{LEASE}approval = {{ approvers = [\"bob\"] }}\n[[profile]]\nname = \"q\"\nusers = [\"alice\"]\naccess = \"lease\"\napproval = {{ approvers = [\"group:dba-leads\", \"bob\"], count = 5 }}\n"
    ));
    assert!(
        !diags.iter().any(|d| d.severity == Severity::Error),
        "{diags:?}"
    );
    assert_eq!(ps[0].approval.as_ref().map(|a| a.count), Some(1));
    assert_eq!(ps[1].approval.as_ref().map(|a| a.count), Some(5));
}

// ---------------------------------------------------------------------------------------------
// Errors, with positions.

/// (name, text, line, col, expected message fragment): each must produce that error, and no
/// profile with an error may be accepted.
#[test]
fn lease_error_table() {
    let l = |body: &str| format!("{LEASE}{body}\n");
    let st = |body: &str| format!("{HEAD}{body}\n");
    let standing = "(this one is standing)";
    let forms = "90s, 15m, 1h30m, 2h or 1d";
    let cases: Vec<(&str, String, usize, usize, &str)> = vec![
        // Lease keys on a standing profile (standing is the default).
        (
            "default_duration on a standing profile",
            st("default_duration = \"1h\""),
            4,
            20,
            "only lease profiles take `default_duration`",
        ),
        (
            "max_duration on a standing profile",
            st("max_duration = \"1h\""),
            4,
            16,
            "only lease profiles take `max_duration`",
        ),
        (
            "require_reason on a standing profile",
            st("require_reason = false"),
            4,
            18,
            "only lease profiles take `require_reason`",
        ),
        (
            "ticket on a standing profile",
            st("ticket = \"x\""),
            4,
            10,
            "only lease profiles take `ticket`",
        ),
        (
            "approval on a standing profile",
            st("approval = { approvers = [\"bob\"] }"),
            4,
            12,
            "only lease profiles take `approval`",
        ),
        (
            "grant_groups on a standing profile",
            st("grant_groups = [\"dba\"]"),
            4,
            17,
            "only lease profiles take `grant_groups`",
        ),
        (
            "conflicts on a standing profile",
            st("conflicts = [\"q\"]"),
            4,
            14,
            "only lease profiles take `conflicts`",
        ),
        (
            "on_expiry on a standing profile",
            st("on_expiry = \"keep\""),
            4,
            13,
            "only lease profiles take `on_expiry`",
        ),
        (
            "break_glass on a standing profile",
            st("break_glass = true"),
            4,
            15,
            "only lease profiles take `break_glass`",
        ),
        (
            "login on a standing profile",
            st("login = [\"sshd\"]"),
            4,
            10,
            "only lease profiles take `login`",
        ),
        (
            "lease key on an explicitly standing profile",
            st("access = \"standing\"\nmax_duration = \"2h\""),
            5,
            16,
            standing,
        ),
        // Durations.
        ("zero duration", l("default_duration = \"0s\""), 5, 20, "longer than zero"),
        ("zero duration lists the accepted forms", l("default_duration = \"0s\""), 5, 20, forms),
        ("empty duration", l("max_duration = \"\""), 5, 16, "it is empty"),
        ("fractional duration", l("max_duration = \"1.5h\""), 5, 16, "unexpected '.'"),
        ("duration without a unit", l("max_duration = \"90\""), 5, 16, "a number without a unit"),
        (
            "unit given twice",
            l("max_duration = \"1h1h\""),
            5,
            16,
            "in the order d, h, m, s",
        ),
        (
            "units out of order",
            l("max_duration = \"30m1h\""),
            5,
            16,
            "in the order d, h, m, s",
        ),
        (
            "duration over 366d",
            l("max_duration = \"367d\""),
            5,
            16,
            "longer than the maximum of 366d",
        ),
        (
            "duration overflowing",
            l("max_duration = \"99999999999999999999999s\""),
            5,
            16,
            "longer than the maximum",
        ),
        ("full-width digit in a duration", l("max_duration = \"３h\""), 5, 16, "unexpected '３'"),
        (
            "duration as an integer",
            l("max_duration = 3600"),
            5,
            16,
            "a duration string such as \"90s\"",
        ),
        ("duration as a boolean", l("max_duration = true"), 5, 16, "a duration string"),
        ("duration as an array", l("default_duration = [\"1h\"]"), 5, 20, "a duration string"),
        (
            "default_duration longer than max_duration",
            l("default_duration = \"3h\"\nmax_duration = \"2h\""),
            5,
            20,
            "default_duration 3h is longer than max_duration 2h",
        ),
        (
            "default_duration longer than max_duration, written after it",
            l("max_duration = \"1h\"\ndefault_duration = \"61m\""),
            6,
            20,
            "default_duration 1h1m is longer than max_duration 1h",
        ),
        // Ticket patterns.
        ("unbalanced ticket pattern", l("ticket = \"(\""), 5, 10, "invalid ticket pattern"),
        ("ticket pattern escaping its anchors", l("ticket = \"a)|(b\""), 5, 10, "invalid ticket pattern"),
        ("empty ticket pattern", l("ticket = \"\""), 5, 10, "empty ticket pattern"),
        ("blank ticket pattern", l("ticket = \" \""), 5, 10, "empty ticket pattern"),
        ("ticket as an integer", l("ticket = 1"), 5, 10, "invalid type"),
        // Approval.
        (
            "approval count 0",
            l("approval = { approvers = [\"bob\"], count = 0 }"),
            5,
            43,
            "between 1 and 100, not 0",
        ),
        (
            "approval count -1",
            l("approval = { approvers = [\"bob\"], count = -1 }"),
            5,
            43,
            "not -1",
        ),
        (
            "approval count 101",
            l("approval = { approvers = [\"bob\"], count = 101 }"),
            5,
            43,
            "not 101",
        ),
        (
            "count above the one approver",
            l("approval = { approvers = [\"bob\"], count = 2 }"),
            5,
            43,
            "approval count 2 is more than the 1 distinct approver(s)",
        ),
        (
            "count above one approver listed twice",
            l("approval = { approvers = [\"bob\", \"bob\"], count = 2 }"),
            5,
            50,
            "more than the 1 distinct approver(s)",
        ),
        (
            "count above two approvers",
            l("approval = { approvers = [\"bob\", \"carol\"], count = 3 }"),
            5,
            52,
            "more than the 2 distinct",
        ),
        (
            "no approvers",
            l("approval = { approvers = [] }"),
            5,
            12,
            "approval lists no approvers",
        ),
        (
            "approver group: with no name",
            l("approval = { approvers = [\"group:\"] }"),
            5,
            27,
            "invalid approver \"group:\": is empty",
        ),
        (
            "empty approver",
            l("approval = { approvers = [\"\"] }"),
            5,
            27,
            "invalid approver",
        ),
        (
            "approver with a space",
            l("approval = { approvers = [\"a b\"] }"),
            5,
            27,
            "contains whitespace",
        ),
        (
            "approver group name with ':'",
            l("approval = { approvers = [\"group:a:b\"] }"),
            5,
            27,
            "contains ':'",
        ),
        (
            "approver with ','",
            l("approval = { approvers = [\"bob\", \"x,y\"] }"),
            5,
            34,
            "contains ','",
        ),
        (
            "unknown approval key",
            l("approval = { approvers = [\"bob\"], cnt = 1 }"),
            5,
            35,
            "unknown field `cnt`",
        ),
        (
            "approval without approvers",
            l("approval = { count = 1 }"),
            5,
            12,
            "missing field `approvers`",
        ),
        ("approval as a string", l("approval = \"bob\""), 5, 12, "invalid type"),
        (
            "fractional approval count",
            l("approval = { approvers = [\"bob\"], count = 1.5 }"),
            5,
            43,
            "invalid type",
        ),
        (
            "approval on a break-glass profile",
            l("break_glass = true\napproval = { approvers = [\"bob\"] }"),
            6,
            12,
            "break-glass profile never waits for approval",
        ),
        (
            "break_glass after approval",
            l("approval = { approvers = [\"bob\"] }\nbreak_glass = true"),
            5,
            12,
            "never waits for approval",
        ),
        // Groups, conflicts, expiry, login services, types.
        (
            "grant_groups name with a space",
            l("grant_groups = [\"a b\"]"),
            5,
            17,
            "invalid group name \"a b\"",
        ),
        (
            "empty grant_groups name",
            l("grant_groups = [\"dba\", \"\"]"),
            5,
            24,
            "invalid group name \"\": is empty",
        ),
        ("grant_groups as a string", l("grant_groups = \"dba\""), 5, 16, "invalid type"),
        (
            "conflicts names an invalid profile name",
            l("conflicts = [\"Bad\"]"),
            5,
            14,
            "invalid profile name \"Bad\" in conflicts",
        ),
        ("conflicts names an empty profile name", l("conflicts = [\"\"]"), 5, 14, "invalid profile name"),
        (
            "unknown on_expiry",
            l("on_expiry = \"kill\""),
            5,
            13,
            "invalid on_expiry \"kill\"",
        ),
        (
            "on_expiry with capitals",
            l("on_expiry = \"Keep\""),
            5,
            13,
            "expected \"terminate\" or \"keep\"",
        ),
        (
            "login service with capitals",
            l("login = [\"SSHD\"]"),
            5,
            10,
            "invalid PAM service name \"SSHD\"",
        ),
        (
            "login service with ../",
            l("login = [\"sshd\", \"../x\"]"),
            5,
            18,
            "invalid PAM service name",
        ),
        (
            "login service ..",
            l("login = [\"..\"]"),
            5,
            10,
            "invalid PAM service name \"..\"",
        ),
        ("login service .", l("login = [\".\"]"), 5, 10, "invalid PAM service name"),
        ("empty login service", l("login = [\"\"]"), 5, 10, "invalid PAM service name"),
        ("login service with a space", l("login = [\"ssh d\"]"), 5, 10, "invalid PAM service name"),
        (
            "login service of 65 characters",
            l(&format!("login = [\"{}\"]", "a".repeat(65))),
            5,
            10,
            "1-64",
        ),
        ("require_reason as a string", l("require_reason = \"yes\""), 5, 18, "invalid type"),
        ("break_glass as an integer", l("break_glass = 1"), 5, 15, "invalid type"),
        // Unknown keys.
        (
            "unknown profile key max_durations",
            l("max_durations = \"1h\""),
            5,
            1,
            "unknown field `max_durations`",
        ),
        ("unknown profile key approvals", l("approvals = 1"), 5, 1, "unknown field `approvals`"),
        // [admin].
        (
            "[admin] user name with a space",
            "[admin]\nusers = [\"a b\"]\n".into(),
            2,
            10,
            "invalid user name \"a b\"",
        ),
        (
            "[admin] empty group name",
            "[admin]\ngroups = [\"\"]\n".into(),
            2,
            11,
            "invalid group name",
        ),
        (
            "[admin] auditor group: with no name",
            "[admin]\nauditors = [\"group:\"]\n".into(),
            2,
            13,
            "invalid auditor \"group:\"",
        ),
        (
            "[admin] auditor with '/'",
            "[admin]\nauditors = [\"a/b\"]\n".into(),
            2,
            13,
            "contains '/'",
        ),
        (
            "unknown [admin] key",
            "[admin]\nroot = true\n".into(),
            2,
            1,
            "unknown field `root`",
        ),
        ("[admin] users as a string", "[admin]\nusers = \"alice\"\n".into(), 2, 9, "invalid type"),
        (
            "[[admin]] as an array",
            "[[admin]]\nusers = [\"alice\"]\n".into(),
            1,
            1,
            "invalid type",
        ),
        ("admin as an integer", "admin = 1\n".into(), 1, 9, "invalid type"),
        ("[admin] twice in one file", "[admin]\n[admin]\n".into(), 2, 2, "duplicate key"),
        // [[login]].
        (
            "unknown [[login]] access",
            "[[login]]\nservices = [\"sshd\"]\nusers = [\"alice\"]\naccess = \"sometimes\"\n"
                .into(),
            4,
            10,
            "invalid login access \"sometimes\"",
        ),
        (
            "[[login]] access with capitals",
            "[[login]]\nservices = [\"sshd\"]\nusers = [\"alice\"]\naccess = \"Lease\"\n".into(),
            4,
            10,
            "expected \"standing\", \"lease\" or \"deny\"",
        ),
        (
            "[[login]] without services",
            "[[login]]\nservices = []\nusers = [\"alice\"]\naccess = \"deny\"\n".into(),
            1,
            1,
            "[[login]] lists no services",
        ),
        (
            "[[login]] service with capitals",
            "[[login]]\nservices = [\"Sshd\"]\nusers = [\"alice\"]\naccess = \"deny\"\n".into(),
            2,
            13,
            "invalid PAM service name \"Sshd\"",
        ),
        (
            "[[login]] without users or groups",
            "[[login]]\nservices = [\"sshd\"]\naccess = \"deny\"\n".into(),
            1,
            1,
            "gates nobody",
        ),
        (
            "[[login]] with empty users and groups",
            "[[login]]\nservices = [\"sshd\"]\nusers = []\ngroups = []\naccess = \"deny\"\n".into(),
            1,
            1,
            "gates nobody",
        ),
        (
            "[[login]] without access",
            "[[login]]\nservices = [\"sshd\"]\nusers = [\"alice\"]\n".into(),
            1,
            1,
            "missing field `access`",
        ),
        (
            "[[login]] without services key",
            "[[login]]\nusers = [\"alice\"]\naccess = \"deny\"\n".into(),
            1,
            1,
            "missing field `services`",
        ),
        (
            "unknown [[login]] key service",
            "[[login]]\nservice = [\"sshd\"]\nusers = [\"alice\"]\naccess = \"deny\"\n".into(),
            2,
            1,
            "unknown field `service`",
        ),
        (
            "[[login]] user name with ':'",
            "[[login]]\nservices = [\"sshd\"]\nusers = [\"a:b\"]\naccess = \"deny\"\n".into(),
            3,
            10,
            "invalid user name \"a:b\"",
        ),
        (
            "[login] as a single table",
            "[login]\nservices = [\"sshd\"]\n".into(),
            1,
            1,
            "`login` must be an array of tables",
        ),
        (
            "[[login]] host pattern with a space",
            "[[login]]\nservices = [\"sshd\"]\nusers = [\"alice\"]\naccess = \"deny\"\nhosts = [\"db 1\"]\n".into(),
            5,
            10,
            "invalid host pattern \"db 1\"",
        ),
        (
            "[[login]] hosts = []",
            "[[login]]\nservices = [\"sshd\"]\nusers = [\"alice\"]\naccess = \"deny\"\nhosts = []\n".into(),
            5,
            9,
            "`hosts = []` matches no host",
        ),
    ];
    for (name, text, line, col, want) in &cases {
        let errs = errors(text);
        assert!(
            errs.iter()
                .any(|e| e.message.contains(want)
                    && (e.location.line, e.location.col) == (*line, *col)),
            "row '{name}': expected {line}:{col} {want:?}\n--- text:\n{text}--- got: {:#?}",
            shown(&errs)
        );
        assert!(
            parse(text).0.is_empty(),
            "row '{name}': a profile with an error was accepted: {text}"
        );
        // The whole-policy path refuses it too.
        let out = load(&[("t.toml", text)]);
        assert!(out.policy.is_none(), "row '{name}': {text}");
    }
}

/// Texts that must load without errors (the boundaries of the rules above).
#[test]
fn lease_accepted_table() {
    let l = |body: &str| format!("{LEASE}max_duration = \"1h\"\n{body}\n");
    let cases = [
        l(""),
        l("default_duration = \"1h\""),
        l("default_duration = \"59m60s\""),
        l("approval = { approvers = [\"bob\", \"carol\"], count = 2 }"),
        l("approval = { approvers = [\"group:dba\"], count = 100 }"),
        l("approval = { approvers = [\"group:dba\", \"bob\"], count = 7 }"),
        l("ticket = \"^INC-[0-9]+$\""),
        l("ticket = \"(?i)inc-[0-9]+\""),
        l("break_glass = true\nrequire_reason = false"),
        l("break_glass = false\napproval = { approvers = [\"bob\"] }"),
        l("grant_groups = []\nconflicts = []\nlogin = []"),
        l("login = [\"sshd\", \"su-l\", \"x.y_z\", \"0\", \"-\"]"),
        l("on_expiry = \"terminate\""),
        // Empty lists on a standing profile say nothing, so they are tolerated.
        format!("{HEAD}grant_groups = []\n[[profile.command]]\npath = \"/usr/bin/uptime\"\n"),
        "[admin]\nusers = [\"alice\"]\n".into(),
        "[admin]\ngroups = [\"sre-leads\"]\nauditors = []\n".into(),
        "[[login]]\nservices = [\"sshd\"]\ngroups = [\"dba\"]\naccess = \"standing\"\n".into(),
    ];
    for text in &cases {
        let out = load(&[("t.toml", text)]);
        assert!(!out.has_errors(), "{text}\n{:#?}", shown(&out.diagnostics));
    }
}

// ---------------------------------------------------------------------------------------------
// Warnings.

/// (name, text, expected warning fragment, line, col)
#[test]
fn lease_warning_table() {
    let l = |body: &str| format!("{LEASE}{body}\n");
    let cases: Vec<(&str, String, &str, usize, usize)> = vec![
        // Long self-approved leases.
        (
            "self-approved lease of 9h",
            l("max_duration = \"9h\""),
            "standing privilege by another name",
            5,
            16,
        ),
        (
            "self-approved lease just over 8h",
            l("max_duration = \"8h1s\""),
            "max_duration is 8h1s",
            5,
            16,
        ),
        (
            "self-approved lease without max_duration",
            l(""),
            "there is no max_duration, so a lease may last up to 366d",
            2,
            8,
        ),
        (
            "self-approved lease named in the message",
            l("default_duration = \"1h\""),
            "self-approved lease profile \"p\"",
            2,
            8,
        ),
        // Break-glass leases should be short too.
        (
            "break-glass lease of 12h",
            l("break_glass = true\nmax_duration = \"12h\""),
            "emergency access should be short",
            6,
            16,
        ),
        (
            "break-glass lease without max_duration",
            l("break_glass = true"),
            "break-glass profile \"p\": there is no max_duration",
            2,
            8,
        ),
        // Keeping the group after expiry.
        (
            "on_expiry = keep",
            l("max_duration = \"1h\"\non_expiry = \"keep\""),
            "processes keep the group after expiry",
            6,
            13,
        ),
        // Names unknown on this host.
        (
            "unknown granted group",
            l("max_duration = \"1h\"\ngrant_groups = [\"ghosts\"]"),
            "unknown group \"ghosts\"",
            6,
            17,
        ),
        (
            "unknown approver user",
            l("approval = { approvers = [\"mallory\"] }"),
            "approver: unknown user \"mallory\"",
            5,
            27,
        ),
        (
            "unknown approver group",
            l("approval = { approvers = [\"group:ghosts\"] }"),
            "approver: unknown group \"ghosts\"",
            5,
            27,
        ),
        // The only approver may also request: their own requests can never be approved.
        (
            "requester is one of exactly count approvers",
            l("approval = { approvers = [\"alice\", \"bob\"], count = 2 }"),
            "approver \"alice\" may also request this profile",
            5,
            52,
        ),
        (
            "requester is the only approver",
            l("approval = { approvers = [\"alice\"] }"),
            "need 1 other approver(s) and only 0 are listed",
            5,
            12,
        ),
        // [admin].
        (
            "empty [admin]",
            "[admin]\n".into(),
            "[admin] is empty",
            1,
            2,
        ),
        (
            "[admin] with empty users",
            "[admin]\nusers = []\n".into(),
            "[admin] is empty",
            1,
            2,
        ),
        (
            "[admin] with auditors only",
            "[admin]\nauditors = [\"carol\"]\n".into(),
            "[admin] names no users or groups: nobody can revoke",
            1,
            2,
        ),
        (
            "unknown [admin] user",
            "[admin]\nusers = [\"mallory\"]\n".into(),
            "unknown user \"mallory\"",
            2,
            10,
        ),
        (
            "unknown [admin] auditor group",
            "[admin]\nusers = [\"alice\"]\nauditors = [\"group:ghosts\"]\n".into(),
            "auditor: unknown group \"ghosts\"",
            3,
            13,
        ),
        // [[login]].
        (
            "unknown [[login]] user",
            "[[login]]\nservices = [\"sshd\"]\nusers = [\"mallory\"]\naccess = \"deny\"\n".into(),
            "unknown user \"mallory\"",
            3,
            10,
        ),
    ];
    for (name, text, want, line, col) in &cases {
        assert!(
            errors(text).is_empty(),
            "row '{name}': {text}: {:?}",
            shown(&errors(text))
        );
        let w = warnings(text);
        assert!(
            w.iter()
                .any(|d| d.message.contains(want)
                    && (d.location.line, d.location.col) == (*line, *col)),
            "row '{name}': expected {want:?} at {line}:{col}\n{text}\ngot {:#?}",
            shown(&w)
        );
    }
    // None of these: short or approved leases, 8h exactly, break-glass within 8h.
    for quiet in [
        l("max_duration = \"8h\""),
        l("max_duration = \"1d\"\napproval = { approvers = [\"bob\"] }"),
        l("approval = { approvers = [\"group:dba-leads\"], count = 3 }"),
        l("break_glass = true\nmax_duration = \"1h\""),
        l("max_duration = \"1h\"\non_expiry = \"terminate\""),
        l("max_duration = \"1h\"\napproval = { approvers = [\"alice\", \"bob\"] }"),
        "[admin]\ngroups = [\"sre-leads\"]\nauditors = [\"group:auditors\", \"carol\"]\n".into(),
    ] {
        let d = parse(&quiet).1;
        assert!(d.is_empty(), "{quiet}\n{:#?}", shown(&d));
        let out = load(&[("t.toml", &quiet)]);
        assert!(
            out.diagnostics.is_empty(),
            "{quiet}\n{:#?}",
            shown(&out.diagnostics)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Across files.

const A_LEASE: &str =
    "[[profile]]\nname = \"a\"\nusers = [\"alice\"]\naccess = \"lease\"\nmax_duration = \"1h\"\n";

#[test]
fn admin_in_one_file_only() {
    let out = load(&[
        ("10-a.toml", "[admin]\nusers = [\"alice\"]\n"),
        ("20-b.toml", "# more\n\n[admin]\ngroups = [\"sre-leads\"]\n"),
    ]);
    assert!(out.policy.is_none());
    let errs: Vec<_> = out.errors().collect();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].to_string(),
        "20-b.toml:3:2: error: [admin] may appear in one file only: first defined at 10-a.toml:1:2"
    );
    // One [admin] in any file is fine; none means nobody administers.
    let out = load(&[
        ("10-a.toml", GOOD),
        ("20-b.toml", "[admin]\nusers = [\"alice\"]\n"),
    ]);
    let p = out.policy.expect("policy");
    assert_eq!(p.admin.users, ["alice"]);
    let out = load(&[("10-a.toml", GOOD)]);
    let p = out.policy.expect("policy");
    assert!(p.admin.users.is_empty() && p.admin.location.is_none());
    assert!(!p.is_admin(&subject("alice", &[])) && !p.is_auditor(&subject("alice", &[])));
}

const GOOD: &str = "[[profile]]\nname = \"good\"\nusers = [\"alice\"]\n[[profile.command]]\npath = \"/usr/bin/uptime\"\n";

#[test]
fn conflicts_are_checked_across_files() {
    // Across files, both orders: a profile may name one defined later.
    let b =
        "[[profile]]\nname = \"b\"\nusers = [\"bob\"]\naccess = \"lease\"\nmax_duration = \"1h\"\n";
    let a_conflicts_b = format!("{A_LEASE}conflicts = [\"b\"]\n");
    for files in [
        [("1.toml", a_conflicts_b.as_str()), ("2.toml", b)],
        [("1.toml", b), ("2.toml", a_conflicts_b.as_str())],
    ] {
        let out = load(&files);
        assert!(out.diagnostics.is_empty(), "{:#?}", shown(&out.diagnostics));
        let p = out.policy.expect("policy");
        assert!(p.conflicts_between("a", "b") && p.conflicts_between("b", "a"));
    }
    // (name, files, file:line:col, message) of the one error.
    type Files = Vec<(&'static str, String)>;
    let cases: Vec<(&str, Files, &str, &str)> = vec![
        (
            "conflicts names an unknown profile",
            vec![("1.toml", format!("{A_LEASE}conflicts = [\"nope\"]\n"))],
            "1.toml:6:14",
            "conflicts names unknown profile \"nope\"",
        ),
        (
            "profile conflicts with itself",
            vec![
                ("1.toml", GOOD.to_string()),
                ("2.toml", format!("{A_LEASE}conflicts = [\"b\", \"a\"]\n")),
                ("3.toml", b.to_string()),
            ],
            "2.toml:6:19",
            "profile \"a\" cannot conflict with itself",
        ),
        (
            "conflicts names a standing profile in another file",
            vec![
                ("1.toml", format!("{A_LEASE}conflicts = [\"good\"]\n")),
                ("2.toml", GOOD.to_string()),
            ],
            "1.toml:6:14",
            "conflicts names \"good\", a standing profile",
        ),
    ];
    for (name, files, at, want) in &cases {
        let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let out = load(&refs);
        assert!(out.policy.is_none(), "row '{name}': {files:?}");
        let errs: Vec<String> = out.errors().map(|e| e.to_string()).collect();
        assert!(
            errs.len() == 1 && errs[0].starts_with(&format!("{at}: error: {want}")),
            "row '{name}': expected {at}: error: {want}\n{files:?}\ngot {errs:#?}"
        );
        // A single-file check does not know the other files: no conflicts error there.
        for (_, t) in files {
            assert!(
                !errors(t).iter().any(|e| e.message.contains("conflict")),
                "row '{name}': {t}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

#[test]
fn conflicts_are_symmetric() {
    let text = format!(
        "{A_LEASE}conflicts = [\"b\"]\n[[profile]]\nname = \"b\"\nusers = [\"bob\"]\naccess = \"lease\"\nmax_duration = \"1h\"\n[[profile]]\nname = \"c\"\nusers = [\"bob\"]\naccess = \"lease\"\nmax_duration = \"1h\"\nconflicts = [\"b\", \"a\"]\n"
    );
    let p = load(&[("t.toml", &text)]).policy.expect("policy");
    // (x, y, conflict?) — listed by either side is enough.
    let cases = [
        ("a", "b", true),
        ("b", "a", true),
        ("c", "b", true),
        ("b", "c", true),
        ("a", "c", true),
        ("c", "a", true),
        ("a", "a", false),
        ("b", "b", false),
        ("a", "nope", false),
        ("nope", "a", false),
        ("", "", false),
    ];
    for (x, y, want) in cases {
        assert_eq!(p.conflicts_between(x, y), want, "{x} vs {y}");
        assert_eq!(p.conflicts_between(x, y), p.conflicts_between(y, x));
    }
}

#[test]
fn effective_default_duration_table() {
    // (keys, expected default)
    let cases: &[(&str, u64)] = &[
        ("", 3600),
        ("max_duration = \"2h\"", 3600),
        ("max_duration = \"20m\"", 1200),
        ("default_duration = \"5m\"", 300),
        ("default_duration = \"5m\"\nmax_duration = \"20m\"", 300),
        ("default_duration = \"2h\"\nmax_duration = \"2h\"", 7200),
        ("break_glass = true", 900),
        ("break_glass = true\nmax_duration = \"10m\"", 600),
        ("break_glass = true\nmax_duration = \"1h\"", 900),
        ("break_glass = true\ndefault_duration = \"30m\"", 1800),
    ];
    for (keys, want) in cases {
        let (ps, diags) = parse(&format!("{LEASE}{keys}\n"));
        assert_eq!(ps.len(), 1, "{keys}: {diags:?}");
        assert_eq!(ps[0].effective_default_duration(), secs(*want), "{keys}");
    }
}

#[test]
fn admins_and_auditors() {
    let text = "[admin]\nusers = [\"alice\"]\ngroups = [\"sre-leads\"]\nauditors = [\"group:auditors\", \"carol\"]\n";
    let p = load(&[("t.toml", text)]).policy.expect("policy");
    // (user, groups, admin?, auditor?)
    let cases: &[(&str, &[&str], bool, bool)] = &[
        ("alice", &[], true, true),
        ("bob", &["sre-leads"], true, true),
        ("bob", &["users", "sre-leads"], true, true),
        ("carol", &[], false, true),
        ("dave", &["auditors"], false, true),
        ("dave", &[], false, false),
        ("dave", &["sre-lead", "auditor"], false, false),
        // A group named like an admin user, or a user named like a group, is not enough.
        ("sre-leads", &["alice", "carol"], false, false),
        ("auditors", &[], false, false),
        ("Alice", &[], false, false),
        ("", &[""], false, false),
    ];
    for (user, groups, admin, auditor) in cases {
        let s = subject(user, groups);
        assert_eq!(p.is_admin(&s), *admin, "{user} {groups:?}");
        assert_eq!(p.is_auditor(&s), *auditor, "{user} {groups:?}");
    }
    // Auditors grant nothing else.
    let empty = Policy::default();
    assert!(!empty.is_admin(&subject("alice", &["sre-leads"])));
    assert!(!empty.is_auditor(&subject("alice", &["auditors"])));
}

#[test]
fn approver_matching() {
    let approval = Approval {
        approvers: vec![
            Approver::parse("dbalead"),
            Approver::parse("group:dba-leads"),
        ],
        count: 1,
    };
    let cases: &[(&str, &[&str], bool)] = &[
        ("dbalead", &[], true),
        ("erin", &["dba-leads"], true),
        ("erin", &["dba", "dba-leads"], true),
        ("erin", &["dba"], false),
        ("dba-leads", &[], false),
        ("erin", &["dbalead"], false),
        ("group:dba-leads", &[], false),
        ("DBALEAD", &[], false),
    ];
    for (user, groups, want) in cases {
        assert_eq!(
            approval.approver_matches(&subject(user, groups)),
            *want,
            "{user} {groups:?}"
        );
    }
    assert_eq!(Approver::parse("group:x"), Approver::Group("x".into()));
    assert_eq!(Approver::parse("x"), Approver::User("x".into()));
    assert_eq!(Approver::parse("group:x").to_string(), "group:x");
    assert_eq!(Approver::parse("x").to_string(), "x");
    // Parsed from a policy: the same.
    let (ps, _) = parse(&format!(
        "{LEASE}approval = {{ approvers = [\"dbalead\", \"group:dba-leads\"] }}\n"
    ));
    let a = ps[0].approval.as_ref().expect("approval");
    assert!(a.approver_matches(&subject("x", &["dba-leads"])));
    assert!(!a.approver_matches(&subject("x", &["dba"])));
}

#[test]
fn lease_keys_on_lease_profiles_do_not_change_matching() {
    // A lease profile's commands still need a held lease; the new keys change nothing there.
    let text = format!(
        "{LEASE}max_duration = \"1h\"\napproval = {{ approvers = [\"bob\"] }}\ngrant_groups = [\"dba\"]\n[[profile.command]]\npath = \"/usr/bin/uptime\"\n"
    );
    let (profiles, diags) = parse(&text);
    assert!(diags.is_empty(), "{diags:?}");
    let policy = Policy {
        profiles,
        ..Policy::default()
    };
    let host = crate::model::HostInfo::default();
    let q = crate::matcher::Query {
        path: std::path::Path::new("/usr/bin/uptime"),
        args: &[],
        profile: None,
        run_as: None,
    };
    let alice = subject("alice", &[]);
    assert!(!policy.decide(&host, &alice, &q, &|_| false).is_allow());
    assert!(policy
        .decide(&host, &alice, &q, &|p| p.name == "p")
        .is_allow());
}

#[test]
fn step_up_keys() {
    let out = load(&[(
        "a.toml",
        r#"
[[profile]]
name = "restart"
users = ["alice"]
authenticate = true
auth_cache = "5m"
[[profile.command]]
path = "/usr/bin/true"

[[profile]]
name = "always-ask"
users = ["alice"]
access = "lease"
max_duration = "1h"
authenticate = true
"#,
    )]);
    let p = out.policy.expect("loads");
    let r = p.profile("restart").unwrap();
    assert!(r.authenticate);
    assert_eq!(r.auth_cache, Some(secs(300)));
    let a = p.profile("always-ask").unwrap();
    assert!(a.authenticate && a.auth_cache.is_none());

    for (body, want) in [
        ("auth_cache = \"5m\"", "without `authenticate = true`"),
        (
            "authenticate = true\nauth_cache = \"2h\"",
            "longer than the 1h allowed",
        ),
        ("authenticate = true\nauth_cache = \"soon\"", "auth_cache:"),
        ("authenticate = \"yes\"", "expected a boolean"),
    ] {
        let src = format!("[[profile]]\nname = \"x\"\nusers = [\"a\"]\n{body}\n[[profile.command]]\npath = \"/usr/bin/true\"\n");
        let out = load(&[("a.toml", &src)]);
        let msgs = shown(&out.diagnostics).join("\n");
        assert!(
            out.policy.is_none() && msgs.contains(want),
            "{body}: {msgs}"
        );
    }
}
