//! Networks: Docker's bridge model on rtnetlink and nftables.
//!
//! Every network is a record (`<root>/networks/<id>.json`) and, for the
//! bridge driver, a pool of addresses ([`hafen_network::ipam`], one file
//! per address under `<root>/networks/<id>/ipam`) and one or more Linux
//! bridges. A Linux bridge holds at most 1024 ports; a network that needs
//! more chains further bridges to its first one with a veth pair (one L2
//! segment, one subnet, one gateway), so a network holds any number of
//! containers ([`bridges`]).
//!
//! Three networks always exist, as with dockerd: `bridge` (the default,
//! on the `hafen0` bridge, its subnet from the daemon config), `host` and
//! `none`. Containers join networks when they start ([`attach`]): a veth
//! pair, one end in the container's namespace, an address from the pool,
//! published ports (the daemon's nftables table, [`hafen_network::nft`]),
//! and on user-defined networks the embedded DNS server ([`names`]).

pub mod attach;
pub mod bridges;
pub mod container_ops;
pub mod etc_files;
pub mod names;
pub mod plan;
pub mod ports;
pub mod record;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use hafen_network::ipam::Pool;
use ipnet::Ipv4Net;

pub use record::NetRecord;

/// Network failures; the backend maps them to Docker's status codes.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// No such network (404).
    #[error("network {0} not found")]
    NotFound(String),
    /// A conflict (409): in use, a name taken, an address taken.
    #[error("{0}")]
    Conflict(String),
    /// Not allowed (403): the predefined networks.
    #[error("{0}")]
    Forbidden(String),
    /// Bad input (400).
    #[error("{0}")]
    Invalid(String),
    /// Something failed here (500).
    #[error("{0}")]
    Internal(String),
}

type Result<T, E = NetworkError> = std::result::Result<T, E>;

/// How the daemon sets networks up (the daemon config's keys).
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The default bridge's device (`bridge`, default `hafen0`).
    pub bridge: String,
    /// The default bridge's address and prefix (`bip`, e.g.
    /// `172.17.0.1/16`); the first free pool subnet if unset.
    pub bip: Option<(Ipv4Addr, u8)>,
    /// The MTU of the default bridge and its veths (`mtu`).
    pub mtu: Option<u32>,
    /// Masquerade traffic leaving the bridges (`ip-masq`, default on).
    pub ip_masq: bool,
    /// Turn on IPv4 forwarding (`ip-forward`, default on).
    pub ip_forward: bool,
    /// DNS servers for containers (`dns`); the host's otherwise.
    pub dns: Vec<Ipv4Addr>,
    /// Search domains for containers (`dns-search`).
    pub dns_search: Vec<String>,
    /// Resolver options for containers (`dns-opts`).
    pub dns_options: Vec<String>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            bridge: "hafen0".into(),
            bip: None,
            mtu: None,
            ip_masq: true,
            ip_forward: true,
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
        }
    }
}

/// One network in memory.
#[derive(Debug)]
pub struct Net {
    /// The record.
    pub rec: NetRecord,
    /// Its addresses (bridge networks).
    pub pool: Option<Pool>,
    /// Its bridges (bridge networks; created on demand).
    pub bridges: Mutex<bridges::Bridges>,
}

/// The networks.
#[derive(Debug)]
pub struct Networks {
    dir: PathBuf,
    /// The daemon's settings.
    pub config: NetConfig,
    nets: Mutex<BTreeMap<String, Arc<Net>>>,
    /// What running containers hold (addresses, ports, DNS servers).
    pub(crate) active: Mutex<HashMap<String, attach::Attached>>,
    /// Serialises rule changes so the table written last is the newest.
    nft: Mutex<()>,
    /// Names for the embedded DNS servers.
    pub names: Arc<names::NameIndex>,
    dns: names::DnsService,
}

/// The pools user-defined networks take their subnets from, as dockerd's
/// defaults: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<Ipv4Net> {
    let mut v: Vec<Ipv4Net> = (17..=31)
        .filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok())
        .collect();
    v.extend((0..16).filter_map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).ok()));
    v
}

/// Locks, surviving a poisoned mutex.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Networks {
    /// Opens the networks under `<root>/networks`, making the predefined
    /// ones the first time.
    pub fn open(root: &Path, config: NetConfig) -> std::io::Result<Networks> {
        let dir = root.join("networks");
        std::fs::create_dir_all(&dir)?;
        let mut nets = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match NetRecord::load(&path) {
                Ok(rec) => {
                    let net = Networks::load_net(&dir, rec)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    nets.insert(net.rec.id.clone(), Arc::new(net));
                }
                Err(e) => tracing::warn!("skipping network record {}: {e}", path.display()),
            }
        }
        let me = Networks {
            dir,
            config,
            nets: Mutex::new(nets),
            active: Mutex::new(HashMap::new()),
            nft: Mutex::new(()),
            names: Arc::new(names::NameIndex::default()),
            dns: names::DnsService::default(),
        };
        me.predefined()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(me)
    }

    fn load_net(dir: &Path, rec: NetRecord) -> Result<Net> {
        let pool = match (&rec.driver[..], rec.subnet) {
            ("bridge", Some(subnet)) => Some(
                Pool::open(
                    &dir.join(&rec.id).join("ipam"),
                    subnet,
                    rec.ip_range,
                    rec.gateway.unwrap_or_else(|| first_host(subnet)),
                )
                .map_err(|e| NetworkError::Invalid(e.to_string()))?,
            ),
            _ => None,
        };
        let bridges = bridges::Bridges::new(&rec);
        Ok(Net {
            rec,
            pool,
            bridges: Mutex::new(bridges),
        })
    }

    /// `bridge`, `host` and `none`; the default bridge follows the
    /// daemon config (a changed `bip` or `bridge` takes effect here when
    /// no container uses the network).
    fn predefined(&self) -> Result<()> {
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if self.find(name).is_err() {
                let rec = NetRecord {
                    id: crate::containers::new_id(),
                    name: name.into(),
                    driver: driver.into(),
                    created: crate::containers::now_rfc3339(),
                    ..Default::default()
                };
                self.insert(rec)?;
            }
        }
        let want_subnet = match self.config.bip {
            Some((ip, prefix)) => Some(
                Ipv4Net::new(ip, prefix).map_err(|e| NetworkError::Invalid(format!("bip: {e}")))?,
            ),
            None => None,
        };
        if let Ok(existing) = self.find("bridge") {
            let same = existing.rec.bridge == self.config.bridge
                && want_subnet.is_none_or(|s| {
                    existing.rec.subnet == Some(s.trunc()) && existing.rec.gateway == Some(s.addr())
                })
                && existing.rec.mtu == self.config.mtu;
            let used = existing
                .pool
                .as_ref()
                .is_some_and(|p| !p.in_use().is_empty());
            if same || used {
                return Ok(());
            }
            self.forget(&existing.rec.id);
        }
        let (subnet, gateway) = match want_subnet {
            Some(s) => (s.trunc(), s.addr()),
            None => {
                let s = self.free_subnet(&[])?;
                (s, first_host(s))
            }
        };
        let rec = NetRecord {
            id: crate::containers::new_id(),
            name: "bridge".into(),
            driver: "bridge".into(),
            created: crate::containers::now_rfc3339(),
            subnet: Some(subnet),
            gateway: Some(gateway),
            bridge: self.config.bridge.clone(),
            mtu: self.config.mtu,
            options: [
                ("com.docker.network.bridge.default_bridge", "true"),
                ("com.docker.network.bridge.enable_icc", "true"),
                ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                (
                    "com.docker.network.bridge.name",
                    self.config.bridge.as_str(),
                ),
                (
                    "com.docker.network.driver.mtu",
                    &self.config.mtu.unwrap_or(1500).to_string(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        };
        self.insert(rec)?;
        Ok(())
    }

    fn insert(&self, rec: NetRecord) -> Result<Arc<Net>> {
        rec.save(&self.dir.join(format!("{}.json", rec.id)))
            .map_err(|e| {
                NetworkError::Internal(format!("cannot save network {}: {e}", rec.name))
            })?;
        let net = Arc::new(Networks::load_net(&self.dir, rec)?);
        lock(&self.nets).insert(net.rec.id.clone(), net.clone());
        Ok(net)
    }

    fn forget(&self, id: &str) {
        lock(&self.nets).remove(id);
        let _ = std::fs::remove_file(self.dir.join(format!("{id}.json")));
        let _ = std::fs::remove_dir_all(self.dir.join(id));
    }

    /// All networks, by name.
    pub fn all(&self) -> Vec<Arc<Net>> {
        let mut v: Vec<Arc<Net>> = lock(&self.nets).values().cloned().collect();
        v.sort_by(|a, b| a.rec.name.cmp(&b.rec.name));
        v
    }

    /// A network by full name, full ID or unique ID prefix (as dockerd:
    /// an exact name wins, then an exact ID, then a prefix).
    pub fn find(&self, key: &str) -> Result<Arc<Net>> {
        let nets = lock(&self.nets);
        if let Some(n) = nets.values().find(|n| n.rec.name == key) {
            return Ok(n.clone());
        }
        if let Some(n) = nets.get(key) {
            return Ok(n.clone());
        }
        let hits: Vec<&Arc<Net>> = nets
            .values()
            .filter(|n| !key.is_empty() && n.rec.id.starts_with(key))
            .collect();
        match hits.len() {
            1 => Ok(hits[0].clone()),
            0 => Err(NetworkError::NotFound(key.to_string())),
            _ => Err(NetworkError::Invalid(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                hits.len()
            ))),
        }
    }

    /// The first default-pool subnet that overlaps no network and no
    /// address or route of the host (`also`: more to avoid).
    fn free_subnet(&self, also: &[Ipv4Net]) -> Result<Ipv4Net> {
        let mut taken: Vec<Ipv4Net> = lock(&self.nets)
            .values()
            .filter_map(|n| n.rec.subnet)
            .collect();
        taken.extend_from_slice(also);
        taken.extend(bridges::host_subnets());
        default_pools()
            .into_iter()
            .find(|p| !taken.iter().any(|t| overlaps(p, t)))
            .ok_or_else(|| {
                NetworkError::Invalid(
                    "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
                )
            })
    }

    /// `network create`.
    pub fn create(&self, mut rec: NetRecord) -> Result<Arc<Net>> {
        if rec.name.is_empty() {
            return Err(NetworkError::Invalid(
                "network name must not be empty".into(),
            ));
        }
        if !crate::containers::names::valid(&rec.name) {
            return Err(NetworkError::Invalid(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                rec.name
            )));
        }
        if matches!(rec.name.as_str(), "bridge" | "host" | "none" | "default") {
            return Err(NetworkError::Forbidden(format!(
                "operation is not permitted on predefined {} network ",
                rec.name
            )));
        }
        match rec.driver.as_str() {
            "bridge" => {}
            "host" | "null" => {
                return Err(NetworkError::Forbidden(format!(
                    "only one instance of \"{}\" network is allowed",
                    rec.driver
                )));
            }
            other => {
                return Err(NetworkError::NotFound(format!(
                    "plugin \"{other}\" (hafen has the bridge driver only)"
                )));
            }
        }
        if self.find(&rec.name).is_ok_and(|n| n.rec.name == rec.name) {
            return Err(NetworkError::Conflict(format!(
                "network with name {} already exists",
                rec.name
            )));
        }
        let subnet = match rec.subnet {
            Some(s) => {
                let s = s.trunc();
                if let Some(other) = lock(&self.nets)
                    .values()
                    .find(|n| n.rec.subnet.is_some_and(|t| overlaps(&s, &t)))
                {
                    return Err(NetworkError::Conflict(format!(
                        "invalid pool request: Pool overlaps with other one on this address space (network {})",
                        other.rec.name
                    )));
                }
                s
            }
            None => self.free_subnet(&[])?,
        };
        rec.subnet = Some(subnet);
        let gateway = rec.gateway.unwrap_or_else(|| first_host(subnet));
        rec.gateway = Some(gateway);
        if rec.bridge.is_empty() {
            rec.bridge = rec
                .options
                .get("com.docker.network.bridge.name")
                .cloned()
                .unwrap_or_else(|| format!("br-{}", &rec.id[..12]));
        }
        if rec.bridge.len() > 15 || rec.bridge.contains(['/', ' ', '"']) {
            return Err(NetworkError::Invalid(format!(
                "invalid bridge name {:?}: at most 15 characters, no spaces or slashes",
                rec.bridge
            )));
        }
        if lock(&self.nets)
            .values()
            .any(|n| n.rec.bridge == rec.bridge)
        {
            return Err(NetworkError::Conflict(format!(
                "bridge name {} is used by another network",
                rec.bridge
            )));
        }
        if let Some(mtu) = rec.options.get("com.docker.network.driver.mtu") {
            let mtu: u32 = mtu
                .parse()
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| {
                    NetworkError::Invalid(format!("invalid MTU {mtu:?}: a number from 68 to 65535"))
                })?;
            rec.mtu = Some(mtu);
        }
        // Checks the pool before anything is written.
        hafen_network::ipam::validate(subnet, rec.ip_range, gateway)
            .map_err(|e| NetworkError::Invalid(e.to_string()))?;
        let net = self.insert(rec)?;
        if let Err(e) = self.bridge_up(&net) {
            self.forget(&net.rec.id);
            return Err(e);
        }
        self.apply_rules()?;
        Ok(net)
    }

    /// Makes sure the network's first bridge exists, is up and has the
    /// gateway address.
    pub fn bridge_up(&self, net: &Net) -> Result<()> {
        if net.rec.driver != "bridge" {
            return Ok(());
        }
        lock(&net.bridges).ensure_first(&net.rec, self.config.ip_forward)
    }

    /// `network rm`: refused while a running container uses it.
    pub fn remove(&self, key: &str) -> Result<String> {
        let net = self.find(key)?;
        if matches!(net.rec.name.as_str(), "bridge" | "host" | "none") {
            return Err(NetworkError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                net.rec.name
            )));
        }
        let users: Vec<String> = lock(&self.active)
            .values()
            .filter(|a| a.endpoints.iter().any(|e| e.network_id == net.rec.id))
            .map(|a| a.name.clone())
            .collect();
        if !users.is_empty() {
            return Err(NetworkError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                net.rec.name, net.rec.id
            )));
        }
        lock(&net.bridges).remove_all();
        self.forget(&net.rec.id);
        self.apply_rules()?;
        Ok(net.rec.name.clone())
    }

    /// Writes hafen's nftables table from the networks and the ports of
    /// the running containers.
    pub fn apply_rules(&self) -> Result<()> {
        let _g = lock(&self.nft);
        let networks = self
            .all()
            .iter()
            .filter(|n| n.rec.driver == "bridge")
            .filter_map(|n| {
                Some(hafen_network::nft::NetworkRules {
                    bridges: lock(&n.bridges).names(),
                    subnet: n.rec.subnet?,
                    masquerade: self.config.ip_masq && n.rec.masquerade(),
                    internal: n.rec.internal,
                })
            })
            .collect();
        let ports = lock(&self.active)
            .values()
            .flat_map(|a| a.published.iter().cloned())
            .collect();
        let rules = hafen_network::nft::Ruleset { networks, ports };
        rules
            .apply()
            .map_err(|e| NetworkError::Internal(e.to_string()))
    }

    /// At daemon start: every bridge network's first bridge, forwarding
    /// if configured, and the rules.
    pub fn bring_up(&self) -> Result<()> {
        for net in self.all() {
            if let Err(e) = self.bridge_up(&net) {
                tracing::warn!("network {}: {e}", net.rec.name);
            }
        }
        if self.config.ip_forward {
            let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
        }
        self.apply_rules()
    }
}

/// The first host address of a subnet (the default gateway).
pub fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()).saturating_add(1))
}

/// Whether two subnets share an address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
