//! Which of the caller's environment variables may reach a command, in one place for the
//! policy loader (which judges `env_keep` and `env_keep_unsafe`) and the daemon (which builds
//! the environment and filters again):
//!
//! * **inert** names carry no code and no paths: the terminal and locale settings, always
//!   taken from the caller ([`taken_from_caller`]), and a few more passed when kept; their
//!   values are checked ([`inert_value_ok`]). Matched exactly and case-sensitively.
//! * **refused** names run or load code, or redirect what a command reads, writes or trusts
//!   ([`keep_verdict`] says why): never passed, not even when acknowledged. Matched
//!   case-insensitively, so `ld_preload` is refused as `LD_PRELOAD` is.
//! * every **other** name may be as dangerous as a free argument (`TAR_OPTIONS` is one, for
//!   tar): passed only when the profile acknowledges it in `env_keep_unsafe`, and then always
//!   with a lint warning. A deny-list always misses one; an unknown name must not pass silently.

/// Inert names taken from the caller whenever present, values checked (sudo's `env_check`
/// set): commands need them to behave, and they carry no code.
const FROM_CALLER: &[&str] = &["TERM", "COLORTERM", "LANG", "LANGUAGE", "LINGUAS", "TZ"];

/// Inert names passed only when a profile keeps them, values checked.
const INERT_WHEN_KEPT: &[&str] = &["COLUMNS", "LINES", "NO_COLOR"];

/// The caller's inert variable `name` is passed whenever present (`LC_*` included).
pub fn taken_from_caller(name: &str) -> bool {
    FROM_CALLER.contains(&name) || is_locale_var(name)
}

/// `name` is known to carry no code, so `env_keep` may list it without acknowledgement.
pub fn is_inert(name: &str) -> bool {
    taken_from_caller(name) || INERT_WHEN_KEPT.contains(&name)
}

fn is_locale_var(name: &str) -> bool {
    name.strip_prefix("LC_").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    })
}

/// The value of an inert variable may not smuggle paths or format strings (terminfo and
/// locale file lookups as root: the CVE-2001-era TERM and LC_* tricks). TZ may name a zone,
/// not a file outside the zoneinfo tree; COLUMNS and LINES are numbers.
pub fn inert_value_ok(name: &str, value: &str) -> bool {
    if value.len() > 256 || value.chars().any(|c| c.is_control()) {
        return false;
    }
    match name {
        "TZ" => {
            let v = value.strip_prefix(':').unwrap_or(value);
            !v.contains("..") && (!v.starts_with('/') || v.starts_with("/usr/share/zoneinfo/"))
        }
        "COLUMNS" | "LINES" => {
            (1..=5).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
        }
        _ => !value.contains('/') && !value.contains('%'),
    }
}

/// Refused by exact name (compared upper-cased), with the reason shown.
const EXACT: &[(&[&str], &str)] = &[
    (&["PATH"], "commands always run with elevate's secure PATH"),
    (&["HOME", "USER", "LOGNAME", "SHELL"], "elevate sets it for the target user"),
    (&["BASH_ENV", "ENV", "ZDOTDIR"], "it names a script (or a directory of scripts) that shells run at startup"),
    (
        &["PS0", "PS1", "PS2", "PS3", "PS4", "PROMPT", "RPROMPT", "RPS1", "PROMPT_COMMAND"],
        "shells expand it to draw a prompt or a trace line, running the commands it contains",
    ),
    (
        &["IFS", "CDPATH", "SHELLOPTS", "BASHOPTS", "GLOBIGNORE", "EXECIGNORE", "BASH_COMPAT"],
        "it changes how shell scripts split words, expand, change directory or run commands",
    ),
    (
        &["FPATH", "NULLCMD", "READNULLCMD", "TMPPREFIX", "MODULE_PATH", "BASH_LOADABLES_PATH"],
        "it makes a shell load functions or modules, or run commands, from a chosen place",
    ),
    (&["INPUTRC"], "readline reads key bindings and macros from the file it names"),
    (
        &["HISTFILE", "MYSQL_HISTFILE", "SQLITE_HISTORY"],
        "the command writes its history to the file it names",
    ),
    (
        &["EDITOR", "VISUAL", "FCEDIT", "SYSTEMD_EDITOR", "SVN_EDITOR", "HGEDITOR", "BROWSER"],
        "commands start the program it names (an editor or browser): a shell escape",
    ),
    (&["PAGER", "MANPAGER", "SYSTEMD_PAGER"], "commands start the program it names as a pager: a shell escape"),
    (&["SYSTEMD_PAGERSECURE"], "it turns off the pager's secure mode"),
    (&["SYSTEMD_LESS"], "it passes options to less (e.g. enabling shell escapes)"),
    (&["SSH_ASKPASS", "SSH_ASKPASS_REQUIRE"], "ssh starts the program it names to ask for a passphrase"),
    (&["DOAS_USER", "PKEXEC_UID"], "scripts trust it to say who called them"),
    (
        &["TAR_OPTIONS"],
        "it adds options to tar, and --checkpoint-action=exec=, --to-command and --use-compress-program run commands",
    ),
    (
        &["RSYNC_RSH", "RSYNC_CONNECT_PROG", "CVS_RSH", "CVS_SERVER", "SVN_SSH"],
        "it names the command run as a remote shell: any command",
    ),
    (&["ZIPOPT", "ZIP", "UNZIP", "UNZIPOPT"], "it adds options to zip or unzip (zip -TT runs a command)"),
    (
        &["GZIP", "BZIP", "BZIP2", "XZ_OPT", "XZ_DEFAULTS", "GREP_OPTIONS"],
        "it adds options to the command, changing which files it reads and writes",
    ),
    (
        &["MANOPT", "MANPATH", "MANROFFOPT", "MANROFFSEQ"],
        "it changes which pages man formats and how (options, preprocessors that run)",
    ),
    (&["AWKPATH", "AWKLIBPATH"], "it makes awk load scripts or extensions from a chosen place"),
    (
        &["CLASSPATH", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"],
        "it injects options (and code) into Java",
    ),
    (
        &[
            "TCLLIBPATH", "TCL_LIBRARY", "TK_LIBRARY", "PHPRC", "PHP_INI_SCAN_DIR", "EMACSLOADPATH",
            "IRBRC", "EXINIT", "VIMINIT", "VIMRUNTIME", "MYVIMRC", "VIM",
        ],
        "it makes an interpreter or editor load code or configuration from a chosen place",
    ),
    (
        &["GCONV_PATH", "LOCPATH", "NLSPATH", "PATH_LOCALE", "TZDIR", "GETCONF_DIR"],
        "it makes the C library load code or data files from a chosen place",
    ),
    (&["LIBPATH", "SHLIB_PATH"], "it injects code into the command (dynamic loader)"),
    (
        &["HOSTALIASES", "RESOLV_HOST_CONF", "RES_OPTIONS", "LOCALDOMAIN"],
        "it changes or redirects name resolution",
    ),
    (&["GLIBC_TUNABLES"], "it changes glibc internals (CVE-2023-4911 \"Looney Tunables\" gave root)"),
    (&["SEGFAULT_OUTPUT_NAME", "MEMUSAGE_OUTPUT"], "the C library writes to the file it names"),
    (
        &["TMPDIR", "TMP", "TEMP", "TEMPDIR"],
        "it makes the command create temporary files in a directory the caller may own, who can then swap them (symlink and race attacks)",
    ),
    (
        &["TERMINFO", "TERMINFO_DIRS", "TERMCAP", "TERMPATH"],
        "it makes programs parse terminal descriptions from a chosen place",
    ),
    (
        &["SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"],
        "it replaces the trusted certificate authorities: the caller can impersonate any server",
    ),
    (&["SSLKEYLOGFILE"], "TLS libraries write session keys to the file it names"),
    (
        &[
            "CURL_HOME", "WGETRC", "SYSTEM_WGETRC", "GNUPGHOME", "DOCKER_CONFIG", "KUBECONFIG",
            "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "CLOUDSDK_CONFIG", "HGRCPATH",
            "SCREENRC", "SYSSCREENRC",
        ],
        "it makes the command read its configuration (which can run commands) from a chosen place",
    ),
    (&["KRB5CCNAME", "KRB5RCACHEDIR"], "it makes Kerberos use a chosen credential cache"),
    (
        &[
            "CC", "CXX", "CPP", "LD", "AR", "AS", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS",
            "MAKEFLAGS", "MFLAGS", "GNUMAKEFLAGS", "MAKEFILES", "LIBRARY_PATH", "CPATH",
            "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "GCC_EXEC_PREFIX", "COMPILER_PATH", "GOFLAGS",
            "GOROOT", "GOPATH", "GOENV", "GOTOOLCHAIN",
        ],
        "it makes builds use a chosen compiler, flags, plugin or makefile: code",
    ),
    (
        &["GI_TYPELIB_PATH", "LIBGL_DRIVERS_PATH", "VK_ICD_FILENAMES", "VK_LAYER_PATH"],
        "it makes a library load plugins from a chosen place",
    ),
];

/// Refused by prefix (compared upper-cased).
const PREFIX: &[(&[&str], &str)] = &[
    (
        &["LD_", "DYLD_", "_RLD", "LDR_"],
        "it injects code into the command (dynamic loader)",
    ),
    (&["ELEVATE_"], "it is reserved for elevate itself"),
    (&["PYTHON"], "it makes Python load code or change behaviour"),
    (
        &["PERL"],
        "it makes Perl load code or run options (and code)",
    ),
    (
        &["RUBY", "GEM_", "BUNDLE_"],
        "it makes Ruby load code, options or gems from a chosen place",
    ),
    (
        &["NODE_", "NPM_CONFIG_"],
        "it injects options (and code) into Node.js or npm",
    ),
    (&["LUA_"], "it makes Lua load or run code"),
    (
        &["R_"],
        "it makes R load code, libraries or profiles from a chosen place",
    ),
    (
        &["JULIA_", "GUILE_"],
        "it makes an interpreter load code from a chosen place",
    ),
    (&["JAVA_"], "it injects options (and code) into Java"),
    (
        &["DOTNET_", "COMPLUS_", "CORECLR_"],
        "it injects code into .NET (startup hooks, profilers)",
    ),
    (
        &["MALLOC_"],
        "it changes glibc's allocator (exploited for root before)",
    ),
    (
        &["GIT_"],
        "it makes git run chosen commands or use chosen repositories",
    ),
    (&["BASH_FUNC_"], "it defines shell functions (Shellshock)"),
    (
        &["XDG_"],
        "it moves where programs find their configuration, data, plugins and sockets",
    ),
    (
        &["OPENSSL_"],
        "it makes OpenSSL load a chosen configuration, engines or providers: code",
    ),
    (
        &["KRB5_"],
        "it makes Kerberos use a chosen configuration or key table",
    ),
    (
        &["RUST", "CARGO_", "PKG_CONFIG", "PIP_", "ANSIBLE_"],
        "it makes build and install tools use chosen programs, flags or sources: code",
    ),
    (
        &["GTK_", "QT_", "GST_", "GIO_"],
        "it makes a toolkit load modules from a chosen place",
    ),
    (
        &["SUDO_"],
        "sudo and scripts trust it (editor, askpass, who called)",
    ),
    (
        &["LESS"],
        "it changes what less does: options, preprocessors, key bindings, history, secure mode",
    ),
    (
        &["PSQL"],
        "it makes psql run a chosen startup file, editor or pager, or write a history file",
    ),
];

/// What a profile may do with a variable it wants to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepVerdict {
    /// Carries no code: `env_keep` may list it; its value is checked.
    Inert,
    /// Not known either way: passed only when acknowledged in `env_keep_unsafe`.
    Unknown,
    /// Never passed; the sentence says which variable and why.
    Refused(String),
}

/// What `name` is, for `env_keep` and `env_keep_unsafe`.
pub fn keep_verdict(name: &str) -> KeepVerdict {
    let valid = name
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if !valid {
        return KeepVerdict::Refused(format!(
            "\"{}\" is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
            name.escape_debug()
        ));
    }
    if let Some(reason) = refusal_reason(name) {
        return KeepVerdict::Refused(format!("{name} can never be kept: {reason}"));
    }
    if is_inert(name) {
        KeepVerdict::Inert
    } else {
        KeepVerdict::Unknown
    }
}

/// Why `name` (a valid name) runs or loads code, if it is known to.
pub fn refusal_reason(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    let u = upper.as_str();
    EXACT
        .iter()
        .find(|(names, _)| names.contains(&u))
        .or_else(|| {
            PREFIX
                .iter()
                .find(|(prefixes, _)| prefixes.iter().any(|p| u.starts_with(p)))
        })
        .map(|(_, why)| *why)
}

/// The error for a name `env_keep` lists that is neither inert nor refused: what to write
/// instead, and what that means.
pub fn unacknowledged(name: &str) -> String {
    format!(
        "{name} is not known to be harmless, so env_keep may not list it: a kept variable is as powerful as a free argument (the caller chooses its value, the command trusts it); if every command of this profile treats any value of {name} as harmless, move it to env_keep_unsafe = [\"{name}\"]"
    )
}

/// The warning for an inert name acknowledged in `env_keep_unsafe`: it needs no
/// acknowledgement (and is passed, value checked, either way).
pub fn needlessly_acknowledged(name: &str) -> String {
    format!("{name} is known to be harmless: list it in env_keep instead of env_keep_unsafe")
}
