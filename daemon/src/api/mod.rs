//! The front ends: the Unix socket (the CLI and the PAM module) and D-Bus. They translate a
//! request into a question for the core, and its answer into a reply; they own no state.

pub mod dbus;
pub mod run;
pub mod socket;
pub mod step_up;
pub mod transport;

use crate::core::Handle;
use crate::effects::audit::AuditHandle;
use crate::settings::Settings;
use std::sync::Arc;
use tokio::sync::watch;

/// What every connection handler gets.
pub struct Ctx {
    pub core: Handle,
    pub audit: AuditHandle,
    pub settings: Arc<Settings>,
    pub shutdown: watch::Receiver<bool>,
}
