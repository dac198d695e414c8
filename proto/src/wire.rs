//! Message types. Nothing in a request says who the caller is: the daemon takes identity from
//! the kernel (SO_PEERCRED and /proc), so there is no field a client could forge.

pub use elevate_base::{Pid, Uid};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Client → daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Decide and, if allowed, run a command. The frame carries exactly four fds
    /// (stdin, stdout, stderr, and a directory fd for the working directory).
    /// The daemon answers `Started` (then later `Exited`) or `Denied`/`Error`.
    Run(RunRequest),
    /// Deliver a signal to the command started on this connection (after `Started`).
    Signal { signal: i32 },
    /// Would `Run` be allowed? Decides exactly as `Run` does, runs nothing, writes no audit.
    Check(RunRequest),
    /// What may the caller run on this host.
    List {},
    /// Daemon health: version, policy digest, last reload.
    Status {},
    /// Re-read the policy now (root only; what SIGHUP does) and answer `Reloaded` with the
    /// outcome, so `systemctl reload` can report a failed reload.
    Reload {},
    /// Ask for a lease on a profile (`elevate request`, `elevate break-glass`).
    RequestLease(LeaseRequest),
    /// Block until the lease leaves the pending state (`elevate request --wait`); answers `Lease`.
    Wait { id: u64 },
    /// Approve someone else's pending request.
    Approve {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// Deny a pending request.
    Deny {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// End a lease early (holder or admin), or withdraw a pending request.
    Revoke {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Lengthen an active lease, within the profile's max_duration counted from activation.
    Extend { id: u64, by_secs: u64 },
    /// My leases, or everyone's (`all`, admins and auditors).
    Leases {
        #[serde(default)]
        all: bool,
    },
    /// Run a command as the caller with a lease's granted groups added (`elevate with`).
    /// Carries the same four fds as `Run`. `lease` is a lease id or a profile name.
    With(WithRequest),
    /// PAM account phase (pam_elevate.so): may `user` log in through `service` now? Root may
    /// ask about anyone; other callers only about themselves. Answers `Login`.
    LoginCheck(LoginQuery),
    /// PAM session phase: a login admitted by `LoginCheck` opened a session. The calling
    /// process (from SO_PEERCRED, never a field) is its leader. Answers `Session`.
    SessionOpen(LoginQuery),
    /// The session registered as `id` closed. Answers `Session`.
    SessionClose { id: u64 },
    /// The answer to a `Prompt` that expects one (`secret` or `echo`). `None`: the user could
    /// not or would not answer (no terminal, end of input).
    PromptReply {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
}

/// How a step-up prompt is shown: as PAM's four message styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptStyle {
    /// Read an answer without echo (a password, an OTP).
    Secret,
    /// Read an answer with echo.
    Echo,
    /// Show only.
    Info,
    /// Show only, as an error.
    Error,
}

impl PromptStyle {
    pub fn wants_reply(self) -> bool {
        matches!(self, PromptStyle::Secret | PromptStyle::Echo)
    }
}

/// Longest prompt reply accepted (PAM's own limit for a response is 512 bytes).
pub const MAX_PROMPT_REPLY: usize = 512;

/// Who is logging in, where from: what PAM knows (`PAM_SERVICE`, `PAM_USER`, `PAM_RHOST`,
/// `PAM_TTY`). Only the service and user decide; the rest is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoginQuery {
    pub service: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rhost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<String>,
}

/// The answer to a login question. `Ignore`: no `[[login]]` rule gates this identity for this
/// service, so the rest of the PAM stack decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginDecision {
    Allow,
    Deny,
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginVerdict {
    pub decision: LoginDecision,
    /// For the user: why not, and how to get access (which profile to request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The lease that admits this login, when access is by lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    pub profile: String,
    /// Requested length; the profile's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// End the lease when this process (owned by the caller) exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_pid: Option<Pid>,
    /// `elevate break-glass`: only for profiles with break_glass = true.
    #[serde(default)]
    pub break_glass: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WithRequest {
    pub lease: String,
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

/// What to run. `argv[0]` is an absolute path or a bare name; the daemon resolves bare names
/// through its own fixed secure PATH, never the caller's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub argv: Vec<String>,
    /// Restrict the decision to this profile (`elevate run -p`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Ask for this target user (`elevate run -u`); otherwise the matching rule's `run_as`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    /// The caller's environment. The daemon keeps only allow-listed names; the rest is dropped.
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

/// Daemon → client.
// Each value is built once and serialized at once; boxing the large lease variant would only
// add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// The command is running with this pid (also its process group and session id).
    Started(Started),
    /// The command ended. Final message of a `Run`.
    Exited(ExitStatus),
    /// Policy said no. `hint` tells the user what they could do instead.
    Denied(Denial),
    /// Answer to `Check`.
    Checked(Checked),
    /// Answer to `List`.
    List(ListReply),
    /// Answer to `Status`.
    Status(StatusReply),
    /// Answer to `Reload`: on failure the previous policy stays in force.
    Reloaded(ReloadReport),
    /// One lease, after a lease request or transition.
    Lease(LeaseInfo),
    /// Answer to `Leases`.
    Leases { leases: Vec<LeaseInfo> },
    /// Answer to `LoginCheck`.
    Login(LoginVerdict),
    /// Step-up authentication: show this to the requester (on their terminal) and, for
    /// `secret` and `echo`, answer with `PromptReply`. Comes before the final answer.
    Prompt { style: PromptStyle, text: String },
    /// Answer to `SessionOpen` (the id to close it with) and `SessionClose`. `lease`: the
    /// lease the session ends with, if any.
    Session {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lease: Option<u64>,
    },
    /// The request could not be handled. Never means "allowed".
    Error(ErrorReply),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Started {
    pub pid: Pid,
    pub profile: String,
    pub run_as: String,
    /// Canonical path of the executable the daemon runs.
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExitStatus {
    Code { code: i32 },
    Signal { signal: i32 },
}

impl ExitStatus {
    /// The status a shell would report: the code, or 128+N for signal N.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code { code } => code,
            ExitStatus::Signal { signal } => crate::exit::SIGNAL_BASE + signal,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Denial {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checked {
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListReply {
    pub user: String,
    pub host: String,
    pub profiles: Vec<ListedProfile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedProfile {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub run_as: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<String>,
    /// "standing" or "lease".
    pub access: String,
    /// For lease profiles: whether the caller holds an active lease now.
    pub usable_now: bool,
    /// One human-readable line per allowed command, e.g. `/usr/bin/systemctl restart {nginx.service|php-fpm.service}`.
    pub commands: Vec<String>,
    /// What to type to make it usable, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReply {
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
    pub host: String,
    pub uptime_secs: u64,
    pub policy_dir: String,
    /// SHA-256 over the loaded files' names and contents.
    pub policy_digest: String,
    pub policy_files: Vec<String>,
    pub profiles: usize,
    pub last_reload: ReloadReport,
    pub running_commands: usize,
    /// Group edits handed to the editor and not finished (another program may hold
    /// /etc/.pwd.lock), and how long the oldest has waited.
    #[serde(default)]
    pub group_edits_pending: usize,
    #[serde(default)]
    pub group_edit_wait_ms: u64,
    /// The last group edit that failed, until one succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_edit_error: Option<String>,
    /// How late the last lease to expire was ended, after its deadline.
    #[serde(default)]
    pub expiry_lag_ms: u64,
    /// Conditions an administrator should know of, each a sentence: a full state directory,
    /// a place lease holders can write that is not mounted `nosuid`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadReport {
    /// RFC 3339 UTC.
    pub at: String,
    pub ok: bool,
    /// `file:line:col: message` lines; on failure the daemon kept the previous policy.
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `as_str` (the word serde writes for each variant, pinned by the tests below) and a
/// `Display` that shows it, for an enum of unit variants.
macro_rules! wire_words {
    ($ty:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $word,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Where a lease is in its life: waiting for approval, in force, or over (for good).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    #[default]
    Pending,
    Active,
    Ended,
}

wire_words!(LeaseState {
    Pending => "pending",
    Active => "active",
    Ended => "ended",
});

/// Why a lease (or a request) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// An active lease reached its expiry.
    Expired,
    /// Ended early by its holder or an admin.
    Revoked,
    /// A pending request was denied.
    Denied,
    /// A pending request was not approved in time.
    RequestExpired,
    /// The process the lease was bound to exited.
    ProcessExited,
    /// A policy reload removed or changed the profile.
    PolicyChanged,
    /// The requester withdrew a pending request.
    Withdrawn,
}

wire_words!(EndReason {
    Expired => "expired",
    Revoked => "revoked",
    Denied => "denied",
    RequestExpired => "request_expired",
    ProcessExited => "process_exited",
    PolicyChanged => "policy_changed",
    Withdrawn => "withdrawn",
});

/// A lease as the daemon knows it — what approvers see, never text the requester chose to
/// show about someone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseInfo {
    pub id: u64,
    pub user: String,
    pub uid: Uid,
    pub profile: String,
    pub state: LeaseState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    pub duration_secs: u64,
    /// RFC 3339 UTC timestamps.
    pub requested_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Seconds until expiry, for active leases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_left_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    #[serde(default)]
    pub approvals: Vec<ApprovalInfo>,
    pub approvals_needed: u32,
    #[serde(default)]
    pub grant_groups: Vec<String>,
    #[serde(default)]
    pub break_glass: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_pid: Option<Pid>,
    /// Who may approve requests on this profile (`user` or `group:NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// The comment given when it was denied or revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_comment: Option<String>,
    /// An extension waiting for approval: how much longer, and who approved it so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_pending_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension_approvals: Vec<ApprovalInfo>,
    /// An active lease's groups not written to /etc/group yet (the daemon retries): until
    /// then the lease is granting, not in force for new logins or `elevate with`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granting: Vec<String>,
    /// Why they are not written yet: the last failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granting_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalInfo {
    pub user: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorReply {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Malformed request (client bug or hostile input).
    BadRequest,
    /// Too many requests from this uid; try again later.
    RateLimited,
    /// Too many connections.
    Busy,
    /// The audit record could not be written, so nothing ran.
    AuditFailed,
    /// The allowed command could not be started.
    SpawnFailed,
    /// Anything else that went wrong inside the daemon.
    Internal,
    /// The named lease or request does not exist (or is not visible to the caller).
    NotFound,
    /// The profile requires step-up authentication and this client cannot hold the
    /// conversation (the CLI does it on the requester's terminal).
    AuthenticationRequired,
    /// The daemon's state directory is full: requests, approvals and extensions are refused
    /// until space is freed (endings still take effect).
    StateFull,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_rejects_unknown_fields() {
        let r = Request::Run(RunRequest {
            argv: vec!["/bin/true".into()],
            profile: Some("p".into()),
            ..Default::default()
        });
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        // A client cannot smuggle identity: there is no such field, and unknown fields are errors.
        assert!(
            serde_json::from_str::<Request>(r#"{"type":"run","argv":["/bin/true"],"uid":0}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Request>(r#"{"type":"status","x":1}"#).is_err());
    }

    /// Each value serializes as its word, parses back from it, and shows it.
    fn assert_spelled<T>(cases: &[(T, &str)], as_str: fn(T) -> &'static str)
    where
        T: Copy + fmt::Debug + fmt::Display + PartialEq + Serialize + serde::de::DeserializeOwned,
    {
        for &(value, word) in cases {
            let json = format!("\"{word}\"");
            assert_eq!(serde_json::to_string(&value).unwrap(), json);
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), value);
            assert_eq!((as_str(value), value.to_string().as_str()), (word, word));
        }
    }

    #[test]
    fn lease_states_and_end_reasons_keep_their_wire_spelling() {
        let states = [
            (LeaseState::Pending, "pending"),
            (LeaseState::Active, "active"),
            (LeaseState::Ended, "ended"),
        ];
        assert_spelled(&states, LeaseState::as_str);
        let reasons = [
            (EndReason::Expired, "expired"),
            (EndReason::Revoked, "revoked"),
            (EndReason::Denied, "denied"),
            (EndReason::RequestExpired, "request_expired"),
            (EndReason::ProcessExited, "process_exited"),
            (EndReason::PolicyChanged, "policy_changed"),
            (EndReason::Withdrawn, "withdrawn"),
        ];
        assert_spelled(&reasons, EndReason::as_str);
        assert!(serde_json::from_str::<LeaseState>("\"Pending\"").is_err());
        // A whole lease, as clients have always received it.
        let line = r#"{"id":7,"user":"alice","uid":1000,"profile":"p","state":"ended","duration_secs":60,"requested_at":"2024-05-01T12:00:00.000Z","ended_at":"2024-05-01T12:01:00.000Z","end_reason":"request_expired","approvals":[],"approvals_needed":1,"grant_groups":[],"break_glass":false}"#;
        let l: LeaseInfo = serde_json::from_str(line).unwrap();
        assert_eq!(
            (l.state, l.end_reason),
            (LeaseState::Ended, Some(EndReason::RequestExpired))
        );
        assert_eq!(serde_json::to_string(&l).unwrap(), line);
    }

    #[test]
    fn shell_code_of_signal() {
        assert_eq!(ExitStatus::Signal { signal: 9 }.shell_code(), 137);
        assert_eq!(ExitStatus::Code { code: 3 }.shell_code(), 3);
    }
}
