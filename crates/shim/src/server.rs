//! The shim's side: create the container, then one `poll` loop over its
//! output, its exit, the socket and the attached clients, until it ends.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use hafen_runtime::Runtime;
use hafen_runtime::container::{self, CreateOptions, ExecOptions};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::logfile::{LogOptions, LogWriter, Stream};
use crate::protocol::{
    EXIT_FILE, ExitStatus, PID_FILE, Ready, Reply, Request, SOCKET, STDERR, STDOUT, ShimConfig,
    exec_exit_file, frame_header,
};

/// How long output may still drain after the process ended.
const DRAIN: Duration = Duration::from_secs(2);
/// How long a client may block the shim on a write before it is dropped.
const CLIENT_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// A client attached to a process's stdio.
struct Client {
    sock: UnixStream,
    /// Its input ended (a half-close): it is not read again, only
    /// written to.
    eof: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

/// A supervised process: the container's init or an exec.
struct Proc {
    exec_id: Option<String>,
    pidfd: Option<OwnedFd>,
    tty: bool,
    /// Where its stdin goes (a pipe, or a dup of the terminal's master).
    input: Option<OwnedFd>,
    /// Input that did not fit yet.
    pending: Vec<u8>,
    /// Close the input once `pending` is written.
    close_input: bool,
    /// Output fds and their stream numbers (`None`: closed, swept after
    /// each round so that indices stay valid within one).
    outputs: Vec<Option<(OwnedFd, u8)>>,
    clients: Vec<Option<Client>>,
    stdin_once: bool,
    exit: Option<(ExitStatus, Instant)>,
}

impl Proc {
    fn master(&self) -> Option<BorrowedFd<'_>> {
        if self.tty {
            self.outputs.first()?.as_ref().map(|(fd, _)| fd.as_fd())
        } else {
            None
        }
    }

    /// Sends output to the clients that want it (dropping those that fail).
    fn broadcast(&mut self, stream: u8, data: &[u8]) {
        let tty = self.tty;
        for slot in &mut self.clients {
            let Some(c) = slot else { continue };
            let wanted = if stream == STDERR { c.stderr } else { c.stdout };
            if !wanted {
                continue;
            }
            let sent = if tty {
                c.sock.write_all(data)
            } else {
                c.sock
                    .write_all(&frame_header(stream, data.len()))
                    .and_then(|()| c.sock.write_all(data))
            };
            if sent.is_err() {
                *slot = None;
            }
        }
    }

    /// Queues input for the process.
    fn feed(&mut self, data: &[u8]) {
        if self.input.is_some() {
            self.pending.extend_from_slice(data);
            self.flush_input();
        }
    }

    fn flush_input(&mut self) {
        let Some(input) = &self.input else {
            self.pending.clear();
            return;
        };
        while !self.pending.is_empty() {
            match rustix::io::write(input, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::AGAIN) => return,
                Err(Errno::INTR) => {}
                Err(_) => {
                    self.pending.clear();
                    self.input = None;
                    return;
                }
            }
        }
        if self.close_input && !self.tty {
            self.input = None;
        }
    }

    fn done(&self) -> bool {
        match &self.exit {
            Some((_, at)) => self.outputs.iter().all(Option::is_none) || at.elapsed() >= DRAIN,
            None => false,
        }
    }
}

/// The shim.
struct Shim {
    rt: Runtime,
    config: ShimConfig,
    log: Option<LogWriter>,
    listener: UnixListener,
    procs: Vec<Proc>,
    /// Connections that have not sent their request yet (`None`: taken).
    conns: Vec<Option<(UnixStream, Vec<u8>)>>,
    null: OwnedFd,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

fn nonblocking(fd: &OwnedFd) {
    if let Ok(flags) = rustix::fs::fcntl_getfl(fd) {
        let _ = rustix::fs::fcntl_setfl(fd, flags | OFlags::NONBLOCK);
    }
}

/// The stdio a process is created with, and the shim's ends of it.
struct Stdio {
    child: [Option<OwnedFd>; 3],
    input: Option<OwnedFd>,
    outputs: Vec<Option<(OwnedFd, u8)>>,
}

fn pipes(stdin: bool) -> std::io::Result<Stdio> {
    let flags = rustix::pipe::PipeFlags::CLOEXEC;
    let mut io = Stdio {
        child: [None, None, None],
        input: None,
        outputs: Vec::new(),
    };
    if stdin {
        let (r, w) = rustix::pipe::pipe_with(flags)?;
        nonblocking(&w);
        io.child[0] = Some(r);
        io.input = Some(w);
    }
    for (i, stream) in [(1, STDOUT), (2, STDERR)] {
        let (r, w) = rustix::pipe::pipe_with(flags)?;
        io.child[i] = Some(w);
        io.outputs.push(Some((r, stream)));
    }
    Ok(io)
}

/// Makes `child` the shim's fds 0-2 while `f` runs (the runtime passes its
/// own stdio to the processes it starts), then /dev/null again.
fn with_stdio<T>(null: &OwnedFd, child: &[Option<OwnedFd>; 3], f: impl FnOnce() -> T) -> T {
    let pick = |i: usize| child[i].as_ref().map_or(null.as_fd(), |fd| fd.as_fd());
    let _ = rustix::stdio::dup2_stdin(pick(0));
    let _ = rustix::stdio::dup2_stdout(pick(1));
    let _ = rustix::stdio::dup2_stderr(pick(2));
    let out = f();
    let _ = rustix::stdio::dup2_stdin(null);
    let _ = rustix::stdio::dup2_stdout(null);
    let _ = rustix::stdio::dup2_stderr(null);
    out
}

fn exit_code(status: &rustix::process::WaitIdStatus) -> i32 {
    status
        .exit_status()
        .or_else(|| status.terminating_signal().map(|s| 128 + s))
        .unwrap_or(255)
}

/// Runs the shim: `ready` is where the first line goes. Returns the
/// process's exit code.
pub fn run(config: ShimConfig, mut ready: std::fs::File) -> i32 {
    let fail = |ready: &mut std::fs::File, message: String| {
        let line = serde_json::to_string(&Ready::Failed { message }).unwrap_or_default();
        let _ = writeln!(ready, "{line}");
        1
    };
    let _ = rustix::process::setsid();
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let null = match rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return fail(&mut ready, format!("cannot open /dev/null: {e}")),
    };
    let socket = config.state_dir.join(SOCKET);
    let _ = std::fs::remove_file(&socket);
    let listener = match crate::protocol::via_short_path(&socket, |p| UnixListener::bind(p)) {
        Ok(l) => l,
        Err(e) => {
            return fail(
                &mut ready,
                format!("cannot listen on {}: {e}", socket.display()),
            );
        }
    };
    let _ = listener.set_nonblocking(true);
    let _ = std::fs::write(
        config.state_dir.join(PID_FILE),
        std::process::id().to_string(),
    );
    let log = match LogOptions::from_opts(&config.log_opts)
        .and_then(|o| LogWriter::open(&config.log_path, o))
    {
        Ok(w) => Some(w),
        Err(e) => return fail(&mut ready, format!("cannot open the log: {e}")),
    };
    if !config.rootfs_mounts.is_empty() {
        let target = config.bundle.join("rootfs");
        let mounted = hafen_runtime::namespaces::private_mount_namespace()
            .and_then(|()| crate::rootfs::mount_all(&config.rootfs_mounts, &target));
        if let Err(e) = mounted {
            let _ = std::fs::remove_file(&socket);
            return fail(&mut ready, format!("cannot mount the root filesystem: {e}"));
        }
    }
    let rt = Runtime::new(&config.runtime_root);
    let opts = CreateOptions {
        id: config.id.clone(),
        bundle: config.bundle.clone(),
        console_to_caller: config.tty,
        ..CreateOptions::default()
    };
    let io = if config.tty {
        Stdio {
            child: [None, None, None],
            input: None,
            outputs: Vec::new(),
        }
    } else {
        match pipes(config.stdin) {
            Ok(io) => io,
            Err(e) => return fail(&mut ready, format!("cannot make pipes: {e}")),
        }
    };
    let created = with_stdio(&null, &io.child, || container::create(&rt, &opts));
    drop(io.child);
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            return fail(&mut ready, e.to_string());
        }
    };
    let pid = created.container.state.pid;
    let (input, outputs) = match created.console {
        Some(master) => {
            let input = rustix::io::fcntl_dupfd_cloexec(&master, 3).ok();
            if let Some(i) = &input {
                nonblocking(i);
            }
            if let Some((rows, cols)) = config.console_size {
                let _ = rustix::termios::tcsetwinsize(
                    &master,
                    rustix::termios::Winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    },
                );
            }
            (input.filter(|_| config.stdin), vec![Some((master, STDOUT))])
        }
        None => (io.input, io.outputs),
    };
    let line = serde_json::to_string(&Ready::Created { pid }).unwrap_or_default();
    let _ = writeln!(ready, "{line}");
    drop(ready);
    drop(log);
    // Creating took far more memory than serving needs: serve from a fresh
    // image of the shim that inherits only the fds it needs.
    let handover = Handover {
        config,
        listener: listener.into(),
        pidfd: created.pidfd,
        input,
        outputs: outputs.into_iter().flatten().collect(),
    };
    handover.exec()
}

/// What the setup passes to the serving shim across `execve`: fd numbers
/// and the configuration, as one JSON argument.
#[derive(serde::Serialize, serde::Deserialize)]
struct HandoverArgs {
    config: ShimConfig,
    listener: i32,
    pidfd: i32,
    input: Option<i32>,
    outputs: Vec<(i32, u8)>,
}

struct Handover {
    config: ShimConfig,
    listener: OwnedFd,
    pidfd: OwnedFd,
    input: Option<OwnedFd>,
    outputs: Vec<(OwnedFd, u8)>,
}

/// The argument that makes `hafen-shim` serve a handed-over container.
pub const SERVE_ARG: &str = "--serve";

impl Handover {
    /// Re-executes the shim to serve; if that fails, serves here.
    fn exec(self) -> i32 {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let inherit = |fd: &OwnedFd| {
            let _ = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty());
            fd.as_raw_fd()
        };
        let args = HandoverArgs {
            config: self.config.clone(),
            listener: inherit(&self.listener),
            pidfd: inherit(&self.pidfd),
            input: self.input.as_ref().map(inherit),
            outputs: self
                .outputs
                .iter()
                .map(|(fd, s)| (inherit(fd), *s))
                .collect(),
        };
        if let Ok(json) = serde_json::to_string(&args) {
            let err = std::process::Command::new("/proc/self/exe")
                .arg0("hafen-shim")
                .arg(SERVE_ARG)
                .arg(json)
                .exec();
            eprintln!("hafen-shim: cannot re-execute ({err}); serving in place");
        }
        for fd in [&self.listener, &self.pidfd] {
            let _ = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC);
        }
        hafen_runtime::sys::release_free_memory();
        self.serve()
    }

    fn serve(self) -> i32 {
        let null =
            match rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
                Ok(fd) => fd,
                Err(e) => {
                    eprintln!("hafen-shim: cannot open /dev/null: {e}");
                    return 1;
                }
            };
        let log = LogOptions::from_opts(&self.config.log_opts)
            .and_then(|o| LogWriter::open(&self.config.log_path, o))
            .map_err(|e| eprintln!("hafen-shim: cannot open the log: {e}"))
            .ok();
        let main = Proc {
            exec_id: None,
            pidfd: Some(self.pidfd),
            tty: self.config.tty,
            input: self.input,
            pending: Vec::new(),
            close_input: false,
            outputs: self.outputs.into_iter().map(Some).collect(),
            clients: Vec::new(),
            stdin_once: self.config.stdin_once,
            exit: None,
        };
        let listener = UnixListener::from(self.listener);
        let _ = listener.set_nonblocking(true);
        let mut shim = Shim {
            rt: Runtime::new(&self.config.runtime_root),
            config: self.config,
            log,
            listener,
            procs: vec![main],
            conns: Vec::new(),
            null,
        };
        shim.serve()
    }
}

/// Serves a container handed over by [`run`] (the `--serve` argument).
pub fn serve_handed_over(json: &str) -> i32 {
    let args: HandoverArgs = match serde_json::from_str(json) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hafen-shim: bad hand-over: {e}");
            return 2;
        }
    };
    let take = |fd: i32| hafen_runtime::sys::inherited_fd(fd);
    let taken = (|| -> std::io::Result<Handover> {
        Ok(Handover {
            listener: take(args.listener)?,
            pidfd: take(args.pidfd)?,
            input: args.input.map(take).transpose()?,
            outputs: args
                .outputs
                .iter()
                .map(|(fd, s)| take(*fd).map(|fd| (fd, *s)))
                .collect::<std::io::Result<_>>()?,
            config: args.config,
        })
    })();
    match taken {
        Ok(h) => h.serve(),
        Err(e) => {
            eprintln!("hafen-shim: the handed-over fds: {e}");
            2
        }
    }
}

/// What poll found ready.
enum Token {
    Listener,
    Conn(usize),
    Pidfd(usize),
    Output(usize, usize),
    Input(usize),
    Client(usize, usize),
}

impl Shim {
    fn serve(&mut self) -> i32 {
        let mut buf = vec![0u8; 8 * 1024];
        loop {
            self.finish_done();
            if self.procs.first().is_none_or(|p| p.exec_id.is_some()) {
                // The container is gone.
                return 0;
            }
            let ready = match self.wait() {
                Ok(r) => r,
                Err(_) => continue,
            };
            for token in ready {
                match token {
                    Token::Listener => self.accept(),
                    Token::Conn(i) => self.read_request(i),
                    Token::Pidfd(p) => self.reap(p),
                    Token::Output(p, o) => self.read_output(p, o, &mut buf),
                    Token::Input(p) => self.procs[p].flush_input(),
                    Token::Client(p, c) => self.read_client(p, c, &mut buf),
                }
            }
            // Tokens index into vectors; removals wait until all are handled.
            self.conns.retain(Option::is_some);
            for p in &mut self.procs {
                p.outputs.retain(Option::is_some);
                p.clients.retain(Option::is_some);
            }
        }
    }

    fn wait(&self) -> std::io::Result<Vec<Token>> {
        let mut fds = vec![PollFd::new(&self.listener, PollFlags::IN)];
        let mut tokens = vec![Token::Listener];
        for (i, slot) in self.conns.iter().enumerate() {
            let Some((s, _)) = slot else { continue };
            fds.push(PollFd::new(s, PollFlags::IN));
            tokens.push(Token::Conn(i));
        }
        let mut timeout = None;
        for (p, proc) in self.procs.iter().enumerate() {
            if let (Some(fd), None) = (&proc.pidfd, &proc.exit) {
                fds.push(PollFd::new(fd, PollFlags::IN));
                tokens.push(Token::Pidfd(p));
            }
            if proc.exit.is_some() {
                timeout = Some(Timespec {
                    tv_sec: 0,
                    tv_nsec: 100_000_000,
                });
            }
            for (o, slot) in proc.outputs.iter().enumerate() {
                let Some((fd, _)) = slot else { continue };
                fds.push(PollFd::new(fd, PollFlags::IN));
                tokens.push(Token::Output(p, o));
            }
            if let (Some(input), false) = (&proc.input, proc.pending.is_empty()) {
                fds.push(PollFd::new(input, PollFlags::OUT));
                tokens.push(Token::Input(p));
            }
            for (c, slot) in proc.clients.iter().enumerate() {
                let Some(client) = slot else { continue };
                // Input is read only while the process takes it; a client
                // without stdin is watched for hang-ups.
                if client.eof || (client.stdin && !proc.pending.is_empty()) {
                    continue;
                }
                fds.push(PollFd::new(&client.sock, PollFlags::IN));
                tokens.push(Token::Client(p, c));
            }
        }
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {}
            Err(Errno::INTR) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
        Ok(fds
            .iter()
            .zip(tokens)
            .filter(|(fd, _)| !fd.revents().is_empty())
            .map(|(_, t)| t)
            .collect())
    }

    fn accept(&mut self) {
        while let Ok((sock, _)) = self.listener.accept() {
            let _ = sock.set_nonblocking(true);
            self.conns.push(Some((sock, Vec::new())));
        }
    }

    fn read_request(&mut self, i: usize) {
        let Some(Some((sock, line))) = self.conns.get_mut(i) else {
            return;
        };
        let mut chunk = [0u8; 512];
        let n = match sock.read(&mut chunk) {
            Ok(0) | Err(_) => {
                self.close_conn(i);
                return;
            }
            Ok(n) => n,
        };
        // One request line; nothing follows it before the reply.
        line.extend_from_slice(&chunk[..n]);
        if line.len() > 1024 * 1024 {
            self.close_conn(i);
            return;
        }
        let Some(end) = line.iter().position(|b| *b == b'\n') else {
            return;
        };
        let request: Result<Request, _> = serde_json::from_slice(&line[..end]);
        let rest = line[end + 1..].to_vec();
        let Some(Some((sock, _))) = self.conns.get_mut(i).map(Option::take) else {
            return;
        };
        let _ = sock.set_nonblocking(false);
        let _ = sock.set_write_timeout(Some(CLIENT_SEND_TIMEOUT));
        match request {
            Ok(r) => self.handle(r, sock, &rest),
            Err(e) => reply(&sock, &Reply::Error(format!("bad request: {e}"))),
        }
    }

    fn close_conn(&mut self, i: usize) {
        if let Some(slot) = self.conns.get_mut(i) {
            *slot = None;
        }
    }

    fn handle(&mut self, request: Request, sock: UnixStream, rest: &[u8]) {
        match request {
            Request::Start => {
                let r = match container::start(&self.rt, &self.config.id) {
                    Ok(()) => Reply::Ok,
                    Err(e) => Reply::Error(e.to_string()),
                };
                reply(&sock, &r);
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                let main = &mut self.procs[0];
                if main.exit.is_some() {
                    reply(&sock, &Reply::Error("the container is not running".into()));
                    return;
                }
                reply(&sock, &Reply::Ok);
                let stdin = stdin && main.input.is_some();
                if stdin && !rest.is_empty() {
                    main.feed(rest);
                }
                main.clients.push(Some(Client {
                    sock,
                    eof: false,
                    stdin,
                    stdout,
                    stderr,
                }));
            }
            Request::Resize {
                exec,
                height,
                width,
            } => {
                let proc = self.procs.iter().find(|p| p.exec_id == exec);
                let size = rustix::termios::Winsize {
                    ws_row: height,
                    ws_col: width,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                let r = match proc.and_then(Proc::master) {
                    Some(master) => match rustix::termios::tcsetwinsize(master, size) {
                        Ok(()) => Reply::Ok,
                        Err(e) => Reply::Error(format!("cannot resize the terminal: {e}")),
                    },
                    None => Reply::Error("no such terminal".into()),
                };
                reply(&sock, &r);
            }
            Request::CloseStdin => {
                let main = &mut self.procs[0];
                main.close_input = true;
                main.flush_input();
                reply(&sock, &Reply::Ok);
            }
            Request::Exec {
                id,
                process,
                stdin,
                stdout,
                stderr,
            } => self.exec(id, process, (stdin, stdout, stderr), sock),
        }
    }

    fn exec(
        &mut self,
        id: String,
        process: serde_json::Value,
        (stdin, stdout, stderr): (bool, bool, bool),
        sock: UnixStream,
    ) {
        let process: hafen_oci::runtime::Process = match serde_json::from_value(process) {
            Ok(p) => p,
            Err(e) => {
                reply(&sock, &Reply::Error(format!("bad process: {e}")));
                return;
            }
        };
        let tty = process.terminal().unwrap_or(false);
        let io = if tty {
            Ok(Stdio {
                child: [None, None, None],
                input: None,
                outputs: Vec::new(),
            })
        } else {
            pipes(stdin)
        };
        let io = match io {
            Ok(io) => io,
            Err(e) => {
                reply(&sock, &Reply::Error(format!("cannot make pipes: {e}")));
                return;
            }
        };
        let opts = ExecOptions {
            id: self.config.id.clone(),
            process,
            console_socket: None,
            pid_file: None,
            detach: true,
            preserve_fds: 0,
            ignore_paused: false,
        };
        let spawned = with_stdio(&self.null, &io.child, || container::spawn(&self.rt, &opts));
        drop(io.child);
        let spawned = match spawned {
            Ok(s) => s,
            Err(e) => {
                reply(&sock, &Reply::Error(e.to_string()));
                return;
            }
        };
        let (input, outputs) = match spawned.console {
            Some(master) => {
                let input = rustix::io::fcntl_dupfd_cloexec(&master, 3).ok();
                if let Some(i) = &input {
                    nonblocking(i);
                }
                (input.filter(|_| stdin), vec![Some((master, STDOUT))])
            }
            None => (io.input, io.outputs),
        };
        reply(&sock, &Reply::Pid(spawned.pid));
        // Starting a process reads the container's whole configuration.
        hafen_runtime::sys::release_free_memory();
        self.procs.push(Proc {
            exec_id: Some(id),
            pidfd: Some(spawned.pidfd),
            tty,
            input,
            pending: Vec::new(),
            close_input: false,
            outputs,
            clients: vec![Some(Client {
                sock,
                eof: false,
                stdin,
                stdout,
                stderr,
            })],
            stdin_once: true,
            exit: None,
        });
    }

    fn reap(&mut self, p: usize) {
        let Some(proc) = self.procs.get_mut(p) else {
            return;
        };
        let Some(pidfd) = &proc.pidfd else {
            return;
        };
        let status = rustix::process::waitid(
            rustix::process::WaitId::PidFd(pidfd.as_fd()),
            rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG,
        );
        let code = match status {
            Ok(Some(s)) => exit_code(&s),
            Ok(None) => return,
            // Not our child (cannot happen for processes the shim started):
            // the status is lost.
            Err(_) => 255,
        };
        proc.exit = Some((
            ExitStatus {
                exit_code: code,
                finished_at: now_ns(),
                oom_killed: false,
            },
            Instant::now(),
        ));
    }

    fn read_output(&mut self, p: usize, o: usize, buf: &mut [u8]) {
        let Some(proc) = self.procs.get_mut(p) else {
            return;
        };
        let Some(Some((fd, stream))) = proc.outputs.get(o) else {
            return;
        };
        let stream = *stream;
        match rustix::io::read(fd, &mut *buf) {
            Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Ok(0) | Err(_) => proc.outputs[o] = None,
            Ok(n) => {
                let data = &buf[..n];
                if proc.exec_id.is_none() {
                    if let Some(log) = &mut self.log {
                        let s = if stream == STDERR {
                            Stream::Stderr
                        } else {
                            Stream::Stdout
                        };
                        let _ = log.write(s, data);
                    }
                }
                proc.broadcast(stream, data);
            }
        }
    }

    fn read_client(&mut self, p: usize, c: usize, buf: &mut [u8]) {
        let Some(proc) = self.procs.get_mut(p) else {
            return;
        };
        let Some(Some(client)) = proc.clients.get_mut(c) else {
            return;
        };
        let _ = client.sock.set_nonblocking(true);
        let read = client.sock.read(buf);
        let _ = client.sock.set_nonblocking(false);
        match read {
            Ok(0) => {
                // The client's input ended (a half-close, or it left: then
                // the next write fails and drops it).
                client.eof = true;
                if client.stdin {
                    client.stdin = false;
                    if proc.stdin_once {
                        proc.close_input = true;
                        proc.flush_input();
                    }
                }
            }
            Ok(n) => {
                if client.stdin {
                    proc.feed(&buf[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => proc.clients[c] = None,
        }
    }

    /// Ends what has ended: execs record their status and close their
    /// stream; the container records its status, leaves the runtime and
    /// ends the shim.
    fn finish_done(&mut self) {
        let mut i = 0;
        while i < self.procs.len() {
            if !self.procs[i].done() {
                i += 1;
                continue;
            }
            let proc = self.procs.remove(i);
            let Some((status, _)) = proc.exit else {
                continue;
            };
            let text = serde_json::to_vec(&status).unwrap_or_default();
            match &proc.exec_id {
                Some(id) => {
                    let _ = write_atomically(&exec_exit_file(&self.config.state_dir, id), &text);
                }
                None => {
                    if let Some(log) = &mut self.log {
                        let _ = log.flush_partial();
                    }
                    let mut status = status;
                    status.oom_killed = oom_killed(&self.rt, &self.config.id);
                    let text = serde_json::to_vec(&status).unwrap_or_default();
                    if let Err(e) = container::delete(&self.rt, &self.config.id, true) {
                        eprintln!("hafen-shim: cannot remove the container: {e}");
                    }
                    let _ = std::fs::remove_file(self.config.state_dir.join(SOCKET));
                    let _ = write_atomically(&self.config.state_dir.join(EXIT_FILE), &text);
                }
            }
            for c in proc.clients.iter().flatten() {
                let _ = c.sock.shutdown(std::net::Shutdown::Both);
            }
            if proc.exec_id.is_none() {
                // The container is gone: so are its execs.
                self.procs.clear();
                return;
            }
        }
    }
}

/// Whether the container's cgroup saw the OOM killer.
fn oom_killed(rt: &Runtime, id: &str) -> bool {
    rt.load(id)
        .ok()
        .is_some_and(|c| c.state.cgroup.oom_kills() > 0)
}

fn reply(mut sock: &UnixStream, r: &Reply) {
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    let _ = sock.write_all(&line);
}
