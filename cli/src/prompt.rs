//! Step-up authentication prompts from the daemon, answered on the controlling terminal
//! (/dev/tty, never stdin: the command's input may be a pipe). Secrets are read with echo
//! off, and the terminal is restored on every path, Ctrl-C included.

use crate::output::errln;
use crate::sys;
use elevate_proto::{PromptStyle, MAX_PROMPT_REPLY};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

/// Why no answer was given.
pub enum NoAnswer {
    /// No terminal, end of input, or the reply is too long: the daemon counts it a failure.
    Unanswerable,
    /// A signal (Ctrl-C) arrived while the user was being asked.
    Interrupted(libc::c_int),
}

/// Answer a `Prompt` on `client`: show it, and for prompts send the `PromptReply`.
/// `Err(signal)`: interrupted, the caller abandons the request.
pub fn handle(
    client: &mut elevate_proto::Client,
    style: PromptStyle,
    text: &str,
    signals: Option<BorrowedFd<'_>>,
) -> Result<(), libc::c_int> {
    let reply = match answer(style, text, signals) {
        Ok(r) => r,
        Err(NoAnswer::Interrupted(sig)) => return Err(sig),
        Err(NoAnswer::Unanswerable) => None,
    };
    if style.wants_reply() {
        // A lost connection shows up as the next receive failing.
        let _ = client.send(&elevate_proto::Request::PromptReply { text: reply });
    }
    Ok(())
}

/// Show one prompt; for `secret`/`echo`, read the answer. `signals`: the self-pipe to watch
/// so that Ctrl-C abandons the question.
pub fn answer(
    style: PromptStyle,
    text: &str,
    signals: Option<BorrowedFd<'_>>,
) -> Result<Option<String>, NoAnswer> {
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open("/dev/tty");
    let Ok(mut tty) = tty else {
        if !style.wants_reply() {
            errln!("{}", text.trim_end());
            return Ok(None);
        }
        return Err(NoAnswer::Unanswerable);
    };
    // Control characters from PAM modules are shown as text, not interpreted by the terminal.
    let shown: String = text
        .chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect();
    if !style.wants_reply() {
        let _ = writeln!(tty, "{}", shown.trim_end());
        return Ok(None);
    }
    let echo_off = (style == PromptStyle::Secret)
        .then(|| EchoOff::new(&tty))
        .flatten();
    if style == PromptStyle::Secret && echo_off.is_none() {
        // Never read a secret with echo on.
        return Err(NoAnswer::Unanswerable);
    }
    // Echo goes off (discarding typeahead) before the prompt is shown, so that nothing
    // typed after seeing it is lost or echoed.
    let _ = write!(tty, "{shown}");
    let _ = tty.flush();
    let line = read_line(&mut tty, signals);
    if echo_off.is_some() {
        let _ = writeln!(tty);
    }
    drop(echo_off);
    line.map(Some)
}

fn read_line(tty: &mut File, signals: Option<BorrowedFd<'_>>) -> Result<String, NoAnswer> {
    let mut buf = Vec::with_capacity(64);
    loop {
        let mut fds = vec![tty.as_fd()];
        fds.extend(signals);
        let ready = sys::poll_readable(&fds, -1).map_err(|_| NoAnswer::Unanswerable)?;
        if ready.get(1).copied().unwrap_or(false) {
            if let Some(sig) = signals
                .map(sys::read_signals)
                .and_then(|s| s.into_iter().next())
            {
                return Err(NoAnswer::Interrupted(sig));
            }
        }
        if !ready[0] {
            continue;
        }
        let mut b = [0u8; 1];
        match tty.read(&mut b) {
            Ok(0) => return Err(NoAnswer::Unanswerable),
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => {
                if buf.len() >= MAX_PROMPT_REPLY {
                    return Err(NoAnswer::Unanswerable);
                }
                buf.push(b[0]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(NoAnswer::Unanswerable),
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| NoAnswer::Unanswerable)
}

/// Echo off on the terminal until dropped.
struct EchoOff {
    fd: i32,
    saved: libc::termios,
}

impl EchoOff {
    fn new(tty: &File) -> Option<EchoOff> {
        let fd = tty.as_raw_fd();
        let saved = sys::tcgetattr(fd)?;
        let mut t = saved;
        t.c_lflag &= !(libc::ECHO | libc::ECHONL);
        sys::tcsetattr(fd, libc::TCSAFLUSH, &t).then_some(EchoOff { fd, saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        sys::tcsetattr(self.fd, libc::TCSADRAIN, &self.saved);
    }
}
