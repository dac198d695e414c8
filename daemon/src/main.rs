//! `elevated`: the root daemon and the only authority in elevate. See the README's security
//! model: identity from the kernel, policy from root-owned files, every decision audited.

mod api;
mod core;
mod effects;
mod exec;
mod lease;
mod logging;
mod login;
mod os;
mod peer;
mod server;
mod settings;
mod systemd;

use clap::Parser;
use settings::{Flags, Settings};
use std::process::ExitCode;

fn main() -> ExitCode {
    let flags = Flags::parse();
    logging::init();
    let settings = match Settings::resolve(&flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("elevated: {e}");
            return ExitCode::from(78); // EX_CONFIG
        }
    };
    if flags.check {
        return server::check(&settings);
    }
    if !elevate_base::os::process::geteuid().is_root() {
        eprintln!(
            "elevated: must run as root (it sets the user and groups of the commands it runs)"
        );
        return ExitCode::from(77);
    }
    os::ensure_stdio_open();
    // Before any thread exists: this also clears the activation variables.
    let activated = match systemd::activated_listener() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("elevated: {e}");
            return ExitCode::from(78);
        }
    };
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("elevated: cannot start the runtime: {e}");
            return ExitCode::from(71);
        }
    };
    match runtime.block_on(server::run(settings, activated)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("elevated: {e}");
            ExitCode::from(71) // EX_OSERR
        }
    }
}
