//! The lifecycle commands, as an engine drives them: create, start, state,
//! kill, delete, run, list, ps, pause, resume, events, features, spec.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

#[test]
fn create_start_kill_delete() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "sleep", "60"]);
    let pid_file = bundle.path().join("init.pid");
    let c = rt.container();
    rt.ok_detached(
        &[
            "create",
            "--bundle",
            bundle.path().to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &c.id,
        ],
        bundle.path(),
    );
    let state = c.state();
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], c.id.as_str());
    assert_eq!(state["bundle"], bundle.path().to_str().unwrap());
    let pid = state["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        pid.to_string(),
        "pid file without newline"
    );
    // The init waits: it is hafen itself, not yet the program.
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!cmdline.contains("checker"), "{cmdline}");

    rt.ok(&["start", &c.id]);
    assert_eq!(c.status(), "running");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with("/checker\0sleep"), "{cmdline:?}");
    let again = rt.output(&["start", &c.id]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("cannot start an already running container"),
        "{}",
        stderr(&again)
    );

    let refused = rt.output(&["delete", &c.id]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not stopped: running"),
        "{}",
        stderr(&refused)
    );

    rt.ok(&["kill", &c.id, "KILL"]);
    c.wait_status("stopped");
    assert_eq!(c.state()["pid"], 0);
    let kill_stopped = rt.output(&["kill", &c.id, "TERM"]);
    assert!(!kill_stopped.status.success());
    assert!(stderr(&kill_stopped).contains("container not running"));

    rt.ok(&["delete", &c.id]);
    let gone = rt.output(&["state", &c.id]);
    assert!(!gone.status.success());
    assert!(
        stderr(&gone).contains("does not exist"),
        "{}",
        stderr(&gone)
    );
    assert!(
        cgroup_dirs_named(&c.id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs_named(&c.id)
    );
    assert!(
        rt.output(&["delete", "--force", &c.id]).status.success(),
        "delete -f of a missing container is fine"
    );
}

#[test]
fn a_created_container_can_be_deleted_without_force() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]);
    let c = rt.create(&bundle);
    let pid = c.pid();
    rt.ok(&["delete", &c.id]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z")
    );
    assert!(cgroup_dirs_named(&c.id).is_empty());
}

#[test]
fn kill_a_created_container_with_term() {
    let rt = Runtime::default();
    let c = rt.create(&Bundle::new(&["/checker", "report"]));
    rt.ok(&["kill", &c.id, "15"]);
    c.wait_status("stopped");
}

#[test]
fn run_exits_with_the_containers_code() {
    let rt = Runtime::default();
    let (out, _c) = rt.run(&Bundle::new(&["sh", "-c", "echo hello; exit 42"]));
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    // Without a pid namespace the shell is not PID 1 and can be killed.
    let bundle = Bundle::new(&["sh", "-c", "kill -9 $$"]).with(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
    });
    let (out, _c) = rt.run(&bundle);
    assert_eq!(out.status.code(), Some(137), "128 + SIGKILL");
    assert!(
        rt.ok(&["list", "-q"]).is_empty(),
        "run deletes the container"
    );
}

#[test]
fn signals_to_run_reach_the_container() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "wait-signal"]);
    let id = unique("sig");
    let mut child = rt
        .cmd(&["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _c = Container {
        rt: &rt,
        id: id.clone(),
    };
    // Wait until the checker reports it is waiting.
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("waiting"));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::USR1,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(libc::SIGUSR1),
        "the checker exits with the signal's number"
    );
}

#[test]
fn run_detached_then_list_ps_pause_resume_events() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "sleep", "60"]);
    let c = rt.run_detached(&bundle);
    let id = c.id.clone();
    assert_eq!(c.status(), "running");

    let table = rt.ok(&["list"]);
    let mut lines = table.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("ID          PID         STATUS")
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&id) && row.contains("running") && row.ends_with("root"),
        "{row}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    assert_eq!(json[0]["owner"], "root");
    assert_eq!(rt.ok(&["list", "-q"]), format!("{id}\n"));

    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(pids, vec![c.pid()]);
    let ps = rt.ok(&["ps", &id]);
    assert!(ps.lines().next().unwrap().contains("PID"));
    assert!(ps.contains("sleep 60"), "{ps}");

    rt.ok(&["pause", &id]);
    assert_eq!(c.status(), "paused");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", c.pid())).unwrap();
    assert!(
        stat.contains(") D") || stat.contains(") S") || stat.contains(") T"),
        "{stat}"
    );
    assert!(!rt.output(&["pause", &id]).status.success());
    rt.ok(&["resume", &id]);
    assert_eq!(c.status(), "running");
    assert!(
        !rt.output(&["resume", &id]).status.success(),
        "resume of a running container fails"
    );

    let stats: serde_json::Value =
        serde_json::from_str(&rt.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["id"], id.as_str());
    assert_eq!(stats["data"]["pids"]["current"], 1);
    assert!(stats["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);

    rt.ok(&["kill", "--all", &id, "KILL"]);
    c.wait_status("stopped");
    rt.ok(&["delete", &id]);
    assert_eq!(rt.ok(&["list", "--format", "json"]), "null\n");
}

#[test]
fn events_stream_until_the_container_stops() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["sleep", "1"]);
    let c = rt.run_detached(&bundle);
    let id = c.id.clone();
    let out = rt.output(&["events", "--interval", "200ms", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{text}");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["type"], "stats");
    }
}

#[test]
fn features_document() {
    let rt = Runtime::default();
    let doc: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert_eq!(doc["ociVersionMin"], "1.0.0");
    assert_eq!(doc["ociVersionMax"], "1.3.0");
    assert!(
        doc["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!("time"))
    );
    assert!(
        doc["mountOptions"]
            .as_array()
            .unwrap()
            .contains(&json!("rro"))
    );
    assert_eq!(doc["linux"]["seccomp"]["enabled"], true);
}

#[test]
fn spec_writes_a_config_that_runs() {
    let rt = Runtime::default();
    let dir = tempfile::tempdir().unwrap();
    rt.ok(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert!(
        text.starts_with("{\n\t\"ociVersion\""),
        "tab-indented like runc"
    );
    let again = rt.output(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("exists"));
    // The default config runs `sh` with a terminal; make it a plain command.
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["true"]);
    config["root"]["path"] = json!(shared_rootfs());
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let id = unique("spec");
    let out = rt.output(&["run", "--bundle", dir.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    rt.ok(&[
        "spec",
        "--rootless",
        "--bundle",
        tempfile::tempdir().unwrap().path().to_str().unwrap(),
    ]);
}

#[test]
fn hafen_runc_symlink_is_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("hafen-runc");
    std::os::unix::fs::symlink(hafen(), &link).unwrap();
    let root = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&link)
        .args(["--root", root.path().to_str().unwrap(), "list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ID"));
    let version = std::process::Command::new(&link)
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).contains("spec: 1.3.0"));
}

#[test]
fn log_file_gets_one_json_error_line() {
    let rt = Runtime::default();
    let log = rt.root.path().join("log.json");
    let out = rt
        .cmd(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            "missing",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("container missing does not exist"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("does not exist"));
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
}
