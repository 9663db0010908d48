//! The network routes of the API, served by the engine.

use std::collections::BTreeMap;

use hafen_api::ApiError;
use hafen_api::filters::{self, Filters};
use hafen_api::models::{
    ConfigFrom, Ipam, IpamConfig, Network, NetworkConnect, NetworkContainer, NetworkCreate,
    NetworkCreateResponse, NetworkDisconnect, NetworkPruneReport,
};
use hafen_api::server::NetworkBackend;

use crate::Engine;
use crate::networks::{Net, NetRecord, NetworkError};

fn to_api(net: &Net, containers: BTreeMap<String, NetworkContainer>) -> Network {
    let r = &net.rec;
    let config = match r.subnet {
        Some(s) => vec![IpamConfig {
            subnet: s.to_string(),
            ip_range: r.ip_range.map(|x| x.to_string()).unwrap_or_default(),
            gateway: r.gateway.map(|g| g.to_string()).unwrap_or_default(),
            auxiliary_addresses: None,
        }],
        None => Vec::new(),
    };
    Network {
        name: r.name.clone(),
        id: r.id.clone(),
        created: r.created.clone(),
        scope: "local".into(),
        driver: r.driver.clone(),
        enable_ipv4: true,
        enable_ipv6: false,
        ipam: Ipam {
            driver: "default".into(),
            options: None,
            config,
        },
        internal: r.internal,
        attachable: r.attachable,
        ingress: false,
        config_from: ConfigFrom::default(),
        config_only: false,
        containers,
        options: r.options.clone(),
        labels: r.labels.clone(),
    }
}

fn parse_net(what: &str, text: &str) -> Result<ipnet::Ipv4Net, ApiError> {
    text.parse::<ipnet::Ipv4Net>()
        .or_else(|_| text.parse::<std::net::Ipv4Addr>().map(ipnet::Ipv4Net::from))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "invalid {what}: {text}: hafen's networks are IPv4 (like 10.1.0.0/24)"
            ))
        })
}

impl Engine {
    fn network_view(&self, net: &Net) -> Network {
        let containers = self
            .network_endpoints(&net.rec.id)
            .into_iter()
            .map(|(id, (name, ep))| {
                (
                    id,
                    NetworkContainer {
                        name,
                        endpoint_id: ep.endpoint_id,
                        mac_address: ep.mac,
                        ipv4_address: ep
                            .ip
                            .map(|ip| format!("{ip}/{}", ep.prefix_len))
                            .unwrap_or_default(),
                        ipv6_address: String::new(),
                    },
                )
            })
            .collect();
        to_api(net, containers)
    }

    fn network_matches(&self, net: &Net, f: &Filters) -> bool {
        let r = &net.rec;
        let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
            f.get(key).is_none_or(|vals| vals.iter().any(|v| pred(v)))
        };
        any("name", &|v| r.name.contains(v))
            && any("id", &|v| r.id.starts_with(v))
            && any("driver", &|v| r.driver == v)
            && any("scope", &|v| v == "local")
            && any("type", &|v| match v {
                "custom" => r.user_defined(),
                "builtin" => !r.user_defined(),
                _ => false,
            })
            && any("dangling", &|v| {
                let dangling = r.user_defined() && !self.network_used(&r.id);
                matches!(v, "true" | "1") == dangling
            })
            && filters::labels_match(f, &r.labels)
    }
}

impl NetworkBackend for Engine {
    fn network_list(&self, f: &Filters) -> Result<Vec<Network>, ApiError> {
        filters::only(
            f,
            &["dangling", "driver", "id", "label", "name", "scope", "type"],
        )?;
        Ok(self
            .networks()
            .all()
            .iter()
            .filter(|n| self.network_matches(n, f))
            .map(|n| to_api(n, BTreeMap::new()))
            .collect())
    }

    fn network_inspect(&self, key: &str) -> Result<Network, ApiError> {
        let net = self.networks().find(key)?;
        Ok(self.network_view(&net))
    }

    fn network_create(&self, req: &NetworkCreate) -> Result<NetworkCreateResponse, ApiError> {
        if req.enable_ipv6 == Some(true) {
            return Err(ApiError::bad_request(
                "IPv6 networks are not supported: hafen's networks are IPv4",
            ));
        }
        if req.ingress || req.config_only {
            return Err(ApiError::bad_request(
                "ingress and config-only networks are swarm features hafen does not have",
            ));
        }
        let mut rec = NetRecord {
            id: crate::containers::new_id(),
            name: req.name.clone(),
            driver: if req.driver.is_empty() {
                "bridge".into()
            } else {
                req.driver.clone()
            },
            created: crate::containers::now_rfc3339(),
            internal: req.internal,
            attachable: req.attachable,
            options: req.options.clone(),
            labels: req.labels.clone(),
            ..Default::default()
        };
        let configs = req
            .ipam
            .as_ref()
            .map(|i| i.config.clone())
            .unwrap_or_default();
        if configs.len() > 1 {
            return Err(ApiError::bad_request(
                "hafen's networks have one IPv4 subnet: give one --subnet",
            ));
        }
        if let Some(c) = configs.first() {
            if c.auxiliary_addresses
                .as_ref()
                .is_some_and(|a| !a.is_empty())
            {
                return Err(ApiError::bad_request("--aux-address is not supported"));
            }
            if !c.subnet.is_empty() {
                rec.subnet = Some(parse_net("subnet", &c.subnet)?);
            }
            if !c.ip_range.is_empty() {
                if rec.subnet.is_none() {
                    return Err(ApiError::bad_request("ip-range needs a subnet"));
                }
                rec.ip_range = Some(parse_net("ip-range", &c.ip_range)?);
            }
            if !c.gateway.is_empty() {
                if rec.subnet.is_none() {
                    return Err(ApiError::bad_request("a gateway needs a subnet"));
                }
                rec.gateway = Some(c.gateway.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid gateway: {}", c.gateway))
                })?);
            }
        }
        let net = self.networks().create(rec)?;
        self.network_event(&net.rec, "create", None);
        Ok(NetworkCreateResponse {
            id: net.rec.id.clone(),
            warning: String::new(),
        })
    }

    fn network_delete(&self, key: &str) -> Result<(), ApiError> {
        let net = self.networks().find(key)?;
        let rec = net.rec.clone();
        self.networks().remove(&rec.id)?;
        self.network_event(&rec, "destroy", None);
        Ok(())
    }

    fn network_connect(&self, key: &str, req: &NetworkConnect) -> Result<(), ApiError> {
        let cfg = req.endpoint_config.clone().unwrap_or_default();
        self.connect_container(key, &req.container, &cfg)
            .map_err(ApiError::from)
    }

    fn network_disconnect(&self, key: &str, req: &NetworkDisconnect) -> Result<(), ApiError> {
        self.disconnect_container(key, &req.container, req.force)
            .map_err(ApiError::from)
    }

    fn network_prune(&self, f: &Filters) -> Result<NetworkPruneReport, ApiError> {
        filters::only(f, &["until", "label", "label!"])?;
        let mut deleted = Vec::new();
        for net in self.networks().all() {
            if !net.rec.user_defined()
                || self.network_used(&net.rec.id)
                || !filters::labels_match(f, &net.rec.labels)
            {
                continue;
            }
            if let Some(until) = f.get("until").and_then(|v| v.first()) {
                let until = crate::backend::time_filter("until", until)?;
                let created = chrono::DateTime::parse_from_rfc3339(&net.rec.created)
                    .map(|t| t.timestamp())
                    .unwrap_or(0);
                if created >= until {
                    continue;
                }
            }
            let rec = net.rec.clone();
            match self.networks().remove(&rec.id) {
                Ok(name) => {
                    self.network_event(&rec, "destroy", None);
                    deleted.push(name);
                }
                Err(NetworkError::Forbidden(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(NetworkPruneReport {
            networks_deleted: Some(deleted),
        })
    }
}
