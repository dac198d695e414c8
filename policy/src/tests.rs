//! Table-driven tests of parsing, validation, loading and matching.

use crate::diag::{Diagnostic, Severity};
use crate::lease::OnExpiry;
use crate::load::{compile_arg_regex, load_dir, load_files, parse_str, LoadOptions};
use crate::matcher::{host_glob_matches, DenyReason, Mismatch, Query, Verdict};
use crate::model::{Access, ArgPattern, HostInfo, Policy, Profile, Rest, Subject};
use crate::resolve::resolve_command;
use crate::system::{FakeSystem, RealSystem};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) fn sys() -> FakeSystem {
    FakeSystem::new()
        .user("alice")
        .user("bob")
        .user("carol")
        .user("dave")
        .user("eve")
        .user("deploy")
        .user("postgres")
        .user("ci-deploy")
        .user("nobody")
        .group("webops")
        .group("dba")
        .group("support")
        .group("deploy")
        .group("systemd-journal")
        .user("dbalead")
        .group("sre-leads")
        .group("dba-leads")
        .group("auditors")
        .group("postgres-admin")
        .group("pg-audit")
        .user("oncall-bot")
        .group("engineers")
        .group("contractors")
        .executable("/usr/bin/systemctl")
        .executable("/usr/bin/journalctl")
        .executable("/usr/bin/psql")
        .executable("/usr/bin/vacuumdb")
        .executable("/usr/bin/pg_dump")
        .executable("/usr/sbin/nginx")
        .executable("/usr/bin/uptime")
        .executable("/usr/bin/echo")
        .executable("/usr/bin/prod-tool")
        .executable("/usr/bin/a")
        .executable("/usr/bin/ab")
        .executable("/usr/bin/empty")
        .executable("/usr/bin/uni")
        .executable("/usr/bin/m")
        .executable("/opt/deploy/bin/deploy-release")
        .symlink("/bin", "/usr/bin")
        .symlink("/usr/local/bin/sc", "/usr/bin/systemctl")
}

pub(crate) fn parse(text: &str) -> (Vec<Profile>, Vec<Diagnostic>) {
    parse_str(Path::new("t.toml"), text, &sys())
}

pub(crate) fn errors(text: &str) -> Vec<Diagnostic> {
    parse(text)
        .1
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

pub(crate) fn warnings(text: &str) -> Vec<Diagnostic> {
    parse(text)
        .1
        .into_iter()
        .filter(|d| d.severity == Severity::Warning)
        .collect()
}

/// A minimal valid profile header, to which cases append.
pub(crate) const HEAD: &str = "[[profile]]\nname = \"p\"\nusers = [\"alice\"]\n";

#[test]
fn parses_full_profile_with_defaults() {
    let text = r#"
[[profile]]
name = "web-restart"
description = "Restart nginx"
hosts = ["WEB-*"]
host_labels = { env = "prod" }
users = ["deploy"]
groups = ["webops"]
env_keep = ["LANG", "TERM"]

[[profile.command]]
path = "/usr/bin/systemctl"
args = ["restart", { one_of = ["nginx.service", "php-fpm.service"] }]

[[profile.command]]
path = "/bin/journalctl"
args = ["-u", "nginx.service", { regex = "--since=[0-9:-]+" }]
rest = "any"

[[profile]]
name = "minimal"
groups = ["dba"]
run_as = "postgres"
run_as_group = "dba"
access = "lease"
"#;
    let (profiles, diags) = parse(text);
    // journalctl as root with free arguments, and a self-approved lease with no max_duration:
    // the only findings are the two lint warnings.
    assert_eq!(diags.len(), 2, "{diags:?}");
    assert!(diags[0].severity == Severity::Warning && diags[0].message.contains("pager"));
    assert!(
        diags[1].severity == Severity::Warning
            && diags[1]
                .message
                .contains("standing privilege by another name")
            && (diags[1].location.line, diags[1].location.col) == (21, 8)
    );
    let [web, min] = profiles.as_slice() else {
        panic!("{profiles:?}")
    };
    assert_eq!(web.name, "web-restart");
    assert_eq!(web.description, "Restart nginx");
    assert_eq!(web.hosts, Some(vec!["web-*".to_string()]));
    assert_eq!(web.host_labels.get("env").map(String::as_str), Some("prod"));
    assert_eq!(web.users, ["deploy"]);
    assert_eq!(web.groups, ["webops"]);
    assert_eq!(web.run_as, "root");
    assert_eq!(web.run_as_group, None);
    assert_eq!(web.access, Access::Standing);
    assert_eq!(web.env_keep, ["LANG", "TERM"]);
    assert_eq!((web.location.line, web.location.col), (3, 8));
    let [sc, jc] = web.commands.as_slice() else {
        panic!()
    };
    assert_eq!(sc.path, Path::new("/usr/bin/systemctl"));
    assert_eq!(sc.canonical, Path::new("/usr/bin/systemctl"));
    assert_eq!(sc.rest, Rest::Deny);
    assert!(matches!(&sc.args[0], ArgPattern::Literal(s) if s == "restart"));
    assert!(matches!(&sc.args[1], ArgPattern::OneOf(v) if v.len() == 2));
    assert_eq!((sc.location.line, sc.location.col), (12, 8));
    assert_eq!(jc.path, Path::new("/bin/journalctl"));
    assert_eq!(jc.canonical, Path::new("/usr/bin/journalctl"));
    assert_eq!(jc.rest, Rest::Any);
    assert_eq!(
        sc.display(),
        "/usr/bin/systemctl restart {nginx.service|php-fpm.service}"
    );
    assert_eq!(
        jc.display(),
        "/bin/journalctl -u nginx.service /--since=[0-9:-]+/ ..."
    );
    assert_eq!(min.name, "minimal");
    assert_eq!(min.hosts, None);
    assert!(min.host_labels.is_empty());
    assert!(min.users.is_empty());
    assert_eq!(min.run_as, "postgres");
    assert_eq!(min.run_as_group.as_deref(), Some("dba"));
    assert_eq!(min.access, Access::Lease);
    assert!(min.commands.is_empty());
    assert_eq!(min.description, "");
    // Lease keys all default.
    assert_eq!(min.default_duration, None);
    assert_eq!(min.max_duration, None);
    assert!(!min.require_reason && !min.break_glass);
    assert!(min.ticket.is_none() && min.approval.is_none());
    assert!(min.grant_groups.is_empty() && min.conflicts.is_empty() && min.login.is_empty());
    assert_eq!(min.on_expiry, OnExpiry::Terminate);
    assert_eq!(min.effective_default_duration(), Duration::from_secs(3600));
    assert!(web.max_duration.is_none() && web.approval.is_none());
}

#[test]
fn display_quotes_ambiguous_literals() {
    let text = format!(
        "{HEAD}[[profile.command]]\npath = \"/usr/bin/echo\"\nargs = [\"\", \"a b\", \"\\u001b[31m\", {{ one_of = [\"x|y\", \"z\"] }}, {{ regex = \"a\\nb\" }}]\n"
    );
    let (profiles, diags) = parse(&text);
    assert!(errors(&text).is_empty(), "{diags:?}");
    assert_eq!(
        profiles[0].commands[0].display(),
        r#"/usr/bin/echo "" "a b" "\u{1b}[31m" {"x|y"|z} /a\nb/"#
    );
}

/// (name, text, line, col, expected message fragment) — each must produce that error.
#[test]
fn error_table() {
    let cmd = |body: &str| format!("{HEAD}[[profile.command]]\n{body}\n");
    let cases: Vec<(&str, String, usize, usize, &str)> = vec![
        // Structure and unknown keys, with positions.
        (
            "unknown top-level key",
            "foo = 1\n".into(),
            1,
            1,
            "unknown top-level key `foo`",
        ),
        (
            "unknown top-level table",
            "[admins]\nx = 1\n".into(),
            1,
            2,
            "unknown top-level key `admins`",
        ),
        (
            "unknown profile key",
            format!("{HEAD}colour = \"red\"\n"),
            4,
            1,
            "unknown field `colour`",
        ),
        (
            "profile key with wrong case",
            format!("{HEAD}  Name = \"x\"\n"),
            4,
            3,
            "unknown field `Name`",
        ),
        (
            "unknown command key",
            cmd("path = \"/usr/bin/echo\"\nargv = []"),
            6,
            1,
            "unknown field `argv`",
        ),
        (
            "unknown argument pattern key",
            cmd("path = \"/usr/bin/echo\"\nargs = [{ regx = \"a\" }]"),
            6,
            11,
            "unknown field `regx`",
        ),
        (
            "profile as an integer",
            "profile = 1\n".into(),
            1,
            11,
            "array of tables",
        ),
        (
            "profile as a single table",
            "[profile]\nname = \"x\"\n".into(),
            1,
            1,
            "array of tables",
        ),
        (
            "value missing after =",
            "[[profile]]\nname = \n".into(),
            2,
            8,
            "",
        ),
        (
            "name given twice",
            "[[profile]]\nname = \"a\"\nname = \"b\"\n".into(),
            3,
            1,
            "duplicate key",
        ),
        // Wrong types.
        (
            "name is an integer",
            "[[profile]]\nname = 3\nusers = [\"alice\"]\n".into(),
            2,
            8,
            "invalid type: integer",
        ),
        (
            "users is a string",
            "[[profile]]\nname = \"p\"\nusers = \"alice\"\n".into(),
            3,
            9,
            "invalid type",
        ),
        (
            "access is a boolean",
            format!("{HEAD}access = true\n"),
            4,
            10,
            "invalid type",
        ),
        (
            "argument pattern is an integer",
            cmd("path = \"/usr/bin/echo\"\nargs = [1]"),
            6,
            9,
            "argument pattern",
        ),
        (
            "args is a string",
            cmd("path = \"/usr/bin/echo\"\nargs = \"x\""),
            6,
            8,
            "invalid type",
        ),
        (
            "host label value is an integer",
            format!("{HEAD}host_labels = {{ env = 1 }}\n"),
            4,
            23,
            "invalid type",
        ),
        // Names.
        (
            "profile without a name",
            "[[profile]]\nusers = [\"alice\"]\n".into(),
            1,
            1,
            "no `name`",
        ),
        (
            "profile name with capitals",
            "[[profile]]\nname = \"Web\"\nusers = [\"a\"]\n".into(),
            2,
            8,
            "invalid profile name",
        ),
        (
            "empty profile name",
            "[[profile]]\nname = \"\"\nusers = [\"a\"]\n".into(),
            2,
            8,
            "invalid profile name",
        ),
        (
            "profile name starting with '-'",
            "[[profile]]\nname = \"-web\"\nusers = [\"a\"]\n".into(),
            2,
            8,
            "invalid profile name",
        ),
        (
            "profile name with a space",
            "[[profile]]\nname = \"web admin\"\nusers = [\"a\"]\n".into(),
            2,
            8,
            "invalid profile name",
        ),
        // Cyrillic 'е' (U+0435): a homoglyph of "web".
        (
            "profile name with a Cyrillic letter",
            "[[profile]]\nname = \"w\u{435}b\"\nusers = [\"a\"]\n".into(),
            2,
            8,
            "invalid profile name",
        ),
        (
            "profile name with a combining accent",
            "[[profile]]\nname = \"cafe\u{301}\"\nusers = [\"a\"]\n".into(),
            2,
            8,
            "invalid profile name",
        ),
        (
            "profile name of 65 characters",
            format!(
                "[[profile]]\nname = \"{}\"\nusers = [\"a\"]\n",
                "a".repeat(65)
            ),
            2,
            8,
            "invalid profile name",
        ),
        (
            "user name with ':'",
            "[[profile]]\nname = \"p\"\nusers = [\"a:b\"]\n".into(),
            3,
            10,
            "invalid user name",
        ),
        (
            "empty user name",
            "[[profile]]\nname = \"p\"\nusers = [\"\"]\n".into(),
            3,
            10,
            "is empty",
        ),
        (
            "group name with ','",
            "[[profile]]\nname = \"p\"\ngroups = [\"a,b\"]\n".into(),
            3,
            11,
            "invalid group name",
        ),
        (
            "group name with a space",
            "[[profile]]\nname = \"p\"\ngroups = [\"a b\"]\n".into(),
            3,
            11,
            "whitespace",
        ),
        (
            "user name with '/'",
            "[[profile]]\nname = \"p\"\nusers = [\"../root\"]\n".into(),
            3,
            10,
            "'/'",
        ),
        (
            "run_as with a space",
            format!("{HEAD}run_as = \"ro ot\"\n"),
            4,
            10,
            "invalid run_as user",
        ),
        (
            "run_as_group with ':'",
            format!("{HEAD}run_as_group = \"a:b\"\n"),
            4,
            16,
            "invalid run_as_group",
        ),
        // Eligibility, hosts, access.
        (
            "no users and no groups",
            "[[profile]]\nname = \"p\"\n".into(),
            2,
            8,
            "no `users` and no `groups`",
        ),
        (
            "empty users and groups",
            "[[profile]]\nname = \"p\"\nusers = []\ngroups = []\n".into(),
            2,
            8,
            "nobody",
        ),
        (
            "hosts = []",
            format!("{HEAD}hosts = []\n"),
            4,
            9,
            "hosts = []",
        ),
        (
            "host pattern with a space",
            format!("{HEAD}hosts = [\"web 1\"]\n"),
            4,
            10,
            "invalid host pattern",
        ),
        (
            "empty host pattern",
            format!("{HEAD}hosts = [\"\"]\n"),
            4,
            10,
            "invalid host pattern",
        ),
        (
            "unknown access",
            format!("{HEAD}access = \"temporary\"\n"),
            4,
            10,
            "invalid access",
        ),
        // env_keep.
        (
            "env_keep LD_PRELOAD",
            format!("{HEAD}env_keep = [\"LD_PRELOAD\"]\n"),
            4,
            13,
            "LD_PRELOAD can never be kept: it injects code into the command",
        ),
        (
            "env_keep lower-case ld_library_path",
            format!("{HEAD}env_keep = [\"ld_library_path\"]\n"),
            4,
            13,
            "can never be kept",
        ),
        (
            "env_keep PATH",
            format!("{HEAD}env_keep = [\"PATH\"]\n"),
            4,
            13,
            "secure PATH",
        ),
        (
            "env_keep HOME",
            format!("{HEAD}env_keep = [\"HOME\"]\n"),
            4,
            13,
            "can never be kept",
        ),
        (
            "env_keep PYTHONPATH",
            format!("{HEAD}env_keep = [\"PYTHONPATH\"]\n"),
            4,
            13,
            "Python",
        ),
        (
            "env_keep PYTHONSTARTUP",
            format!("{HEAD}env_keep = [\"PYTHONSTARTUP\"]\n"),
            4,
            13,
            "Python",
        ),
        (
            "env_keep GIT_SSH_COMMAND",
            format!("{HEAD}env_keep = [\"GIT_SSH_COMMAND\"]\n"),
            4,
            13,
            "git",
        ),
        (
            "env_keep MALLOC_CHECK_",
            format!("{HEAD}env_keep = [\"MALLOC_CHECK_\"]\n"),
            4,
            13,
            "allocator",
        ),
        (
            "env_keep GLIBC_TUNABLES",
            format!("{HEAD}env_keep = [\"GLIBC_TUNABLES\"]\n"),
            4,
            13,
            "can never be kept",
        ),
        (
            "env_keep ELEVATE_TOKEN",
            format!("{HEAD}env_keep = [\"ELEVATE_TOKEN\"]\n"),
            4,
            13,
            "reserved",
        ),
        (
            "env_keep BASH_ENV",
            format!("{HEAD}env_keep = [\"BASH_ENV\"]\n"),
            4,
            13,
            "startup",
        ),
        (
            "env_keep IFS",
            format!("{HEAD}env_keep = [\"IFS\"]\n"),
            4,
            13,
            "can never be kept",
        ),
        (
            "env_keep NODE_OPTIONS",
            format!("{HEAD}env_keep = [\"NODE_OPTIONS\"]\n"),
            4,
            13,
            "Node",
        ),
        (
            "env_keep TMPDIR",
            format!("{HEAD}env_keep = [\"TMPDIR\"]\n"),
            4,
            13,
            "can never be kept",
        ),
        (
            "env_keep JAVA_TOOL_OPTIONS",
            format!("{HEAD}env_keep = [\"JAVA_TOOL_OPTIONS\"]\n"),
            4,
            13,
            "Java",
        ),
        (
            "env_keep name starting with a digit",
            format!("{HEAD}env_keep = [\"1BAD\"]\n"),
            4,
            13,
            "not a valid environment variable name",
        ),
        (
            "env_keep name with '-'",
            format!("{HEAD}env_keep = [\"A-B\"]\n"),
            4,
            13,
            "not a valid",
        ),
        (
            "empty env_keep name",
            format!("{HEAD}env_keep = [\"\"]\n"),
            4,
            13,
            "not a valid",
        ),
        (
            "env_keep name with '='",
            format!("{HEAD}env_keep = [\"A=B\"]\n"),
            4,
            13,
            "not a valid",
        ),
        // Columns count characters, not bytes: "é" is 2 bytes.
        (
            "second env_keep entry after a non-ASCII one",
            format!("{HEAD}env_keep = [\"é\", \"LD_AUDIT\"]\n"),
            4,
            18,
            "LD_AUDIT can never be kept",
        ),
        // Command paths.
        (
            "command without a path",
            cmd("args = []"),
            4,
            1,
            "no `path`",
        ),
        (
            "relative command path",
            cmd("path = \"usr/bin/echo\""),
            5,
            8,
            "not absolute",
        ),
        (
            "bare command name as path",
            cmd("path = \"echo\""),
            5,
            8,
            "not absolute",
        ),
        (
            "command path starting with ./",
            cmd("path = \"./echo\""),
            5,
            8,
            "not absolute",
        ),
        (
            "empty command path",
            cmd("path = \"\""),
            5,
            8,
            "not absolute",
        ),
        (
            "command path with ..",
            cmd("path = \"/usr/bin/../bin/echo\""),
            5,
            8,
            "'..'",
        ),
        (
            "command path with /./",
            cmd("path = \"/usr/./bin/echo\""),
            5,
            8,
            "'.'",
        ),
        (
            "command path ending in /.",
            cmd("path = \"/usr/bin/.\""),
            5,
            8,
            "'.'",
        ),
        (
            "command path ending in /",
            cmd("path = \"/usr/bin/\""),
            5,
            8,
            "ends with '/'",
        ),
        (
            "command path /",
            cmd("path = \"/\""),
            5,
            8,
            "root directory",
        ),
        (
            "command path with //",
            cmd("path = \"/usr//bin/echo\""),
            5,
            8,
            "empty component",
        ),
        (
            "command path with NUL",
            cmd("path = \"/usr/bin/echo\\u0000x\""),
            5,
            8,
            "NUL",
        ),
        // Argument patterns.
        (
            "unbalanced regex",
            cmd("path = \"/usr/bin/echo\"\nargs = [{ regex = \"(\" }]"),
            6,
            19,
            "invalid regex",
        ),
        (
            "regex escaping its anchors",
            cmd("path = \"/usr/bin/echo\"\nargs = [{ regex = \"a)|(b\" }]"),
            6,
            19,
            "invalid regex",
        ),
        (
            "regex ending in an (?x) comment",
            cmd("path = \"/usr/bin/echo\"\nargs = [{ regex = \"(?x)a#\" }]"),
            6,
            19,
            "anchored",
        ),
        (
            "regex over the size limit",
            cmd("path = \"/usr/bin/echo\"\nargs = [{ regex = \"a{1000}{1000}\" }]"),
            6,
            19,
            "invalid regex",
        ),
        (
            "one_of = []",
            cmd("path = \"/usr/bin/echo\"\nargs = [\"x\", { one_of = [] }]"),
            6,
            25,
            "one_of = []",
        ),
        (
            "both one_of and regex",
            cmd("path = \"/usr/bin/echo\"\nargs = [{ one_of = [\"a\"], regex = \"b\" }]"),
            6,
            9,
            "exactly one of",
        ),
        (
            "empty argument pattern table",
            cmd("path = \"/usr/bin/echo\"\nargs = [{}]"),
            6,
            9,
            "exactly one of",
        ),
        (
            "one_of with an integer",
            cmd("path = \"/usr/bin/echo\"\nargs = [{ one_of = [1] }]"),
            6,
            21,
            "invalid type",
        ),
        (
            "unknown rest",
            cmd("path = \"/usr/bin/echo\"\nrest = \"some\""),
            6,
            8,
            "invalid rest",
        ),
        // Duplicates within one file.
        (
            "duplicate profile name in one file",
            format!("{HEAD}[[profile]]\nname = \"p\"\nusers = [\"bob\"]\n"),
            5,
            8,
            "duplicate profile name \"p\": first defined at t.toml:2:8",
        ),
    ];
    for (name, text, line, col, want) in &cases {
        let errs = errors(text);
        assert!(
            errs.iter()
                .any(|e| e.message.contains(want)
                    && (e.location.line, e.location.col) == (*line, *col)),
            "row '{name}': expected {line}:{col} {want:?}\n--- text:\n{text}--- got: {:#?}",
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>()
        );
        // Errors make the profile invalid.
        assert!(
            parse(text).0.len() <= 1,
            "row '{name}': an invalid profile was accepted: {text}"
        );
    }
}

#[test]
fn invalid_profiles_are_dropped_and_all_errors_reported() {
    let text = format!(
        "{HEAD}access = \"x\"\nenv_keep = [\"LD_PRELOAD\", \"PATH\"]\n[[profile.command]]\npath = \"rel\"\n[[profile]]\nname = \"ok\"\nusers = [\"bob\"]\n[[profile]]\nname = \"Bad\"\nbogus = 1\n"
    );
    let (profiles, diags) = parse(&text);
    let errs: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert_eq!(errs.len(), 5, "{errs:#?}");
    // Sorted by position.
    let lines: Vec<usize> = errs.iter().map(|e| e.location.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].name, "ok");
}

/// (name, text, expected warning fragment, line)
#[test]
fn warning_table() {
    let cases: Vec<(&str, String, &str, usize)> = vec![
        ("unknown user", "[[profile]]\nname = \"p\"\nusers = [\"mallory\"]\n[[profile.command]]\npath = \"/usr/bin/echo\"\n".into(), "unknown user \"mallory\"", 3),
        ("unknown group", "[[profile]]\nname = \"p\"\ngroups = [\"nogroup\"]\n[[profile.command]]\npath = \"/usr/bin/echo\"\n".into(), "unknown group \"nogroup\"", 3),
        ("unknown run_as user", format!("{HEAD}run_as = \"ghost\"\n[[profile.command]]\npath = \"/usr/bin/echo\"\n"), "run_as user \"ghost\" does not exist", 4),
        ("unknown run_as_group", format!("{HEAD}run_as_group = \"ghosts\"\n[[profile.command]]\npath = \"/usr/bin/echo\"\n"), "run_as_group \"ghosts\" does not exist", 4),
        ("command path missing on this host", format!("{HEAD}[[profile.command]]\npath = \"/usr/bin/nonexistent\"\n"), "does not exist on this host", 5),
        ("standing profile without commands", HEAD.to_string(), "grants nothing", 2),
        ("explicitly standing profile without commands", format!("{HEAD}access = \"standing\"\n"), "grants nothing", 2),
        ("shell with free arguments as root", format!("{HEAD}[[profile.command]]\npath = \"/bin/bash\"\nrest = \"any\"\n"), "pin its arguments", 5),
        ("command under /tmp", format!("{HEAD}[[profile.command]]\npath = \"/tmp/tool\"\n"), "under /tmp", 5),
    ];
    for (name, text, want, line) in &cases {
        assert!(
            errors(text).is_empty(),
            "row '{name}': {text}: {:?}",
            errors(text)
        );
        let w = warnings(text);
        assert!(
            w.iter()
                .any(|d| d.message.contains(want) && d.location.line == *line),
            "row '{name}': expected {want:?} at line {line}\n{text}\ngot {w:#?}"
        );
    }
    // A lease profile without commands is fine (it may only grant groups). (Without
    // max_duration it would be warned about: see lease_warning_table.)
    let lease = format!("{HEAD}access = \"lease\"\nmax_duration = \"1h\"\n");
    assert!(parse(&lease).1.is_empty(), "{:?}", parse(&lease).1);
    // A clean profile has no warnings at all.
    let clean = format!("{HEAD}[[profile.command]]\npath = \"/usr/bin/uptime\"\n");
    assert!(parse(&clean).1.is_empty(), "{:?}", parse(&clean).1);
}

#[test]
fn regex_is_anchored_to_the_whole_argument() {
    // (regex, argument, matches)
    let cases: &[(&str, &str, bool)] = &[
        ("a", "a", true),
        ("a", "ba", false),
        ("a", "ab", false),
        ("a", "", false),
        ("a", "a\n", false),
        ("a|b", "a", true),
        ("a|b", "b", true),
        ("a|b", "ab", false),
        ("a|b", "xb", false),
        ("a|b", "ax", false),
        ("(?m)a", "a", true),
        ("(?m)a", "a\nb", false),
        ("(?m)a", "b\na", false),
        ("(?m)^a$", "a\nb", false),
        ("(?s).*", "any\nthing", true),
        ("[0-9]+", "12", true),
        ("[0-9]+", "12a", false),
        ("", "", true),
        ("", "x", false),
        ("x*", "", true),
        ("café", "café", true),
        ("café", "cafe\u{301}", false),
        ("(?i)abc", "ABC", true),
        ("--since=[0-9:-]+", "--since=2024-01-01", true),
        ("--since=[0-9:-]+", "--since=2024-01-01;sh", false),
    ];
    for (src, arg, want) in cases {
        let re = compile_arg_regex(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let p = ArgPattern::Regex {
            source: src.to_string(),
            re,
        };
        assert_eq!(p.matches(arg), *want, "regex {src:?} vs {arg:?}");
    }
    for bad in ["(", "a)|(b", "[", "(?x)a#", "\\", "a{99999999}"] {
        assert!(compile_arg_regex(bad).is_err(), "{bad:?} compiled");
    }
}

#[test]
fn host_glob_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("web-*", "web-01", true),
        ("web-*", "WEB-01", true),
        ("WEB-*", "web-01", true),
        ("web-*", "web-", true),
        ("web-*", "webx-01", false),
        ("web-*", "aweb-01", false),
        ("web-??", "web-01", true),
        ("web-??", "web-1", false),
        ("web-??", "web-001", false),
        ("*", "", true),
        ("*", "anything", true),
        ("", "", true),
        ("", "a", false),
        ("*.example.net", "a.b.example.net", true),
        ("*.example.net", "example.net", false),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "aXbY", false),
        ("a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ("db?", "db\u{e9}", true),
    ];
    for (pat, name, want) in cases {
        assert_eq!(host_glob_matches(pat, name), *want, "{pat:?} vs {name:?}");
    }
}

const MATCH_POLICY: &str = r#"
[[profile]]
name = "web"
hosts = ["web-*"]
users = ["alice"]
groups = ["webops"]

[[profile.command]]
path = "/usr/bin/systemctl"
args = ["restart", { one_of = ["nginx.service", "php-fpm.service"] }]

[[profile.command]]
path = "/usr/bin/journalctl"
args = ["-u", "nginx.service", { regex = "--since=[0-9:-]+" }]

[[profile.command]]
path = "/usr/bin/uptime"

[[profile.command]]
path = "/usr/bin/echo"
args = ["x"]
rest = "any"

[[profile]]
name = "prod-only"
host_labels = { env = "prod", tier = "1" }
users = ["alice"]

[[profile.command]]
path = "/usr/bin/prod-tool"

[[profile]]
name = "db-admin"
groups = ["dba"]
run_as = "postgres"
access = "lease"

[[profile.command]]
path = "/usr/bin/psql"
args = ["-d", "app"]

[[profile]]
name = "db-standing"
users = ["carol"]

[[profile.command]]
path = "/usr/bin/psql"
args = ["-d", "app"]

[[profile]]
name = "anchors"
users = ["dave"]

[[profile.command]]
path = "/usr/bin/a"
args = [{ regex = "a" }]

[[profile.command]]
path = "/usr/bin/ab"
args = [{ regex = "a|b" }]

[[profile.command]]
path = "/usr/bin/empty"
args = [""]

[[profile.command]]
path = "/usr/bin/uni"
args = ["café"]

[[profile.command]]
path = "/bin/systemctl"
args = ["status"]

[[profile.command]]
path = "/usr/local/bin/sc"
args = ["show"]

[[profile.command]]
path = "/usr/bin/m"
args = [{ one_of = ["x", "é"] }]
"#;

fn match_policy() -> Policy {
    let (profiles, diags) = parse(MATCH_POLICY);
    assert!(
        !diags.iter().any(|d| d.severity == Severity::Error),
        "{diags:#?}"
    );
    Policy {
        profiles,
        ..Policy::default()
    }
}

#[derive(Debug)]
enum Want {
    Allow(&'static str),
    Deny(DenyReason),
}

/// `who` is "user" or "user:group1,group2"; `host` is "name" or "name[k=v,k=v]";
/// `opts` holds "-p NAME", "-u USER" and "+PROFILE" (a held lease), space-separated.
fn decide_case(
    policy: &Policy,
    who: &str,
    host: &str,
    opts: &str,
    path: &str,
    args: &[&str],
) -> (Verdict<'static>, String)
where
{
    // Leak for a 'static verdict: tests only.
    let policy: &'static Policy = Box::leak(Box::new(policy.clone()));
    let (user, groups) = who.split_once(':').unwrap_or((who, ""));
    let subject = Subject {
        uid: elevate_base::Uid(1000),
        user: user.to_string(),
        groups: groups
            .split(',')
            .filter(|g| !g.is_empty())
            .map(String::from)
            .collect(),
    };
    let (name, labels) = host.split_once('[').unwrap_or((host, ""));
    let labels: BTreeMap<String, String> = labels
        .trim_end_matches(']')
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let hostinfo = HostInfo {
        name: name.to_string(),
        labels,
    };
    let mut profile = None;
    let mut run_as = None;
    let mut leases: Vec<String> = Vec::new();
    let mut words = opts.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "-p" => profile = words.next(),
            "-u" => run_as = words.next(),
            l => leases.push(l.trim_start_matches('+').to_string()),
        }
    }
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let query = Query {
        path: Path::new(path),
        args: &args,
        profile,
        run_as,
    };
    let v = policy.decide(&hostinfo, &subject, &query, &|p| leases.contains(&p.name));
    let text = match &v {
        Verdict::Allow { profile, rule } => format!("allow {} {}", profile.name, rule.display()),
        Verdict::Deny(d) => format!("deny {:?} ({})", d.reason, d.message()),
    };
    (v, text)
}

#[test]
fn match_table() {
    use DenyReason::*;
    use Want::*;
    let policy = match_policy();
    let lease_db = || LeaseRequired {
        profiles: vec!["db-admin".into()],
    };
    let run_as = |u: &str| RunAsNotAllowed {
        requested: u.into(),
    };
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
        Want,
    );
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        // Users, groups, hosts.
        ("alice", "web-01", "", "/usr/bin/systemctl", &["restart", "nginx.service"], Allow("web")),
        ("alice", "WEB-01", "", "/usr/bin/systemctl", &["restart", "php-fpm.service"], Allow("web")),
        ("bob:users,webops", "web-01", "", "/usr/bin/systemctl", &["restart", "nginx.service"], Allow("web")),
        ("bob:users", "web-01", "", "/usr/bin/systemctl", &["restart", "nginx.service"], Deny(NoEligibleProfile)),
        ("alice", "db-01", "", "/usr/bin/systemctl", &["restart", "nginx.service"], Deny(NoEligibleProfile)),
        ("alice", "webx-01", "", "/usr/bin/systemctl", &["restart", "nginx.service"], Deny(NoEligibleProfile)),
        ("ALICE", "web-01", "", "/usr/bin/systemctl", &["restart", "nginx.service"], Deny(NoEligibleProfile)),
        ("alice:WEBOPS", "web-01", "", "/usr/bin/systemctl", &["restart", "nginx.service"], Allow("web")),
        ("mallory:Webops", "web-01", "", "/usr/bin/systemctl", &["restart", "nginx.service"], Deny(NoEligibleProfile)),
        // Host labels: all must be equal.
        ("alice", "db-01[env=prod,tier=1]", "", "/usr/bin/prod-tool", &[], Allow("prod-only")),
        ("alice", "db-01[env=prod,tier=1,x=y]", "", "/usr/bin/prod-tool", &[], Allow("prod-only")),
        ("alice", "db-01[env=prod]", "", "/usr/bin/prod-tool", &[], Deny(NoEligibleProfile)),
        ("alice", "db-01[env=Prod,tier=1]", "", "/usr/bin/prod-tool", &[], Deny(NoEligibleProfile)),
        ("alice", "web-01[env=staging,tier=1]", "", "/usr/bin/prod-tool", &[], Deny(CommandNotAllowed)),
        // Arguments.
        ("alice", "web-01", "", "/usr/bin/systemctl", &["restart", "apache2.service"], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/systemctl", &["restart"], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/systemctl", &["restart", "nginx.service", "x"], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/systemctl", &["Restart", "nginx.service"], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/systemctl", &["restart", "nginx.service\0"], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/systemctl", &[], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/journalctl", &["-u", "nginx.service", "--since=2024-01-01"], Allow("web")),
        ("alice", "web-01", "", "/usr/bin/journalctl", &["-u", "nginx.service", "--since=x"], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/journalctl", &["-u", "nginx.service", "--since=1 --follow"], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/uptime", &[], Allow("web")),
        ("alice", "web-01", "", "/usr/bin/uptime", &[""], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/echo", &["x"], Allow("web")),
        ("alice", "web-01", "", "/usr/bin/echo", &["x", "y", "-z"], Allow("web")),
        ("alice", "web-01", "", "/usr/bin/echo", &[], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/echo", &["y", "x"], Deny(CommandNotAllowed)),
        // Paths are compared byte for byte with the canonical path.
        ("alice", "web-01", "", "/usr/bin//systemctl", &["restart", "nginx.service"], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/../bin/systemctl", &["restart", "nginx.service"], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/systemctl/", &["restart", "nginx.service"], Deny(CommandNotAllowed)),
        ("alice", "web-01", "", "/usr/bin/Systemctl", &["restart", "nginx.service"], Deny(CommandNotAllowed)),
        // run_as.
        ("alice", "web-01", "-u root", "/usr/bin/systemctl", &["restart", "nginx.service"], Allow("web")),
        ("alice", "web-01", "-u postgres", "/usr/bin/systemctl", &["restart", "nginx.service"], Deny(run_as("postgres"))),
        ("alice", "web-01", "-u nobody", "/usr/bin/uptime", &["-x"], Deny(run_as("nobody"))),
        // Leases.
        ("eve:dba", "db-01", "", "/usr/bin/psql", &["-d", "app"], Deny(lease_db())),
        ("eve:dba", "db-01", "+db-admin", "/usr/bin/psql", &["-d", "app"], Allow("db-admin")),
        ("eve:dba", "db-01", "+db-admin -u postgres", "/usr/bin/psql", &["-d", "app"], Allow("db-admin")),
        ("eve:dba", "db-01", "+db-admin -u root", "/usr/bin/psql", &["-d", "app"], Deny(run_as("root"))),
        ("eve:dba", "db-01", "-u root", "/usr/bin/psql", &["-d", "app"], Deny(run_as("root"))),
        ("eve:dba", "db-01", "+db-admin", "/usr/bin/psql", &["-d", "other"], Deny(CommandNotAllowed)),
        ("eve:dba", "db-01", "", "/usr/bin/psql", &["-d", "other"], Deny(CommandNotAllowed)),
        // Standing access wins over a lease profile the caller holds no lease on...
        ("carol:dba", "db-01", "", "/usr/bin/psql", &["-d", "app"], Allow("db-standing")),
        // ...and with the lease, the first profile in load order wins.
        ("carol:dba", "db-01", "+db-admin", "/usr/bin/psql", &["-d", "app"], Allow("db-admin")),
        ("carol:dba", "db-01", "+db-admin -u root", "/usr/bin/psql", &["-d", "app"], Allow("db-standing")),
        // -p.
        ("alice", "web-01", "-p nope", "/usr/bin/uptime", &[], Deny(UnknownProfile("nope".into()))),
        ("alice", "web-01", "-p db-admin", "/usr/bin/psql", &["-d", "app"], Deny(NotEligible("db-admin".into()))),
        ("alice", "web-01", "-p prod-only", "/usr/bin/prod-tool", &[], Deny(NotEligible("prod-only".into()))),
        ("alice", "web-01", "-p web", "/usr/bin/uptime", &[], Allow("web")),
        ("carol:dba", "db-01", "-p db-admin", "/usr/bin/psql", &["-d", "app"], Deny(lease_db())),
        ("carol:dba", "db-01", "-p db-standing", "/usr/bin/psql", &["-d", "app"], Allow("db-standing")),
        // Anchoring, empty strings, Unicode: byte-exact.
        ("dave", "h", "", "/usr/bin/a", &["a"], Allow("anchors")),
        ("dave", "h", "", "/usr/bin/a", &["ba"], Deny(CommandNotAllowed)),
        ("dave", "h", "", "/usr/bin/a", &["ab"], Deny(CommandNotAllowed)),
        ("dave", "h", "", "/usr/bin/a", &[""], Deny(CommandNotAllowed)),
        ("dave", "h", "", "/usr/bin/ab", &["a"], Allow("anchors")),
        ("dave", "h", "", "/usr/bin/ab", &["b"], Allow("anchors")),
        ("dave", "h", "", "/usr/bin/ab", &["ab"], Deny(CommandNotAllowed)),
        ("dave", "h", "", "/usr/bin/ab", &["xb"], Deny(CommandNotAllowed)),
        ("dave", "h", "", "/usr/bin/empty", &[""], Allow("anchors")),
        ("dave", "h", "", "/usr/bin/empty", &[], Deny(CommandNotAllowed)),
        ("dave", "h", "", "/usr/bin/empty", &[" "], Deny(CommandNotAllowed)),
        ("dave", "h", "", "/usr/bin/empty", &["", ""], Deny(CommandNotAllowed)),
        ("dave", "h", "", "/usr/bin/uni", &["caf\u{e9}"], Allow("anchors")),
        ("dave", "h", "", "/usr/bin/uni", &["cafe\u{301}"], Deny(CommandNotAllowed)),
        ("dave", "h", "", "/usr/bin/uni", &["CAF\u{c9}"], Deny(CommandNotAllowed)),
        ("dave", "h", "", "/usr/bin/m", &["\u{e9}"], Allow("anchors")),
        ("dave", "h", "", "/usr/bin/m", &["e\u{301}"], Deny(CommandNotAllowed)),
        // Symlinked command paths: rules written through a link match the canonical path.
        ("dave", "h", "", "/usr/bin/systemctl", &["status"], Allow("anchors")),
        ("dave", "h", "", "/usr/bin/systemctl", &["show"], Allow("anchors")),
        ("dave", "h", "", "/bin/systemctl", &["status"], Deny(CommandNotAllowed)),
    ];
    for (who, host, opts, path, args, want) in cases {
        let (v, text) = decide_case(&policy, who, host, opts, path, args);
        let ok = match (&v, &want) {
            (Verdict::Allow { profile, .. }, Allow(name)) => profile.name == *name,
            (Verdict::Deny(d), Deny(reason)) => d.reason == *reason,
            _ => false,
        };
        assert!(
            ok,
            "{who}@{host} {opts} {path} {args:?}: want {want:?}, got {text}"
        );
    }
}

#[test]
fn symlinked_commands_match_either_way() {
    // The daemon resolves what the user typed; rules are stored canonical.
    let sys = sys();
    let policy = match_policy();
    for typed in [
        "/bin/systemctl",
        "/usr/bin/systemctl",
        "/usr/local/bin/sc",
        "systemctl",
        "sc",
    ] {
        let path = resolve_command(typed, &sys).unwrap_or_else(|e| panic!("{typed}: {e}"));
        assert_eq!(path, Path::new("/usr/bin/systemctl"));
        let args = vec!["restart".to_string(), "nginx.service".to_string()];
        let subject = Subject {
            uid: elevate_base::Uid(1),
            user: "alice".into(),
            groups: vec![],
        };
        let host = HostInfo {
            name: "web-1".into(),
            labels: BTreeMap::new(),
        };
        let q = Query {
            path: &path,
            args: &args,
            profile: None,
            run_as: None,
        };
        assert!(policy.decide(&host, &subject, &q, &|_| false).is_allow());
    }
}

#[test]
fn nearest_message_and_hint() {
    let policy = match_policy();
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
        Option<Mismatch>,
        &'static str,
        Option<&'static str>,
    );
    let arg = |index: usize, arg: &str, pattern: &str| {
        Some(Mismatch::Arg {
            index,
            arg: arg.into(),
            pattern: pattern.into(),
        })
    };
    let list = Some("see what you may run: elevate list");
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("alice", "web-01", "", "/usr/bin/systemctl", &["restart", "apache2.service"],
            arg(1, "apache2.service", "{nginx.service|php-fpm.service}"),
            "argument 2 \"apache2.service\" does not match {nginx.service|php-fpm.service}", list),
        ("alice", "web-01", "", "/usr/bin/systemctl", &["restart"],
            Some(Mismatch::TooFewArgs { expected: 2, got: 1 }), "expects 2 argument(s), got 1", list),
        ("alice", "web-01", "", "/usr/bin/systemctl", &["restart", "nginx.service", "--now"],
            Some(Mismatch::TooManyArgs { allowed: 2, got: 3 }), "allows only 2 argument(s), got 3", None),
        ("alice", "web-01", "", "/usr/bin/journalctl", &["-u", "nginx.service", "--since=\x1b[2J"],
            arg(2, "--since=\x1b[2J", "/--since=[0-9:-]+/"), "\"--since=\\u{1b}[2J\"", None),
        ("alice", "web-01", "", "/usr/bin/true", &[],
            None, "command not allowed by any of your profiles", None),
        ("eve:dba", "db-01", "", "/usr/bin/psql", &["-d", "app"],
            None, "needs an active lease on profile db-admin", Some("request a lease: elevate request db-admin")),
        ("nobody", "db-01", "", "/usr/bin/psql", &["-d", "app"],
            None, "no policy profile applies to you", None),
        ("alice", "web-01", "-u postgres", "/usr/bin/uptime", &[],
            None, "as postgres", list),
    ];
    for (who, host, opts, path, args, mismatch, msg, hint) in cases {
        let (v, text) = decide_case(&policy, who, host, opts, path, args);
        let Verdict::Deny(d) = v else {
            panic!("allowed: {text}")
        };
        assert_eq!(d.nearest.as_ref().map(|n| n.2.clone()), mismatch, "{text}");
        assert!(d.message().contains(msg), "{:?} lacks {msg:?}", d.message());
        assert!(!d.message().contains('\x1b'), "raw escape in message");
        if let Some(h) = hint {
            assert_eq!(d.hint().as_deref(), Some(h));
        }
    }
    // The nearest rule is the one that matched the most leading arguments.
    let (v, _) = decide_case(&policy, "alice", "web-01", "", "/usr/bin/echo", &["y"]);
    let Verdict::Deny(d) = v else { panic!() };
    let (p, r, _) = d.nearest.expect("nearest");
    assert_eq!(
        (p.name.as_str(), r.display().as_str()),
        ("web", "/usr/bin/echo x ...")
    );
}

#[test]
fn policy_helpers() {
    let policy = match_policy();
    let alice = Subject {
        uid: elevate_base::Uid(1),
        user: "alice".into(),
        groups: vec!["users".into()],
    };
    let web = HostInfo {
        name: "web-7".into(),
        labels: BTreeMap::new(),
    };
    let names: Vec<&str> = policy
        .applicable(&web, &alice)
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["web"]);
    let prod = HostInfo {
        name: "web-7".into(),
        labels: [("env", "prod"), ("tier", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let names: Vec<&str> = policy
        .applicable(&prod, &alice)
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["web", "prod-only"]);
    let p = policy.profile("db-admin").expect("db-admin");
    assert!(p.applies_to_host(&web));
    assert!(!p.is_eligible(&alice));
    assert!(p.is_eligible(&Subject {
        uid: elevate_base::Uid(2),
        user: "x".into(),
        groups: vec!["dba".into()]
    }));
    assert!(policy.profile("DB-ADMIN").is_none());
    assert!(policy.profile("").is_none());
}

// ---------------------------------------------------------------------------------------------
// Loading from disk. Tests run as root, so ownership can be set freely.

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "elevate-policy-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).expect("mkdir");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        TempDir(p)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn strict() -> LoadOptions {
    LoadOptions {
        check_permissions: true,
    }
}

fn lax() -> LoadOptions {
    LoadOptions {
        check_permissions: false,
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // Whatever we create is owned by our euid.
    let probe = TempDir::new("whoami");
    std::fs::metadata(&probe.0)
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

const GOOD_A: &str = "[[profile]]\nname = \"a\"\nusers = [\"alice\"]\n[[profile.command]]\npath = \"/usr/bin/uptime\"\n";
const GOOD_B: &str = "[[profile]]\nname = \"b\"\nusers = [\"bob\"]\n[[profile.command]]\npath = \"/usr/bin/uptime\"\n";

#[test]
fn missing_or_empty_dir_is_an_empty_policy() {
    let out = load_dir(
        Path::new("/nonexistent/elevate/policy.d"),
        &strict(),
        &sys(),
    );
    let policy = out.policy.as_ref().expect("policy");
    assert!(policy.profiles.is_empty() && policy.files.is_empty());
    assert_eq!(
        policy.digest,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert!(!out.has_errors());
    assert!(out.diagnostics[0].message.contains("nothing is allowed"));

    let dir = TempDir::new("empty");
    dir.write("README", "not a policy");
    dir.write("x.toml.bak", "garbage = [");
    dir.write(".hidden.toml", "garbage = [");
    dir.write("x.toml~", "garbage = [");
    dir.write(".toml", "garbage = [");
    let out = load_dir(&dir.0, &strict(), &sys());
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    assert!(out.policy.expect("policy").profiles.is_empty());
    assert!(out.diagnostics[0]
        .message
        .contains("no policy files: nothing is allowed"));
}

#[test]
fn loads_in_lexical_order_with_digest() {
    let dir = TempDir::new("order");
    dir.write("2-b.toml", GOOD_B);
    dir.write("10-a.toml", GOOD_A);
    let out = load_dir(&dir.0, &strict(), &sys());
    let policy = out.policy.expect("policy");
    assert!(out.diagnostics.is_empty(), "{:#?}", out.diagnostics);
    let names: Vec<&str> = policy.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]); // "10-a" < "2-b" bytewise
    assert_eq!(policy.files.len(), 2);
    assert!(policy.files[0].path.ends_with("10-a.toml"));
    assert_eq!(policy.files[0].sha256.len(), 64);
    assert_ne!(policy.files[0].sha256, policy.files[1].sha256);
    assert_eq!(policy.digest.len(), 64);
    assert!(policy.digest.bytes().all(|b| b.is_ascii_hexdigit()));
    // Same content: same digest. Changed content: different digest.
    let again = load_dir(&dir.0, &strict(), &sys()).policy.expect("policy");
    assert_eq!(again.digest, policy.digest);
    dir.write("2-b.toml", &format!("{GOOD_B}# comment\n"));
    let changed = load_dir(&dir.0, &strict(), &sys()).policy.expect("policy");
    assert_ne!(changed.digest, policy.digest);
    assert_eq!(changed.files[0].sha256, policy.files[0].sha256);
    assert_ne!(changed.files[1].sha256, policy.files[1].sha256);
    // Renaming a file changes the digest too.
    std::fs::rename(dir.0.join("2-b.toml"), dir.0.join("3-b.toml")).expect("rename");
    let renamed = load_dir(&dir.0, &strict(), &sys()).policy.expect("policy");
    assert_ne!(renamed.digest, changed.digest);
}

#[test]
fn duplicate_names_across_files() {
    let dir = TempDir::new("dup");
    dir.write("10-a.toml", GOOD_A);
    dir.write(
        "20-a-again.toml",
        "# again\n[[profile]]\nname = \"a\"\nusers = [\"bob\"]\n",
    );
    let out = load_dir(&dir.0, &strict(), &sys());
    assert!(out.policy.is_none());
    let errs: Vec<_> = out.errors().collect();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = errs[0];
    assert!(e.location.file.ends_with("20-a-again.toml"));
    assert_eq!((e.location.line, e.location.col), (3, 8));
    let first = format!("{}:2:8", dir.0.join("10-a.toml").display());
    assert!(e.message.contains(&first), "{}", e.message);
}

#[test]
fn all_or_nothing() {
    let dir = TempDir::new("aon");
    dir.write("10-a.toml", GOOD_A);
    dir.write(
        "20-bad.toml",
        "[[profile]]\nname = \"b\"\nusers = [\"bob\"]\nbogus = 1\n",
    );
    dir.write("30-syntax.toml", "[[profile]\n");
    let out = load_dir(&dir.0, &strict(), &sys());
    assert!(out.policy.is_none());
    let errs: Vec<String> = out.errors().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].contains("20-bad.toml:4:1: error: unknown field `bogus`"),
        "{errs:?}"
    );
    assert!(errs[1].contains("30-syntax.toml:1:"), "{errs:?}");
}

#[test]
fn bad_files_are_errors() {
    let dir = TempDir::new("badfiles");
    dir.write("10-a.toml", GOOD_A);
    // A symlink to a good file is still refused.
    std::os::unix::fs::symlink(dir.0.join("10-a.toml"), dir.0.join("20-link.toml"))
        .expect("symlink");
    std::fs::create_dir(dir.0.join("30-dir.toml")).expect("mkdir");
    std::fs::write(dir.0.join("40-big.toml"), vec![b'#'; (1 << 20) + 1]).expect("write");
    std::fs::write(
        dir.0.join("50-latin1.toml"),
        b"[[profile]]\nname = \"caf\xe9\"\n",
    )
    .expect("write");
    let out = load_dir(&dir.0, &lax(), &sys());
    assert!(out.policy.is_none());
    let errs: Vec<String> = out.errors().map(|e| e.to_string()).collect();
    let expect = [
        ("20-link.toml: error:", "symlink"),
        ("30-dir.toml: error:", "not a regular file"),
        ("40-big.toml: error:", "1 MiB"),
        ("50-latin1.toml:2:12: error:", "UTF-8"),
    ];
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    for (e, (loc, what)) in errs.iter().zip(expect) {
        assert!(
            e.contains(loc) && e.contains(what),
            "{e}: want {loc} {what}"
        );
    }
    // Exactly 1 MiB is fine.
    std::fs::remove_file(dir.0.join("20-link.toml")).expect("rm");
    std::fs::remove_dir(dir.0.join("30-dir.toml")).expect("rmdir");
    std::fs::remove_file(dir.0.join("50-latin1.toml")).expect("rm");
    std::fs::write(dir.0.join("40-big.toml"), vec![b'#'; 1 << 20]).expect("write");
    let out = load_dir(&dir.0, &lax(), &sys());
    assert!(out.policy.is_some(), "{:#?}", out.diagnostics);
    // A regular file as the "dir".
    let out = load_dir(&dir.0.join("10-a.toml"), &lax(), &sys());
    assert!(out.policy.is_none());
    assert!(out.errors().any(|e| e.message.contains("not a directory")));
}

#[test]
fn permission_checks() {
    if !is_root() {
        eprintln!("skipped: permission checks need root");
        return;
    }
    use std::os::unix::fs::chown;
    let fix_of = |p: &Path| format!("chown root:root {p} && chmod go-w {p}", p = p.display());
    // A world-writable file.
    let dir = TempDir::new("perm-mode");
    let f = dir.write("10-a.toml", GOOD_A);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = load_dir(&dir.0, &strict(), &sys());
    assert!(out.policy.is_none());
    let e = out.errors().next().expect("error");
    assert!(e.location.file == f && e.message.contains("0666"), "{e}");
    assert!(e.message.contains(&fix_of(&f)), "{e}");
    // Without the check it loads.
    assert!(load_dir(&dir.0, &lax(), &sys()).policy.is_some());
    // Group-writable is refused too.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o664)).expect("chmod");
    assert!(load_dir(&dir.0, &strict(), &sys()).policy.is_none());
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(load_dir(&dir.0, &strict(), &sys()).policy.is_some());

    // A file owned by someone else.
    chown(&f, Some(65534), None).expect("chown");
    let out = load_dir(&dir.0, &strict(), &sys());
    assert!(out.policy.is_none());
    let e = out.errors().next().expect("error");
    assert!(e.message.contains("owned by uid 65534"), "{e}");
    assert!(e.message.contains(&fix_of(&f)), "{e}");
    chown(&f, Some(0), None).expect("chown");

    // The directory itself.
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = load_dir(&dir.0, &strict(), &sys());
    assert!(out.policy.is_none());
    let e = out.errors().next().expect("error");
    assert_eq!(e.location.file, dir.0);
    assert!(e.message.contains(&fix_of(&dir.0)), "{e}");
    // load_files checks the parent dir only with check_permissions.
    let out = load_files(std::slice::from_ref(&f), &strict(), &sys());
    assert!(out.policy.is_none(), "{:#?}", out.diagnostics);
    assert!(load_files(std::slice::from_ref(&f), &lax(), &sys())
        .policy
        .is_some());
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    chown(&dir.0, Some(65534), None).expect("chown");
    assert!(load_dir(&dir.0, &strict(), &sys()).policy.is_none());
    assert!(load_files(std::slice::from_ref(&f), &strict(), &sys())
        .policy
        .is_none());
    chown(&dir.0, Some(0), None).expect("chown");
    assert!(load_files(std::slice::from_ref(&f), &strict(), &sys())
        .policy
        .is_some());
}

#[test]
fn load_files_loads_exactly_those_files() {
    let dir = TempDir::new("files");
    let a = dir.write("10-a.toml", GOOD_A);
    let b = dir.write("20-b.toml", GOOD_B);
    dir.write("30-bad.toml", "garbage");
    let out = load_files(&[b.clone(), a.clone()], &strict(), &sys());
    let policy = out.policy.expect("policy");
    let names: Vec<&str> = policy.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
    assert_eq!(policy.files.len(), 2);
    let missing = dir.0.join("nope.toml");
    let out = load_files(&[a.clone(), missing], &lax(), &sys());
    assert!(out.policy.is_none());
    assert!(out.errors().any(|e| e.message.contains("cannot open")));
    // The same files, as a dir, give the same digest.
    let only = TempDir::new("files-only");
    only.write("10-a.toml", GOOD_A);
    only.write("20-b.toml", GOOD_B);
    let d1 = load_dir(&only.0, &strict(), &sys())
        .policy
        .expect("p")
        .digest;
    let d2 = load_files(&[a, b], &strict(), &sys())
        .policy
        .expect("p")
        .digest;
    assert_eq!(d1, d2);
    // No files: empty policy, warning.
    let out = load_files(&[], &strict(), &sys());
    assert!(out.policy.is_some());
    assert!(out
        .warnings()
        .any(|w| w.message.contains("nothing is allowed")));
}

#[test]
fn example_policies_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy.d");
    // On this host: users and commands may be unknown (warnings), but no errors.
    let out = load_dir(&dir, &lax(), &RealSystem);
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    let policy = out.policy.expect("policy");
    let names: Vec<&str> = policy.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "web-restart",
            "db-admin",
            "db-auditor",
            "read-logs",
            "db-break-glass",
            "ci-deploy",
            "prod-shell"
        ]
    );
    assert_eq!(policy.logins.len(), 3);
    let shell = policy.profile("prod-shell").expect("prod-shell");
    assert!(shell.login == ["sshd"] && shell.authenticate);
    assert!(policy.admin.groups == ["sre-leads"] && policy.admin.location.is_some());
    let db = policy.profile("db-admin").expect("db-admin");
    assert_eq!(db.max_duration, Some(Duration::from_secs(7200)));
    assert!(db.approval.is_some() && db.ticket.is_some() && db.require_reason);
    assert!(policy.conflicts_between("db-auditor", "db-admin"));
    let glass = policy.profile("db-break-glass").expect("db-break-glass");
    assert!(glass.break_glass && glass.approval.is_none());
    assert_eq!(glass.effective_default_duration(), Duration::from_secs(900));
    // On a host that has everything they name, no warning but the one each acknowledged
    // variable always draws.
    let out = load_dir(&dir, &lax(), &sys());
    let messages: Vec<&str> = out.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{:#?}", out.diagnostics);
    assert!(
        messages
            .iter()
            .all(|m| m.starts_with("env_keep_unsafe passes CI_")),
        "{messages:#?}"
    );
    let policy = out.policy.expect("policy");
    let host = HostInfo {
        name: "db-01".into(),
        labels: [("env".to_string(), "prod".to_string())].into(),
    };
    let eve = Subject {
        uid: elevate_base::Uid(1000),
        user: "eve".into(),
        groups: vec!["dba".into()],
    };
    let args: Vec<String> = ["-d", "app"].iter().map(|s| s.to_string()).collect();
    let q = Query {
        path: Path::new("/usr/bin/psql"),
        args: &args,
        profile: None,
        run_as: None,
    };
    match policy.decide(&host, &eve, &q, &|_| false) {
        Verdict::Deny(d) => assert_eq!(
            d.hint().as_deref(),
            Some("request a lease: elevate request db-admin")
        ),
        Verdict::Allow { .. } => panic!("allowed without a lease"),
    }
    match policy.decide(&host, &eve, &q, &|p| p.name == "db-admin") {
        Verdict::Allow { profile, .. } => assert_eq!(profile.run_as, "postgres"),
        Verdict::Deny(d) => panic!("{}", d.message()),
    }
}

// ---------------------------------------------------------------------------------------------
// No input panics.

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn exercise(text: &str) {
    // The whole-policy path too: [admin], [[login]] and the cross-file checks.
    if let Some(p) = crate::load::load_texts(&[("t.toml", text)], &sys()).policy {
        let who = Subject {
            uid: elevate_base::Uid(1),
            user: "alice".into(),
            groups: vec!["dba".into()],
        };
        let _ = (p.is_admin(&who), p.is_auditor(&who));
        for a in &p.profiles {
            let _ = a.effective_default_duration();
            let _ = a.approval.as_ref().map(|x| x.approver_matches(&who));
            for b in &p.profiles {
                let _ = p.conflicts_between(&a.name, &b.name);
            }
        }
    }
    let _ = elevate_base::duration::parse_duration(text);
    let (profiles, _) = parse(text);
    let policy = Policy {
        profiles,
        ..Policy::default()
    };
    let host = HostInfo {
        name: "web-01".into(),
        labels: BTreeMap::new(),
    };
    let subject = Subject {
        uid: elevate_base::Uid(1),
        user: "alice".into(),
        groups: vec!["webops".into(), "dba".into()],
    };
    let args: Vec<String> = vec!["restart".into(), "".into(), "é".into()];
    for p in &policy.profiles {
        for r in &p.commands {
            let _ = r.display();
            let q = Query {
                path: &r.canonical,
                args: &args,
                profile: Some(&p.name),
                run_as: None,
            };
            if let Verdict::Deny(d) = policy.decide(&host, &subject, &q, &|_| false) {
                let _ = (d.message(), d.hint());
            }
        }
    }
}

#[test]
fn garbage_never_panics() {
    let tokens = [
        "[[profile]]",
        "[[profile.command]]",
        "[profile]",
        "name",
        "users",
        "groups",
        "hosts",
        "host_labels",
        "run_as",
        "access",
        "env_keep",
        "path",
        "args",
        "rest",
        "regex",
        "one_of",
        " = ",
        "\"",
        "'",
        "[",
        "]",
        "{",
        "}",
        ",",
        "\n",
        " ",
        "\"lease\"",
        "\"any\"",
        "\"/usr/bin/echo\"",
        "\"web-*\"",
        "\"(\"",
        "\"a|b\"",
        "\"é\"",
        "\u{301}",
        "\0",
        "\\",
        "\\u0000",
        "1",
        "true",
        "1979-05-27",
        "#",
        "\"\"\"",
        "'''",
        "=",
        ".",
        "\"alice\"",
        "\"LD_PRELOAD\"",
        "\u{feff}",
        "\r\n",
        "\t",
        "-",
        "inf",
        "nan",
        "0x1f",
        "[admin]",
        "[[login]]",
        "default_duration",
        "max_duration",
        "require_reason",
        "ticket",
        "approval",
        "approvers",
        "count",
        "grant_groups",
        "conflicts",
        "on_expiry",
        "break_glass",
        "login",
        "services",
        "auditors",
        "\"1h30m\"",
        "\"0s\"",
        "\"99999999999999999999d\"",
        "\"group:dba\"",
        "\"keep\"",
        "\"p\"",
        "\"sshd\"",
        "-1",
        "99999999999",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let n = rng.below(60);
        let text: String = (0..n).map(|_| tokens[rng.below(tokens.len())]).collect();
        exercise(&text);
    }
    // Every prefix and a few byte-level mutations of a real policy.
    for text in [
        MATCH_POLICY,
        include_str!("../../policy.d/30-logs.toml"),
        include_str!("../../policy.d/00-admin.toml"),
        include_str!("../../policy.d/20-db.toml"),
        include_str!("../../policy.d/40-breakglass.toml"),
    ] {
        // Every prefix of the short ones; every third of the long ones (time is quadratic).
        let stride = if text.len() > 1500 { 3 } else { 1 };
        for (i, _) in text.char_indices().step_by(stride) {
            exercise(&text[..i]);
        }
        let bytes = text.as_bytes();
        for _ in 0..500 {
            let mut b = bytes.to_vec();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(b.len());
                let alphabet = b"\"[]{}=,\n\\#'x0 ";
                b[at] = alphabet[rng.below(alphabet.len())];
            }
            if let Ok(s) = std::str::from_utf8(&b) {
                exercise(s);
            }
        }
    }
    // Deep nesting and huge values.
    exercise(&format!("{HEAD}host_labels = {}\n", "[".repeat(5000)));
    exercise(&format!(
        "{HEAD}[[profile.command]]\npath = \"/usr/bin/echo\"\nargs = [{{ regex = \"{}\" }}]\n",
        "(".repeat(1000)
    ));
    exercise(&format!(
        "{HEAD}[[profile.command]]\npath = \"/usr/bin/echo\"\nargs = [{{ regex = \"{}\" }}]\n",
        "a{100}".repeat(200)
    ));
}

#[test]
fn config_load() {
    let dir = TempDir::new("config");
    let missing = crate::config::Config::load(&dir.0.join("none.toml")).expect("default");
    assert!(missing.labels.is_empty());
    let p = dir.write(
        "c.toml",
        "hostname = \"Web-01\"\n[labels]\nenv = \"prod\"\n",
    );
    let c = crate::config::Config::load(&p).expect("config");
    let host = c.host();
    assert_eq!(host.name, "web-01");
    assert_eq!(host.labels.get("env").map(String::as_str), Some("prod"));
    let p = dir.write("bad.toml", "hostname = \"x\"\ncolour = 1\n");
    let e = crate::config::Config::load(&p)
        .expect_err("unknown key")
        .to_string();
    assert!(e.contains("bad.toml:2:1:"), "{e}");
}

#[test]
fn line_col_counts_characters() {
    use crate::load::line_col;
    let t = "ab\néé x\n";
    assert_eq!(line_col(t, 0), (1, 1));
    assert_eq!(line_col(t, 3), (2, 1));
    assert_eq!(line_col(t, 8), (2, 4));
    // Inside a multi-byte character, or past the end: no panic.
    assert_eq!(line_col(t, 4), (2, 1));
    assert_eq!(line_col(t, 1000), (3, 1));
}

#[test]
fn diagnostics_display() {
    let errs = errors("foo = 1\n");
    assert_eq!(
        errs[0].to_string(),
        "t.toml:1:1: error: unknown top-level key `foo`, expected `profile`, `admin` or `login`"
    );
}

// ---------------------------------------------------------------------------------------------
// Loading through a fake file system: the loader reaches the disk only through `System`.

/// `sys()` plus one in-memory policy directory of (name, owner uid, mode, bytes).
struct MemDisk {
    dir: PathBuf,
    files: Vec<(&'static str, u32, u32, &'static str)>,
}

struct MemFile(crate::system::FileInfo, Vec<u8>);

impl crate::system::PolicyFile for MemFile {
    fn info(&self) -> std::io::Result<crate::system::FileInfo> {
        Ok(self.0)
    }
    fn read_up_to(&mut self, limit: u64) -> std::io::Result<Vec<u8>> {
        Ok(self.1.iter().take(limit as usize).copied().collect())
    }
}

impl MemDisk {
    fn info(uid: u32, mode: u32, len: usize) -> crate::system::FileInfo {
        crate::system::FileInfo {
            uid,
            mode,
            is_dir: mode & 0o170000 == 0o040000,
            is_file: mode & 0o170000 == 0o100000,
            len: len as u64,
        }
    }
}

impl crate::system::System for MemDisk {
    fn user_exists(&self, name: &str) -> bool {
        sys().user_exists(name)
    }
    fn group_exists(&self, name: &str) -> bool {
        sys().group_exists(name)
    }
    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        sys().canonicalize(path)
    }
    fn is_executable(&self, path: &Path) -> bool {
        sys().is_executable(path)
    }
    fn stat(&self, path: &Path) -> std::io::Result<crate::system::FileInfo> {
        if path == self.dir {
            return Ok(MemDisk::info(0, 0o040755, 0));
        }
        Err(std::io::ErrorKind::NotFound.into())
    }
    fn lstat(&self, path: &Path) -> std::io::Result<crate::system::FileInfo> {
        self.stat(path)
    }
    fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<std::io::Result<std::ffi::OsString>>> {
        assert_eq!(dir, self.dir);
        Ok(self.files.iter().map(|f| Ok(f.0.into())).collect())
    }
    fn open_no_follow(&self, path: &Path) -> std::io::Result<Box<dyn crate::system::PolicyFile>> {
        let (_, uid, mode, text) = self
            .files
            .iter()
            .find(|f| self.dir.join(f.0) == path)
            .ok_or(std::io::ErrorKind::NotFound)?;
        let info = MemDisk::info(*uid, *mode, text.len());
        Ok(Box::new(MemFile(info, text.as_bytes().to_vec())))
    }
}

#[test]
fn loads_through_a_fake_file_system() {
    let good = "[[profile]]\nname = \"web\"\nusers = [\"alice\"]\n[[profile.command]]\npath = \"/usr/bin/uptime\"\n";
    let mut disk = MemDisk {
        dir: PathBuf::from("/etc/elevate/policy.d"),
        files: vec![
            ("10-web.toml", 0, 0o100644, good),
            ("README", 0, 0o100644, "not policy"),
        ],
    };
    let out = load_dir(&disk.dir.clone(), &strict(), &disk);
    assert!(out.diagnostics.is_empty(), "{:#?}", out.diagnostics);
    let policy = out.policy.expect("policy");
    assert_eq!(policy.profiles.len(), 1);
    assert_eq!(policy.profiles[0].name, "web");
    // Ownership and permissions are checked on what the System reports.
    disk.files.push(("20-lax.toml", 1000, 0o100666, good));
    let out = load_dir(&disk.dir.clone(), &strict(), &disk);
    assert!(out.policy.is_none());
    let shown: Vec<String> = out.errors().map(|d| d.to_string()).collect();
    assert_eq!(
        shown,
        [
            "/etc/elevate/policy.d/20-lax.toml: error: owned by uid 1000, but policy must be owned by root; fix: chown root:root /etc/elevate/policy.d/20-lax.toml && chmod go-w /etc/elevate/policy.d/20-lax.toml",
            "/etc/elevate/policy.d/20-lax.toml: error: writable by group or others (mode 0666): anyone who can write policy is root; fix: chown root:root /etc/elevate/policy.d/20-lax.toml && chmod go-w /etc/elevate/policy.d/20-lax.toml",
        ]
    );
}
