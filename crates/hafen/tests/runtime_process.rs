//! `process`: args, env, cwd, user, umask, terminal, rlimits,
//! capabilities, noNewPrivileges, oomScoreAdj, labels, personality.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::os::unix::net::UnixListener;

use serde_json::json;
use support::*;

#[test]
fn args_env_cwd_user_groups_umask_home() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report", "second arg"]).with(|c| {
        c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
        c["process"]["cwd"] = json!("/tmp/work/dir");
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 27], "umask": 0o027});
    });
    let r = rt.run_checker(&bundle);
    assert_eq!(r["args"], json!(["/checker", "report", "second arg"]));
    assert_eq!(r["env"]["FOO"], "bar baz");
    assert_eq!(
        r["env"]["HOME"], "/home/user",
        "HOME from the container's /etc/passwd"
    );
    assert_eq!(r["cwd"], "/tmp/work/dir", "a missing cwd is created");
    assert_eq!(
        (r["uid"].as_u64(), r["gid"].as_u64(), r["euid"].as_u64()),
        (Some(1000), Some(1000), Some(1000))
    );
    assert_eq!(r["groups"], json!([5, 27]));
    assert_eq!(r["umask"], 0o027);
}

#[test]
fn rlimits_are_set_and_a_hard_limit_is_never_raised() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]).with(|c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
        ]);
    });
    let r = rt.run_checker(&bundle);
    assert_eq!(r["rlimits"]["nofile"], json!([256, 512]));
    assert_eq!(r["rlimits"]["core"], json!([0, 0]));

    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap();
    let above = hard + 1000;
    let bundle = Bundle::new(&["true"]).with(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": above, "hard": above}])
    });
    let (out, c) = rt.run(&bundle);
    let is_root_with_sys_resource = rustix::thread::capabilities(None).is_ok_and(|s| {
        s.effective
            .contains(rustix::thread::CapabilitySet::SYS_RESOURCE)
    });
    if !is_root_with_sys_resource {
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("cannot raise the hard RLIMIT_NOFILE") && err.contains("CAP_SYS_RESOURCE"),
            "{err}"
        );
        assert!(cgroup_dirs_named(&c.id).is_empty());
    }
}

#[test]
fn capabilities_all_five_sets() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]).with(|c| {
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "inheritable": ["CAP_NET_RAW"],
            "ambient": ["CAP_NET_RAW"]
        });
        c["process"]["noNewPrivileges"] = json!(false);
    });
    let r = rt.run_checker(&bundle);
    // Root: at exec the kernel gives root the whole bounding set as
    // permitted and effective (no file capabilities are needed for root).
    assert_eq!(r["caps"]["bounding"], cap_mask(&[0, 5, 13, 7]));
    assert_eq!(r["caps"]["permitted"], cap_mask(&[0, 5, 13, 7]));
    assert_eq!(r["caps"]["effective"], cap_mask(&[0, 5, 13, 7]));
    assert_eq!(r["caps"]["inheritable"], cap_mask(&[13]));
    assert_eq!(r["caps"]["ambient"], cap_mask(&[13]));
    assert_eq!(r["no_new_privs"], "0");
    // Another user keeps only the ambient set across exec.
    let bundle = bundle.with(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    let r = rt.run_checker(&bundle);
    assert_eq!(r["caps"]["bounding"], cap_mask(&[0, 5, 13, 7]));
    assert_eq!(r["caps"]["permitted"], cap_mask(&[13]));
    assert_eq!(r["caps"]["effective"], cap_mask(&[13]));
    assert_eq!(r["caps"]["inheritable"], cap_mask(&[13]));
    assert_eq!(r["caps"]["ambient"], cap_mask(&[13]));
}

#[test]
fn dropped_capabilities_are_dropped() {
    let rt = Runtime::default();
    // The default set has no CAP_MKNOD, CAP_SYS_ADMIN or CAP_CHOWN.
    let r = rt.run_checker(&Bundle::new(&[
        "/checker",
        "try",
        "mknod",
        "/tmp/node",
        "1",
        "3",
    ]));
    assert_eq!(r["ok"], false);
    assert_eq!(r["errno"], libc::EPERM);
    let r = rt.run_checker(&Bundle::new(&["/checker", "try", "mount", "/tmp"]));
    assert_eq!(r["errno"], libc::EPERM);
    let r = rt.run_checker(&Bundle::new(&["/checker", "try", "sethostname", "evil"]));
    assert_eq!(r["errno"], libc::EPERM);
    // With CAP_MKNOD the same call works (the device cgroup allows mknod).
    let bundle = Bundle::new(&["/checker", "try", "mknod", "/tmp/node", "1", "3"]).with(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
        }
    });
    assert_eq!(rt.run_checker(&bundle)["ok"], true);
}

#[test]
fn no_new_privileges_and_oom_score_adj() {
    let rt = Runtime::default();
    let bundle =
        Bundle::new(&["/checker", "report"]).with(|c| c["process"]["oomScoreAdj"] = json!(500));
    let r = rt.run_checker(&bundle);
    assert_eq!(r["no_new_privs"], "1");
    assert_eq!(r["oom_score_adj"], "500");
}

#[test]
fn lsm_labels_are_accepted_where_the_host_has_none() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]).with(|c| {
        c["process"]["apparmorProfile"] = json!("hafen-default");
        c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    });
    let (out, _c) = rt.run(&bundle);
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    if !apparmor && !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

#[test]
fn personality_linux32() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"])
        .with(|c| c["linux"]["personality"] = json!({"domain": "LINUX32"}));
    let r = rt.run_checker(&bundle);
    assert_eq!(r["personality"].as_i64().unwrap() & 0xff, 0x0008);
}

#[test]
fn a_missing_program_fails_at_create() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["no-such-program"]);
    let c = rt.container();
    let (status, err) = rt.detached(
        &["create", "--bundle", bundle.path().to_str().unwrap(), &c.id],
        bundle.path(),
    );
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("executable file not found in $PATH"), "{err}");
    assert!(rt.ok(&["list", "-q"]).is_empty(), "nothing half-made");
    assert!(cgroup_dirs_named(&c.id).is_empty());
    let bundle = Bundle::new(&["/etc/passwd"]);
    let (status, err) = rt.detached(
        &["create", "--bundle", bundle.path().to_str().unwrap(), &c.id],
        bundle.path(),
    );
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("permission denied"), "{err}");
}

#[test]
fn terminal_through_a_console_socket() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]).with(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 40, "width": 120});
    });
    let socket = bundle.path().join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let c = rt.container();
    let id = c.id.clone();
    let args = [
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--console-socket",
        socket.to_str().unwrap(),
        id.as_str(),
    ];
    let err_log = bundle.path().join("err.log");
    let mut creator = rt
        .cmd(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_log).unwrap())
        .spawn()
        .unwrap();
    let (mut fds, name) = receive_fds(&listener);
    assert_eq!(fds.len(), 1, "exactly one fd");
    let master = fds.pop().unwrap();
    assert_eq!(name, b"/dev/ptmx");
    let status = creator.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&err_log).unwrap()
    );
    let size = rustix::termios::tcgetwinsize(&master).unwrap();
    assert_eq!((size.ws_row, size.ws_col), (40, 120));
    rt.ok(&["start", &id]);
    let mut text = Vec::new();
    let _ = std::fs::File::from(master).read_to_end(&mut text);
    let r = parse_json(&text);
    assert_eq!(r["tty"][0], "/dev/pts/0");
    assert_eq!(r["tty"][1], "/dev/pts/0");
    assert_eq!(
        r["sid"], r["pid"],
        "a session leader with the pty as its terminal"
    );
    let console = r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountpoint"] == "/dev/console");
    assert!(console, "/dev/console is the pty");
    drop(c);
}

#[test]
fn terminal_without_a_console_socket_is_refused_for_create() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["sh"]).with(|c| c["process"]["terminal"] = json!(true));
    let c = rt.container();
    let (status, err) = rt.detached(
        &["create", "--bundle", bundle.path().to_str().unwrap(), &c.id],
        bundle.path(),
    );
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("console socket"), "{err}");
    let bundle = Bundle::new(&["true"]);
    let (status, err) = rt.detached(
        &[
            "create",
            "--bundle",
            bundle.path().to_str().unwrap(),
            "--console-socket",
            "/tmp/x.sock",
            &c.id,
        ],
        bundle.path(),
    );
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("console socket"), "{err}");
}

#[test]
fn run_in_the_foreground_with_a_terminal() {
    // `script` gives the runtime a terminal of its own, as a user's shell would.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        return;
    }
    let rt = Runtime::default();
    let bundle = Bundle::new(&["sh", "-c", "readlink /proc/self/fd/0; tty; echo done"])
        .with(|c| c["process"]["terminal"] = json!(true));
    let command = format!(
        "{} runtime --root {} run --bundle {} {}",
        hafen().display(),
        rt.root.path().display(),
        bundle.path().display(),
        unique("tty")
    );
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", stderr(&out));
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("done"), "{text}");
}

#[test]
fn orphans_of_a_container_are_reaped_by_run() {
    let rt = Runtime::default();
    // Without a pid namespace, orphans are re-parented to `run` (a subreaper).
    let bundle = Bundle::new(&["sh", "-c", "(sleep 0.1 &); (sleep 3 &); sleep 2"]).with(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
    });
    let id = unique("reap");
    let mut child = rt
        .cmd(&["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _c = Container { rt: &rt, id };
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let run_pid = child.id() as i32;
    let mut zombies = Vec::new();
    let mut adopted = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r.to_string()) else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        if fields.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(run_pid) {
            adopted += 1;
            if fields[0] == "Z" {
                zombies.push(stat.clone());
            }
        }
    }
    assert!(zombies.is_empty(), "zombies of run: {zombies:?}");
    assert!(
        adopted >= 2,
        "the init and the long-lived orphan are run's children ({adopted})"
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn io_priority() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "report"]).with(|c| {
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0})
    });
    let r = rt.run_checker(&bundle);
    assert_eq!(
        r["ioprio"].as_i64().unwrap() >> 13,
        3,
        "idle class: {}",
        r["ioprio"]
    );
}
