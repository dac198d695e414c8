//! `/etc/elevate/elevated.toml`, the daemon's own configuration. It lives beside the policy
//! because the host's identity (name and labels) feeds every decision, and the CLI's offline
//! `policy check`/`policy explain` must read it exactly as the daemon does. [`Config::load`]
//! reads the file directly (not through `System`); [`Config::host`] asks `gethostname(2)`
//! through `system::os` when no name is configured.

use crate::setgid::ScanRoot;
use elevate_base::duration::DurationError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG: &str = "/etc/elevate/elevated.toml";
pub const DEFAULT_POLICY_DIR: &str = "/etc/elevate/policy.d";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/elevate";
pub const DEFAULT_AUDIT_LOG: &str = "/var/log/elevate/audit.jsonl";

/// Why the configuration cannot be used; `Display` is the sentence shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file exists but could not be read.
    Unreadable { path: PathBuf, reason: String },
    /// Not valid TOML, an unknown key or a wrong type, at `line:col` (0:0 when unknown).
    Invalid {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    /// `request_timeout` is not a duration.
    RequestTimeout(DurationError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unreadable { path, reason } => write!(f, "{}: {reason}", path.display()),
            ConfigError::Invalid {
                path,
                line,
                col,
                message,
            } => write!(f, "{}:{line}:{col}: {message}", path.display()),
            ConfigError::RequestTimeout(e) => write!(f, "request_timeout: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every key is optional; an absent file means all defaults.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub socket: Option<PathBuf>,
    pub policy_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    /// Overrides gethostname(2) for `hosts` matching.
    pub hostname: Option<String>,
    /// Matched by profiles' `host_labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: Limits,
    /// An absolute path run for each lease event, with the event as JSON on stdin.
    pub notify_command: Option<PathBuf>,
    /// How long a lease request may wait for approval before it expires (default 1h).
    pub request_timeout: Option<String>,
    /// Where set-gid files are stripped of a lease's groups when it ends (absent: the
    /// defaults, [`DEFAULT_SETGID_SCAN`](crate::setgid::DEFAULT_SETGID_SCAN); empty: off).
    pub setgid_scan: Option<Vec<ScanRoot>>,
}

/// Protection against abuse by local users. Defaults suit a production host; the benchmark
/// raises them explicitly.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_uid: usize,
    /// Sustained requests per second per uid (token bucket refill rate).
    pub requests_per_second: u32,
    /// Bucket size: how many requests a uid may make in a burst.
    pub burst: u32,
    /// How long a client may take to send a complete request.
    pub read_timeout_ms: u64,
    /// How long an idle connection (no command running) is kept.
    pub idle_timeout_ms: u64,
    /// Grace between TERM and KILL when a command must be ended.
    pub kill_grace_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_connections_per_uid: 32,
            requests_per_second: 50,
            burst: 100,
            read_timeout_ms: 5_000,
            idle_timeout_ms: 60_000,
            kill_grace_ms: 2_000,
        }
    }
}

impl Config {
    /// Read the config; a missing file is the default config, a broken one an error naming
    /// `file:line:col`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(ConfigError::Unreadable {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
            }
        };
        toml::from_str(&text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|s| crate::diag::line_col(&text, s.start))
                .unwrap_or((0, 0));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                col,
                message: e.message().to_string(),
            }
        })
    }

    /// `request_timeout` parsed; 1 hour when absent.
    pub fn request_timeout(&self) -> Result<std::time::Duration, ConfigError> {
        match &self.request_timeout {
            None => Ok(std::time::Duration::from_secs(3600)),
            Some(s) => {
                elevate_base::duration::parse_duration(s).map_err(ConfigError::RequestTimeout)
            }
        }
    }

    /// `setgid_scan` as it applies: the configured list, or the defaults when absent.
    pub fn setgid_scan(&self) -> Vec<ScanRoot> {
        self.setgid_scan.clone().unwrap_or_else(ScanRoot::defaults)
    }

    pub fn policy_dir(&self) -> PathBuf {
        self.policy_dir
            .clone()
            .unwrap_or_else(|| DEFAULT_POLICY_DIR.into())
    }
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| DEFAULT_STATE_DIR.into())
    }
    pub fn audit_log(&self) -> PathBuf {
        self.audit_log
            .clone()
            .unwrap_or_else(|| DEFAULT_AUDIT_LOG.into())
    }
    pub fn socket(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| elevate_base::paths::DEFAULT_SOCKET.into())
    }

    /// The host as decisions see it: the configured name or gethostname(2), lower-cased
    /// (host names are case-insensitive), and the labels.
    pub fn host(&self) -> crate::model::HostInfo {
        let name = self
            .hostname
            .clone()
            .unwrap_or_else(crate::system::hostname);
        crate::model::HostInfo {
            name: name.to_ascii_lowercase(),
            labels: self.labels.clone(),
        }
    }
}
