//! `hafen run`, `create`, `start`, `attach`, `exec`, `logs`, `wait`, `rm`,
//! `ps`, `inspect`, `stop`, `kill`, as the docker CLI does them.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::os::fd::AsFd;

use clap::Args;
use hafen_api::client::{ClientError, Hijacked, encode};
use hafen_api::models::{
    ContainerCreated, ContainerInspect, ContainerSummary, ExecConfig, ExecInspect, WaitResponse,
};
use hyper::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::create_flags::{CreateArgs, RunArgs};
use super::format::{self, ListFormat, short_id};
use super::{CliError, Global, Session, out};

/// The exit code of a start that failed, as the docker CLI picks it.
fn start_failure_code(message: &str) -> u8 {
    let m = message.to_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") || m.contains("exec format error") {
        126
    } else {
        125
    }
}

/// An error of the daemon, printed as docker does (`hafen: Error response
/// from daemon: …`) with the given exit code.
fn daemon_error(e: &ClientError, code: u8) -> CliError {
    eprintln!("hafen: {e}");
    CliError::Exit(code)
}

/// The environment for `-e KEY` and `--env-file` lines without a value.
fn env_lookup(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

async fn create(
    s: &Session,
    name: Option<&str>,
    body: &hafen_api::models::ContainerCreate,
    image: &str,
) -> Result<ContainerCreated, CliError> {
    let mut path = "/containers/create".to_string();
    if let Some(n) = name {
        path.push_str(&format!("?name={}", encode(n)));
    }
    let json = serde_json::to_vec(body).map_err(|e| CliError::Failed(e.to_string()))?;
    match s
        .client
        .call_json::<ContainerCreated>(Method::POST, &path, Some(json))
        .await
    {
        Ok(c) => {
            for w in &c.warnings {
                eprintln!("WARNING: {w}");
            }
            Ok(c)
        }
        Err(ClientError::Api {
            status: 404,
            message,
        }) if message.starts_with("No such image") => {
            let shown = if image.contains(':') || image.contains('@') {
                image.to_string()
            } else {
                format!("{image}:latest")
            };
            eprintln!("Unable to find image '{shown}' locally");
            eprintln!(
                "hafen: Error response from daemon: {message} (hafen cannot pull images from registries yet: load or import it first)"
            );
            Err(CliError::Exit(125))
        }
        Err(e) => Err(daemon_error(&e, 125)),
    }
}

/// `hafen create`.
pub fn create_cmd(g: &Global, a: CreateArgs) -> Result<(), CliError> {
    let body = a.body(&env_lookup).map_err(|e| {
        eprintln!("hafen: {e}");
        CliError::Exit(125)
    })?;
    let s = Session::open(g)?;
    let c =
        s.rt.block_on(create(&s, a.flags.name.as_deref(), &body, a.image()))?;
    if let Some(file) = &a.flags.cidfile {
        std::fs::write(file, &c.id).map_err(|e| CliError::Failed(format!("{file}: {e}")))?;
    }
    out(&format!("{}\n", c.id));
    Ok(())
}

/// Relays a hijacked stream to the terminal until the output ends.
async fn relay(io: Hijacked, tty: bool, send_stdin: bool) -> Result<(), CliError> {
    let multiplexed = io.is_multiplexed(tty);
    let Some(conn) = io.into_upgraded() else {
        return Ok(());
    };
    let (mut reader, mut writer) = tokio::io::split(conn);
    let input = send_stdin.then(|| {
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 8192];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if writer.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        let _ = writer.flush().await;
                    }
                }
            }
            let _ = writer.shutdown().await;
        })
    });
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let result = if multiplexed {
        hafen_api::client::demultiplex(&mut reader, &mut stdout, &mut stderr).await
    } else {
        tokio::io::copy(&mut reader, &mut stdout).await.map(|_| ())
    };
    let _ = stdout.flush().await;
    if let Some(i) = input {
        i.abort();
    }
    result.map_err(|e| CliError::Failed(format!("hafen: {e}")))
}

/// The terminal's size (rows, columns).
fn term_size() -> Option<(u16, u16)> {
    let fd = std::io::stdout();
    let ws = rustix::termios::tcgetwinsize(fd.as_fd()).ok()?;
    (ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

async fn resize(s: &Session, path: &str) {
    if let Some((h, w)) = term_size() {
        let _ = s
            .client
            .request(
                Method::POST,
                &format!("{path}/resize?h={h}&w={w}"),
                None,
                hafen_api::client::empty(),
            )
            .await;
    }
}

/// Forwards terminal resizes while `f` runs.
async fn with_resizes<T>(s: &Session, path: &str, f: impl Future<Output = T>) -> T {
    let mut winch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    tokio::pin!(f);
    loop {
        tokio::select! {
            v = &mut f => return v,
            _ = async { match winch.as_mut() { Some(w) => { w.recv().await; } None => std::future::pending::<()>().await } } => {
                resize(s, path).await;
            }
        }
    }
}

/// Raw mode on the terminal while a container with a terminal is attached.
fn raw_terminal(tty: bool, stdin: bool) -> Option<hafen_runtime::console::RawMode> {
    if !(tty && stdin && std::io::stdin().is_terminal()) {
        return None;
    }
    let fd = rustix::stdio::stdin();
    hafen_runtime::console::RawMode::enable(fd).ok()
}

async fn wait_for(s: &Session, id: &str, condition: &str) -> Result<WaitResponse, ClientError> {
    s.client
        .call_json::<WaitResponse>(
            Method::POST,
            &format!("/containers/{id}/wait?condition={condition}"),
            None,
        )
        .await
}

/// `hafen run`.
pub fn run(g: &Global, a: RunArgs) -> Result<(), CliError> {
    let body = a.body(&env_lookup).map_err(|e| {
        eprintln!("hafen: {e}");
        CliError::Exit(125)
    })?;
    let detach = a.flags.detach;
    let s = Session::open(g)?;
    let rt = &s.rt;
    let c = rt.block_on(create(&s, a.flags.name.as_deref(), &body, a.image()))?;
    if let Some(file) = &a.flags.cidfile {
        std::fs::write(file, &c.id).map_err(|e| CliError::Failed(format!("{file}: {e}")))?;
    }
    let id = c.id.clone();
    let tty = body.config.tty;
    let stdin = body.config.attach_stdin;
    let auto_remove = body.host_config.auto_remove;
    if detach {
        if let Err(e) = rt.block_on(s.client.request(
            Method::POST,
            &format!("/containers/{id}/start"),
            None,
            hafen_api::client::empty(),
        )) {
            return Err(daemon_error(&e, start_failure_code(&e.to_string())));
        }
        out(&format!("{id}\n"));
        return Ok(());
    }
    let code = rt.block_on(async {
        let attach_any = body.config.attach_stdout || body.config.attach_stderr || stdin;
        let hijack = if attach_any {
            let mut q = format!(
                "/containers/{id}/attach?stream=1&stdin={}&stdout={}&stderr={}",
                u8::from(stdin),
                u8::from(body.config.attach_stdout),
                u8::from(body.config.attach_stderr)
            );
            if let Some(k) = &a.flags.detach_keys {
                q.push_str(&format!("&detachKeys={}", encode(k)));
            }
            Some(
                s.client
                    .hijack(Method::POST, &q, None)
                    .await
                    .map_err(|e| daemon_error(&e, 125))?,
            )
        } else {
            None
        };
        let condition = if auto_remove { "removed" } else { "next-exit" };
        let waiter = {
            let client = s.client.clone();
            let id = id.clone();
            tokio::spawn(async move {
                client
                    .call_json::<WaitResponse>(
                        Method::POST,
                        &format!("/containers/{id}/wait?condition={condition}"),
                        None,
                    )
                    .await
            })
        };
        if let Err(e) = s
            .client
            .request(
                Method::POST,
                &format!("/containers/{id}/start"),
                None,
                hafen_api::client::empty(),
            )
            .await
        {
            let code = start_failure_code(&e.to_string());
            if auto_remove {
                let _ = s
                    .client
                    .request(
                        Method::DELETE,
                        &format!("/containers/{id}?force=1"),
                        None,
                        hafen_api::client::empty(),
                    )
                    .await;
            }
            return Err(daemon_error(&e, code));
        }
        let _raw = raw_terminal(tty, stdin);
        if tty {
            resize(&s, &format!("/containers/{id}")).await;
        }
        if let Some(io) = hijack {
            let sig_proxy = a.flags.sig_proxy() && !tty;
            let relayed = with_resizes(&s, &format!("/containers/{id}"), async {
                if sig_proxy {
                    proxy_signals(&s, &id, relay(io, tty, stdin)).await
                } else {
                    relay(io, tty, stdin).await
                }
            })
            .await;
            relayed?;
        }
        drop(_raw);
        match waiter.await {
            Ok(Ok(w)) => {
                if let Some(err) = w.error {
                    eprintln!("hafen: {}", err.message);
                }
                Ok(u8::try_from(w.status_code).unwrap_or(255))
            }
            Ok(Err(e)) => Err(daemon_error(&e, 125)),
            Err(e) => Err(CliError::Hafen(format!("hafen: {e}"))),
        }
    });
    s.close();
    let code = code?;
    if code == 0 {
        Ok(())
    } else {
        Err(CliError::Exit(code))
    }
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 to the container
/// while `f` runs (docker's `--sig-proxy`).
async fn proxy_signals<T>(s: &Session, id: &str, f: impl Future<Output = T>) -> T {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ];
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    for (kind, name) in kinds {
        if let Ok(mut sig) = signal(kind) {
            let tx = tx.clone();
            tokio::spawn(async move {
                while sig.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        return;
                    }
                }
            });
        }
    }
    tokio::pin!(f);
    loop {
        tokio::select! {
            v = &mut f => return v,
            Some(name) = rx.recv() => {
                let _ = s.client.request(
                    Method::POST,
                    &format!("/containers/{id}/kill?signal={name}"),
                    None,
                    hafen_api::client::empty(),
                ).await;
            }
        }
    }
}

/// `hafen start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    attach: bool,
    /// Attach the container's STDIN.
    #[arg(short, long)]
    interactive: bool,
    /// Override the key sequence for detaching.
    #[arg(long)]
    detach_keys: Option<String>,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `hafen start`.
pub fn start(g: &Global, a: StartArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    if a.attach || a.interactive {
        let [id] = a.containers.as_slice() else {
            return Err(CliError::Failed(
                "you cannot start and attach multiple containers at once".into(),
            ));
        };
        let code = s.rt.block_on(async {
            let c: ContainerInspect = s
                .client
                .get_json(&format!("/containers/{}/json", encode(id)))
                .await
                .map_err(|e| daemon_error(&e, 1))?;
            let tty = c.config.tty;
            let stdin = a.interactive && c.config.open_stdin;
            let mut q = format!(
                "/containers/{}/attach?stream=1&stdin={}&stdout=1&stderr=1",
                c.id,
                u8::from(stdin)
            );
            if let Some(k) = &a.detach_keys {
                q.push_str(&format!("&detachKeys={}", encode(k)));
            }
            let io = s
                .client
                .hijack(Method::POST, &q, None)
                .await
                .map_err(|e| daemon_error(&e, 1))?;
            let waiter = {
                let client = s.client.clone();
                let cid = c.id.clone();
                tokio::spawn(async move {
                    client
                        .call_json::<WaitResponse>(
                            Method::POST,
                            &format!("/containers/{cid}/wait?condition=next-exit"),
                            None,
                        )
                        .await
                })
            };
            s.client
                .request(
                    Method::POST,
                    &format!("/containers/{}/start", c.id),
                    None,
                    hafen_api::client::empty(),
                )
                .await
                .map_err(|e| daemon_error(&e, 1))?;
            let _raw = raw_terminal(tty, stdin);
            if tty {
                resize(&s, &format!("/containers/{}", c.id)).await;
            }
            relay(io, tty, stdin).await?;
            drop(_raw);
            match waiter.await {
                Ok(Ok(w)) => Ok(u8::try_from(w.status_code).unwrap_or(255)),
                Ok(Err(e)) => Err(daemon_error(&e, 1)),
                Err(e) => Err(CliError::Hafen(format!("hafen: {e}"))),
            }
        });
        s.close();
        let code = code?;
        return if code == 0 {
            Ok(())
        } else {
            Err(CliError::Exit(code))
        };
    }
    each(&s, &a.containers, |id| {
        let path = format!("/containers/{}/start", encode(id));
        async move { (path, Method::POST) }
    })
}

/// Runs one request per container, printing each name that worked and each
/// error; exit 1 if any failed (docker's behaviour for `start`, `stop`,
/// `kill`, `rm`, `pause`, …).
fn each<F, Fut>(s: &Session, names: &[String], f: F) -> Result<(), CliError>
where
    F: Fn(&str) -> Fut,
    Fut: Future<Output = (String, Method)>,
{
    let mut failed = false;
    for name in names {
        let r = s.rt.block_on(async {
            let (path, method) = f(name).await;
            s.client
                .request(method, &path, None, hafen_api::client::empty())
                .await
        });
        match r {
            Ok(_) => out(&format!("{name}\n")),
            Err(e) => {
                eprintln!("Error response from daemon: {}", api_message(&e));
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError::Exit(1))
    } else {
        Ok(())
    }
}

fn api_message(e: &ClientError) -> String {
    match e {
        ClientError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `hafen stop` / `restart`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Signal to send.
    #[arg(short, long)]
    signal: Option<String>,
    /// Seconds to wait before killing.
    #[arg(short = 't', long = "timeout", alias = "time")]
    timeout: Option<i64>,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

fn stop_query(a: &StopArgs) -> String {
    let mut q = Vec::new();
    if let Some(t) = a.timeout {
        q.push(format!("t={t}"));
    }
    if let Some(s) = &a.signal {
        q.push(format!("signal={}", encode(s)));
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// `hafen stop`.
pub fn stop(g: &Global, a: StopArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let q = stop_query(&a);
    each(&s, &a.containers, |id| {
        let path = format!("/containers/{}/stop{q}", encode(id));
        async move { (path, Method::POST) }
    })
}

/// `hafen restart`.
pub fn restart(g: &Global, a: StopArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let q = stop_query(&a);
    each(&s, &a.containers, |id| {
        let path = format!("/containers/{}/restart{q}", encode(id));
        async move { (path, Method::POST) }
    })
}

/// `hafen kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short, long)]
    signal: Option<String>,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `hafen kill`.
pub fn kill(g: &Global, a: KillArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let q = a
        .signal
        .as_ref()
        .map(|s| format!("?signal={}", encode(s)))
        .unwrap_or_default();
    each(&s, &a.containers, |id| {
        let path = format!("/containers/{}/kill{q}", encode(id));
        async move { (path, Method::POST) }
    })
}

/// `hafen pause` / `unpause`.
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `hafen pause`.
pub fn pause(g: &Global, a: NamesArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    each(&s, &a.containers, |id| {
        let path = format!("/containers/{}/pause", encode(id));
        async move { (path, Method::POST) }
    })
}

/// `hafen unpause`.
pub fn unpause(g: &Global, a: NamesArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    each(&s, &a.containers, |id| {
        let path = format!("/containers/{}/unpause", encode(id));
        async move { (path, Method::POST) }
    })
}

/// `hafen rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short, long)]
    force: bool,
    /// Remove its anonymous volumes.
    #[arg(short, long)]
    volumes: bool,
    /// Remove the link (not supported).
    #[arg(short, long)]
    link: bool,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `hafen rm`.
pub fn rm(g: &Global, a: RmArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let q = format!("?force={}&v={}", u8::from(a.force), u8::from(a.volumes));
    each(&s, &a.containers, |id| {
        let path = format!("/containers/{}{q}", encode(id));
        async move { (path, Method::DELETE) }
    })
}

/// `hafen wait`.
pub fn wait(g: &Global, a: NamesArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let mut failed = false;
    for name in &a.containers {
        match s.rt.block_on(wait_for(&s, &encode(name), "not-running")) {
            Ok(w) => out(&format!("{}\n", w.status_code)),
            Err(e) => {
                eprintln!("Error response from daemon: {}", api_message(&e));
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError::Exit(1))
    } else {
        Ok(())
    }
}

/// `hafen logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow the output.
    #[arg(short, long)]
    follow: bool,
    /// Show logs since (timestamp or relative, e.g. 42m).
    #[arg(long)]
    since: Option<String>,
    /// Show logs before (timestamp or relative).
    #[arg(long)]
    until: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    /// Number of lines from the end (`all`).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show extra details.
    #[arg(long)]
    details: bool,
    /// The container.
    container: String,
}

/// A `--since`/`--until` value as the API takes it (Unix seconds).
fn time_arg(v: &str) -> Result<String, CliError> {
    if v.parse::<f64>().is_ok() {
        return Ok(v.to_string());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    if let Ok(d) = humantime::parse_duration(v) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let t = now.saturating_sub(d);
        return Ok(format!("{}.{:09}", t.as_secs(), t.subsec_nanos()));
    }
    Err(CliError::Failed(format!(
        "invalid value for \"since\": failed to parse value as time or duration: \"{v}\""
    )))
}

/// `hafen logs`.
pub fn logs(g: &Global, a: LogsArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    s.rt.block_on(async {
        let c: ContainerInspect = s
            .client
            .get_json(&format!("/containers/{}/json", encode(&a.container)))
            .await
            .map_err(|e| {
                eprintln!("Error response from daemon: {}", api_message(&e));
                CliError::Exit(1)
            })?;
        let mut q = format!(
            "/containers/{}/logs?stdout=1&stderr=1&tail={}",
            c.id,
            encode(&a.tail)
        );
        if a.follow {
            q.push_str("&follow=1");
        }
        if a.timestamps {
            q.push_str("&timestamps=1");
        }
        if let Some(v) = &a.since {
            q.push_str(&format!("&since={}", time_arg(v)?));
        }
        if let Some(v) = &a.until {
            q.push_str(&format!("&until={}", time_arg(v)?));
        }
        let resp = s
            .client
            .request(Method::GET, &q, None, hafen_api::client::empty())
            .await
            .map_err(|e| {
                eprintln!("Error response from daemon: {}", api_message(&e));
                CliError::Exit(1)
            })?;
        let mut body = hafen_api::client::BodyReader::new(resp.into_body());
        let mut stdout = tokio::io::stdout();
        let mut stderr = tokio::io::stderr();
        let r = if c.config.tty {
            tokio::io::copy(&mut body, &mut stdout).await.map(|_| ())
        } else {
            hafen_api::client::demultiplex(&mut body, &mut stdout, &mut stderr).await
        };
        let _ = stdout.flush().await;
        r.map_err(|e| CliError::Failed(format!("hafen: {e}")))
    })
}

/// `hafen attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long)]
    no_stdin: bool,
    /// Proxy signals to the container.
    #[arg(long, default_value = "true", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    sig_proxy: bool,
    /// Override the key sequence for detaching.
    #[arg(long)]
    detach_keys: Option<String>,
    /// The container.
    container: String,
}

/// `hafen attach`.
pub fn attach(g: &Global, a: AttachArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let code = s.rt.block_on(async {
        let c: ContainerInspect = s
            .client
            .get_json(&format!("/containers/{}/json", encode(&a.container)))
            .await
            .map_err(|e| daemon_error(&e, 1))?;
        if !c.state.running {
            eprintln!("You cannot attach to a stopped container, start it first");
            return Err(CliError::Exit(1));
        }
        if c.state.paused {
            eprintln!("You cannot attach to a paused container, unpause it first");
            return Err(CliError::Exit(1));
        }
        let tty = c.config.tty;
        let stdin = !a.no_stdin && c.config.open_stdin;
        let mut q = format!(
            "/containers/{}/attach?stream=1&stdin={}&stdout=1&stderr=1",
            c.id,
            u8::from(stdin)
        );
        if let Some(k) = &a.detach_keys {
            q.push_str(&format!("&detachKeys={}", encode(k)));
        }
        let io = s
            .client
            .hijack(Method::POST, &q, None)
            .await
            .map_err(|e| daemon_error(&e, 1))?;
        let _raw = raw_terminal(tty, stdin);
        if tty {
            resize(&s, &format!("/containers/{}", c.id)).await;
        }
        let relayed = if a.sig_proxy && !tty {
            proxy_signals(&s, &c.id, relay(io, tty, stdin)).await
        } else {
            relay(io, tty, stdin).await
        };
        relayed?;
        drop(_raw);
        let now: ContainerInspect = s
            .client
            .get_json(&format!("/containers/{}/json", c.id))
            .await
            .map_err(|e| daemon_error(&e, 1))?;
        // Detached (still running): exit 0; else the container's code.
        Ok(if now.state.running {
            0
        } else {
            u8::try_from(now.state.exit_code).unwrap_or(255)
        })
    });
    s.close();
    let code = code?;
    if code == 0 {
        Ok(())
    } else {
        Err(CliError::Exit(code))
    }
}

/// `hafen exec`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background.
    #[arg(short, long)]
    detach: bool,
    /// Override the key sequence for detaching.
    #[arg(long)]
    detach_keys: Option<String>,
    /// Set environment variables.
    #[arg(short, long)]
    env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long)]
    env_file: Vec<String>,
    /// Keep STDIN open.
    #[arg(short, long)]
    interactive: bool,
    /// Give extended privileges to the command.
    #[arg(long)]
    privileged: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    tty: bool,
    /// Username or UID (`name|uid[:group|gid]`).
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Print usage.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// The container, then the command and its arguments.
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, value_name = "CONTAINER COMMAND [ARG...]")]
    args: Vec<String>,
}

/// `hafen exec`.
pub fn exec(g: &Global, a: ExecArgs) -> Result<(), CliError> {
    let mut env = Vec::new();
    for file in &a.env_file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            eprintln!("hafen: open {file}: {e}");
            CliError::Exit(125)
        })?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some(_) => env.push(line.to_string()),
                None => {
                    if let Ok(v) = std::env::var(line) {
                        env.push(format!("{line}={v}"));
                    }
                }
            }
        }
    }
    for e in &a.env {
        match e.split_once('=') {
            Some(_) => env.push(e.clone()),
            None => {
                if let Ok(v) = std::env::var(e) {
                    env.push(format!("{e}={v}"));
                }
            }
        }
    }
    let container = a.args[0].clone();
    let cmd = a.args[1..].to_vec();
    let config = ExecConfig {
        attach_stdin: a.interactive && !a.detach,
        attach_stdout: !a.detach,
        attach_stderr: !a.detach,
        detach_keys: a.detach_keys.clone().unwrap_or_default(),
        tty: a.tty,
        console_size: term_size().filter(|_| a.tty).map(|(h, w)| vec![h, w]),
        env,
        cmd: Some(cmd),
        privileged: a.privileged,
        user: a.user.clone().unwrap_or_default(),
        working_dir: a.workdir.clone().unwrap_or_default(),
    };
    let s = Session::open(g)?;
    let code = s.rt.block_on(async {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct IdResponse {
            id: String,
        }
        let body = serde_json::to_vec(&config).map_err(|e| CliError::Failed(e.to_string()))?;
        let created: IdResponse = s
            .client
            .call_json(
                Method::POST,
                &format!("/containers/{}/exec", encode(&container)),
                Some(body),
            )
            .await
            .map_err(|e| {
                eprintln!("Error response from daemon: {}", api_message(&e));
                CliError::Exit(1)
            })?;
        let exec_id = created.id;
        let start = serde_json::json!({"Detach": a.detach, "Tty": a.tty});
        let start = serde_json::to_vec(&start).map_err(|e| CliError::Failed(e.to_string()))?;
        if a.detach {
            s.client
                .request(
                    Method::POST,
                    &format!("/exec/{exec_id}/start"),
                    Some("application/json"),
                    hafen_api::client::from_reader(std::io::Cursor::new(start)),
                )
                .await
                .map_err(|e| {
                    eprintln!("Error response from daemon: {}", api_message(&e));
                    CliError::Exit(exec_failure_code(&e))
                })?;
            return Ok::<u8, CliError>(0);
        }
        let io = s
            .client
            .hijack(Method::POST, &format!("/exec/{exec_id}/start"), Some(start))
            .await
            .map_err(|e| {
                eprintln!("{}", api_message(&e));
                CliError::Exit(exec_failure_code(&e))
            })?;
        let _raw = raw_terminal(a.tty, a.interactive);
        let relayed = with_resizes(
            &s,
            &format!("/exec/{exec_id}"),
            relay(io, a.tty, a.interactive),
        )
        .await;
        drop(_raw);
        relayed?;
        let i: ExecInspect = s
            .client
            .get_json(&format!("/exec/{exec_id}/json"))
            .await
            .map_err(|e| daemon_error(&e, 1))?;
        Ok(u8::try_from(i.exit_code.unwrap_or(0)).unwrap_or(255))
    });
    s.close();
    let code = code?;
    if code == 0 {
        Ok(())
    } else {
        Err(CliError::Exit(code))
    }
}

fn exec_failure_code(e: &ClientError) -> u8 {
    match e {
        ClientError::Api {
            status: 404 | 409, ..
        } => 1,
        other => {
            let text = other.to_string();
            if text.contains("not found") || text.contains("no such file") {
                127
            } else {
                126
            }
        }
    }
}

/// `hafen ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template, `table` or `json`.
    #[arg(long)]
    format: Option<String>,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long, default_value = "-1")]
    last: i64,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    latest: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    size: bool,
}

const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("Size", "SIZE"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Platform", "PLATFORM"),
];

/// Go's `strconv.Quote` for the printable ASCII a command holds.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…`.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn ps_row(c: &ContainerSummary, trunc: bool) -> BTreeMap<String, String> {
    let mut r = BTreeMap::new();
    let id = if trunc { short_id(&c.id) } else { c.id.clone() };
    r.insert("ID".into(), id);
    let image = if trunc && c.image.starts_with("sha256:") {
        short_id(&c.image)
    } else {
        c.image.clone()
    };
    r.insert("Image".into(), image);
    let cmd = if trunc {
        ellipsis(&c.command, 20)
    } else {
        c.command.clone()
    };
    r.insert("Command".into(), go_quote(&cmd));
    r.insert("CreatedAt".into(), format::go_time(c.created));
    r.insert("RunningFor".into(), format::since(c.created));
    r.insert("Status".into(), c.status.clone());
    r.insert("State".into(), c.state.clone());
    r.insert("Ports".into(), displayable_ports(&c.ports));
    let names: Vec<String> = c
        .names
        .iter()
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    r.insert("Names".into(), names.join(","));
    let size = match (c.size_rw, c.size_root_fs) {
        (Some(rw), Some(total)) => format!(
            "{} (virtual {})",
            format::human_size(rw, 3),
            format::human_size(total, 3)
        ),
        _ => String::new(),
    };
    r.insert("Size".into(), size);
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    r.insert("Labels".into(), labels.join(","));
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .map(|m| {
            let n = if m.name.is_empty() {
                &m.source
            } else {
                &m.name
            };
            if trunc { ellipsis(n, 15) } else { n.clone() }
        })
        .collect();
    r.insert("Mounts".into(), mounts.join(","));
    r.insert("Networks".into(), String::new());
    r.insert(
        "LocalVolumes".into(),
        c.mounts
            .iter()
            .filter(|m| m.driver == "local")
            .count()
            .to_string(),
    );
    r.insert("Platform".into(), String::new());
    r
}

/// `hafen ps`.
pub fn ps(g: &Global, a: PsArgs) -> Result<(), CliError> {
    let mut filters = hafen_api::filters::Filters::new();
    for item in &a.filter {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            CliError::Failed(format!(
                "bad format of filter (expected name=value): {item}"
            ))
        })?;
        filters
            .entry(k.to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    let mut q = vec![format!("all={}", u8::from(a.all))];
    let limit = if a.latest { 1 } else { a.last };
    if limit > 0 {
        q.push(format!("limit={limit}"));
    }
    let default_table = if a.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    let wants_size = a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size"));
    if wants_size {
        q.push("size=1".into());
    }
    if !filters.is_empty() {
        q.push(format!(
            "filters={}",
            encode(&serde_json::to_string(&filters).unwrap_or_default())
        ));
    }
    let s = Session::open(g)?;
    let list: Vec<ContainerSummary> = s.rt.block_on(
        s.client
            .get_json(&format!("/containers/json?{}", q.join("&"))),
    )?;
    if a.quiet {
        for c in &list {
            let id = if a.no_trunc {
                c.id.clone()
            } else {
                short_id(&c.id)
            };
            out(&format!("{id}\n"));
        }
        return Ok(());
    }
    let rows: Vec<BTreeMap<String, String>> = list.iter().map(|c| ps_row(c, !a.no_trunc)).collect();
    let fmt = ListFormat::new(a.format.as_deref(), default_table);
    let headers: BTreeMap<&str, &str> = PS_HEADERS.iter().copied().collect();
    out(&fmt.render(&rows, &headers)?);
    Ok(())
}

/// `hafen inspect` / `container inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a Go template or `json`.
    #[arg(short, long)]
    format: Option<String>,
    /// Display total file sizes.
    #[arg(short, long)]
    size: bool,
    /// Objects to inspect.
    #[arg(required = true)]
    names: Vec<String>,
}

/// `hafen container inspect`; with `images_too`, names that are no
/// container are looked up as images (the top-level `inspect`).
pub fn inspect(g: &Global, a: InspectArgs, images_too: bool) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let mut found = Vec::new();
    let mut failed = false;
    for name in &a.names {
        let r: Result<serde_json::Value, ClientError> = s.rt.block_on(s.client.get_json(&format!(
            "/containers/{}/json?size={}",
            encode(name),
            u8::from(a.size)
        )));
        match r {
            Ok(v) => found.push(v),
            Err(ClientError::Api { status: 404, .. }) if images_too => {
                match s.rt.block_on(
                    s.client
                        .get_json::<serde_json::Value>(&format!("/images/{}/json", encode(name))),
                ) {
                    Ok(v) => found.push(v),
                    Err(_) => {
                        eprintln!("Error: No such object: {name}");
                        failed = true;
                    }
                }
            }
            Err(ClientError::Api { status: 404, .. }) => {
                eprintln!("Error: No such container: {name}");
                failed = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
    match &a.format {
        Some(f) => {
            for v in &found {
                out(&format!("{}\n", format::render_one(f, v)?));
            }
        }
        None => {
            let text =
                super::images::reindent(&serde_json::to_string_pretty(&found).unwrap_or_default());
            out(&format!("{text}\n"));
        }
    }
    if failed {
        Err(CliError::Exit(1))
    } else {
        Ok(())
    }
}

/// docker's `DisplayablePorts`: `0.0.0.0:8080->80/tcp, 53/udp`, sorted.
fn displayable_ports(ports: &[serde_json::Value]) -> String {
    let mut items: Vec<(String, u64, u64, String)> = ports
        .iter()
        .map(|p| {
            let ip = p
                .get("IP")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            let private = p
                .get("PrivatePort")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            let public = p
                .get("PublicPort")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            let kind = p
                .get("Type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("tcp");
            (ip.to_string(), public, private, kind.to_string())
        })
        .collect();
    items.sort_by(|a, b| (a.2, &a.3, &a.0, a.1).cmp(&(b.2, &b.3, &b.0, b.1)));
    items
        .iter()
        .map(|(ip, public, private, kind)| {
            if *public == 0 {
                format!("{private}/{kind}")
            } else {
                format!("{ip}:{public}->{private}/{kind}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
