//! Container networks for hafen: Docker's bridge model on rtnetlink and
//! nftables.
//!
//! - [`rtnl`]: links (bridges, veth pairs), addresses and routes, in the
//!   daemon's network namespace or in a container's.
//! - [`ipam`]: subnets and the addresses handed out in them, persistent
//!   (one file per address, so no address is given twice, also across
//!   daemon restarts).
//! - [`nft`]: published ports, in hafen's own nftables table.
//! - [`dns`]: the embedded DNS server containers on user-defined networks
//!   ask at 127.0.0.11.

pub mod dns;
pub mod ipam;
pub mod nft;
pub mod rtnl;

/// Moves the calling thread (only it) into a new, empty network namespace.
/// Tests use it so that nothing they do reaches the host's network.
pub fn unshare_network_of_this_thread() -> std::io::Result<()> {
    // SAFETY: only CLONE_NEWNET is unshared; the file descriptor table stays
    // shared, which is what `unshare_unsafe` asks callers to care about.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
        .map_err(std::io::Error::from)
}

/// Runs `f` on a short-lived thread that has entered the network namespace
/// `netns` (only that thread does); sockets it opens stay in there.
pub fn in_namespace<T: Send + 'static>(
    netns: std::os::fd::BorrowedFd<'_>,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    let fd = netns.try_clone_to_owned()?;
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&fd),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        Ok(f())
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
}
