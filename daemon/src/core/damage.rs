//! State found damaged at start-up: say so in the audit log, and when the lease journal was
//! damaged, take back memberships no readable lease accounts for. The daemon always starts.

use super::edits::Purpose;
use super::State;
use crate::effects::audit::{fields, AuditEvent};
use crate::lease::model::LeaseState;
use elevate_groupdb::{Change, Outcome};
use serde_json::json;
use std::collections::BTreeSet;
use std::io;

impl State {
    /// One `state.damaged` record (and a log line) per damaged file.
    pub(super) fn report_damage(&mut self, damage: Vec<String>) {
        for what in damage {
            tracing::error!("damaged state: {what}");
            let rec = json!({"host": self.host.name, "what": what});
            self.audit.post(AuditEvent::StateDamaged, fields(rec));
        }
    }

    /// The lease journal lost records, so some memberships the daemon added may have no lease
    /// left to end them. Conservatively: in every group the policy grants, a member is removed
    /// unless an active lease grants them that group or a readable record says their
    /// membership was standing. Groups the policy never grants are not touched.
    pub(super) async fn reclaim_after_damage(&mut self) {
        let policy = self.policy.clone();
        let granted: BTreeSet<&str> = policy
            .profiles
            .iter()
            .flat_map(|p| p.grant_groups.iter().map(String::as_str))
            .collect();
        let accounted = |user: &str, group: &str| {
            self.leases.table.values().any(|l| {
                l.user == user
                    && l.grants
                        .iter()
                        .any(|g| g.group == group && (g.standing || l.state == LeaseState::Active))
            })
        };
        let mut changes = Vec::new();
        for group in granted {
            let Ok(Some(members)) = self.groupdb.members_of(group) else {
                continue;
            };
            for user in members.iter().filter(|u| !accounted(u, group)) {
                let (user, group) = (user.clone(), group.to_string());
                changes.push(Change::Remove { user, group });
            }
        }
        if changes.is_empty() {
            return;
        }
        self.edit_groups(changes, Purpose::Reclaim).await;
    }

    /// The editor's outcome for [`State::reclaim_after_damage`]: audit what was taken back.
    pub(super) fn reclaim_written(&mut self, result: io::Result<(Vec<Change>, Vec<Outcome>)>) {
        let (changes, outcomes) = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot take back memberships after a damaged journal: {e}");
                return;
            }
        };
        let why = "the lease journal was damaged and no readable lease accounts for it";
        for (change, outcome) in changes.iter().zip(outcomes) {
            let Change::Remove { user, group } = change else {
                continue;
            };
            if outcome == Outcome::Removed {
                let rec =
                    json!({"host": self.host.name, "user": user, "group": group, "recovered": why});
                self.audit.post(AuditEvent::GroupRemoved, fields(rec));
            }
        }
        self.identities.clear();
    }
}
