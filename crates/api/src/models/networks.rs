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
    #[serde(skip_serializing_if = "Option::is_none")]
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
    #[serde(rename = "EnableIPv4", skip_serializing_if = "Option::is_none")]
    pub enable_ipv4: Option<bool>,
    /// IPv6 (refused).
    #[serde(rename = "EnableIPv6", skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
    /// `--config-from`: the config-only network to copy (a swarm feature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_from: Option<ConfigFrom>,
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
///
/// `EndpointConfig` stays raw JSON: the engine reads the fields it knows
/// from it as container create does; [`EndpointSettings`] is its typed
/// shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnect {
    /// The container.
    pub container: String,
    /// `EndpointSettings` (aliases, `IPAMConfig.IPv4Address`, MAC).
    pub endpoint_config: Option<Value>,
}

/// A container's settings on one network (moby's `EndpointSettings`): the
/// `EndpointConfig` of a connect, the `EndpointsConfig` entries of a
/// container create and `NetworkSettings.Networks` of an inspect. dockerd
/// writes every field; empty lists and maps as null.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    /// The addresses asked for (`--ip`, `--ip6`, `--link-local-ip`).
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    /// Legacy links, `container:alias`.
    pub links: Option<Vec<String>>,
    /// Extra DNS names on this network (`--alias`).
    pub aliases: Option<Vec<String>>,
    /// The MAC asked for, then the one in use.
    pub mac_address: String,
    /// Driver options (`--driver-opt`).
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// The endpoint with the highest priority gives the default gateway.
    pub gw_priority: i64,
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The IPv4 gateway.
    pub gateway: String,
    /// The IPv4 address.
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    /// Its prefix length.
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    /// The IPv6 gateway.
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    /// The IPv6 address.
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    /// Its prefix length.
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    /// The names the embedded DNS server answers for (the first gives the
    /// PTR record).
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
}

/// The addresses an endpoint asks for (moby's `EndpointIPAMConfig`);
/// empty fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpamConfig {
    /// `--ip`.
    #[serde(rename = "IPv4Address", skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    /// `--ip6`.
    #[serde(rename = "IPv6Address", skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
    /// `--link-local-ip`.
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
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
    use serde_json::json;

    /// `GET /networks/app` from dockerd 28 for a user-defined bridge with
    /// one container (written from the swagger's `Network` example).
    const INSPECT: &str = r#"{
        "Name": "app",
        "Id": "7d86d31b1478e7cca9ebed7e73aa0fdeec46c5ca29497431d3007d2d9e15ed99",
        "Created": "2025-06-01T10:00:00.123456789Z",
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": "172.18.0.0/16", "IPRange": "172.18.1.0/24", "Gateway": "172.18.0.1"}]
        },
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {
            "19a4d5d687db25203351ed79d478946f861258f018fe384f229f2efa4b23513c": {
                "Name": "web",
                "EndpointID": "628cadb8bcb92de107b2a1e516cbffe463e321f548feb37697cce00ad694f21a",
                "MacAddress": "02:42:ac:12:00:02",
                "IPv4Address": "172.18.1.2/16",
                "IPv6Address": ""
            }
        },
        "Options": {"com.docker.network.bridge.name": "br-app"},
        "Labels": {"tier": "front"}
    }"#;

    #[test]
    fn an_inspect_document_reads_and_writes_as_dockerd_s() {
        let n: Network = serde_json::from_str(INSPECT).expect("parses");
        assert_eq!(n.name, "app");
        assert!(n.enable_ipv4 && !n.enable_ipv6);
        assert_eq!(n.ipam.config[0].ip_range, "172.18.1.0/24");
        assert_eq!(n.ipam.options, Some(BTreeMap::new()));
        let c = n.containers.values().next().expect("a container");
        assert_eq!(c.ipv4_address, "172.18.1.2/16");
        assert_eq!(c.endpoint_id.len(), 64);
        let back = serde_json::to_value(&n).expect("json");
        let original: Value = serde_json::from_str(INSPECT).expect("json");
        assert_eq!(back, original);
    }

    #[test]
    fn empty_parts_are_written_as_dockerd_writes_them() {
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
        // IPRange and AuxiliaryAddresses are omitempty in moby.
        assert_eq!(
            v["IPAM"]["Config"][0],
            json!({"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1"})
        );
        assert_eq!(v["IPAM"]["Options"], Value::Null);
        assert_eq!(v["Containers"], json!({}));
        assert_eq!(v["ConfigFrom"], json!({"Network": ""}));
        for key in [
            "Name",
            "Id",
            "Created",
            "Scope",
            "Driver",
            "EnableIPv4",
            "EnableIPv6",
            "IPAM",
            "Internal",
            "Attachable",
            "Ingress",
            "ConfigFrom",
            "ConfigOnly",
            "Containers",
            "Options",
            "Labels",
        ] {
            assert!(v.get(key).is_some(), "{key} is missing");
        }
    }

    #[test]
    fn requests_parse_from_partial_bodies() {
        let c: NetworkCreate = serde_json::from_str(
            r#"{"Name":"n","Driver":"bridge","IPAM":{"Config":[{"Subnet":"10.2.0.0/16","IPRange":"10.2.1.0/24"}]},"Labels":{"a":"b"},"Internal":true,"ConfigFrom":{"Network":"cfg"}}"#,
        )
        .expect("parses");
        assert_eq!(c.ipam.expect("ipam").config[0].ip_range, "10.2.1.0/24");
        assert!(c.internal);
        assert_eq!(c.enable_ipv4, None);
        assert_eq!(c.config_from.expect("config from").network, "cfg");
        let empty: NetworkCreate = serde_json::from_str("{}").expect("parses");
        assert_eq!(empty, NetworkCreate::default());
        // What the client sends leaves out the flags not given.
        let sent = serde_json::to_value(NetworkCreate {
            name: "n".into(),
            enable_ipv6: Some(true),
            ..Default::default()
        })
        .expect("json");
        assert_eq!(sent["EnableIPv6"], json!(true));
        assert!(sent.get("EnableIPv4").is_none() && sent.get("CheckDuplicate").is_none());
        assert!(sent.get("ConfigFrom").is_none());
        let d: NetworkDisconnect =
            serde_json::from_str(r#"{"Container":"c","Force":true}"#).expect("parses");
        assert!(d.force);
        let connect: NetworkConnect = serde_json::from_str(
            r#"{"Container":"web","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.2.1.9"},"Aliases":["db"]}}"#,
        )
        .expect("parses");
        assert_eq!(connect.container, "web");
        let ep: EndpointSettings =
            serde_json::from_value(connect.endpoint_config.expect("an endpoint")).expect("typed");
        assert_eq!(ep.aliases, Some(vec!["db".to_string()]));
        assert_eq!(
            ep.ipam_config.map(|i| i.ipv4_address).as_deref(),
            Some("10.2.1.9")
        );
    }

    #[test]
    fn endpoint_settings_are_written_with_every_field() {
        // `NetworkSettings.Networks.app` of a dockerd 28 container inspect.
        let text = r#"{
            "IPAMConfig": {"IPv4Address": "172.18.1.9"},
            "Links": null,
            "Aliases": ["db"],
            "MacAddress": "02:42:ac:12:01:09",
            "DriverOpts": null,
            "GwPriority": 0,
            "NetworkID": "7d86d31b1478e7cca9ebed7e73aa0fdeec46c5ca29497431d3007d2d9e15ed99",
            "EndpointID": "628cadb8bcb92de107b2a1e516cbffe463e321f548feb37697cce00ad694f21a",
            "Gateway": "172.18.0.1",
            "IPAddress": "172.18.1.9",
            "IPPrefixLen": 16,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": ["web", "db", "19a4d5d687db"]
        }"#;
        let ep: EndpointSettings = serde_json::from_str(text).expect("parses");
        assert_eq!(ep.ip_prefix_len, 16);
        assert_eq!(ep.dns_names.as_ref().map(Vec::len), Some(3));
        let original: Value = serde_json::from_str(text).expect("json");
        assert_eq!(serde_json::to_value(&ep).expect("json"), original);
        // An empty one: null lists and maps, no IPAMConfig members.
        let empty = serde_json::to_value(EndpointSettings {
            ipam_config: Some(EndpointIpamConfig::default()),
            ..Default::default()
        })
        .expect("json");
        assert_eq!(empty["IPAMConfig"], json!({}));
        assert_eq!(empty["Aliases"], Value::Null);
        assert_eq!(empty["IPPrefixLen"], json!(0));
    }

    #[test]
    fn a_prune_report_with_nothing_is_null() {
        let v = serde_json::to_value(NetworkPruneReport::default()).expect("json");
        assert_eq!(v, json!({"NetworksDeleted": null}));
        let r: NetworkPruneReport =
            serde_json::from_str(r#"{"NetworksDeleted":["a","b"]}"#).expect("parses");
        assert_eq!(r.networks_deleted.map(|d| d.len()), Some(2));
    }
}
