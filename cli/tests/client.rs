//! The client side of the wire contract, against a scripted fake daemon on a private socket:
//! what `elevate run` sends (argv, env, four fds), how it maps every answer to an exit code
//! and message, and how it relays signals (Ctrl-Z included). The real daemon is exercised
//! end to end by tests/e2e.

mod common;

use common::{Out, TempDir, BIN};
use elevate_proto::frame::{self, FrameBuf};
use elevate_proto::{
    fdpass, Checked, Denial, ErrorKind, ErrorReply, ExitStatus, ListReply, ListedProfile,
    ReloadReport, Request, Response, Started, StatusReply,
};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

/// One scripted daemon connection.
struct Conn {
    stream: UnixStream,
    inbox: FrameBuf,
}

impl Conn {
    /// The first request, with the descriptors that came with it.
    fn recv_with_fds(&mut self) -> (Request, Vec<OwnedFd>) {
        let mut fds = Vec::new();
        loop {
            if let Some(p) = self.inbox.next_message().unwrap() {
                return (frame::decode(&p).unwrap(), fds);
            }
            let mut buf = [0u8; 65536];
            let n = fdpass::recv_with_fds(self.stream.as_fd(), &mut buf, &mut fds).unwrap();
            assert!(n > 0, "client closed the connection before a request");
            self.inbox.push(&buf[..n]);
        }
    }

    fn recv(&mut self) -> Request {
        loop {
            if let Some(p) = self.inbox.next_message().unwrap() {
                return frame::decode(&p).unwrap();
            }
            let mut buf = [0u8; 4096];
            let n = self.stream.read(&mut buf).unwrap();
            assert!(n > 0, "client closed the connection");
            self.inbox.push(&buf[..n]);
        }
    }

    fn send(&mut self, r: &Response) {
        self.stream
            .write_all(&frame::encode_reply(r).unwrap())
            .unwrap();
    }
}

struct Fake {
    dir: TempDir,
    sock: PathBuf,
    listener: UnixListener,
}

impl Fake {
    fn new(tag: &str) -> Fake {
        let dir = TempDir::new(tag);
        let sock = dir.join("elevated.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        listener.set_nonblocking(true).unwrap();
        Fake {
            dir,
            sock,
            listener,
        }
    }

    /// Start `elevate --socket S --config none ARGS` (stdin /dev/null, stdout/stderr piped).
    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--socket")
            .arg(&self.sock)
            .arg("--config")
            .arg(self.dir.no_config())
            .args(args)
            .env_remove("ELEVATE_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn accept(&self, child: &mut Child) -> Conn {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                    return Conn {
                        stream,
                        inbox: FrameBuf::default(),
                    };
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Some(st) = child.try_wait().unwrap() {
                        panic!(
                            "client exited ({st}) without connecting: {}",
                            finish(child).all()
                        );
                    }
                    assert!(Instant::now() < deadline, "client never connected");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

/// Wait (bounded) for the client to exit and collect its output.
fn finish(child: &mut Child) -> Out {
    // Read with a deadline: a descriptor of the client's pipes still open here (one the fake
    // received) would otherwise make the read wait forever. Reading starts before the wait: a
    // client printing more than a pipe holds would never exit otherwise.
    let read = |r: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            let _ = tx.send(s);
        });
        rx
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("client did not exit");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: stdout.recv_timeout(TIMEOUT).expect("stdout not closed"),
        stderr: stderr.recv_timeout(TIMEOUT).expect("stderr not closed"),
    }
}

fn started() -> Response {
    Response::Started(Started {
        pid: elevate_base::Pid(4242),
        profile: "basic".into(),
        run_as: "root".into(),
        path: "/usr/bin/id".into(),
    })
}

fn exited(code: i32) -> Response {
    Response::Exited(ExitStatus::Code { code })
}

fn run_request(req: Request) -> elevate_proto::RunRequest {
    match req {
        Request::Run(r) => r,
        other => panic!("expected run, got {other:?}"),
    }
}

/// The bit for `sig` in a /proc/PID/status signal mask line.
fn proc_mask(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

/// Wait until the client catches `sig` (its relay handlers are installed).
fn wait_until_caught(pid: u32, sig: i32) {
    let deadline = Instant::now() + TIMEOUT;
    while proc_mask(pid, "SigCgt:") & (1u64 << (sig - 1)) == 0 {
        assert!(Instant::now() < deadline, "signal {sig} never caught");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // pid (comm) S ...: the state follows the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .unwrap_or('?')
}

fn wait_for_state(pid: u32, want: char) {
    let deadline = Instant::now() + TIMEOUT;
    while proc_state(pid) != want {
        assert!(
            Instant::now() < deadline,
            "state {} never became {want}",
            proc_state(pid)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid}");
}

fn same_file(fd: OwnedFd, path: &Path) -> bool {
    let a = std::fs::File::from(fd).metadata().unwrap();
    let b = std::fs::metadata(path).unwrap();
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

// ---------------------------------------------------------------- run: the request

#[test]
fn run_sends_argv_env_options_and_four_fds() {
    let fake = Fake::new("run-request");
    let cwd = fake.dir.join("work");
    std::fs::create_dir(&cwd).unwrap();
    let mut cmd = fake.command(&["-u", "svc", "-p", "prof", "./tool", "arg one", "--x"]);
    cmd.current_dir(&cwd).env("ELEVATE_TEST_VAR", "kept?");
    let mut child = cmd.spawn().unwrap();
    let mut conn = fake.accept(&mut child);
    let (req, fds) = conn.recv_with_fds();
    let r = run_request(req);
    let abs = format!("{}/./tool", cwd.display());
    assert_eq!(r.argv, vec![abs.as_str(), "arg one", "--x"]);
    assert_eq!(r.run_as.as_deref(), Some("svc"));
    assert_eq!(r.profile.as_deref(), Some("prof"));
    assert!(r
        .env
        .contains(&("ELEVATE_TEST_VAR".to_string(), "kept?".to_string())));
    assert_eq!(fds.len(), 4, "stdin, stdout, stderr, cwd");
    let mut fds = fds.into_iter();
    let stdin = fds.next().unwrap();
    let stdout = fds.next().unwrap();
    drop(fds.next()); // stderr
    let dirfd = fds.next().unwrap();
    assert!(same_file(stdin, Path::new("/dev/null")));
    assert!(same_file(dirfd, &cwd), "fd 4 is the caller's cwd");
    // What the daemon's command writes on fd 1 reaches the caller's stdout.
    std::fs::File::from(stdout)
        .write_all(b"written-by-the-command\n")
        .unwrap();
    conn.send(&started());
    conn.send(&exited(42));
    let out = finish(&mut child);
    assert_eq!(out.code, 42, "{}", out.all());
    assert_eq!(out.stdout, "written-by-the-command\n", "{}", out.all());
    assert_eq!(out.stderr, "", "{}", out.all());
}

#[test]
fn run_sends_bare_and_absolute_names_as_given() {
    for (args, want0) in [
        (&["id", "-u"][..], "id"),
        (&["run", "--", "/usr/bin/id"][..], "/usr/bin/id"),
        (&["--", "list"][..], "list"),
    ] {
        let fake = Fake::new("run-bare");
        let mut child = fake.spawn(args);
        let mut conn = fake.accept(&mut child);
        let r = run_request(conn.recv_with_fds().0);
        assert_eq!(r.argv[0], want0);
        assert_eq!(r.run_as, None);
        assert_eq!(r.profile, None);
        conn.send(&started());
        conn.send(&Response::Exited(ExitStatus::Signal { signal: 15 }));
        let out = finish(&mut child);
        assert_eq!(out.code, 143, "killed by SIGTERM: 128+15\n{}", out.all());
    }
}

#[test]
fn closed_stdio_is_replaced_by_dev_null() {
    // With stdin and stdout closed, the cwd fd must not take their numbers: the daemon
    // receives /dev/null for them and a directory as the fourth fd.
    let fake = Fake::new("run-closed");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$0" "$@" <&- >&-"#)
        .arg(BIN)
        .arg("--socket")
        .arg(&fake.sock)
        .arg("--config")
        .arg(fake.dir.no_config())
        .args(["run", "--", "id"])
        .current_dir(fake.dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut conn = fake.accept(&mut child);
    let (_, fds) = conn.recv_with_fds();
    assert_eq!(fds.len(), 4);
    let mut fds = fds.into_iter();
    assert!(same_file(fds.next().unwrap(), Path::new("/dev/null")));
    assert!(same_file(fds.next().unwrap(), Path::new("/dev/null")));
    drop(fds.next()); // stderr
    let dir = std::fs::File::from(fds.next().unwrap()).metadata().unwrap();
    assert!(dir.is_dir());
    conn.send(&started());
    conn.send(&exited(0));
    let out = finish(&mut child);
    assert_eq!(out.code, 0, "{}", out.all());
}

// ---------------------------------------------------------------- run: the answers

#[test]
fn run_denied_is_77_with_reason_and_hint() {
    let fake = Fake::new("run-denied");
    let mut child = fake.spawn(&["uptime"]);
    let mut conn = fake.accept(&mut child);
    conn.recv_with_fds();
    conn.send(&Response::Denied(Denial {
        reason: "no policy profile applies to you on this host".into(),
        hint: Some("see what you may run: elevate list".into()),
    }));
    let out = finish(&mut child);
    assert_eq!(out.code, 77, "{}", out.all());
    assert_eq!(
        out.stderr,
        "elevate: denied: no policy profile applies to you on this host\n\
         elevate: see what you may run: elevate list\n",
        "{}",
        out.all()
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn run_errors_map_to_stable_exit_codes() {
    for (kind, code) in [
        (ErrorKind::AuditFailed, 70),
        (ErrorKind::Internal, 70),
        (ErrorKind::SpawnFailed, 126),
        (ErrorKind::RateLimited, 75),
        (ErrorKind::Busy, 75),
        (ErrorKind::BadRequest, 2),
    ] {
        let fake = Fake::new("run-error");
        let mut child = fake.spawn(&["id"]);
        let mut conn = fake.accept(&mut child);
        conn.recv_with_fds();
        conn.send(&Response::Error(ErrorReply {
            kind,
            message: format!("something about {kind:?}"),
        }));
        let out = finish(&mut child);
        assert_eq!(out.code, code, "{kind:?}\n{}", out.all());
        assert_eq!(
            out.stderr,
            format!("elevate: something about {kind:?}\n"),
            "{}",
            out.all()
        );
    }
}

#[test]
fn spawn_failure_after_started_is_126() {
    let fake = Fake::new("run-error-late");
    let mut child = fake.spawn(&["id"]);
    let mut conn = fake.accept(&mut child);
    conn.recv_with_fds();
    conn.send(&started());
    conn.send(&Response::Error(ErrorReply {
        kind: ErrorKind::SpawnFailed,
        message: "cannot execute".into(),
    }));
    let out = finish(&mut child);
    assert_eq!(out.code, 126, "{}", out.all());
}

#[test]
fn connection_lost_while_running_is_70() {
    let fake = Fake::new("run-lost");
    let mut child = fake.spawn(&["sleep", "100"]);
    let mut conn = fake.accept(&mut child);
    conn.recv_with_fds();
    conn.send(&started());
    drop(conn);
    let out = finish(&mut child);
    assert_eq!(out.code, 70, "{}", out.all());
    assert!(
        out.stderr.contains("lost the connection to elevated"),
        "{}",
        out.all()
    );
}

#[test]
fn connection_closed_before_an_answer_is_70() {
    let fake = Fake::new("run-closed-early");
    let mut child = fake.spawn(&["id"]);
    let mut conn = fake.accept(&mut child);
    conn.recv_with_fds();
    drop(conn);
    let out = finish(&mut child);
    assert_eq!(out.code, 70, "{}", out.all());
    assert!(out.stderr.starts_with("elevate: "), "{}", out.all());
}

// ---------------------------------------------------------------- run: signals

#[test]
fn signals_are_relayed_while_the_command_runs() {
    let fake = Fake::new("run-signals");
    let mut child = fake.spawn(&["sleep", "100"]);
    let pid = child.id();
    let mut conn = fake.accept(&mut child);
    conn.recv_with_fds();
    conn.send(&started());
    wait_until_caught(pid, libc::SIGINT);
    for (name, num) in [
        ("USR1", libc::SIGUSR1),
        ("INT", libc::SIGINT),
        ("TERM", libc::SIGTERM),
        ("HUP", libc::SIGHUP),
        ("QUIT", libc::SIGQUIT),
        ("USR2", libc::SIGUSR2),
        ("WINCH", libc::SIGWINCH),
        ("ALRM", libc::SIGALRM),
        ("CONT", libc::SIGCONT),
    ] {
        kill(pid, name);
        assert_eq!(conn.recv(), Request::Signal { signal: num }, "{name}");
    }
    // The client survived all of them and exits with the command's status.
    conn.send(&Response::Exited(ExitStatus::Signal {
        signal: libc::SIGINT,
    }));
    let out = finish(&mut child);
    assert_eq!(out.code, 130, "{}", out.all());
}

#[test]
fn ctrl_z_stops_command_and_client_and_fg_continues_both() {
    let fake = Fake::new("run-tstp");
    let mut child = fake.spawn(&["vi"]);
    let pid = child.id();
    let mut conn = fake.accept(&mut child);
    conn.recv_with_fds();
    conn.send(&started());
    wait_until_caught(pid, libc::SIGTSTP);
    kill(pid, "TSTP");
    assert_eq!(
        conn.recv(),
        Request::Signal {
            signal: libc::SIGTSTP
        }
    );
    wait_for_state(pid, 'T');
    kill(pid, "CONT");
    assert_eq!(
        conn.recv(),
        Request::Signal {
            signal: libc::SIGCONT
        }
    );
    conn.send(&exited(0));
    let out = finish(&mut child);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn exited_already_buffered_with_started_is_seen() {
    // Started and Exited in one write: the second is read from the client's buffer, not
    // waited for on the socket.
    let fake = Fake::new("run-buffered");
    let mut child = fake.spawn(&["true"]);
    let mut conn = fake.accept(&mut child);
    conn.recv_with_fds();
    let mut both = frame::encode(&started()).unwrap();
    both.extend(frame::encode(&exited(3)).unwrap());
    conn.stream.write_all(&both).unwrap();
    let out = finish(&mut child);
    assert_eq!(out.code, 3, "{}", out.all());
}

// ---------------------------------------------------------------- list, check, status

fn list_reply() -> ListReply {
    ListReply {
        user: "alice".into(),
        host: "web-1".into(),
        profiles: vec![
            ListedProfile {
                name: "web-restart".into(),
                description: "Restart the web stack".into(),
                run_as: "root".into(),
                run_as_group: None,
                access: "standing".into(),
                usable_now: true,
                commands: vec!["/usr/bin/systemctl restart {nginx.service|php-fpm.service}".into()],
                hint: None,
            },
            ListedProfile {
                name: "db-admin".into(),
                description: String::new(),
                run_as: "postgres".into(),
                run_as_group: None,
                access: "lease".into(),
                usable_now: false,
                commands: vec!["/usr/bin/psql -d {app|reporting}".into()],
                hint: Some("elevate request db-admin --for 1h --reason ...".into()),
            },
        ],
    }
}

/// Run `elevate ARGS` against a fake that expects `want` and answers `reply`.
fn ask(args: &[&str], want: Request, reply: Response) -> Out {
    let fake = Fake::new("ask");
    let mut child = fake.spawn(args);
    let mut conn = fake.accept(&mut child);
    assert_eq!(conn.recv(), want, "{args:?}");
    conn.send(&reply);
    finish(&mut child)
}

#[test]
fn list_prints_profiles_like_sudo_l() {
    let out = ask(&["list"], Request::List {}, Response::List(list_reply()));
    assert_eq!(out.code, 0, "{}", out.all());
    let s = &out.stdout;
    assert!(
        s.starts_with("User alice may run the following on web-1:\n"),
        "{s}"
    );
    assert!(
        s.contains("web-restart (standing, as root) — Restart the web stack"),
        "{s}"
    );
    assert!(
        s.contains("      /usr/bin/systemctl restart {nginx.service|php-fpm.service}\n"),
        "{s}"
    );
    assert!(
        s.contains("db-admin (lease, not active, as postgres)"),
        "{s}"
    );
    assert!(s.contains("to use it: elevate request db-admin"), "{s}");

    let out = ask(
        &["list", "-p", "db-admin", "--json"],
        Request::List {},
        Response::List(list_reply()),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let v: ListReply = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v.profiles.len(), 1);
    assert_eq!(v.profiles[0].name, "db-admin");
}

#[test]
fn list_with_a_command_checks_it() {
    let check = |argv: &[&str]| {
        Request::Check(elevate_proto::RunRequest {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            profile: None,
            run_as: Some("root".into()),
            env: vec![],
        })
    };
    let out = ask(
        &["list", "-u", "root", "--", "id", "-u"],
        check(&["id", "-u"]),
        Response::Checked(Checked {
            allowed: true,
            profile: Some("basic".into()),
            run_as: Some("root".into()),
            path: Some("/usr/bin/id".into()),
            reason: None,
            hint: None,
        }),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("/usr/bin/id as root (profile basic)"),
        "{}",
        out.all()
    );

    let denied = Response::Checked(Checked {
        allowed: false,
        profile: None,
        run_as: None,
        path: None,
        reason: Some("command not allowed".into()),
        hint: Some("see what you may run: elevate list".into()),
    });
    let out = ask(
        &["list", "-u", "root", "--", "uptime"],
        check(&["uptime"]),
        denied.clone(),
    );
    assert_eq!(out.code, 77, "{}", out.all());
    assert_eq!(
        out.stderr,
        "elevate: denied: command not allowed\nelevate: see what you may run: elevate list\n"
    );
    let out = ask(
        &["list", "--json", "-u", "root", "--", "uptime"],
        check(&["uptime"]),
        denied,
    );
    assert_eq!(out.code, 77, "{}", out.all());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["allowed"], false);
}

#[test]
fn status_summarises_the_daemon() {
    let reply = StatusReply {
        version: "0.1.0".into(),
        protocol: 1,
        pid: 321,
        host: "web-1".into(),
        uptime_secs: 90061,
        policy_dir: "/etc/elevate/policy.d".into(),
        policy_digest: "ab".repeat(32),
        policy_files: vec!["10-web.toml".into(), "20-db.toml".into()],
        profiles: 4,
        last_reload: ReloadReport {
            at: "2026-11-22T23:00:00Z".into(),
            ok: false,
            errors: vec!["/etc/elevate/policy.d/20-db.toml:7:9: error: unknown key".into()],
            warnings: vec![],
        },
        running_commands: 2,
        group_edits_pending: 0,
        group_edit_wait_ms: 0,
        group_edit_error: None,
        expiry_lag_ms: 0,
        warnings: vec!["/home is not mounted nosuid: a lease's group can be kept".into()],
    };
    let out = ask(
        &["status"],
        Request::Status {},
        Response::Status(reply.clone()),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let s = &out.stdout;
    assert!(s.contains("elevated 0.1.0"), "{s}");
    assert!(s.contains("pid 321"), "{s}");
    assert!(s.contains("up 1d01h"), "{s}");
    assert!(s.contains("4 profiles from 2 files"), "{s}");
    assert!(s.contains("FAILED"), "{s}");
    assert!(s.contains("20-db.toml:7:9: error: unknown key"), "{s}");
    assert!(s.contains("running commands: 2"), "{s}");
    assert!(
        s.contains("\nwarning: /home is not mounted nosuid: a lease's group"),
        "{s}"
    );

    let out = ask(
        &["status", "--json"],
        Request::Status {},
        Response::Status(reply.clone()),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let v: StatusReply = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v, reply);
}

#[test]
fn remote_errors_keep_their_exit_codes() {
    let out = ask(
        &["status"],
        Request::Status {},
        Response::Error(ErrorReply {
            kind: ErrorKind::RateLimited,
            message: "slow down".into(),
        }),
    );
    assert_eq!(out.code, 75, "{}", out.all());
    assert_eq!(out.stderr, "elevate: slow down\n");
}

// ---------------------------------------------------------------- run: the terminal

/// Run `script` (util-linux) to give `shell_cmd` a pseudo-terminal as its controlling tty,
/// and answer the client's run request: the "command" turns off echo and canonical mode on
/// the terminal it was given, as an editor would, and exits without restoring them.
fn with_pty(tag: &str, shell_cmd: impl Fn(&Fake) -> String) -> Option<String> {
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("skipped: no /usr/bin/script to provide a terminal");
        return None;
    }
    let fake = Fake::new(tag);
    let mut child = Command::new("/usr/bin/script")
        .args(["-qec", &shell_cmd(&fake), "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut conn = fake.accept(&mut child);
    let (_, fds) = conn.recv_with_fds();
    let tty = fds.into_iter().next().unwrap();
    conn.send(&started());
    let st = Command::new("stty")
        .args(["-echo", "-icanon"])
        .stdin(Stdio::from(tty))
        .status()
        .unwrap();
    assert!(st.success());
    conn.send(&exited(0));
    let out = finish(&mut child);
    assert_eq!(out.code, 0, "{}", out.all());
    Some(out.stdout)
}

fn client_cmd(fake: &Fake) -> String {
    format!(
        "{BIN} --socket {} --config {} run -- vi",
        fake.sock.display(),
        fake.dir.no_config().display()
    )
}

#[test]
fn terminal_modes_are_restored_after_the_command() {
    let Some(out) = with_pty("tty-fg", |f| {
        format!("{}; echo rc=$?; stty -a", client_cmd(f))
    }) else {
        return;
    };
    assert!(out.contains("rc=0"), "{out}");
    let words: Vec<&str> = out.split(|c: char| c.is_whitespace() || c == ';').collect();
    assert!(
        words.contains(&"echo") && !words.contains(&"-echo"),
        "{out}"
    );
    assert!(
        words.contains(&"icanon") && !words.contains(&"-icanon"),
        "{out}"
    );
}

#[test]
fn a_background_client_is_not_stopped_by_sigttou() {
    // `elevate CMD &` in an interactive shell: its own process group, not the terminal's
    // foreground one. Restoring terminal modes from there would stop it (SIGTTOU) forever.
    let Some(out) = with_pty("tty-bg", |f| {
        let script = f.dir.write(
            "job.sh",
            &format!(
                r#"set -m
{} &
pid=$!
while :; do
  st=$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)
  case "$st" in T|t) echo STOPPED; kill -9 $pid; break ;; Z|'') break ;; esac
  sleep 0.05
done
wait $pid; echo "rc=$?"
"#,
                client_cmd(f)
            ),
        );
        // bash: `wait` reports the status of a job its job control already reaped.
        format!("bash {}", script.display())
    }) else {
        return;
    };
    assert!(!out.contains("STOPPED"), "{out}");
    assert!(out.contains("rc=0"), "{out}");
}

// ---------------------------------------------------------------- answers of any size

/// A lease as the daemon lists it, with a reason long enough that a few hundred of them pass
/// one frame.
fn listed_lease(id: u64, state: &str) -> elevate_proto::LeaseInfo {
    serde_json::from_value(serde_json::json!({
        "id": id, "user": "alice", "uid": 1000, "profile": format!("p{}", id % 50),
        "state": state, "reason": format!("maintenance window {id} ").repeat(10),
        "duration_secs": 3600, "requested_at": "2024-05-01T12:00:00.000Z",
        "ended_at": "2024-05-01T12:30:00.000Z", "approvals_needed": 0,
    }))
    .unwrap()
}

/// 2,000 leases, the last `live` of them active and the rest ended.
fn many_leases(live: u64) -> Response {
    let leases = (1..=2000)
        .map(|id| listed_lease(id, if id > 2000 - live { "active" } else { "ended" }))
        .collect();
    Response::Leases { leases }
}

/// What `elevate ARGS` printed against a fake answering `reply`, after it exited 0.
fn printed(args: &[&str], want: Request, reply: Response) -> String {
    let out = ask(args, want, reply);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
}

#[test]
fn two_thousand_leases_are_listed_whole() {
    let reply = many_leases(2000);
    let size = serde_json::to_vec(&reply).unwrap().len();
    assert!(size > 10 * elevate_proto::MAX_FRAME, "{size} bytes");
    let all = Request::Leases { all: true };
    let table = printed(&["leases", "--all"], all.clone(), reply.clone());
    assert_eq!(table.lines().count(), 2001, "a header and a line per lease");
    let json = printed(&["leases", "--all", "--json"], all, reply);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["leases"].as_array().map(Vec::len), Some(2000));
}

#[test]
fn a_large_policy_list_and_status_are_answered_whole() {
    let mut list = list_reply();
    let profile = list.profiles[0].clone();
    list.profiles = (0..1000)
        .map(|n| ListedProfile {
            name: format!("profile-{n}"),
            ..profile.clone()
        })
        .collect();
    let json = printed(
        &["list", "--json"],
        Request::List {},
        Response::List(list.clone()),
    );
    assert_eq!(serde_json::from_str::<ListReply>(&json).unwrap(), list);

    let status = StatusReply {
        version: "0.1.0".into(),
        protocol: elevate_proto::PROTOCOL_VERSION,
        pid: 321,
        host: "web-1".into(),
        uptime_secs: 1,
        policy_dir: "/etc/elevate/policy.d".into(),
        policy_digest: "ab".repeat(32),
        policy_files: (0..3000)
            .map(|n| format!("{n:04}-a-policy-file.toml"))
            .collect(),
        profiles: 3000,
        last_reload: ReloadReport {
            at: "2026-11-22T23:00:00Z".into(),
            ok: true,
            errors: vec![],
            warnings: vec![],
        },
        running_commands: 0,
        group_edits_pending: 0,
        group_edit_wait_ms: 0,
        group_edit_error: None,
        expiry_lag_ms: 0,
        warnings: vec![],
    };
    let json = printed(
        &["status", "--json"],
        Request::Status {},
        Response::Status(status.clone()),
    );
    assert_eq!(serde_json::from_str::<StatusReply>(&json).unwrap(), status);
}

#[test]
fn revoke_all_ends_every_live_lease_of_a_long_list_waiting_out_the_rate_limit() {
    let fake = Fake::new("revoke-all");
    let mut child = fake.spawn(&["revoke", "--all", "--reason", "bye"]);
    let mut conn = fake.accept(&mut child);
    assert_eq!(conn.recv(), Request::Leases { all: true });
    conn.send(&many_leases(3));
    let slow_down = Response::Error(ErrorReply {
        kind: ErrorKind::RateLimited,
        message: "too many requests from your user; slow down and retry".into(),
    });
    for id in 1998..=2000 {
        let revoke = Request::Revoke {
            id,
            reason: Some("bye".into()),
        };
        // Each is refused once by the rate limit, then asked again on a new connection.
        for answer in [
            slow_down.clone(),
            Response::Lease(listed_lease(id, "ended")),
        ] {
            let mut conn = fake.accept(&mut child);
            assert_eq!(conn.recv(), revoke);
            conn.send(&answer);
        }
    }
    let out = finish(&mut child);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.stdout, "3 leases and requests ended\n");
}

#[test]
fn an_answer_the_daemon_could_not_send_is_an_error_not_an_empty_list() {
    let too_large = Response::Error(ErrorReply {
        kind: ErrorKind::Internal,
        message: "answer of 70000000 bytes exceeds the 67108864-byte limit".into(),
    });
    let out = ask(
        &["revoke", "--all"],
        Request::Leases { all: true },
        too_large.clone(),
    );
    assert_eq!(out.code, 70, "{}", out.all());
    assert!(
        out.stderr.contains("exceeds the 67108864-byte limit"),
        "{}",
        out.all()
    );
    assert!(!out.stdout.contains("ended"), "{}", out.all());
    let out = ask(
        &["leases", "--all"],
        Request::Leases { all: true },
        too_large,
    );
    assert_eq!(out.code, 70, "{}", out.all());
}
