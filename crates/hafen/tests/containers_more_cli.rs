//! `top`, `stats`, `cp`, `commit`, `diff`, `export`, `rename`, `port`,
//! `update` and `container prune` of the `hafen` CLI and of the docker CLI
//! 28, both against a private hafen daemon: the same output, errors and
//! exit codes, and the same files where `cp` puts them.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::daemon::{DOCKER_28, Daemon};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// (stdout, stderr, exit code).
fn t(o: &Output) -> (String, String, i32) {
    (
        text(&o.stdout),
        text(&o.stderr),
        o.status.code().unwrap_or(-1),
    )
}

/// `hafen <args>` and `docker <args>`.
fn both(d: &Daemon, args: &[&str]) -> ((String, String, i32), (String, String, i32)) {
    (t(&d.output(args)), t(&d.docker(DOCKER_28, args)))
}

/// Both CLIs succeed and print the same; the output.
fn same(d: &Daemon, args: &[&str]) -> String {
    let (h, k) = both(d, args);
    assert_eq!(h.2, 0, "hafen {args:?}: {}", h.1);
    assert_eq!(k.2, 0, "docker {args:?}: {}", k.1);
    assert_eq!(h.0, k.0, "hafen and docker print differently for {args:?}");
    h.0
}

/// Both CLIs fail alike (exit code, stdout, stderr); the error.
fn same_error(d: &Daemon, args: &[&str], code: i32) -> String {
    let (h, k) = both(d, args);
    assert_eq!(h.2, code, "hafen {args:?}: {h:?}");
    assert_eq!(k.2, code, "docker {args:?}: {k:?}");
    assert_eq!(h.1, k.1, "the errors differ for {args:?}");
    assert_eq!(h.0, k.0, "the outputs differ for {args:?}");
    h.1
}

fn docker_cmd(d: &Daemon, args: &[&str]) -> Command {
    d.start();
    let mut c = Command::new(DOCKER_28);
    c.args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(Stdio::null());
    c
}

fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// A private daemon in a short directory: a shim's socket
/// (`<run-root>/containers/<id>/shim.sock`) must fit a unix socket address
/// (107 bytes), which `/tmp/hafen-d-XXXXXX/…` does not.
fn daemon() -> Daemon {
    Daemon::in_dir(
        tempfile::Builder::new()
            .prefix("h")
            .tempdir_in("/tmp")
            .unwrap(),
    )
}

/// A daemon with busybox and a running container `web`.
fn with_web() -> Daemon {
    let d = daemon();
    d.busybox();
    d.ok(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"]);
    d
}

fn inspect(d: &Daemon, name: &str) -> Value {
    let v: Value = serde_json::from_str(&d.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

#[test]
fn top_diff_port_and_rename_print_as_docker_does() {
    let d = with_web();
    let top = same(&d, &["top", "web"]);
    let mut lines = top.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("UID "), "{top}");
    assert!(header.contains("PID") && header.ends_with("CMD"), "{top}");
    assert!(lines.next().unwrap().ends_with("sleep 1000"), "{top}");
    // Everything after the container goes to ps.
    let custom = same(&d, &["top", "web", "-o", "pid,args"]);
    assert!(
        custom.starts_with("PID                 COMMAND\n"),
        "{custom}"
    );
    assert!(custom.ends_with("sleep 1000\n"), "{custom}");
    same_error(&d, &["top", "nosuch"], 1);

    // Nothing changed yet; then a file added, one changed, one removed.
    assert_eq!(same(&d, &["diff", "web"]), "");
    d.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "mkdir -p /tmp/d && echo x > /tmp/d/new && echo y >> /etc/group && rm /etc/passwd",
    ]);
    let diff = same(&d, &["diff", "web"]);
    for line in [
        "C /etc",
        "C /etc/group",
        "D /etc/passwd",
        "A /tmp/d",
        "A /tmp/d/new",
    ] {
        assert!(
            diff.lines().any(|l| l == line),
            "{line} missing in:\n{diff}"
        );
    }
    same_error(&d, &["diff", "nosuch"], 1);

    // No ports are published until networks come.
    assert_eq!(same(&d, &["port", "web"]), "");
    assert_eq!(
        same_error(&d, &["port", "web", "80"], 1),
        "Error: No public port '80' published for web\n"
    );
    assert_eq!(
        same_error(&d, &["port", "web", "80/udp"], 1),
        "Error: No public port '80/udp' published for web\n"
    );
    same_error(&d, &["port", "web", "http"], 1);
    same_error(&d, &["port", "nosuch"], 1);

    // Renames both ways; the errors as docker prints them.
    assert_eq!(d.ok(&["rename", "web", "web2"]), "");
    assert_eq!(inspect(&d, "web2")["Name"], "/web2");
    let out = d.docker(DOCKER_28, &["rename", "web2", "web3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(inspect(&d, "web3")["Name"], "/web3");
    let err = same_error(&d, &["rename", "nosuch", "x"], 1);
    assert!(
        err.ends_with("Error: failed to rename container named nosuch\n"),
        "{err}"
    );
    d.ok(&["create", "--name", "other", "busybox"]);
    same_error(&d, &["rename", "web3", "other"], 1);
    same_error(&d, &["rename", "web3", " "], 1);
    same_error(&d, &["rename", "web3", "bad name!"], 1);
}

#[test]
fn update_changes_the_limits_as_docker_does() {
    let d = with_web();
    d.ok(&["create", "--name", "idle", "busybox"]);
    assert_eq!(
        same(
            &d,
            &[
                "update",
                "--memory",
                "64m",
                "--memory-swap",
                "128m",
                "--cpus",
                "0.5",
                "--cpu-shares",
                "512",
                "--pids-limit",
                "50",
                "web",
                "idle"
            ]
        ),
        "web\nidle\n"
    );
    for name in ["web", "idle"] {
        let h = &inspect(&d, name)["HostConfig"];
        assert_eq!(h["Memory"], 64 * 1024 * 1024, "{name}");
        assert_eq!(h["MemorySwap"], 128 * 1024 * 1024, "{name}");
        assert_eq!(h["NanoCpus"], 500_000_000, "{name}");
        assert_eq!(h["CpuShares"], 512, "{name}");
        assert_eq!(h["PidsLimit"], 50, "{name}");
    }
    // The running container's cgroup follows (cgroup v2).
    let limit = d.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || echo v1",
    ]);
    if limit.trim() != "v1" {
        assert_eq!(limit.trim(), (64 * 1024 * 1024).to_string());
    }

    assert_eq!(
        d.ok(&["update", "--restart", "on-failure:2", "idle"]),
        "idle\n"
    );
    let p = &inspect(&d, "idle")["HostConfig"]["RestartPolicy"];
    assert_eq!(p["Name"], "on-failure");
    assert_eq!(p["MaximumRetryCount"], 2);

    assert_eq!(
        same_error(&d, &["update", "web"], 1),
        "you must provide one or more flags when using this command\n"
    );
    // One container that does not exist: the others are updated.
    let (h, k) = both(&d, &["update", "--cpu-shares", "256", "nosuch", "web"]);
    assert_eq!((h.2, k.2), (1, 1));
    assert_eq!(h.0, "web\n");
    assert_eq!(h.0, k.0);
    assert_eq!(h.1, k.1);
    same_error(&d, &["update", "--restart", ":1", "web"], 1);
    // Bad values are bad flags.
    let out = d.output(&["update", "--memory", "12x", "web"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    let out = d.output(&["update", "--cpus", "lots", "web"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
}

#[test]
fn commit_and_export_make_images_and_archives() {
    let d = with_web();
    d.ok(&["exec", "web", "sh", "-c", "echo hello > /hello.txt"]);
    let id = d.ok(&[
        "commit",
        "-m",
        "a message",
        "-a",
        "me",
        "-c",
        "CMD [\"cat\", \"/hello.txt\"]",
        "web",
        "snap:v1",
    ]);
    let id = id.trim();
    assert!(
        id.starts_with("sha256:")
            && id.len() == 71
            && id[7..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let image: Value = serde_json::from_str(&d.ok(&["image", "inspect", "snap:v1"])).unwrap();
    assert_eq!(image[0]["Id"], id);
    assert_eq!(image[0]["Comment"], "a message");
    assert_eq!(image[0]["Author"], "me");
    assert_eq!(
        image[0]["Config"]["Cmd"],
        serde_json::json!(["cat", "/hello.txt"])
    );
    assert_eq!(d.ok(&["run", "--rm", "snap:v1"]), "hello\n");
    // docker's commit of the same container, without pausing.
    let out = d.docker(
        DOCKER_28,
        &["commit", "--pause=false", "web", "snap:docker"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        d.ok(&["run", "--rm", "snap:docker", "cat", "/hello.txt"]),
        "hello\n"
    );
    assert!(d.ok(&["commit", "-p=false", "web"]).starts_with("sha256:"));
    same_error(&d, &["commit", "web", "Bad/Name"], 1);
    same_error(&d, &["commit", "web", "app/Name"], 1);
    same_error(&d, &["commit", "nosuch"], 1);

    // export: the root filesystem, to stdout or a file.
    let out = d.output(&["export", "web"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names = |bytes: &[u8]| {
        let mut a = tar::Archive::new(bytes);
        let mut n: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| text(&e.unwrap().path_bytes()))
            .collect();
        n.sort();
        n
    };
    let mine = names(&out.stdout);
    assert!(mine.iter().any(|n| n == "hello.txt"), "{mine:?}");
    assert!(mine.iter().any(|n| n == "bin/busybox"), "{mine:?}");
    let theirs = d.docker(DOCKER_28, &["export", "web"]);
    assert_eq!(mine, names(&theirs.stdout));
    let file = d.dir.path().join("web.tar");
    let f = file.to_str().unwrap();
    assert_eq!(d.ok(&["export", "-o", f, "web"]), "");
    assert_eq!(names(&std::fs::read(&file).unwrap()), mine);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    same_error(&d, &["export", "nosuch"], 1);
    same_error(&d, &["export", "-o", "/nonexistent-hafen/x.tar", "web"], 1);
    let dir = d.dir.path().to_str().unwrap().to_string();
    assert_eq!(
        same_error(&d, &["export", "-o", &dir, "web"], 1),
        "failed to export container: cannot write to a directory\n"
    );
    // A failed export leaves no file.
    let missing = d.dir.path().join("missing.tar");
    let out = d.output(&["export", "-o", missing.to_str().unwrap(), "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!missing.exists());
}

#[test]
fn stats_shows_the_figures_docker_shows() {
    let d = with_web();
    // The NET I/O column is as wide as its figures (eth0 has traffic).
    let header = "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O";
    let (h, k) = both(&d, &["stats", "--no-stream", "web"]);
    assert_eq!((h.2, k.2), (0, 0), "{h:?} {k:?}");
    let mine: Vec<&str> = h.0.lines().collect();
    let theirs: Vec<&str> = k.0.lines().collect();
    assert!(mine[0].starts_with(header), "{}", mine[0]);
    assert!(mine[0].ends_with("   BLOCK I/O   PIDS"), "{}", mine[0]);
    assert_eq!(theirs[0], mine[0]);
    assert_eq!(mine.len(), 2, "{}", h.0);
    assert_eq!(theirs.len(), 2, "{}", k.0);
    let id = inspect(&d, "web")["Id"].as_str().unwrap().to_string();
    let cols: Vec<&str> = mine[1].split_whitespace().collect();
    assert_eq!(cols[0], &id[..12]);
    assert_eq!(cols[1], "web");
    assert!(cols[2].ends_with('%'), "{}", mine[1]);
    assert_eq!(cols.last(), Some(&"1"), "one process: {}", mine[1]);
    assert_eq!(
        theirs[1].split_whitespace().take(2).collect::<Vec<_>>(),
        cols[..2]
    );

    // Templates and JSON, with what the user named the container by.
    assert_eq!(
        same(
            &d,
            &[
                "stats",
                "--no-stream",
                "--format",
                "{{.Container}} {{.Name}} {{.PIDs}}",
                "web"
            ]
        ),
        "web web 1\n"
    );
    let json: Value =
        serde_json::from_str(&d.ok(&["stats", "--no-stream", "--format", "json", "web"])).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    let theirs: Value = serde_json::from_slice(
        &d.docker(
            DOCKER_28,
            &["stats", "--no-stream", "--format", "json", "web"],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(keys, theirs.as_object().unwrap().keys().collect::<Vec<_>>());
    assert_eq!(json["ID"], &id[..12]);
    let full = d.ok(&[
        "stats",
        "--no-stream",
        "--no-trunc",
        "--format",
        "{{.ID}}",
        "web",
    ]);
    assert_eq!(full.trim(), id);

    // Without names: the running containers (all of them with -a).
    d.ok(&["create", "--name", "idle", "busybox"]);
    let running = same(&d, &["stats", "--no-stream", "--format", "{{.Name}}"]);
    assert_eq!(running, "web\n");
    let all = d.ok(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}} {{.PIDs}}",
    ]);
    let mut all: Vec<&str> = all.lines().collect();
    all.sort();
    assert_eq!(all, vec!["idle 0", "web 1"]);

    assert_eq!(
        same_error(&d, &["stats", "--no-stream", "nosuch"], 1),
        "Error response from daemon: No such container: nosuch\n"
    );
    same_error(&d, &["stats", "--no-stream", "web", "nosuch"], 1);

    // Streaming into a pipe: a table per sample, until stopped.
    let mut child = d
        .cmd(&["stats", "--format", "{{.Name}}", "web"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2800));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let samples = text(&out.stdout).lines().filter(|l| *l == "web").count();
    assert!((2..=4).contains(&samples), "{}", text(&out.stdout));
}

#[test]
fn container_prune_asks_and_removes_stopped_containers() {
    let d = daemon();
    d.busybox();
    d.ok(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"]);
    let stopped = d.ok(&["create", "--name", "stopped", "busybox"]);
    let stopped = stopped.trim();
    let warning = "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ";

    // No: nothing removed, exit 0, as docker.
    let h = with_stdin(d.cmd(&["container", "prune"]), b"n\n");
    let k = with_stdin(docker_cmd(&d, &["container", "prune"]), b"n\n");
    assert_eq!(t(&h), (warning.to_string(), String::new(), 0));
    assert_eq!(t(&h), t(&k));
    assert!(d.ok(&["ps", "-aq", "--no-trunc"]).contains(stopped));

    // A filter that matches nothing.
    assert_eq!(
        same(
            &d,
            &["container", "prune", "-f", "--filter", "label=nothing"]
        ),
        "Total reclaimed space: 0B\n"
    );
    // Yes: the stopped one goes, the running one stays.
    let h = with_stdin(d.cmd(&["container", "prune"]), b"y\n");
    assert_eq!(h.status.code(), Some(0), "{}", text(&h.stderr));
    let out = text(&h.stdout);
    assert!(
        out.starts_with(&format!("{warning}Deleted Containers:\n{stopped}\n\n")),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("Total reclaimed space: "),
        "{out}"
    );
    let left = d.ok(&["ps", "-aq", "--no-trunc"]);
    assert!(!left.contains(stopped));
    assert_eq!(left.lines().count(), 1);

    // docker's own, forced.
    let again = d.ok(&["create", "busybox"]);
    let k = d.docker(DOCKER_28, &["container", "prune", "-f"]);
    assert!(
        text(&k.stdout).contains(again.trim()),
        "{}",
        text(&k.stdout)
    );
    let out = d.output(&["container", "prune", "-f", "--filter", "nonsense"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).starts_with(
        "invalid argument \"nonsense\" for \"--filter\" flag: bad format of filter (expected name=value)"
    ));
}

/// Every path under `root` with its kind, mode, link count and link
/// target, sorted.
fn tree(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let link = std::fs::read_link(&p)
                .map(|l| l.display().to_string())
                .unwrap_or_default();
            let content = if m.is_file() {
                text(&std::fs::read(&p).unwrap())
            } else {
                String::new()
            };
            out.push(format!(
                "{rel} {:o} {} {link} {content:?}",
                m.mode(),
                m.nlink()
            ));
            if m.is_dir() {
                walk(&p, root, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A fresh local destination: an empty directory `exist` and a file
/// `file`.
fn fresh(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("exist")).unwrap();
    std::fs::write(dir.join("file"), "old\n").unwrap();
}

#[test]
fn cp_from_a_container_lands_where_docker_puts_it() {
    let d = with_web();
    d.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo a > /data/a && echo b > /data/sub/b && chmod 750 /data/sub \
         && ln -s a /data/link && ln /data/a /data/hard && ln -s /data /dlink",
    ]);
    let h_dir = d.dir.path().join("h");
    let k_dir = d.dir.path().join("k");
    let cases: &[(&[&str], i32)] = &[
        (&["web:/data", "DST/exist"], 0),
        (&["web:/data", "DST/new"], 0),
        (&["web:/data/", "DST/new"], 0),
        (&["web:/data/.", "DST/new"], 0),
        (&["web:/data/.", "DST/exist"], 0),
        (&["web:/data", "DST/file"], 1),
        (&["web:/data/a", "DST/file"], 0),
        (&["web:/data/a", "DST/newfile"], 0),
        (&["web:/data/a", "DST/exist"], 0),
        (&["web:/data/a", "DST/exist/"], 0),
        (&["web:/data/a", "DST/missing/"], 1),
        (&["web:/data/a", "DST/missing/x"], 1),
        (&["web:/data/link", "DST/exist"], 0),
        (&["-L", "web:/data/link", "DST/exist"], 0),
        (&["web:/dlink", "DST/exist"], 0),
        (&["web:/dlink/", "DST/new"], 0),
        (&["-L", "web:/dlink", "DST/new"], 0),
        (&["web:/nonexistent", "DST/exist"], 1),
        (&["nosuch:/data", "DST/exist"], 1),
        (&["web:/data/a", "/dev/null"], 1),
    ];
    for (args, code) in cases {
        let run = |dir: &Path, docker: bool| {
            fresh(dir);
            let args: Vec<String> = args
                .iter()
                .map(|a| a.replace("DST", dir.to_str().unwrap()))
                .collect();
            let mut all = vec!["cp"];
            all.extend(args.iter().map(String::as_str));
            let out = if docker {
                d.docker(DOCKER_28, &all)
            } else {
                d.output(&all)
            };
            let (o, e, c) = t(&out);
            (o, e.replace(dir.to_str().unwrap(), "DST"), c, tree(dir))
        };
        let h = run(&h_dir, false);
        let k = run(&k_dir, true);
        assert_eq!(h.2, *code, "hafen cp {args:?}: {h:?}");
        assert_eq!(h, k, "hafen and docker differ for cp {args:?}");
    }
    // Relative destinations are the working directory's.
    fresh(&h_dir);
    let out = d
        .cmd(&["cp", "web:/data/a", "rel"])
        .current_dir(&h_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(h_dir.join("rel")).unwrap(), "a\n");

    // `-`: the archive itself, the same bytes as docker's.
    let mine = d.output(&["cp", "web:/data", "-"]);
    let theirs = d.docker(DOCKER_28, &["cp", "web:/data", "-"]);
    assert!(mine.status.success());
    assert_eq!(mine.stdout, theirs.stdout);
    // Quiet when stdout is no terminal: nothing on stderr.
    assert!(mine.stderr.is_empty());

    // A symlink to / in the container is copied as a symlink, not
    // followed.
    d.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "mkdir -p /evil && ln -s / /evil/up",
    ]);
    fresh(&h_dir);
    let out = d.output(&["cp", "web:/evil", h_dir.join("exist").to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_link(h_dir.join("exist/evil/up")).unwrap(),
        Path::new("/")
    );
}

#[test]
fn cp_into_a_container_lands_where_docker_puts_it() {
    let d = daemon();
    d.busybox();
    d.ok(&["run", "-d", "--name", "hctr", "busybox", "sleep", "1000"]);
    d.ok(&["run", "-d", "--name", "kctr", "busybox", "sleep", "1000"]);
    let src = d.dir.path().join("src");
    std::fs::create_dir_all(src.join("d/sub")).unwrap();
    std::fs::write(src.join("d/a"), "a\n").unwrap();
    std::fs::write(src.join("d/sub/b"), "b\n").unwrap();
    std::os::unix::fs::symlink("a", src.join("d/link")).unwrap();
    std::fs::hard_link(src.join("d/a"), src.join("d/hard")).unwrap();
    std::os::unix::fs::symlink("d", src.join("dlink")).unwrap();
    std::fs::write(src.join("f"), "f\n").unwrap();
    std::fs::write(src.join("co:lon"), "c\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(src.join("d/sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let tar_in = {
        let mut b = tar::Builder::new(Vec::new());
        b.append_dir_all("fromtar", src.join("d")).unwrap();
        b.into_inner().unwrap()
    };
    let listing = |c: &str| {
        let out = d.ok(&[
            "exec",
            c,
            "sh",
            "-c",
            "busybox find /t -exec busybox stat -c '%n %F %a %h %u:%g %s' {} +",
        ]);
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let cases: &[(&[&str], i32)] = &[
        (&["d", "CTR:/t/exist"], 0),
        (&["d", "CTR:/t/new"], 0),
        (&["d/.", "CTR:/t/new"], 0),
        (&["d/.", "CTR:/t/exist"], 0),
        (&["d", "CTR:/t/file"], 1),
        (&["f", "CTR:/t/file"], 0),
        (&["f", "CTR:/t/newf"], 0),
        (&["f", "CTR:/t/exist"], 0),
        (&["f", "CTR:/t/missing/"], 1),
        (&["f", "CTR:/t/missing/x"], 1),
        (&["f", "CTR:/t/dl"], 0),
        (&["dlink", "CTR:/t/exist"], 0),
        (&["-L", "dlink", "CTR:/t/exist"], 0),
        (&["dlink/", "CTR:/t/new"], 0),
        (&["./co:lon", "CTR:/t/exist"], 0),
        (&["-a", "d", "CTR:/t/exist"], 0),
        (&["-", "CTR:/t/exist"], 0),
        (&["-", "CTR:/t/file"], 1),
        (&["-", "CTR:/t/nope"], 1),
        (&["missing", "CTR:/t/exist"], 1),
        (&["f", "nosuch:/t"], 1),
        (&["hctr:/a", "kctr:/b"], 1),
        (&["f", "g"], 1),
    ];
    for (args, code) in cases {
        let run = |c: &str, docker: bool| {
            d.ok(&[
                "exec",
                c,
                "sh",
                "-c",
                "rm -rf /t && mkdir -p /t/exist && echo old > /t/file && ln -s /t/exist /t/dl",
            ]);
            let mut all = vec!["cp".to_string()];
            all.extend(args.iter().map(|a| a.replace("CTR", c)));
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            let cmd = if docker {
                docker_cmd(&d, &all)
            } else {
                d.cmd(&all)
            };
            let mut cmd = cmd;
            cmd.current_dir(&src);
            let out = with_stdin(cmd, &tar_in);
            let (o, e, code) = t(&out);
            (o, e.replace(c, "CTR"), code, listing(c))
        };
        let h = run("hctr", false);
        let k = run("kctr", true);
        assert_eq!(h.2, *code, "hafen cp {args:?}: {h:?}");
        // docker logs its own tar writer's complaint when the copy is
        // refused after it started; the error itself is the last line.
        let last = |e: &str| e.lines().last().unwrap_or("").to_string();
        // The daemon reads an upload's body to its end also when it
        // refuses it, so neither client fails writing it.
        let raced =
            |e: &str| e.contains("broken pipe") || e.contains("error writing a body to connection");
        assert!(!raced(&h.1) && !raced(&k.1), "cp {args:?}: {h:?} {k:?}");
        assert_eq!(
            (&h.0, last(&h.1), h.2, &h.3),
            (&k.0, last(&k.1), k.2, &k.3),
            "hafen and docker differ for cp {args:?}"
        );
    }
}
