//! Containers joining and leaving networks: a veth pair per network (one
//! end on the network's bridge, the other, `ethN`, in the container's
//! namespace with its address, MAC and default route), the published
//! ports and the embedded DNS server.
//!
//! Everything is undone when a step fails: no stray link, address, port
//! or rule is left.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use hafen_network::dns::ServeHandle;
use hafen_network::nft::{Proto, Published};
use hafen_network::rtnl::{self, Netlink};
use serde::{Deserialize, Serialize};

use super::etc_files::{self, DnsSettings};
use super::names::Entry;
use super::ports::{self, Wanted};
use super::{Net, NetworkError, Networks, Result, lock};

/// A container's place on one network, kept in its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    /// The network's ID.
    pub network_id: String,
    /// The endpoint's ID (new at every start).
    pub endpoint_id: String,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--ip`: the address asked for.
    pub ip_request: Option<Ipv4Addr>,
    /// `--mac-address`: the MAC asked for.
    pub mac_request: String,
    /// The address while running.
    pub ip: Option<Ipv4Addr>,
    /// The subnet's prefix length.
    pub prefix_len: u8,
    /// The gateway.
    pub gateway: Option<Ipv4Addr>,
    /// The MAC while running.
    pub mac: String,
    /// The interface in the container (`eth0`, …).
    pub ifname: String,
    /// The host end of the veth pair.
    pub veth: String,
    /// The names the container has on this network (DNS).
    pub dns_names: Vec<String>,
}

/// What a running container holds, in memory.
#[derive(Debug, Default)]
pub struct Attached {
    /// The container's name.
    pub name: String,
    /// Its endpoints.
    pub endpoints: Vec<Held>,
    /// Its published ports.
    pub published: Vec<Published>,
    sockets: Vec<OwnedFd>,
    dns: Option<ServeHandle>,
}

/// One endpoint's resources.
#[derive(Debug, Clone)]
pub struct Held {
    /// The network.
    pub network_id: String,
    /// The address.
    pub ip: Ipv4Addr,
    /// The bridge port taken.
    pub bridge: u32,
    /// The host veth.
    pub veth: String,
}

/// A published port as the API shows it (`NetworkSettings.Ports`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    /// The host address.
    pub host_ip: String,
    /// The host port.
    pub host_port: String,
}

/// What a container asks of its networks when it starts.
#[derive(Debug)]
pub struct Request<'a> {
    /// The container's ID.
    pub id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its hostname (and domain name).
    pub hostname: &'a str,
    /// `domainname`.
    pub domain: &'a str,
    /// Its init's pid.
    pub pid: i32,
    /// Its endpoints by network name, the primary first in `order`.
    pub order: Vec<String>,
    /// Ports to publish (on the primary network's address).
    pub ports: Vec<Wanted>,
    /// Its DNS settings.
    pub dns: DnsSettings,
    /// `--add-host`.
    pub extra_hosts: &'a [String],
    /// Where its `/etc/hosts` is.
    pub hosts_path: std::path::PathBuf,
    /// Where its `/etc/resolv.conf` is.
    pub resolv_path: std::path::PathBuf,
}

fn nl_err(what: &str) -> impl FnOnce(rtnl::Error) -> NetworkError + '_ {
    move |e| NetworkError::Internal(format!("{what}: {e}"))
}

fn random_hex(n: usize) -> String {
    crate::containers::new_id().chars().take(n).collect()
}

/// Docker's MAC for an address: 02:42 and the four address bytes.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| NetworkError::Invalid(format!("invalid MAC address: {s}")))?;
    <[u8; 6]>::try_from(parts)
        .map_err(|_| NetworkError::Invalid(format!("invalid MAC address: {s}")))
}

impl Networks {
    /// The names a container has on a network, for DNS: its name, its
    /// aliases and its short ID.
    fn dns_names(id: &str, name: &str, aliases: &[String]) -> Vec<String> {
        let mut v = vec![name.to_string()];
        v.extend(aliases.iter().cloned());
        v.push(id.chars().take(12).collect());
        v.dedup();
        v
    }

    /// A function from network ID to name, for the DNS server.
    fn net_names(self: &Arc<Self>) -> Arc<dyn Fn(&str) -> String + Send + Sync> {
        let weak = Arc::downgrade(self);
        Arc::new(move |id: &str| {
            weak.upgrade()
                .and_then(|n| n.find(id).ok())
                .map(|n| n.rec.name.clone())
                .unwrap_or_default()
        })
    }

    /// A container's DNS settings, the daemon's (`dns`, `dns-search`,
    /// `dns-opts`) where it has none.
    fn dns_with_defaults(&self, given: &DnsSettings) -> DnsSettings {
        let mut dns = given.clone();
        if dns.servers.is_empty() {
            dns.servers = self.config.dns.clone();
        }
        if dns.search.is_empty() {
            dns.search = self.config.dns_search.clone();
        }
        if dns.options.is_empty() {
            dns.options = self.config.dns_options.clone();
        }
        dns
    }

    /// Joins a created (not yet started) container to its networks.
    /// `endpoints` are updated with what they got.
    pub fn attach(
        self: &Arc<Self>,
        req: &Request<'_>,
        endpoints: &mut BTreeMap<String, Endpoint>,
    ) -> Result<BTreeMap<String, Vec<PortBinding>>> {
        let netns = std::fs::File::open(format!("/proc/{}/ns/net", req.pid)).map_err(|e| {
            NetworkError::Internal(format!("the container's network namespace: {e}"))
        })?;
        // As dockerd for IPv4-only networks: no IPv6 on the container's
        // interfaces (no router solicitations, no duplicate address
        // detection); the socket for the rest is opened in the same trip.
        let inside = hafen_network::in_namespace(netns.as_fd(), || {
            for key in ["default", "all"] {
                let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6"), "1");
            }
            Netlink::open()
        })
        .map_err(|e| NetworkError::Internal(format!("the container's network namespace: {e}")))?
        .map_err(nl_err("netlink in the container"))?;
        if let Some(lo) = inside.link("lo").map_err(nl_err("finding lo"))? {
            inside.set_up(lo.index).map_err(nl_err("bringing lo up"))?;
        }
        let mut att = Attached {
            name: req.name.to_string(),
            ..Default::default()
        };
        let result = self.attach_steps(req, endpoints, &netns, &inside, &mut att);
        match result {
            Ok(ports) => {
                let has_ports = !att.published.is_empty();
                lock(&self.active).insert(req.id.to_string(), att);
                if has_ports {
                    if let Err(e) = self.apply_rules() {
                        self.detach(req.id, endpoints);
                        return Err(e);
                    }
                }
                Ok(ports)
            }
            Err(e) => {
                self.release(req.id, att, true);
                for ep in endpoints.values_mut() {
                    clear(ep);
                }
                Err(e)
            }
        }
    }

    fn attach_steps(
        self: &Arc<Self>,
        req: &Request<'_>,
        endpoints: &mut BTreeMap<String, Endpoint>,
        netns: &std::fs::File,
        inside: &Netlink,
        att: &mut Attached,
    ) -> Result<BTreeMap<String, Vec<PortBinding>>> {
        let host = Netlink::open().map_err(nl_err("netlink"))?;
        let mut primary_ip = None;
        let mut embedded = false;
        for (i, net_name) in req.order.iter().enumerate() {
            let Some(ep) = endpoints.get_mut(net_name) else {
                continue;
            };
            let net = self.find(&ep.network_id).or_else(|_| self.find(net_name))?;
            ep.network_id = net.rec.id.clone();
            let who = (req.id, req.name);
            let held = self.join_one(who, &net, ep, i, &host, inside, netns, att)?;
            if i == 0 {
                primary_ip = Some(held);
            }
            embedded |= net.rec.user_defined();
        }
        // Published ports, on the primary network's address.
        let mut bindings: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
        if let Some(addr) = primary_ip {
            for w in &req.ports {
                let (p, fd) = {
                    let active = lock(&self.active);
                    let taken = |proto: Proto, ip: Option<Ipv4Addr>, port: u16| {
                        active.values().chain(std::iter::once(&*att)).any(|a| {
                            a.published.iter().any(|x| {
                                x.proto == proto
                                    && x.host_port == port
                                    && (x.host_ip.is_none() || ip.is_none() || x.host_ip == ip)
                            })
                        })
                    };
                    ports::reserve(w, addr, &taken)?
                };
                bindings
                    .entry(format!("{}/{}", w.port, w.proto.as_str()))
                    .or_default()
                    .push(PortBinding {
                        host_ip: p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
                        host_port: p.host_port.to_string(),
                    });
                att.published.push(p);
                att.sockets.push(fd);
            }
        } else if !req.ports.is_empty() {
            tracing::debug!("{}: ports not published (no network)", req.id);
        }
        // Names for the DNS server, and the server.
        for ep in endpoints.values() {
            if let Some(ip) = ep.ip {
                let net_name = self
                    .find(&ep.network_id)
                    .map(|n| n.rec.name.clone())
                    .unwrap_or_default();
                self.names.add(
                    &ep.network_id,
                    name_entry((req.id, req.name), &net_name, ep, ip),
                );
            }
        }
        let host_resolv = etc_files::host_resolv();
        let dns = self.dns_with_defaults(&req.dns);
        if embedded {
            let upstreams = etc_files::upstreams(&host_resolv, &dns);
            let handle = self
                .dns
                .serve(
                    netns,
                    req.id,
                    self.names.clone(),
                    self.net_names(),
                    upstreams,
                )
                .map_err(|e| NetworkError::Internal(format!("the embedded DNS server: {e}")))?;
            att.dns = Some(handle);
        }
        write_in_place(
            &req.hosts_path,
            &etc_files::hosts(req.extra_hosts, primary_ip, req.hostname, req.domain),
        )?;
        write_in_place(
            &req.resolv_path,
            &etc_files::resolv_conf(&host_resolv, &dns, embedded),
        )?;
        Ok(bindings)
    }

    /// One network: address, veth pair, the container's side set up.
    #[allow(clippy::too_many_arguments)]
    fn join_one(
        &self,
        (id, name): (&str, &str),
        net: &Net,
        ep: &mut Endpoint,
        i: usize,
        host: &Netlink,
        inside: &Netlink,
        netns: &std::fs::File,
        att: &mut Attached,
    ) -> Result<Ipv4Addr> {
        let pool = net.pool.as_ref().ok_or_else(|| {
            NetworkError::Invalid(format!("network {} has no addresses", net.rec.name))
        })?;
        let ip = match ep.ip_request {
            Some(ip) => {
                pool.claim(ip, id)
                    .map_err(|e| NetworkError::Conflict(e.to_string()))?;
                ip
            }
            None => pool
                .allocate(id)
                .map_err(|e| NetworkError::Conflict(e.to_string()))?,
        };
        let bridge = match lock(&net.bridges).take_port(&net.rec) {
            Ok(b) => b,
            Err(e) => {
                let _ = pool.release(ip);
                return Err(e);
            }
        };
        let veth = format!("veth{}", random_hex(7));
        att.endpoints.push(Held {
            network_id: net.rec.id.clone(),
            ip,
            bridge,
            veth: veth.clone(),
        });
        let ifname = format!("eth{i}");
        let mac = if ep.mac_request.is_empty() {
            let o = ip.octets();
            [0x02, 0x42, o[0], o[1], o[2], o[3]]
        } else {
            parse_mac(&ep.mac_request)?
        };
        let mtu = net.rec.mtu;
        let index = host
            .create_veth(&veth, &ifname, Some(netns.as_fd()), mtu)
            .map_err(nl_err(&format!("creating the veth pair {veth}")))?;
        super::bridges::set_if_sysctl(&veth, "ipv6/disable_ipv6", "1");
        host.set_master(index, bridge)
            .map_err(nl_err(&format!("attaching {veth} to the bridge")))?;
        host.set_up(index)
            .map_err(nl_err(&format!("bringing {veth} up")))?;
        let peer = inside
            .link(&ifname)
            .map_err(nl_err("finding the container's interface"))?
            .ok_or_else(|| {
                NetworkError::Internal(format!("{ifname} is missing in the container"))
            })?;
        inside
            .set_mac(peer.index, mac)
            .map_err(nl_err(&format!("setting the MAC of {ifname}")))?;
        let prefix = net.rec.prefix_len();
        inside
            .add_address(peer.index, ip.into(), prefix)
            .map_err(nl_err(&format!("adding {ip} to {ifname}")))?;
        inside
            .set_up(peer.index)
            .map_err(nl_err(&format!("bringing {ifname} up")))?;
        let gateway = pool.gateway();
        if i == 0 && !net.rec.internal {
            inside
                .add_default_route(gateway, peer.index)
                .map_err(nl_err("adding the default route"))?;
        }
        ep.endpoint_id = crate::containers::new_id();
        ep.ip = Some(ip);
        ep.prefix_len = prefix;
        ep.gateway = Some(gateway);
        ep.mac = mac_text(mac);
        ep.ifname = ifname;
        ep.veth = veth;
        if net.rec.user_defined() {
            ep.dns_names = Networks::dns_names(id, name, &ep.aliases);
        } else {
            ep.dns_names.clear();
        }
        Ok(ip)
    }

    /// `network connect` of a running container: one more interface
    /// (`eth<index>`), its name on the network and, on its first
    /// user-defined network, the embedded DNS server.
    #[allow(clippy::too_many_arguments)]
    pub fn connect_running(
        self: &Arc<Self>,
        (id, name): (&str, &str),
        pid: i32,
        net: &Net,
        ep: &mut Endpoint,
        index: usize,
        dns: &DnsSettings,
        resolv_path: &std::path::Path,
    ) -> Result<()> {
        let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| {
            NetworkError::Internal(format!("the container's network namespace: {e}"))
        })?;
        let inside = Netlink::open_in(netns.as_fd()).map_err(nl_err("netlink in the container"))?;
        let host = Netlink::open().map_err(nl_err("netlink"))?;
        let mut att = Attached::default();
        // Index 0 would add a default route: a connected network is never
        // the first (the container has its primary already).
        let joined = self.join_one(
            (id, name),
            net,
            ep,
            index.max(1),
            &host,
            &inside,
            &netns,
            &mut att,
        );
        let ip = match joined {
            Ok(ip) => ip,
            Err(e) => {
                self.release_endpoints(&att.endpoints, true);
                clear(ep);
                return Err(e);
            }
        };
        self.names
            .add(&net.rec.id, name_entry((id, name), &net.rec.name, ep, ip));
        let mut active = lock(&self.active);
        let entry = active.entry(id.to_string()).or_insert_with(|| Attached {
            name: name.to_string(),
            ..Default::default()
        });
        entry.endpoints.append(&mut att.endpoints);
        if net.rec.user_defined() && entry.dns.is_none() {
            let dns = &self.dns_with_defaults(dns);
            let host_resolv = etc_files::host_resolv();
            let upstreams = etc_files::upstreams(&host_resolv, dns);
            match self
                .dns
                .serve(&netns, id, self.names.clone(), self.net_names(), upstreams)
            {
                Ok(h) => {
                    entry.dns = Some(h);
                    let _ = write_in_place(
                        resolv_path,
                        &etc_files::resolv_conf(&host_resolv, dns, true),
                    );
                }
                Err(e) => tracing::warn!("{id}: the embedded DNS server: {e}"),
            }
        }
        Ok(())
    }

    /// `network disconnect` of a running container: its interface on the
    /// network goes (deleting the host end of the veth pair deletes both),
    /// and the ports published on that address.
    pub fn disconnect_running(&self, id: &str, network_id: &str, ep: &mut Endpoint) {
        let (held, ports_went) = {
            let mut active = lock(&self.active);
            let Some(att) = active.get_mut(id) else {
                clear(ep);
                return;
            };
            let held: Vec<Held> = att
                .endpoints
                .iter()
                .filter(|h| h.network_id == network_id)
                .cloned()
                .collect();
            att.endpoints.retain(|h| h.network_id != network_id);
            let before = att.published.len();
            let gone: Vec<Ipv4Addr> = held.iter().map(|h| h.ip).collect();
            let mut keep_sockets = Vec::new();
            let mut keep = Vec::new();
            for (p, s) in att.published.drain(..).zip(att.sockets.drain(..)) {
                if !gone.contains(&p.addr) {
                    keep.push(p);
                    keep_sockets.push(s);
                }
            }
            att.published = keep;
            att.sockets = keep_sockets;
            (held, before != att.published.len())
        };
        self.names.remove(network_id, id);
        self.release_endpoints(&held, true);
        if ports_went {
            if let Err(e) = self.apply_rules() {
                tracing::warn!("updating the rules after disconnecting {id}: {e}");
            }
        }
        clear(ep);
    }

    /// Gives back the addresses and bridge ports of endpoints, and deletes
    /// their veths if `delete_links` (a container that ended leaves that to
    /// the kernel: its namespace goes and the pair with it, without the
    /// daemon waiting on the RTNL lock and an RCU grace period).
    fn release_endpoints(&self, held: &[Held], delete_links: bool) {
        let host = if delete_links {
            Netlink::open().ok()
        } else {
            None
        };
        for h in held {
            if let Ok(net) = self.find(&h.network_id) {
                if let Some(pool) = &net.pool {
                    let _ = pool.release(h.ip);
                }
                lock(&net.bridges).release(h.bridge);
            }
            if let Some(nl) = &host {
                if let Ok(Some(l)) = nl.link(&h.veth) {
                    let _ = nl.delete_link(l.index);
                }
            }
        }
    }

    /// Gives back what `att` holds.
    fn release(&self, id: &str, att: Attached, delete_links: bool) {
        let had_ports = !att.published.is_empty();
        self.names.remove_container(id);
        self.release_endpoints(&att.endpoints, delete_links);
        drop(att.sockets);
        drop(att.dns);
        if had_ports {
            if let Err(e) = self.apply_rules() {
                tracing::warn!("updating the rules after {id} left: {e}");
            }
        }
    }

    /// A container stopped (or is gone): its addresses, bridge ports,
    /// published ports and DNS server are given back; `endpoints` forget
    /// their addresses.
    pub fn detach(&self, id: &str, endpoints: &mut BTreeMap<String, Endpoint>) {
        let att = lock(&self.active).remove(id);
        if let Some(att) = att {
            self.release(id, att, false);
        }
        // Addresses recorded but not held (a daemon that died).
        for ep in endpoints.values_mut() {
            if let (Some(ip), Ok(net)) = (ep.ip, self.find(&ep.network_id)) {
                if let Some(pool) = &net.pool {
                    if pool.owner(ip).as_deref() == Some(id) {
                        let _ = pool.release(ip);
                    }
                }
            }
            clear(ep);
        }
    }

    /// After a daemon restart: a running container takes back what its
    /// record says it holds (its ports are bound again, its DNS server
    /// serves again).
    pub fn readopt(
        self: &Arc<Self>,
        id: &str,
        name: &str,
        pid: i32,
        endpoints: &BTreeMap<String, Endpoint>,
        ports: &BTreeMap<String, Vec<PortBinding>>,
        dns: &DnsSettings,
    ) {
        let mut att = Attached {
            name: name.to_string(),
            ..Default::default()
        };
        let mut embedded = false;
        let mut primary = None;
        for ep in endpoints.values() {
            let (Some(ip), Ok(net)) = (ep.ip, self.find(&ep.network_id)) else {
                continue;
            };
            let _ = self.bridge_up(&net);
            let bridge = {
                let b = lock(&net.bridges);
                b.index_of_port(&ep.veth)
            };
            att.endpoints.push(Held {
                network_id: net.rec.id.clone(),
                ip,
                bridge,
                veth: ep.veth.clone(),
            });
            if ep.ifname == "eth0" {
                primary = Some(ip);
            }
            embedded |= net.rec.user_defined();
            self.names.add(
                &ep.network_id,
                name_entry((id, name), &net.rec.name, ep, ip),
            );
        }
        if let Some(addr) = primary {
            for (key, list) in ports {
                let Ok((port, proto)) = ports::parse_port_key(key) else {
                    continue;
                };
                for b in list {
                    let host_ip = b
                        .host_ip
                        .parse::<Ipv4Addr>()
                        .ok()
                        .filter(|i| !i.is_unspecified());
                    let Ok(host_port) = b.host_port.parse::<u16>() else {
                        continue;
                    };
                    let w = Wanted {
                        proto,
                        port,
                        host_ip,
                        host_ports: (host_port, host_port),
                    };
                    match ports::reserve(&w, addr, &|_, _, _| false) {
                        Ok((p, fd)) => {
                            att.published.push(p);
                            att.sockets.push(fd);
                        }
                        Err(e) => tracing::warn!("{id}: port {key}: {e}"),
                    }
                }
            }
        }
        if embedded {
            let host_resolv = etc_files::host_resolv();
            let dns = self.dns_with_defaults(dns);
            if let Ok(netns) = std::fs::File::open(format!("/proc/{pid}/ns/net")) {
                match self.dns.serve(
                    &netns,
                    id,
                    self.names.clone(),
                    self.net_names(),
                    etc_files::upstreams(&host_resolv, &dns),
                ) {
                    Ok(h) => att.dns = Some(h),
                    Err(e) => tracing::warn!("{id}: the embedded DNS server: {e}"),
                }
            }
        }
        lock(&self.active).insert(id.to_string(), att);
    }

    /// At daemon start, after the running containers were re-adopted:
    /// addresses recorded for containers that do not hold them are freed.
    pub fn sweep_addresses(&self) {
        let held: HashSet<(String, Ipv4Addr)> = lock(&self.active)
            .values()
            .flat_map(|a| a.endpoints.iter().map(|h| (h.network_id.clone(), h.ip)))
            .collect();
        for net in self.all() {
            let Some(pool) = &net.pool else { continue };
            for (ip, _) in pool.in_use() {
                if !held.contains(&(net.rec.id.clone(), ip)) {
                    let _ = pool.release(ip);
                }
            }
        }
    }

    /// Whether a running container holds an endpoint on a network.
    pub fn is_attached(&self, id: &str, network_id: &str) -> bool {
        lock(&self.active)
            .get(id)
            .is_some_and(|a| a.endpoints.iter().any(|h| h.network_id == network_id))
    }

    /// The running containers on a network: (container ID, endpoint
    /// network ID).
    pub fn containers_on(&self, network_id: &str) -> Vec<String> {
        lock(&self.active)
            .iter()
            .filter(|(_, a)| a.endpoints.iter().any(|h| h.network_id == network_id))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// A container's entry for the DNS server on one network.
fn name_entry((id, name): (&str, &str), net_name: &str, ep: &Endpoint, ip: Ipv4Addr) -> Entry {
    Entry {
        container_id: id.to_string(),
        names: ep.dns_names.iter().map(|n| n.to_lowercase()).collect(),
        ip,
        ptr: format!("{name}.{net_name}"),
    }
}

fn clear(ep: &mut Endpoint) {
    ep.endpoint_id.clear();
    ep.ip = None;
    ep.prefix_len = 0;
    ep.gateway = None;
    ep.mac.clear();
    ep.ifname.clear();
    ep.veth.clear();
}

/// Rewrites a file that is bind-mounted into a container: the same inode,
/// new contents.
fn write_in_place(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| NetworkError::Internal(format!("writing {}: {e}", path.display())))
}
