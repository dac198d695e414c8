//! `env_keep` and `env_keep_unsafe` through the loader: inert names pass silently, names that
//! run or load code are errors in both, and every other name needs an acknowledgement that
//! always draws a warning.

use crate::diag::{Diagnostic, Severity};
use crate::env::{inert_value_ok, is_inert, keep_verdict, KeepVerdict};
use crate::load::parse_str;
use crate::model::Profile;
use crate::system::FakeSystem;
use std::path::Path;

/// Loads one profile with `keys` (TOML lines) added; its profile (if valid) and diagnostics.
fn load(keys: &str) -> (Option<Profile>, Vec<Diagnostic>) {
    let text = format!(
        "[[profile]]\nname = \"p\"\nusers = [\"alice\"]\n{keys}\n[[profile.command]]\npath = \"/usr/bin/tar\"\nargs = [\"-xf\", \"/srv/a.tar\"]\n"
    );
    let sys = FakeSystem::new().user("alice").executable("/usr/bin/tar");
    let (mut profiles, diags) = parse_str(Path::new("t.toml"), &text, &sys);
    (profiles.pop(), diags)
}

fn messages(diags: &[Diagnostic], severity: Severity) -> Vec<String> {
    diags
        .iter()
        .filter(|d| d.severity == severity)
        .map(|d| d.message.clone())
        .collect()
}

/// What the issue measured `elevate policy check` accepting without a word.
const MEASURED: &[&str] = &[
    "TAR_OPTIONS",
    "RSYNC_RSH",
    "AWKLIBPATH",
    "AWKPATH",
    "XDG_CONFIG_HOME",
    "XDG_DATA_DIRS",
    "TERMINFO",
    "TERMINFO_DIRS",
    "CLASSPATH",
    "ZDOTDIR",
    "MANOPT",
    "LESS",
    "SUDO_EDITOR",
    "FCEDIT",
    "GNUPGHOME",
    "KRB5_CONFIG",
    "SSL_CERT_FILE",
    "CURL_HOME",
    "WGETRC",
    "PERL5SHELL",
    "PERL_MB_OPT",
    "GEM_PATH",
    "GEM_HOME",
    "R_LIBS",
    "DOTNET_STARTUP_HOOKS",
    "SSH_ASKPASS",
    "PS1",
];

/// Names the brief lists as running or loading code, beyond the measured ones.
const KNOWN_DANGEROUS: &[&str] = &[
    "PERL5OPT",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_KEY_0",
    "GIT_CONFIG_GLOBAL",
    "PAGER",
    "EDITOR",
    "VISUAL",
    "RUBYLIB",
    "RUBYOPT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "R_LIBS_USER",
    "R_PROFILE",
    "LUA_PATH",
    "LUA_INIT_5_4",
    "XDG_CONFIG_DIRS",
    "KRB5CCNAME",
    "SSL_CERT_DIR",
    "LESSOPEN",
    "LESSCLOSE",
    "MANPAGER",
    "PS2",
    "PS3",
    "PS4",
    "PROMPT_COMMAND",
    "ENV",
    "BASH_ENV",
    "IFS",
    "GCONV_PATH",
    "LOCPATH",
    "HOSTALIASES",
    "RES_OPTIONS",
    "MALLOC_CHECK_",
    "GLIBC_TUNABLES",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "OPENSSL_MODULES",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PERL5LIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "LD_PRELOAD",
    "LD_AUDIT",
    "TMPDIR",
    "HOME",
    "PATH",
    "SHELL",
    "USER",
    "LOGNAME",
    "ZIPOPT",
    "MAKEFLAGS",
    "KUBECONFIG",
    "HISTFILE",
    "SUDO_ASKPASS",
    "SUDO_USER",
    "TZDIR",
    "PSQLRC",
    "BROWSER",
    "BASH_FUNC_x%%",
];

const INERT: &[&str] = &[
    "TERM",
    "COLORTERM",
    "LANG",
    "LANGUAGE",
    "LINGUAS",
    "TZ",
    "LC_ALL",
    "LC_TIME",
    "LC_MESSAGES",
    "COLUMNS",
    "LINES",
    "NO_COLOR",
];

#[test]
fn measured_names_are_errors_in_both_lists() {
    for name in MEASURED.iter().chain(KNOWN_DANGEROUS) {
        assert!(
            matches!(keep_verdict(name), KeepVerdict::Refused(_)),
            "{name}"
        );
        for key in ["env_keep", "env_keep_unsafe"] {
            let (profile, diags) = load(&format!("{key} = [\"{name}\"]"));
            let errors = messages(&diags, Severity::Error);
            assert!(profile.is_none(), "{key} {name}");
            assert_eq!(errors.len(), 1, "{key} {name}: {errors:?}");
            assert!(
                errors[0].contains("can never be kept") || errors[0].contains("not a valid"),
                "{key} {name}: {errors:?}"
            );
        }
    }
    let (_, diags) = load("env_keep = [\"TAR_OPTIONS\"]");
    assert_eq!(
        diags[0].to_string(),
        "t.toml:4:13: error: TAR_OPTIONS can never be kept: it adds options to tar, and --checkpoint-action=exec=, --to-command and --use-compress-program run commands"
    );
}

#[test]
fn inert_names_pass_silently() {
    for name in INERT {
        assert!(is_inert(name), "{name}");
        assert_eq!(keep_verdict(name), KeepVerdict::Inert, "{name}");
        let (profile, diags) = load(&format!("env_keep = [\"{name}\"]"));
        assert!(diags.is_empty(), "{name}: {diags:?}");
        assert_eq!(profile.expect("valid").env_keep, [*name]);
    }
}

#[test]
fn names_match_exactly_and_case_sensitively() {
    // Lower-case spellings of inert names are other variables: not known, so not inert.
    for name in [
        "term",
        "Lang",
        "lc_all",
        "LC_",
        "LC_all",
        "COLUMNS_X",
        "TERM2",
    ] {
        assert_eq!(keep_verdict(name), KeepVerdict::Unknown, "{name}");
    }
    // Refusals ignore case: a lower-case loader variable is still refused.
    for name in ["ld_preload", "tar_options", "Git_Dir"] {
        assert!(
            matches!(keep_verdict(name), KeepVerdict::Refused(_)),
            "{name}"
        );
    }
    // No wildcards: a pattern is not a name.
    let (_, diags) = load("env_keep = [\"LC_*\"]");
    assert!(messages(&diags, Severity::Error)[0].contains("not a valid environment variable name"));
}

#[test]
fn unknown_name_in_env_keep_says_what_to_write() {
    let (profile, diags) = load("env_keep = [\"LANG\", \"HTTP_PROXY\"]");
    assert!(profile.is_none());
    assert_eq!(
        diags.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        ["t.toml:4:21: error: HTTP_PROXY is not known to be harmless, so env_keep may not list it: a kept variable is as powerful as a free argument (the caller chooses its value, the command trusts it); if every command of this profile treats any value of HTTP_PROXY as harmless, move it to env_keep_unsafe = [\"HTTP_PROXY\"]"]
    );
}

#[test]
fn acknowledged_name_passes_with_a_warning_every_time() {
    let (profile, diags) =
        load("env_keep = [\"LANG\"]\nenv_keep_unsafe = [\"HTTP_PROXY\", \"KEEPME\"]");
    assert_eq!(
        profile.expect("valid").env_keep,
        ["LANG", "HTTP_PROXY", "KEEPME"]
    );
    assert!(messages(&diags, Severity::Error).is_empty());
    let warnings: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "t.toml:5:20: warning: env_keep_unsafe passes HTTP_PROXY unchecked from the caller to every command of profile \"p\": a kept variable is as powerful as a free argument; keep it only if no command of the profile can be made to run code, or to read, write or fetch something else, through its value",
            "t.toml:5:34: warning: env_keep_unsafe passes KEEPME unchecked from the caller to every command of profile \"p\": a kept variable is as powerful as a free argument; keep it only if no command of the profile can be made to run code, or to read, write or fetch something else, through its value",
        ]
    );
}

#[test]
fn inert_name_acknowledged_needlessly_is_a_warning() {
    let (profile, diags) = load("env_keep_unsafe = [\"TERM\"]");
    assert_eq!(profile.expect("valid").env_keep, ["TERM"]);
    assert_eq!(
        messages(&diags, Severity::Warning),
        ["TERM is known to be harmless: list it in env_keep instead of env_keep_unsafe"]
    );
}

#[test]
fn no_name_is_both_inert_and_refused() {
    for name in INERT {
        assert!(crate::env::refusal_reason(name).is_none(), "{name}");
    }
}

#[test]
fn inert_values_keep_their_checks() {
    for (name, value, ok) in [
        ("TERM", "xterm-256color", true),
        ("TERM", "../../tmp/terminfo", false),
        ("LANG", "C.UTF-8", true),
        ("LC_ALL", "%n%n", false),
        ("TZ", "Europe/Berlin", true),
        ("TZ", "/etc/shadow", false),
        ("TZ", ":/usr/share/zoneinfo/UTC", true),
        ("TZ", "../../etc/shadow", false),
        ("COLUMNS", "132", true),
        ("COLUMNS", "", false),
        ("LINES", "40;rm", false),
        ("LINES", "999999", false),
        ("NO_COLOR", "1", true),
        ("NO_COLOR", "/tmp/x", false),
        ("LANG", "C\n", false),
    ] {
        assert_eq!(inert_value_ok(name, value), ok, "{name}={value:?}");
    }
}
