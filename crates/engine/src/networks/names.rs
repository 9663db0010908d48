//! Container names for the embedded DNS server: who is on which network
//! under which names, and the server's sockets in each container.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::sync::{Arc, OnceLock, RwLock};

use hafen_network::dns::{Names, Resolver, ServeHandle};

/// One container on one network.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The container's ID.
    pub container_id: String,
    /// Its name, aliases and short ID, lower-cased.
    pub names: Vec<String>,
    /// Its address on the network.
    pub ip: Ipv4Addr,
    /// The name PTR queries get (`name.network`).
    pub ptr: String,
}

/// Who is where, by network ID.
#[derive(Debug, Default)]
pub struct NameIndex {
    nets: RwLock<HashMap<String, Vec<Entry>>>,
}

impl NameIndex {
    /// A container joined a network.
    pub fn add(&self, net_id: &str, entry: Entry) {
        let mut nets = self.nets.write().unwrap_or_else(|e| e.into_inner());
        let v = nets.entry(net_id.to_string()).or_default();
        v.retain(|e| e.container_id != entry.container_id);
        v.push(entry);
    }

    /// A container left a network.
    pub fn remove(&self, net_id: &str, container_id: &str) {
        let mut nets = self.nets.write().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = nets.get_mut(net_id) {
            v.retain(|e| e.container_id != container_id);
        }
    }

    /// A container left every network.
    pub fn remove_container(&self, container_id: &str) {
        let mut nets = self.nets.write().unwrap_or_else(|e| e.into_inner());
        for v in nets.values_mut() {
            v.retain(|e| e.container_id != container_id);
        }
    }

    /// The addresses `name` has on the networks `asker` is on: by name,
    /// alias, short ID or an ID prefix of at least 12 digits; `name.net`
    /// asks one network by its name.
    pub fn lookup(
        &self,
        asker: &str,
        name: &str,
        net_names: &dyn Fn(&str) -> String,
    ) -> Vec<Ipv4Addr> {
        let nets = self.nets.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (net_id, entries) in nets.iter() {
            if !entries.iter().any(|e| e.container_id == asker) {
                continue;
            }
            let net_name = net_names(net_id).to_lowercase();
            let wanted = name.strip_suffix(&format!(".{net_name}")).unwrap_or(name);
            for e in entries {
                let hit = e.names.iter().any(|n| n == wanted)
                    || (wanted.len() >= 12
                        && wanted.chars().all(|c| c.is_ascii_hexdigit())
                        && e.container_id.starts_with(wanted));
                if hit && !out.contains(&e.ip) {
                    out.push(e.ip);
                }
            }
        }
        out
    }

    /// The name of an address on the networks `asker` is on.
    pub fn reverse(&self, asker: &str, ip: Ipv4Addr) -> Option<String> {
        let nets = self.nets.read().unwrap_or_else(|e| e.into_inner());
        nets.values()
            .filter(|entries| entries.iter().any(|e| e.container_id == asker))
            .flat_map(|entries| entries.iter())
            .find(|e| e.ip == ip)
            .map(|e| e.ptr.clone())
    }
}

/// What one container may resolve.
struct ContainerNames {
    index: Arc<NameIndex>,
    id: String,
    net_names: Arc<dyn Fn(&str) -> String + Send + Sync>,
}

impl Names for ContainerNames {
    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let ips = self.index.lookup(&self.id, name, &*self.net_names);
        (!ips.is_empty()).then_some(ips)
    }

    fn reverse(&self, addr: Ipv4Addr) -> Option<String> {
        self.index.reverse(&self.id, addr)
    }
}

/// The embedded DNS servers: one small task per container, on a runtime
/// of their own (one thread), started when the first one is needed.
#[derive(Debug, Default)]
pub struct DnsService {
    runtime: OnceLock<Option<tokio::runtime::Runtime>>,
}

impl DnsService {
    fn runtime(&self) -> Option<&tokio::runtime::Runtime> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("hafen-dns")
                    .enable_all()
                    .build()
                    .map_err(|e| tracing::warn!("cannot start the DNS server: {e}"))
                    .ok()
            })
            .as_ref()
    }

    /// Serves 127.0.0.11:53 (UDP and TCP) inside the network namespace
    /// `netns` for container `id`.
    pub fn serve(
        &self,
        netns: &std::fs::File,
        id: &str,
        index: Arc<NameIndex>,
        net_names: Arc<dyn Fn(&str) -> String + Send + Sync>,
        upstreams: Vec<std::net::SocketAddr>,
    ) -> std::io::Result<ServeHandle> {
        let (udp, tcp) = sockets_in(netns)?;
        let rt = self
            .runtime()
            .ok_or_else(|| std::io::Error::other("no DNS runtime"))?;
        let _guard = rt.enter();
        let names = Arc::new(ContainerNames {
            index,
            id: id.to_string(),
            net_names,
        });
        Ok(Resolver::new(upstreams).serve(udp, Some(tcp), names))
    }
}

/// Binds the server's sockets inside a network namespace: a short-lived
/// thread enters it (only that thread), binds, and leaves with it; the
/// sockets stay in that namespace.
fn sockets_in(
    netns: &std::fs::File,
) -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    hafen_network::in_namespace(netns.as_fd(), || {
        let addr = std::net::SocketAddr::from((Ipv4Addr::new(127, 0, 0, 11), 53));
        let udp = std::net::UdpSocket::bind(addr)?;
        let tcp = std::net::TcpListener::bind(addr)?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        Ok((udp, tcp))
    })?
}
