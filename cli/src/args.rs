//! The command line. `elevate CMD ARGS` is shorthand for `elevate run -- CMD ARGS` when CMD is
//! not a subcommand, as with sudo; [`expand_shorthand`] rewrites it before clap sees it.

use clap::{Args, Parser, Subcommand};
use elevate_policy::config::DEFAULT_CONFIG;
use std::ffi::OsString;
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit status:
  the command's own   the command ran (128+N if it was killed by signal N)
  77                  denied by policy
  69                  elevated is unreachable
  2                   usage error
  1                   invalid policy (policy check) or broken audit chain (audit verify)
  66                  an input file could not be read
  70                  internal error, or the audit record could not be written (nothing ran)
  75                  rate-limited or busy: try again
  126                 the allowed command could not be executed";

/// Run commands with just enough privilege, as your policy allows.
///
/// `elevate CMD [ARG...]` asks elevated to run CMD; `elevate list` shows what you may run.
#[derive(Parser, Debug)]
#[command(name = "elevate", version, after_help = EXIT_CODES, disable_help_subcommand = true)]
pub struct Cli {
    /// Socket of the elevated daemon.
    #[arg(long, global = true, env = "ELEVATE_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// elevated's configuration (for offline commands: policy dir, audit log, host name, labels).
    #[arg(long, global = true, default_value = DEFAULT_CONFIG, value_name = "PATH")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a command as policy allows (also: `elevate CMD [ARG...]`).
    Run(RunArgs),
    /// What may I run here? With `-- CMD [ARG...]`: would this be allowed?
    List(ListArgs),
    /// Daemon health: version, policy digest and files, last reload, uptime.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Validate and explain policy files, offline.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Ask for a lease on a profile; prints the lease id alone on the first line.
    Request(RequestArgs),
    /// Approve someone else's pending request.
    Approve {
        id: u64,
        #[arg(long)]
        comment: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Deny a pending request.
    Deny {
        id: u64,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// End a lease early (holder or admin), or withdraw your pending request.
    Revoke {
        id: u64,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Lengthen an active lease, within the profile's maximum from activation.
    Extend {
        id: u64,
        /// How much longer: 90s, 15m, 1h30m...
        #[arg(long, value_name = "DUR", value_parser = parse_dur)]
        by: std::time::Duration,
        #[arg(long)]
        json: bool,
    },
    /// Your leases and requests (pending, active with time left, recently ended).
    Leases {
        /// Everyone's (admins and auditors).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Run a command as yourself with a lease's groups added.
    With(WithArgs),
    /// Emergency access without approval: audited at alert level, admins notified.
    #[command(name = "break-glass")]
    BreakGlass {
        profile: String,
        /// Why (required).
        #[arg(long, required = true)]
        reason: String,
        #[arg(long = "for", value_name = "DUR", value_parser = parse_dur)]
        duration: Option<std::time::Duration>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_dur(s: &str) -> Result<std::time::Duration, String> {
    elevate_policy::parse_duration(s)
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    pub profile: String,
    /// How long: 90s, 15m, 1h30m, 2h... (default: the profile's).
    #[arg(long = "for", value_name = "DUR", value_parser = parse_dur)]
    pub duration: Option<std::time::Duration>,
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub ticket: Option<String>,
    /// Wait until the request is approved, denied or expires.
    #[arg(long)]
    pub wait: bool,
    /// End the lease when this process (yours) exits: for CI jobs and service accounts.
    #[arg(long, value_name = "PID")]
    pub bind_pid: Option<i32>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct WithArgs {
    /// A lease id or profile name of one of your active leases.
    pub lease: String,
    /// The command (found through your own PATH) and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Use only this profile.
    #[arg(short = 'p', long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Run as this user (must be the profile's run_as).
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// The command and its arguments. A bare name is found in elevate's fixed PATH.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Show only this profile (with a command: decide against it only).
    #[arg(short = 'p', long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// With a command: as this run-as user.
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// A command to check instead of listing.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate policy files without a daemon or privileges (exit 0 valid, 1 invalid).
    Check(CheckArgs),
    /// Which rule allows a command, or why none does.
    Explain(ExplainArgs),
}

#[derive(Args, Debug)]
pub struct HostArgs {
    /// Host name to evaluate `hosts` against (default: as elevated would).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Host labels, `k=v,k2=v2` (default: elevated.toml's [labels]).
    #[arg(long, value_name = "K=V,...")]
    pub labels: Option<String>,
    /// Skip the root-ownership and mode checks (for files in a checkout).
    #[arg(long)]
    pub no_permissions: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Policy files, or one directory (default: the configured policy dir).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub host: HostArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Evaluate for this user (default: you).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Policy directory (default: the configured one).
    #[arg(long, value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,
    #[command(flatten)]
    pub host: HostArgs,
    /// Decide against this profile only.
    #[arg(short = 'p', long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// As this run-as user.
    #[arg(long, value_name = "USER")]
    pub run_as: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// The command to explain.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain (rotated files oldest first); exit 1 at the first broken record.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Log files in chain order (default: the configured audit log).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Anchor file with the last written seq/hash (default: the state dir's, if readable).
    #[arg(long, value_name = "PATH")]
    pub anchor: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

const SUBCOMMANDS: &[&str] = &[
    "run",
    "list",
    "status",
    "policy",
    "audit",
    "help",
    "request",
    "approve",
    "deny",
    "revoke",
    "extend",
    "leases",
    "with",
    "break-glass",
];

/// Rewrite `elevate [GLOBAL...] [-u U] [-p P] CMD ARGS...` into
/// `elevate [GLOBAL...] run [-u U] [-p P] -- CMD ARGS...` when CMD is not a subcommand.
pub fn expand_shorthand(argv: Vec<OsString>) -> Vec<OsString> {
    let mut globals: Vec<OsString> = Vec::new();
    let mut run_opts: Vec<OsString> = Vec::new();
    let mut it = argv.iter().skip(1).peekable();
    while let Some(arg) = it.next() {
        let s = arg.to_string_lossy();
        match s.as_ref() {
            "--socket" | "--config" => {
                globals.push(arg.clone());
                if let Some(v) = it.next() {
                    globals.push(v.clone());
                }
            }
            _ if s.starts_with("--socket=") || s.starts_with("--config=") => {
                globals.push(arg.clone())
            }
            "-u" | "-p" | "--user" | "--profile" => {
                run_opts.push(arg.clone());
                if let Some(v) = it.next() {
                    run_opts.push(v.clone());
                }
            }
            _ if (s.starts_with("-u") || s.starts_with("-p"))
                && s.len() > 2
                && !s.starts_with("--") =>
            {
                run_opts.push(arg.clone())
            }
            _ if s.starts_with("--user=") || s.starts_with("--profile=") => {
                run_opts.push(arg.clone())
            }
            "--" => {
                let rest: Vec<OsString> = it.cloned().collect();
                return assemble(&argv[0], globals, run_opts, rest);
            }
            _ if s.starts_with('-') => return argv, // --help, --version, or an error clap reports
            _ if SUBCOMMANDS.contains(&s.as_ref()) && run_opts.is_empty() => return argv,
            _ => {
                let mut rest = vec![arg.clone()];
                rest.extend(it.cloned());
                return assemble(&argv[0], globals, run_opts, rest);
            }
        }
    }
    argv
}

fn assemble(
    prog: &OsString,
    globals: Vec<OsString>,
    run_opts: Vec<OsString>,
    rest: Vec<OsString>,
) -> Vec<OsString> {
    let mut out = vec![prog.clone()];
    out.extend(globals);
    out.push("run".into());
    out.extend(run_opts);
    out.push("--".into());
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: &[&str]) -> Vec<String> {
        let argv: Vec<OsString> = std::iter::once("elevate")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        expand_shorthand(argv)
            .into_iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn shorthand_table() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["systemctl", "restart", "x"],
                &["run", "--", "systemctl", "restart", "x"],
            ),
            (
                &["-u", "postgres", "psql", "-d", "app"],
                &["run", "-u", "postgres", "--", "psql", "-d", "app"],
            ),
            (
                &["-upostgres", "psql"],
                &["run", "-upostgres", "--", "psql"],
            ),
            (
                &["--socket", "/s", "id", "-u"],
                &["--socket", "/s", "run", "--", "id", "-u"],
            ),
            (&["list"], &["list"]),
            (&["list", "--json"], &["list", "--json"]),
            (&["run", "--", "list"], &["run", "--", "list"]),
            (&["--", "list"], &["run", "--", "list"]),
            (
                &["-u", "root", "list"],
                &["run", "-u", "root", "--", "list"],
            ),
            (&["--help"], &["--help"]),
            (&["policy", "check"], &["policy", "check"]),
            (
                &["request", "db-admin", "--for", "1h"],
                &["request", "db-admin", "--for", "1h"],
            ),
            (&["with", "5", "--", "id"], &["with", "5", "--", "id"]),
            (&[], &[]),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input), want.to_vec(), "input {input:?}");
        }
    }

    #[test]
    fn clap_accepts_expanded_forms() {
        let parse = |args: &[&str]| {
            let argv: Vec<OsString> = std::iter::once("elevate")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect();
            Cli::try_parse_from(expand_shorthand(argv))
        };
        let cli = parse(&["-u", "postgres", "psql", "-d", "app"]).unwrap();
        match cli.command {
            Command::Run(r) => {
                assert_eq!(r.user.as_deref(), Some("postgres"));
                assert_eq!(
                    r.command,
                    vec![OsString::from("psql"), "-d".into(), "app".into()]
                );
            }
            other => panic!("{other:?}"),
        }
        let cli = parse(&["list", "--", "id", "-u"]).unwrap();
        assert!(matches!(cli.command, Command::List(l) if l.command.len() == 2));
        assert!(parse(&["run"]).is_err(), "a command is required");
        assert!(parse(&["policy", "explain"]).is_err());
    }
}
