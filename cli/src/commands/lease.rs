//! The lease subcommands: `request`, `break-glass`, `approve`, `deny`, `revoke` (one or
//! `--all`), `extend` and `leases`. The daemon decides everything; each sends one request
//! per connection and prints the `LeaseInfo` it gets back (see [`crate::format::lease`]).

use crate::args::{BreakGlassArgs, RequestArgs};
use crate::daemon::{ask, connect, refusal};
use crate::error::Failure;
use crate::format::lease::{break_glass_notice, now_unix, summary, table};
use crate::output::{self, err, errln, out, outln, print_json};
use elevate_proto::{exit, ErrorKind, LeaseInfo, LeaseRequest, LeaseState, Request, Response};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long `revoke --all`, all told, keeps asking again while the daemon says to slow down.
/// Ending hundreds of leases, one request each, outruns any per-user rate limit — root's too,
/// and removing the package relies on every one of them ending — but a daemon that stays busy
/// must not hold package removal for longer than this (the leases left are then named).
const SLOW_DOWN_PATIENCE: Duration = Duration::from_secs(120);
/// The pause before asking again.
const SLOW_DOWN_PAUSE: Duration = Duration::from_millis(100);

/// A refusal, with a pointer to `elevate leases` when the id was not found.
fn lease_refusal(resp: Response) -> Failure {
    match refusal(resp) {
        Failure::Daemon(e) if e.kind == ErrorKind::NotFound => Failure::NoSuchLease(e),
        f => f,
    }
}

/// The lease in a `Lease` answer; any other answer is a refusal.
fn expect_lease(resp: Response) -> Result<LeaseInfo, Failure> {
    match resp {
        Response::Lease(l) => Ok(l),
        other => Err(lease_refusal(other)),
    }
}

/// The lease as JSON, or its summary.
fn show(l: &LeaseInfo, json: bool) {
    output::show(json, l, |l| summary(l, now_unix()));
}

/// `elevate request`.
pub fn request(socket: &Path, a: RequestArgs) -> Result<i32, Failure> {
    let req = LeaseRequest {
        profile: a.profile,
        duration_secs: a.duration.map(|d| d.as_secs()),
        reason: a.reason,
        ticket: a.ticket,
        bind_pid: a.bind_pid.map(elevate_base::Pid),
        break_glass: false,
    };
    let l = expect_lease(ask(socket, &Request::RequestLease(req))?)?;
    if !(a.wait && l.state == LeaseState::Pending) {
        announce(&l, a.json);
        return Ok(state_code(&l));
    }
    if !a.json {
        announce(&l, false);
    }
    errln!(
        "elevate: waiting for approval of request {} (Ctrl-C stops waiting; the request stays pending)",
        l.id
    );
    let done = wait(socket, l.id)?;
    show(&done, a.json);
    Ok(state_code(&done))
}

/// `elevate break-glass`.
pub fn break_glass(socket: &Path, a: BreakGlassArgs) -> Result<i32, Failure> {
    let req = LeaseRequest {
        profile: a.profile,
        duration_secs: a.duration.map(|d| d.as_secs()),
        reason: Some(a.reason),
        ticket: None,
        bind_pid: None,
        break_glass: true,
    };
    let l = expect_lease(ask(socket, &Request::RequestLease(req))?)?;
    announce(&l, a.json);
    output::flush();
    err!("{}", break_glass_notice(&l));
    Ok(state_code(&l))
}

/// The id alone on the first line (`id=$(elevate request ... | head -1)`), then the summary;
/// with `--json`, the `LeaseInfo` only.
fn announce(l: &LeaseInfo, json: bool) {
    if json {
        print_json(l);
    } else {
        outln!("{}", l.id);
        out!("{}", summary(l, now_unix()));
    }
    output::flush();
}

/// 0 while the lease is usable or still pending; 77 once it has been denied or has lapsed.
fn state_code(l: &LeaseInfo) -> i32 {
    if l.state == LeaseState::Ended {
        exit::DENIED
    } else {
        0
    }
}

/// Block until the request leaves `pending`, on its own connection with no read timeout.
fn wait(socket: &Path, id: u64) -> Result<LeaseInfo, Failure> {
    loop {
        let mut client = connect(socket)?;
        let lost = |source| Failure::LostWhileWaiting { id, source };
        client.send(&Request::Wait { id }).map_err(lost)?;
        let _ = client.set_read_timeout(None);
        let l = expect_lease(client.recv().map_err(lost)?)?;
        if l.state != LeaseState::Pending {
            return Ok(l);
        }
        // Answered early (say, the daemon is shutting down): ask again shortly.
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `approve`, `deny`, `revoke`, `extend`: one request, the resulting lease.
pub fn transition(socket: &Path, req: Request, json: bool) -> Result<i32, Failure> {
    let l = expect_lease(ask(socket, &req)?)?;
    show(&l, json);
    Ok(0)
}

/// `elevate revoke --all`: end every live lease the caller may see. 0 when all ended (or
/// there were none); otherwise the first refusal's code after trying every one.
pub fn revoke_all(socket: &Path, reason: Option<String>) -> Result<i32, Failure> {
    let until = Instant::now() + SLOW_DOWN_PATIENCE;
    let leases = match ask_patiently(socket, &Request::Leases { all: true }, until)? {
        Response::Leases { leases } => leases,
        // Not an admin: one's own (the list also shows requests one may approve).
        Response::Denied(_) => match ask_patiently(socket, &Request::Leases { all: false }, until)?
        {
            Response::Leases { leases } => {
                let me = elevate_base::os::process::getuid();
                leases.into_iter().filter(|l| l.uid == me).collect()
            }
            other => return Err(lease_refusal(other)),
        },
        // Anything else (the list could not be sent, say) must not pass for an empty list.
        other => return Err(lease_refusal(other)),
    };
    let mut code = 0;
    let mut ended = 0;
    for l in leases.iter().filter(|l| l.state != LeaseState::Ended) {
        let req = Request::Revoke {
            id: l.id,
            reason: reason.clone(),
        };
        match ask_patiently(socket, &req, until).and_then(expect_lease) {
            Ok(_) => ended += 1,
            Err(f) => {
                errln!("elevate: lease {}: {f}", l.id);
                if code == 0 {
                    code = f.code();
                }
            }
        }
    }
    outln!("{ended} leases and requests ended");
    Ok(code)
}

/// [`ask`], asked again while the daemon answers that it is rate-limiting this user or busy,
/// until `deadline` (the whole command's [`SLOW_DOWN_PATIENCE`]).
fn ask_patiently(socket: &Path, req: &Request, deadline: Instant) -> Result<Response, Failure> {
    loop {
        let resp = ask(socket, req)?;
        match &resp {
            Response::Error(e)
                if matches!(e.kind, ErrorKind::RateLimited | ErrorKind::Busy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(SLOW_DOWN_PAUSE)
            }
            _ => return Ok(resp),
        }
    }
}

/// `elevate leases`.
pub fn leases(socket: &Path, all: bool, json: bool) -> Result<i32, Failure> {
    match ask(socket, &Request::Leases { all })? {
        Response::Leases { leases } => {
            if json {
                print_json(&serde_json::json!({ "leases": leases }));
            } else {
                out!("{}", table(&leases, now_unix()));
            }
            Ok(0)
        }
        other => Err(lease_refusal(other)),
    }
}
