//! Hooks: each kind runs at its point of the lifecycle, in the right
//! namespaces, with the state on stdin; failures behave as the
//! specification says.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::*;

/// A hook that appends `<name> <stdin> <ns>` to `log` (the ns is the mount
/// namespace of the hook, to tell where it ran).
fn hook(name: &str, log: &Path) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("read -r state; echo \"{name} $(readlink /proc/self/ns/mnt) $state\" >> {}", log.display())]
    })
}

fn entries(log: &Path) -> Vec<(String, String, Value)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let name = parts.next().unwrap().to_string();
            let ns = parts.next().unwrap().to_string();
            (
                name,
                ns,
                serde_json::from_str(parts.next().unwrap()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_hook_runs_in_order_with_the_state() {
    let rt = Runtime::default();
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("hooks.log");
    let bundle = Bundle::new(&["/checker", "sleep", "60"]).with(|c| {
        // createContainer runs before pivot_root with the host's paths; the
        // startContainer hook runs in the container, where the log directory
        // is bind-mounted at the same path.
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": logdir.path(), "type": "bind", "source": logdir.path(), "options": ["bind"]}));
        c["hooks"] = json!({
            "prestart": [hook("prestart", &log)],
            "createRuntime": [hook("createRuntime", &log)],
            "createContainer": [hook("createContainer", &log)],
            "startContainer": [hook("startContainer", &log)],
            "poststart": [hook("poststart", &log)],
            "poststop": [hook("poststop", &log)]
        });
        c["annotations"] = json!({"org.example.key": "value"});
    });
    let c = rt.create(&bundle);
    let pid = c.pid();
    let after_create = entries(&log);
    let names: Vec<&str> = after_create.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["prestart", "createRuntime", "createContainer"]);
    let host_mnt = host_ns("mnt");
    let container_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .display()
        .to_string();
    assert_eq!(
        after_create[0].1, host_mnt,
        "prestart runs in the runtime's namespace"
    );
    assert_eq!(after_create[1].1, host_mnt);
    assert_eq!(
        after_create[2].1, container_mnt,
        "createContainer runs in the container's namespace"
    );
    for (_, _, state) in &after_create {
        assert_eq!(
            state["status"], "created",
            "steps 3-5 come after the environment is created"
        );
        assert_eq!(state["id"], c.id.as_str());
        assert_eq!(state["bundle"], bundle.path().to_str().unwrap());
        assert_eq!(state["annotations"]["org.example.key"], "value");
    }
    assert_eq!(after_create[0].2["pid"], pid);
    assert_eq!(
        after_create[2].2["pid"], 1,
        "the pid as seen in the container"
    );

    rt.ok(&["start", &c.id]);
    let after_start = entries(&log);
    let names: Vec<&str> = after_start.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names[3..], ["startContainer", "poststart"]);
    assert_eq!(after_start[3].1, container_mnt);
    assert_eq!(after_start[3].2["status"], "created");
    assert_eq!(after_start[4].1, host_mnt);
    assert_eq!(after_start[4].2["status"], "running");
    assert_eq!(after_start[4].2["pid"], pid);

    rt.ok(&["delete", "--force", &c.id]);
    let after_delete = entries(&log);
    let last = after_delete.last().unwrap();
    assert_eq!(last.0, "poststop");
    assert_eq!(last.2["status"], "stopped");
    assert!(
        last.2.get("pid").is_none(),
        "no pid after the container is gone"
    );
}

#[test]
fn a_failing_create_hook_fails_create_and_undoes_it() {
    let rt = Runtime::default();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let bundle = Bundle::new(&["/checker", "report"]).with(|c| {
            c["hooks"] = json!({kind: [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 3"]}]});
        });
        let c = rt.container();
        let (status, err) = rt.detached(
            &["create", "--bundle", bundle.path().to_str().unwrap(), &c.id],
            bundle.path(),
        );
        assert_eq!(status.code(), Some(1), "{kind}");
        assert!(
            err.contains(&format!("{kind} hook #0")) && err.contains("hook-said-no"),
            "{kind}: {err}"
        );
        assert!(
            rt.ok(&["list", "-q"]).is_empty(),
            "{kind}: nothing half-made"
        );
        assert!(cgroup_dirs_named(&c.id).is_empty(), "{kind}");
    }
}

#[test]
fn a_failing_poststop_hook_is_only_a_warning_and_timeouts_kill_hooks() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["true"]).with(|c| {
        c["hooks"] = json!({"poststop": [{"path": "/bin/false"}]});
    });
    let (out, _c) = rt.run(&bundle);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("poststop hook #0"),
        "warned: {}",
        stderr(&out)
    );

    let bundle = Bundle::new(&["true"]).with(|c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    });
    let started = std::time::Instant::now();
    let (out, _c) = rt.run(&bundle);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("timeout of 1s"), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
