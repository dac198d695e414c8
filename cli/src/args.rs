//! The command line. `elevate CMD ARGS` is shorthand for `elevate run -- CMD ARGS` when CMD is
//! not a subcommand, as with sudo; [`expand_shorthand`] rewrites it before clap sees it.

use clap::{Args, Parser, Subcommand};
// `--for` and `--by`: clap reports a bad value as a usage error (exit 2) with the
// `DurationError`'s sentence.
use elevate_base::duration::parse_duration;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

const EXIT_CODES: &str = "\
Exit status:
  the command's own   the command ran (128+N if it was killed by signal N)
  77                  denied by policy; request --wait, break-glass: the request was denied
                      or expired
  69                  elevated is unreachable
  2                   usage error
  1                   invalid policy (policy check), broken audit chain (audit verify), or
                      no such lease or request (approve, deny, revoke, extend, with)
  66                  an input file could not be read
  70                  internal error, or the audit record could not be written (nothing ran)
  75                  rate-limited, busy, or elevated's state directory is full: try again
  126                 the allowed command could not be executed
  127                 with: the command was not found in your PATH";

/// Run commands with just enough privilege, as your policy allows.
///
/// `elevate CMD [ARG...]` asks elevated to run CMD; `elevate list` shows what you may run;
/// `elevate request PROFILE` asks for a time-limited lease, `elevate leases` shows yours.
#[derive(Parser, Debug)]
#[command(name = "elevate", version, after_help = EXIT_CODES, disable_help_subcommand = true)]
pub struct Cli {
    /// Socket of the elevated daemon.
    #[arg(long, global = true, env = "ELEVATE_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// elevated's configuration (for offline commands: policy dir, audit log, host name, labels).
    /// Default /etc/elevate/elevated.toml (absent = all defaults); a path given here must exist.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a command as policy allows (also: `elevate CMD [ARG...]`).
    Run(RunArgs),
    /// What may I run here? With `-- CMD [ARG...]`: would this be allowed?
    List(ListArgs),
    /// Daemon health: version, policy digest and files, last reload, uptime, and warnings
    /// about this host.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Make the daemon re-read its policy now and report the outcome (root; what
    /// `systemctl reload elevated` runs). Exit 1 when the new policy was rejected.
    Reload {
        /// Machine-readable output: the reload report.
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
        /// The request's id (see `elevate leases --all`).
        id: u64,
        /// A note for the audit log and the requester.
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
        /// Print the resulting lease as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deny someone else's pending request.
    Deny {
        /// The request's id (see `elevate leases --all`).
        id: u64,
        /// Why, for the audit log and the requester.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Print the resulting lease as JSON.
        #[arg(long)]
        json: bool,
    },
    /// End a lease early (holder, admin or root), or withdraw your pending request.
    Revoke {
        /// The lease's id (see `elevate leases`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<u64>,
        /// Every active lease and pending request you may end (root: all of them; what
        /// uninstalling elevate does).
        #[arg(long)]
        all: bool,
        /// Why, for the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Print the resulting lease as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lengthen an active lease, within the profile's maximum counted from activation.
    Extend {
        /// The lease's id (see `elevate leases`).
        id: u64,
        /// How much longer: 90s, 15m, 1h30m, 2h, 1d.
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        by: Duration,
        /// Print the resulting lease as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Your leases and requests: pending, active with time left, recently ended.
    Leases {
        /// Everyone's (approvers, admins and auditors).
        #[arg(long)]
        all: bool,
        /// Machine-readable output: {"leases": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Run a command as yourself with an active lease's groups added.
    With(WithArgs),
    /// Emergency access without approval: audited at alert level, administrators notified.
    #[command(name = "break-glass")]
    BreakGlass(BreakGlassArgs),
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    /// The lease profile (see `elevate list`).
    pub profile: String,
    /// How long: 90s, 15m, 1h30m, 2h, 1d (default: the profile's).
    #[arg(long = "for", value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Why you need it (some profiles require one).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Change or incident ticket (some profiles require one).
    #[arg(long, value_name = "ID")]
    pub ticket: Option<String>,
    /// If approval is needed, wait for the decision; exit 0 once active, 77 if denied or expired.
    #[arg(long)]
    pub wait: bool,
    /// End the lease when this process (one of yours) exits: for CI jobs and scripts.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    pub bind_pid: Option<i32>,
    /// Print the lease as JSON instead (with --wait: its final state only).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BreakGlassArgs {
    /// A profile that allows break-glass.
    pub profile: String,
    /// Why (required; it goes to the administrators).
    #[arg(long, value_name = "TEXT", required = true)]
    pub reason: String,
    /// How long: 90s, 15m, 1h30m, 2h, 1d (default: the profile's).
    #[arg(long = "for", value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Print the lease as JSON instead.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct WithArgs {
    /// One of your active leases: its id, or its profile's name.
    #[arg(value_name = "ID|PROFILE")]
    pub lease: String,
    /// The command and its arguments; a bare name is found through your own PATH.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
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
    ///
    /// When a profile grants groups, it also warns about each place in elevated.toml's
    /// `setgid_scan` that is not mounted nosuid on this host (not with --host).
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
    /// Check the hash chain (rotated files oldest first); exit 0 only when it is proven whole.
    ///
    /// Proven means: every record intact and chained to the one before; the first record is a
    /// log's first (seq 1, prev of 64 zeros), so no older records or rotated files were
    /// removed; and the anchor names a record of the chain with its hash, so the newest records
    /// were not cut. Exit 1 at the first broken record, and when the start or the end cannot be
    /// proven: the oldest file given starts later (--allow-missing-start accepts that), or no
    /// anchor checked the end — none given with FILEs, the state dir's missing, or it names a
    /// record before the files given (--no-anchor accepts that). What such a flag leaves
    /// unproven is printed ("not proven: ..."; "unproven" with --json). Exit 66 when a file
    /// cannot be read.
    ///
    /// A torn line left by an interrupted write that the daemon sealed (an audit.sealed record
    /// right after it), and records the daemon could not write (an audit.gap record counts
    /// them), are warnings: printed after the result (under "warnings" with --json), exit 0.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Log files in chain order (default: the configured audit log).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Anchor file with the last written seq/hash (default without FILEs: the state dir's).
    #[arg(long, value_name = "PATH", conflicts_with = "no_anchor")]
    pub anchor: Option<PathBuf>,
    /// Check no anchor: the newest records could have been cut unnoticed (said, exit 0).
    #[arg(long)]
    pub no_anchor: bool,
    /// Accept files that start after the log's first record (the oldest rotated files are
    /// gone): records before could have been removed unnoticed (said, exit 0).
    #[arg(long)]
    pub allow_missing_start: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

const SUBCOMMANDS: &[&str] = &[
    "run",
    "list",
    "status",
    "reload",
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

    #[test]
    fn every_subcommand_is_known_to_the_shorthand() {
        use clap::CommandFactory;
        let mut defined: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .chain(["help".to_string()])
            .collect();
        let mut known: Vec<String> = SUBCOMMANDS.iter().map(|s| s.to_string()).collect();
        defined.sort();
        known.sort();
        assert_eq!(defined, known);
    }

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

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let argv: Vec<OsString> = std::iter::once("elevate")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        Cli::try_parse_from(expand_shorthand(argv))
    }

    #[test]
    fn lease_subcommands_are_not_commands_to_run() {
        for sub in [
            "request",
            "approve",
            "deny",
            "revoke",
            "extend",
            "leases",
            "with",
            "break-glass",
        ] {
            assert_eq!(expand(&[sub, "x"])[0], sub);
        }
        match parse(&["request", "db-admin"]).unwrap().command {
            Command::Request(r) => {
                assert_eq!(r.profile, "db-admin");
                assert!(r.duration.is_none() && !r.wait && !r.json);
            }
            other => panic!("{other:?}"),
        }
        let cli = parse(&[
            "--socket",
            "/s",
            "request",
            "db",
            "--for",
            "1h30m",
            "--reason",
            "fix",
            "--ticket",
            "INC-1",
            "--wait",
            "--bind-pid",
            "42",
        ])
        .unwrap();
        match cli.command {
            Command::Request(r) => {
                assert_eq!(r.duration, Some(Duration::from_secs(5400)));
                assert_eq!(r.reason.as_deref(), Some("fix"));
                assert_eq!(r.ticket.as_deref(), Some("INC-1"));
                assert_eq!(r.bind_pid, Some(42));
                assert!(r.wait);
            }
            other => panic!("{other:?}"),
        }
        // `elevate -u root request` still means: run the command `request` as root.
        assert!(matches!(
            parse(&["-u", "root", "request"]).unwrap().command,
            Command::Run(_)
        ));
    }

    #[test]
    fn with_parses_with_and_without_separator() {
        for args in [
            &["with", "5", "--", "id", "-u"][..],
            &["with", "5", "id", "-u"],
        ] {
            match parse(args).unwrap().command {
                Command::With(w) => {
                    assert_eq!(w.lease, "5");
                    assert_eq!(w.command, vec![OsString::from("id"), "-u".into()]);
                }
                other => panic!("{other:?}"),
            }
        }
        match parse(&["with", "db-admin", "--", "psql", "--", "-x"])
            .unwrap()
            .command
        {
            Command::With(w) => assert_eq!(w.command, ["psql", "--", "-x"].map(OsString::from)),
            other => panic!("{other:?}"),
        }
        assert!(parse(&["with", "5"]).is_err(), "a command is required");
        assert!(parse(&["with"]).is_err());
    }

    #[test]
    fn durations_and_required_arguments() {
        match parse(&["extend", "3", "--by", "15m"]).unwrap().command {
            Command::Extend { id, by, .. } => {
                assert_eq!((id, by), (3, Duration::from_secs(900)))
            }
            other => panic!("{other:?}"),
        }
        for bad in ["soon", "15", "-1h", "0s", "1y", ""] {
            let e = parse(&["request", "db", &format!("--for={bad}")]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(
                e.to_string().contains("1h30m"),
                "names the accepted forms: {e}"
            );
        }
        assert!(parse(&["extend", "3"]).is_err(), "--by is required");
        assert!(
            parse(&["extend", "x", "--by", "1m"]).is_err(),
            "ids are numbers"
        );
        assert!(parse(&["request", "db", "--bind-pid", "0"]).is_err());
        assert!(
            parse(&["break-glass", "db"]).is_err(),
            "--reason is required"
        );
        match parse(&["break-glass", "db", "--reason", "outage", "--for", "30m"])
            .unwrap()
            .command
        {
            Command::BreakGlass(b) => {
                assert_eq!(b.reason, "outage");
                assert_eq!(b.duration, Some(Duration::from_secs(1800)));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["approve", "9", "--comment", "ok", "--json"])
                .unwrap()
                .command,
            Command::Approve {
                id: 9,
                json: true,
                ..
            }
        ));
        assert!(matches!(
            parse(&["leases", "--all"]).unwrap().command,
            Command::Leases {
                all: true,
                json: false
            }
        ));
    }
}
