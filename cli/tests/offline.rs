//! The offline commands, run as the built binary: `policy check`, `policy explain`,
//! `audit verify`, plus usage errors and an unreachable daemon. No daemon and no privileges
//! are needed (as root, the default permission checks are exercised too).

mod common;

use common::{current_user, elevate, files_are_root_owned, Out, TempDir};
use elevate_audit::{AuditLog, Entry, ANCHOR_FILE};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Three profiles: `ids` (anywhere), `web` (hosts web-*), `prod-only` (label env=prod).
fn good_policy(user: &str) -> String {
    format!(
        r#"[[profile]]
name = "ids"
description = "Who am I, as root"
users = ["{user}"]
run_as = "root"

[[profile.command]]
path = "/usr/bin/id"
args = [{{ one_of = ["-u", "-g"] }}]

[[profile]]
name = "web"
hosts = ["web-*"]
users = ["{user}"]

[[profile.command]]
path = "/usr/bin/true"

[[profile]]
name = "prod-only"
host_labels = {{ env = "prod" }}
users = ["{user}"]

[[profile.command]]
path = "/usr/bin/true"
"#
    )
}

/// A relative command path on line 6, column 8: one error, no warning.
fn bad_policy(user: &str) -> String {
    format!(
        "[[profile]]\nname = \"x\"\nusers = [\"{user}\"]\n\n[[profile.command]]\npath = \"bin/relative\"\n"
    )
}

/// 1-based line number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

/// `elevate --config <none> ARGS`, with `--no-permissions` appended to policy commands when
/// the test files cannot be root-owned.
struct Offline {
    dir: TempDir,
    strict: bool,
}

impl Offline {
    fn new(tag: &str) -> Offline {
        let dir = TempDir::new(tag);
        let strict = files_are_root_owned(&dir);
        Offline { dir, strict }
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut argv: Vec<OsString> = vec!["--config".into(), self.dir.no_config().into()];
        argv.extend(args.iter().map(OsString::from));
        let is_policy = args.first() == Some(&"policy");
        if is_policy && !self.strict && !args.contains(&"--no-permissions") {
            let at = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
            argv.insert(at, "--no-permissions".into());
        }
        elevate(argv)
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }
}

// ---------------------------------------------------------------- policy check

#[test]
fn check_valid_file() {
    let t = Offline::new("check-ok");
    let f = t.dir.write("good.toml", &good_policy(&current_user()));
    let out = t.run(&["policy", "check", Offline::s(&f)]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        out.stdout.trim(),
        "policy OK: 3 profiles in 1 files, 0 warnings",
        "{}",
        out.all()
    );
    assert_eq!(out.stderr, "", "{}", out.all());
}

#[test]
fn check_invalid_file_names_file_line_col() {
    let t = Offline::new("check-bad");
    let f = t.dir.write("bad.toml", &bad_policy(&current_user()));
    let out = t.run(&["policy", "check", Offline::s(&f)]);
    assert_eq!(out.code, 1, "{}", out.all());
    let want = format!("{}:6:8: error: ", f.display());
    assert!(out.stderr.contains(&want), "want {want:?}\n{}", out.all());
    assert!(out.stderr.contains("not absolute"), "{}", out.all());
    assert_eq!(
        out.stdout.trim(),
        "policy INVALID: 1 errors, 0 warnings",
        "{}",
        out.all()
    );
}

#[test]
fn check_broken_toml_is_invalid() {
    let t = Offline::new("check-toml");
    let f = t.dir.write("broken.toml", "[[profile]\nname = \"x\"\n");
    let out = t.run(&["policy", "check", Offline::s(&f)]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains(&format!("{}:1:", f.display())),
        "{}",
        out.all()
    );
    assert!(out.stdout.contains("policy INVALID"), "{}", out.all());
}

#[test]
fn check_each_file_as_the_whole_policy() {
    // Ansible's `validate: elevate policy check %s`: every file given is checked, and one
    // invalid file makes the result invalid.
    let t = Offline::new("check-files");
    let me = current_user();
    let good = t.dir.write("a.toml", &good_policy(&me));
    let bad = t.dir.write("b.toml", &bad_policy(&me));
    let out = t.run(&["policy", "check", Offline::s(&good), Offline::s(&bad)]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains(&format!("{}:6:8: error", bad.display())),
        "{}",
        out.all()
    );
    let missing = t.dir.join("missing.toml");
    let out = t.run(&["policy", "check", Offline::s(&missing)]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "{}",
        out.all()
    );
}

#[test]
fn check_directory_and_configured_default() {
    let t = Offline::new("check-dir");
    let pol = t.dir.join("policy.d");
    std::fs::create_dir(&pol).unwrap();
    std::fs::set_permissions(&pol, std::fs::Permissions::from_mode(0o755)).unwrap();
    let f = pol.join("10-good.toml");
    std::fs::write(&f, good_policy(&current_user())).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = t.run(&["policy", "check", Offline::s(&pol)]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("policy OK: 3 profiles in 1 files"),
        "{}",
        out.all()
    );

    // No PATH: the policy dir of the configuration.
    let config = t.dir.write(
        "elevated.toml",
        &format!("policy_dir = {:?}\n", pol.display().to_string()),
    );
    let mut args = vec!["--config", Offline::s(&config), "policy", "check"];
    if !t.strict {
        args.push("--no-permissions");
    }
    let out = elevate(&args);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("policy OK: 3 profiles in 1 files"),
        "{}",
        out.all()
    );

    // A directory mixed with files is a usage error.
    let out = t.run(&["policy", "check", Offline::s(&pol), Offline::s(&f)]);
    assert_eq!(out.code, 2, "{}", out.all());
}

#[test]
fn check_permissions_and_no_permissions() {
    let t = Offline::new("check-perm");
    let f = t.dir.write("ww.toml", &good_policy(&current_user()));
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
    // Same strictness as the daemon by default, whoever runs the check.
    let out = elevate([
        "--config",
        Offline::s(&t.dir.no_config()),
        "policy",
        "check",
        Offline::s(&f),
    ]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains(&format!(
            "{}: error: writable by group or others",
            f.display()
        )),
        "{}",
        out.all()
    );
    let out = elevate([
        "--config",
        Offline::s(&t.dir.no_config()),
        "policy",
        "check",
        "--no-permissions",
        Offline::s(&f),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("policy OK"), "{}", out.all());
}

#[test]
fn check_lists_profiles_for_host_and_labels() {
    let t = Offline::new("check-host");
    let f = t.dir.write("good.toml", &good_policy(&current_user()));
    let p = Offline::s(&f);
    let out = t.run(&["policy", "check", p, "--host", "WEB-1"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("on host web-1: ids, web\n"),
        "{}",
        out.all()
    );

    let out = t.run(&[
        "policy",
        "check",
        p,
        "--host",
        "db-1",
        "--labels",
        "env=prod,tier=db",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("on host db-1: ids, prod-only\n"),
        "{}",
        out.all()
    );

    let out = t.run(&["policy", "check", p, "--labels", "nonsense"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("not key=value"), "{}", out.all());
}

#[test]
fn check_json() {
    let t = Offline::new("check-json");
    let me = current_user();
    let good = t.dir.write("good.toml", &good_policy(&me));
    let out = t.run(&[
        "policy",
        "check",
        "--json",
        Offline::s(&good),
        "--host",
        "web-2",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["profiles"], 3);
    assert_eq!(v["digest"].as_str().map(str::len), Some(64));
    assert_eq!(v["host"]["profiles"], serde_json::json!(["ids", "web"]));

    let bad = t.dir.write("bad.toml", &bad_policy(&me));
    let out = t.run(&["policy", "check", "--json", Offline::s(&bad)]);
    assert_eq!(out.code, 1, "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let first = v["errors"][0].as_str().unwrap();
    assert!(
        first.starts_with(&format!("{}:6:8: error", bad.display())),
        "{first}"
    );
}

// ---------------------------------------------------------------- policy explain

/// A policy dir holding `good_policy` as good.toml; returns (test, dir, file text).
fn explain_setup(tag: &str) -> (Offline, PathBuf, String) {
    let t = Offline::new(tag);
    let text = good_policy(&current_user());
    t.dir.write("good.toml", &text);
    let dir = t.dir.path().to_path_buf();
    (t, dir, text)
}

#[test]
fn explain_allowed_names_profile_rule_and_path() {
    let (t, dir, text) = explain_setup("explain-ok");
    let f = dir.join("good.toml");
    let out = t.run(&[
        "policy",
        "explain",
        "--policy-dir",
        Offline::s(&dir),
        "--",
        "id",
        "-u",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let profile_at = format!("{}:{}:", f.display(), line_of(&text, "name = \"ids\""));
    let rule_at = format!("{}:{}:", f.display(), line_of(&text, "/usr/bin/id"));
    let s = &out.stdout;
    assert!(s.starts_with("ALLOWED"), "{}", out.all());
    assert!(
        s.contains(&format!("profile ids ({profile_at}")),
        "{}",
        out.all()
    );
    assert!(s.contains(&format!("rule {rule_at}")), "{}", out.all());
    assert!(s.contains("runs as root: /usr/bin/id -u"), "{}", out.all());
    assert!(s.contains("assuming no active lease"), "{}", out.all());
}

#[test]
fn explain_denied_names_nearest_rule_and_argument() {
    let (t, dir, text) = explain_setup("explain-deny");
    let f = dir.join("good.toml");
    let out = t.run(&[
        "policy",
        "explain",
        "--policy-dir",
        Offline::s(&dir),
        "--",
        "id",
        "foo",
    ]);
    assert_eq!(out.code, 77, "{}", out.all());
    assert!(out.stdout.starts_with("DENIED: "), "{}", out.all());
    let want = format!(
        "nearest rule {}:{}:",
        f.display(),
        line_of(&text, "/usr/bin/id")
    );
    assert!(out.stdout.contains(&want), "want {want:?}\n{}", out.all());
    assert!(
        out.stdout
            .contains(r#"argument 1 "foo" does not match {-u|-g}"#),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("assuming no active lease"),
        "{}",
        out.all()
    );
}

#[test]
fn explain_other_denials() {
    let (t, dir, _) = explain_setup("explain-more");
    let d = Offline::s(&dir);
    let cases: &[&[&str]] = &[
        // A profile that exists but not for this host.
        &["-p", "web", "--", "id", "-u"],
        // A run-as user no profile runs as.
        &["--run-as", "postgres", "--", "id", "-u"],
        // A command not found in the secure PATH.
        &["--", "no-such-command-anywhere"],
        // No rule for this command.
        &["--", "/usr/bin/uptime"],
    ];
    for extra in cases {
        let mut args = vec!["policy", "explain", "--policy-dir", d];
        args.extend_from_slice(extra);
        let out = t.run(&args);
        assert_eq!(out.code, 77, "{extra:?}\n{}", out.all());
        assert!(
            out.stdout.starts_with("DENIED: "),
            "{extra:?}\n{}",
            out.all()
        );
    }
    // An unknown user is a usage error, not a denial.
    let out = t.run(&[
        "policy",
        "explain",
        "--policy-dir",
        d,
        "--user",
        "no-such-user-xyz",
        "--",
        "id",
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("no such user"), "{}", out.all());
    // A command is required.
    let out = t.run(&["policy", "explain", "--policy-dir", d]);
    assert_eq!(out.code, 2, "{}", out.all());
}

#[test]
fn explain_for_another_user_host_and_labels() {
    let (t, dir, _) = explain_setup("explain-host");
    let d = Offline::s(&dir);
    let me = current_user();
    let out = t.run(&[
        "policy",
        "explain",
        "--policy-dir",
        d,
        "--user",
        &me,
        "--host",
        "web-9",
        "-p",
        "web",
        "--",
        "/usr/bin/true",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("profile web"), "{}", out.all());
    let out = t.run(&[
        "policy",
        "explain",
        "--policy-dir",
        d,
        "--host",
        "db-1",
        "--labels",
        "env=prod",
        "-p",
        "prod-only",
        "--",
        "/usr/bin/true",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("profile prod-only"), "{}", out.all());
}

#[test]
fn explain_json() {
    let (t, dir, _) = explain_setup("explain-json");
    let d = Offline::s(&dir);
    let out = t.run(&[
        "policy",
        "explain",
        "--json",
        "--policy-dir",
        d,
        "--",
        "id",
        "-g",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["allowed"], true);
    assert_eq!(v["profile"], "ids");
    assert_eq!(v["run_as"], "root");
    assert_eq!(v["path"], "/usr/bin/id");
    assert_eq!(v["argv"], serde_json::json!(["/usr/bin/id", "-g"]));

    let out = t.run(&[
        "policy",
        "explain",
        "--json",
        "--policy-dir",
        d,
        "--",
        "id",
        "x",
    ]);
    assert_eq!(out.code, 77, "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["allowed"], false);
    assert!(
        v["nearest"].as_str().unwrap().contains("argument 1 \"x\""),
        "{v}"
    );
}

#[test]
fn explain_refuses_an_invalid_policy() {
    let t = Offline::new("explain-invalid");
    let f = t.dir.write("bad.toml", &bad_policy(&current_user()));
    let out = t.run(&[
        "policy",
        "explain",
        "--policy-dir",
        Offline::s(t.dir.path()),
        "--",
        "id",
    ]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains(&format!("{}:6:8: error", f.display())),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("elevate policy check"), "{}", out.all());
}

// ---------------------------------------------------------------- audit verify

/// A log of three records written by the audit crate's writer, with its anchor.
fn audit_setup(tag: &str) -> (TempDir, PathBuf, PathBuf) {
    let dir = TempDir::new(tag);
    let log = dir.join("audit.jsonl");
    let anchor = dir.join(ANCHOR_FILE);
    let mut w = AuditLog::options()
        .anchor(&anchor)
        .group(None)
        .open(&log)
        .unwrap();
    w.append(&[Entry::new("daemon.start").with("pid", 1)], true)
        .unwrap();
    w.append(
        &[
            Entry::new("run.allowed").with("argv", serde_json::json!(["/usr/bin/id", "-u"])),
            Entry::new("run.exit").with("code", 0),
        ],
        true,
    )
    .unwrap();
    (dir, log, anchor)
}

fn rewrite(path: &Path, f: impl FnOnce(Vec<String>) -> Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let lines = f(text.lines().map(String::from).collect());
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

/// `elevate audit verify LOG EXTRA...`.
fn audit_verify(cfg: &str, log: &Path, extra: &[&str]) -> Out {
    let mut args = vec!["--config", cfg, "audit", "verify", Offline::s(log)];
    args.extend_from_slice(extra);
    elevate(args)
}

/// `elevate audit verify --json LOG --anchor ANCHOR`: its output, after checking the exit
/// status.
fn audit_verify_json(cfg: &str, log: &Path, anchor: &Path, code: i32) -> serde_json::Value {
    let out = elevate([
        "--config",
        cfg,
        "audit",
        "verify",
        "--json",
        Offline::s(log),
        "--anchor",
        Offline::s(anchor),
    ]);
    assert_eq!(out.code, code, "{}", out.all());
    serde_json::from_str(&out.stdout).unwrap()
}

#[test]
fn audit_verify_intact_chain() {
    let (dir, log, anchor) = audit_setup("audit-ok");
    let cfg = Offline::s(&dir.no_config()).to_string();
    // FILEs without an anchor: the end is not proven, which fails unless asked for.
    let out = elevate(["--config", &cfg, "audit", "verify", Offline::s(&log)]);
    assert_eq!(out.code, 1, "{}", out.all());
    let want = format!(
        "audit log BROKEN: {}:4: unanchored: the newest records (after seq 3) could have been \
         removed: no anchor\n",
        log.display()
    );
    assert!(out.stdout.starts_with(&want), "{}", out.all());
    let out = audit_verify(&cfg, &log, &["--no-anchor"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        out.stdout,
        "audit log OK: 3 records (seq 1..3) in 1 files, chain intact\n\
         not proven: the newest records (after seq 3) could have been removed: no anchor\n",
        "{}",
        out.all()
    );

    let out = audit_verify(&cfg, &log, &["--anchor", Offline::s(&anchor)]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("anchor matches"), "{}", out.all());

    let v = audit_verify_json(&cfg, &log, &anchor, 0);
    assert_eq!(v["ok"], true);
    assert_eq!(v["unproven"], serde_json::json!([]));
    assert_eq!(v["records"], 3);
    assert_eq!(v["last_seq"], 3);
    assert_eq!(v["problem"], serde_json::Value::Null);

    // An anchor behind the log (a crash between an append and its update) checks up to it.
    let text = std::fs::read_to_string(&log).unwrap();
    let second: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    let behind = dir.write(
        "behind.json",
        &format!("{{\"seq\":2,\"hash\":{}}}\n", second["hash"]),
    );
    let v = audit_verify_json(&cfg, &log, &behind, 0);
    assert_eq!(
        (&v["ok"], &v["anchor_checked"]),
        (&true.into(), &true.into())
    );
    let out = audit_verify(&cfg, &log, &["--anchor", Offline::s(&behind)]);
    assert!(
        out.stdout.contains(
            ", anchor matches seq 2 (the 1 records after it are newer than the anchor)\n"
        ),
        "{}",
        out.all()
    );
}

#[test]
fn audit_verify_detects_an_edited_record() {
    let (dir, log, anchor) = audit_setup("audit-edit");
    rewrite(&log, |mut l| {
        l[1] = l[1].replace("\"-u\"", "\"-g\"");
        l
    });
    let cfg = Offline::s(&dir.no_config()).to_string();
    let out = elevate(["--config", &cfg, "audit", "verify", Offline::s(&log)]);
    assert_eq!(out.code, 1, "{}", out.all());
    let want = format!("{}:2: seq 2: hash-mismatch", log.display());
    assert!(out.stdout.contains(&want), "want {want:?}\n{}", out.all());

    let v = audit_verify_json(&cfg, &log, &anchor, 1);
    assert_eq!(v["ok"], false);
    assert_eq!(v["problem"]["line"], 2);
    assert_eq!(v["problem"]["seq"], 2);
}

#[test]
fn audit_verify_detects_deletion_and_truncation() {
    let (dir, log, anchor) = audit_setup("audit-delete");
    let cfg = Offline::s(&dir.no_config()).to_string();
    let original = std::fs::read_to_string(&log).unwrap();

    rewrite(&log, |mut l| {
        l.remove(1);
        l
    });
    let out = elevate(["--config", &cfg, "audit", "verify", Offline::s(&log)]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains(&format!("{}:2: ", log.display())),
        "{}",
        out.all()
    );

    // Deleting the first record leaves a valid chain that does not start a log.
    std::fs::write(&log, &original).unwrap();
    rewrite(&log, |mut l| {
        l.remove(0);
        l
    });
    let verify_log = |extra: &[&str]| audit_verify(&cfg, &log, extra);
    let with_anchor = ["--anchor", Offline::s(&anchor)];
    let out = verify_log(&with_anchor);
    assert_eq!(out.code, 1, "{}", out.all());
    let want = format!(
        "{}:1: seq 2: missing-start: the oldest records are missing: the chain starts at seq 2",
        log.display()
    );
    assert!(out.stdout.contains(&want), "{}", out.all());
    let out = verify_log(&[&with_anchor[..], &["--allow-missing-start"]].concat());
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("\nnot proven: the oldest records (before seq 2) could have been removed"),
        "{}",
        out.all()
    );

    // Deleting the last record leaves a valid chain: only the anchor reveals it.
    std::fs::write(&log, &original).unwrap();
    rewrite(&log, |mut l| {
        l.pop();
        l
    });
    let out = verify_log(&["--no-anchor"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("(after seq 2) could"), "{}", out.all());
    let out = verify_log(&["--no-anchor", "--anchor", Offline::s(&anchor)]);
    assert_eq!(out.code, 2, "{}", out.all());
    let out = audit_verify(&cfg, &log, &["--anchor", Offline::s(&anchor)]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stdout.contains("truncated"), "{}", out.all());
}

#[test]
fn audit_verify_defaults_from_the_config() {
    // No FILE: the configured audit log, checked against the state dir's anchor.
    let (dir, log, anchor) = audit_setup("audit-config");
    let config = dir.write(
        "elevated.toml",
        &format!(
            "audit_log = {:?}\nstate_dir = {:?}\n",
            log.display().to_string(),
            dir.path().display().to_string()
        ),
    );
    let out = elevate(["--config", Offline::s(&config), "audit", "verify"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("anchor matches"), "{}", out.all());
    rewrite(&log, |mut l| {
        l.pop();
        l
    });
    let out = elevate(["--config", Offline::s(&config), "audit", "verify"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stdout.contains("truncated"), "{}", out.all());

    // Deleting the anchor as well does not make it pass: a missing anchor is not skipped.
    std::fs::remove_file(&anchor).unwrap();
    let out = elevate(["--config", Offline::s(&config), "audit", "verify"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let want = format!(
        "unanchored: the newest records (after seq 2) could have been removed: no anchor ({}: ",
        anchor.display()
    );
    assert!(out.stdout.contains(&want), "{}", out.all());
    let args = [
        "--config",
        Offline::s(&config),
        "audit",
        "verify",
        "--no-anchor",
    ];
    let out = elevate(args);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.ends_with(
            "\nnot proven: the newest records (after seq 2) could have been removed: no anchor\n"
        ),
        "{}",
        out.all()
    );
}

#[test]
fn audit_verify_warns_about_a_sealed_torn_line_and_a_gap() {
    let (dir, log, anchor) = audit_setup("audit-warn");
    let cfg = Offline::s(&dir.no_config()).to_string();
    let torn = b"{\"v\":1,\"seq\":4,\"ti";
    let mut text = std::fs::read(&log).unwrap();
    let offset = text.len();
    text.extend_from_slice(torn);
    std::fs::write(&log, &text).unwrap();
    let out = elevate(["--config", &cfg, "audit", "verify", Offline::s(&log)]);
    assert_eq!(out.code, 1, "unsealed: {}", out.all());
    // The writer seals it on opening; a gap record as the daemon writes it.
    let mut w = AuditLog::options()
        .anchor(&anchor)
        .group(None)
        .open(&log)
        .unwrap();
    let gap = Entry::new("audit.gap")
        .with("lost", 2)
        .with("events", serde_json::json!({"run.denied": 2}))
        .with("from", "2026-11-22T22:50:01.123Z")
        .with("to", "2026-11-22T22:50:02.123Z")
        .with("error", "No space left on device");
    w.append(&[gap], true).unwrap();

    let out = audit_verify(&cfg, &log, &["--anchor", Offline::s(&anchor)]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.starts_with("audit log OK: 5 records"),
        "{}",
        out.all()
    );
    let want = format!(
        "warning: {}:4: torn line ({} bytes at offset {offset}, sha256 ",
        log.display(),
        torn.len()
    );
    assert!(out.stdout.contains(&want), "want {want:?}\n{}", out.all());
    let want = format!(
        "warning: {}:6: seq 5: gap: 2 records (run.denied 2) not written between \
         2026-11-22T22:50:01.123Z and 2026-11-22T22:50:02.123Z: No space left on device",
        log.display()
    );
    assert!(out.stdout.contains(&want), "want {want:?}\n{}", out.all());

    let v = audit_verify_json(&cfg, &log, &anchor, 0);
    assert_eq!(v["ok"], true);
    let w = &v["warnings"];
    assert_eq!(
        (&w[0]["kind"], &w[0]["line"], &w[0]["seq"], &w[0]["offset"]),
        (
            &serde_json::json!("torn-line"),
            &serde_json::json!(4),
            &serde_json::json!(4),
            &serde_json::json!(offset)
        )
    );
    assert_eq!(w[0]["last_good_seq"], 3);
    assert_eq!(
        (&w[1]["kind"], &w[1]["lost"]),
        (&serde_json::json!("gap"), &serde_json::json!(2))
    );
    assert_eq!(w[1]["events"]["run.denied"], 2);
    assert_eq!(v["warnings_omitted"], 0);
}

#[test]
fn audit_verify_unreadable_file_is_66() {
    let dir = TempDir::new("audit-missing");
    let missing = dir.join("nope.jsonl");
    let out = elevate([
        "--config",
        Offline::s(&dir.no_config()),
        "audit",
        "verify",
        Offline::s(&missing),
    ]);
    assert_eq!(out.code, 66, "{}", out.all());
    assert!(
        out.stderr.starts_with("elevate: cannot read the audit log"),
        "{}",
        out.all()
    );
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "{}",
        out.all()
    );
}

// ---------------------------------------------------------------- daemon unreachable, usage

#[test]
fn unreachable_daemon_is_69_naming_the_socket() {
    let dir = TempDir::new("unreachable");
    let cfg = dir.no_config();
    let cfg = Offline::s(&cfg);
    let cases: &[&[&str]] = &[
        &["--socket", "/nonexistent/elevated.sock", "list"],
        &["--socket", "/nonexistent/elevated.sock", "list", "--", "id"],
        &["--socket", "/nonexistent/elevated.sock", "status"],
        &["--socket", "/nonexistent/elevated.sock", "id", "-u"],
        &["--socket", "/nonexistent/elevated.sock", "run", "--", "id"],
        &[
            "-u",
            "postgres",
            "--socket",
            "/nonexistent/elevated.sock",
            "psql",
        ],
    ];
    for args in cases {
        let mut argv = vec!["--config", cfg];
        argv.extend_from_slice(args);
        let out = elevate(&argv);
        assert_eq!(out.code, 69, "{args:?}\n{}", out.all());
        assert!(
            out.stderr
                .starts_with("elevate: cannot reach elevated at /nonexistent/elevated.sock: "),
            "{args:?}\n{}",
            out.all()
        );
        assert!(
            out.stderr.contains("systemctl start elevated"),
            "{}",
            out.all()
        );
    }
    // ELEVATE_SOCKET says where, when --socket does not.
    let out = std::process::Command::new(common::BIN)
        .args(["--config", cfg, "status"])
        .env("ELEVATE_SOCKET", "/nonexistent/from-env.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/from-env.sock"));
}

#[test]
fn usage_errors_are_2() {
    let dir = TempDir::new("usage");
    let cfg = dir.no_config();
    let cfg = Offline::s(&cfg);
    let cases: &[&[&str]] = &[
        &[],
        &["run"],
        &["--bogus-flag"],
        &["list", "--bogus"],
        &["policy"],
        &["policy", "frobnicate"],
        &["audit", "verify", "--anchor"],
    ];
    for args in cases {
        let mut argv = vec!["--config", cfg, "--socket", "/nonexistent/s"];
        argv.extend_from_slice(args);
        let out = elevate(&argv);
        assert_eq!(out.code, 2, "{args:?}\n{}", out.all());
    }
    // Arguments must be text: refused before anything is sent.
    let bad: Vec<OsString> = vec![
        "--config".into(),
        cfg.into(),
        "--socket".into(),
        "/nonexistent/s".into(),
        "echo".into(),
        OsString::from_vec(vec![b'a', 0xff]),
    ];
    let out = elevate(bad);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("not valid UTF-8"), "{}", out.all());
}

#[test]
fn help_documents_exit_codes_and_version_works() {
    let out = elevate(["--help"]);
    assert_eq!(out.code, 0, "{}", out.all());
    for code in ["77", "69", "70", "75", "126", "128+N"] {
        assert!(out.stdout.contains(code), "{code}\n{}", out.all());
    }
    let out = elevate(["--version"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        out.all()
    );
}

// ---------------------------------------------------------------- output

#[test]
fn a_closed_stdout_changes_nothing() {
    // `elevate policy check ... | true`: the reader may be gone before anything is written.
    // That is no crash, and the exit status is still the verdict's.
    use std::os::fd::OwnedFd;
    use std::process::{Command, Stdio};
    let t = Offline::new("closed-stdout");
    let good = t.dir.write("good.toml", &good_policy(&current_user()));
    let bad = t.dir.write("bad.toml", &bad_policy(&current_user()));
    for (file, want) in [(&good, 0), (&bad, 1)] {
        let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(reader);
        let cfg = t.dir.no_config();
        let out = Command::new(common::BIN)
            .args([
                "--config",
                Offline::s(&cfg),
                "policy",
                "check",
                "--no-permissions",
            ])
            .arg(file)
            .env_remove("ELEVATE_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::from(OwnedFd::from(writer)))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(want), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
