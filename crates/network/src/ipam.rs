//! IP address management: the addresses of one IPv4 subnet, handed out one
//! at a time and remembered on disk.
//!
//! Every address in use is a file in the pool's directory, named after the
//! address and created with `O_EXCL`: an address is never given twice, also
//! across daemon restarts and crashes, and freeing one is an unlink. The
//! pool keeps the set in memory too and hands addresses out in turn (as
//! dockerd does), so a freed address is not reused at once.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipnet::Ipv4Net;

/// What can go wrong handing out addresses.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// Every address of the range is in use.
    #[error("no available IPv4 addresses on this network's address pools: {0}")]
    Exhausted(Ipv4Net),
    /// A requested address is somebody's already.
    #[error("Address already in use: {0}")]
    InUse(Ipv4Addr),
    /// A requested address is not in the subnet (or the range).
    #[error("no configured subnet or ip-range contain the IP address {0}")]
    OutOfRange(Ipv4Addr),
    /// The range or gateway does not fit the subnet.
    #[error("{0}")]
    Invalid(String),
    /// The pool's directory cannot be read or written.
    #[error("IP address records in {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Checks a subnet, an optional range in it and a gateway; returns the
/// subnet and the range, truncated to their prefixes.
pub fn validate(
    subnet: Ipv4Net,
    range: Option<Ipv4Net>,
    gateway: Ipv4Addr,
) -> Result<(Ipv4Net, Ipv4Net), IpamError> {
    let subnet = subnet.trunc();
    if subnet.prefix_len() > 30 {
        return Err(IpamError::Invalid(format!(
            "subnet {subnet} is too small: it needs room for a gateway and containers"
        )));
    }
    let range = range.map(|r| r.trunc()).unwrap_or(subnet);
    if !subnet.contains(&range) {
        return Err(IpamError::Invalid(format!(
            "ip-range {range} is not within subnet {subnet}"
        )));
    }
    if !subnet.contains(&gateway) || gateway == subnet.network() || gateway == subnet.broadcast() {
        return Err(IpamError::Invalid(format!(
            "gateway {gateway} is not a host address of subnet {subnet}"
        )));
    }
    Ok((subnet, range))
}

/// The addresses of one subnet.
#[derive(Debug)]
pub struct Pool {
    subnet: Ipv4Net,
    range: Ipv4Net,
    gateway: Ipv4Addr,
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    used: BTreeSet<u32>,
    /// The last address handed out: the next search starts after it.
    last: u32,
}

impl Pool {
    /// Opens (or creates) the pool whose records live in `dir`. `range`
    /// (`--ip-range`) defaults to the whole subnet; the gateway, the
    /// network and the broadcast address are never handed out.
    pub fn open(
        dir: &Path,
        subnet: Ipv4Net,
        range: Option<Ipv4Net>,
        gateway: Ipv4Addr,
    ) -> Result<Self, IpamError> {
        let (subnet, range) = validate(subnet, range, gateway)?;
        let io = |source| IpamError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut state = State::default();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Ipv4Addr>().ok())
            {
                state.used.insert(ip.into());
            }
        }
        state.last = state
            .used
            .iter()
            .next_back()
            .copied()
            .unwrap_or_else(|| u32::from(range.network()).wrapping_sub(1));
        Ok(Pool {
            subnet,
            range,
            gateway,
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
        })
    }

    /// The subnet.
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// The gateway (the bridge's address).
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn usable(&self, ip: u32) -> bool {
        let addr = Ipv4Addr::from(ip);
        self.range.contains(&addr)
            && addr != self.subnet.network()
            && addr != self.subnet.broadcast()
            && addr != self.gateway
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `ip` as `owner`'s, if nobody has it.
    fn record(&self, state: &mut State, ip: u32, owner: &str) -> Result<bool, IpamError> {
        let path = self.dir.join(Ipv4Addr::from(ip).to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(owner.as_bytes())
                    .map_err(|source| IpamError::Io { path, source })?;
                state.used.insert(ip);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                state.used.insert(ip);
                Ok(false)
            }
            Err(source) => Err(IpamError::Io { path, source }),
        }
    }

    /// Hands out the next free address to `owner` (a container's endpoint).
    pub fn allocate(&self, owner: &str) -> Result<Ipv4Addr, IpamError> {
        let mut state = self.lock();
        let first = u32::from(self.range.network());
        let last = u32::from(self.range.broadcast());
        let size = u64::from(last - first) + 1;
        let mut candidate = state.last;
        for _ in 0..size {
            candidate = if candidate >= last || candidate < first {
                first
            } else {
                candidate + 1
            };
            if !self.usable(candidate) || state.used.contains(&candidate) {
                continue;
            }
            if self.record(&mut state, candidate, owner)? {
                state.last = candidate;
                return Ok(Ipv4Addr::from(candidate));
            }
        }
        Err(IpamError::Exhausted(self.range))
    }

    /// Gives `ip` (`--ip`) to `owner`.
    pub fn claim(&self, ip: Ipv4Addr, owner: &str) -> Result<(), IpamError> {
        if !self.usable(ip.into()) {
            if ip == self.gateway {
                return Err(IpamError::InUse(ip));
            }
            return Err(IpamError::OutOfRange(ip));
        }
        let mut state = self.lock();
        if state.used.contains(&ip.into()) || !self.record(&mut state, ip.into(), owner)? {
            return Err(IpamError::InUse(ip));
        }
        Ok(())
    }

    /// Frees `ip`. Freeing an address that is not in use is not an error.
    pub fn release(&self, ip: Ipv4Addr) -> Result<(), IpamError> {
        let mut state = self.lock();
        let path = self.dir.join(ip.to_string());
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(IpamError::Io { path, source }),
        }
        state.used.remove(&ip.into());
        Ok(())
    }

    /// Who has `ip`, if anybody.
    pub fn owner(&self, ip: Ipv4Addr) -> Option<String> {
        std::fs::read_to_string(self.dir.join(ip.to_string())).ok()
    }

    /// The addresses in use, with their owners.
    pub fn in_use(&self) -> Vec<(Ipv4Addr, String)> {
        let used: Vec<u32> = self.lock().used.iter().copied().collect();
        used.into_iter()
            .map(Ipv4Addr::from)
            .map(|ip| (ip, self.owner(ip).unwrap_or_default()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("a subnet")
    }

    #[test]
    fn hands_out_each_address_once_in_turn_and_remembers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gw: Ipv4Addr = "10.1.0.1".parse().expect("ip");
        let pool = Pool::open(dir.path(), net("10.1.0.0/29"), None, gw).expect("pool");
        let got: Vec<_> = (0..5)
            .map(|i| pool.allocate(&format!("c{i}")).expect("address"))
            .collect();
        let want: Vec<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(10, 1, 0, i)).collect();
        assert_eq!(got, want);
        // .0 network, .1 gateway, .7 broadcast: nothing is left.
        assert!(matches!(pool.allocate("x"), Err(IpamError::Exhausted(_))));
        assert_eq!(pool.owner(want[2]).as_deref(), Some("c2"));

        // Freed, the address comes back only after the others went round.
        pool.release(want[1]).expect("release");
        assert_eq!(pool.allocate("again").expect("address"), want[1]);

        // A new pool over the same directory (a restarted daemon) knows
        // what is used.
        pool.release(want[3]).expect("release");
        drop(pool);
        let pool = Pool::open(dir.path(), net("10.1.0.0/29"), None, gw).expect("pool");
        assert_eq!(pool.allocate("new").expect("address"), want[3]);
        assert!(matches!(pool.allocate("x"), Err(IpamError::Exhausted(_))));
        assert_eq!(pool.in_use().len(), 5);
    }

    #[test]
    fn claims_ranges_and_bad_configs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gw: Ipv4Addr = "10.2.0.1".parse().expect("ip");
        let pool = Pool::open(
            dir.path(),
            net("10.2.0.0/24"),
            Some(net("10.2.0.128/25")),
            gw,
        )
        .expect("pool");
        assert_eq!(
            pool.allocate("a").expect("address"),
            Ipv4Addr::new(10, 2, 0, 128)
        );
        // --ip may be outside the range but must be in the subnet? As
        // dockerd: only inside the range.
        assert!(matches!(
            pool.claim(Ipv4Addr::new(10, 2, 0, 5), "b"),
            Err(IpamError::OutOfRange(_))
        ));
        pool.claim(Ipv4Addr::new(10, 2, 0, 200), "b")
            .expect("claim");
        assert!(matches!(
            pool.claim(Ipv4Addr::new(10, 2, 0, 200), "c"),
            Err(IpamError::InUse(_))
        ));
        assert!(matches!(pool.claim(gw, "c"), Err(IpamError::InUse(_))));
        assert!(matches!(
            pool.claim(Ipv4Addr::new(10, 3, 0, 2), "c"),
            Err(IpamError::OutOfRange(_))
        ));
        // The failed claims recorded nothing.
        assert_eq!(pool.in_use().len(), 2);

        for (subnet, range, gw) in [
            ("10.4.0.0/24", Some("10.5.0.0/25"), "10.4.0.1"),
            ("10.4.0.0/24", None, "10.9.0.1"),
            ("10.4.0.0/24", None, "10.4.0.0"),
            ("10.4.0.0/31", None, "10.4.0.1"),
        ] {
            let r = Pool::open(
                &dir.path().join("bad"),
                net(subnet),
                range.map(net),
                gw.parse().expect("ip"),
            );
            assert!(
                matches!(r, Err(IpamError::Invalid(_))),
                "{subnet} {range:?} {gw}"
            );
        }
    }
}
