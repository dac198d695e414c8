//! The environment variables `env_keep` may never pass through, and why: each one lets the
//! caller inject code or redirect what a privileged command does.

/// Variables refused by exact name (compared upper-cased), with the reason shown.
const EXACT: &[(&str, &str)] = &[
    ("PATH", "commands always run with elevate's secure PATH"),
    ("HOME", "elevate sets it for the target user"),
    ("USER", "elevate sets it for the target user"),
    ("LOGNAME", "elevate sets it for the target user"),
    ("SHELL", "elevate sets it for the target user"),
    ("BASH_ENV", "it names a script that shells run at startup"),
    ("ENV", "it names a script that shells run at startup"),
    ("IFS", "it changes how shell scripts split words"),
    ("CDPATH", "it changes where shell scripts' cd goes"),
    ("SHELLOPTS", "it changes how shell scripts behave"),
    ("BASHOPTS", "it changes how shell scripts behave"),
    ("PS4", "bash expands it (running commands) when tracing"),
    ("GLOBIGNORE", "it changes how shell scripts expand globs"),
    (
        "PROMPT_COMMAND",
        "it runs a command before every shell prompt",
    ),
    ("PERL5LIB", "it makes Perl load code from a chosen place"),
    ("PERLLIB", "it makes Perl load code from a chosen place"),
    ("PERL5OPT", "it injects options (and code) into Perl"),
    ("PERL5DB", "it injects code into Perl"),
    ("RUBYLIB", "it makes Ruby load code from a chosen place"),
    ("RUBYOPT", "it injects options (and code) into Ruby"),
    ("NODE_OPTIONS", "it injects options (and code) into Node.js"),
    (
        "NODE_PATH",
        "it makes Node.js load code from a chosen place",
    ),
    ("LUA_PATH", "it makes Lua load code from a chosen place"),
    ("LUA_CPATH", "it makes Lua load code from a chosen place"),
    ("LUA_INIT", "it injects code into Lua"),
    ("TCLLIBPATH", "it makes Tcl load code from a chosen place"),
    ("PHPRC", "it makes PHP load a chosen configuration"),
    (
        "PHP_INI_SCAN_DIR",
        "it makes PHP load a chosen configuration",
    ),
    (
        "GCONV_PATH",
        "it makes the C library load code from a chosen place",
    ),
    (
        "LOCPATH",
        "it makes the C library load locale files from a chosen place",
    ),
    (
        "NLSPATH",
        "it makes the C library load message files from a chosen place",
    ),
    ("HOSTALIASES", "it redirects name resolution"),
    ("RESOLV_HOST_CONF", "it redirects name resolution"),
    ("RES_OPTIONS", "it changes name resolution"),
    ("LOCALDOMAIN", "it changes name resolution"),
    (
        "GLIBC_TUNABLES",
        "it changes glibc internals (exploited for root before)",
    ),
    (
        "TMPDIR",
        "it lets the caller choose where the command writes temporary files",
    ),
    (
        "JAVA_TOOL_OPTIONS",
        "it injects options (and code) into Java",
    ),
    ("_JAVA_OPTIONS", "it injects options (and code) into Java"),
    (
        "JDK_JAVA_OPTIONS",
        "it injects options (and code) into Java",
    ),
    (
        "OPENSSL_CONF",
        "it makes OpenSSL load a chosen configuration (and engines)",
    ),
    (
        "OPENSSL_ENGINES",
        "it makes OpenSSL load code from a chosen place",
    ),
    ("EDITOR", "commands start it as an editor: a shell escape"),
    ("VISUAL", "commands start it as an editor: a shell escape"),
    ("PAGER", "commands start it as a pager: a shell escape"),
    ("MANPAGER", "man starts it as a pager: a shell escape"),
    (
        "SYSTEMD_PAGER",
        "systemctl/journalctl start it as a pager: a shell escape",
    ),
    ("SYSTEMD_EDITOR", "systemctl edit starts it: a shell escape"),
    (
        "SYSTEMD_PAGERSECURE",
        "it turns off the pager's secure mode",
    ),
    (
        "SYSTEMD_LESS",
        "it passes options to less (e.g. enabling shell escapes)",
    ),
    ("LESSOPEN", "less runs it as an input preprocessor"),
    ("LESSCLOSE", "less runs it as an input postprocessor"),
    (
        "LESSKEY",
        "it loads less key bindings, which can run commands",
    ),
    ("LESSSECURE", "it turns off less's secure mode"),
];
/// Variables refused by prefix (compared upper-cased).
const PREFIX: &[(&str, &str)] = &[
    ("LD_", "it injects code into the command (dynamic loader)"),
    ("ELEVATE_", "it is reserved for elevate itself"),
    ("PYTHON", "it makes Python load code or change behaviour"),
    (
        "MALLOC_",
        "it changes glibc's allocator (exploited for root before)",
    ),
    (
        "GIT_",
        "it makes git run chosen commands or use chosen repositories",
    ),
    ("BASH_FUNC_", "it defines shell functions (Shellshock)"),
];

/// Why `name` may never be passed through `env_keep`, if so.
pub fn env_keep_refusal(name: &str) -> Option<String> {
    let valid = name
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if !valid {
        return Some(format!(
            "\"{}\" is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
            name.escape_debug()
        ));
    }
    let upper = name.to_ascii_uppercase();
    let u = upper.as_str();
    let reason = EXACT
        .iter()
        .find(|(n, _)| *n == u)
        .or_else(|| PREFIX.iter().find(|(p, _)| u.starts_with(p)))
        .map(|(_, why)| *why)?;
    Some(format!("{name} can never be kept: {reason}"))
}
