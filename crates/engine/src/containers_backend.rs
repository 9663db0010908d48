//! The engine as the container half of the API's backend.

use std::io::Write;
use std::time::Duration;

use hafen_api::ApiError;
use hafen_api::filters::{self, Filters};
use hafen_api::models::{
    ChangeItem, ContainerCreate, ContainerCreated, ContainerInspect, ContainerPruneReport,
    ContainerState, ContainerSummary, ExecConfig, ExecInspect, HostConfig, TopResponse, WaitError,
    WaitResponse,
};
use hafen_api::server::{
    AttachOptions, AttachStream, Attached, BoxFuture, ContainerBackend, ListOptions, LogsOptions,
    WaitCondition,
};
use hafen_shim::logfile;
use serde_json::{Value, json};

use crate::Engine;
use crate::containers::record::{Record, Status};
use crate::containers::{ContainerError, Ctr, lock};

impl From<ContainerError> for ApiError {
    fn from(e: ContainerError) -> ApiError {
        match e {
            ContainerError::NotFound(_) | ContainerError::NoImage(_) => {
                ApiError::not_found(e.to_string())
            }
            ContainerError::Conflict(_) => ApiError::conflict(e.to_string()),
            ContainerError::Invalid(_) | ContainerError::Start(_) => {
                ApiError::bad_request(e.to_string())
            }
            ContainerError::Internal(_) => ApiError::internal(e.to_string()),
            ContainerError::Network(n) => n.into(),
        }
    }
}

impl From<crate::networks::NetworkError> for ApiError {
    fn from(e: crate::networks::NetworkError) -> ApiError {
        use crate::networks::NetworkError as N;
        let status = match &e {
            N::NotFound(_) => 404,
            N::Conflict(_) => 409,
            N::Forbidden(_) => 403,
            N::Invalid(_) => 400,
            N::Internal(_) => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Docker's "Up 2 minutes" / "Exited (0) 3 seconds ago".
fn status_text(r: &Record) -> String {
    let since = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| {
                let d = chrono::Utc::now().signed_duration_since(t);
                human_duration(d.num_seconds())
            })
            .unwrap_or_default()
    };
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running | Status::Paused => {
            let mut s = format!("Up {}", since(&r.state.started_at));
            if r.state.status == Status::Paused {
                s.push_str(" (Paused)");
            }
            if let Some(h) = &r.state.health {
                let h = match h.status.as_str() {
                    "starting" => "health: starting",
                    other => other,
                };
                s.push_str(&format!(" ({h})"));
            }
            s
        }
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => {
            if r.state.has_been_started {
                format!(
                    "Exited ({}) {} ago",
                    r.state.exit_code,
                    since(&r.state.finished_at)
                )
            } else {
                "Created".into()
            }
        }
        Status::Dead => "Dead".into(),
    }
}

/// Go's `units.HumanDuration`.
fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if (s as f64 / 3600.0).round() as i64 == 1 {
        "About an hour".into()
    } else if s < 48 * 3600 {
        format!("{} hours", (s as f64 / 3600.0).round() as i64)
    } else if s < 7 * 24 * 3600 * 2 {
        format!("{} days", s / 86400)
    } else if s < 30 * 24 * 3600 * 3 {
        format!("{} weeks", s / (7 * 86400))
    } else if s < 365 * 24 * 3600 * 2 {
        format!("{} months", s / (30 * 86400))
    } else {
        format!("{} years", s / (365 * 86400))
    }
}

/// The command as dockerd shows it in `ps`: arguments with a space in
/// single quotes.
fn command_text(r: &Record) -> String {
    let mut parts = vec![r.path.clone()];
    parts.extend(r.args.iter().map(|a| {
        if a.contains(' ') {
            format!("'{a}'")
        } else {
            a.clone()
        }
    }));
    parts.join(" ")
}

fn created_unix(r: &Record) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&r.created)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn state_of(r: &Record) -> ContainerState {
    ContainerState {
        status: r.state.status.as_str().into(),
        running: r.state.status.is_running(),
        paused: r.state.status == Status::Paused,
        restarting: r.state.status == Status::Restarting,
        oom_killed: r.state.oom_killed,
        dead: r.state.status == Status::Dead,
        pid: i64::from(r.state.pid),
        exit_code: r.state.exit_code,
        error: r.state.error.clone(),
        started_at: r.state.started_at.clone(),
        finished_at: r.state.finished_at.clone(),
        health: r.state.health.clone(),
    }
}

/// Whether a record passes the `ps` filters.
fn matches(r: &Record, f: &Filters, engine: &Engine) -> Result<bool, ApiError> {
    for (key, values) in f {
        let any = |pred: &dyn Fn(&str) -> bool| values.iter().any(|v| pred(v));
        let ok = match key.as_str() {
            "id" => any(&|v| r.id.starts_with(v)),
            "name" => any(&|v| {
                let v = v.strip_prefix('/').unwrap_or(v);
                regex_like(v, &r.name)
            }),
            "status" => {
                for v in values {
                    if !matches!(
                        v.as_str(),
                        "created"
                            | "restarting"
                            | "running"
                            | "removing"
                            | "paused"
                            | "exited"
                            | "dead"
                    ) {
                        return Err(ApiError::bad_request(format!(
                            "invalid filter 'status={v}'"
                        )));
                    }
                }
                any(&|v| v == r.state.status.as_str())
            }
            "label" => values.iter().all(|v| match v.split_once('=') {
                Some((k, val)) => r.config.labels.get(k).is_some_and(|x| x == val),
                None => r.config.labels.contains_key(v.as_str()),
            }),
            "exited" => any(&|v| {
                r.state.status == Status::Exited
                    && r.state.has_been_started
                    && v.parse::<i64>().is_ok_and(|c| c == r.state.exit_code)
            }),
            "ancestor" => any(&|v| {
                r.config.image == v
                    || engine
                        .images()
                        .container_base(v)
                        .is_ok_and(|b| b.id.to_string() == r.image)
            }),
            "before" | "since" => {
                let other = engine.containers.find(&values[0]).map_err(ApiError::from)?;
                let their = created_unix_ns(&other.rec());
                let mine = created_unix_ns(r);
                if key == "before" {
                    mine < their
                } else {
                    mine > their
                }
            }
            "volume" => any(&|v| {
                r.mounts
                    .iter()
                    .any(|m| m.name == v || m.destination == v || m.source == v)
            }),
            "health" => any(&|v| {
                let h = r
                    .state
                    .health
                    .as_ref()
                    .map_or("none", |h| h.status.as_str());
                h == v
            }),
            "is-task" => !any(&|v| v == "true"),
            "network" | "publish" | "expose" => false,
            other => {
                return Err(ApiError::bad_request(format!("invalid filter '{other}'")));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Docker's name filter is a regular expression; plain substrings are what
/// people use.
fn regex_like(pattern: &str, name: &str) -> bool {
    match regex::Regex::new(pattern) {
        Ok(re) => re.is_match(name),
        Err(_) => name.contains(pattern),
    }
}

fn created_unix_ns(r: &Record) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&r.created)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

/// One endpoint as the API shows it (`EndpointSettings`).
fn endpoint_json(ep: &crate::networks::attach::Endpoint) -> Value {
    let ipam = ep
        .ip_request
        .map(|ip| json!({"IPv4Address": ip.to_string()}));
    let or_null = |v: &[String]| if v.is_empty() { json!(null) } else { json!(v) };
    json!({
        "IPAMConfig": ipam,
        "Links": null,
        "Aliases": or_null(&ep.aliases),
        "MacAddress": ep.mac,
        "DriverOpts": null,
        "GwPriority": 0,
        "NetworkID": ep.network_id,
        "EndpointID": ep.endpoint_id,
        "Gateway": ep.gateway.map(|g| g.to_string()).unwrap_or_default(),
        "IPAddress": ep.ip.map(|g| g.to_string()).unwrap_or_default(),
        "IPPrefixLen": ep.prefix_len,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": or_null(&ep.dns_names),
    })
}

/// `NetworkSettings.Networks`; host and none modes show their network.
fn endpoints_json(r: &Record) -> Value {
    let mut m = serde_json::Map::new();
    for (name, ep) in &r.networks {
        m.insert(name.clone(), endpoint_json(ep));
    }
    if r.networks.is_empty() && matches!(r.host_config.network_mode.as_str(), "host" | "none") {
        m.insert(
            r.host_config.network_mode.clone(),
            endpoint_json(&Default::default()),
        );
    }
    Value::Object(m)
}

/// `NetworkSettings.Ports` while running: published ports with their
/// bindings, exposed ones with null.
fn ports_json(r: &Record) -> Value {
    let mut m = serde_json::Map::new();
    if !r.state.status.is_running() {
        return Value::Object(m);
    }
    for key in r.config.exposed_ports.iter().flat_map(|e| e.keys()) {
        m.insert(key.clone(), Value::Null);
    }
    for (key, list) in &r.ports {
        m.insert(key.clone(), json!(list));
    }
    Value::Object(m)
}

/// The whole `NetworkSettings` of inspect, as dockerd writes it (the
/// top-level address fields are the default bridge's).
fn network_settings(r: &Record) -> Value {
    let bridge = r.networks.get("bridge").cloned().unwrap_or_default();
    let running = r.state.status.is_running();
    json!({
        "Bridge": "",
        "SandboxID": if running { r.id.clone() } else { String::new() },
        "SandboxKey": if running && r.state.pid > 0 { format!("/proc/{}/ns/net", r.state.pid) } else { String::new() },
        "Ports": ports_json(r),
        "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": bridge.endpoint_id,
        "Gateway": bridge.gateway.map(|g| g.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": bridge.ip.map(|g| g.to_string()).unwrap_or_default(),
        "IPPrefixLen": bridge.prefix_len,
        "IPv6Gateway": "",
        "MacAddress": bridge.mac,
        "Networks": endpoints_json(r),
    })
}

/// `Ports` of `GET /containers/json`.
fn port_list(r: &Record) -> Vec<Value> {
    let mut v = Vec::new();
    if !r.state.status.is_running() {
        return v;
    }
    for key in r.config.exposed_ports.iter().flat_map(|e| e.keys()) {
        if r.ports.contains_key(key) {
            continue;
        }
        if let Ok((port, proto)) = crate::networks::ports::parse_port_key(key) {
            v.push(json!({"PrivatePort": port, "Type": proto.as_str()}));
        }
    }
    for (key, list) in &r.ports {
        let Ok((port, proto)) = crate::networks::ports::parse_port_key(key) else {
            continue;
        };
        for b in list {
            v.push(json!({"IP": b.host_ip, "PrivatePort": port,
                "PublicPort": b.host_port.parse::<u16>().unwrap_or(0), "Type": proto.as_str()}));
        }
    }
    v
}

fn summary(r: &Record) -> ContainerSummary {
    ContainerSummary {
        id: r.id.clone(),
        names: vec![format!("/{}", r.name)],
        image: r.config.image.clone(),
        image_id: r.image.clone(),
        command: command_text(r),
        created: created_unix(r),
        ports: port_list(r),
        size_rw: None,
        size_root_fs: None,
        labels: r.config.labels.clone(),
        state: r.state.status.as_str().into(),
        status: status_text(r),
        host_config: json!({"NetworkMode": r.host_config.network_mode}),
        network_settings: json!({"Networks": endpoints_json(r)}),
        mounts: r.mounts.clone(),
    }
}

impl Engine {
    fn find(&self, key: &str) -> Result<std::sync::Arc<Ctr>, ApiError> {
        self.containers.find(key).map_err(ApiError::from)
    }

    fn rw_size(&self, r: &Record) -> i64 {
        self.images()
            .snapshotter()
            .dir(&r.snapshot)
            .ok()
            .and_then(|d| hafen_snapshot::fsutil::tree_size(&d).ok())
            .map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX))
    }
}

impl ContainerBackend for Engine {
    fn container_create(
        &self,
        name: Option<&str>,
        body: ContainerCreate,
    ) -> Result<ContainerCreated, ApiError> {
        let (id, warnings) = self.create_container(name, body)?;
        Ok(ContainerCreated { id, warnings })
    }

    fn container_start(&self, id: &str) -> Result<bool, ApiError> {
        Ok(self.start_container(id)?)
    }

    fn container_stop(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool, ApiError> {
        Ok(self.stop_container(id, timeout, signal)?)
    }

    fn container_restart(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), ApiError> {
        self.stop_container(id, timeout, signal)?;
        self.start_container(id)?;
        let ctr = self.find(id)?;
        let (cid, name) = {
            let r = ctr.rec();
            (r.id.clone(), r.name.clone())
        };
        self.container_event(&cid, "restart", &[("name", &name)]);
        Ok(())
    }

    fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<(), ApiError> {
        Ok(self.kill_container(id, signal)?)
    }

    fn container_pause(&self, id: &str) -> Result<(), ApiError> {
        let ctr = self.find(id)?;
        let rt = hafen_runtime::Runtime::new(&self.containers.runtime_root);
        let mut r = ctr.rec();
        match r.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(ApiError::conflict(format!(
                    "cannot pause container {}: container is already paused",
                    r.id
                )));
            }
            _ => {
                return Err(ApiError::conflict(format!(
                    "cannot pause container {}: container is not running",
                    r.id
                )));
            }
        }
        hafen_runtime::container::pause(&rt, &r.id)
            .map_err(|e| ApiError::internal(format!("cannot pause container {}: {e}", r.id)))?;
        r.state.status = Status::Paused;
        ctr.commit(&r);
        let (cid, name) = (r.id.clone(), r.name.clone());
        drop(r);
        self.container_event(&cid, "pause", &[("name", &name)]);
        Ok(())
    }

    fn container_unpause(&self, id: &str) -> Result<(), ApiError> {
        let ctr = self.find(id)?;
        let rt = hafen_runtime::Runtime::new(&self.containers.runtime_root);
        let mut r = ctr.rec();
        if r.state.status != Status::Paused {
            return Err(ApiError::conflict(format!(
                "cannot unpause container {}: container is not paused",
                r.id
            )));
        }
        hafen_runtime::container::resume(&rt, &r.id)
            .map_err(|e| ApiError::internal(format!("cannot unpause container {}: {e}", r.id)))?;
        r.state.status = Status::Running;
        ctr.commit(&r);
        let (cid, name) = (r.id.clone(), r.name.clone());
        drop(r);
        self.container_event(&cid, "unpause", &[("name", &name)]);
        Ok(())
    }

    fn container_remove(&self, id: &str, force: bool, volumes: bool) -> Result<(), ApiError> {
        Ok(self.remove_container(id, force, volumes)?)
    }

    fn container_rename(&self, id: &str, name: &str) -> Result<(), ApiError> {
        let ctr = self.find(id)?;
        let new = name.strip_prefix('/').unwrap_or(name);
        if !crate::containers::names::valid(new) {
            return Err(ApiError::bad_request(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if let Some(other) = self.containers.by_name(new) {
            let oid = other.rec().id.clone();
            return Err(crate::containers::lifecycle::name_conflict(new, &oid).into());
        }
        let mut r = ctr.rec();
        if r.name == new {
            return Err(ApiError::bad_request(
                "Renaming a container with the same name as its current name",
            ));
        }
        let old = std::mem::replace(&mut r.name, new.to_string());
        ctr.commit(&r);
        let cid = r.id.clone();
        drop(r);
        self.container_event(
            &cid,
            "rename",
            &[("name", new), ("oldName", &format!("/{old}"))],
        );
        Ok(())
    }

    fn container_update(&self, id: &str, update: HostConfig) -> Result<Vec<String>, ApiError> {
        let ctr = self.find(id)?;
        let mut r = ctr.rec();
        let h = &mut r.host_config;
        if update.memory != 0 {
            h.memory = update.memory;
        }
        if update.memory_swap != 0 {
            h.memory_swap = update.memory_swap;
        }
        if update.memory_reservation != 0 {
            h.memory_reservation = update.memory_reservation;
        }
        if update.cpu_shares != 0 {
            h.cpu_shares = update.cpu_shares;
        }
        if update.nano_cpus != 0 {
            h.nano_cpus = update.nano_cpus;
        }
        if update.cpu_period != 0 {
            h.cpu_period = update.cpu_period;
        }
        if update.cpu_quota != 0 {
            h.cpu_quota = update.cpu_quota;
        }
        if !update.cpuset_cpus.is_empty() {
            h.cpuset_cpus = update.cpuset_cpus.clone();
        }
        if !update.cpuset_mems.is_empty() {
            h.cpuset_mems = update.cpuset_mems.clone();
        }
        if update.pids_limit.is_some() {
            h.pids_limit = update.pids_limit;
        }
        if !update.restart_policy.name.is_empty() {
            crate::containers::lifecycle::validate_restart(&update.restart_policy, false)
                .map_err(ApiError::from)?;
            if h.auto_remove && !matches!(update.restart_policy.name.as_str(), "no" | "") {
                return Err(ApiError::bad_request(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container",
                ));
            }
            h.restart_policy = update.restart_policy.clone();
        }
        let resources = crate::containers::spec::resources_of(h);
        let running = r.state.status.is_running();
        let cid = r.id.clone();
        ctr.commit(&r);
        drop(r);
        if running {
            let rt = hafen_runtime::Runtime::new(&self.containers.runtime_root);
            let c = rt
                .load(&cid)
                .map_err(|e| ApiError::internal(format!("Cannot update container {cid}: {e}")))?;
            c.state
                .cgroup
                .apply(Some(&resources), &[])
                .map_err(|e| ApiError::internal(format!("Cannot update container {cid}: {e}")))?;
        }
        let name = ctr.rec().name.clone();
        self.container_event(&cid, "update", &[("name", &name)]);
        Ok(Vec::new())
    }

    fn container_list(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>, ApiError> {
        const KNOWN: &[&str] = &[
            "id", "name", "status", "label", "exited", "ancestor", "before", "since", "volume",
            "health", "is-task", "network", "publish", "expose",
        ];
        // dockerd's wording for containers.
        if let Some(k) = opts.filters.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!("Invalid filter '{k}'")));
        }
        let mut recs: Vec<Record> = self
            .containers
            .all()
            .iter()
            .map(|c| c.rec().clone())
            .collect();
        recs.sort_by_key(|r| std::cmp::Reverse(created_unix_ns(r)));
        let show_all = opts.all || opts.limit.is_some();
        let mut out = Vec::new();
        for r in recs {
            if !show_all && !r.state.status.is_running() && !opts.filters.contains_key("status") {
                continue;
            }
            if !matches(&r, &opts.filters, self)? {
                continue;
            }
            let mut s = summary(&r);
            if opts.size {
                s.size_rw = Some(self.rw_size(&r));
                s.size_root_fs = Some(0);
            }
            out.push(s);
            if opts.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    fn container_inspect(&self, id: &str, size: bool) -> Result<ContainerInspect, ApiError> {
        let ctr = self.find(id)?;
        let r = ctr.rec().clone();
        let dir = |name: &str| ctr.paths.dir.join(name).display().to_string();
        let upper = self
            .images()
            .snapshotter()
            .dir(&r.snapshot)
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let execs: Vec<String> = lock(&self.containers.execs)
            .values()
            .filter(|e| e.container == r.id && *lock(&e.pid) != 0)
            .filter(|e| !hafen_shim::protocol::exec_exit_file(&e.state_dir, &e.id).exists())
            .map(|e| e.id.clone())
            .collect();
        Ok(ContainerInspect {
            id: r.id.clone(),
            created: r.created.clone(),
            path: r.path.clone(),
            args: r.args.clone(),
            state: state_of(&r),
            image: r.image.clone(),
            resolv_conf_path: dir("resolv.conf"),
            hostname_path: dir("hostname"),
            hosts_path: dir("hosts"),
            log_path: ctr.paths.log(&r.id).display().to_string(),
            name: format!("/{}", r.name),
            restart_count: r.restart_count,
            driver: self.images().snapshotter().name().into(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: (!execs.is_empty()).then_some(execs),
            host_config: r.host_config.clone(),
            graph_driver: json!({"Data": {"UpperDir": upper, "MergedDir": ctr.paths.rootfs()}, "Name": self.images().snapshotter().name()}),
            size_rw: size.then(|| self.rw_size(&r)),
            size_root_fs: size.then_some(0),
            mounts: r.mounts.clone(),
            config: r.config.clone(),
            network_settings: network_settings(&r),
        })
    }

    fn container_wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<BoxFuture<WaitResponse>, ApiError> {
        let ctr = self.find(id)?;
        let mut rx = ctr.changed.subscribe();
        let start_gen = *rx.borrow_and_update();
        let _ = start_gen;
        let ctr2 = ctr.clone();
        let containers_gone = move |c: &Ctr| c.paths.dir.exists();
        let respond = |r: &Record| WaitResponse {
            status_code: r.state.exit_code,
            error: None::<WaitError>,
        };
        // Decided now for "not-running": a container that is not running
        // answers at once.
        let now = {
            let r = ctr.rec();
            match condition {
                WaitCondition::NotRunning => (!r.state.status.is_running()
                    && r.state.status != Status::Restarting)
                    .then(|| respond(&r)),
                _ => None,
            }
        };
        if condition == WaitCondition::NotRunning && ctr.rec().state.status == Status::Created {
            // Created: waits for it to run and stop, as Docker does.
        } else if let Some(resp) = now {
            return Ok(Box::pin(async move { resp }));
        }
        let seen_running = ctr.rec().state.status.is_running();
        Ok(Box::pin(async move {
            let mut was_running = seen_running;
            loop {
                let (status, resp) = {
                    let r = ctr2.rec();
                    (r.state.status, respond(&r))
                };
                let gone = !containers_gone(&ctr2);
                match condition {
                    WaitCondition::Removed if gone => return resp,
                    WaitCondition::NotRunning
                        if was_running && !status.is_running() && status != Status::Restarting =>
                    {
                        return resp;
                    }
                    WaitCondition::NextExit if was_running && !status.is_running() => return resp,
                    _ => {}
                }
                if gone && condition != WaitCondition::Removed {
                    return resp;
                }
                if status.is_running() {
                    was_running = true;
                }
                if rx.changed().await.is_err() {
                    let r = ctr2.rec();
                    return respond(&r);
                }
            }
        }))
    }

    fn container_attach(
        &self,
        id: &str,
        opts: AttachOptions,
        detach_keys: Option<&str>,
    ) -> Result<Attached, ApiError> {
        let ctr = self.find(id)?;
        let tty = ctr.rec().config.tty;
        let keys = parse_detach_keys(detach_keys.unwrap_or("ctrl-p,ctrl-q"))?;
        let mut prefix = Vec::new();
        if opts.logs {
            let lo = LogsOptions {
                stdout: opts.stdout,
                stderr: opts.stderr,
                ..LogsOptions::default()
            };
            self.container_logs(id, &lo, &mut prefix)?;
        }
        if !opts.stream {
            return Ok(Attached {
                stream: AttachStream::Closed,
                tty,
                detach_keys: keys,
                prefix,
            });
        }
        let (stream, tty) = self.attach(id, (opts.stdin, opts.stdout, opts.stderr))?;
        let (cid, name) = {
            let r = ctr.rec();
            (r.id.clone(), r.name.clone())
        };
        self.container_event(&cid, "attach", &[("name", &name)]);
        Ok(Attached {
            stream,
            tty,
            detach_keys: keys,
            prefix,
        })
    }

    fn container_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ApiError> {
        Ok(self.resize(id, height, width)?)
    }

    fn container_logs_check(&self, id: &str) -> Result<bool, ApiError> {
        let ctr = self.find(id)?;
        let tty = ctr.rec().config.tty;
        Ok(tty)
    }

    fn container_logs(
        &self,
        id: &str,
        opts: &LogsOptions,
        out: &mut dyn Write,
    ) -> Result<(), ApiError> {
        let ctr = self.find(id)?;
        let (cid, tty, max_file) = {
            let r = ctr.rec();
            let max_file = logfile::LogOptions::from_opts(&r.host_config.log_config.config)
                .map(|o| o.max_file)
                .unwrap_or(1);
            (r.id.clone(), r.config.tty, max_file)
        };
        let path = ctr.paths.log(&cid);
        let q = logfile::Query {
            tail: opts.tail,
            since: opts.since.map(logfile::Timestamp::from),
            until: opts.until.map(logfile::Timestamp::from),
            stdout: opts.stdout,
            stderr: opts.stderr,
        };
        let ts = opts.timestamps;
        let write_entry =
            |out: &mut dyn Write, e: &logfile::Entry| write_log_entry(out, e, tty, ts);
        let (entries, mut follower) = logfile::read_follow(&path, max_file, &q)
            .map_err(|e| ApiError::internal(format!("cannot read the log: {e}")))?;
        for e in &entries {
            if write_entry(out, e).is_err() {
                return Ok(());
            }
        }
        let _ = out.flush();
        if !opts.follow || opts.until.is_some() {
            return Ok(());
        }
        let mut rx = ctr.changed.subscribe();
        loop {
            let running = {
                let r = ctr.rec();
                r.state.status.is_running() || r.state.status == Status::Restarting
            };
            let new = follower
                .poll()
                .map_err(|e| ApiError::internal(format!("cannot read the log: {e}")))?;
            for e in &new {
                if write_entry(out, e).is_err() {
                    return Ok(());
                }
            }
            if !new.is_empty() && out.flush().is_err() {
                return Ok(());
            }
            if !running || !ctr.paths.dir.exists() {
                // One last look after the end.
                for e in follower.poll().unwrap_or_default() {
                    if write_entry(out, &e).is_err() {
                        return Ok(());
                    }
                }
                let _ = out.flush();
                return Ok(());
            }
            let _ = rx.borrow_and_update();
            std::thread::sleep(Duration::from_millis(50));
            // A client that went away is noticed by the next write; probe
            // with an empty flush now and then.
            if out.flush().is_err() {
                return Ok(());
            }
        }
    }

    fn container_top(&self, id: &str, ps_args: Option<&str>) -> Result<TopResponse, ApiError> {
        let ctr = self.find(id)?;
        let (cid, status) = {
            let r = ctr.rec();
            (r.id.clone(), r.state.status)
        };
        if !status.is_running() {
            return Err(ApiError::conflict(format!(
                "container {cid} is not running"
            )));
        }
        let rt = hafen_runtime::Runtime::new(&self.containers.runtime_root);
        let pids = hafen_runtime::container::ps_json(&rt, &cid)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        crate::containers::top::top(&pids, ps_args).map_err(|e| ApiError::internal(e.to_string()))
    }

    fn container_stats(&self, id: &str, previous: Option<&Value>) -> Result<Value, ApiError> {
        let ctr = self.find(id)?;
        let (cid, name, status) = {
            let r = ctr.rec();
            (r.id.clone(), r.name.clone(), r.state.status)
        };
        if !status.is_running() {
            return Ok(json!({
                "read": "0001-01-01T00:00:00Z", "preread": "0001-01-01T00:00:00Z",
                "pids_stats": {}, "blkio_stats": {}, "num_procs": 0, "storage_stats": {},
                "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
                "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
                "memory_stats": {}, "name": format!("/{name}"), "id": cid
            }));
        }
        let rt = hafen_runtime::Runtime::new(&self.containers.runtime_root);
        let c = rt
            .load(&cid)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let mut v =
            crate::containers::stats::docker_stats(&cid, &name, &c.state.cgroup, previous, cpus);
        let pid = ctr.rec().state.pid;
        let own_netns = !ctr.rec().networks.is_empty();
        if own_netns && pid > 0 {
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) {
                if let Some(o) = v.as_object_mut() {
                    o.insert(
                        "networks".into(),
                        crate::containers::stats::network_counters(&text),
                    );
                }
            }
        }
        Ok(v)
    }

    fn container_changes(&self, id: &str) -> Result<Vec<ChangeItem>, ApiError> {
        let ctr = self.find(id)?;
        let rec = ctr.rec().clone();
        let (upper, lowers) = self.snapshot_layers(&rec.snapshot)?;
        crate::containers::archive::changes_except(
            &upper,
            &lowers,
            &crate::containers::files::runtime_made(&rec),
        )
        .map_err(|e| ApiError::internal(e.to_string()))
    }

    fn container_export(&self, id: &str, out: &mut dyn Write) -> Result<(), ApiError> {
        let ctr = self.find(id)?;
        self.with_rootfs(&ctr, |rootfs| {
            crate::containers::archive::export(rootfs, out).map_err(archive_error)
        })
    }

    fn container_archive_stat(&self, id: &str, path: &str) -> Result<Value, ApiError> {
        let ctr = self.find(id)?;
        let name = ctr.rec().name.clone();
        self.with_rootfs(&ctr, |rootfs| {
            crate::containers::archive::stat(rootfs, path)
                .map_err(|e| not_found_path(e, path, &name))
        })
    }

    fn container_archive_get(
        &self,
        id: &str,
        path: &str,
        out: &mut dyn Write,
    ) -> Result<(), ApiError> {
        let ctr = self.find(id)?;
        let name = ctr.rec().name.clone();
        self.with_rootfs(&ctr, |rootfs| {
            crate::containers::archive::get(rootfs, path, out)
                .map_err(|e| not_found_path(e, path, &name))
        })
    }

    fn container_archive_put(
        &self,
        id: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        input: Box<dyn std::io::Read + Send>,
    ) -> Result<(), ApiError> {
        let ctr = self.find(id)?;
        let name = ctr.rec().name.clone();
        if ctr.rec().host_config.readonly_rootfs {
            return Err(ApiError::new(403, "container rootfs is marked read-only"));
        }
        self.with_rootfs(&ctr, |rootfs| {
            crate::containers::archive::put(
                rootfs,
                path,
                input,
                no_overwrite_dir_non_dir,
                copy_uid_gid,
            )
            .map_err(|e| not_found_path(e, path, &name))
        })
    }

    fn container_commit(
        &self,
        id: &str,
        reference: Option<&str>,
        comment: &str,
        author: &str,
        pause: bool,
        changes: &[String],
        config: Option<Value>,
    ) -> Result<String, ApiError> {
        self.commit_container(id, reference, comment, author, pause, changes, config)
    }

    fn container_prune(&self, f: &Filters) -> Result<ContainerPruneReport, ApiError> {
        filters::only(f, &["until", "label", "label!"])?;
        let until = f
            .get("until")
            .and_then(|v| v.first())
            .map(|u| crate::backend::time_filter("until", u))
            .transpose()?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for ctr in self.containers.all() {
            let r = ctr.rec().clone();
            if r.state.status.is_running() || r.state.status == Status::Restarting {
                continue;
            }
            if until.is_some_and(|u| created_unix(&r) >= u) {
                continue;
            }
            let labels_ok = f
                .get("label")
                .into_iter()
                .flatten()
                .all(|v| match v.split_once('=') {
                    Some((k, val)) => r.config.labels.get(k).is_some_and(|x| x == val),
                    None => r.config.labels.contains_key(v.as_str()),
                })
                && !f
                    .get("label!")
                    .into_iter()
                    .flatten()
                    .any(|v| match v.split_once('=') {
                        Some((k, val)) => r.config.labels.get(k).is_some_and(|x| x == val),
                        None => r.config.labels.contains_key(v.as_str()),
                    });
            if !labels_ok {
                continue;
            }
            let size = u64::try_from(self.rw_size(&r)).unwrap_or(0);
            if self.remove_container(&r.id, false, false).is_ok() {
                reclaimed += size;
                deleted.push(r.id.clone());
            }
        }
        Ok(ContainerPruneReport {
            containers_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: reclaimed,
        })
    }

    fn exec_create(&self, id: &str, config: ExecConfig) -> Result<String, ApiError> {
        Ok(Engine::exec_create(self, id, config)?)
    }

    fn exec_start(&self, exec_id: &str, detach: bool, tty: bool) -> Result<Attached, ApiError> {
        let (stream, tty) = Engine::exec_start(self, exec_id, tty.then_some(true))?;
        let keys = {
            let execs = lock(&self.containers.execs);
            execs
                .get(exec_id)
                .map(|e| e.config.detach_keys.clone())
                .unwrap_or_default()
        };
        if detach {
            // The process goes on without a client; its output is dropped.
            drop(stream);
            return Ok(Attached {
                stream: AttachStream::Closed,
                tty,
                detach_keys: Vec::new(),
                prefix: Vec::new(),
            });
        }
        Ok(Attached {
            stream: AttachStream::Ready(stream),
            tty,
            detach_keys: parse_detach_keys(if keys.is_empty() {
                "ctrl-p,ctrl-q"
            } else {
                &keys
            })?,
            prefix: Vec::new(),
        })
    }

    fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<(), ApiError> {
        Ok(Engine::exec_resize(self, exec_id, height, width)?)
    }

    fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect, ApiError> {
        let (exec, running, code, pid) = self.exec_state(exec_id)?;
        let args = exec.config.cmd.clone().unwrap_or_default();
        Ok(ExecInspect {
            can_remove: false,
            detach_keys: exec.config.detach_keys.clone(),
            id: exec.id.clone(),
            running,
            exit_code: code,
            process_config: json!({
                "tty": exec.config.tty,
                "entrypoint": args.first().cloned().unwrap_or_default(),
                "arguments": args.get(1..).unwrap_or(&[]),
                "privileged": exec.config.privileged,
                "user": exec.config.user,
            }),
            open_stdin: exec.config.attach_stdin,
            open_stderr: exec.config.attach_stderr,
            open_stdout: exec.config.attach_stdout,
            container_id: exec.container.clone(),
            pid: i64::from(pid.max(0)),
        })
    }
}

/// One log entry for a client: framed unless the container has a terminal.
fn write_log_entry(
    out: &mut dyn Write,
    e: &logfile::Entry,
    tty: bool,
    timestamps: bool,
) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(e.line.len() + 40);
    if timestamps {
        line.extend_from_slice(logfile::timestamp(e).as_bytes());
        line.push(b' ');
    }
    line.extend_from_slice(&e.line);
    if tty {
        out.write_all(&line)
    } else {
        let stream = match e.stream {
            logfile::Stream::Stdout => 1,
            logfile::Stream::Stderr => 2,
        };
        out.write_all(&hafen_shim::protocol::frame_header(stream, line.len()))?;
        out.write_all(&line)
    }
}

fn archive_error(e: crate::containers::archive::ArchiveError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn not_found_path(e: crate::containers::archive::ArchiveError, path: &str, name: &str) -> ApiError {
    if e.is_not_found() {
        ApiError::not_found(format!(
            "Could not find the file {path} in container {name}"
        ))
    } else {
        ApiError::bad_request(e.to_string())
    }
}

/// Docker's detach keys (`ctrl-p,ctrl-q`, letters, `ctrl-@`…).
pub fn parse_detach_keys(text: &str) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    for key in text.split(',').filter(|k| !k.is_empty()) {
        if let Some(c) = key.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b] if b.is_ascii_alphabetic() => b.to_ascii_lowercase() - b'a' + 1,
                b"@" => 0,
                b"[" => 27,
                b"\\" => 28,
                b"]" => 29,
                b"^" => 30,
                b"_" => 31,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid escape keys ({text}) provided"
                    )));
                }
            };
            out.push(b);
        } else if key.len() == 1 {
            out.push(key.as_bytes()[0]);
        } else {
            return Err(ApiError::bad_request(format!(
                "Invalid escape keys ({text}) provided"
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_detach_keys_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").expect("valid"),
            vec![16, 17]
        );
        assert!(parse_detach_keys("ctrl-pp").is_err());
    }
}
