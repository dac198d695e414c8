//! The daemon's answers for people: pure functions from a reply to text, one module per
//! kind of reply. `--json` output does not come through here (see [`crate::output`]).

pub mod lease;
pub mod profiles;
pub mod status;
