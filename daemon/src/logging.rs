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
    // Colour only for a person at a terminal, never into a log file or the journal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stderr = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(move || Escaped { ansi });
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

/// stderr, with whatever a caller typed into a line (argv, a reason) escaped, as syslog's
/// lines are: the journal shows it to admins. The formatter hands over one whole event per
/// write; its final newline is the only one kept. With colour (a person at a terminal, not a
/// log) the formatter's own escape sequences pass as they are.
struct Escaped {
    ansi: bool,
}

impl std::io::Write for Escaped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut err = std::io::stderr();
        if self.ansi {
            return err.write(buf);
        }
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        err.write_all(format!("{}{end}", elevate_base::text::escape(body)).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
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
        // Control characters (from argv, say) would let a caller forge syslog lines, and bidi
        // overrides reorder what an admin reads: all shown escaped.
        if let Ok(msg) = CString::new(elevate_base::text::escape(&line.0)) {
            crate::os::syslog::line(priority, &msg);
        }
    }
}
