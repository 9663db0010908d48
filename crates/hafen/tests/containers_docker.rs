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
