//! `elevate-loadgen`: how many decisions per second can `elevated` make, and how long does each
//! one take, with many clients at once?
//!
//! N threads each open ONE connection to the daemon and send `check` requests back to back
//! (the daemon decides exactly as for `run` but executes nothing and writes no audit). After a
//! warm-up, every request's latency is recorded for a fixed duration. Anything but
//! `Checked { allowed: true }` is an error and is reported: a denial or a rate-limit answer
//! means the benchmark is set up wrong, not that the daemon is fast.
//!
//! Exit status: 0 measured without errors, 1 measured but some requests failed, 2 could not
//! measure (usage error, daemon unreachable, or the very first request was not allowed).

mod stats;

use elevate_proto::{Checked, Client, ClientError, ErrorReply, Request, Response, RunRequest};
use stats::{Errors, Latency};
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: elevate-loadgen [OPTIONS] [-- CMD [ARG...]]

Sends `check` requests for CMD (default /usr/bin/true) to elevated from many concurrent
connections and reports decisions/s and latency percentiles.

options:
  -s, --socket PATH      daemon socket (default: $ELEVATE_SOCKET, else /run/elevate/elevated.sock)
  -c, --clients N        concurrent clients, one connection each (default 64)
  -d, --duration SECS    measured duration (default 5)
  -w, --warmup SECS      warm-up before measuring (default 1)
  -t, --timeout-ms MS    per-request read/write timeout (default 10000)
      --json             print one JSON object instead of the table
  -h, --help             this help

exit status: 0 measured, no errors; 1 measured, some requests failed; 2 could not measure";

#[derive(Debug, Clone, PartialEq)]
struct Options {
    socket: PathBuf,
    clients: usize,
    duration: Duration,
    warmup: Duration,
    timeout: Duration,
    json: bool,
    argv: Vec<String>,
}

enum Parsed {
    Run(Options),
    Help,
}

/// A command line that cannot be used. `Display` is the line printed above the usage.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UsageError {
    /// A flag came last, without its value.
    NeedsValue(String),
    /// `flag: expected WHAT, got VALUE`.
    Expected {
        flag: String,
        what: &'static str,
        got: String,
    },
    ZeroDuration(String),
    NoCommand,
    Unknown(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::NeedsValue(flag) => write!(f, "{flag} needs a value"),
            UsageError::Expected { flag, what, got } => {
                write!(f, "{flag}: expected {what}, got {got:?}")
            }
            UsageError::ZeroDuration(flag) => write!(f, "{flag} must be more than 0"),
            UsageError::NoCommand => f.write_str("-- must be followed by a command"),
            UsageError::Unknown(arg) => write!(f, "unknown argument {arg:?}"),
        }
    }
}

fn expected(flag: &str, what: &'static str, got: &str) -> UsageError {
    UsageError::Expected {
        flag: flag.to_string(),
        what,
        got: got.to_string(),
    }
}

fn parse_secs(flag: &str, v: &str) -> Result<Duration, UsageError> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(expected(flag, "seconds", v)),
    }
}

fn parse_args(args: &[String], env_socket: Option<String>) -> Result<Parsed, UsageError> {
    let mut o = Options {
        socket: PathBuf::from(
            env_socket.unwrap_or_else(|| elevate_proto::DEFAULT_SOCKET.to_string()),
        ),
        clients: 64,
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        timeout: Duration::from_secs(10),
        json: false,
        argv: vec!["/usr/bin/true".to_string()],
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || -> Result<String, UsageError> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| UsageError::NeedsValue(flag.to_string()))
        };
        match flag {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--json" => o.json = true,
            "-s" | "--socket" => o.socket = PathBuf::from(value()?),
            "-c" | "--clients" => {
                let v = value()?;
                o.clients = match v.parse::<usize>() {
                    Ok(n) if (1..=4096).contains(&n) => n,
                    _ => return Err(expected(flag, "1..4096", &v)),
                };
            }
            "-d" | "--duration" => {
                o.duration = parse_secs(flag, &value()?)?;
                if o.duration.is_zero() {
                    return Err(UsageError::ZeroDuration(flag.to_string()));
                }
            }
            "-w" | "--warmup" => o.warmup = parse_secs(flag, &value()?)?,
            "-t" | "--timeout-ms" => {
                let v = value()?;
                o.timeout = match v.parse::<u64>() {
                    Ok(ms) if ms > 0 => Duration::from_millis(ms),
                    _ => return Err(expected(flag, "milliseconds > 0", &v)),
                };
            }
            "--" => {
                let rest: Vec<String> = it.by_ref().cloned().collect();
                if rest.is_empty() {
                    return Err(UsageError::NoCommand);
                }
                o.argv = rest;
            }
            other => return Err(UsageError::Unknown(other.to_string())),
        }
    }
    Ok(Parsed::Run(o))
}

/// A request that did not end in a decision made. `Display` is the message errors are
/// counted by.
#[derive(Debug)]
enum Failure {
    /// Not allowed, for this reason (if the daemon gave one).
    Denied(Option<String>),
    /// The daemon answered with an error.
    Refused(ErrorReply),
    /// An answer that is not an answer to `check`.
    Unexpected(Box<Response>),
    /// No answer: the connection is unusable and the caller reconnects.
    Connection(ClientError),
}

impl Failure {
    fn broke_connection(&self) -> bool {
        matches!(self, Failure::Connection(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Denied(reason) => write!(
                f,
                "denied: {}",
                reason.as_deref().unwrap_or("(no reason given)")
            ),
            Failure::Refused(e) => write!(f, "error {:?}: {}", e.kind, e.message),
            Failure::Unexpected(other) => write!(f, "unexpected answer: {other:?}"),
            Failure::Connection(e) => write!(f, "{e}"),
        }
    }
}

/// `Ok` only for the one answer that counts as a decision made: allowed.
fn judge(r: Result<Response, ClientError>) -> Result<(), Failure> {
    match r {
        Ok(Response::Checked(Checked { allowed: true, .. })) => Ok(()),
        Ok(Response::Checked(c)) => Err(Failure::Denied(c.reason)),
        Ok(Response::Error(e)) => Err(Failure::Refused(e)),
        Ok(other) => Err(Failure::Unexpected(Box::new(other))),
        Err(e) => Err(Failure::Connection(e)),
    }
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

struct ThreadResult {
    samples: Vec<u64>,
    errors: Errors,
    /// Errors while measuring (a subset of `errors`).
    measured_errors: u64,
}

fn client_thread(o: &Options, req: &Request, phase: &AtomicU8, start: &Barrier) -> ThreadResult {
    let mut res = ThreadResult {
        samples: Vec::with_capacity(1 << 16),
        errors: Errors::default(),
        measured_errors: 0,
    };
    let mut client = match Client::connect(&o.socket, o.timeout) {
        Ok(c) => Some(c),
        Err(e) => {
            res.errors.add(e.to_string());
            None
        }
    };
    start.wait();
    loop {
        let p = phase.load(Ordering::Acquire);
        if p == STOP {
            break;
        }
        let Some(c) = client.as_mut() else {
            // Lost the connection: try again, but do not spin against a daemon that refuses.
            std::thread::sleep(Duration::from_millis(10));
            match Client::connect(&o.socket, o.timeout) {
                Ok(c) => client = Some(c),
                Err(e) => {
                    res.errors.add(e.to_string());
                    res.measured_errors += u64::from(p == MEASURE);
                }
            }
            continue;
        };
        let t0 = Instant::now();
        let r = c.call(req);
        let dt = t0.elapsed();
        match judge(r) {
            Ok(()) => {
                if p == MEASURE {
                    res.samples.push(stats::nanos(dt));
                }
            }
            Err(failure) => {
                res.errors.add(failure.to_string());
                res.measured_errors += u64::from(p == MEASURE);
                if failure.broke_connection() {
                    client = None;
                }
            }
        }
    }
    res
}

struct Report {
    requests: u64,
    elapsed: Duration,
    latency: Latency,
    errors: Errors,
    measured_errors: u64,
}

impl Report {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

fn run(o: &Options) -> Report {
    let req = Arc::new(Request::Check(RunRequest {
        argv: o.argv.clone(),
        ..Default::default()
    }));
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let start = Arc::new(Barrier::new(o.clients + 1));
    let opts = Arc::new(o.clone());
    let handles: Vec<_> = (0..o.clients)
        .map(|i| {
            let (req, phase, start, opts) =
                (req.clone(), phase.clone(), start.clone(), opts.clone());
            std::thread::Builder::new()
                .name(format!("client-{i}"))
                .stack_size(256 * 1024)
                .spawn(move || client_thread(&opts, &req, &phase, &start))
                .expect("spawn client thread")
        })
        .collect();
    start.wait();
    std::thread::sleep(o.warmup);
    let t_start = Instant::now();
    phase.store(MEASURE, Ordering::Release);
    std::thread::sleep(o.duration);
    phase.store(STOP, Ordering::Release);
    let elapsed = t_start.elapsed();

    let mut samples = Vec::new();
    let mut errors = Errors::default();
    let mut measured_errors = 0;
    for h in handles {
        let r = h.join().expect("client thread panicked");
        samples.extend_from_slice(&r.samples);
        errors.merge(r.errors);
        measured_errors += r.measured_errors;
    }
    Report {
        requests: samples.len() as u64,
        elapsed,
        latency: stats::summarise(&mut samples),
        errors,
        measured_errors,
    }
}

fn to_json(o: &Options, r: &Report) -> serde_json::Value {
    let errors: Vec<serde_json::Value> = r
        .errors
        .top(10)
        .into_iter()
        .map(|(m, n)| serde_json::json!({"message": m, "count": n}))
        .collect();
    serde_json::json!({
        "socket": o.socket.display().to_string(),
        "argv": o.argv,
        "clients": o.clients,
        "warmup_s": o.warmup.as_secs_f64(),
        "duration_s": r.elapsed.as_secs_f64(),
        "requests": r.requests,
        "throughput_per_s": (r.throughput() * 10.0).round() / 10.0,
        "latency_us": {
            "p50": r.latency.p50,
            "p90": r.latency.p90,
            "p99": r.latency.p99,
            "max": r.latency.max,
            "mean": r.latency.mean,
        },
        "errors": r.errors.total,
        "errors_while_measuring": r.measured_errors,
        "error_messages": errors,
    })
}

fn print_table(o: &Options, r: &Report) {
    println!(
        "elevate-loadgen: {} clients x 1 connection, check {:?}, {:.1} s warm-up, socket {}",
        o.clients,
        o.argv,
        o.warmup.as_secs_f64(),
        o.socket.display()
    );
    println!(
        "  decisions      {} in {:.2} s",
        r.requests,
        r.elapsed.as_secs_f64()
    );
    println!("  throughput     {:.0} decisions/s", r.throughput());
    let l = &r.latency;
    println!(
        "  latency (us)   p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}  mean {:.1}",
        l.p50, l.p90, l.p99, l.max, l.mean
    );
    println!(
        "  errors         {} ({} while measuring)",
        r.errors.total, r.measured_errors
    );
    for (m, n) in r.errors.top(5) {
        println!("    {n:>8} x {m}");
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse_args(&args, std::env::var("ELEVATE_SOCKET").ok()) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("elevate-loadgen: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // One request first: if that is not allowed there is nothing to measure, and the reason
    // (no such socket, denied by policy, rate-limited) is the useful output.
    let preflight = Client::connect(&o.socket, o.timeout)
        .map_err(Failure::Connection)
        .and_then(|mut c| {
            judge(c.call(&Request::Check(RunRequest {
                argv: o.argv.clone(),
                ..Default::default()
            })))
        });
    if let Err(e) = preflight {
        eprintln!("elevate-loadgen: cannot measure: the first request failed: {e}");
        return ExitCode::from(2);
    }
    let r = run(&o);
    if o.json {
        println!("{}", to_json(&o, &r));
    } else {
        print_table(&o, &r);
    }
    if r.requests == 0 {
        eprintln!("elevate-loadgen: no request succeeded while measuring");
        return ExitCode::from(2);
    }
    if r.errors.total > 0 {
        eprintln!(
            "elevate-loadgen: {} requests failed (first: {})",
            r.errors.total,
            r.errors.top(1).first().map_or("", |e| e.0)
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_proto::ErrorKind;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    fn opts(s: &[&str]) -> Options {
        match parse_args(&args(s), None) {
            Ok(Parsed::Run(o)) => o,
            Ok(Parsed::Help) => panic!("help"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults() {
        let o = opts(&[]);
        assert_eq!(o.clients, 64);
        assert_eq!(o.duration, Duration::from_secs(5));
        assert_eq!(o.argv, vec!["/usr/bin/true"]);
        assert_eq!(o.socket, PathBuf::from(elevate_proto::DEFAULT_SOCKET));
        assert!(!o.json);
        let Ok(Parsed::Run(o)) = parse_args(&[], Some("/tmp/s".into())) else {
            panic!()
        };
        assert_eq!(o.socket, PathBuf::from("/tmp/s"));
    }

    #[test]
    fn flags_and_command() {
        let o = opts(&[
            "-c",
            "8",
            "--duration=0.5",
            "-w",
            "0",
            "--socket",
            "/x",
            "--json",
            "--",
            "/bin/id",
            "-u",
        ]);
        assert_eq!(o.clients, 8);
        assert_eq!(o.duration, Duration::from_millis(500));
        assert_eq!(o.warmup, Duration::ZERO);
        assert_eq!(o.socket, PathBuf::from("/x"));
        assert!(o.json);
        assert_eq!(o.argv, vec!["/bin/id", "-u"]);
        assert!(matches!(
            parse_args(&args(&["--help"]), None),
            Ok(Parsed::Help)
        ));
    }

    #[test]
    fn bad_arguments_are_errors() {
        for (bad, message) in [
            (&["-c", "0"][..], r#"-c: expected 1..4096, got "0""#),
            (&["-c"], "-c needs a value"),
            (&["-d", "0"], "-d must be more than 0"),
            (&["-d", "-1"], r#"-d: expected seconds, got "-1""#),
            (&["-d", "nan"], r#"-d: expected seconds, got "nan""#),
            (&["--bogus"], r#"unknown argument "--bogus""#),
            (&["--"], "-- must be followed by a command"),
            (&["-t", "0"], r#"-t: expected milliseconds > 0, got "0""#),
        ] {
            match parse_args(&args(bad), None) {
                Err(e) => assert_eq!(e.to_string(), message, "{bad:?}"),
                Ok(_) => panic!("{bad:?} accepted"),
            }
        }
    }

    #[test]
    fn only_allowed_checks_count() {
        let allowed = Checked {
            allowed: true,
            profile: None,
            run_as: None,
            path: None,
            reason: None,
            hint: None,
        };
        let judge = |r| judge(r).map_err(|f| (f.to_string(), f.broke_connection()));
        assert!(judge(Ok(Response::Checked(allowed.clone()))).is_ok());
        let denied = Checked {
            allowed: false,
            reason: Some("no rule".into()),
            ..allowed
        };
        assert_eq!(
            judge(Ok(Response::Checked(denied))),
            Err(("denied: no rule".into(), false))
        );
        let limited = Response::Error(ErrorReply {
            kind: ErrorKind::RateLimited,
            message: "slow down".into(),
        });
        assert_eq!(
            judge(Ok(limited)),
            Err(("error RateLimited: slow down".into(), false))
        );
        let broken = judge(Err(elevate_proto::ClientError::Protocol(
            elevate_proto::frame::FrameError::Closed,
        )));
        assert!(matches!(broken, Err((_, true))));
    }
}
