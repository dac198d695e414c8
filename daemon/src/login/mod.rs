//! PAM login sessions: which process leads each one and which lease admitted it.

pub mod sessions;
