//! Bad input: each mistake gets one line naming the problem, a non-zero
//! exit, and leaves no half-made container, cgroup or mount behind.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

/// Runs `create` and checks the failure: exit 1, one line on stderr that
/// contains `needle`, and nothing left behind.
fn refused(rt: &Runtime, bundle_dir: &std::path::Path, id: &str, needle: &str) {
    let out = rt.output(&["create", "--bundle", bundle_dir.to_str().unwrap(), id]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("hafen: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    assert!(!rt.root.path().join(id).exists(), "no state left for {id}");
    assert!(cgroup_dirs_named(id).is_empty(), "no cgroup left for {id}");
    assert!(
        mounts_containing(bundle_dir.to_str().unwrap()).is_empty(),
        "no mount left"
    );
}

#[test]
fn missing_and_malformed_configs() {
    let rt = Runtime::default();
    let empty = tempfile::tempdir().unwrap();
    refused(&rt, empty.path(), &unique("e"), "config.json: no such file");
    std::fs::write(
        empty.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\",\n \"process\": [",
    )
    .unwrap();
    refused(&rt, empty.path(), &unique("e"), "line 2");
    std::fs::write(empty.path().join("config.json"), "not json").unwrap();
    refused(&rt, empty.path(), &unique("e"), "invalid configuration");
    refused(
        &rt,
        std::path::Path::new("/nonexistent/bundle"),
        &unique("e"),
        "no such directory",
    );
}

#[test]
fn bad_values_in_the_config() {
    let rt = Runtime::default();
    type Change = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "bogus"}))
            }),
            "bogus",
        ),
        (
            Box::new(|c| c["ociVersion"] = json!("2.0.0")),
            "not supported",
        ),
        (
            Box::new(|c| c["root"]["path"] = json!("/nonexistent/rootfs")),
            "does not exist",
        ),
        (
            Box::new(|c| c["process"]["args"] = json!([])),
            "process.args is empty",
        ),
        (
            Box::new(|c| c["process"]["cwd"] = json!("relative")),
            "not an absolute path",
        ),
        (
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "pid"}))
            }),
            "twice",
        ),
        (
            Box::new(|c| c["process"]["capabilities"]["bounding"] = json!(["CAP_NOT_A_CAP"])),
            "CAP_NOT_A_CAP",
        ),
        (
            Box::new(|c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOPE"})),
            "SCMP_ACT_NOPE",
        ),
        (
            Box::new(|c| c["hooks"] = json!({"prestart": [{"path": "relative/hook"}]})),
            "not absolute",
        ),
        (
            Box::new(|c| c["linux"]["rootfsPropagation"] = json!("sideways")),
            "rootfsPropagation",
        ),
    ];
    for (change, needle) in cases {
        let bundle = Bundle::new(&["true"]).with(change);
        refused(&rt, bundle.path(), &unique("bad"), needle);
    }
}

#[test]
fn ids_in_use_and_invalid_ids() {
    let rt = Runtime::default();
    let bundle = Bundle::new(&["/checker", "sleep", "60"]);
    let c = rt.create(&bundle);
    let out = rt.output(&["create", "--bundle", bundle.path().to_str().unwrap(), &c.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(c.status(), "created", "the first container is untouched");
    for bad in ["../escape", "a/b", ".", ""] {
        let out = rt.output(&["create", "--bundle", bundle.path().to_str().unwrap(), bad]);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        let err = stderr(&out);
        assert!(
            err.contains("container ID") || err.contains("container id"),
            "{bad:?}: {err}"
        );
    }
    assert!(!rt.root.path().parent().unwrap().join("escape").exists());
}

#[test]
fn operations_on_missing_or_stopped_containers() {
    let rt = Runtime::default();
    for args in [
        vec!["state", "nope"],
        vec!["start", "nope"],
        vec!["kill", "nope"],
        vec!["delete", "nope"],
        vec!["pause", "nope"],
        vec!["exec", "nope", "true"],
    ] {
        let out = rt.output(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains("container nope does not exist"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        rt.output(&["exec", "nope", "true"]).status.code(),
        Some(255),
        "exec failures exit 255"
    );
    let c = rt.create(&Bundle::new(&["true"]));
    rt.ok(&["start", &c.id]);
    c.wait_status("stopped");
    for (args, needle) in [
        (
            vec!["start", c.id.as_str()],
            "cannot start a container that has stopped",
        ),
        (vec!["kill", c.id.as_str()], "container not running"),
        (vec!["pause", c.id.as_str()], "container not running"),
        (
            vec!["exec", c.id.as_str(), "true"],
            "cannot exec in a stopped container",
        ),
    ] {
        let out = rt.output(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    rt.ok(&["delete", &c.id]);
}

#[test]
fn a_bad_signal_is_refused() {
    let rt = Runtime::default();
    let c = rt.create(&Bundle::new(&["/checker", "sleep", "60"]));
    let out = rt.output(&["kill", &c.id, "SIGNOPE"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown signal"), "{}", stderr(&out));
    assert_eq!(c.status(), "created");
}
