//! `commit`: a container's changes as an image layer.
//!
//! The overlay upper directory of a container's snapshot holds exactly what
//! the container changed; written as a tar the way dockerd's overlay2
//! driver writes a layer diff (go-archive with the overlay whiteout
//! format), it is the new image's top layer: overlay whiteouts (0/0
//! character devices) become `.wh.<name>` files, an opaque directory gets a
//! `.wh..wh..opq` entry after it, and the entries come in a fixed order
//! (depth first, names sorted), so the same changes always make the same
//! layer. [`hafen_image::ImageStore::commit`] then makes the image.

use std::io::Write;
use std::path::Path;

use hafen_oci::digest::HashingWriter;
use hafen_oci::{Algorithm, Digest};
use rustix::fs::{Mode, OFlags};

use super::archive::{ArchiveError, TarOut};

/// What [`layer_from_upper`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffStats {
    /// The digest of the tar (the layer's diff ID).
    pub diff_id: Digest,
    /// The size of the tar in bytes.
    pub size: u64,
    /// The number of tar entries (whiteouts included).
    pub entries: u64,
}

impl DiffStats {
    /// Whether the layer is empty (no changes: the tar is only its end
    /// marker); dockerd then adds no layer, only a history entry.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// Writes the OCI layer tar of the overlay upper directory `upper` to
/// `out`.
pub fn layer_from_upper(upper: &Path, out: &mut dyn Write) -> Result<DiffStats, ArchiveError> {
    layer_from_upper_except(upper, out, &|_| false)
}

/// [`layer_from_upper`], leaving out the paths (`/etc/hosts`) for which
/// `skip` says so and what is below them: what the runtime made for its
/// own mounts, which dockerd keeps out of the container's layer.
pub fn layer_from_upper_except(
    upper: &Path,
    out: &mut dyn Write,
    skip: &dyn Fn(&str) -> bool,
) -> Result<DiffStats, ArchiveError> {
    let io_err = |source: std::io::Error| ArchiveError::Io {
        what: format!("cannot write the layer of {}", upper.display()),
        source,
    };
    let dir = rustix::fs::open(
        upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(e.into()))?;
    let mut hashing = HashingWriter::new(out, Algorithm::Sha256);
    let mut tar = TarOut::new(&mut hashing);
    tar.convert_whiteouts = true;
    tar.skip = Some(skip);
    tar.walk(&dir, b"").map_err(io_err)?;
    let entries = tar.entries;
    tar.finish().map_err(io_err)?;
    let (diff_id, size, _) = hashing.finish();
    Ok(DiffStats {
        diff_id,
        size,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write as _};
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use super::*;

    fn entries(bytes: &[u8]) -> Vec<(String, tar::EntryType, u32, u64, Vec<u8>)> {
        let mut a = tar::Archive::new(bytes);
        a.entries()
            .expect("entries")
            .map(|e| {
                let mut e = e.expect("entry");
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("data");
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    e.header().entry_type(),
                    e.header().mode().expect("mode"),
                    e.header().uid().expect("uid"),
                    data,
                )
            })
            .collect()
    }

    #[test]
    fn empty_upper_is_an_empty_layer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut out = Vec::new();
        let stats = layer_from_upper(dir.path(), &mut out).expect("layer");
        assert!(stats.is_empty());
        assert_eq!(out, vec![0u8; 1024]);
        // Docker's empty layer.
        assert_eq!(
            stats.diff_id.to_string(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
        assert_eq!(stats.size, 1024);
    }

    /// Changes made through a real overlay mount, as a container makes
    /// them, become whiteout files, an opaque marker and the new files.
    #[test]
    fn overlay_changes_as_a_layer() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let t = tempfile::tempdir().expect("tempdir");
        let p = |s: &str| t.path().join(s);
        for d in [
            "lower/etc",
            "lower/opq",
            "lower/gone",
            "upper",
            "work",
            "merged",
        ] {
            std::fs::create_dir_all(p(d)).expect("mkdir");
        }
        std::fs::write(p("lower/etc/conf"), "old").expect("conf");
        std::fs::write(p("lower/etc/del"), "x").expect("del");
        std::fs::write(p("lower/etc/del2"), "x").expect("del2");
        std::fs::write(p("lower/opq/old"), "x").expect("old");
        std::fs::write(p("lower/gone/x"), "x").expect("x");
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            p("lower").display(),
            p("upper").display(),
            p("work").display()
        );
        let options = std::ffi::CString::new(options).expect("options");
        rustix::mount::mount(
            "overlay",
            p("merged"),
            "overlay",
            rustix::mount::MountFlags::empty(),
            options.as_c_str(),
        )
        .expect("mount");
        let m = |s: &str| p("merged").join(s);
        let work = (|| -> std::io::Result<()> {
            std::fs::write(m("etc/conf"), "new")?;
            std::fs::remove_file(m("etc/del"))?;
            std::fs::remove_file(m("etc/del2"))?;
            std::fs::remove_dir_all(m("opq"))?;
            std::fs::create_dir(m("opq"))?;
            std::fs::write(m("opq/fresh"), "f")?;
            std::fs::remove_dir_all(m("gone"))?;
            std::fs::write(m("added"), "a")?;
            std::fs::set_permissions(m("added"), std::fs::Permissions::from_mode(0o751))?;
            std::fs::hard_link(m("added"), m("added-link"))?;
            symlink("/etc/conf", m("link"))?;
            std::fs::create_dir_all(m("run/skipped"))?;
            std::fs::File::create(m("run/skipped/f"))?.write_all(b"x")?;
            Ok(())
        })();
        rustix::mount::unmount(p("merged"), rustix::mount::UnmountFlags::empty()).expect("unmount");
        work.expect("changes through the overlay");

        let mut out = Vec::new();
        let stats =
            layer_from_upper_except(&p("upper"), &mut out, &|path| path == "/run").expect("layer");
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "added",
                "added-link",
                "etc/",
                "etc/conf",
                "etc/.wh.del",
                "etc/.wh.del2",
                ".wh.gone",
                "link",
                "opq/",
                "opq/.wh..wh..opq",
                "opq/fresh",
            ]
        );
        let by_name = |n: &str| got.iter().find(|e| e.0 == n).expect(n);
        assert_eq!(by_name("added").2, 0o751);
        assert_eq!(by_name("added").4, b"a");
        assert_eq!(by_name("added-link").1, tar::EntryType::Link);
        assert_eq!(by_name("etc/conf").4, b"new");
        for wh in [
            "etc/.wh.del",
            "etc/.wh.del2",
            ".wh.gone",
            "opq/.wh..wh..opq",
        ] {
            let e = by_name(wh);
            assert_eq!(e.1, tar::EntryType::Regular, "{wh}");
            assert!(e.4.is_empty(), "{wh}");
        }
        assert_eq!(by_name("etc/.wh.del").2, 0o600);
        assert_eq!(by_name("link").1, tar::EntryType::Symlink);
        assert_eq!(stats.entries, got.len() as u64);
        assert_eq!(stats.size, out.len() as u64);
        assert_eq!(stats.diff_id, Digest::sha256(&out));

        // The same upper gives the same bytes.
        let mut again = Vec::new();
        let second = layer_from_upper_except(&p("upper"), &mut again, &|path| path == "/run")
            .expect("layer");
        assert_eq!(second, stats);

        // Applied onto the lower layer, the layer gives the merged view.
        let copy = tempfile::tempdir().expect("copy");
        let copy_lower = |from: &Path, to: &Path| {
            std::process::Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", from.display()))
                .arg(to)
                .status()
                .expect("cp")
        };
        assert!(copy_lower(&p("lower"), copy.path()).success());
        hafen_snapshot::apply::apply(
            &out[..],
            copy.path(),
            &hafen_snapshot::apply::Options {
                whiteouts: hafen_snapshot::Whiteouts::Remove,
                lowers: &[],
                chown: true,
            },
        )
        .expect("apply");
        let c = |s: &str| copy.path().join(s);
        assert_eq!(std::fs::read(c("etc/conf")).expect("conf"), b"new");
        assert!(!c("etc/del").exists());
        assert!(!c("gone").exists());
        assert!(!c("opq/old").exists());
        assert!(c("opq/fresh").exists());
        assert_eq!(std::fs::metadata(c("added")).expect("added").nlink(), 2);
        assert!(!c("run").exists());
    }
}
