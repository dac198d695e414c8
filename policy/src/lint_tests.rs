//! The linter's warnings, checked through the loader (which runs it on every profile), so
//! these tests sit above both.

use crate::diag::Severity;
use crate::load::parse_str;
use crate::system::FakeSystem;
use std::path::Path;

fn lint_text(rule: &str, run_as: &str) -> Vec<String> {
    let text = format!(
        "[[profile]]\nname = \"p\"\nusers = [\"alice\"]\nrun_as = \"{run_as}\"\n[[profile.command]]\n{rule}\n"
    );
    let sys = FakeSystem::new()
        .user("alice")
        .user("deploy")
        .user_with_uid("toor", 0);
    let (profiles, diags) = parse_str(Path::new("t.toml"), &text, &sys);
    assert_eq!(profiles.len(), 1, "{diags:?}");
    diags
        .into_iter()
        .filter(|d| d.severity == Severity::Warning && !d.message.contains("does not exist"))
        .map(|d| d.message)
        .collect()
}

#[test]
fn lint_table() {
    // (name, rule, run_as, expected substring or None for no warning)
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        (
            "bare shell as root",
            r#"path = "/bin/bash""#,
            "root",
            Some("interactive session"),
        ),
        (
            "bare shell as a second uid-0 account",
            r#"path = "/bin/bash""#,
            "toor",
            Some("interactive session"),
        ),
        (
            "shell with a pinned script",
            r#"path = "/bin/bash"
           args = ["/opt/x.sh"]"#,
            "root",
            None,
        ),
        (
            "shell with free arguments as root",
            r#"path = "/bin/bash"
           rest = "any""#,
            "root",
            Some("is a shell"),
        ),
        (
            "shell with free arguments as another user",
            r#"path = "/bin/bash"
           rest = "any""#,
            "deploy",
            None,
        ),
        (
            "find with a free argument",
            r#"path = "/usr/bin/find"
           args = ["/var/log", { regex = ".*" }]"#,
            "root",
            Some("-exec"),
        ),
        (
            "find with pinned arguments",
            r#"path = "/usr/bin/find"
           args = ["/var/log", "-name", "x"]"#,
            "root",
            None,
        ),
        (
            "editor even with pinned arguments",
            r#"path = "/usr/bin/vim"
           args = ["/etc/hosts"]"#,
            "root",
            Some("even with pinned"),
        ),
        (
            "pager with free arguments",
            r#"path = "/usr/bin/less"
           rest = "any""#,
            "root",
            Some("pin its arguments"),
        ),
        (
            "versioned interpreter with free arguments",
            r#"path = "/usr/bin/python3.11"
           rest = "any""#,
            "root",
            Some("interpreter"),
        ),
        (
            "not an interpreter despite the prefix",
            r#"path = "/usr/bin/python3.11x"
           rest = "any""#,
            "root",
            None,
        ),
        (
            "bare versioned interpreter",
            r#"path = "/usr/bin/lua5.4""#,
            "root",
            Some("interactive session"),
        ),
        (
            "systemctl with pinned arguments",
            r#"path = "/usr/bin/systemctl"
           args = ["restart", { one_of = ["a", "b"] }]"#,
            "root",
            None,
        ),
        (
            "systemctl with free arguments",
            r#"path = "/usr/bin/systemctl"
           args = ["status"]
           rest = "any""#,
            "root",
            Some("pager or editor"),
        ),
        (
            "env with free arguments",
            r#"path = "/usr/bin/env"
           rest = "any""#,
            "root",
            Some("runs the command given"),
        ),
        (
            "unknown tool with free arguments",
            r#"path = "/usr/bin/mytool"
           rest = "any""#,
            "root",
            None,
        ),
        (
            "command under /tmp",
            r#"path = "/tmp/x""#,
            "deploy",
            Some("under /tmp"),
        ),
        (
            "command under /home",
            r#"path = "/home/alice/bin/x""#,
            "root",
            Some("under /home"),
        ),
        (
            "command under /run/user",
            r#"path = "/run/user/1000/x""#,
            "root",
            Some("under /run/user"),
        ),
        ("/tmpx is not /tmp", r#"path = "/tmpx/y""#, "root", None),
    ];
    for (name, rule, run_as, want) in cases {
        let got = lint_text(rule, run_as);
        match want {
            None => assert!(
                got.is_empty(),
                "row '{name}': expected no warning\n{rule} as {run_as}: {got:?}"
            ),
            Some(w) => assert!(
                got.iter().any(|m| m.contains(w)),
                "row '{name}': expected {w:?}\n{rule} as {run_as}: got {got:?}"
            ),
        }
    }
}

#[test]
fn lint_matches_canonical_basename() {
    // /usr/local/bin/helper is really bash: the canonical name is what runs.
    let sys = FakeSystem::new()
        .user("alice")
        .executable("/usr/bin/bash")
        .symlink("/usr/local/bin/helper", "/usr/bin/bash");
    let text = "[[profile]]\nname = \"p\"\nusers = [\"alice\"]\n[[profile.command]]\npath = \"/usr/local/bin/helper\"\nrest = \"any\"\n";
    let (_, diags) = parse_str(Path::new("t.toml"), text, &sys);
    assert!(
        diags.iter().any(|d| d.message.contains("bash is a shell")),
        "{diags:?}"
    );
    assert_eq!(
        diags
            .iter()
            .find(|d| d.message.contains("shell"))
            .map(|d| (d.location.line, d.location.col)),
        Some((5, 8))
    );
}
