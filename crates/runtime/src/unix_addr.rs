//! Unix socket addresses for paths of any length.
//!
//! `sockaddr_un` holds at most 107 bytes of path. A longer path (a deep
//! `--root`, a long container id) is reached through the directory's fd:
//! `/proc/self/fd/<dirfd>/<name>`, which is short.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::net::SocketAddrUnix;

/// An address, with the directory fd it may depend on kept open.
#[derive(Debug)]
pub struct UnixAddr {
    /// The address to bind or connect to.
    pub addr: SocketAddrUnix,
    _dir: Option<OwnedFd>,
}

/// The address of a socket file at `path`.
pub fn address_for(path: &Path) -> io::Result<UnixAddr> {
    if path.as_os_str().len() < 100 {
        return Ok(UnixAddr {
            addr: SocketAddrUnix::new(path)?,
            _dir: None,
        });
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let dir = rustix::fs::open(
        parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    Ok(UnixAddr {
        addr: SocketAddrUnix::new(&short)?,
        _dir: Some(dir),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_bind_and_connect() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("x".repeat(120));
        std::fs::create_dir(&deep).unwrap();
        let path = deep.join("s.sock");
        let listener =
            std::os::unix::net::UnixListener::bind(std::path::PathBuf::from("/dev/null/x"));
        assert!(listener.is_err());
        let fd = rustix::net::socket(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            None,
        )
        .unwrap();
        let addr = address_for(&path).unwrap();
        rustix::net::bind(&fd, &addr.addr).unwrap();
        rustix::net::listen(&fd, 1).unwrap();
        assert!(path.exists());
        let client = rustix::net::socket(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            None,
        )
        .unwrap();
        rustix::net::connect(&client, &address_for(&path).unwrap().addr).unwrap();
    }
}
