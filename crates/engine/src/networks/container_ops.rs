//! `network connect` and `network disconnect`: a container's record and,
//! if it runs, its interfaces.

use std::collections::BTreeMap;

use serde_json::Value;

use super::NetworkError;
use super::attach::Endpoint;
use super::etc_files::DnsSettings;
use super::plan::{Mode, endpoint_from, mode_of};
use crate::Engine;
use crate::containers::ContainerError;

type Result<T> = std::result::Result<T, ContainerError>;

impl Engine {
    /// Connects a container to a network (`EndpointConfig` as sent).
    pub fn connect_container(&self, net_key: &str, container: &str, cfg: &Value) -> Result<()> {
        let net = self.networks().find(net_key)?;
        let ctr = self.containers.find(container)?;
        let _op = crate::containers::lock(&ctr.op);
        let (id, name, mode, running, pid, has, used) = {
            let r = ctr.rec();
            (
                r.id.clone(),
                r.name.clone(),
                mode_of(&r.host_config.network_mode),
                r.state.status.is_running(),
                r.state.pid,
                r.networks.contains_key(&net.rec.name),
                r.networks
                    .values()
                    .map(|e| e.ifname.clone())
                    .collect::<Vec<_>>(),
            )
        };
        if matches!(net.rec.driver.as_str(), "host" | "null") || mode != Mode::Networks {
            return Err(NetworkError::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            )
            .into());
        }
        if has {
            return Err(NetworkError::Forbidden(format!(
                "endpoint with name {name} already exists in network {}",
                net.rec.name
            ))
            .into());
        }
        let mut ep = endpoint_from(cfg, &net.rec, "")?;
        if running {
            let index = (1..)
                .find(|i| !used.iter().any(|u| *u == format!("eth{i}")))
                .unwrap_or(1);
            let (dns, resolv) = {
                let r = ctr.rec();
                (
                    DnsSettings::of(&r.host_config),
                    ctr.paths.dir.join("resolv.conf"),
                )
            };
            self.networks().connect_running(
                (&id, &name),
                pid,
                &net,
                &mut ep,
                index,
                &dns,
                &resolv,
            )?;
        }
        let mut r = ctr.rec();
        r.networks.insert(net.rec.name.clone(), ep);
        ctr.commit(&r);
        drop(r);
        self.network_event(&net.rec, "connect", Some(&id));
        Ok(())
    }

    /// Disconnects a container from a network.
    pub fn disconnect_container(&self, net_key: &str, container: &str, force: bool) -> Result<()> {
        let net = self.networks().find(net_key)?;
        let ctr = match self.containers.find(container) {
            Ok(c) => c,
            // As dockerd: with force, a container that is gone is no error.
            Err(_) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let _op = crate::containers::lock(&ctr.op);
        let (id, mode, mut ep) = {
            let r = ctr.rec();
            let ep = r.networks.get(&net.rec.name).cloned();
            (r.id.clone(), mode_of(&r.host_config.network_mode), ep)
        };
        if matches!(net.rec.driver.as_str(), "host" | "null") || mode != Mode::Networks {
            return Err(NetworkError::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            )
            .into());
        }
        let Some(ep) = ep.as_mut() else {
            return Err(NetworkError::Forbidden(format!(
                "container {id} is not connected to network {}",
                net.rec.name
            ))
            .into());
        };
        self.networks().disconnect_running(&id, &net.rec.id, ep);
        let mut r = ctr.rec();
        r.networks.remove(&net.rec.name);
        if r.host_config.network_mode == net.rec.name {
            // The primary network went: the next one is the mode.
            if let Some(next) = r.networks.keys().next().cloned() {
                r.host_config.network_mode = next;
            }
        }
        ctr.commit(&r);
        drop(r);
        self.network_event(&net.rec, "disconnect", Some(&id));
        Ok(())
    }

    /// The containers on a network (running ones with their endpoint).
    pub fn network_endpoints(&self, network_id: &str) -> BTreeMap<String, (String, Endpoint)> {
        let mut out = BTreeMap::new();
        for ctr in self.containers.all() {
            let r = ctr.rec();
            if !r.state.status.is_running() {
                continue;
            }
            if let Some(ep) = r.networks.values().find(|e| e.network_id == network_id) {
                out.insert(r.id.clone(), (r.name.clone(), ep.clone()));
            }
        }
        out
    }

    /// Whether any container (running or not) is on a network.
    pub fn network_used(&self, network_id: &str) -> bool {
        self.containers.all().iter().any(|c| {
            c.rec()
                .networks
                .values()
                .any(|e| e.network_id == network_id)
        })
    }

    /// Publishes a network event.
    pub fn network_event(&self, rec: &super::NetRecord, action: &str, container: Option<&str>) {
        let mut attributes: BTreeMap<String, String> = BTreeMap::new();
        attributes.insert("name".into(), rec.name.clone());
        attributes.insert("type".into(), rec.driver.clone());
        if let Some(c) = container {
            attributes.insert("container".into(), c.to_string());
        }
        self.events().publish(hafen_api::models::Event {
            kind: "network".into(),
            action: action.into(),
            actor: hafen_api::models::Actor {
                id: rec.id.clone(),
                attributes: attributes.into_iter().collect(),
            },
            scope: "local".into(),
            ..Default::default()
        });
    }
}
