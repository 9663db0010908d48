//! What a new container's network settings mean: its network mode and the
//! endpoints it will have, checked as dockerd checks them at create.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::Value;

use super::attach::Endpoint;
use super::{NetworkError, Networks, Result};

/// A container's network mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Its own namespace on networks (`bridge` or user-defined).
    Networks,
    /// Its own namespace with only loopback.
    None,
    /// The host's namespace.
    Host,
    /// Another container's namespace.
    Container(String),
}

/// The mode of a `HostConfig.NetworkMode`.
pub fn mode_of(network_mode: &str) -> Mode {
    match network_mode {
        "none" => Mode::None,
        "host" => Mode::Host,
        m => match m.strip_prefix("container:") {
            Some(c) => Mode::Container(c.to_string()),
            None => Mode::Networks,
        },
    }
}

fn conflict(what: &str) -> NetworkError {
    NetworkError::Invalid(format!("conflicting options: {what}"))
}

/// What a create request asks of networks.
#[derive(Debug)]
pub struct Asked<'a> {
    /// `HostConfig.NetworkMode` (normalised in place: empty and
    /// `default` become `bridge`).
    pub network_mode: &'a mut String,
    /// `NetworkingConfig`.
    pub networking_config: Option<&'a Value>,
    /// `Config.MacAddress` (old clients).
    pub mac_address: &'a str,
    /// Whether ports are published.
    pub publishes: bool,
    /// Whether `--hostname` was given.
    pub hostname: bool,
    /// Whether `--dns…` or `--add-host` were given.
    pub dns_or_hosts: bool,
}

impl Networks {
    /// The endpoints of a new container, by network name.
    pub fn plan(&self, a: Asked<'_>) -> Result<BTreeMap<String, Endpoint>> {
        if a.network_mode.is_empty() || a.network_mode == "default" {
            *a.network_mode = "bridge".into();
        }
        // `default` (docker's name for "the network mode") is the primary.
        let configs: BTreeMap<String, Value> = a
            .networking_config
            .and_then(|n| n.get("EndpointsConfig"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let k = if k == "default" {
                            a.network_mode.clone()
                        } else {
                            k.clone()
                        };
                        (k, v.clone())
                    })
                    .collect()
            })
            .unwrap_or_default();
        match mode_of(a.network_mode) {
            Mode::Host | Mode::None => {
                if configs.keys().any(|k| k != a.network_mode.as_str()) {
                    return Err(NetworkError::Invalid(format!(
                        "container cannot be disconnected from host network or connected to host network (network mode {})",
                        a.network_mode
                    )));
                }
                return Ok(BTreeMap::new());
            }
            Mode::Container(_) => {
                if a.hostname {
                    return Err(conflict("hostname and the network mode"));
                }
                if a.dns_or_hosts {
                    return Err(conflict("dns and the network mode"));
                }
                if a.publishes {
                    return Err(conflict(
                        "port publishing and the container type network mode",
                    ));
                }
                if !a.mac_address.is_empty() {
                    return Err(conflict("mac-address and the network mode"));
                }
                return Ok(BTreeMap::new());
            }
            Mode::Networks => {}
        }
        let mut out = BTreeMap::new();
        let primary = a.network_mode.clone();
        let mut names: Vec<String> = vec![primary.clone()];
        names.extend(configs.keys().filter(|k| **k != primary).cloned());
        for name in names {
            let net = self.find(&name)?;
            if matches!(net.rec.driver.as_str(), "host" | "null") {
                return Err(NetworkError::Invalid(format!(
                    "container cannot be connected to network {} and others",
                    net.rec.name
                )));
            }
            let cfg = configs.get(&name).cloned().unwrap_or(Value::Null);
            let ep = endpoint_from(
                &cfg,
                &net.rec,
                if name == primary { a.mac_address } else { "" },
            )?;
            out.insert(net.rec.name.clone(), ep);
        }
        // The mode names the primary network by its name.
        *a.network_mode = self.find(&primary)?.rec.name.clone();
        Ok(out)
    }
}

/// An endpoint from an `EndpointSettings` body (create or connect).
pub fn endpoint_from(cfg: &Value, net: &super::NetRecord, mac: &str) -> Result<Endpoint> {
    let aliases: Vec<String> = cfg
        .get("Aliases")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let ip_text = cfg
        .get("IPAMConfig")
        .and_then(|i| i.get("IPv4Address"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mac = cfg
        .get("MacAddress")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or(mac);
    let ip_request = if ip_text.is_empty() {
        None
    } else {
        let ip: Ipv4Addr = ip_text
            .parse()
            .map_err(|_| NetworkError::Invalid(format!("invalid IPv4 address: {ip_text}")))?;
        Some(ip)
    };
    if !net.user_defined() {
        if ip_request.is_some() {
            return Err(NetworkError::Invalid(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if !aliases.is_empty() {
            return Err(NetworkError::Invalid(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
    }
    if let (Some(ip), Some(subnet)) = (ip_request, net.subnet) {
        let range = net.ip_range.unwrap_or(subnet);
        if !range.contains(&ip) {
            return Err(NetworkError::Invalid(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
    }
    if !mac.is_empty() {
        let ok = mac.split(':').count() == 6
            && mac
                .split(':')
                .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok());
        if !ok {
            return Err(NetworkError::Invalid(format!("invalid MAC address: {mac}")));
        }
    }
    Ok(Endpoint {
        network_id: net.id.clone(),
        aliases,
        ip_request,
        mac_request: mac.to_string(),
        ..Default::default()
    })
}
