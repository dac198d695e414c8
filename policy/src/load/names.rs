//! The syntax of names a policy may use: profiles, users and groups, PAM services, host
//! patterns. Pure predicates, no system access.

/// `[a-z0-9][a-z0-9._-]{0,63}`: safe in file names, messages, logs and command lines.
pub fn is_valid_profile_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b.first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'_' || c == b'-'
        })
}

/// Why `name` cannot be a user or group name, if it cannot.
pub(super) fn bad_account_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.contains(':') {
        Some("contains ':'")
    } else if name.contains(',') {
        Some("contains ','")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.chars().any(char::is_whitespace) {
        Some("contains whitespace")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else if name.len() > 256 {
        Some("is longer than 256 bytes")
    } else {
        None
    }
}

/// Host patterns: host-name characters plus `*` and `?`.
pub(super) fn bad_host_pattern(p: &str) -> bool {
    p.is_empty()
        || p.len() > 253
        || !p
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'*' | b'?'))
}

/// A PAM service name, `[a-z0-9._-]+` (at most 64), and not `.` or `..` (it names a file in
/// /etc/pam.d).
pub(super) fn is_service_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}
