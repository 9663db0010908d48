//! The image commands of the `hafen` CLI, through a private daemon: their
//! output as the docker CLI prints it, their exit codes, bad input that
//! leaves the store as it was, and a daemon killed in the middle of a load.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;
use support::daemon::{Daemon, data};

const BUSYIMG: &str = "sha256:e9576207f977e3456653cd1f3c1e4748562f6b7f6b60b05518bdc539f77ba421";
const BUSYPLUS: &str = "sha256:882fca61bf03056e8cd61460586022f22b101f72013b8149c1ccaaaf391257d9";
const PODMAN_OCI: &str = "sha256:974eb6b9594a9d3f0a6bce8f61de2fa14ea07d37918e450daf4789381a1d9200";
const BASE_LAYER: &str = "sha256:e677197387592ebcadfde8e48ad44961d25fa0009ff899e0e312f57df5716a0b";

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn archives_from_docker_and_podman_load_with_their_ids() {
    let d = Daemon::new();
    assert_eq!(
        d.load("docker-save-multi.tar"),
        "Loaded image: busyimg:latest\nLoaded image: busyimg:v1\nLoaded image: busyplus:latest\n"
    );
    assert_eq!(
        d.load("podman-save.tar"),
        "Loaded image: localhost/busyimg:latest\n"
    );
    assert_eq!(
        d.load("podman-save-oci.tar"),
        "The image localhost/busyimg:latest already exists, renaming the old one with ID \
         sha256:e9576207f977e3456653cd1f3c1e4748562f6b7f6b60b05518bdc539f77ba421 to empty string\n\
         Loaded image: localhost/busyimg:latest\n"
    );
    let out = d.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    let mut got = lines(&out);
    got.sort();
    // podman's OCI archive has its own config (another ID) and takes the
    // name `localhost/busyimg:latest` over from the docker archive's image.
    assert_eq!(
        got,
        [
            format!("busyimg:latest {BUSYIMG}"),
            format!("busyimg:v1 {BUSYIMG}"),
            format!("busyplus:latest {BUSYPLUS}"),
            format!("localhost/busyimg:latest {PODMAN_OCI}"),
        ]
    );
}

#[test]
fn compressed_archives_load_too() {
    let d = Daemon::new();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&std::fs::read(data("docker-save.tar")).unwrap())
            .unwrap();
        e.finish().unwrap()
    };
    let out = d.with_stdin(&["load"], &gz);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: busyimg:latest\n"
    );
    let zst = zstd::encode_all(
        std::fs::read(data("podman-save-oci.tar"))
            .unwrap()
            .as_slice(),
        3,
    )
    .unwrap();
    let file = d.dir.path().join("oci.tar.zst");
    std::fs::write(&file, zst).unwrap();
    assert_eq!(
        load_path(&d, &file),
        "Loaded image: localhost/busyimg:latest\n"
    );
    assert_eq!(
        d.ok(&["images", "--no-trunc", "-q"]),
        format!("{PODMAN_OCI}\n{BUSYIMG}\n")
    );
}

fn load_path(d: &Daemon, path: &std::path::Path) -> String {
    d.ok(&["load", "-i", path.to_str().unwrap()])
}

#[test]
fn images_prints_dockers_table_filters_and_formats() {
    let d = Daemon::new();
    d.load("docker-save-multi.tar");
    let out = d.ok(&["images"]);
    let rows = lines(&out);
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert_eq!(rows.len(), 4);
    assert!(
        rows[1].starts_with("busyplus     latest    882fca61bf03   "),
        "{out}"
    );
    assert!(rows[1].ends_with("   1.98MB"), "{out}");

    // -q: one short ID per image, not per tag.
    assert_eq!(
        d.ok(&["images", "-q"]),
        "882fca61bf03\ne9576207f977\ne9576207f977\n"
    );
    assert_eq!(
        d.ok(&["images", "-q", "busyimg"]),
        "e9576207f977\ne9576207f977\n"
    );
    assert_eq!(d.ok(&["images", "-q", "busyimg:v1"]), "e9576207f977\n");

    let f = |filter: &str| {
        d.ok(&[
            "images",
            "--filter",
            filter,
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ])
    };
    assert_eq!(
        f("reference=busy*:latest"),
        "busyplus:latest\nbusyimg:latest\n"
    );
    assert_eq!(
        f("label=org.example.purpose=hafen-test"),
        "busyplus:latest\n"
    );
    assert_eq!(f("label=org.example.purpose"), "busyplus:latest\n");
    assert_eq!(f("before=busyplus"), "busyimg:latest\nbusyimg:v1\n");
    assert_eq!(f("since=busyimg:v1"), "busyplus:latest\n");
    assert_eq!(f("dangling=true"), "");

    let out = d.ok(&["images", "--format", "{{json .}}", "busyplus"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ID"], "882fca61bf03");
    assert_eq!(v["Repository"], "busyplus");
    assert_eq!(v["Size"], "1.98MB");
    // API 1.51 counts containers in the list (older versions say N/A).
    assert_eq!(v["Containers"], "0");

    let out = d.ok(&["images", "--format", "table {{.ID}}\t{{.Tag}}", "busyimg"]);
    assert_eq!(
        out,
        "IMAGE ID       TAG\ne9576207f977   latest\ne9576207f977   v1\n"
    );

    // Bad filters and templates are refused, not ignored.
    let bad = d.output(&["images", "--filter", "colour=red"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid filter 'colour'"));
    let bad = d.output(&["images", "--format", "{{.Nope"]);
    assert_ne!(bad.status.code(), Some(0));
}

#[test]
fn inspect_and_history_have_dockers_shape() {
    let d = Daemon::new();
    d.load("docker-save-multi.tar");
    let out = d.ok(&["image", "inspect", "busyplus"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let img = &v[0];
    assert_eq!(img["Id"], BUSYPLUS);
    assert_eq!(img["RepoTags"], serde_json::json!(["busyplus:latest"]));
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["Architecture"], "amd64");
    assert_eq!(
        img["Config"]["Cmd"],
        serde_json::json!(["cat", "/hello.txt"])
    );
    assert_eq!(img["Config"]["Labels"]["org.example.purpose"], "hafen-test");
    assert!(
        img["Config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("GREETING=hello"))
    );
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert_eq!(img["RootFS"]["Layers"][0], BASE_LAYER);
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert!(img["Size"].as_u64().unwrap() > 1_982_429);

    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Config.Cmd}}",
            "busyimg:v1"
        ]),
        format!("{BUSYIMG} [sh]\n")
    );
    // A missing image among found ones: the found ones, an error, exit 1.
    let out = d.output(&["image", "inspect", "--format", "{{.Id}}", "busyimg", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{BUSYIMG}\n"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such image: nope"));

    let out = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
        "busyplus",
    ]);
    let rows = lines(&out);
    assert_eq!(rows.len(), 5, "{out}");
    assert!(
        rows[0].starts_with(&format!("{BUSYPLUS}|/bin/sh -c #(nop)  CMD [\"cat\"")),
        "{out}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("COPY file:") && r.ends_with("|17B")),
        "{out}"
    );
    // A loaded image has no parent chain: as with docker, the layers
    // below the top have no ID.
    assert!(
        rows.last().unwrap().starts_with("<missing>||1.98MB"),
        "{out}"
    );
    assert_eq!(d.ok(&["history", "-q", "busyimg"]), "e9576207f977\n");
}

#[test]
fn tag_and_rmi_untag_then_delete_as_docker_does() {
    let d = Daemon::new();
    d.load("docker-save.tar");
    d.ok(&["tag", "busyimg", "registry.example:5000/team/app:1.0"]);
    d.ok(&["tag", "e9576207f977", "other"]);
    let out = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut got = lines(&out);
    got.sort();
    assert_eq!(
        got,
        [
            "busyimg:latest",
            "other:latest",
            "registry.example:5000/team/app:1.0"
        ]
    );

    // Bad references are refused.
    let out = d.output(&["tag", "busyimg", "team/Upper"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be lowercase"));
    let out = d.output(&["tag", "nope", "x"]);
    assert_eq!(out.status.code(), Some(1));

    // An ID that several repositories use needs -f.
    let out = d.output(&["rmi", "e9576207f977"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("unable to delete e9576207f977 (must be forced) - image is referenced in multiple repositories")
    );
    assert_eq!(d.ok(&["rmi", "other"]), "Untagged: other:latest\n");
    assert_eq!(
        d.ok(&["image", "rm", "registry.example:5000/team/app:1.0"]),
        "Untagged: registry.example:5000/team/app:1.0\n"
    );
    // The last tag: the image goes, and its layer with it.
    assert_eq!(
        d.ok(&["rmi", "busyimg"]),
        format!("Untagged: busyimg:latest\nDeleted: {BUSYIMG}\nDeleted: {BASE_LAYER}\n")
    );
    assert_eq!(d.ok(&["images", "-q"]), "");
    let out = d.output(&["rmi", "busyimg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such image: busyimg:latest"));

    // -f removes all tags at once.
    d.load("docker-save-multi.tar");
    let out = d.ok(&["rmi", "-f", "e9576207f977"]);
    assert!(
        out.starts_with("Untagged: busyimg:latest\nUntagged: busyimg:v1\n"),
        "{out}"
    );
    // busyplus still needs the base layer: the parent image is untagged only.
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}"]),
        "busyplus\n"
    );
}

#[test]
fn prune_removes_dangling_images_or_all_unused() {
    let d = Daemon::new();
    d.load("docker-save.tar");
    d.load("podman-save-oci.tar");
    // Retag the OCI image's name onto busyimg: the OCI one dangles.
    d.ok(&["tag", "busyimg", "localhost/busyimg:latest"]);
    assert_eq!(
        d.ok(&["images", "--filter", "dangling=true", "--format", "{{.ID}}"]),
        "974eb6b9594a\n"
    );
    let out = d.ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with(&format!("Deleted Images:\ndeleted: {PODMAN_OCI}\n")),
        "{out}"
    );
    assert!(
        out.ends_with("Total reclaimed space: 0B\n") || out.contains("Total reclaimed space:"),
        "{out}"
    );
    // Nothing dangles any more.
    assert_eq!(
        d.ok(&["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    let out = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains(&format!("deleted: {BUSYIMG}")), "{out}");
    assert!(out.ends_with("Total reclaimed space: 1.982MB\n"), "{out}");
    assert_eq!(d.ok(&["images", "-q"]), "");
    // Without -f it asks; no answer means no.
    let out = d.with_stdin(&["image", "prune"], b"");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Are you sure you want to continue?"));
}

#[test]
fn save_and_load_round_trip_between_daemons() {
    let a = Daemon::new();
    a.load("docker-save-multi.tar");
    let archive = a.dir.path().join("out.tar");
    a.ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "busyimg:latest",
        "busyplus",
    ]);
    // The same archive to stdout.
    let out = a.output(&["save", "busyimg:latest", "busyplus"]);
    assert!(out.status.success());
    assert_eq!(
        out.stdout,
        std::fs::read(&archive).unwrap(),
        "save is deterministic"
    );

    let b = Daemon::new();
    assert_eq!(
        b.ok(&["load", "-i", archive.to_str().unwrap()]),
        "Loaded image: busyimg:latest\nLoaded image: busyplus:latest\n"
    );
    let ids = |d: &Daemon| {
        d.ok(&[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}} {{.ID}}",
        ])
    };
    assert_eq!(ids(&b), format!("busyplus {BUSYPLUS}\nbusyimg {BUSYIMG}\n"));
    // And from stdin.
    let c = Daemon::new();
    let out = c.with_stdin(&["load"], &std::fs::read(&archive).unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ids(&c), ids(&b));

    // A missing image: an error, and no file written.
    let missing = a.dir.path().join("missing.tar");
    let out = a.output(&["save", "-o", missing.to_str().unwrap(), "busyimg", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    assert!(!missing.exists());
}

/// A tar of a tiny root filesystem, made here.
fn rootfs_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o755);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *content).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn import_makes_a_one_layer_image_with_changes() {
    let d = Daemon::new();
    let tarball = d.dir.path().join("rootfs.tar");
    std::fs::write(
        &tarball,
        rootfs_tar(&[("bin/hello", b"#!/bin/sh\necho hi\n")]),
    )
    .unwrap();
    let out = d.ok(&[
        "import",
        "--change",
        "CMD [\"/bin/hello\"]",
        "-c",
        "ENV A=1 B=2",
        "-c",
        "WORKDIR /srv",
        "-m",
        "made in a test",
        tarball.to_str().unwrap(),
        "imported:v1",
    ]);
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    let v: Value = serde_json::from_str(&d.ok(&["image", "inspect", "imported:v1"])).unwrap();
    let img = &v[0];
    assert_eq!(img["Id"], id);
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["/bin/hello"]));
    assert_eq!(img["Config"]["WorkingDir"], "/srv");
    assert_eq!(img["Comment"], "made in a test");
    let env = img["Config"]["Env"].as_array().unwrap();
    assert!(env.contains(&Value::from("A=1")) && env.contains(&Value::from("B=2")));
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(img["Size"], 18);

    // From stdin, untagged.
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&rootfs_tar(&[("etc/motd", b"hello\n")]))
            .unwrap();
        e.finish().unwrap()
    };
    let out = d.with_stdin(&["import", "-"], &gz);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        d.ok(&[
            "images",
            "--filter",
            "dangling=true",
            "--format",
            "{{.Size}}"
        ]),
        "6B\n"
    );

    // A change docker does not allow in import is refused.
    let out = d.output(&["import", "-c", "RUN true", tarball.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RUN"));
}

/// Replaces the first file in a tar whose name satisfies `pick`.
fn rewrite_tar(
    archive: &[u8],
    pick: impl Fn(&str) -> bool,
    with: impl Fn(Vec<u8>) -> Vec<u8>,
) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let mut done = false;
    let mut a = tar::Archive::new(archive);
    for entry in a.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        let mut h = entry.header().clone();
        if !done && pick(&path) {
            data = with(data);
            h.set_size(data.len() as u64);
            done = true;
        }
        h.set_cksum();
        out.append_data(&mut h, &path, data.as_slice()).unwrap();
    }
    assert!(done, "nothing to rewrite");
    out.into_inner().unwrap()
}

#[test]
fn bad_archives_and_layers_are_refused_and_the_store_is_unchanged() {
    let d = Daemon::new();
    d.load("docker-save.tar");
    let images_before = d.ok(&["images", "-a", "--no-trunc"]);
    let files_before = d.store_files();
    let good = std::fs::read(data("docker-save-multi.tar")).unwrap();

    let check = |what: &str, archive: &[u8], expect: &str| {
        let out = d.with_stdin(&["load"], archive);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(expect), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
        assert_eq!(
            d.ok(&["images", "-a", "--no-trunc"]),
            images_before,
            "{what}"
        );
        assert_eq!(d.store_files(), files_before, "{what}");
    };

    // A layer whose bytes do not match its digest: a flipped byte in the
    // content of hello.txt, busyplus's second layer.
    let corrupt = rewrite_tar(
        &good,
        |p| p.starts_with("aeafe6fbe303") && p.ends_with("/layer.tar"),
        |mut b| {
            assert_eq!(&b[512..517], b"hello");
            b[512] ^= 0x20;
            b
        },
    );
    check(
        "corrupt blob",
        &corrupt,
        "invalid diffID for layer 1: expected sha256:3655fa4e",
    );
    check("truncated", &good[..good.len() / 2], "truncated");
    check("not a tar", b"hello, this is not an archive", "");
    // A manifest naming a layer the archive lacks.
    let missing = rewrite_tar(
        &good,
        |p| p == "manifest.json",
        |m| {
            let m = String::from_utf8(m).unwrap();
            let changed = m.replacen(
                "b7439b60dffeb1714ba9845b72f68e05e4e622c360613dff7065fb016eee6c53/layer.tar",
                "nothere/layer.tar",
                1,
            );
            assert_ne!(m, changed);
            changed.into_bytes()
        },
    );
    check("missing layer", &missing, "nothere/layer.tar");

    // Malicious layers, imported as root filesystems.
    let mut traversal = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    // tar::Builder refuses `..` in names: write the name by hand.
    h.as_old_mut().name[..11].copy_from_slice(b"../../evil\0");
    h.set_cksum();
    traversal.append(&h, &b"evil"[..]).unwrap();
    let traversal = traversal.into_inner().unwrap();

    let mut escape = tar::Builder::new(Vec::new());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    escape.append_link(&mut link, "etc", "/tmp").unwrap();
    let mut file = tar::Header::new_gnu();
    file.set_size(4);
    file.set_mode(0o644);
    escape
        .append_data(&mut file, "etc/evil", &b"evil"[..])
        .unwrap();
    let escape = escape.into_inner().unwrap();

    for (what, layer) in [("traversal", traversal), ("symlink escape", escape)] {
        let out = d.with_stdin(&["import", "-", "evil:latest"], &layer);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(
            err.contains("refus") || err.contains("unsafe") || err.contains("outside"),
            "{what}: {err}"
        );
        assert_eq!(
            d.ok(&["images", "-a", "--no-trunc"]),
            images_before,
            "{what}"
        );
        assert_eq!(d.store_files(), files_before, "{what}");
    }
    assert!(!std::path::Path::new("/tmp/evil").exists());
    assert!(!std::path::Path::new("/evil").exists());
}

#[test]
fn a_daemon_killed_in_the_middle_of_a_load_leaves_a_store_the_next_one_cleans_up() {
    let d = Daemon::new();
    d.start();
    let archive = std::fs::read(data("docker-save-multi.tar")).unwrap();
    let mut client = d
        .cmd(&["load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    // Most of the archive, then nothing: the daemon is mid-load.
    let part = archive.len() * 3 / 4;
    stdin.write_all(&archive[..part]).unwrap();
    stdin.flush().unwrap();
    // Wait until the daemon has taken bytes into its ingest area.
    let ingest = d.root().join("image/content/ingest");
    let mut busy = false;
    for _ in 0..500 {
        if std::fs::read_dir(&ingest)
            .map(|mut r| r.next().is_some())
            .unwrap_or(false)
        {
            busy = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    d.kill_hard();
    drop(stdin);
    let out = client.wait_with_output().unwrap();
    assert!(busy, "the daemon was ingesting when it died");
    assert_ne!(out.status.code(), Some(0));

    // The next command starts a new daemon, which cleans up.
    assert_eq!(d.ok(&["images", "-a", "-q"]), "");
    let clean = Daemon::new();
    clean.start();
    assert_eq!(d.store_files(), clean.store_files());
    // And the same archive loads fine.
    assert_eq!(
        d.load("docker-save-multi.tar"),
        "Loaded image: busyimg:latest\nLoaded image: busyimg:v1\nLoaded image: busyplus:latest\n"
    );
    clean.load("docker-save-multi.tar");
    assert_eq!(d.store_files(), clean.store_files());
}
