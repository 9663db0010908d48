//! The volume commands of the `hafen` CLI and the docker CLI 28, both
//! against a private hafen daemon: the same output, dockerd's messages and
//! exit codes for bad input, the API's status codes, and volumes that
//! outlive the daemon.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::daemon::{DOCKER_28, Daemon};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `hafen <args>` and `docker <args>`: (stdout, stderr, exit code) each.
fn both(d: &Daemon, args: &[&str]) -> ((String, String, i32), (String, String, i32)) {
    let h = d.output(args);
    let k = d.docker(DOCKER_28, args);
    let t = |o: &Output| {
        (
            text(&o.stdout),
            text(&o.stderr),
            o.status.code().unwrap_or(-1),
        )
    };
    (t(&h), t(&k))
}

/// Both CLIs print the same and succeed; the output.
fn same(d: &Daemon, args: &[&str]) -> String {
    let (h, k) = both(d, args);
    assert_eq!(h.2, 0, "hafen {args:?}: {}", h.1);
    assert_eq!(k.2, 0, "docker {args:?}: {}", k.1);
    // docker lists a volume's labels in Go's map order, which changes from
    // run to run; hafen sorts them. Compare them in one order.
    let canonical = |t: &str| t.replace("tier=db,keep=", "keep=,tier=db");
    assert_eq!(
        canonical(&h.0),
        canonical(&k.0),
        "hafen and docker print differently for {args:?}"
    );
    h.0
}

/// Both CLIs fail with the same daemon error; the error.
fn same_error(d: &Daemon, args: &[&str]) -> String {
    let (h, k) = both(d, args);
    assert_eq!(h.2, 1, "hafen {args:?} should fail: {h:?}");
    assert_eq!(k.2, 1, "docker {args:?} should fail: {k:?}");
    assert_eq!(h.1, k.1, "the errors differ for {args:?}");
    assert_eq!(h.0, k.0, "the outputs differ for {args:?}");
    h.1
}

/// A command with `input` on stdin.
fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn docker_cmd(d: &Daemon, args: &[&str]) -> Command {
    d.start();
    let mut c = Command::new(DOCKER_28);
    c.args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"));
    c
}

/// One HTTP/1.1 request with a body on the daemon's socket: (status code,
/// body).
fn http(d: &Daemon, method: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
    d.start();
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    let ct = if content_type.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {content_type}\r\n")
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = text(&raw);
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, rest.to_string())
}

fn volume_dirs(d: &Daemon) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(d.root().join("volumes"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn create_ls_inspect_and_rm_print_as_docker_does() {
    let d = Daemon::new();
    assert_eq!(d.ok(&["volume", "create", "v10"]), "v10\n");
    assert_eq!(
        d.ok(&[
            "volume", "create", "--label", "tier=db", "--label", "keep", "v2"
        ]),
        "v2\n"
    );
    let out = d.docker(
        DOCKER_28,
        &[
            "volume",
            "create",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "-o",
            "o=size=1m",
            "fromdocker",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "fromdocker\n");
    let anon = d.ok(&["volume", "create"]);
    let anon = anon.trim();
    assert_eq!(anon.len(), 64, "{anon}");

    // Creating an existing name gives it back.
    assert_eq!(same(&d, &["volume", "create", "v10"]), "v10\n");

    assert_eq!(
        same(&d, &["volume", "ls"]),
        format!(
            "DRIVER    VOLUME NAME\nlocal     {anon}\nlocal     fromdocker\nlocal     v2\nlocal     v10\n"
        )
    );
    assert_eq!(
        same(&d, &["volume", "ls", "-q"]),
        format!("{anon}\nfromdocker\nv2\nv10\n")
    );
    assert_eq!(
        same(&d, &["volume", "ls", "-f", "label=tier=db"]),
        "DRIVER    VOLUME NAME\nlocal     v2\n"
    );
    assert_eq!(
        same(&d, &["volume", "ls", "-q", "-f", "name=^v"]),
        "v2\nv10\n"
    );
    assert_eq!(
        same(
            &d,
            &[
                "volume",
                "ls",
                "-q",
                "-f",
                "label=com.docker.volume.anonymous"
            ]
        ),
        format!("{anon}\n")
    );
    assert_eq!(
        same(
            &d,
            &[
                "volume",
                "ls",
                "-q",
                "-f",
                "dangling=true",
                "-f",
                "driver=local",
                "-f",
                "name=from"
            ]
        ),
        "fromdocker\n"
    );
    assert_eq!(
        same(&d, &["volume", "ls", "-q", "-f", "dangling=false"]),
        ""
    );
    same(&d, &["volume", "ls", "--format", "json"]);
    same(&d, &["volume", "ls", "--format", "raw"]);
    assert_eq!(
        same(
            &d,
            &[
                "volume",
                "ls",
                "-f",
                "name=v2",
                "--format",
                "table {{.Name}}\\t{{.Labels}}\\t{{.Scope}}\\t{{.Links}}\\t{{.Size}}"
            ]
        ),
        "VOLUME NAME   LABELS          SCOPE     LINKS     SIZE\nv2            keep=,tier=db   local     N/A       N/A\n"
    );
    let row: Value = serde_json::from_str(
        d.ok(&["volume", "ls", "-f", "name=fromdocker", "--format", "json"])
            .trim(),
    )
    .unwrap();
    assert_eq!(
        row["Mountpoint"],
        d.root()
            .join("volumes/fromdocker/_data")
            .display()
            .to_string()
    );

    let inspected = same(&d, &["volume", "inspect", "v2", "fromdocker"]);
    assert!(
        inspected.starts_with("[\n    {\n        \"CreatedAt\": \""),
        "{inspected}"
    );
    let docs: Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(docs[0]["Labels"]["tier"], "db");
    assert_eq!(docs[0]["Labels"]["keep"], "");
    assert_eq!(docs[0]["Options"], Value::Null);
    assert_eq!(docs[1]["Options"]["type"], "tmpfs");
    assert_eq!(docs[1]["Options"]["o"], "size=1m");
    assert_eq!(docs[1]["Labels"], Value::Null);
    assert_eq!(docs[1]["Driver"], "local");
    assert_eq!(docs[1]["Scope"], "local");
    assert_eq!(
        same(
            &d,
            &[
                "volume",
                "inspect",
                "-f",
                "{{.Name}} {{.Driver}} {{.Mountpoint}}",
                "v10"
            ]
        ),
        format!(
            "v10 local {}\n",
            d.root().join("volumes/v10/_data").display()
        )
    );
    same(&d, &["volume", "inspect", "--format", "json", "v10"]);

    // rm prints each name it removed; docker's CLI removes one, hafen's
    // the other.
    assert_eq!(
        d.ok(&["volume", "rm", "v10", anon]),
        format!("v10\n{anon}\n")
    );
    let out = d.docker(DOCKER_28, &["volume", "rm", "fromdocker"]);
    assert_eq!(text(&out.stdout), "fromdocker\n");
    assert_eq!(same(&d, &["volume", "ls", "-q"]), "v2\n");
    assert_eq!(volume_dirs(&d), ["v2"]);
}

#[test]
fn bad_input_gets_dockerd_s_errors_and_changes_nothing() {
    let d = Daemon::new();
    d.ok(&["volume", "create", "keep"]);
    let before = volume_dirs(&d);
    assert_eq!(
        same_error(&d, &["volume", "create", "a"]),
        "Error response from daemon: create a: volume name is too short, names should be at least two alphanumeric characters\n"
    );
    assert_eq!(
        same_error(&d, &["volume", "create", "my vol"]),
        "Error response from daemon: create my vol: \"my vol\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path\n"
    );
    same_error(&d, &["volume", "create", "/abs/path"]);
    same_error(&d, &["volume", "create", "../up"]);
    assert_eq!(
        same_error(&d, &["volume", "create", "-o", "foo=bar", "x1"]),
        "Error response from daemon: create x1: invalid option: \"foo\"\n"
    );
    assert_eq!(
        same_error(&d, &["volume", "create", "-o", "type=none", "x1"]),
        "Error response from daemon: create x1: missing required option: \"device\"\n"
    );
    assert_eq!(
        same_error(&d, &["volume", "create", "-d", "nfs-plugin", "x1"]),
        "Error response from daemon: create x1: error looking up volume plugin nfs-plugin: plugin \"nfs-plugin\" not found\n"
    );
    let conflict = same_error(
        &d,
        &[
            "volume",
            "create",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "keep",
        ],
    );
    assert!(
        conflict.contains("create keep: volume name must be unique"),
        "{conflict}"
    );
    assert_eq!(
        same_error(&d, &["volume", "ls", "-f", "dangling=maybe"]),
        "Error response from daemon: invalid filter 'dangling=[maybe]'\n"
    );
    assert_eq!(
        same_error(&d, &["volume", "ls", "-f", "until=1h"]),
        "Error response from daemon: invalid filter 'until'\n"
    );
    assert_eq!(
        same_error(&d, &["volume", "rm", "nope"]),
        "Error response from daemon: get nope: no such volume\n"
    );
    // Each CLI removes what it can and reports the rest.
    let mut outputs = Vec::new();
    for docker in [false, true] {
        d.ok(&["volume", "create", "keep"]);
        let args = ["volume", "rm", "nope", "keep", "nope2"];
        let out = if docker {
            d.docker(DOCKER_28, &args)
        } else {
            d.output(&args)
        };
        outputs.push((text(&out.stdout), text(&out.stderr), out.status.code()));
    }
    assert_eq!(outputs[0], outputs[1], "hafen and docker");
    assert_eq!(
        outputs[0],
        (
            "keep\n".to_string(),
            "Error response from daemon: get nope: no such volume\nError response from daemon: get nope2: no such volume\n".to_string(),
            Some(1)
        )
    );
    // rm -f of a missing volume is no error.
    assert_eq!(same(&d, &["volume", "rm", "-f", "nope"]), "nope\n");
    // inspect prints what it found, then fails.
    d.ok(&["volume", "create", "keep"]);
    let (h, k) = both(
        &d,
        &["volume", "inspect", "-f", "{{.Name}}", "nope", "keep"],
    );
    assert_eq!(h, k);
    assert_eq!((h.0.as_str(), h.2), ("keep\n", 1));
    let (h, k) = both(&d, &["volume", "inspect", "nope"]);
    assert_eq!(h, k);
    assert_eq!(h.0, "[]\n");
    assert_eq!(
        volume_dirs(&d),
        before,
        "bad input leaves the volumes as they were"
    );
    // Arguments the CLI itself refuses.
    let out = d.output(&["volume", "create", "--label", "=v", "x2"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("invalid label '=v': empty name"));
    let out = d.output(&["volume", "create", "--name", "x3", "x4"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(volume_dirs(&d) == before);
}

/// Makes an anonymous, a named, a labelled named and an optioned volume;
/// the anonymous one's name.
fn prune_fixture(d: &Daemon) -> String {
    for n in ["named1", "named2"] {
        d.ok(&["volume", "create", n]);
    }
    d.ok(&["volume", "create", "--label", "keep=yes", "named3"]);
    d.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "withopts",
    ]);
    let anon = d.ok(&["volume", "create"]).trim().to_string();
    std::fs::write(
        d.root().join(format!("volumes/{anon}/_data/f")),
        vec![0u8; 2500],
    )
    .unwrap();
    anon
}

#[test]
fn prune_removes_unused_anonymous_volumes_unless_all() {
    for cli in ["hafen", "docker"] {
        let d = Daemon::new();
        let anon = prune_fixture(&d);
        let cmd = |args: &[&str]| {
            if cli == "hafen" {
                d.cmd(args)
            } else {
                docker_cmd(&d, args)
            }
        };
        // Asked, and answered no.
        let out = with_stdin(cmd(&["volume", "prune"]), "n\n");
        assert!(out.status.success(), "{cli}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ",
            "{cli}"
        );
        assert_eq!(volume_dirs(&d).len(), 5, "{cli}: nothing removed");
        // Answered yes.
        let out = with_stdin(cmd(&["volume", "prune"]), "y\n");
        assert_eq!(
            text(&out.stdout),
            format!(
                "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 2.5kB\n"
            ),
            "{cli}"
        );
        // Nothing left to prune.
        let out = cmd(&["volume", "prune", "-f"]).output().unwrap();
        assert_eq!(text(&out.stdout), "Total reclaimed space: 0B\n", "{cli}");
        // -a with a label filter.
        let out = cmd(&["volume", "prune", "-a", "-f", "--filter", "label!=keep"])
            .output()
            .unwrap();
        assert_eq!(
            text(&out.stdout),
            "Deleted Volumes:\nnamed1\nnamed2\n\nTotal reclaimed space: 0B\n",
            "{cli}"
        );
        let out = with_stdin(cmd(&["volume", "prune", "--all"]), "no\n");
        assert!(
            text(&out.stdout).starts_with(
                "WARNING! This will remove all local volumes not used by at least one container.\n"
            ),
            "{cli}"
        );
        let out = cmd(&["volume", "prune", "-a", "-f", "--filter", "all=1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{cli}");
        assert!(
            text(&out.stderr)
                .contains("conflicting options: cannot specify both --all and --filter all=1"),
            "{cli}: {}",
            text(&out.stderr)
        );
        let out = cmd(&["volume", "prune", "-f", "--filter", "all=true"])
            .output()
            .unwrap();
        assert_eq!(
            text(&out.stdout),
            "Deleted Volumes:\nnamed3\n\nTotal reclaimed space: 0B\n",
            "{cli}"
        );
        // A volume with options is never pruned.
        assert_eq!(volume_dirs(&d), ["withopts"], "{cli}");
    }
}

#[test]
fn bind_volumes_keep_the_host_directory() {
    let d = Daemon::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("data.txt"), b"precious").unwrap();
    let dev = host.path().to_str().unwrap();
    let device = format!("device={dev}");
    let args = [
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        device.as_str(),
        "hostdir",
    ];
    assert_eq!(d.ok(&args), "hostdir\n");
    assert_eq!(
        same(&d, &args),
        "hostdir\n",
        "the same options: the same volume"
    );
    let conflict = d.output(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=rbind",
        "-o",
        &device,
        "hostdir",
    ]);
    assert_eq!(conflict.status.code(), Some(1));
    assert!(text(&conflict.stderr).contains("volume name must be unique"));
    let v: Value = serde_json::from_str(&same(&d, &["volume", "inspect", "hostdir"])).unwrap();
    assert_eq!(
        v[0]["Options"],
        serde_json::json!({"device": dev, "o": "bind", "type": "none"})
    );
    assert_eq!(
        v[0]["Mountpoint"],
        d.root().join("volumes/hostdir/_data").display().to_string()
    );
    // Pruning never takes a volume with options, even with --all.
    assert_eq!(
        same(&d, &["volume", "prune", "-a", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    assert_eq!(d.ok(&["volume", "rm", "hostdir"]), "hostdir\n");
    assert_eq!(
        std::fs::read(host.path().join("data.txt")).unwrap(),
        b"precious",
        "removing the volume leaves the host's files"
    );
    assert!(volume_dirs(&d).is_empty());
}

#[test]
fn the_api_answers_as_dockerd_does() {
    let d = Daemon::new();
    let (code, body) = http(
        &d,
        "POST",
        "/v1.51/volumes/create",
        "application/json",
        r#"{"Name":"api1","Labels":{"a":"b"},"DriverOpts":null}"#,
    );
    assert_eq!(code, 201, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["Name"].as_str(), v["Labels"]["a"].as_str()),
        (Some("api1"), Some("b"))
    );
    assert_eq!(v["Options"], Value::Null);
    let created = chrono::DateTime::parse_from_rfc3339(v["CreatedAt"].as_str().unwrap()).unwrap();
    assert!((chrono::Utc::now().timestamp() - created.timestamp()).abs() < 60);

    // An empty body makes an anonymous volume.
    let (code, body) = http(&d, "POST", "/volumes/create", "", "");
    assert_eq!(code, 201, "{body}");
    let anon: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(anon["Labels"]["com.docker.volume.anonymous"], "");

    let (code, body) = http(&d, "POST", "/volumes/create", "text/plain", "{}");
    assert_eq!(code, 400, "{body}");
    let (code, body) = http(
        &d,
        "POST",
        "/volumes/create",
        "application/json",
        "{\"Name\":",
    );
    assert_eq!(code, 400);
    assert!(body.contains("invalid JSON"), "{body}");

    // `create` and `prune` are names too.
    let (code, _) = http(
        &d,
        "POST",
        "/volumes/create",
        "application/json",
        r#"{"Name":"prune"}"#,
    );
    assert_eq!(code, 201);
    let (code, body) = http(&d, "GET", "/volumes/prune", "", "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"Name\":\"prune\""));

    let (code, body) = http(
        &d,
        "GET",
        "/volumes?filters=%7B%22name%22%3A%7B%22api1%22%3Atrue%7D%7D",
        "",
        "",
    );
    assert_eq!(code, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["Warnings"], Value::Null);
    assert_eq!(list["Volumes"].as_array().map(Vec::len), Some(1));
    let (code, body) = http(&d, "GET", "/volumes?filters=%7Bnope", "", "");
    assert_eq!(code, 500, "{body}");

    let (code, body) = http(&d, "GET", "/volumes/nope", "", "");
    assert_eq!(
        (code, body.trim()),
        (404, r#"{"message":"get nope: no such volume"}"#)
    );
    let (code, body) = http(&d, "DELETE", "/volumes/nope", "", "");
    assert_eq!(code, 404, "{body}");
    let (code, body) = http(&d, "DELETE", "/volumes/nope?force=1", "", "");
    assert_eq!((code, body.as_str()), (204, ""));
    let (code, _) = http(&d, "DELETE", "/volumes/api1", "", "");
    assert_eq!(code, 204);

    // Clients before 1.42 prune every unused volume; newer ones only
    // anonymous ones.
    let (code, body) = http(&d, "POST", "/v1.51/volumes/prune", "", "");
    assert_eq!(code, 200);
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["VolumesDeleted"], serde_json::json!([anon["Name"]]));
    let (code, body) = http(&d, "POST", "/v1.41/volumes/prune", "", "");
    assert_eq!(code, 200);
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["VolumesDeleted"], serde_json::json!(["prune"]));
    let (code, body) = http(&d, "POST", "/volumes/prune", "", "");
    assert_eq!(code, 200);
    assert_eq!(body.trim(), r#"{"VolumesDeleted":[],"SpaceReclaimed":0}"#);
    let (code, _) = http(&d, "GET", "/v1.12/volumes", "", "");
    assert_eq!(code, 400, "versions out of range are refused");
}

#[test]
fn volumes_outlive_the_daemon_and_show_in_df_and_events() {
    let d = Daemon::new();
    let since = chrono::Utc::now().timestamp().to_string();
    d.ok(&[
        "volume",
        "create",
        "--label",
        "x=1",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "kept",
    ]);
    d.ok(&["volume", "create", "sized"]);
    std::fs::write(d.root().join("volumes/sized/_data/blob"), vec![1u8; 4321]).unwrap();
    let before = d.ok(&["volume", "inspect", "kept", "sized"]);
    d.ok(&["daemon", "stop"]);
    assert!(d.pid().is_none());
    assert_eq!(d.ok(&["volume", "inspect", "kept", "sized"]), before);

    let out = d.docker(
        DOCKER_28,
        &[
            "system",
            "df",
            "-v",
            "--format",
            "{{range .Volumes}}{{.Name}} {{.Links}} {{.Size}}\n{{end}}",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "sized 0 4.321kB",
        "volumes with options are not counted, as dockerd does"
    );

    let summary = same(&d, &["system", "df"]);
    assert!(
        summary.contains("\nLocal Volumes   1         0         4.321kB   4.321kB (100%)\n"),
        "{summary}"
    );
    let verbose = same(&d, &["system", "df", "-v"]);
    assert!(
        verbose.contains("VOLUME NAME   LINKS     SIZE\nsized         0         4.321kB\n"),
        "{verbose}"
    );
    d.ok(&["volume", "rm", "sized"]);
    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    let out = d.docker(
        DOCKER_28,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=volume",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The daemon restarted in between: only its own events are left.
    assert_eq!(text(&out.stdout), "volume destroy sized local\n");
}
