//! A network's record: one JSON file per network, written atomically.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// What a network is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetRecord {
    /// 64 hex digits.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// RFC 3339.
    pub created: String,
    /// The subnet (bridge networks).
    pub subnet: Option<Ipv4Net>,
    /// `--ip-range`.
    pub ip_range: Option<Ipv4Net>,
    /// The gateway: the bridge's address.
    pub gateway: Option<Ipv4Addr>,
    /// The first bridge's device name.
    pub bridge: String,
    /// The MTU of the bridge and the veths.
    pub mtu: Option<u32>,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// `-o` options.
    pub options: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

impl NetRecord {
    /// Reads a record.
    pub fn load(path: &Path) -> std::io::Result<NetRecord> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }

    /// Writes a record (a temporary file renamed over the old one).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, path)
    }

    /// Whether the network masquerades outbound traffic (the bridge
    /// driver's `enable_ip_masquerade` option, on unless set false).
    pub fn masquerade(&self) -> bool {
        self.options
            .get("com.docker.network.bridge.enable_ip_masquerade")
            .is_none_or(|v| v != "false")
    }

    /// A user-defined network: its containers get the embedded DNS server.
    pub fn user_defined(&self) -> bool {
        !matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    /// The prefix length of the subnet.
    pub fn prefix_len(&self) -> u8 {
        self.subnet.map(|s| s.prefix_len()).unwrap_or(0)
    }
}
