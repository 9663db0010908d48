//! The Linux bridges of a bridge network.
//!
//! A Linux bridge has at most 1024 ports (moby#44973). A network that
//! outgrows its first bridge gets further ones, each joined to the first
//! by a veth pair (a "trunk"): one L2 segment, so the subnet, the gateway
//! on the first bridge, ARP and the published ports work across all of
//! them, and no packet has to be routed or forwarded.

use std::net::Ipv4Addr;

use hafen_network::rtnl::{self, Netlink};
use ipnet::Ipv4Net;

use super::{NetRecord, NetworkError, Result};

/// Ports a bridge takes before the next one is made (the kernel's limit
/// is 1024; the trunk takes one on each side).
pub const PORTS_PER_BRIDGE: usize = 1000;

/// The bridges of one network.
#[derive(Debug, Default)]
pub struct Bridges {
    first: String,
    short: String,
    mtu: Option<u32>,
    /// Device names, the first bridge first.
    names: Vec<String>,
    /// Their ifindexes.
    indexes: Vec<u32>,
    /// Ports in use on each.
    ports: Vec<usize>,
}

fn nl_err(what: &str) -> impl FnOnce(rtnl::Error) -> NetworkError + '_ {
    move |e| NetworkError::Internal(format!("{what}: {e}"))
}

/// Writes a sysctl of an interface (`/proc/sys/net/ipv4/conf/<dev>/<key>`,
/// or `ipv6/conf` for a key `ipv6/<key>`).
pub fn set_if_sysctl(dev: &str, key: &str, value: &str) {
    let path = match key.strip_prefix("ipv6/") {
        Some(k) => format!("/proc/sys/net/ipv6/conf/{dev}/{k}"),
        None => format!("/proc/sys/net/ipv4/conf/{dev}/{key}"),
    };
    if let Err(e) = std::fs::write(&path, value) {
        tracing::debug!("{path}: {e}");
    }
}

impl Bridges {
    /// The bridges a record describes (nothing is made yet).
    pub fn new(rec: &NetRecord) -> Bridges {
        Bridges {
            first: rec.bridge.clone(),
            short: rec.id.chars().take(8).collect(),
            mtu: rec.mtu,
            ..Default::default()
        }
    }

    /// The device names of the bridges that exist.
    pub fn names(&self) -> Vec<String> {
        if self.names.is_empty() && !self.first.is_empty() {
            return vec![self.first.clone()];
        }
        self.names.clone()
    }

    fn extra_name(&self, k: usize) -> String {
        format!("hb{}.{k}", self.short)
    }

    fn trunk_names(&self, k: usize) -> (String, String) {
        (
            format!("ht{}.{k}a", self.short),
            format!("ht{}.{k}b", self.short),
        )
    }

    /// Makes the first bridge if it is missing (with the gateway address,
    /// up), and learns the bridges and ports that exist.
    pub fn ensure_first(&mut self, rec: &NetRecord, _forward: bool) -> Result<()> {
        if !self.indexes.is_empty() {
            return Ok(());
        }
        let nl = Netlink::open().map_err(nl_err("netlink"))?;
        let links = nl.links().map_err(nl_err("listing links"))?;
        let index = match links.iter().find(|l| l.name == self.first) {
            Some(l) => {
                if l.kind.as_deref() != Some("bridge") {
                    return Err(NetworkError::Conflict(format!(
                        "cannot use {} as the bridge of network {}: a device of that name exists and is not a bridge",
                        self.first, rec.name
                    )));
                }
                l.index
            }
            None => nl
                .create_bridge(&self.first, self.mtu)
                .map_err(nl_err(&format!("creating bridge {}", self.first)))?,
        };
        if let (Some(gw), Some(subnet)) = (rec.gateway, rec.subnet) {
            let has = nl
                .addresses()
                .map_err(nl_err("listing addresses"))?
                .iter()
                .any(|a| a.index == index && a.addr == std::net::IpAddr::V4(gw));
            if !has {
                if let Err(e) = nl.add_address(index, gw.into(), subnet.prefix_len()) {
                    let _ = nl.delete_link(index);
                    return Err(nl_err(&format!("adding {gw} to {}", self.first))(e));
                }
            }
        }
        nl.set_up(index)
            .map_err(nl_err(&format!("bringing {} up", self.first)))?;
        set_if_sysctl(&self.first, "route_localnet", "1");
        // IPv4-only networks: no IPv6 chatter (router solicitations, MLD)
        // flooded to every container.
        set_if_sysctl(&self.first, "ipv6/disable_ipv6", "1");
        self.names = vec![self.first.clone()];
        self.indexes = vec![index];
        self.ports = vec![links.iter().filter(|l| l.master == Some(index)).count()];
        // Further bridges of an earlier daemon.
        for k in 1.. {
            let name = self.extra_name(k);
            let Some(l) = links.iter().find(|l| l.name == name) else {
                break;
            };
            let _ = nl.set_up(l.index);
            self.names.push(name);
            self.indexes.push(l.index);
            self.ports
                .push(links.iter().filter(|x| x.master == Some(l.index)).count());
        }
        Ok(())
    }

    /// A bridge with room for one more port: its ifindex (counted as
    /// taken; give it back with [`Bridges::release`]).
    pub fn take_port(&mut self, rec: &NetRecord) -> Result<u32> {
        self.ensure_first(rec, false)?;
        if let Some(i) = self.ports.iter().position(|p| *p < PORTS_PER_BRIDGE) {
            self.ports[i] += 1;
            return Ok(self.indexes[i]);
        }
        let k = self.names.len();
        let name = self.extra_name(k);
        let (a, b) = self.trunk_names(k);
        let nl = Netlink::open().map_err(nl_err("netlink"))?;
        let index = nl
            .create_bridge(&name, self.mtu)
            .map_err(nl_err(&format!("creating bridge {name}")))?;
        let made = (|| -> std::result::Result<(), rtnl::Error> {
            let ta = nl.create_veth(&a, &b, None, self.mtu)?;
            let tb = nl
                .link(&b)?
                .map(|l| l.index)
                .ok_or_else(|| rtnl::Error::NotFound(format!("the trunk end {b}")))?;
            nl.set_master(ta, self.indexes[0])?;
            nl.set_master(tb, index)?;
            nl.set_up(ta)?;
            nl.set_up(tb)?;
            nl.set_up(index)?;
            Ok(())
        })();
        if let Err(e) = made {
            if let Ok(Some(l)) = nl.link(&a) {
                let _ = nl.delete_link(l.index);
            }
            let _ = nl.delete_link(index);
            return Err(nl_err(&format!("joining bridge {name} to {}", self.first))(
                e,
            ));
        }
        set_if_sysctl(&name, "route_localnet", "1");
        set_if_sysctl(&name, "ipv6/disable_ipv6", "1");
        set_if_sysctl(&a, "ipv6/disable_ipv6", "1");
        set_if_sysctl(&b, "ipv6/disable_ipv6", "1");
        self.ports[0] += 1;
        self.names.push(name);
        self.indexes.push(index);
        self.ports.push(2);
        Ok(index)
    }

    /// A port of bridge `index` is free again.
    pub fn release(&mut self, index: u32) {
        if let Some(i) = self.indexes.iter().position(|x| *x == index) {
            self.ports[i] = self.ports[i].saturating_sub(1);
        }
    }

    /// The bridge a port (a host veth) is on; the first bridge if unknown.
    pub fn index_of_port(&self, veth: &str) -> u32 {
        let first = self.indexes.first().copied().unwrap_or(0);
        Netlink::open()
            .ok()
            .and_then(|nl| nl.link(veth).ok().flatten())
            .and_then(|l| l.master)
            .unwrap_or(first)
    }

    /// Deletes the bridges (network removal).
    pub fn remove_all(&mut self) {
        let Ok(nl) = Netlink::open() else { return };
        let mut names = self.names();
        for k in 1..self.names.len() {
            names.push(self.trunk_names(k).0);
        }
        for name in names {
            if let Ok(Some(l)) = nl.link(&name) {
                if let Err(e) = nl.delete_link(l.index) {
                    tracing::warn!("deleting {name}: {e}");
                }
            }
        }
        self.names.clear();
        self.indexes.clear();
        self.ports.clear();
    }
}

/// The IPv4 subnets the host uses (its addresses and routes), which new
/// networks must not overlap.
pub fn host_subnets() -> Vec<Ipv4Net> {
    let Ok(nl) = Netlink::open() else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for a in nl.addresses().unwrap_or_default() {
        if let std::net::IpAddr::V4(ip) = a.addr {
            if !ip.is_loopback() {
                if let Ok(n) = Ipv4Net::new(ip, a.prefix_len) {
                    v.push(n.trunc());
                }
            }
        }
    }
    for r in nl.routes_v4().unwrap_or_default() {
        if r.prefix_len > 0 && r.dst != Ipv4Addr::UNSPECIFIED {
            if let Ok(n) = Ipv4Net::new(r.dst, r.prefix_len) {
                v.push(n.trunc());
            }
        }
    }
    v
}
