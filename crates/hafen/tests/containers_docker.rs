//! The docker CLI 28 drives containers on a hafen daemon: run (output,
//! exit codes, piped stdin), run -d, logs, exec, stop, rm, as against
//! dockerd.
#![allow(clippy::unwrap_used)]

mod support;

use support::daemon::{DOCKER_28, Daemon};

fn docker(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let o = d.docker(DOCKER_28, args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn docker_stdin(d: &Daemon, args: &[&str], input: &[u8]) -> (i32, String) {
    use std::io::Write;
    d.start();
    let mut child = std::process::Command::new(DOCKER_28)
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn docker_run_gives_output_and_exit_codes() {
    let d = Daemon::new();
    d.busybox();
    let (code, out, _) = docker(
        &d,
        &["run", "--rm", "busybox", "sh", "-c", "echo out; exit 3"],
    );
    assert_eq!((code, out.as_str()), (3, "out\n"));
    let (code, _, err) = docker(&d, &["run", "--rm", "busybox", "nosuchcmd"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("executable file not found"), "{err}");
    let (code, _, _) = docker(&d, &["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(code, 126);
    let (code, _, err) = docker(&d, &["run", "--rm", "nosuchimage"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("Unable to find image 'nosuchimage:latest' locally"),
        "{err}"
    );
    let (code, out) = docker_stdin(&d, &["run", "-i", "--rm", "busybox", "cat"], b"piped\n");
    assert_eq!((code, out.as_str()), (0, "piped\n"));
    let (_, ps, _) = docker(&d, &["ps", "-aq"]);
    assert_eq!(ps, "", "--rm left containers");
}

#[test]
fn docker_run_detached_logs_exec_stop_and_rm() {
    let d = Daemon::new();
    d.busybox();
    let (code, id, err) = docker(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "svc",
            "busybox",
            "sh",
            "-c",
            "echo started; exec sleep 1000",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(id.trim().len(), 64);
    let (_, ps, _) = docker(&d, &["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps, "svc running\n");
    let mut logs = String::new();
    for _ in 0..100 {
        logs = docker(&d, &["logs", "svc"]).1;
        if !logs.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(logs, "started\n");
    let (code, out, _) = docker(&d, &["exec", "svc", "sh", "-c", "echo in-exec; exit 4"]);
    assert_eq!((code, out.as_str()), (4, "in-exec\n"));
    let (code, _, err) = docker(&d, &["rm", "svc"]);
    assert_eq!(code, 1);
    assert!(err.contains("container is running"), "{err}");
    let (code, _, _) = docker(&d, &["stop", "-t", "1", "svc"]);
    assert_eq!(code, 0);
    let (_, state, _) = docker(
        &d,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "svc",
        ],
    );
    assert_eq!(state, "exited 137\n");
    let (code, _, _) = docker(&d, &["rm", "svc"]);
    assert_eq!(code, 0);
    let (_, ps, _) = docker(&d, &["ps", "-aq"]);
    assert_eq!(ps, "");
}

// What follows: the rest of the docker CLI's container commands (start -a,
// wait, inspect and ps as hafen's CLI prints them, logs -f, kill, pause,
// restart, exec's options, a terminal, volumes with containers), each
// ending with a check that nothing of the daemon's containers is left.

/// How a command ended and what it printed.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// No command may take longer (a hang fails the test).
const LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs a command (with `input` on stdin, or none), killing it after
/// [`LIMIT`].
fn timed(mut cmd: std::process::Command, input: Option<Vec<u8>>) -> Out {
    use std::io::Write;
    use std::process::Stdio;
    let what = format!("{cmd:?}");
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(out) => {
            let out = out.unwrap();
            Out {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .status();
            panic!("{what} did not end within {LIMIT:?}");
        }
    }
}

/// The docker CLI 28 for this daemon.
fn dk_cmd(d: &Daemon, args: &[&str]) -> std::process::Command {
    d.start();
    let mut c = std::process::Command::new(DOCKER_28);
    c.args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .env_remove("DOCKER_API_VERSION");
    c
}

/// `docker <args>`.
fn dk(d: &Daemon, args: &[&str]) -> Out {
    timed(dk_cmd(d, args), None)
}

/// `docker <args>` that must succeed; its stdout.
fn dk_ok(d: &Daemon, args: &[&str]) -> String {
    let o = dk(d, args);
    assert_eq!(o.code, 0, "docker {args:?} failed: {o:?}");
    o.stdout
}

/// `hafen <args>` that must succeed; its stdout.
fn hafen_ok(d: &Daemon, args: &[&str]) -> String {
    let o = timed(d.cmd(args), None);
    assert_eq!(o.code, 0, "hafen {args:?} failed: {o:?}");
    o.stdout
}

/// `docker inspect -f <format> <name>`, trimmed.
fn dk_inspect(d: &Daemon, format: &str, name: &str) -> String {
    dk_ok(d, &["inspect", "-f", format, name])
        .trim()
        .to_string()
}

/// Waits (up to a minute) for `f` to hold.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(60) {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A daemon with `busybox:latest`.
fn busybox_daemon() -> Daemon {
    let d = Daemon::new();
    d.busybox();
    d
}

/// Whether a hafen-shim with this pid runs.
fn shim_alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
        && std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "hafen-shim")
}

/// Ends a test: the daemon goes (its Drop removes the containers), and then
/// no shim, cgroup or mount of its containers may be left.
fn finish(d: Daemon) {
    let list = |dir: std::path::PathBuf| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let mut ids: Vec<String> = list(d.root().join("containers"))
        .into_iter()
        .chain(list(d.run_root().join("containers")))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids.dedup();
    let shims: Vec<i32> = list(d.run_root().join("containers"))
        .into_iter()
        .filter_map(|p| {
            std::fs::read_to_string(p.join("shim.pid"))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .collect();
    let dir = d.dir.path().display().to_string();
    drop(d);
    for pid in shims {
        wait_for("the shims to end", || !shim_alive(pid));
    }
    for id in &ids {
        assert_eq!(
            support::cgroup_dirs_named(id),
            Vec::<std::path::PathBuf>::new(),
            "cgroups of {id} are left"
        );
    }
    assert_eq!(
        support::mounts_containing(&dir),
        Vec::<String>::new(),
        "mounts are left"
    );
}

#[test]
fn docker_create_start_attach_wait_inspect_and_ps_as_hafen_prints_them() {
    let d = busybox_daemon();
    let id = dk_ok(
        &d,
        &[
            "create",
            "--name",
            "job",
            "-l",
            "tier=batch",
            "-e",
            "K=v",
            "busybox",
            "sh",
            "-c",
            "echo to-out; echo to-err >&2; exit 3",
        ],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(dk_inspect(&d, "{{.State.Status}}", "job"), "created");
    let o = dk(&d, &["start", "-a", "job"]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (3, "to-out\n", "to-err\n")
    );
    assert_eq!(dk_ok(&d, &["wait", "job"]), "3\n");
    // start -ai with piped stdin.
    dk_ok(&d, &["create", "-i", "--name", "cat", "busybox", "cat"]);
    let o = timed(
        dk_cmd(&d, &["start", "-ai", "cat"]),
        Some(b"via start\n".to_vec()),
    );
    assert_eq!((o.code, o.stdout.as_str()), (0, "via start\n"), "{o:?}");
    dk_ok(
        &d,
        &["run", "-d", "--name", "up", "busybox", "sleep", "1000"],
    );

    // inspect: both CLIs print the daemon's document the same way.
    for name in ["job", "up"] {
        let docker = dk_ok(&d, &["inspect", name]);
        assert_eq!(docker, hafen_ok(&d, &["inspect", name]), "inspect {name}");
        let v: serde_json::Value = serde_json::from_str(&docker).unwrap();
        assert_eq!(v[0]["Name"], format!("/{name}"));
    }
    let v: serde_json::Value = serde_json::from_str(&dk_ok(&d, &["inspect", "job"])).unwrap();
    let v = &v[0];
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(
        v["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "echo to-out; echo to-err >&2; exit 3"])
    );
    assert_eq!(v["Config"]["Labels"]["tier"], "batch");
    assert_eq!(v["Config"]["Env"], serde_json::json!(["K=v"]));
    assert_eq!(v["HostConfig"]["NetworkMode"], "bridge");
    assert_eq!(v["Mounts"], serde_json::json!([]));

    // ps: the same lines from both CLIs (no times: they move).
    let format = "{{.ID}} {{.Image}} {{.Command}} {{.Names}} {{.State}} {{.Labels}}";
    for args in [
        vec!["ps", "--format", format],
        vec!["ps", "-a", "--format", format],
        vec!["ps", "-a", "--filter", "status=exited", "--format", format],
        vec![
            "ps",
            "-a",
            "--filter",
            "label=tier=batch",
            "--format",
            format,
        ],
        vec!["ps", "-a", "--filter", "name=up", "-q"],
        vec!["ps", "-aq", "--no-trunc"],
    ] {
        assert_eq!(dk_ok(&d, &args), hafen_ok(&d, &args), "{args:?}");
    }
    assert_eq!(
        dk_ok(&d, &["ps", "--format", "{{.Names}} {{.State}}"]),
        "up running\n"
    );
    let mut exited: Vec<String> = dk_ok(
        &d,
        &[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}}",
        ],
    )
    .lines()
    .map(String::from)
    .collect();
    exited.sort();
    assert_eq!(exited, ["cat", "job"]);
    assert_eq!(
        dk_ok(
            &d,
            &[
                "ps",
                "-a",
                "--filter",
                "label=tier=batch",
                "--format",
                "{{.Names}}"
            ]
        ),
        "job\n"
    );
    let o = dk(&d, &["start", "-a", "nosuch"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("No such container: nosuch"), "{o:?}");
    finish(d);
}

#[test]
fn docker_logs_follow_tail_and_timestamps() {
    let d = busybox_daemon();
    dk_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "talker",
            "busybox",
            "sh",
            "-c",
            "echo one; echo oops >&2; sleep 1; echo two; sleep 1; echo three",
        ],
    );
    assert_eq!(dk_inspect(&d, "{{.State.Status}}", "talker"), "running");
    // -f ends when the container does, with everything it printed.
    let o = dk(&d, &["logs", "-f", "talker"]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "one\ntwo\nthree\n", "oops\n")
    );
    assert_eq!(dk_inspect(&d, "{{.State.Status}}", "talker"), "exited");
    let o = dk(&d, &["logs", "--tail", "2", "talker"]);
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("two\nthree\n", ""));
    let o = dk(&d, &["logs", "-t", "talker"]);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{o:?}");
    for (line, text) in lines.iter().zip(["one", "two", "three"]) {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, text);
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{line}");
    }
    // The same bytes as hafen's logs.
    let h = timed(d.cmd(&["logs", "-t", "talker"]), None);
    assert_eq!((h.stdout, h.stderr), (o.stdout, o.stderr));
    let o = dk(&d, &["logs", "nosuch"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("No such container: nosuch"), "{o:?}");
    finish(d);
}

#[test]
fn docker_kill_pause_restart_and_exec_options() {
    let d = busybox_daemon();
    dk_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "svc",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 9' USR1; echo ready; while true; do sleep 0.1; done",
        ],
    );
    wait_for("the trap", || dk(&d, &["logs", "svc"]).stdout == "ready\n");
    assert_eq!(dk_ok(&d, &["pause", "svc"]), "svc\n");
    assert_eq!(
        dk_inspect(&d, "{{.State.Status}} {{.State.Paused}}", "svc"),
        "paused true"
    );
    let o = dk(&d, &["exec", "svc", "true"]);
    assert_ne!(o.code, 0, "exec into a paused container: {o:?}");
    assert!(o.stderr.contains("paused"), "{o:?}");
    assert_eq!(dk_ok(&d, &["unpause", "svc"]), "svc\n");
    assert_eq!(dk_inspect(&d, "{{.State.Status}}", "svc"), "running");

    // exec: environment, directory, user, stdin, exit code, detached.
    assert_eq!(
        dk_ok(
            &d,
            &[
                "exec",
                "-e",
                "X=1",
                "-w",
                "/tmp",
                "-u",
                "1000:1000",
                "svc",
                "sh",
                "-c",
                "echo $X; pwd; id",
            ]
        ),
        "1\n/tmp\nuid=1000(user) gid=1000(user)\n"
    );
    let o = timed(
        dk_cmd(&d, &["exec", "-i", "svc", "cat"]),
        Some(b"into exec\n".to_vec()),
    );
    assert_eq!((o.code, o.stdout.as_str()), (0, "into exec\n"), "{o:?}");
    assert_eq!(
        dk_ok(&d, &["exec", "-d", "svc", "sh", "-c", "echo bg > /tmp/bg"]),
        ""
    );
    wait_for("the detached exec", || {
        dk(&d, &["exec", "svc", "cat", "/tmp/bg"]).stdout == "bg\n"
    });

    // kill -s reaches the trap.
    assert_eq!(dk_ok(&d, &["kill", "-s", "USR1", "svc"]), "svc\n");
    assert_eq!(dk_ok(&d, &["wait", "svc"]), "9\n");
    let o = dk(&d, &["exec", "svc", "true"]);
    assert_eq!(o.code, 1, "exec into a stopped container: {o:?}");
    assert!(o.stderr.contains("is not running"), "{o:?}");
    let o = dk(&d, &["kill", "svc"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("is not running"), "{o:?}");

    // restart: a new process, running.
    let before = dk_inspect(&d, "{{.State.StartedAt}}", "svc");
    assert_eq!(dk_ok(&d, &["restart", "-t", "1", "svc"]), "svc\n");
    assert_eq!(dk_inspect(&d, "{{.State.Status}}", "svc"), "running");
    assert_ne!(dk_inspect(&d, "{{.State.StartedAt}}", "svc"), before);
    assert_eq!(dk_ok(&d, &["rm", "-f", "svc"]), "svc\n");
    assert_eq!(dk_ok(&d, &["ps", "-aq"]), "");
    finish(d);
}

#[test]
fn docker_run_with_a_terminal() {
    let d = busybox_daemon();
    // -t without -i: the container's output comes from a terminal.
    let o = dk(
        &d,
        &[
            "run",
            "-t",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "test -t 1 && echo terminal; exit 4",
        ],
    );
    assert_eq!((o.code, o.stdout.as_str()), (4, "terminal\r\n"), "{o:?}");
    // -it in a terminal of its own (script from util-linux makes one).
    let line = format!(
        "DOCKER_HOST=unix://{} DOCKER_CONFIG={} {DOCKER_28} run -it --rm busybox sh -c 'test -t 0 && read x && echo got $x; exit 6'",
        d.socket().display(),
        d.dir.path().join("docker-config").display()
    );
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    let o = timed(script, Some(b"typed\n".to_vec()));
    assert_eq!(o.code, 6, "{o:?}");
    assert!(o.stdout.contains("got typed\r\n"), "{o:?}");
    assert_eq!(dk_ok(&d, &["ps", "-aq"]), "");
    finish(d);
}

#[test]
fn docker_volume_commands_with_containers() {
    let d = busybox_daemon();
    assert_eq!(dk_ok(&d, &["volume", "create", "data"]), "data\n");
    dk_ok(
        &d,
        &[
            "run",
            "--name",
            "writer",
            "-v",
            "data:/data",
            "busybox",
            "sh",
            "-c",
            "echo kept > /data/f",
        ],
    );
    let mountpoint = dk_ok(&d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]);
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(mountpoint.trim()).join("f")).unwrap(),
        "kept\n"
    );
    assert_eq!(
        dk_ok(
            &d,
            &["inspect", "-f", "{{(index .Mounts 0).Source}}", "writer"]
        ),
        mountpoint
    );
    assert_eq!(
        dk_ok(
            &d,
            &["run", "--rm", "-v", "data:/d:ro", "busybox", "cat", "/d/f"]
        ),
        "kept\n"
    );
    // In use by a container: refused, and the volume stays.
    let o = dk(&d, &["volume", "rm", "data"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("volume is in use"), "{o:?}");
    assert_eq!(dk_ok(&d, &["volume", "ls", "-q"]), "data\n");
    assert_eq!(
        dk_ok(&d, &["volume", "ls", "-q", "--filter", "dangling=false"]),
        "data\n"
    );
    dk_ok(&d, &["rm", "writer"]);
    assert_eq!(
        dk_ok(&d, &["volume", "ls", "-q", "--filter", "dangling=true"]),
        "data\n"
    );
    assert_eq!(dk_ok(&d, &["volume", "rm", "data"]), "data\n");

    // Anonymous volumes: removed with rm -v and with --rm.
    dk_ok(
        &d,
        &["run", "--name", "anon", "-v", "/scratch", "busybox", "true"],
    );
    let name = dk_inspect(&d, "{{(index .Mounts 0).Name}}", "anon");
    assert_eq!(dk_ok(&d, &["volume", "ls", "-q"]), format!("{name}\n"));
    dk_ok(&d, &["rm", "-v", "anon"]);
    assert_eq!(dk_ok(&d, &["volume", "ls", "-q"]), "");
    dk_ok(&d, &["run", "--rm", "-v", "/scratch", "busybox", "true"]);
    assert_eq!(dk_ok(&d, &["volume", "ls", "-q"]), "");
    // prune takes unused anonymous volumes (and named ones with -a).
    dk_ok(
        &d,
        &["run", "--name", "keep", "-v", "/scratch", "busybox", "true"],
    );
    dk_ok(&d, &["rm", "keep"]);
    dk_ok(&d, &["volume", "create", "named"]);
    dk_ok(&d, &["volume", "prune", "-f"]);
    assert_eq!(dk_ok(&d, &["volume", "ls", "-q"]), "named\n");
    dk_ok(&d, &["volume", "prune", "-a", "-f"]);
    assert_eq!(dk_ok(&d, &["volume", "ls", "-q"]), "");
    finish(d);
}

#[test]
fn docker_exec_of_a_program_that_cannot_start_fails_as_with_dockerd() {
    let d = busybox_daemon();
    dk_ok(
        &d,
        &["run", "-d", "--name", "svc", "busybox", "sleep", "1000"],
    );
    // dockerd upgrades the connection first and writes the error into the
    // stream; the exit code (126, or 127 for a missing program) comes from
    // the exec's inspect. The CLI prints the error and ends with it.
    for (program, what, codes) in [
        ("nosuchcmd", "executable file not found", [126, 127]),
        ("/etc/passwd", "permission denied", [126, 126]),
    ] {
        let o = dk(&d, &["exec", "svc", program]);
        assert!(codes.contains(&o.code), "docker exec {program}: {o:?}");
        assert!(
            o.stdout.contains(what) || o.stderr.contains(what),
            "docker exec {program}: {o:?}"
        );
    }
    assert_eq!(dk_inspect(&d, "{{.State.Status}}", "svc"), "running");
    finish(d);
}
