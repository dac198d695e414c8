//! Where the daemon's log lines go: stderr always (journald captures it under systemd), and
//! syslog(3) with facility LOG_AUTHPRIV when a syslog socket exists, so hosts with rsyslog and
//! no journald still see every decision next to sshd's and sudo's.

use std::ffi::CString;
use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

pub fn init() {
    let stderr = tracing_subscriber::fmt::layer()
        .with_target(false)
        // Colour only for a person at a terminal, never into a log file or the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let syslog = std::path::Path::new("/dev/log").exists().then(Syslog::open);
    // The daemon's own lines from INFO up; the D-Bus library only when something is wrong
    // (its INFO and below narrate every message on the bus).
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(Level::INFO)
        .with_target("zbus", Level::WARN)
        .with_target("zvariant", Level::WARN);
    tracing_subscriber::registry()
        .with(stderr)
        .with(syslog)
        .with(filter)
        .init();
}

struct Syslog;

impl Syslog {
    fn open() -> Syslog {
        crate::os::syslog::open();
        Syslog
    }
}

/// Collects an event's message and fields into one line.
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Syslog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let priority = match *event.metadata().level() {
            Level::ERROR if event.metadata().target() == "alert" => libc::LOG_ALERT,
            Level::ERROR => libc::LOG_ERR,
            Level::WARN => libc::LOG_WARNING,
            Level::INFO => libc::LOG_INFO,
            Level::DEBUG | Level::TRACE => return,
        };
        let mut line = Line(String::new());
        event.record(&mut line);
        // Control characters (from argv, say) would let a caller forge syslog lines.
        let clean: String = line
            .0
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        if let Ok(msg) = CString::new(clean) {
            crate::os::syslog::line(priority, &msg);
        }
    }
}
