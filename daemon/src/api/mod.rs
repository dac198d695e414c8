//! The front ends: the Unix socket (the CLI and the PAM module) and D-Bus. They translate a
//! request into a question for the core, and its answer into a reply; they own no state.

pub mod dbus;
pub mod run;
pub mod socket;
pub mod step_up;
pub mod transport;
