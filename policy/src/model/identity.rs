//! Who is asking and on which host: the two inputs of every decision besides the policy.

use elevate_base::Uid;
use std::collections::BTreeMap;

/// The host a decision is made for.
#[derive(Debug, Clone, Default)]
pub struct HostInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Who is asking, as established by the daemon from the kernel (never from the request).
#[derive(Debug, Clone)]
pub struct Subject {
    pub uid: Uid,
    pub user: String,
    /// Names of every group the user is a member of (primary and supplementary).
    pub groups: Vec<String>,
}
