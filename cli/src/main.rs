//! `elevate`, the client. Never setuid: it asks elevated, which decides and runs.
//!
//! `main` parses the command line ([`args`]) and hands it to [`commands::dispatch`]; a
//! [`error::Failure`] comes back as `elevate: MESSAGE` on stderr and its exit code.

mod args;
mod argv;
mod commands;
mod daemon;
mod error;
mod format;
mod output;
mod path_search;
mod prompt;
mod sys;

use clap::Parser;
use output::errln;
use std::process::ExitCode;

fn main() -> ExitCode {
    sys::ensure_stdio_open();
    let cli = args::Cli::parse_from(args::expand_shorthand(std::env::args_os().collect()));
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(f) => {
            errln!("elevate: {f}");
            f.code()
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
