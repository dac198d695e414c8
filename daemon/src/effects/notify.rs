//! The notify hook: `notify_command` in elevated.toml receives each lease event as one JSON
//! object on stdin (for mail, chat, ticketing). It runs detached from the state loop, at most a
//! few at a time, and is killed after a timeout: a slow or broken hook never blocks or crashes
//! the daemon, and a flood of events cannot become a flood of processes.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

const MAX_RUNNING: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(10);

fn slots() -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| Arc::new(Semaphore::new(MAX_RUNNING)))
        .clone()
}

pub fn spawn(cmd: PathBuf, payload: serde_json::Value) {
    let Ok(permit) = slots().try_acquire_owned() else {
        tracing::warn!("notify hook: {MAX_RUNNING} still running; dropping this event");
        return;
    };
    // The hook runs as root: it must be a file only root can change, reached through
    // directories only root can change — the same walk as an allowed command.
    if let Err(e) = crate::exec::check::open_checked_executable(&cmd) {
        tracing::error!("notify hook not run: {e}");
        return;
    }
    tokio::spawn(async move {
        let _permit = permit;
        let child = tokio::process::Command::new(&cmd)
            .env_clear()
            .env("PATH", elevate_proto::SECURE_PATH)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("notify hook {}: {e}", cmd.display());
                return;
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            let mut line = payload.to_string();
            line.push('\n');
            let _ = tokio::time::timeout(TIMEOUT, stdin.write_all(line.as_bytes())).await;
        }
        match tokio::time::timeout(TIMEOUT, child.wait()).await {
            Ok(Ok(st)) if !st.success() => {
                tracing::warn!("notify hook {} exited with {st}", cmd.display())
            }
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("notify hook {} timed out; killed", cmd.display());
                let _ = child.kill().await;
            }
        }
    });
}
