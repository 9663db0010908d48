//! The container commands of the `hafen` CLI, each test with its own
//! private daemon and the tests' busybox image: what containers print and
//! how they end (exit codes as docker's), the options of `run` as the
//! container sees them, the lifecycle commands, logs, exec, volumes,
//! restart policies, healthchecks, and containers that outlive the daemon
//! (a `kill -9`, a simulated reboot). Nothing may be left behind: shims,
//! cgroups and mounts are checked when containers go and when a test ends.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::Daemon;

/// Command-line arguments: the words of the first string, then each
/// further argument as one word (`words!("run --rm busybox sh -c", "echo
/// a b")`).
macro_rules! words {
    ($words:expr $(, $one:expr)* $(,)?) => {
        $words
            .split_whitespace()
            .chain([$(AsRef::<str>::as_ref($one)),*])
            .collect::<Vec<&str>>()
    };
}

/// No command may take longer (a hang fails the test instead of blocking
/// the suite).
const LIMIT: Duration = Duration::from_secs(120);

/// How a command ended and what it printed.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs a command (with `input` on stdin, or none) and kills it if it does
/// not end within [`LIMIT`].
fn timed(mut cmd: Command, input: Option<Vec<u8>>) -> Out {
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
    let (tx, rx) = mpsc::channel();
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
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{what} did not end within {LIMIT:?}");
        }
    }
}

/// `hafen <args>`.
fn h(d: &Daemon, args: &[&str]) -> Out {
    timed(d.cmd(args), None)
}

/// `hafen <args>` with `input` on stdin.
fn h_in(d: &Daemon, args: &[&str], input: &[u8]) -> Out {
    timed(d.cmd(args), Some(input.to_vec()))
}

/// `hafen <args>` that must succeed; its stdout.
fn ok(d: &Daemon, args: &[&str]) -> String {
    let o = h(d, args);
    assert_eq!(o.code, 0, "hafen {args:?} failed: {o:?}");
    o.stdout
}

/// `hafen <args>` that must end with `code`; its stderr.
fn fails(d: &Daemon, args: &[&str], code: i32) -> String {
    let o = h(d, args);
    assert_eq!(o.code, code, "hafen {args:?} should end with {code}: {o:?}");
    o.stderr
}

/// `inspect -f <format> <name>`, trimmed.
fn inspect(d: &Daemon, format: &str, name: &str) -> String {
    ok(d, &words!("inspect -f", format, name))
        .trim()
        .to_string()
}

/// `inspect <name>` as JSON (the first element).
fn inspect_json(d: &Daemon, name: &str) -> Value {
    let v: Value = serde_json::from_str(&ok(d, &words!("inspect", name))).unwrap();
    v[0].clone()
}

/// Waits until a container's log has `line` (a shell printing it after
/// setting its traps is ready for signals).
fn wait_log(d: &Daemon, name: &str, line: &str) {
    wait_for(&format!("{line:?} in the log of {name}"), || {
        h(d, &words!("logs", name))
            .stdout
            .lines()
            .any(|l| l == line)
    });
}

/// A daemon with `busybox:latest`.
fn setup() -> Daemon {
    let d = Daemon::new();
    d.busybox();
    d
}

/// Waits (up to a minute) for `f` to hold.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The full ID of a container.
fn id_of(d: &Daemon, name: &str) -> String {
    inspect(d, "{{.Id}}", name)
}

/// The containers' record directories (`<root>/containers/*`).
fn container_dirs(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.root().join("containers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The shim's pid of a running container.
fn shim_pid(d: &Daemon, id: &str) -> Option<i32> {
    std::fs::read_to_string(d.run_root().join("containers").join(id).join("shim.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Every shim pid the run root knows.
fn all_shim_pids(d: &Daemon) -> Vec<i32> {
    std::fs::read_dir(d.run_root().join("containers"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    std::fs::read_to_string(e.path().join("shim.pid"))
                        .ok()?
                        .trim()
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a process runs (exists and is no zombie).
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// Whether a hafen-shim process with this pid runs.
fn shim_alive(pid: i32) -> bool {
    alive(pid)
        && std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "hafen-shim")
}

/// Nothing of a removed container is left: no record, no state directory,
/// no shim, no cgroup, no mount.
fn assert_gone(d: &Daemon, id: &str, shim: Option<i32>) {
    assert!(
        !d.root().join("containers").join(id).exists(),
        "the record of {id} is left"
    );
    assert!(
        !d.run_root().join("containers").join(id).exists(),
        "the state directory of {id} is left"
    );
    if let Some(pid) = shim {
        wait_for("the shim to end", || !shim_alive(pid));
    }
    assert_eq!(
        support::cgroup_dirs_named(id),
        Vec::<PathBuf>::new(),
        "cgroups of {id} are left"
    );
    assert_eq!(
        support::mounts_containing(id),
        Vec::<String>::new(),
        "mounts of {id} are left"
    );
}

/// Ends a test: the daemon goes (its Drop removes the containers), and
/// then no shim, cgroup or mount of its containers may be left.
fn finish(d: Daemon) {
    let mut ids = container_dirs(&d);
    ids.extend(
        std::fs::read_dir(d.run_root().join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );
    ids.sort();
    ids.dedup();
    let shims = all_shim_pids(&d);
    let dir = d.dir.path().display().to_string();
    drop(d);
    for pid in shims {
        wait_for("the shims to end", || !shim_alive(pid));
    }
    for id in &ids {
        assert_eq!(
            support::cgroup_dirs_named(id),
            Vec::<PathBuf>::new(),
            "cgroups of {id} are left"
        );
    }
    assert_eq!(
        support::mounts_containing(&dir),
        Vec::<String>::new(),
        "mounts are left"
    );
}

/// One line of `/proc/self/status` in a container (`CapEff`, `Seccomp`, …).
fn status_field(d: &Daemon, opts: &[&str], field: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&words!("busybox cat /proc/self/status"));
    let out = ok(d, &args);
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {out}"))
        .trim()
        .to_string()
}

/// Docker's default capability set (CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
/// KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT,
/// MKNOD, AUDIT_WRITE, SETFCAP).
const DOCKER_CAPS: &str = "00000000a80425fb";

// ---------------------------------------------------------------- run

#[test]
fn run_prints_the_output_and_ends_with_the_container_s_exit_code() {
    let d = setup();
    let o = h(&d, &words!("run --rm busybox echo hello world"));
    assert_eq!((o.code, o.stdout.as_str()), (0, "hello world\n"), "{o:?}");
    assert_eq!(h(&d, &words!("run --rm busybox sh -c", "exit 7")).code, 7);
    // Output on both streams, kept apart.
    let o = h(
        &d,
        &words!("run --rm busybox sh -c", "echo out; echo err >&2; exit 3"),
    );
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    // The image's CMD (sh) runs when no command is given; with stdin
    // closed it ends at once.
    assert_eq!(h(&d, &words!("run --rm busybox")).code, 0);
    assert_eq!(ok(&d, &words!("ps -aq")), "");
    finish(d);
}

#[test]
fn run_fails_with_125_126_127_as_docker_and_leaves_nothing() {
    let d = setup();
    let store = d.store_files();

    let err = fails(&d, &words!("run --rm nosuch"), 125);
    assert!(
        err.contains("Unable to find image 'nosuch:latest' locally"),
        "{err}"
    );
    let err = fails(&d, &words!("run nosuch:v2 true"), 125);
    assert!(
        err.contains("Unable to find image 'nosuch:v2' locally"),
        "{err}"
    );

    let err = fails(&d, &words!("run --rm busybox nosuchcmd"), 127);
    assert!(err.contains("nosuchcmd"), "{err}");
    assert!(err.contains("executable file not found"), "{err}");
    let err = fails(&d, &words!("run --rm busybox /etc/passwd"), 126);
    assert!(err.contains("permission denied"), "{err}");

    assert_eq!(
        ok(&d, &words!("ps -aq")),
        "",
        "--rm removed the failed ones"
    );
    assert_eq!(container_dirs(&d), Vec::<String>::new());
    assert_eq!(d.store_files(), store, "no snapshot is left");

    // Without --rm the container stays, as created, with the error.
    fails(&d, &words!("run --name bad busybox nosuchcmd"), 127);
    let v = inspect_json(&d, "bad");
    assert_eq!(v["State"]["Status"], "created", "{v}");
    assert_eq!(v["State"]["ExitCode"], 127, "{v}");
    assert!(
        v["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("executable file not found"),
        "{v}"
    );
    finish(d);
}

#[test]
fn run_rm_leaves_no_container_snapshot_volume_shim_cgroup_or_mount() {
    let d = setup();
    let store = d.store_files();
    let cid = d.dir.path().join("cid");
    let o = h(
        &d,
        &words!(
            "run --rm --cidfile",
            cid.to_str().unwrap(),
            "-v",
            "/anon",
            "busybox",
            "sh",
            "-c",
            "echo data > /anon/f; touch /inroot; echo done"
        ),
    );
    assert_eq!((o.code, o.stdout.as_str()), (0, "done\n"), "{o:?}");
    let id = std::fs::read_to_string(&cid).unwrap();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(ok(&d, &words!("ps -aq")), "");
    assert_eq!(container_dirs(&d), Vec::<String>::new());
    assert_eq!(d.store_files(), store, "the snapshot is gone");
    assert_eq!(
        ok(&d, &words!("volume ls -q")),
        "",
        "--rm removes anonymous volumes"
    );
    assert_gone(&d, &id, None);
    finish(d);
}

#[test]
fn run_detached_prints_the_id_and_the_container_is_up() {
    let d = setup();
    let out = ok(&d, &words!("run -d --name bg busybox sleep 1000"));
    let id = out.trim();
    assert_eq!(out.len(), 65, "{out:?}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    assert_eq!(ok(&d, &words!("ps -q")), format!("{}\n", &id[..12]));
    let status = ok(&d, &words!("ps --format", "{{.Names}} {{.Status}}"));
    assert!(status.starts_with("bg Up "), "{status}");
    let ps = ok(&d, &["ps"]);
    let line = ps.lines().nth(1).unwrap();
    assert!(line.starts_with(&id[..12]), "{ps}");
    assert!(line.contains("\"sleep 1000\""), "{ps}");
    assert!(line.trim_end().ends_with("bg"), "{ps}");

    let v = inspect_json(&d, "bg");
    assert_eq!(v["State"]["Status"], "running");
    assert_eq!(v["State"]["Running"], true);
    let pid = v["State"]["Pid"].as_i64().unwrap() as i32;
    assert!(alive(pid), "the container's process {pid} runs");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap(),
        "sleep\x001000\x00"
    );
    let shim = shim_pid(&d, id).expect("a shim");
    assert!(shim_alive(shim), "the shim runs");
    // The container is in its own cgroup.
    assert!(!support::cgroup_dirs_named(id).is_empty());

    assert_eq!(ok(&d, &words!("rm -f bg")), "bg\n");
    assert!(
        !alive(pid) || {
            wait_for("the container's process to end", || !alive(pid));
            true
        }
    );
    assert_gone(&d, id, Some(shim));
    finish(d);
}

#[test]
fn run_interactive_passes_piped_stdin_through() {
    let d = setup();
    let o = h_in(&d, &words!("run -i --rm busybox cat"), b"hi\n");
    assert_eq!((o.code, o.stdout.as_str()), (0, "hi\n"), "{o:?}");
    // A larger input, to its end (cat ends at EOF).
    let big: String = (0..20000).map(|i| format!("line {i}\n")).collect();
    let o = h_in(&d, &words!("run -i --rm busybox wc -l"), big.as_bytes());
    assert_eq!((o.code, o.stdout.trim()), (0, "20000"), "{o:?}");
    let o = h_in(&d, &words!("run -i --rm busybox cat"), big.as_bytes());
    assert_eq!(o.code, 0);
    assert!(
        o.stdout == big,
        "cat returned {} bytes of {}",
        o.stdout.len(),
        big.len()
    );
    // The exit code still comes through.
    let o = h_in(
        &d,
        &words!("run -i --rm busybox sh -c", "read x; exit $x"),
        b"9\n",
    );
    assert_eq!(o.code, 9, "{o:?}");
    // Without -i the container's stdin is empty.
    let o = h_in(&d, &words!("run --rm busybox cat"), b"lost\n");
    assert_eq!((o.code, o.stdout.as_str()), (0, ""), "{o:?}");
    finish(d);
}

#[test]
fn run_sets_environment_workdir_user_entrypoint_and_hostname() {
    let d = setup();
    let env_file = d.dir.path().join("env.list");
    std::fs::write(
        &env_file,
        "# a comment\nFROM_FILE=one\n\nSPACED=two words\nPASSED\n",
    )
    .unwrap();
    let o = timed(
        {
            let mut c = d.cmd(&words!(
                "run --rm -e FOO=bar -e FROM_FILE=overridden --env-file",
                env_file.to_str().unwrap(),
                "busybox",
                "env"
            ));
            c.env("PASSED", "from-the-caller");
            c
        },
        None,
    );
    assert_eq!(o.code, 0, "{o:?}");
    let env: Vec<&str> = o.stdout.lines().collect();
    assert!(env.contains(&"FOO=bar"), "{env:?}");
    assert!(env.contains(&"SPACED=two words"), "{env:?}");
    assert!(env.contains(&"PASSED=from-the-caller"), "{env:?}");
    assert!(
        env.contains(&"FROM_FILE=one") || env.contains(&"FROM_FILE=overridden"),
        "{env:?}"
    );
    assert!(
        env.iter().any(|e| e.starts_with("PATH=/usr/local/sbin:")),
        "the default PATH: {env:?}"
    );
    assert!(env.contains(&"HOME=/root"), "{env:?}");

    assert_eq!(
        ok(&d, &words!("run --rm -w /tmp busybox sh -c", "pwd")),
        "/tmp\n"
    );
    // A working directory that does not exist is made.
    assert_eq!(
        ok(&d, &words!("run --rm -w /new/dir busybox sh -c", "pwd")),
        "/new/dir\n"
    );
    assert_eq!(
        ok(&d, &words!("run --rm -u 1000:1000 busybox id")),
        "uid=1000(user) gid=1000(user)\n"
    );
    assert_eq!(ok(&d, &words!("run --rm -u user busybox id -u")), "1000\n");
    assert_eq!(
        ok(&d, &words!("run --rm busybox id -u")),
        "0\n",
        "root by default"
    );
    assert_eq!(
        ok(&d, &words!("run --rm --entrypoint echo busybox hi there")),
        "hi there\n"
    );
    assert_eq!(
        ok(&d, &words!("run --rm --entrypoint hostname busybox")).len(),
        13,
        "--entrypoint without a command drops the image's CMD"
    );
    assert_eq!(
        ok(&d, &words!("run --rm -h myhost busybox hostname")),
        "myhost\n"
    );
    assert_eq!(
        ok(
            &d,
            &words!("run --rm --hostname other busybox cat /etc/hostname")
        ),
        "other\n"
    );
    finish(d);
}

#[test]
fn read_only_root_filesystem_refuses_writes() {
    let d = setup();
    let o = h(&d, &words!("run --rm --read-only busybox touch /x"));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    // Mounts on top stay writable.
    assert_eq!(
        ok(
            &d,
            &words!(
                "run --rm --read-only --tmpfs /w busybox sh -c",
                "touch /w/x && echo ok"
            )
        ),
        "ok\n"
    );
    // Without it the root filesystem is writable.
    assert_eq!(
        ok(&d, &words!("run --rm busybox sh -c", "touch /x && echo ok")),
        "ok\n"
    );
    finish(d);
}

#[test]
fn a_name_in_use_is_refused_as_docker_does_and_nothing_is_half_created() {
    let d = setup();
    let id = ok(&d, &words!("create --name web busybox true"));
    let id = id.trim();
    assert_eq!(inspect(&d, "{{.Name}}", "web"), "/web");
    let dirs = container_dirs(&d);
    let store = d.store_files();
    let volumes = ok(&d, &words!("volume ls -q"));

    let err = fails(
        &d,
        &words!("run --name web -v /anon -v newvol:/n busybox true"),
        125,
    );
    assert!(
        err.contains(&format!(
            "Conflict. The container name \"/web\" is already in use by container \"{id}\". \
             You have to remove (or rename) that container to be able to reuse that name."
        )),
        "{err}"
    );
    let err = fails(&d, &words!("create --name /web busybox true"), 125);
    assert!(err.contains("is already in use"), "{err}");
    assert_eq!(ok(&d, &words!("ps -aq --no-trunc")), format!("{id}\n"));
    assert_eq!(container_dirs(&d), dirs);
    assert_eq!(d.store_files(), store);
    assert_eq!(
        ok(&d, &words!("volume ls -q")),
        volumes,
        "a refused create makes no volumes"
    );

    let err = fails(
        &d,
        &words!("run --name", "bad name!", "busybox", "true"),
        125,
    );
    assert!(err.contains("Invalid container name"), "{err}");
    assert_eq!(container_dirs(&d), dirs);

    // The name is free again once the container is gone.
    ok(&d, &words!("rm web"));
    ok(&d, &words!("run --rm --name web busybox true"));
    finish(d);
}

#[test]
fn labels_show_in_inspect_and_select_in_ps() {
    let d = setup();
    let file = d.dir.path().join("labels");
    std::fs::write(&file, "from.file=yes\n").unwrap();
    ok(
        &d,
        &words!(
            "create --name lab -l tier=db --label flag --label-file",
            file.to_str().unwrap(),
            "busybox",
            "true"
        ),
    );
    ok(&d, &words!("create --name other -l tier=web busybox true"));
    let labels: Value =
        serde_json::from_str(&inspect(&d, "{{json .Config.Labels}}", "lab")).unwrap();
    assert_eq!(
        labels,
        serde_json::json!({"tier": "db", "flag": "", "from.file": "yes"})
    );
    let names = |filter: &str| {
        ok(
            &d,
            &words!("ps -a --filter", filter, "--format", "{{.Names}}"),
        )
    };
    assert_eq!(names("label=tier=db"), "lab\n");
    assert_eq!(names("label=flag"), "lab\n");
    assert_eq!(names("label=tier=web"), "other\n");
    assert_eq!(names("label=nosuch"), "");
    let mut both: Vec<String> = names("label=tier").lines().map(String::from).collect();
    both.sort();
    assert_eq!(both, ["lab", "other"]);
    finish(d);
}

#[test]
fn init_runs_as_pid_1_and_passes_the_exit_code() {
    if std::env::var_os("HAFEN_SHIM").is_none() {
        eprintln!(
            "note: --init not tested: it needs a static hafen-shim in $HAFEN_SHIM (scripts/test.sh builds one)"
        );
        return;
    }
    let d = setup();
    let o = h(&d, &words!("run --rm --init busybox ps -o pid,args"));
    assert_eq!(o.code, 0, "{o:?}");
    let pid1 = o
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_else(|| panic!("no pid 1 in {}", o.stdout));
    assert!(pid1.contains("hafen-init"), "{}", o.stdout);
    assert!(
        o.stdout
            .lines()
            .any(|l| l.contains(" ps -o pid,args") && l.split_whitespace().next() != Some("1")),
        "{}",
        o.stdout
    );
    assert_eq!(
        h(&d, &words!("run --rm --init busybox sh -c", "exit 5")).code,
        5
    );
    // The init forwards stop's SIGTERM to the shell (which, not being PID
    // 1, dies of it): 143, not 137 after the timeout.
    ok(
        &d,
        &words!("run -d --init --name in busybox sh -c", "sleep 1000"),
    );
    assert_eq!(inspect(&d, "{{.HostConfig.Init}}", "in"), "true");
    ok(&d, &words!("stop -t 30 in"));
    assert_eq!(inspect(&d, "{{.State.ExitCode}}", "in"), "143");
    finish(d);
}

// ---------------------------------------------------------------- security

#[test]
fn capabilities_are_docker_s_defaults_changed_by_cap_add_and_cap_drop() {
    let d = setup();
    assert_eq!(status_field(&d, &[], "CapEff"), DOCKER_CAPS);
    assert_eq!(status_field(&d, &[], "CapBnd"), DOCKER_CAPS);
    assert_eq!(
        status_field(&d, &words!("--cap-drop ALL --cap-add NET_ADMIN"), "CapEff"),
        support::cap_mask(&[12])
    );
    assert_eq!(
        status_field(&d, &words!("--cap-drop ALL"), "CapBnd"),
        "0000000000000000"
    );
    // CHOWN is bit 0; SYS_ADMIN (21) joins.
    assert_eq!(
        status_field(
            &d,
            &words!("--cap-drop chown --cap-add CAP_SYS_ADMIN"),
            "CapEff"
        ),
        "00000000a82425fa"
    );
    // The effect: without CHOWN, chown fails.
    let o = h(
        &d,
        &words!(
            "run --rm --cap-drop CHOWN busybox sh -c",
            "touch /f && chown 1000 /f"
        ),
    );
    assert_ne!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains("Operation not permitted"), "{o:?}");
    // A user other than root has none in effect.
    assert_eq!(
        status_field(&d, &words!("-u 1000"), "CapEff"),
        "0000000000000000"
    );
    let err = fails(
        &d,
        &words!("run --rm --cap-add NO_SUCH_CAP busybox true"),
        125,
    );
    assert!(err.contains("NO_SUCH_CAP"), "{err}");
    assert_eq!(ok(&d, &words!("ps -aq")), "");
    finish(d);
}

#[test]
fn privileged_gets_every_capability_of_the_host_and_no_seccomp() {
    let d = setup();
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bounding = host
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    let o = h(
        &d,
        &words!("run --rm --privileged busybox cat /proc/self/status"),
    );
    assert_eq!(o.code, 0, "--privileged fails: {o:?}");
    let field = |f: &str| {
        o.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{f}:")))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(field("CapEff"), host_bounding);
    assert_eq!(field("Seccomp"), "0");
    // The host's devices are there.
    let o = h(&d, &words!("run --rm --privileged busybox ls /dev"));
    assert!(o.stdout.lines().any(|l| l == "kmsg"), "{o:?}");
    finish(d);
}

#[test]
fn seccomp_is_on_by_default_and_security_opts_change_it() {
    let d = setup();
    assert_eq!(status_field(&d, &[], "Seccomp"), "2");
    assert_eq!(status_field(&d, &[], "NoNewPrivs"), "0");
    assert_eq!(
        status_field(
            &d,
            &words!("--security-opt no-new-privileges"),
            "NoNewPrivs"
        ),
        "1"
    );
    assert_eq!(
        status_field(
            &d,
            &words!("--security-opt no-new-privileges:true"),
            "NoNewPrivs"
        ),
        "1"
    );
    assert_eq!(
        status_field(&d, &words!("--security-opt seccomp=unconfined"), "Seccomp"),
        "0"
    );
    // A profile of our own: the default action allows, `mkdir` is refused.
    let profile = d.dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let o = h(
        &d,
        &words!(
            "run --rm --security-opt",
            &opt,
            "busybox",
            "mkdir",
            "/newdir"
        ),
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("Operation not permitted"), "{o:?}");
    assert_eq!(
        ok(
            &d,
            &words!("run --rm busybox sh -c", "mkdir /newdir && echo ok")
        ),
        "ok\n"
    );
    let err = fails(
        &d,
        &words!("run --rm --security-opt bogus busybox true"),
        125,
    );
    assert!(!err.is_empty());
    assert_eq!(ok(&d, &words!("ps -aq")), "");
    finish(d);
}

// ---------------------------------------------------------------- resources

#[test]
fn resource_limits_reach_the_cgroups_and_the_rlimits() {
    let d = setup();
    assert_eq!(
        ok(
            &d,
            &words!("run --rm --pids-limit 10 busybox cat /sys/fs/cgroup/pids/pids.max")
        ),
        "10\n"
    );
    // The limit holds: the shell cannot start ten more processes.
    let o = h(
        &d,
        &words!(
            "run --rm --pids-limit 5 busybox sh -c",
            "i=0; while [ $i -lt 10 ]; do sleep 5 & i=$((i+1)); done; echo all started"
        ),
    );
    assert_ne!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains("can't fork"), "{o:?}");
    assert_eq!(
        ok(
            &d,
            &words!("run --rm -m 64m busybox cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
        ),
        "67108864\n"
    );
    assert_eq!(
        ok(
            &d,
            &words!("run --rm --memory 100000000 busybox cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
        )
        .trim()
        .parse::<u64>()
        .unwrap()
            / 4096,
        100_000_000 / 4096,
        "the kernel rounds to pages"
    );
    assert_eq!(
        inspect(
            &d,
            "{{.HostConfig.Memory}}",
            ok(&d, &words!("create -m 64m busybox true")).trim()
        ),
        "67108864"
    );
    assert_eq!(
        ok(
            &d,
            &words!(
                "run --rm --ulimit nofile=100:200 busybox sh -c",
                "ulimit -n; ulimit -Hn"
            )
        ),
        "100\n200\n"
    );
    let err = fails(&d, &words!("run --rm -m lots busybox true"), 125);
    assert!(!err.is_empty());
    finish(d);
}

#[test]
fn tmpfs_mounts_are_writable_by_everyone() {
    let d = setup();
    let o = ok(
        &d,
        &words!(
            "run --rm --tmpfs /scratch:size=1m busybox grep",
            " /scratch ",
            "/proc/mounts"
        ),
    );
    assert!(o.starts_with("tmpfs /scratch tmpfs rw,"), "{o}");
    assert!(o.contains("size=1024k"), "{o}");
    let o = ok(
        &d,
        &words!(
            "run --rm --mount type=tmpfs,dst=/t,tmpfs-size=2097152 busybox grep",
            " /t ",
            "/proc/mounts"
        ),
    );
    assert!(o.starts_with("tmpfs /t tmpfs rw,"), "{o}");
    assert!(o.contains("size=2048k"), "{o}");
    // Docker's tmpfs mounts are 1777 unless a mode is given, so any user
    // can write to them.
    assert_eq!(
        ok(
            &d,
            &words!("run --rm --tmpfs /scratch busybox stat -c %a /scratch")
        ),
        "1777\n"
    );
    assert_eq!(
        ok(
            &d,
            &words!(
                "run --rm -u 1000 --mount type=tmpfs,dst=/t busybox sh -c",
                "touch /t/x && echo ok"
            )
        ),
        "ok\n"
    );
    assert_eq!(
        ok(
            &d,
            &words!("run --rm --tmpfs /m:mode=700 busybox stat -c %a /m")
        ),
        "700\n"
    );
    finish(d);
}

#[test]
fn etc_hostname_hosts_and_resolv_conf_are_provided() {
    let d = setup();
    let id = ok(
        &d,
        &words!(
            "create --name etc busybox sh -c",
            "cat /etc/hostname; echo ==; cat /etc/hosts; echo ==; cat /etc/resolv.conf; echo ==; hostname"
        ),
    );
    let o = ok(&d, &words!("start -a etc"));
    let parts: Vec<&str> = o.split("==\n").collect();
    assert_eq!(parts.len(), 4, "{o}");
    assert_eq!(parts[0], format!("{}\n", &id[..12]));
    assert!(parts[1].contains("127.0.0.1\tlocalhost"), "{o}");
    assert!(parts[1].contains("::1\tlocalhost"), "{o}");
    assert!(parts[2].contains("nameserver "), "{o}");
    assert!(
        !parts[2].contains("nameserver 127."),
        "no loopback name server (unreachable in the container): {o}"
    );
    assert_eq!(parts[3], format!("{}\n", &id[..12]));
    let v = inspect_json(&d, "etc");
    for (key, file) in [
        ("HostnamePath", "hostname"),
        ("HostsPath", "hosts"),
        ("ResolvConfPath", "resolv.conf"),
    ] {
        let p = v[key].as_str().unwrap();
        assert!(Path::new(p).ends_with(file), "{key}: {p}");
        assert!(Path::new(p).exists(), "{key}: {p}");
    }
    // They are the container's own: changes stay in it.
    assert_eq!(
        ok(
            &d,
            &words!(
                "run --rm busybox sh -c",
                "echo 10.1.1.1 db >> /etc/hosts && grep db /etc/hosts"
            )
        ),
        "10.1.1.1 db\n"
    );
    finish(d);
}

#[test]
fn network_none_works_and_a_missing_network_is_refused_clearly() {
    let d = setup();
    let o = ok(
        &d,
        &words!("run --rm --network none busybox cat /proc/net/dev"),
    );
    let ifaces: Vec<&str> = o
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "{o}");
    // The default is the bridge: lo and eth0.
    let o = ok(&d, &words!("run --rm busybox cat /proc/net/dev"));
    assert_eq!(o.lines().count(), 4, "{o}");
    assert!(o.contains("eth0:"), "{o}");
    // A network that does not exist: one clear line, nothing made.
    let store = d.store_files();
    let err = fails(
        &d,
        &words!("run --rm --network nosuchnet -v /anon busybox true"),
        125,
    );
    assert!(err.contains("network nosuchnet not found"), "{err}");
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    assert_eq!(ok(&d, &words!("ps -aq")), "");
    assert_eq!(ok(&d, &words!("volume ls -q")), "");
    assert_eq!(d.store_files(), store);
    finish(d);
}

// ---------------------------------------------------------------- lifecycle

#[test]
fn create_then_start_and_start_attach() {
    let d = setup();
    let id = ok(
        &d,
        &words!(
            "create --name c1 busybox sh -c",
            "echo out; echo err >&2; exit 6"
        ),
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    let v = inspect_json(&d, "c1");
    assert_eq!(v["State"]["Status"], "created");
    assert_eq!(v["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        ok(&d, &words!("ps -a --format", "{{.Names}} {{.Status}}")),
        "c1 Created\n"
    );
    assert_eq!(
        ok(&d, &words!("ps -q")),
        "",
        "a created container does not run"
    );

    let o = h(&d, &words!("start -a c1"));
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (6, "out\n", "err\n")
    );
    let v = inspect_json(&d, "c1");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 6);
    assert_ne!(v["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    assert_ne!(v["State"]["FinishedAt"], "0001-01-01T00:00:00Z");

    // start without -a prints the name and returns at once.
    ok(&d, &words!("create --name c2 busybox sleep 1000"));
    assert_eq!(ok(&d, &words!("start c2")), "c2\n");
    assert_eq!(inspect(&d, "{{.State.Status}}", "c2"), "running");
    // Starting a running container is no error.
    assert_eq!(ok(&d, &words!("start c2")), "c2\n");
    // start -ai with a piped stdin.
    ok(&d, &words!("create -i --name c3 busybox cat"));
    let o = h_in(&d, &words!("start -ai c3"), b"through start\n");
    assert_eq!((o.code, o.stdout.as_str()), (0, "through start\n"), "{o:?}");

    let err = fails(&d, &words!("start nosuch"), 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    finish(d);
}

#[test]
fn stop_sends_the_stop_signal_and_kills_after_the_timeout() {
    let d = setup();
    // A shell that ends on TERM.
    ok(
        &d,
        &words!(
            "run -d --name trap busybox sh -c",
            "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"
        ),
    );
    wait_log(&d, "trap", "ready");
    assert_eq!(ok(&d, &words!("stop trap")), "trap\n");
    let v = inspect_json(&d, "trap");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 0);

    // One that ignores TERM is killed after -t 1.
    ok(
        &d,
        &words!(
            "run -d --name stubborn busybox sh -c",
            "trap '' TERM; while true; do sleep 0.1; done"
        ),
    );
    let pid = inspect(&d, "{{.State.Pid}}", "stubborn");
    assert_eq!(ok(&d, &words!("stop -t 1 stubborn")), "stubborn\n");
    let v = inspect_json(&d, "stubborn");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_eq!(v["State"]["Pid"], 0);
    assert!(!alive(pid.parse().unwrap()));

    // The image's or the container's stop signal.
    ok(
        &d,
        &words!(
            "run -d --name usr1 --stop-signal USR1 busybox sh -c",
            "trap 'exit 3' USR1; echo ready; while true; do sleep 0.1; done"
        ),
    );
    wait_log(&d, "usr1", "ready");
    assert_eq!(inspect(&d, "{{.Config.StopSignal}}", "usr1"), "USR1");
    ok(&d, &words!("stop usr1"));
    assert_eq!(inspect(&d, "{{.State.ExitCode}}", "usr1"), "3");
    // stop -s overrides it.
    ok(&d, &words!("start usr1"));
    ok(&d, &words!("stop -s KILL usr1"));
    assert_eq!(inspect(&d, "{{.State.ExitCode}}", "usr1"), "137");

    // Stopping a stopped container is no error; an unknown one is.
    assert_eq!(ok(&d, &words!("stop trap")), "trap\n");
    let err = fails(&d, &words!("stop nosuch"), 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    finish(d);
}

#[test]
fn kill_sends_the_signal_asked_for() {
    let d = setup();
    ok(
        &d,
        &words!(
            "run -d --name k1 busybox sh -c",
            "trap 'exit 10' USR1; trap 'exit 11' HUP; echo ready; while true; do sleep 0.1; done"
        ),
    );
    wait_log(&d, "k1", "ready");
    assert_eq!(ok(&d, &words!("kill -s USR1 k1")), "k1\n");
    wait_for("the container to exit", || {
        inspect(&d, "{{.State.Status}}", "k1") == "exited"
    });
    assert_eq!(inspect(&d, "{{.State.ExitCode}}", "k1"), "10");
    ok(&d, &words!("start k1"));
    wait_for("the second start's ready", || {
        h(&d, &words!("logs k1")).stdout.matches("ready").count() == 2
    });
    ok(&d, &words!("kill --signal SIGHUP k1"));
    wait_for("the container to exit", || {
        inspect(&d, "{{.State.Status}}", "k1") == "exited"
    });
    assert_eq!(inspect(&d, "{{.State.ExitCode}}", "k1"), "11");
    ok(&d, &words!("start k1"));
    ok(&d, &words!("kill k1"));
    wait_for("the container to exit", || {
        inspect(&d, "{{.State.Status}}", "k1") == "exited"
    });
    assert_eq!(
        inspect(&d, "{{.State.ExitCode}}", "k1"),
        "137",
        "SIGKILL by default"
    );

    let err = fails(&d, &words!("kill k1"), 1);
    assert!(err.contains("is not running"), "{err}");
    ok(&d, &words!("start k1"));
    let err = fails(&d, &words!("kill -s NOSUCHSIG k1"), 1);
    assert!(err.contains("NOSUCHSIG"), "{err}");
    assert_eq!(inspect(&d, "{{.State.Status}}", "k1"), "running");
    finish(d);
}

#[test]
fn restart_pause_and_unpause() {
    let d = setup();
    ok(
        &d,
        &words!(
            "run -d --name p1 busybox sh -c",
            "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"
        ),
    );
    wait_log(&d, "p1", "ready");
    let before = inspect_json(&d, "p1");
    assert_eq!(ok(&d, &words!("pause p1")), "p1\n");
    let v = inspect_json(&d, "p1");
    assert_eq!(v["State"]["Status"], "paused");
    assert_eq!(v["State"]["Paused"], true);
    assert_eq!(v["State"]["Running"], true);
    let status = ok(&d, &words!("ps --format {{.Status}}"));
    assert!(status.trim_end().ends_with("(Paused)"), "{status}");
    // The processes are frozen.
    let id = before["Id"].as_str().unwrap();
    let frozen = support::cgroup_dirs_named(id)
        .into_iter()
        .find(|p| p.starts_with("/sys/fs/cgroup/freezer"))
        .map(|p| std::fs::read_to_string(p.join("freezer.state")).unwrap());
    if let Some(state) = frozen {
        assert_eq!(state.trim(), "FROZEN");
    }
    let err = fails(&d, &words!("exec p1 true"), 1);
    assert!(err.contains("paused"), "{err}");
    let err = fails(&d, &words!("pause p1"), 1);
    assert!(err.contains("paused"), "{err}");

    assert_eq!(ok(&d, &words!("unpause p1")), "p1\n");
    let v = inspect_json(&d, "p1");
    assert_eq!(v["State"]["Status"], "running");
    assert_eq!(v["State"]["Paused"], false);
    let err = fails(&d, &words!("unpause p1"), 1);
    assert!(err.contains("not paused"), "{err}");

    assert_eq!(ok(&d, &words!("restart -t 5 p1")), "p1\n");
    let after = inspect_json(&d, "p1");
    assert_eq!(after["State"]["Status"], "running");
    assert_ne!(after["State"]["StartedAt"], before["State"]["StartedAt"]);
    assert_ne!(after["State"]["Pid"], before["State"]["Pid"]);
    assert!(!alive(before["State"]["Pid"].as_i64().unwrap() as i32));
    assert_eq!(
        after["RestartCount"], 0,
        "a manual restart is no policy restart"
    );
    // restart starts a stopped container too.
    ok(&d, &words!("stop -t 1 p1"));
    ok(&d, &words!("restart p1"));
    assert_eq!(inspect(&d, "{{.State.Status}}", "p1"), "running");
    // stop works on a paused container.
    ok(&d, &words!("pause p1"));
    ok(&d, &words!("stop -t 1 p1"));
    assert_eq!(inspect(&d, "{{.State.Status}}", "p1"), "exited");
    let err = fails(&d, &words!("pause p1"), 1);
    assert!(err.contains("is not running"), "{err}");
    finish(d);
}

#[test]
fn rm_refuses_a_running_container_without_force() {
    let d = setup();
    let id = ok(&d, &words!("run -d --name r1 busybox sleep 1000"));
    let id = id.trim().to_string();
    let shim = shim_pid(&d, &id);
    let err = fails(&d, &words!("rm r1"), 1);
    assert_eq!(
        err,
        "Error response from daemon: cannot remove container \"/r1\": container is running: stop the container before removing or force remove\n"
    );
    assert_eq!(inspect(&d, "{{.State.Status}}", "r1"), "running");
    ok(&d, &words!("pause r1"));
    let err = fails(&d, &words!("rm r1"), 1);
    assert!(err.contains("paused"), "{err}");
    assert_eq!(ok(&d, &words!("rm -f r1")), "r1\n");
    assert_eq!(ok(&d, &words!("ps -aq")), "");
    assert_gone(&d, &id, shim);

    let err = fails(&d, &words!("rm nosuch"), 1);
    assert_eq!(
        err,
        "Error response from daemon: No such container: nosuch\n"
    );
    // Several at once: the good ones go, the exit code says one failed.
    ok(&d, &words!("create --name a1 busybox true"));
    ok(&d, &words!("create --name b1 busybox true"));
    let o = h(&d, &words!("rm a1 nosuch b1"));
    assert_eq!((o.code, o.stdout.as_str()), (1, "a1\nb1\n"), "{o:?}");
    assert_eq!(ok(&d, &words!("ps -aq")), "");
    assert_eq!(container_dirs(&d), Vec::<String>::new());
    finish(d);
}

#[test]
fn wait_prints_the_exit_code() {
    let d = setup();
    ok(
        &d,
        &words!("run -d --name w1 busybox sh -c", "sleep 0.5; exit 4"),
    );
    assert_eq!(ok(&d, &words!("wait w1")), "4\n");
    // An exited container: at once.
    assert_eq!(ok(&d, &words!("wait w1")), "4\n");
    ok(&d, &words!("run -d --name w2 busybox sleep 1000"));
    let waiter = {
        let cmd = d.cmd(&words!("wait w2 w1"));
        std::thread::spawn(move || timed(cmd, None))
    };
    ok(&d, &words!("kill w2"));
    let o = waiter.join().unwrap();
    assert_eq!((o.code, o.stdout.as_str()), (0, "137\n4\n"), "{o:?}");
    let err = fails(&d, &words!("wait nosuch"), 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    finish(d);
}

#[test]
fn inspect_has_docker_s_shape() {
    let d = setup();
    let vol_host = tempfile::tempdir().unwrap();
    let bind = format!("{}:/b:ro", vol_host.path().display());
    let id = ok(
        &d,
        &words!(
            "run -d --name shape -e A=1 -l k=v -m 32m -v named:/n -v",
            &bind,
            "--restart",
            "on-failure:3",
            "busybox",
            "sleep",
            "1000"
        ),
    );
    let id = id.trim();
    let v = inspect_json(&d, "shape");
    assert_eq!(v["Id"], id);
    assert_eq!(v["Name"], "/shape");
    assert_eq!(v["Path"], "sleep");
    assert_eq!(v["Args"], serde_json::json!(["1000"]));
    assert!(v["Image"].as_str().unwrap().starts_with("sha256:"), "{v}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(v["Created"].as_str().unwrap()).is_ok(),
        "{v}"
    );
    let state = &v["State"];
    assert_eq!(state["Status"], "running");
    assert_eq!(state["Running"], true);
    assert_eq!(state["Paused"], false);
    assert_eq!(state["Restarting"], false);
    assert_eq!(state["OOMKilled"], false);
    assert_eq!(state["Dead"], false);
    assert_eq!(state["ExitCode"], 0);
    assert!(state["Pid"].as_i64().unwrap() > 0);
    assert!(chrono::DateTime::parse_from_rfc3339(state["StartedAt"].as_str().unwrap()).is_ok());
    assert_eq!(state["FinishedAt"], "0001-01-01T00:00:00Z");

    let config = &v["Config"];
    assert_eq!(config["Cmd"], serde_json::json!(["sleep", "1000"]));
    assert_eq!(config["Image"], "busybox");
    assert_eq!(config["Hostname"], &id[..12]);
    assert_eq!(config["Labels"]["k"], "v");
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        ["A=1"],
        "the image has no ENV (docker adds PATH only in the process)"
    );

    let host = &v["HostConfig"];
    assert_eq!(host["Memory"], 33554432);
    assert_eq!(host["NetworkMode"], "bridge");
    assert_eq!(host["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(host["RestartPolicy"]["MaximumRetryCount"], 3);
    assert_eq!(host["LogConfig"]["Type"], "json-file");
    assert!(
        host["Binds"]
            .as_array()
            .unwrap()
            .contains(&Value::from(bind.clone()))
    );

    let mounts = v["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    let named = mounts.iter().find(|m| m["Destination"] == "/n").unwrap();
    assert_eq!(named["Type"], "volume");
    assert_eq!(named["Name"], "named");
    assert_eq!(named["Driver"], "local");
    assert_eq!(named["RW"], true);
    assert_eq!(
        named["Source"],
        d.root().join("volumes/named/_data").display().to_string(),
        "a volume's Source is its mount point, as docker shows it"
    );
    let b = mounts.iter().find(|m| m["Destination"] == "/b").unwrap();
    assert_eq!(b["Type"], "bind");
    assert_eq!(b["Source"], vol_host.path().display().to_string());
    assert_eq!(b["RW"], false);

    let log = v["LogPath"].as_str().unwrap();
    assert_eq!(
        Path::new(log),
        d.root()
            .join("containers")
            .join(id)
            .join(format!("{id}-json.log"))
    );
    assert_eq!(v["RestartCount"], 0);

    // Several at once, and a format.
    ok(&d, &words!("create --name second busybox true"));
    assert_eq!(
        ok(
            &d,
            &words!(
                "inspect -f",
                "{{.Name}} {{.State.Status}}",
                "shape",
                "second"
            )
        ),
        "/shape running\n/second created\n"
    );
    let v: Value =
        serde_json::from_str(&ok(&d, &words!("container inspect shape second"))).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let o = h(&d, &words!("inspect shape nosuch"));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("nosuch"), "{o:?}");
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "the found one is printed");
    finish(d);
}

#[test]
fn ps_lists_filters_and_formats() {
    let d = setup();
    let o = h(
        &d,
        &words!("run --name done -l role=batch busybox sh -c", "exit 2"),
    );
    assert_eq!(o.code, 2, "{o:?}");
    ok(&d, &words!("create --name fresh busybox true"));
    let up = ok(
        &d,
        &words!("run -d --name up -l role=server busybox sleep 1000"),
    );
    let up = up.trim();

    assert_eq!(ok(&d, &words!("ps -q")), format!("{}\n", &up[..12]));
    assert_eq!(ok(&d, &words!("ps -q --no-trunc")), format!("{up}\n"));
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = ok(&d, &a).lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(names(&[]), ["up"]);
    assert_eq!(names(&["-a"]), ["done", "fresh", "up"]);
    assert_eq!(names(&words!("-a --filter status=exited")), ["done"]);
    assert_eq!(names(&words!("-a --filter status=created")), ["fresh"]);
    assert_eq!(names(&words!("-a --filter status=running")), ["up"]);
    assert_eq!(names(&words!("-a --filter exited=2")), ["done"]);
    assert_eq!(names(&words!("-a --filter name=fre")), ["fresh"]);
    assert_eq!(names(&words!("-a --filter label=role")), ["done", "up"]);
    assert_eq!(names(&words!("-a --filter label=role=server")), ["up"]);
    assert_eq!(
        names(&words!("-a --filter label=role --filter status=exited")),
        ["done"]
    );
    assert_eq!(
        names(&words!("-a --filter", &format!("id={}", &up[..6]))),
        ["up"]
    );
    assert_eq!(names(&["-l"]), ["up"], "-l: the latest created");
    assert_eq!(names(&words!("-n 2")).len(), 2);

    let o = ok(
        &d,
        &words!(
            "ps -a --filter name=done --format",
            "{{.ID}}|{{.Image}}|{{.Command}}|{{.Status}}|{{.Names}}|{{.Labels}}"
        ),
    );
    let f: Vec<&str> = o.trim_end().split('|').collect();
    assert_eq!(f[0].len(), 12, "{o}");
    assert_eq!(f[1], "busybox");
    assert_eq!(f[2], "\"sh -c 'exit 2'\"");
    assert!(f[3].starts_with("Exited (2) "), "{o}");
    assert_eq!(f[4], "done");
    assert_eq!(f[5], "role=batch");
    let o = ok(&d, &words!("ps --format", "table {{.Names}}\t{{.Status}}"));
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines.len(), 2, "{o}");
    assert!(lines[0].starts_with("NAMES "), "{o}");
    assert!(lines[1].starts_with("up "), "{o}");
    let o = ok(&d, &words!("ps --format", "{{json .}}"));
    let v: Value = serde_json::from_str(o.trim()).unwrap();
    assert_eq!(v["Names"], "up");
    assert_eq!(v["State"], "running");
    let err = fails(&d, &words!("ps --filter nosuch=1"), 1);
    assert!(err.contains("Invalid filter 'nosuch'"), "{err}");
    finish(d);
}

#[test]
#[ignore = "missing: docker's `{{.Label \"key\"}}` template method in --format"]
fn ps_format_has_docker_s_label_method() {
    let d = setup();
    h(
        &d,
        &words!("run --name done -l role=batch busybox sh -c", "exit 2"),
    );
    assert_eq!(
        ok(
            &d,
            &words!("ps -a --filter name=done --format", "{{.Label \"role\"}}")
        ),
        "batch\n"
    );
    finish(d);
}

// ---------------------------------------------------------------- logs

/// The log files of a container (`<id>-json.log*`) and their sizes.
fn log_files(d: &Daemon, id: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(d.root().join("containers").join(id))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-json.log"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn logs_keep_stdout_and_stderr_apart_and_take_tail_and_timestamps() {
    let d = setup();
    ok(
        &d,
        &words!(
            "run --name l1 busybox sh -c",
            "echo out1; echo err1 >&2; sleep 0.3; echo out2; echo out3"
        ),
    );
    let o = h(&d, &words!("logs l1"));
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "out1\nout2\nout3\n", "err1\n")
    );
    let o = h(&d, &words!("logs --tail 2 l1"));
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("out2\nout3\n", ""));
    let o = h(&d, &words!("logs -n 0 l1"));
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("", ""));
    let o = h(&d, &words!("logs --tail all l1"));
    assert_eq!(o.stdout, "out1\nout2\nout3\n");
    let o = h(&d, &words!("logs -t l1"));
    let mut last = None;
    for (line, text) in o.stdout.lines().zip(["out1", "out2", "out3"]) {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, text);
        // RFC 3339 with nanoseconds, nine digits.
        assert_eq!(ts.len(), 30, "{line}");
        let t = chrono::DateTime::parse_from_rfc3339(ts).unwrap();
        assert!(last.is_none_or(|l| l <= t), "in order: {}", o.stdout);
        last = Some(t);
    }
    assert_eq!(o.stdout.lines().count(), 3);
    assert!(o.stderr.ends_with(" err1\n"), "{o:?}");
    // The file is docker's json-file format.
    let id = id_of(&d, "l1");
    let file = std::fs::read_to_string(
        d.root()
            .join("containers")
            .join(&id)
            .join(format!("{id}-json.log")),
    )
    .unwrap();
    let first: Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "out1\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].is_string());
    let err = fails(&d, &words!("logs nosuch"), 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    finish(d);
}

#[test]
fn logs_since_and_until_cut_by_time() {
    let d = setup();
    ok(
        &d,
        &words!(
            "run --name t1 busybox sh -c",
            "echo early; sleep 2; echo late"
        ),
    );
    let o = ok(&d, &words!("logs -t t1"));
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = o
        .lines()
        .map(|l| chrono::DateTime::parse_from_rfc3339(l.split(' ').next().unwrap()).unwrap())
        .collect();
    assert_eq!(times.len(), 2, "{o}");
    let mid = times[0] + (times[1] - times[0]) / 2;
    let mid = mid.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    assert_eq!(ok(&d, &words!("logs --since", &mid, "t1")), "late\n");
    assert_eq!(ok(&d, &words!("logs --until", &mid, "t1")), "early\n");
    // Unix seconds (with a fraction) as docker takes them.
    let unix = format!("{}.{:09}", times[1].timestamp() + 1, 0);
    assert_eq!(ok(&d, &words!("logs --since", &unix, "t1")), "");
    // A duration back from now.
    assert_eq!(ok(&d, &words!("logs --since 1h t1")), "early\nlate\n");
    finish(d);
}

#[test]
fn logs_follow_ends_when_the_container_ends() {
    let d = setup();
    ok(
        &d,
        &words!(
            "run -d --name f1 busybox sh -c",
            "echo one; sleep 1; echo two; sleep 1; echo three >&2"
        ),
    );
    assert_eq!(inspect(&d, "{{.State.Status}}", "f1"), "running");
    let o = h(&d, &words!("logs -f f1"));
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "one\ntwo\n", "three\n")
    );
    assert_eq!(
        inspect(&d, "{{.State.Status}}", "f1"),
        "exited",
        "logs -f returned because the container ended"
    );
    // Following an exited container prints the log and ends.
    assert_eq!(ok(&d, &words!("logs -f --tail 1 f1")), "");
    // Follow across a restart of the container ends at its end too.
    ok(&d, &words!("start f1"));
    let o = h(&d, &words!("logs -f --since 0 f1"));
    assert!(o.stdout.ends_with("one\ntwo\n"), "{o:?}");
    finish(d);
}

#[test]
fn logs_rotate_within_max_size_and_max_file() {
    let d = setup();
    let o = h(
        &d,
        &words!(
            "run --name rot --log-opt max-size=1k --log-opt max-file=2 busybox sh -c",
            "i=0; while [ $i -lt 300 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done"
        ),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout.lines().count(),
        300,
        "the attached output is complete"
    );
    let id = id_of(&d, "rot");
    let files = log_files(&d, &id);
    assert!(
        !files.is_empty() && files.len() <= 2,
        "at most max-file files: {files:?}"
    );
    for (name, size) in &files {
        // max-size, plus at most one entry that crossed it.
        assert!(*size <= 1024 + 200, "{name} is {size} bytes");
    }
    let total: u64 = files.iter().map(|f| f.1).sum();
    assert!(total < 300 * 60, "old lines are gone: {files:?}");
    let logs = ok(&d, &words!("logs rot"));
    assert!(
        logs.ends_with("line-299-padding-padding-padding\n"),
        "{logs}"
    );
    assert!(!logs.contains("line-0-"), "{logs}");
    assert_eq!(
        inspect(&d, "{{json .HostConfig.LogConfig.Config}}", "rot"),
        r#"{"max-file":"2","max-size":"1k"}"#
    );
    let err = fails(
        &d,
        &words!("run --rm --log-opt max-size=lots busybox true"),
        125,
    );
    assert!(!err.is_empty());
    finish(d);
}

// ---------------------------------------------------------------- exec

#[test]
fn exec_runs_in_the_container_with_its_own_options() {
    let d = setup();
    ok(
        &d,
        &words!("run -d --name x1 -e FROM_RUN=1 busybox sleep 1000"),
    );
    let o = h(
        &d,
        &words!("exec x1 sh -c", "echo hi; echo oops >&2; exit 3"),
    );
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (3, "hi\n", "oops\n")
    );
    assert_eq!(
        ok(
            &d,
            &words!(
                "exec -e X=1 -w /tmp -u 1000:1000 x1 sh -c",
                "echo $X $FROM_RUN; pwd; id"
            )
        ),
        "1 1\n/tmp\nuid=1000(user) gid=1000(user)\n"
    );
    // The same namespaces: it sees the container's PID 1.
    assert_eq!(
        ok(&d, &words!("exec x1 cat /proc/1/cmdline")),
        "sleep\x001000\x00"
    );
    let o = h_in(&d, &words!("exec -i x1 cat"), b"to exec\n");
    assert_eq!((o.code, o.stdout.as_str()), (0, "to exec\n"), "{o:?}");
    let err = fails(&d, &words!("exec x1 nosuchcmd"), 127);
    assert!(err.contains("executable file not found"), "{err}");
    let err = fails(&d, &words!("exec x1 /etc/passwd"), 126);
    assert!(!err.is_empty());

    // -d returns at once; the process runs on.
    assert_eq!(
        ok(
            &d,
            &words!("exec -d x1 sh -c", "sleep 0.3; echo bg > /tmp/bg")
        ),
        ""
    );
    wait_for("the detached exec's file", || {
        h(&d, &words!("exec x1 cat /tmp/bg")).stdout == "bg\n"
    });
    finish(d);
}

#[test]
fn exec_into_a_stopped_container_fails_clearly() {
    let d = setup();
    ok(&d, &words!("create --name never busybox sleep 1000"));
    let err = fails(&d, &words!("exec never true"), 1);
    assert!(err.contains("is not running"), "{err}");
    ok(&d, &words!("start never"));
    ok(&d, &words!("stop -t 0 never"));
    let err = fails(&d, &words!("exec never true"), 1);
    assert!(err.contains("is not running"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = fails(&d, &words!("exec nosuch true"), 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    finish(d);
}

// ---------------------------------------------------------------- volumes

#[test]
fn named_volumes_persist_across_containers() {
    let d = setup();
    ok(
        &d,
        &words!(
            "run --rm -v keep:/data busybox sh -c",
            "echo persisted > /data/f"
        ),
    );
    assert_eq!(
        ok(&d, &words!("volume ls -q")),
        "keep\n",
        "made on first use"
    );
    assert_eq!(
        ok(&d, &words!("run --rm -v keep:/other busybox cat /other/f")),
        "persisted\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.root().join("volumes/keep/_data/f")).unwrap(),
        "persisted\n"
    );
    // Read-only.
    let o = h(
        &d,
        &words!("run --rm -v keep:/data:ro busybox touch /data/g"),
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    // In use: not removable; rm -v leaves named volumes.
    ok(&d, &words!("create --name user -v keep:/data busybox true"));
    let err = fails(&d, &words!("volume rm keep"), 1);
    assert!(err.contains("in use"), "{err}");
    ok(&d, &words!("rm -v user"));
    assert_eq!(ok(&d, &words!("volume ls -q")), "keep\n");
    assert_eq!(ok(&d, &words!("volume rm keep")), "keep\n");
    // --volumes-from shares them.
    ok(
        &d,
        &words!("run --name src -v shared:/s busybox sh -c", "echo x > /s/f"),
    );
    assert_eq!(
        ok(&d, &words!("run --rm --volumes-from src busybox cat /s/f")),
        "x\n"
    );
    finish(d);
}

#[test]
fn anonymous_volumes_go_with_rm_v() {
    let d = setup();
    ok(
        &d,
        &words!("run --name an -v /data busybox sh -c", "echo a > /data/f"),
    );
    let v = inspect_json(&d, "an");
    let name = v["Mounts"][0]["Name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 64, "{v}");
    assert_eq!(v["Mounts"][0]["Destination"], "/data");
    assert_eq!(ok(&d, &words!("volume ls -q")), format!("{name}\n"));
    let labels = ok(&d, &words!("volume inspect -f", "{{json .Labels}}", &name));
    assert!(labels.contains("com.docker.volume.anonymous"), "{labels}");
    // Restarting the container keeps its volume.
    assert_eq!(ok(&d, &words!("start -a an")), "");
    ok(&d, &words!("rm -v an"));
    assert_eq!(ok(&d, &words!("volume ls -q")), "");
    assert!(!d.root().join("volumes").join(&name).exists());
    // Without -v the anonymous volume stays.
    ok(&d, &words!("run --name an2 -v /data busybox true"));
    let name = inspect(&d, "{{(index .Mounts 0).Name}}", "an2");
    ok(&d, &words!("rm an2"));
    assert_eq!(ok(&d, &words!("volume ls -q")), format!("{name}\n"));
    finish(d);
}

#[test]
fn bind_mounts_share_a_host_directory() {
    let d = setup();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("from-host"), "hello\n").unwrap();
    let spec = format!("{}:/x", host.path().display());
    assert_eq!(
        ok(
            &d,
            &words!(
                "run --rm -v",
                &spec,
                "busybox",
                "sh",
                "-c",
                "cat /x/from-host; echo back > /x/from-container"
            )
        ),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("from-container")).unwrap(),
        "back\n"
    );
    let ro = format!("{}:/x:ro", host.path().display());
    let o = h(&d, &words!("run --rm -v", &ro, "busybox", "touch", "/x/no"));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(!host.path().join("no").exists());
    let mount = format!(
        "type=bind,source={},target=/m,readonly",
        host.path().display()
    );
    assert_eq!(
        ok(
            &d,
            &words!("run --rm --mount", &mount, "busybox", "cat", "/m/from-host")
        ),
        "hello\n"
    );
    let err = fails(
        &d,
        &words!("run --rm --mount type=bind,source=/no/such/dir,target=/m busybox true"),
        125,
    );
    assert!(err.contains("/no/such/dir"), "{err}");
    assert_eq!(ok(&d, &words!("ps -aq")), "");
    // The host directory is not unmounted or removed with the container.
    assert!(host.path().join("from-host").exists());
    assert_eq!(
        support::mounts_containing(&host.path().display().to_string()),
        Vec::<String>::new()
    );
    finish(d);
}

/// Imports the tests' root filesystem with `/data/seed` and a `VOLUME
/// /data` as `withvol:1`.
fn image_with_volume(d: &Daemon) {
    let rootfs = support::shared_rootfs();
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    tar.append_dir_all(".", &rootfs).unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    tar.append_data(&mut header, "data/", &[][..]).unwrap();
    let seed = b"from the image\n";
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(seed.len() as u64);
    tar.append_data(&mut header, "data/seed", &seed[..])
        .unwrap();
    let bytes = tar.into_inner().unwrap();
    let o = d.with_stdin(
        &words!(
            "import --change",
            "VOLUME /data",
            "--change",
            "CMD [\"sh\"]",
            "-",
            "withvol:1"
        ),
        &bytes,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_new_volume_gets_the_image_s_files() {
    let d = setup();
    image_with_volume(&d);
    assert_eq!(
        inspect(&d, "{{json .Config.Volumes}}", "withvol:1"),
        r#"{"/data":{}}"#
    );
    // The image's VOLUME: an anonymous volume with the image's files.
    ok(&d, &words!("run --name img withvol:1 cat /data/seed"));
    assert_eq!(ok(&d, &words!("logs img")), "from the image\n");
    let anon = inspect(&d, "{{(index .Mounts 0).Name}}", "img");
    assert_eq!(anon.len(), 64);
    assert_eq!(
        std::fs::read_to_string(d.root().join("volumes").join(&anon).join("_data/seed")).unwrap(),
        "from the image\n"
    );
    // A new named volume is filled too.
    assert_eq!(
        ok(
            &d,
            &words!("run --rm -v fresh:/data withvol:1 cat /data/seed")
        ),
        "from the image\n"
    );
    // Once it has content, it is not filled again.
    ok(
        &d,
        &words!(
            "run --rm -v fresh:/data withvol:1 sh -c",
            "echo changed > /data/seed; echo new > /data/mine"
        ),
    );
    assert_eq!(
        ok(
            &d,
            &words!("run --rm -v fresh:/data withvol:1 cat /data/seed /data/mine")
        ),
        "changed\nnew\n"
    );
    // A volume that was used empty stays empty.
    ok(&d, &words!("volume create empty"));
    ok(&d, &words!("run --rm -v empty:/elsewhere busybox true"));
    assert_eq!(
        ok(&d, &words!("run --rm -v empty:/data withvol:1 ls /data")),
        "seed\n",
        "docker copies into a volume that is empty at its first mount over image content"
    );
    // A bind mount is never filled.
    let host = tempfile::tempdir().unwrap();
    let spec = format!("{}:/data", host.path().display());
    assert_eq!(
        ok(
            &d,
            &words!("run --rm -v", &spec, "withvol:1", "ls", "/data")
        ),
        ""
    );
    finish(d);
}

// ---------------------------------------------------------------- restarts

#[test]
fn on_failure_restarts_up_to_the_maximum() {
    let d = setup();
    ok(
        &d,
        &words!(
            "run -d --name of --restart on-failure:2 busybox sh -c",
            "exit 3"
        ),
    );
    wait_for("two restarts and the end", || {
        inspect(&d, "{{.RestartCount}} {{.State.Status}}", "of") == "2 exited"
    });
    // And no third: the next back-off (400 ms) is long past.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        inspect(
            &d,
            "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}",
            "of"
        ),
        "2 exited 3"
    );
    // Success ends on-failure at once.
    ok(
        &d,
        &words!("run -d --name fine --restart on-failure busybox true"),
    );
    wait_for("the end", || {
        inspect(&d, "{{.State.Status}}", "fine") == "exited"
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        inspect(&d, "{{.RestartCount}} {{.State.Status}}", "fine"),
        "0 exited"
    );
    let err = fails(&d, &words!("run --rm --restart always busybox true"), 125);
    assert!(err.contains("--restart and --rm"), "{err}");
    let err = fails(&d, &words!("run --restart sometimes busybox true"), 125);
    assert!(err.contains("sometimes"), "{err}");
    finish(d);
}

#[test]
fn restart_always_starts_the_container_again_until_stopped() {
    let d = setup();
    ok(
        &d,
        &words!(
            "run -d --name al --restart always -v runs:/r busybox sh -c",
            "echo run >> /r/log; sleep 0.3"
        ),
    );
    let first = inspect(&d, "{{.State.StartedAt}}", "al");
    wait_for("restarts", || {
        inspect(&d, "{{.RestartCount}}", "al")
            .parse::<i64>()
            .unwrap()
            >= 2
    });
    wait_for("the container to run again", || {
        inspect(&d, "{{.State.Status}}", "al") == "running"
    });
    assert_ne!(inspect(&d, "{{.State.StartedAt}}", "al"), first);
    let runs = std::fs::read_to_string(d.root().join("volumes/runs/_data/log")).unwrap();
    assert!(runs.lines().count() >= 3, "{runs}");
    // stop ends it for good.
    ok(&d, &words!("stop al"));
    let count = inspect(&d, "{{.RestartCount}}", "al");
    assert_eq!(inspect(&d, "{{.State.Status}}", "al"), "exited");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        inspect(&d, "{{.RestartCount}} {{.State.Status}}", "al"),
        format!("{count} exited")
    );
    finish(d);
}

// ---------------------------------------------------------------- the daemon goes

/// Waits until the daemon process is gone.
fn wait_daemon_gone(d: &Daemon) {
    wait_for("the daemon to end", || d.pid().is_none());
}

#[test]
fn containers_survive_a_killed_daemon() {
    let d = setup();
    let id = ok(
        &d,
        &words!(
            "run -d --name sl busybox sh -c",
            "trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done"
        ),
    );
    let id = id.trim().to_string();
    let victim = ok(&d, &words!("run -d --name victim busybox sleep 1000"));
    let victim = victim.trim().to_string();
    wait_log(&d, "sl", "started");
    let pid = inspect(&d, "{{.State.Pid}}", "sl");
    let victim_pid: i32 = inspect(&d, "{{.State.Pid}}", "victim").parse().unwrap();
    let victim_shim = shim_pid(&d, &victim).unwrap();
    let shim = shim_pid(&d, &id).unwrap();

    let daemon = d.kill_hard();
    assert!(shim_alive(shim), "the shim outlives the daemon");
    assert!(
        alive(pid.parse().unwrap()),
        "the container outlives the daemon"
    );
    // A container that ends while no daemon runs.
    Command::new("kill")
        .arg("-9")
        .arg(victim_pid.to_string())
        .status()
        .unwrap();
    wait_for("the victim to end", || !alive(victim_pid));
    // Its shim records the exit and ends.
    wait_for("the victim's shim to end", || !shim_alive(victim_shim));

    // Any command starts the daemon again; it finds its containers.
    let ps = ok(&d, &words!("ps --format", "{{.Names}} {{.Status}}"));
    assert!(ps.starts_with("sl Up "), "{ps}");
    assert_eq!(ps.lines().count(), 1, "{ps}");
    assert_ne!(d.pid(), Some(daemon));
    assert_eq!(inspect(&d, "{{.State.Pid}}", "sl"), pid);
    assert_eq!(
        inspect(&d, "{{.State.Status}} {{.State.ExitCode}}", "victim"),
        "exited 137"
    );
    // The restarted daemon drives the container as before.
    assert_eq!(
        ok(&d, &words!("exec sl echo", "still here")),
        "still here\n"
    );
    assert_eq!(ok(&d, &words!("logs sl")), "started\n");
    assert_eq!(ok(&d, &words!("stop sl")), "sl\n");
    assert_eq!(
        inspect(&d, "{{.State.Status}} {{.State.ExitCode}}", "sl"),
        "exited 0"
    );
    assert!(!shim_alive(shim));
    assert_eq!(support::mounts_containing(&id), Vec::<String>::new());
    assert_eq!(support::mounts_containing(&victim), Vec::<String>::new());
    assert_eq!(support::cgroup_dirs_named(&victim), Vec::<PathBuf>::new());
    ok(&d, &words!("start sl"));
    assert_eq!(inspect(&d, "{{.State.Status}}", "sl"), "running");
    finish(d);
}

#[test]
fn after_a_reboot_containers_are_exited_and_restart_always_ones_run_again() {
    let d = setup();
    ok(&d, &words!("run -d --name plain busybox sleep 1000"));
    ok(
        &d,
        &words!("run -d --name always --restart always busybox sleep 1000"),
    );
    ok(
        &d,
        &words!("run -d --name unless --restart unless-stopped busybox sleep 1000"),
    );
    ok(
        &d,
        &words!("run -d --name stopped --restart always busybox sleep 1000"),
    );
    ok(&d, &words!("stop -t 0 stopped"));
    let old_pid = inspect(&d, "{{.State.Pid}}", "always");

    // The reboot: the daemon stops, every container process goes, /run is
    // wiped.
    ok(&d, &words!("daemon stop"));
    wait_daemon_gone(&d);
    let run = d.run_root();
    for e in std::fs::read_dir(run.join("containers")).unwrap().flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if let Ok(pid) = std::fs::read_to_string(e.path().join("shim.pid")) {
            Command::new("kill")
                .arg("-9")
                .arg(pid.trim())
                .status()
                .unwrap();
            let pid: i32 = pid.trim().parse().unwrap();
            wait_for("the shim to end", || !alive(pid));
        }
        let o = timed(
            {
                let mut c = Command::new(support::hafen());
                c.arg("runtime")
                    .arg("--root")
                    .arg(run.join("runtime"))
                    .args(["delete", "--force", &id]);
                c
            },
            None,
        );
        assert_eq!(o.code, 0, "{o:?}");
        let _ = Command::new("umount").arg(e.path().join("rootfs")).status();
    }
    assert_eq!(
        support::mounts_containing(&run.display().to_string()),
        Vec::<String>::new()
    );
    std::fs::remove_dir_all(&run).unwrap();

    let ps = ok(&d, &words!("ps -a --format", "{{.Names}} {{.State}}"));
    let mut ps: Vec<&str> = ps.lines().collect();
    ps.sort();
    assert_eq!(
        ps,
        [
            "always running",
            "plain exited",
            "stopped exited",
            "unless running"
        ]
    );
    assert_ne!(inspect(&d, "{{.State.Pid}}", "always"), old_pid);
    assert_eq!(
        ok(&d, &words!("exec always echo back")),
        "back\n",
        "the restarted container works"
    );
    // The exited ones start again.
    ok(&d, &words!("start plain"));
    assert_eq!(inspect(&d, "{{.State.Status}}", "plain"), "running");
    finish(d);
}

// ---------------------------------------------------------------- health

#[test]
fn healthchecks_make_containers_healthy_or_unhealthy() {
    let d = setup();
    ok(
        &d,
        &words!("run -d --name good --health-cmd true --health-interval 1s busybox sleep 1000"),
    );
    ok(
        &d,
        &words!(
            "run -d --name bad --health-cmd",
            "echo failing; exit 1",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "busybox",
            "sleep",
            "1000"
        ),
    );
    let check: Value =
        serde_json::from_str(&inspect(&d, "{{json .Config.Healthcheck}}", "good")).unwrap();
    assert_eq!(
        check,
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 1000000000})
    );
    wait_for("healthy", || {
        inspect(&d, "{{.State.Health.Status}}", "good") == "healthy"
    });
    wait_for("unhealthy", || {
        inspect(&d, "{{.State.Health.Status}}", "bad") == "unhealthy"
    });
    let v = inspect_json(&d, "bad");
    let health = &v["State"]["Health"];
    assert!(health["FailingStreak"].as_i64().unwrap() >= 2, "{health}");
    let log = health["Log"].as_array().unwrap();
    assert!(!log.is_empty());
    assert_eq!(log[0]["ExitCode"], 1);
    assert_eq!(log[0]["Output"], "failing\n");
    let v = inspect_json(&d, "good");
    assert_eq!(v["State"]["Health"]["FailingStreak"], 0);
    assert_eq!(v["State"]["Health"]["Log"][0]["ExitCode"], 0);
    let status = ok(&d, &words!("ps --filter name=good --format {{.Status}}"));
    assert!(status.trim_end().ends_with("(healthy)"), "{status}");
    assert_eq!(
        ok(
            &d,
            &words!("ps --filter health=unhealthy --format {{.Names}}")
        ),
        "bad\n"
    );
    // Without a healthcheck: no health state.
    ok(&d, &words!("run -d --name none busybox sleep 1000"));
    assert_eq!(inspect(&d, "{{json .State.Health}}", "none"), "null");
    finish(d);
}
