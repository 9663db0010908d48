//! The image store against real archives made by Docker and Podman, real
//! overlayfs snapshots, and damaged or hostile input.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hafen_image::{DeleteItem, ImageError, ImageEvent, ImageStore, ImportOptions, ListFilters};
use hafen_oci::Digest;

const BUSYIMG: &str = "sha256:e9576207f977e3456653cd1f3c1e4748562f6b7f6b60b05518bdc539f77ba421";
const BUSYPLUS: &str = "sha256:882fca61bf03056e8cd61460586022f22b101f72013b8149c1ccaaaf391257d9";
const PODMAN_OCI: &str = "sha256:974eb6b9594a9d3f0a6bce8f61de2fa14ea07d37918e450daf4789381a1d9200";
const BASE_LAYER: &str = "sha256:e677197387592ebcadfde8e48ad44961d25fa0009ff899e0e312f57df5716a0b";

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

struct Store {
    dir: tempfile::TempDir,
    store: ImageStore,
    events: Arc<Mutex<Vec<ImageEvent>>>,
}

fn open_at(dir: &Path, snapshotter: Option<&str>) -> (ImageStore, Arc<Mutex<Vec<ImageEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let store = ImageStore::open(
        dir,
        snapshotter,
        Arc::new(move |e| sink.lock().unwrap().push(e)),
        "test",
    )
    .unwrap();
    (store, events)
}

fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let (store, events) = open_at(dir.path(), None);
    Store { dir, store, events }
}

impl Store {
    fn load(&self, archive: Vec<u8>) -> Result<Vec<String>, ImageError> {
        self.store.load(Cursor::new(archive), &mut |_| {})
    }

    /// Everything on disk and in the database, to compare before/after.
    fn state(&self) -> String {
        let mut files = Vec::new();
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                if rel.starts_with("meta.db") {
                    continue;
                }
                out.push(rel);
                if e.file_type().unwrap().is_dir() {
                    walk(&p, root, out);
                }
            }
        }
        walk(self.dir.path(), self.dir.path(), &mut files);
        files.sort();
        let images: Vec<String> = self
            .store
            .list(&ListFilters::default(), true)
            .unwrap()
            .iter()
            .map(|i| format!("{} {:?} {:?}", i.id, i.repo_tags, i.repo_digests))
            .collect();
        format!("{files:#?}\n{images:#?}")
    }

    fn actions(&self) -> Vec<&'static str> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.action)
            .collect()
    }
}

#[test]
fn load_a_docker_archive_and_see_what_docker_sees() {
    let s = store();
    let messages = s.load(data("docker-save.tar")).unwrap();
    assert_eq!(messages, vec!["Loaded image: busyimg:latest"]);
    let images = s.store.list(&ListFilters::default(), false).unwrap();
    assert_eq!(images.len(), 1);
    let i = &images[0];
    assert_eq!(i.id.to_string(), BUSYIMG);
    assert_eq!(i.repo_tags, vec!["busyimg:latest"]);
    assert!(i.repo_digests.is_empty());
    assert_eq!(i.size, 1_982_429, "the size dockerd reports");
    let details = s.store.inspect("busyimg").unwrap();
    assert_eq!(details.config.rootfs.diff_ids, vec![BASE_LAYER]);
    assert_eq!(details.config.comment, "busybox rootfs for hafen tests");
    assert_eq!(
        details.config.config.as_ref().unwrap().cmd,
        Some(vec!["sh".to_string()])
    );
    // By ID, short ID and full name too.
    for name in [
        BUSYIMG,
        &BUSYIMG[7..],
        &BUSYIMG[7..19],
        "docker.io/library/busyimg:latest",
    ] {
        assert_eq!(
            s.store.inspect(name).unwrap().summary.id.to_string(),
            BUSYIMG,
            "{name}"
        );
    }
    let history = s.store.history("busyimg").unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].comment, "busybox rootfs for hafen tests");
    assert_eq!(history[0].id.as_ref().unwrap().to_string(), BUSYIMG);
    assert_eq!(history[0].tags, vec!["busyimg:latest"]);
    assert_eq!(history[0].size, 1_982_429);
    // The layer is unpacked: busybox is there.
    let dir = s.store.snapshotter().dir(BASE_LAYER).unwrap();
    assert_eq!(
        std::fs::metadata(dir.join("bin/busybox")).unwrap().len(),
        1_982_256
    );
    assert_eq!(s.actions(), vec!["load"]);
    assert!(
        matches!(s.store.inspect("nosuch"), Err(ImageError::NotFound(n)) if n == "nosuch:latest")
    );
}

#[test]
fn load_podman_archives_docker_and_oci() {
    let s = store();
    assert_eq!(
        s.load(data("podman-save.tar")).unwrap(),
        vec!["Loaded image: localhost/busyimg:latest"]
    );
    assert_eq!(
        s.store
            .inspect("localhost/busyimg")
            .unwrap()
            .summary
            .id
            .to_string(),
        BUSYIMG
    );
    // Compressed into one stream as well.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &data("podman-save-oci.tar")).unwrap();
    let messages = s.load(gz.finish().unwrap()).unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].contains("already exists, renaming the old one"));
    let oci = s.store.inspect("localhost/busyimg:latest").unwrap();
    assert_eq!(
        oci.summary.id.to_string(),
        PODMAN_OCI,
        "the OCI config keeps its digest"
    );
    assert_eq!(
        oci.target.digest.to_string(),
        "sha256:2f327269a2de676cbff718cbd80fe3bb56bd8bb64a1a5eba24f30cd1daae833b",
        "and its manifest too"
    );
    // Both images share the unpacked layer.
    let images = s.store.list(&ListFilters::default(), true).unwrap();
    assert_eq!(images.len(), 2);
    assert!(images.iter().all(|i| i.shared_size == 1_982_429));
    // The first is dangling now.
    let dangling = ListFilters {
        dangling: Some(true),
        ..ListFilters::default()
    };
    let d = s.store.list(&dangling, false).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].id.to_string(), BUSYIMG);
}

#[test]
fn multi_image_archive_with_shared_layers_and_filters() {
    let s = store();
    let messages = s.load(data("docker-save-multi.tar")).unwrap();
    assert_eq!(
        messages,
        vec![
            "Loaded image: busyimg:latest",
            "Loaded image: busyimg:v1",
            "Loaded image: busyplus:latest"
        ]
    );
    let plus = s.store.inspect("busyplus").unwrap();
    assert_eq!(plus.summary.id.to_string(), BUSYPLUS);
    assert_eq!(plus.summary.size, 1_982_429 + 17);
    assert_eq!(plus.summary.labels["org.example.purpose"], "hafen-test");
    let history = s.store.history("busyplus").unwrap();
    assert_eq!(history.len(), 5);
    assert_eq!(history[0].size, 0, "CMD made no layer");
    assert!(history.iter().any(|h| h.size == 17));
    assert!(
        history[1..].iter().all(|h| h.id.is_none()),
        "parents unknown: <missing>"
    );

    let filtered = |f: ListFilters| -> Vec<Vec<String>> {
        s.store
            .list(&f, false)
            .unwrap()
            .into_iter()
            .map(|i| i.repo_tags)
            .collect()
    };
    let by_ref = filtered(ListFilters {
        reference: vec!["busyimg:v*".into()],
        ..ListFilters::default()
    });
    assert_eq!(by_ref, vec![vec!["busyimg:v1".to_string()]]);
    let by_label = filtered(ListFilters {
        labels: vec!["org.example.purpose=hafen-test".into()],
        ..ListFilters::default()
    });
    assert_eq!(by_label, vec![vec!["busyplus:latest".to_string()]]);
}

#[test]
fn import_tag_save_and_load_elsewhere() {
    let s = store();
    let rootfs = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o755);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, "bin/hello", &b"#!x\n\n\n"[..])
            .unwrap();
        b.into_inner().unwrap()
    };
    let id = s
        .store
        .import(
            Cursor::new(rootfs.clone()),
            &ImportOptions {
                reference: Some("myimp:1".into()),
                changes: vec![r#"CMD ["sh"]"#.into(), "ENV A=b".into()],
                source: "-".into(),
                ..ImportOptions::default()
            },
        )
        .unwrap();
    let d = s.store.inspect("myimp:1").unwrap();
    assert_eq!(d.summary.id, id);
    assert_eq!(
        d.config.rootfs.diff_ids,
        vec![Digest::sha256(&rootfs).to_string()],
        "the diff ID is the tarball's digest, byte for byte"
    );
    assert_eq!(d.config.comment, "Imported from -");
    let c = d.config.config.as_ref().unwrap();
    assert_eq!(c.env, Some(vec!["A=b".to_string()]));
    assert_eq!(d.summary.size, 6);
    assert_eq!(s.actions(), vec!["tag", "import"]);
    // A change that is not allowed: nothing is imported.
    let before = s.state();
    let err = s
        .store
        .import(
            Cursor::new(rootfs.clone()),
            &ImportOptions {
                changes: vec!["RUN rm -rf /".into()],
                ..ImportOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "RUN is not a valid change command");
    assert_eq!(before, s.state());

    s.load(data("docker-save-multi.tar")).unwrap();
    s.store.tag("busyplus", "localhost:5000/x/y:2").unwrap();
    let mut saved = Vec::new();
    s.store
        .save(
            &[
                "myimp:1".into(),
                "busyimg".into(),
                "localhost:5000/x/y:2".into(),
            ],
            &mut saved,
        )
        .unwrap();
    let mut again = Vec::new();
    s.store
        .save(
            &[
                "myimp:1".into(),
                "busyimg".into(),
                "localhost:5000/x/y:2".into(),
            ],
            &mut again,
        )
        .unwrap();
    assert!(saved == again, "saving is reproducible");

    let other = store();
    let messages = other.load(saved).unwrap();
    assert_eq!(
        messages,
        vec![
            "Loaded image: myimp:1",
            "Loaded image: busyimg:latest",
            "Loaded image: busyimg:v1",
            "Loaded image: localhost:5000/x/y:2"
        ]
    );
    for (name, id) in [
        ("myimp:1", id.to_string()),
        ("busyimg:v1", BUSYIMG.into()),
        ("localhost:5000/x/y:2", BUSYPLUS.into()),
    ] {
        assert_eq!(
            other.store.inspect(name).unwrap().summary.id.to_string(),
            id,
            "{name}"
        );
    }
    let d = other.store.inspect("localhost:5000/x/y:2").unwrap();
    let dir = other
        .store
        .snapshotter()
        .dir(&d.summary.chain[1].to_string())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("hello.txt")).unwrap(),
        "hello-from-hafen\n"
    );
}

#[test]
fn remove_untags_then_deletes_and_frees_the_layers() {
    let s = store();
    s.load(data("docker-save-multi.tar")).unwrap();
    // Two tags: by ID needs force.
    let err = s.store.remove(&BUSYIMG[7..19], false, true).unwrap_err();
    assert!(
        err.to_string()
            .contains("(must be forced) - image is referenced in multiple repositories"),
        "{err}"
    );
    assert_eq!(
        s.store.remove("busyimg:v1", false, true).unwrap(),
        vec![DeleteItem::Untagged("busyimg:v1".into())]
    );
    let items = s.store.remove("busyplus", false, true).unwrap();
    assert_eq!(items[0], DeleteItem::Untagged("busyplus:latest".into()));
    assert_eq!(items[1], DeleteItem::Deleted(BUSYPLUS.into()));
    assert_eq!(items.len(), 3, "and its own layer (chain ID): {items:?}");
    // The shared base stays for busyimg.
    assert!(s.store.snapshotter().stat(BASE_LAYER).unwrap().is_some());
    let items = s.store.remove(BUSYIMG, true, true).unwrap();
    assert_eq!(
        items,
        vec![
            DeleteItem::Untagged("busyimg:latest".into()),
            DeleteItem::Deleted(BUSYIMG.into()),
            DeleteItem::Deleted(BASE_LAYER.into()),
        ]
    );
    assert!(
        s.store.content().walk().unwrap().is_empty(),
        "every blob is gone"
    );
    assert!(s.store.snapshotter().stat(BASE_LAYER).unwrap().is_none());
    assert!(matches!(
        s.store.remove("busyimg", false, true),
        Err(ImageError::NotFound(_))
    ));
}

#[test]
fn prune_removes_dangling_images_or_all() {
    let s = store();
    s.load(data("docker-save.tar")).unwrap();
    s.load(data("podman-save-oci.tar")).unwrap();
    s.store.tag("localhost/busyimg", "keep:me").unwrap();
    // Move busyimg:latest away from e957…: it becomes dangling.
    s.store.tag(PODMAN_OCI, "busyimg:latest").unwrap();
    let (items, reclaimed) = s.store.prune(false, None, &[], &[]).unwrap();
    assert_eq!(items, vec![DeleteItem::Deleted(BUSYIMG.into())]);
    assert_eq!(reclaimed, 0, "its layer is shared with the other image");
    let (items, reclaimed) = s.store.prune(true, None, &[], &[]).unwrap();
    assert!(
        items.contains(&DeleteItem::Deleted(PODMAN_OCI.into())),
        "{items:?}"
    );
    assert_eq!(reclaimed, 1_982_429);
    assert!(
        s.store
            .list(&ListFilters::default(), true)
            .unwrap()
            .is_empty()
    );
}

/// Rewrites an archive's entries.
fn rewrite(archive: &[u8], mut change: impl FnMut(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let mut a = tar::Archive::new(archive);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let mut header = e.header().clone();
        if header.entry_type().is_file() {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut body).unwrap();
            let Some(body) = change(&path, body) else {
                continue;
            };
            header.set_size(body.len() as u64);
            header.set_cksum();
            out.append(&header, &body[..]).unwrap();
        } else {
            out.append(&header, std::io::empty()).unwrap();
        }
    }
    out.into_inner().unwrap()
}

#[test]
fn bad_archives_are_refused_and_leave_the_store_as_it_was() {
    let s = store();
    s.load(data("docker-save.tar")).unwrap();
    let before = s.state();
    let oci = data("podman-save-oci.tar");
    let layer_blob =
        "blobs/sha256/93e6585a19d8ec79184dab9145db81de041fca1337e9067f3bd245623b31a61c";
    let malicious_layer = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.as_old_mut().name[..15].copy_from_slice(b"../../../escape");
        h.set_cksum();
        b.append(&h, &b"pwned"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a blob that does not match its digest",
            rewrite(&oci, |p, mut b| {
                if p == layer_blob {
                    let n = b.len() - 100;
                    b[n] ^= 0xff;
                }
                Some(b)
            }),
            "digest mismatch",
        ),
        (
            "a truncated archive",
            oci[..oci.len() / 2].to_vec(),
            "archive",
        ),
        (
            "a manifest that names a missing layer",
            rewrite(&oci, |p, b| (p != layer_blob).then_some(b)),
            "missing",
        ),
        (
            "a layer that differs from the config's diff ID",
            rewrite(&data("docker-save.tar"), |p, b| {
                Some(if p.ends_with("layer.tar") {
                    malicious_layer.clone()
                } else {
                    b
                })
            }),
            "invalid diffID for layer 0",
        ),
        (
            "not an archive at all",
            b"hello, this is not a tar".to_vec(),
            "archive",
        ),
        ("an empty stream", Vec::new(), "manifest.json"),
    ];
    for (what, archive, needle) in cases {
        let err = s.load(archive).unwrap_err();
        assert!(err.to_string().contains(needle), "{what}: {err}");
        assert_eq!(before, s.state(), "{what}: the store changed");
    }
    // A layer that escapes, with a config that vouches for it: refused by
    // the extraction.
    let escape_config = |diff: &str| {
        format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
        )
    };
    let cfg = escape_config(&Digest::sha256(&malicious_layer).to_string());
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in [
        ("config.json", cfg.as_bytes().to_vec()),
        ("layer.tar", malicious_layer.clone()),
        (
            "manifest.json",
            br#"[{"Config":"config.json","RepoTags":["evil:latest"],"Layers":["layer.tar"]}]"#
                .to_vec(),
        ),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &body[..]).unwrap();
    }
    let err = s.load(b.into_inner().unwrap()).unwrap_err();
    assert!(err.to_string().contains("unsafe layer"), "{err}");
    assert_eq!(before, s.state());
    assert!(!s.dir.path().parent().unwrap().join("escape").exists());
}

#[test]
fn a_store_reopened_after_a_crash_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open_at(dir.path(), None);
        store
            .load(Cursor::new(data("docker-save.tar")), &mut |_| {})
            .unwrap();
    }
    // What an interrupted load leaves: an ingest, an orphan blob, a
    // snapshot directory without a record.
    let content = dir.path().join("content");
    let ingest = content.join("ingest/deadbeef");
    std::fs::create_dir_all(&ingest).unwrap();
    std::fs::write(ingest.join("data"), "partial").unwrap();
    let orphan = Digest::sha256(b"orphan");
    let orphan_path: PathBuf = content.join("blobs/sha256").join(orphan.hex());
    std::fs::write(&orphan_path, "orphan").unwrap();
    let stray = dir.path().join("snapshots/overlayfs/999");
    std::fs::create_dir_all(stray.join("fs")).unwrap();
    let (store, _) = open_at(dir.path(), None);
    assert!(!ingest.exists());
    assert!(!orphan_path.exists());
    let _ = store.snapshotter();
    assert_eq!(
        store.inspect("busyimg").unwrap().summary.id.to_string(),
        BUSYIMG
    );
    assert!(
        !stray.exists(),
        "a snapshot directory without a record is swept"
    );
}

#[test]
fn the_native_snapshotter_gives_the_same_images() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open_at(dir.path(), Some("native"));
    store
        .load(Cursor::new(data("docker-save-multi.tar")), &mut |_| {})
        .unwrap();
    assert_eq!(store.snapshotter().name(), "native");
    let plus = store.inspect("busyplus").unwrap();
    assert_eq!(plus.summary.size, 1_982_429 + 17);
    let top = store
        .snapshotter()
        .dir(&plus.summary.chain[1].to_string())
        .unwrap();
    assert!(top.join("bin/busybox").exists(), "a full copy");
    assert!(top.join("hello.txt").exists());
    let _: BTreeMap<String, String> = plus.summary.labels;
}
