//! One thread watches every shim through its pidfd (epoll): when a shim
//! ends, the container's exit is handled. Idle, it sleeps in `epoll_wait`.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use rustix::event::epoll;

/// The shims being watched.
#[derive(Debug)]
pub struct Monitor {
    epoll: Arc<OwnedFd>,
    watched: Arc<Mutex<HashMap<u64, (String, OwnedFd)>>>,
    next: std::sync::atomic::AtomicU64,
}

impl Monitor {
    /// A monitor (its thread starts with [`Monitor::run`]).
    pub fn new() -> std::io::Result<Monitor> {
        Ok(Monitor {
            epoll: Arc::new(epoll::create(epoll::CreateFlags::CLOEXEC)?),
            watched: Arc::default(),
            next: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Watches the shim `pid` of container `id`. Errs if the shim is gone.
    pub fn watch(&self, id: &str, pid: i32) -> std::io::Result<()> {
        let pid =
            rustix::process::Pid::from_raw(pid).ok_or_else(|| std::io::Error::other("bad pid"))?;
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
        let token = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        epoll::add(
            &*self.epoll,
            fd.as_fd(),
            epoll::EventData::new_u64(token),
            epoll::EventFlags::IN,
        )?;
        super::lock(&self.watched).insert(token, (id.to_string(), fd));
        Ok(())
    }

    /// Runs the loop on a thread: `on_exit(container id)` for every shim
    /// that ends.
    pub fn run(&self, on_exit: impl Fn(String) + Send + 'static) -> std::io::Result<()> {
        let ep = self.epoll.clone();
        let watched = self.watched.clone();
        std::thread::Builder::new()
            .name("shim-monitor".into())
            .spawn(move || {
                let mut events = Vec::with_capacity(64);
                loop {
                    events.clear();
                    match epoll::wait(&*ep, rustix::buffer::spare_capacity(&mut events), None) {
                        Ok(_) => {}
                        Err(rustix::io::Errno::INTR) => continue,
                        Err(e) => {
                            tracing::error!("shim monitor: {e}");
                            return;
                        }
                    }
                    for ev in &events {
                        let token = ev.data.u64();
                        let Some((id, fd)) = super::lock(&watched).remove(&token) else {
                            continue;
                        };
                        let _ = epoll::delete(&*ep, fd.as_fd());
                        // Reaps the shim when it is the daemon's child.
                        let _ = rustix::process::waitid(
                            rustix::process::WaitId::PidFd(fd.as_fd()),
                            rustix::process::WaitIdOptions::EXITED
                                | rustix::process::WaitIdOptions::NOHANG,
                        );
                        on_exit(id);
                    }
                }
            })?;
        Ok(())
    }
}
