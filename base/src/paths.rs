//! Fixed paths every side of elevate agrees on.

/// Where the daemon listens unless configured otherwise.
pub const DEFAULT_SOCKET: &str = "/run/elevate/elevated.sock";

/// The only PATH bare command names are resolved through, and the PATH commands run with.
/// Never the caller's PATH (the lesson of every "PATH=.:$PATH sudo" exploit).
pub const SECURE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
