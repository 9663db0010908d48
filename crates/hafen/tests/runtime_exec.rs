//! `exec`: a second process joins the container's namespaces, cgroup and
//! restrictions, with runc's flags.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

#[test]
fn exec_joins_everything_of_the_container() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "sleep", "60"]).with(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "cgroup"}));
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]});
    });
    let c = rt.run_detached(&bundle);
    let pid = c.pid();
    let out = rt.output(&["exec", &c.id, "/checker", "report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_json(&out.stdout);
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let init = std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
            .unwrap()
            .display()
            .to_string();
        assert_eq!(r["namespaces"][kind], init, "{kind}");
    }
    assert_ne!(r["pid"], 1);
    assert_eq!(r["hostname"], "hafen-test");
    // In the container's cgroup namespace, its cgroup is the root.
    let cgroup = r["cgroup"].as_str().unwrap();
    assert!(cgroup.lines().all(|l| l.ends_with(":/")), "{cgroup}");
    assert_eq!(r["no_new_privs"], "1");
    assert_eq!(r["seccomp"], "2", "the container's seccomp filter");
    let out = rt.output(&["exec", &c.id, "/checker", "try", "mkdir", "/tmp/x"]);
    assert_eq!(parse_json(&out.stdout)["errno"], 42);
    // An exec'd process is in the container's cgroups: it shows in ps.
    rt.ok_detached(
        &["exec", "--detach", &c.id, "/checker", "sleep", "60"],
        bundle.path(),
    );
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &c.id])).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&pid));
}

#[test]
fn exec_flags_override_the_process() {
    let rt = Runtime::default();
    let c = rt.run_detached(&Bundle::new(&["/checker", "sleep", "60"]));
    let out = rt.output(&[
        "exec",
        "--env",
        "FOO=bar",
        "-e",
        "TERM=dumb",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        "-g",
        "5",
        "--cap",
        "CAP_CHOWN",
        &c.id,
        "/checker",
        "report",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_json(&out.stdout);
    assert_eq!(r["env"]["FOO"], "bar");
    assert_eq!(r["env"]["TERM"], "dumb", "overrides the config's TERM");
    assert_eq!(r["cwd"], "/tmp");
    assert_eq!(
        (r["uid"].as_u64(), r["gid"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(r["groups"], json!([5]));
    // --cap adds to bounding, effective, permitted and ambient (runc 1.1).
    assert_eq!(r["caps"]["ambient"], cap_mask(&[0]));
    assert_eq!(
        r["caps"]["effective"],
        cap_mask(&[0]),
        "a non-root user keeps the added capability"
    );
    assert_eq!(r["caps"]["bounding"], cap_mask(&[0, 5, 10, 29]));
}

#[test]
fn exec_with_a_process_file_detached_and_exit_codes() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "sleep", "60"]);
    let c = rt.run_detached(&bundle);
    let process = bundle.path().join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["/checker", "sleep", "60"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}).to_string(),
    )
    .unwrap();
    let pid_file = bundle.path().join("exec.pid");
    rt.ok_detached(
        &[
            "exec",
            "--process",
            process.to_str().unwrap(),
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &c.id,
        ],
        bundle.path(),
    );
    let exec_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &c.id])).unwrap();
    assert!(pids.contains(&exec_pid), "{pids:?} has {exec_pid}");
    let cmdline = std::fs::read_to_string(format!("/proc/{exec_pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with("/checker\0sleep"));
    let out = rt.output(&["exec", &c.id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let out = rt.output(&["exec", &c.id, "no-such-program"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("executable file not found in $PATH"),
        "{}",
        stderr(&out)
    );
    let out = rt.output(&["exec", &c.id]);
    assert_eq!(out.status.code(), Some(255));
}

#[test]
fn exec_into_a_paused_container() {
    let rt = Runtime::default();
    let c = rt.run_detached(&Bundle::new(&["/checker", "sleep", "60"]));
    rt.ok(&["pause", &c.id]);
    let out = rt.output(&["exec", &c.id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("paused"), "{}", stderr(&out));
    rt.ok(&["resume", &c.id]);
    assert!(rt.output(&["exec", &c.id, "true"]).status.success());
}

#[test]
fn exec_in_a_user_namespace() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "sleep", "60"]).with(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    });
    let c = rt.run_detached(&bundle);
    let out = rt.output(&["exec", &c.id, "/checker", "report"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = parse_json(&out.stdout);
    assert_eq!(r["uid"], 0);
    assert!(r["uid_map"].as_str().unwrap().contains("200000"));
}

#[test]
fn exec_with_a_terminal_in_the_foreground() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        return;
    }
    let rt = Runtime::default();
    let c = rt.run_detached(&Bundle::new(&["/checker", "sleep", "60"]));
    let command = format!(
        "{} runtime --root {} exec -t {} sh -c 'tty; echo exec-done'",
        hafen().display(),
        rt.root.path().display(),
        c.id
    );
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", stderr(&out));
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("exec-done"), "{text}");
}
