//! The daemon's effective settings: the config file, then command-line overrides.

use clap::Parser;
use elevate_policy::config::{Config, ConfigError, Limits, DEFAULT_CONFIG};
use elevate_policy::setgid::ScanRoot;
use elevate_policy::HostInfo;
use std::fmt;
use std::path::PathBuf;

/// elevated — the elevate privilege daemon. Runs as root; decides and runs privileged commands
/// for local users according to /etc/elevate/policy.d. SIGHUP reloads the policy.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
pub struct Flags {
    /// Configuration file (default /etc/elevate/elevated.toml; absent = all defaults). A path
    /// given here must exist.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Unix socket to listen on.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Directory of *.toml policy files.
    #[arg(long)]
    pub policy_dir: Option<PathBuf>,
    /// Directory for the daemon's durable state.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Audit log file (JSON Lines, hash-chained).
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// Host name used for `hosts` matching (default: from the config, else gethostname).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Check the configuration and policy, print problems, and exit (0 if valid).
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub socket: PathBuf,
    pub policy_dir: PathBuf,
    pub state_dir: PathBuf,
    pub audit_log: PathBuf,
    pub host: HostInfo,
    pub limits: Limits,
    /// Receives each lease event as JSON on stdin.
    pub notify_command: Option<PathBuf>,
    /// How long a request may wait for approval.
    pub pending_ttl: std::time::Duration,
    /// The longest the core waits for a group edit before going on without its outcome
    /// (see `core::edits`).
    pub group_edit_wait: std::time::Duration,
    /// Where the end-of-lease sweep strips set-gid bits (empty: it is off).
    pub setgid_scan: Vec<ScanRoot>,
}

/// [`Settings::group_edit_wait`]: a rewrite of /etc/group takes a few milliseconds; longer
/// means another program holds `/etc/.pwd.lock`, and decisions should not wait for it.
pub const GROUP_EDIT_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Why the daemon cannot start with these settings. `Display` is what it prints before
/// exiting with EX_CONFIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    /// `--config` names a file that does not exist.
    NoConfigFile(PathBuf),
    /// The configuration file is unreadable or invalid.
    Config(ConfigError),
    /// `notify_command` is a relative path.
    RelativeNotifyCommand(PathBuf),
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::NoConfigFile(p) => {
                write!(f, "{}: no such configuration file", p.display())
            }
            SettingsError::Config(e) => write!(f, "{e}"),
            SettingsError::RelativeNotifyCommand(p) => {
                write!(
                    f,
                    "notify_command {}: must be an absolute path",
                    p.display()
                )
            }
        }
    }
}

impl std::error::Error for SettingsError {}

impl From<ConfigError> for SettingsError {
    fn from(e: ConfigError) -> SettingsError {
        SettingsError::Config(e)
    }
}

impl Settings {
    pub fn resolve(flags: &Flags) -> Result<Settings, SettingsError> {
        let mut cfg = match &flags.config {
            Some(p) if !p.exists() => return Err(SettingsError::NoConfigFile(p.clone())),
            Some(p) => Config::load(p)?,
            None => Config::load(std::path::Path::new(DEFAULT_CONFIG))?,
        };
        if flags.hostname.is_some() {
            cfg.hostname = flags.hostname.clone();
        }
        if let Some(p) = cfg.notify_command.as_ref().filter(|p| !p.is_absolute()) {
            return Err(SettingsError::RelativeNotifyCommand(p.clone()));
        }
        Ok(Settings {
            socket: flags.socket.clone().unwrap_or_else(|| cfg.socket()),
            policy_dir: flags.policy_dir.clone().unwrap_or_else(|| cfg.policy_dir()),
            state_dir: flags.state_dir.clone().unwrap_or_else(|| cfg.state_dir()),
            audit_log: flags.audit_log.clone().unwrap_or_else(|| cfg.audit_log()),
            host: cfg.host(),
            limits: cfg.limits.clone(),
            notify_command: cfg.notify_command.clone(),
            pending_ttl: cfg.request_timeout()?,
            group_edit_wait: GROUP_EDIT_WAIT,
            setgid_scan: cfg.setgid_scan(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_before() {
        let flags = Flags::parse_from(["elevated", "--config", "/nonexistent/elevated.toml"]);
        assert_eq!(
            Settings::resolve(&flags).unwrap_err().to_string(),
            "/nonexistent/elevated.toml: no such configuration file"
        );
        assert_eq!(
            SettingsError::RelativeNotifyCommand("hook".into()).to_string(),
            "notify_command hook: must be an absolute path"
        );
    }
}
