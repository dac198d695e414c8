//! Loading the policy: parse and validate all of it, swap it in only if all of it is good,
//! and record the outcome (audit, `status`).

use super::State;
use crate::effects::audit::{fields, AuditEvent};
use elevate_proto::ReloadReport;
use serde_json::json;
use std::sync::Arc;

impl State {
    /// Parse and validate everything; swap only if all of it is good. True if swapped.
    pub(super) fn load_policy(&mut self) -> bool {
        let outcome = self.policy_source.load();
        let (errors, warnings): (Vec<_>, Vec<_>) = outcome
            .diagnostics
            .iter()
            .partition(|d| d.severity == elevate_policy::Severity::Error);
        let errors: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
        let warnings: Vec<String> = warnings.iter().map(|d| d.to_string()).collect();
        for w in &warnings {
            tracing::warn!("policy: {w}");
        }
        let ok = match outcome.policy {
            Some(p) => {
                tracing::info!(
                    "policy loaded: {} profiles from {} files, digest {}",
                    p.profiles.len(),
                    p.files.len(),
                    p.digest
                );
                self.policy = Arc::new(p);
                // A reload may change who is who (e.g. new groups in the same edit).
                self.identities.clear();
                true
            }
            None => {
                for e in &errors {
                    tracing::error!("policy: {e}");
                }
                tracing::error!(
                    "policy reload failed with {} errors; keeping the previous policy",
                    errors.len()
                );
                false
            }
        };
        self.audit.post(
            AuditEvent::PolicyReload,
            fields(json!({
                "host": self.host.name,
                "ok": ok,
                "digest": self.policy.digest,
                "files": self.policy.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
                "errors": errors,
            })),
        );
        self.last_reload = ReloadReport {
            at: self.now_rfc3339(),
            ok,
            errors,
            warnings,
        };
        ok
    }
}
