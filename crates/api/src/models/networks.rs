//! Networks: `/networks/…` (moby's `Network`, `NetworkCreateRequest`,
//! `NetworkConnectRequest`, `NetworkDisconnectRequest`,
//! `NetworkPruneResponse`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A network, as `GET /networks/{id}` returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Network {
    /// Its name.
    pub name: String,
    /// 64 hex digits.
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// `local`.
    pub scope: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// IPv4 is on.
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    /// IPv6 is on (never, here).
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// Its addresses.
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// Swarm's ingress (never).
    pub ingress: bool,
    /// `{"Network": ""}`.
    pub config_from: ConfigFrom,
    /// A config-only network (never).
    pub config_only: bool,
    /// The running containers on it, by ID.
    pub containers: BTreeMap<String, NetworkContainer>,
    /// Driver options.
    pub options: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A network's address management.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    /// `default`.
    pub driver: String,
    /// Driver options (null when none).
    pub options: Option<BTreeMap<String, String>>,
    /// The subnets.
    pub config: Vec<IpamConfig>,
}

/// One subnet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    /// `10.1.0.0/24`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    /// `--ip-range`.
    #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    /// The gateway.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// `--aux-address` (refused here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

/// Where a network's config comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConfigFrom {
    /// A config-only network (never).
    pub network: String,
}

/// A container on a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkContainer {
    /// The container's name.
    pub name: String,
    /// Its endpoint.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// Its MAC.
    pub mac_address: String,
    /// `10.1.0.2/24`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// Empty.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// `POST /networks/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreate {
    /// Its name.
    pub name: String,
    /// Old clients: refuse a name in use (always done).
    pub check_duplicate: Option<bool>,
    /// `bridge` (default).
    pub driver: String,
    /// `local` or empty.
    pub scope: String,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// Swarm's ingress (refused).
    pub ingress: bool,
    /// Config-only (refused).
    pub config_only: bool,
    /// The subnets asked for.
    #[serde(rename = "IPAM")]
    pub ipam: Option<Ipam>,
    /// IPv4 (on unless false).
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: Option<bool>,
    /// IPv6 (refused).
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    /// Driver options (`-o`).
    pub options: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// The answer to `POST /networks/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateResponse {
    /// The new network's ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// A warning, or empty.
    pub warning: String,
}

/// `POST /networks/{id}/connect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnect {
    /// The container.
    pub container: String,
    /// `EndpointSettings` (aliases, `IPAMConfig.IPv4Address`, MAC).
    pub endpoint_config: Option<Value>,
}

/// `POST /networks/{id}/disconnect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkDisconnect {
    /// The container.
    pub container: String,
    /// A missing container is no error.
    pub force: bool,
}

/// `POST /networks/prune`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkPruneReport {
    /// Names of removed networks.
    pub networks_deleted: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shapes_of_the_docker_api() {
        let n = Network {
            name: "app".into(),
            ipam: Ipam {
                driver: "default".into(),
                options: None,
                config: vec![IpamConfig {
                    subnet: "10.1.0.0/24".into(),
                    gateway: "10.1.0.1".into(),
                    ..Default::default()
                }],
            },
            ..Default::default()
        };
        let v = serde_json::to_value(&n).expect("json");
        assert_eq!(
            v["IPAM"]["Config"][0],
            serde_json::json!({"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1"})
        );
        assert_eq!(v["IPAM"]["Options"], Value::Null);
        assert!(v.get("EnableIPv4").is_some() && v.get("Id").is_some());
        let c: NetworkCreate = serde_json::from_str(
            r#"{"Name":"n","Driver":"bridge","IPAM":{"Config":[{"Subnet":"10.2.0.0/16","IPRange":"10.2.1.0/24"}]},"Labels":{"a":"b"},"Internal":true}"#,
        )
        .expect("parses");
        assert_eq!(c.ipam.expect("ipam").config[0].ip_range, "10.2.1.0/24");
        assert!(c.internal);
        let d: NetworkDisconnect =
            serde_json::from_str(r#"{"Container":"c","Force":true}"#).expect("parses");
        assert!(d.force);
    }
}
