//! The daemon itself: `elevate status` shows its health, `elevate reload` makes it re-read
//! the policy.

use crate::daemon::{call, refusal};
use crate::error::Failure;
use crate::format::status::format_status;
use crate::output::{errln, outln, print_json, show};
use elevate_proto::{Request, Response};
use std::path::Path;

/// `elevate status`.
pub fn status(socket: &Path, json: bool) -> Result<i32, Failure> {
    match call(socket, &Request::Status {})? {
        Response::Status(s) => {
            show(json, &s, format_status);
            Ok(0)
        }
        other => Err(refusal(other)),
    }
}

/// `elevate reload`: 0 when the new policy is in force, 1 when it was rejected (the previous
/// one stays), with the daemon's diagnostics either way.
pub fn reload(socket: &Path, json: bool) -> Result<i32, Failure> {
    match call(socket, &Request::Reload {})? {
        Response::Reloaded(r) => {
            if json {
                print_json(&r);
            } else {
                // Each line already reads `file:line:col: error|warning: …`.
                for line in r.warnings.iter().chain(&r.errors) {
                    errln!("{line}");
                }
                if r.ok {
                    outln!("policy reloaded ({} warnings)", r.warnings.len());
                } else {
                    outln!(
                        "policy NOT reloaded: {} errors; the previous policy stays in force",
                        r.errors.len()
                    );
                }
            }
            Ok(if r.ok { 0 } else { 1 })
        }
        other => Err(refusal(other)),
    }
}
