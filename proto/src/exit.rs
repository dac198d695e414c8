//! Exit codes the CLI promises to scripts. They follow sysexits(3) where one fits.

/// The daemon decided "no" (policy, missing lease, rate limit).
pub const DENIED: i32 = 77; // EX_NOPERM
/// The daemon could not be reached; the message names the socket.
pub const UNAVAILABLE: i32 = 69; // EX_UNAVAILABLE
/// The command line was wrong.
pub const USAGE: i32 = 2;
/// Invalid policy (`elevate policy check`) or broken audit chain (`elevate audit verify`).
pub const INVALID: i32 = 1;
/// The daemon hit an internal error or refused to run because it could not audit.
pub const SOFTWARE: i32 = 70; // EX_SOFTWARE
/// A file given to an offline command (`elevate audit verify`) could not be read.
pub const NOINPUT: i32 = 66; // EX_NOINPUT
/// Rate-limited, busy, or the daemon's state directory is full: try again later.
pub const TEMPFAIL: i32 = 75; // EX_TEMPFAIL
/// The allowed command could not be started (not found, not executable, unsafe path).
pub const CANNOT_EXECUTE: i32 = 126;
/// `elevate with`: the command was not found in the caller's PATH (as shells report it).
pub const NOT_FOUND: i32 = 127;
/// Added to the signal number when the command was killed by a signal, as shells do.
pub const SIGNAL_BASE: i32 = 128;
