//! `elevate list`: what may I run here? With `-- CMD [ARG...]`: would this be allowed?

use crate::args::ListArgs;
use crate::argv::request_argv;
use crate::daemon::{call, refusal};
use crate::error::Failure;
use crate::format::profiles::format_list;
use crate::output::{outln, print_json, show};
use elevate_proto::{exit, Request, Response, RunRequest};
use std::path::Path;

/// `elevate list`.
pub fn list(socket: &Path, args: ListArgs) -> Result<i32, Failure> {
    if !args.command.is_empty() {
        return check(socket, args);
    }
    match call(socket, &Request::List {})? {
        Response::List(mut reply) => {
            if let Some(p) = &args.profile {
                reply.profiles.retain(|x| &x.name == p);
            }
            show(args.json, &reply, format_list);
            Ok(0)
        }
        other => Err(refusal(other)),
    }
}

/// `elevate list -- CMD [ARG...]`: 0 when allowed; 77 when not, with the reason (or, with
/// `--json`, the verdict on stdout only).
fn check(socket: &Path, args: ListArgs) -> Result<i32, Failure> {
    let argv = request_argv(&args.command)?;
    let req = Request::Check(RunRequest {
        argv,
        profile: args.profile,
        run_as: args.user,
        env: vec![],
    });
    match call(socket, &req)? {
        Response::Checked(c) => {
            if args.json {
                print_json(&c);
            }
            if c.allowed {
                if !args.json {
                    outln!(
                        "allowed: {} as {} (profile {})",
                        c.path.unwrap_or_default(),
                        c.run_as.unwrap_or_default(),
                        c.profile.unwrap_or_default()
                    );
                }
                Ok(0)
            } else if args.json {
                Ok(exit::DENIED)
            } else {
                Err(Failure::Denied {
                    reason: c.reason.unwrap_or_else(|| "not allowed".into()),
                    hint: c.hint,
                })
            }
        }
        other => Err(refusal(other)),
    }
}
