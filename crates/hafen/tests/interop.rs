//! Archives across tools: what podman saves loads into hafen with its
//! IDs, and what hafen saves loads into podman and reads in skopeo, as a
//! docker archive and as an OCI layout.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::daemon::Daemon;

const BUSYIMG: &str = "sha256:e9576207f977e3456653cd1f3c1e4748562f6b7f6b60b05518bdc539f77ba421";
const BUSYPLUS: &str = "sha256:882fca61bf03056e8cd61460586022f22b101f72013b8149c1ccaaaf391257d9";
const BASE_LAYER: &str = "sha256:e677197387592ebcadfde8e48ad44961d25fa0009ff899e0e312f57df5716a0b";
const PLUS_LAYER: &str = "sha256:3655fa4e46b8602c31f01c942a6cf4df0e0658c25de4519b0a68084fc9e8669b";

/// podman with a private store (vfs: no mounts to leave behind).
fn podman(dir: &Path, args: &[&str]) -> Output {
    Command::new("podman")
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn skopeo(args: &[&str]) -> Value {
    let out = ok(Command::new("skopeo").args(args).output().unwrap());
    serde_json::from_str(&out).unwrap()
}

#[test]
fn podman_loads_what_hafen_saves_and_hafen_loads_what_podman_saves() {
    let d = Daemon::new();
    d.load("docker-save-multi.tar");
    let archive = d.dir.path().join("hafen.tar");
    d.ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "busyimg",
        "busyplus",
    ]);

    let pod = tempfile::Builder::new()
        .prefix("hafen-podman-")
        .tempdir()
        .unwrap();
    let out = ok(podman(
        pod.path(),
        &["load", "-i", archive.to_str().unwrap()],
    ));
    assert!(
        out.contains("Loaded image: localhost/busyplus:latest"),
        "{out}"
    );
    let out = ok(podman(
        pod.path(),
        &[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ],
    ));
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    // A repository named without a tag is saved with all its tags.
    assert_eq!(
        got,
        [
            format!("localhost/busyimg:latest {BUSYIMG}"),
            format!("localhost/busyimg:v1 {BUSYIMG}"),
            format!("localhost/busyplus:latest {BUSYPLUS}"),
        ]
    );

    // And back: podman's own archive of the same image.
    let from_podman = pod.path().join("podman.tar");
    ok(podman(
        pod.path(),
        &[
            "save",
            "-o",
            from_podman.to_str().unwrap(),
            "localhost/busyplus:latest",
        ],
    ));
    let other = Daemon::new();
    assert_eq!(
        other.ok(&["load", "-i", from_podman.to_str().unwrap()]),
        "Loaded image: localhost/busyplus:latest\n"
    );
    assert_eq!(
        other.ok(&["images", "--no-trunc", "-q"]),
        format!("{BUSYPLUS}\n")
    );
    let oci = pod.path().join("podman-oci.tar");
    ok(podman(
        pod.path(),
        &[
            "save",
            "--format",
            "oci-archive",
            "-o",
            oci.to_str().unwrap(),
            "localhost/busyplus:latest",
        ],
    ));
    let out = other.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert!(
        out.ends_with("Loaded image: localhost/busyplus:latest\n"),
        "{out}"
    );
    let v: Value =
        serde_json::from_str(&other.ok(&["image", "inspect", "localhost/busyplus"])).unwrap();
    assert_eq!(
        v[0]["RootFS"]["Layers"],
        serde_json::json!([BASE_LAYER, PLUS_LAYER])
    );
    let _ = podman(pod.path(), &["system", "reset", "-f"]);
}

#[test]
fn skopeo_reads_hafens_archives_as_docker_archives_and_oci_layouts() {
    let d = Daemon::new();
    d.load("docker-save-multi.tar");
    let one = d.dir.path().join("one.tar");
    d.ok(&["save", "-o", one.to_str().unwrap(), "busyplus"]);
    let both = d.dir.path().join("both.tar");
    d.ok(&[
        "save",
        "-o",
        both.to_str().unwrap(),
        "busyimg:v1",
        "busyplus",
    ]);

    for source in [
        format!("docker-archive:{}", one.display()),
        format!("oci-archive:{}", one.display()),
        format!("docker-archive:{}:busyplus:latest", both.display()),
    ] {
        let v = skopeo(&["inspect", &source]);
        assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "{source}: {v}");
        assert_eq!(v["Labels"]["org.example.purpose"], "hafen-test", "{source}");
        let config = skopeo(&["inspect", "--config", &source]);
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!([BASE_LAYER, PLUS_LAYER]),
            "{source}"
        );
    }
    // The OCI layout names its images.
    let v = skopeo(&[
        "inspect",
        &format!("docker-archive:{}:busyimg:v1", both.display()),
    ]);
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);

    // skopeo copies out of it into an OCI directory, verifying every blob.
    let dir = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:plus", dir.path().display());
    let out = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            &format!("oci-archive:{}", one.display()),
            &dest,
        ])
        .output()
        .unwrap();
    ok(out);
    let v = skopeo(&["inspect", "--config", &dest]);
    assert_eq!(v["config"]["Cmd"], serde_json::json!(["cat", "/hello.txt"]));
}
