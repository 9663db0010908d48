//! A small synchronous rtnetlink client: the links (bridges, veth pairs),
//! addresses and routes containers need, in the daemon's network
//! namespace or in a container's.
//!
//! Messages are built and parsed by `netlink-packet-route`; this module
//! sends them on one `NETLINK_ROUTE` socket and reads the answers (ACKs,
//! errors, multi-part dumps). One socket belongs to the namespace it was
//! opened in; [`Netlink::open_in`] opens one in another namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::BorrowedFd;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridge, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing exists already (EEXIST).
    #[error("{0}: File exists")]
    Exists(String),
    /// No such link (ENODEV/ENOENT).
    #[error("{0}: No such device")]
    NotFound(String),
    /// The kernel refused.
    #[error("{op}: {source}")]
    Kernel {
        /// What was asked.
        op: String,
        /// The kernel's error.
        source: std::io::Error,
    },
    /// The socket.
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// An answer that does not parse.
    #[error("netlink answer: {0}")]
    Decode(String),
}

type Result<T> = std::result::Result<T, Error>;

/// A link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    /// Its index.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// Its MAC.
    pub mac: Option<[u8; 6]>,
    /// Its MTU.
    pub mtu: u32,
    /// The bridge it is a port of.
    pub master: Option<u32>,
    /// Administratively up.
    pub up: bool,
    /// `bridge`, `veth`, … (none for loopback and physical devices).
    pub kind: Option<String>,
    /// Its counters.
    pub stats: LinkStats,
}

/// A link's counters (IFLA_STATS64).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Packets dropped on sending.
    pub tx_dropped: u64,
}

/// An address of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// The link.
    pub index: u32,
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
}

/// An IPv4 route of the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destination (0.0.0.0 for the default route).
    pub dst: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// The output link.
    pub oif: Option<u32>,
    /// The gateway.
    pub gateway: Option<Ipv4Addr>,
}

/// Docker's MAC for an IPv4 address: `02:42` and the address's bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// An rtnetlink socket.
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    seq: std::cell::Cell<u32>,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            socket,
            seq: std::cell::Cell::new(1),
        })
    }

    /// A socket in another network namespace (an fd of
    /// `/proc/<pid>/ns/net`): opened on a short-lived thread that enters
    /// the namespace; the socket stays there and works from any thread.
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink> {
        crate::in_namespace(netns, Netlink::open).map_err(|e| Error::Kernel {
            op: "entering the network namespace".into(),
            source: e,
        })?
    }

    /// Sends one request; the answers (for a dump, all parts), or the
    /// kernel's error.
    fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        let mut rbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            rbuf.clear();
            let n = self.socket.recv(&mut rbuf, 0)?;
            let data = &rbuf[..n.min(rbuf.len())];
            let mut offset = 0;
            while offset < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .map_err(|e| Error::Decode(e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(Error::Decode("a zero-length message".into()));
                }
                offset += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        None => {
                            if !dump {
                                return Ok(out);
                            }
                        }
                        Some(code) => {
                            let errno = -code.get();
                            let source = std::io::Error::from_raw_os_error(errno);
                            return Err(match errno {
                                libc::EEXIST => Error::Exists(op()),
                                libc::ENODEV | libc::ENOENT => Error::NotFound(op()),
                                _ => Error::Kernel { op: op(), source },
                            });
                        }
                    },
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn ack(&self, msg: RouteNetlinkMessage, flags: u16, op: &dyn Fn() -> String) -> Result<()> {
        self.request(msg, NLM_F_ACK | flags, op).map(|_| ())
    }

    /// All links.
    pub fn links(&self) -> Result<Vec<Link>> {
        let answers = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
            &|| "listing links".into(),
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_of(&l)),
                _ => None,
            })
            .collect())
    }

    /// The link called `name`, if there is one.
    pub fn link(&self, name: &str) -> Result<Option<Link>> {
        if name.is_empty() || name.len() > 15 {
            return Err(Error::Kernel {
                op: format!("finding link {name:?}"),
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0, &|| {
            format!("finding link {name}")
        }) {
            Ok(answers) => Ok(answers.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_of(&l)),
                _ => None,
            })),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn new_link(&self, msg: LinkMessage, what: &str, name: &str) -> Result<u32> {
        self.ack(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("creating {what} {name}"),
        )?;
        self.link(name)?
            .map(|l| l.index)
            .ok_or_else(|| Error::NotFound(format!("{what} {name} after creating it")))
    }

    /// Creates a bridge (STP off); its index.
    pub fn create_bridge(&self, name: &str, mtu: Option<u32>) -> Result<u32> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Bridge),
            LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::StpState(
                netlink_packet_route::link::BridgeStpState::Disabled,
            )])),
        ]));
        self.new_link(msg, "bridge", name)
    }

    /// Creates a veth pair: `name` here, `peer` here or directly in the
    /// namespace `peer_netns`; the index of `name`.
    pub fn create_veth(
        &self,
        name: &str,
        peer: &str,
        peer_netns: Option<BorrowedFd<'_>>,
        mtu: Option<u32>,
    ) -> Result<u32> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        if let Some(mtu) = mtu {
            peer_msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(fd) = peer_netns {
            use std::os::fd::AsRawFd;
            peer_msg
                .attributes
                .push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.new_link(msg, "veth pair", name)
    }

    fn set_link(&self, index: u32, what: &str, f: impl FnOnce(&mut LinkMessage)) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        f(&mut msg);
        self.ack(RouteNetlinkMessage::SetLink(msg), 0, &|| {
            format!("{what} of link {index}")
        })
    }

    /// Makes `index` a port of bridge `master`.
    pub fn set_master(&self, index: u32, master: u32) -> Result<()> {
        self.set_link(index, "setting the master", |m| {
            m.attributes.push(LinkAttribute::Controller(master));
        })
    }

    /// Brings a link up.
    pub fn set_up(&self, index: u32) -> Result<()> {
        self.set_link(index, "bringing up", |m| {
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
        })
    }

    /// Brings a link down.
    pub fn set_down(&self, index: u32) -> Result<()> {
        self.set_link(index, "bringing down", |m| {
            m.header.flags = LinkFlags::empty();
            m.header.change_mask = LinkFlags::Up;
        })
    }

    /// Renames a link (it must be down).
    pub fn rename(&self, index: u32, name: &str) -> Result<()> {
        self.set_link(index, "renaming", |m| {
            m.attributes.push(LinkAttribute::IfName(name.to_string()));
        })
    }

    /// Sets a link's MAC.
    pub fn set_mac(&self, index: u32, mac: [u8; 6]) -> Result<()> {
        self.set_link(index, "setting the MAC", |m| {
            m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        })
    }

    /// Sets a link's MTU.
    pub fn set_mtu(&self, index: u32, mtu: u32) -> Result<()> {
        self.set_link(index, "setting the MTU", |m| {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        })
    }

    /// Deletes a link (a veth: both ends).
    pub fn delete_link(&self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.ack(RouteNetlinkMessage::DelLink(msg), 0, &|| {
            format!("deleting link {index}")
        })
    }

    /// Adds an address to a link (with the broadcast address for IPv4).
    pub fn add_address(&self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = prefix_len;
        msg.header.family = match addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        msg.attributes.push(AddressAttribute::Local(addr));
        msg.attributes.push(AddressAttribute::Address(addr));
        if let IpAddr::V4(v4) = addr {
            if prefix_len < 31 {
                let mask = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
                let brd = Ipv4Addr::from(u32::from(v4) | mask);
                msg.attributes.push(AddressAttribute::Broadcast(brd));
            }
        }
        self.ack(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("adding {addr}/{prefix_len} to link {index}"),
        )
    }

    /// All addresses.
    pub fn addresses(&self) -> Result<Vec<Address>> {
        let answers = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
            &|| "listing addresses".into(),
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => {
                    let addr = a.attributes.iter().find_map(|x| match x {
                        AddressAttribute::Local(ip) => Some(*ip),
                        _ => None,
                    });
                    let addr = addr.or_else(|| {
                        a.attributes.iter().find_map(|x| match x {
                            AddressAttribute::Address(ip) => Some(*ip),
                            _ => None,
                        })
                    })?;
                    Some(Address {
                        index: a.header.index,
                        addr,
                        prefix_len: a.header.prefix_len,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Adds the default route via `gateway` on link `index`.
    pub fn add_default_route(&self, gateway: Ipv4Addr, index: u32) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = libc::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        msg.attributes.push(RouteAttribute::Oif(index));
        self.ack(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("adding the default route via {gateway}"),
        )
    }

    /// The IPv4 routes of the main table.
    pub fn routes_v4(&self) -> Result<Vec<Route>> {
        let mut req = RouteMessage::default();
        req.header.address_family = AddressFamily::Inet;
        let answers = self.request(RouteNetlinkMessage::GetRoute(req), NLM_F_DUMP, &|| {
            "listing routes".into()
        })?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) if r.header.table == libc::RT_TABLE_MAIN => {
                    let mut route = Route {
                        dst: Ipv4Addr::UNSPECIFIED,
                        prefix_len: r.header.destination_prefix_length,
                        oif: None,
                        gateway: None,
                    };
                    for a in &r.attributes {
                        match a {
                            RouteAttribute::Destination(RouteAddress::Inet(d)) => route.dst = *d,
                            RouteAttribute::Gateway(RouteAddress::Inet(g)) => {
                                route.gateway = Some(*g)
                            }
                            RouteAttribute::Oif(i) => route.oif = Some(*i),
                            _ => {}
                        }
                    }
                    Some(route)
                }
                _ => None,
            })
            .collect())
    }
}

fn link_of(l: &LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        up: l.header.flags.contains(LinkFlags::Up),
        ..Default::default()
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::Controller(m) => link.master = Some(*m),
            LinkAttribute::Address(mac) => link.mac = <[u8; 6]>::try_from(mac.as_slice()).ok(),
            LinkAttribute::Stats64(s) => {
                link.stats = LinkStats {
                    rx_bytes: s.rx_bytes,
                    rx_packets: s.rx_packets,
                    rx_errors: s.rx_errors,
                    rx_dropped: s.rx_dropped,
                    tx_bytes: s.tx_bytes,
                    tx_packets: s.tx_packets,
                    tx_errors: s.tx_errors,
                    tx_dropped: s.tx_dropped,
                }
            }
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        link.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// Runs `f` on a thread of its own in a new network namespace.
    fn isolated<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(move || {
            crate::unshare_network_of_this_thread().expect("a new network namespace");
            f()
        })
        .join()
        .expect("the test thread")
    }

    /// A second namespace, held by a thread that waits: its fd.
    fn other_namespace() -> (std::fs::File, std::sync::mpsc::Sender<()>) {
        let (tx_fd, rx_fd) = std::sync::mpsc::channel();
        let (tx_stop, rx_stop) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            crate::unshare_network_of_this_thread().expect("a new network namespace");
            let f = std::fs::File::open("/proc/thread-self/ns/net").expect("ns file");
            tx_fd.send(f).expect("send");
            let _ = rx_stop.recv();
        });
        (rx_fd.recv().expect("fd"), tx_stop)
    }

    #[test]
    fn bridges_veths_addresses_and_routes() {
        isolated(|| {
            let nl = Netlink::open().expect("netlink");
            let br = nl.create_bridge("tbr0", Some(1400)).expect("bridge");
            let l = nl.link("tbr0").expect("lookup").expect("the bridge");
            assert_eq!(l.index, br);
            assert_eq!(l.kind.as_deref(), Some("bridge"));
            assert_eq!(l.mtu, 1400);
            assert!(matches!(
                nl.create_bridge("tbr0", None),
                Err(Error::Exists(_))
            ));
            nl.set_up(br).expect("up");
            nl.add_address(br, "10.99.0.1".parse().expect("ip"), 24)
                .expect("address");

            let (ns, stop) = other_namespace();
            let v = nl
                .create_veth("tveth0", "eth0", Some(ns.as_fd()), Some(1400))
                .expect("veth");
            nl.set_master(v, br).expect("master");
            nl.set_up(v).expect("up");
            let host_end = nl.link("tveth0").expect("lookup").expect("veth");
            assert_eq!(host_end.master, Some(br));
            assert_eq!(host_end.kind.as_deref(), Some("veth"));
            assert!(
                nl.link("eth0").expect("lookup").is_none(),
                "the peer is elsewhere"
            );

            let inside = Netlink::open_in(ns.as_fd()).expect("netlink inside");
            let eth0 = inside.link("eth0").expect("lookup").expect("eth0");
            let mac = mac_for("10.99.0.2".parse().expect("ip"));
            inside.set_mac(eth0.index, mac).expect("mac");
            inside
                .add_address(eth0.index, "10.99.0.2".parse().expect("ip"), 24)
                .expect("address");
            inside.set_up(eth0.index).expect("up");
            inside
                .add_default_route("10.99.0.1".parse().expect("ip"), eth0.index)
                .expect("route");
            let eth0 = inside.link("eth0").expect("lookup").expect("eth0");
            assert_eq!(eth0.mac, Some(mac));
            assert!(eth0.up);
            let addrs = inside.addresses().expect("addresses");
            assert!(addrs.iter().any(|a| a.index == eth0.index
                && a.addr == "10.99.0.2".parse::<IpAddr>().expect("ip")
                && a.prefix_len == 24));
            let routes = inside.routes_v4().expect("routes");
            assert!(
                routes
                    .iter()
                    .any(|r| r.prefix_len == 0
                        && r.gateway == Some("10.99.0.1".parse().expect("ip")))
            );
            assert!(routes.iter().any(
                |r| r.prefix_len == 24 && r.dst == "10.99.0.0".parse::<Ipv4Addr>().expect("ip")
            ));

            // Deleting the host end takes the peer with it.
            nl.delete_link(v).expect("delete");
            assert!(nl.link("tveth0").expect("lookup").is_none());
            assert!(inside.link("eth0").expect("lookup").is_none());
            drop(stop);
        });
    }

    #[test]
    fn counters_and_errors() {
        isolated(|| {
            let nl = Netlink::open().expect("netlink");
            let lo = nl.link("lo").expect("lookup").expect("lo");
            nl.set_up(lo.index).expect("up");
            let before = nl.link("lo").expect("lookup").expect("lo").stats.tx_packets;
            let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            let r = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.send_to(b"x", r.local_addr().expect("addr"))
                .expect("send");
            let after = nl.link("lo").expect("lookup").expect("lo").stats.tx_packets;
            assert!(after > before, "{before} -> {after}");
            assert!(matches!(nl.delete_link(9999), Err(Error::NotFound(_))));
            assert!(nl.link("nope0").expect("lookup").is_none());
            assert!(nl.link("a-name-that-is-far-too-long").is_err());
            assert!(
                nl.create_bridge("a-name-that-is-far-too-long", None)
                    .is_err()
            );
            assert!(matches!(nl.set_up(9999), Err(Error::NotFound(_))));
            let links = nl.links().expect("links");
            assert!(links.iter().any(|l| l.name == "lo"));
        });
    }
}
