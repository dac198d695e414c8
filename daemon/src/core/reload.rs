//! Loading the policy: parse and validate all of it, swap it in only if all of it is good,
//! and record the outcome (audit, `status`). A policy directory that has gone missing keeps
//! the last good policy, like a broken file does: only a directory that is there and holds
//! no policy means "nothing is allowed". (At start-up there is no last good policy: a
//! missing directory is an empty policy, with a warning.)

use super::State;
use crate::effects::audit::{fields, AuditEvent};
use elevate_policy::{Policy, Severity};
use elevate_proto::ReloadReport;
use serde_json::json;
use std::sync::Arc;

impl State {
    /// Parse and validate everything; swap only if all of it is good. True if swapped.
    pub(super) fn load_policy(&mut self) -> bool {
        let (policy, errors, warnings) = self.read_policy();
        let ok = match policy {
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
                self.refresh_setgid_warnings();
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

    /// The policy to swap in (`None`: keep the current one), the errors and the warnings.
    fn read_policy(&mut self) -> (Option<Policy>, Vec<String>, Vec<String>) {
        let missing = self.policy_source.missing();
        if self.policy_present {
            if let Some(why) = missing {
                let e = format!(
                    "{why}; keeping the previous policy (an empty directory, not a missing one, allows nothing)"
                );
                return (None, vec![e], vec![]);
            }
        }
        let outcome = self.policy_source.load();
        let (errors, warnings): (Vec<_>, Vec<_>) = outcome
            .diagnostics
            .iter()
            .partition(|d| d.severity == Severity::Error);
        let errors: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
        let warnings: Vec<String> = warnings.iter().map(|d| d.to_string()).collect();
        for w in &warnings {
            tracing::warn!("policy: {w}");
        }
        if outcome.policy.is_some() && missing.is_none() {
            self.policy_present = true;
        }
        (outcome.policy, errors, warnings)
    }
}
