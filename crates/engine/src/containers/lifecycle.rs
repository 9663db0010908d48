//! create, start, stop, kill, remove, and what happens when a container
//! exits (restart policies, `--rm`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hafen_api::models::{ContainerCreate, MountPoint};
use hafen_shim::protocol::{self, ExitStatus, Ready, Request, ShimConfig};

use super::record::{NEVER, Record, State, Status};
use super::spec::{self, HostMount, SpecInput};
use super::{ContainerError, Ctr, lock, names, new_id, now_rfc3339};
use crate::Engine;

type Result<T, E = ContainerError> = std::result::Result<T, E>;

fn internal(what: &str) -> impl FnOnce(std::io::Error) -> ContainerError + '_ {
    move |e| ContainerError::Internal(format!("{what}: {e}"))
}

/// The hosts file of a container without networks.
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// The snapshot key of a container.
pub fn snapshot_key(id: &str) -> String {
    format!("container-{id}")
}

/// The signal number of a name (`SIGTERM`, `TERM`, `15`).
pub fn signal_number(name: &str) -> Result<i32> {
    hafen_runtime::signal::parse(name)
        .map_err(|_| ContainerError::Invalid(format!("Invalid signal: {name}")))
}

impl Engine {
    /// Makes a container.
    pub fn create_container(
        &self,
        name: Option<&str>,
        body: ContainerCreate,
    ) -> Result<(String, Vec<String>)> {
        let ContainerCreate {
            mut config,
            host_config: mut host,
            networking_config: body_networking,
            ..
        } = body;
        if config.image.is_empty() {
            return Err(ContainerError::Invalid(
                "config cannot be empty in order to create a container".into(),
            ));
        }
        let hostname_given = !config.hostname.is_empty();
        let endpoints = {
            let publishes = host
                .port_bindings
                .as_ref()
                .and_then(serde_json::Value::as_object)
                .is_some_and(|m| !m.is_empty())
                || host.publish_all_ports;
            let nonempty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
            let dns_or_hosts = nonempty(&host.dns)
                || nonempty(&host.dns_search)
                || nonempty(&host.dns_options)
                || nonempty(&host.extra_hosts);
            self.networks()
                .plan(crate::networks::plan::Asked {
                    network_mode: &mut host.network_mode,
                    networking_config: body_networking.as_ref(),
                    mac_address: "",
                    publishes,
                    hostname: hostname_given,
                    dns_or_hosts,
                })
                .map_err(ContainerError::from)?
        };
        let mode = crate::networks::plan::mode_of(&host.network_mode);
        if let crate::networks::plan::Mode::Container(other) = &mode {
            let other = self.containers.find(other)?;
            let other_rec = other.rec();
            host.network_mode = format!("container:{}", other_rec.id);
            if config.hostname.is_empty() {
                config.hostname = other_rec.config.hostname.clone();
            }
        }
        if mode == crate::networks::plan::Mode::Host && config.hostname.is_empty() {
            config.hostname = rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned();
        }
        validate_restart(&host.restart_policy, host.auto_remove)?;
        let base = self
            .images()
            .container_base(&config.image)
            .map_err(|e| match e {
                hafen_image::ImageError::NotFound(_) => {
                    ContainerError::NoImage(config.image.clone())
                }
                other => ContainerError::Invalid(other.to_string()),
            })?;
        let id = new_id();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !names::valid(n) {
                    return Err(ContainerError::Invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.to_string()
            }
            None => {
                let random = new_id();
                let bytes = random.as_bytes();
                (0..)
                    .map(|i| names::generate(&[bytes[0], bytes[1] ^ bytes[2]], i))
                    .find(|n| self.containers.by_name(n).is_none())
                    .unwrap_or_else(|| id[..12].to_string())
            }
        };
        if let Some(other) = self.containers.by_name(&name) {
            return Err(name_conflict(&name, &other.rec().id));
        }
        // Image defaults (moby's merge): env, cmd/entrypoint, workdir, user,
        // volumes, labels, stop signal, healthcheck, exposed ports.
        let img = base.config.config.clone().unwrap_or_default();
        let mut env = img.env.clone().unwrap_or_default();
        for e in &config.env {
            let key = e.split('=').next().unwrap_or(e);
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        config.env = env;
        if config.entrypoint.is_none() {
            config.entrypoint = img.entrypoint.clone();
            if config.cmd.is_none() {
                config.cmd = img.cmd.clone();
            }
        } else if config.entrypoint.as_deref() == Some(&[String::new()][..]) {
            config.entrypoint = None;
        }
        if config.working_dir.is_empty() {
            config.working_dir = img.working_dir.clone();
        }
        if config.user.is_empty() {
            config.user = img.user.clone();
        }
        if let Some(v) = &img.volumes {
            let mine = config.volumes.get_or_insert_with(Default::default);
            for (k, val) in v {
                mine.entry(k.clone()).or_insert_with(|| val.clone());
            }
        }
        if let Some(p) = &img.exposed_ports {
            let mine = config.exposed_ports.get_or_insert_with(Default::default);
            for (k, val) in p {
                mine.entry(k.clone()).or_insert_with(|| val.clone());
            }
        }
        for (k, v) in img.labels.iter().flatten() {
            config.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if config.stop_signal.is_none() {
            config.stop_signal = img.stop_signal.clone();
        }
        if let Some(s) = &config.stop_signal {
            signal_number(s)?;
        }
        if config.healthcheck.is_none() {
            config.healthcheck = img
                .healthcheck
                .as_ref()
                .and_then(|h| serde_json::from_value(h.clone()).ok());
        }
        if config.hostname.is_empty() {
            config.hostname = id[..12].to_string();
        }
        let mut args: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        args.extend(config.cmd.clone().unwrap_or_default());
        if args.is_empty() {
            return Err(ContainerError::Invalid("no command specified".into()));
        }
        // Checks that cannot wait for start.
        spec::capabilities(&host)?;
        if host.init == Some(true) && !self.containers.shim.exists() {
            return Err(ContainerError::Invalid(
                "--init needs the hafen-shim binary, which is missing".into(),
            ));
        }
        if let Some(m) = host.mounts.as_ref() {
            for mount in m {
                if !matches!(mount.kind.as_str(), "bind" | "volume" | "tmpfs") {
                    return Err(ContainerError::Invalid(format!(
                        "invalid mount config for type {:?}: mount type unknown",
                        mount.kind
                    )));
                }
            }
        }
        if host.log_config.kind.is_empty() {
            host.log_config.kind = "json-file".into();
        }
        if host.log_config.kind != "json-file" {
            return Err(ContainerError::Invalid(format!(
                "logging driver {:?} is not supported: use json-file",
                host.log_config.kind
            )));
        }
        hafen_shim::logfile::LogOptions::from_opts(&host.log_config.config)
            .map_err(|e| ContainerError::Invalid(e.to_string()))?;
        let mounts = self.plan_mounts(&id, &config, &host)?;

        let paths = self.containers.paths(&id);
        // The name is taken under the containers' lock order: check again
        // right before inserting.
        if let Some(other) = self.containers.by_name(&name) {
            return Err(name_conflict(&name, &other.rec().id));
        }
        std::fs::create_dir_all(&paths.dir).map_err(internal("cannot create the container"))?;
        let made = (|| -> Result<Record> {
            let key = snapshot_key(&id);
            self.images()
                .snapshotter()
                .prepare(&key, base.chain_id.as_deref())
                .map_err(|e| {
                    ContainerError::Internal(format!("cannot prepare the root filesystem: {e}"))
                })?;
            std::fs::write(paths.dir.join("hostname"), format!("{}\n", config.hostname))
                .map_err(internal("cannot write hostname"))?;
            std::fs::write(paths.dir.join("hosts"), HOSTS)
                .map_err(internal("cannot write hosts"))?;
            std::fs::write(paths.dir.join("resolv.conf"), resolv_conf())
                .map_err(internal("cannot write resolv.conf"))?;
            let rec = Record {
                id: id.clone(),
                name: name.clone(),
                created: now_rfc3339(),
                path: args[0].clone(),
                args: args[1..].to_vec(),
                config,
                host_config: host,
                image: base.id.to_string(),
                snapshot: key,
                mounts,
                state: State::default(),
                restart_count: 0,
                networks: endpoints,
                ports: Default::default(),
            };
            rec.save(&paths.dir)
                .map_err(internal("cannot save the container"))?;
            Ok(rec)
        })();
        let rec = match made {
            Ok(r) => r,
            Err(e) => {
                let _ = self.images().snapshotter().remove(&snapshot_key(&id));
                let _ = std::fs::remove_dir_all(&paths.dir);
                return Err(e);
            }
        };
        let mut warnings = Vec::new();
        if rec.host_config.memory > 0 && rec.host_config.memory < 6 * 1024 * 1024 {
            warnings.push("Minimum memory limit allowed is 6MB".into());
        }
        for m in &rec.mounts {
            if m.kind == "volume" {
                let _ = self.volumes().acquire(&m.name, &id);
            }
        }
        let image_name = rec.config.image.clone();
        self.containers.insert(rec);
        self.container_event(&id, "create", &[("image", &image_name), ("name", &name)]);
        Ok((id, warnings))
    }

    /// Volumes, binds and tmpfs mounts of a new container.
    fn plan_mounts(
        &self,
        id: &str,
        config: &hafen_api::models::ContainerConfig,
        host: &hafen_api::models::HostConfig,
    ) -> Result<Vec<MountPoint>> {
        let mut out: Vec<MountPoint> = Vec::new();
        let add = |m: MountPoint, out: &mut Vec<MountPoint>| -> Result<()> {
            if !m.destination.starts_with('/') {
                return Err(ContainerError::Invalid(format!(
                    "invalid mount config: the mount destination {:?} is not an absolute path",
                    m.destination
                )));
            }
            if out.iter().any(|o| o.destination == m.destination) {
                return Err(ContainerError::Invalid(format!(
                    "Duplicate mount point: {}",
                    m.destination
                )));
            }
            out.push(m);
            Ok(())
        };
        for bind in host.binds.iter().flatten() {
            add(parse_bind(bind)?, &mut out)?;
        }
        for m in host.mounts.iter().flatten() {
            let ro = m.read_only;
            let mp = match m.kind.as_str() {
                "bind" => {
                    if !Path::new(&m.source).exists() {
                        return Err(ContainerError::Invalid(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    MountPoint {
                        kind: "bind".into(),
                        source: m.source.clone(),
                        destination: m.target.clone(),
                        mode: String::new(),
                        rw: !ro,
                        propagation: "rprivate".into(),
                        ..MountPoint::default()
                    }
                }
                "volume" => MountPoint {
                    kind: "volume".into(),
                    name: m.source.clone(),
                    destination: m.target.clone(),
                    driver: "local".into(),
                    mode: "z".into(),
                    rw: !ro,
                    ..MountPoint::default()
                },
                _ => {
                    let size = m
                        .tmpfs_options
                        .as_ref()
                        .and_then(|o| o.get("SizeBytes"))
                        .and_then(serde_json::Value::as_i64);
                    MountPoint {
                        kind: "tmpfs".into(),
                        destination: m.target.clone(),
                        mode: size.map(|s| format!("size={s}")).unwrap_or_default(),
                        rw: !ro,
                        ..MountPoint::default()
                    }
                }
            };
            add(mp, &mut out)?;
        }
        for (dest, opts) in host.tmpfs.iter().flatten() {
            add(
                MountPoint {
                    kind: "tmpfs".into(),
                    destination: dest.clone(),
                    mode: opts.clone(),
                    rw: !opts.split(',').any(|o| o == "ro"),
                    ..MountPoint::default()
                },
                &mut out,
            )?;
        }
        for spec in host.volumes_from.iter().flatten() {
            let (name, mode) = spec.split_once(':').unwrap_or((spec, ""));
            let other = self.containers.find(name)?;
            let theirs = other.rec().mounts.clone();
            for mut m in theirs {
                if out.iter().any(|o| o.destination == m.destination) {
                    continue;
                }
                if mode == "ro" {
                    m.rw = false;
                } else if mode == "rw" {
                    m.rw = true;
                }
                out.push(m);
            }
        }
        // Anonymous volumes: `Config.Volumes` not covered by another mount.
        for dest in config.volumes.iter().flatten().map(|(k, _)| k) {
            if out.iter().any(|o| &o.destination == dest) {
                continue;
            }
            let v = self
                .volumes()
                .create_anonymous(id)
                .map_err(|e| ContainerError::Internal(e.to_string()))?;
            out.push(MountPoint {
                kind: "volume".into(),
                name: v.name,
                destination: dest.clone(),
                driver: "local".into(),
                rw: true,
                ..MountPoint::default()
            });
        }
        // Named volumes are made on first use, as Docker does.
        for m in &mut out {
            if m.kind == "volume" {
                m.source = self.volumes().data_dir(&m.name).display().to_string();
            }
        }
        for m in &out {
            if m.kind == "volume" && self.volumes().get(&m.name).is_err() {
                let req = hafen_api::models::VolumeCreate {
                    name: m.name.clone(),
                    ..Default::default()
                };
                self.volumes()
                    .create(&req)
                    .map_err(|e| ContainerError::Invalid(e.to_string()))?;
            }
        }
        Ok(out)
    }

    /// Starts a container. `Ok(false)`: it was running already.
    pub fn start_container(&self, key: &str) -> Result<bool> {
        let ctr = self.containers.find(key)?;
        let _op = lock(&ctr.op);
        {
            let rec = ctr.rec();
            if rec.state.status.is_running() {
                return Ok(false);
            }
            if matches!(rec.state.status, Status::Removing | Status::Dead) {
                return Err(ContainerError::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    rec.id
                )));
            }
        }
        let started = self.start_locked(&ctr);
        drop(_op);
        if let Err(e) = started {
            // As dockerd: a container that cannot start and should be
            // removed when it ends is removed now.
            if ctr.rec().host_config.auto_remove {
                let id = ctr.rec().id.clone();
                let _ = self.remove_container(&id, true, true);
            }
            return Err(e);
        }
        Ok(true)
    }

    /// Starts a container whose `op` lock is held.
    pub(crate) fn start_locked(&self, ctr: &Arc<Ctr>) -> Result<()> {
        let mut rec = ctr.rec().clone();
        match self.launch(ctr, &mut rec) {
            Ok((pid, shim_pid)) => {
                let mut r = ctr.rec();
                r.networks = rec.networks.clone();
                r.ports = rec.ports.clone();
                r.state.status = Status::Running;
                r.state.pid = pid;
                r.state.shim_pid = shim_pid;
                r.state.started_at = now_rfc3339();
                r.state.finished_at = NEVER.into();
                r.state.error.clear();
                r.state.exit_code = 0;
                r.state.oom_killed = false;
                r.state.has_been_started = true;
                r.state.stopped_by_user = false;
                if r.config
                    .healthcheck
                    .as_ref()
                    .is_some_and(super::health::enabled)
                {
                    r.state.health = Some(hafen_api::models::Health {
                        status: "starting".into(),
                        ..Default::default()
                    });
                }
                ctr.commit(&r);
                drop(r);
                if let Err(e) = self.containers.monitor.watch(&rec.id, shim_pid) {
                    // The shim ended already.
                    tracing::debug!("shim {shim_pid} of {}: {e}", rec.id);
                    self.on_shim_exit(&rec.id);
                }
                self.container_event(
                    &rec.id,
                    "start",
                    &[("image", &rec.config.image), ("name", &rec.name)],
                );
                super::health::spawn(self, &rec.id);
                Ok(())
            }
            Err((e, code)) => {
                self.unmount_rootfs(ctr);
                let mut r = ctr.rec();
                r.state.error = e.to_string();
                // As dockerd: the state stays (a new container stays
                // `created`), with the code the failure means.
                if let Some(code) = code {
                    r.state.exit_code = code;
                }
                ctr.commit(&r);
                for p in lock(&ctr.pending).drain(..) {
                    let _ = p.tx.send(None);
                }
                Err(e)
            }
        }
    }

    /// Mounts the root filesystem, writes the bundle, starts the shim and
    /// the container. On failure: the error and the exit code it means.
    fn launch(
        &self,
        ctr: &Arc<Ctr>,
        rec: &mut Record,
    ) -> Result<(i32, i32), (ContainerError, Option<i64>)> {
        let paths = &ctr.paths;
        let t0 = std::time::Instant::now();
        let fail = |e: ContainerError| (e, None);
        let _ = std::fs::remove_dir_all(&paths.state);
        std::fs::create_dir_all(paths.rootfs())
            .map_err(|e| fail(internal("cannot create the state directory")(e)))?;
        let mounts = self
            .images()
            .snapshotter()
            .mounts(&rec.snapshot)
            .map_err(|e| {
                fail(ContainerError::Internal(format!(
                    "the container's root filesystem: {e}"
                )))
            })?;
        mount_rootfs(&mounts, &paths.rootfs())
            .map_err(|e| fail(internal("cannot mount the root filesystem")(e)))?;
        tracing::debug!(
            "{}: root filesystem mounted after {:?}",
            rec.id,
            t0.elapsed()
        );
        let host_mounts = self.host_mounts(rec, &paths.rootfs()).map_err(fail)?;
        let init = (rec.host_config.init == Some(true)).then_some(self.containers.shim.as_path());
        let args: Vec<String> = std::iter::once(rec.path.clone())
            .chain(rec.args.iter().cloned())
            .collect();
        let mode = crate::networks::plan::mode_of(&rec.host_config.network_mode);
        let netns = self.netns_of(&mode, paths).map_err(fail)?;
        let input = SpecInput {
            netns,
            id: &rec.id,
            config: &rec.config,
            host: &rec.host_config,
            rootfs: &paths.rootfs(),
            etc_files: [
                paths.dir.join("hostname"),
                paths.dir.join("hosts"),
                paths.dir.join("resolv.conf"),
            ],
            mounts: &host_mounts,
            init,
            args: &args,
        };
        let (spec, _warnings) = spec::build(&input).map_err(fail)?;
        let config_json =
            serde_json::to_vec(&spec).map_err(|e| fail(ContainerError::Internal(e.to_string())))?;
        std::fs::write(paths.state.join("config.json"), config_json)
            .map_err(|e| fail(internal("cannot write config.json")(e)))?;
        tracing::debug!("{}: config.json written after {:?}", rec.id, t0.elapsed());
        let console_size = rec
            .host_config
            .extra
            .get("ConsoleSize")
            .and_then(serde_json::Value::as_array)
            .and_then(|a| {
                let h = u16::try_from(a.first()?.as_u64()?).ok()?;
                let w = u16::try_from(a.get(1)?.as_u64()?).ok()?;
                (h > 0 && w > 0).then_some((h, w))
            });
        let cfg = ShimConfig {
            id: rec.id.clone(),
            runtime_root: self.containers.runtime_root.clone(),
            bundle: paths.state.clone(),
            state_dir: paths.state.clone(),
            log_path: paths.log(&rec.id),
            log_opts: rec.host_config.log_config.config.clone(),
            tty: rec.config.tty,
            stdin: rec.config.open_stdin,
            stdin_once: rec.config.stdin_once,
            console_size,
            rootfs_mounts: rootfs_mounts(&mounts),
        };
        // The daemon needed the files (users, volume contents); the
        // container's own mount is the shim's, in its own namespace.
        if let Err(e) = rustix::mount::unmount(paths.rootfs(), rustix::mount::UnmountFlags::empty())
        {
            tracing::debug!("unmounting {}: {e}", paths.rootfs().display());
            let _ = rustix::mount::unmount(paths.rootfs(), rustix::mount::UnmountFlags::DETACH);
        }
        let (pid, shim_pid) = self.spawn_shim(&cfg).map_err(|e| {
            let code = start_exit_code(&e.to_string());
            (ContainerError::Start(e.to_string()), code)
        })?;
        tracing::debug!("{}: shim ready after {:?}", rec.id, t0.elapsed());
        if matches!(
            mode,
            crate::networks::plan::Mode::Networks | crate::networks::plan::Mode::None
        ) {
            if let Err(e) = self.join_networks(rec, paths, pid) {
                let _ = hafen_runtime::container::kill(
                    &hafen_runtime::Runtime::new(&self.containers.runtime_root),
                    &rec.id,
                    libc::SIGKILL,
                    true,
                );
                wait_gone(shim_pid, Duration::from_secs(5));
                return Err((e, None));
            }
            tracing::debug!("{}: networks joined after {:?}", rec.id, t0.elapsed());
        }
        // Attaches made before the start get their streams now, so that
        // no output is lost.
        for p in lock(&ctr.pending).drain(..) {
            let (i, o, e) = p.streams;
            let stream = protocol::request(
                &paths.state,
                &Request::Attach {
                    stdin: i,
                    stdout: o,
                    stderr: e,
                },
            )
            .ok()
            .map(|(_, s)| s);
            let _ = p.tx.send(stream);
        }
        if let Err(e) = protocol::request(&paths.state, &Request::Start) {
            let text = e.to_string();
            let code = start_exit_code(&text);
            self.networks().detach(&rec.id, &mut rec.networks);
            rec.ports.clear();
            let _ = hafen_runtime::container::kill(
                &hafen_runtime::Runtime::new(&self.containers.runtime_root),
                &rec.id,
                libc::SIGKILL,
                true,
            );
            wait_gone(shim_pid, Duration::from_secs(5));
            return Err((
                ContainerError::Start(format!("failed to create task for container: {text}")),
                code,
            ));
        }
        tracing::debug!("{}: started after {:?}", rec.id, t0.elapsed());
        Ok((pid, shim_pid))
    }

    /// The network namespace of a container about to start (see
    /// [`SpecInput::netns`]); for the host's and another container's, the
    /// etc files are theirs.
    fn netns_of(
        &self,
        mode: &crate::networks::plan::Mode,
        paths: &super::record::Paths,
    ) -> Result<Option<String>> {
        use crate::networks::plan::Mode;
        let copy = |from: &Path, name: &str| {
            if let Ok(text) = std::fs::read_to_string(from) {
                let _ = std::fs::write(paths.dir.join(name), text);
            }
        };
        match mode {
            Mode::Networks | Mode::None => Ok(Some(String::new())),
            Mode::Host => {
                copy(Path::new("/etc/hosts"), "hosts");
                copy(Path::new("/etc/resolv.conf"), "resolv.conf");
                Ok(None)
            }
            Mode::Container(other) => {
                let other = self.containers.find(other)?;
                let (running, pid) = {
                    let r = other.rec();
                    (r.state.status.is_running(), r.state.pid)
                };
                if !running || pid <= 0 {
                    return Err(ContainerError::Conflict(format!(
                        "cannot join network namespace of a non running container: {}",
                        other.rec().id
                    )));
                }
                copy(&other.paths.dir.join("hosts"), "hosts");
                copy(&other.paths.dir.join("resolv.conf"), "resolv.conf");
                Ok(Some(format!("/proc/{pid}/ns/net")))
            }
        }
    }

    /// Joins a created container to its networks (before its program
    /// starts, so it never runs without them).
    fn join_networks(
        &self,
        rec: &mut Record,
        paths: &super::record::Paths,
        pid: i32,
    ) -> Result<()> {
        let ports = crate::networks::ports::wanted(
            rec.host_config.port_bindings.as_ref(),
            rec.host_config.publish_all_ports,
            rec.config.exposed_ports.as_ref(),
        )?;
        let primary = rec.host_config.network_mode.clone();
        let mut order: Vec<String> = rec.networks.keys().cloned().collect();
        order.sort_by_key(|n| *n != primary);
        let h = &rec.host_config;
        let dns = crate::networks::etc_files::DnsSettings::of(h);
        let extra_hosts = h.extra_hosts.clone().unwrap_or_default();
        let req = crate::networks::attach::Request {
            id: &rec.id,
            name: &rec.name,
            hostname: &rec.config.hostname,
            domain: &rec.config.domainname,
            pid,
            order,
            ports,
            dns,
            extra_hosts: &extra_hosts,
            hosts_path: paths.dir.join("hosts"),
            resolv_path: paths.dir.join("resolv.conf"),
        };
        let mut endpoints = rec.networks.clone();
        let ports = self.networks().attach(&req, &mut endpoints)?;
        rec.networks = endpoints;
        rec.ports = ports;
        Ok(())
    }

    fn spawn_shim(&self, cfg: &ShimConfig) -> std::io::Result<(i32, i32)> {
        use std::process::{Command, Stdio};
        let log = std::fs::File::create(cfg.state_dir.join("shim.log"))?;
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let program = match &self.containers.shim_exe {
            Some(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            None => self.containers.shim.clone(),
        };
        let mut child = Command::new(&program)
            .arg0("hafen-shim")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                std::io::Error::other(format!(
                    "cannot start {}: {e}",
                    self.containers.shim.display()
                ))
            })?;
        let shim_pid = i32::try_from(child.id()).unwrap_or(0);
        if let Some(mut stdin) = child.stdin.take() {
            let text = serde_json::to_vec(cfg).map_err(std::io::Error::other)?;
            stdin.write_all(&text)?;
        }
        let out = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no shim stdout"))?;
        let ready = protocol::read_ready(out);
        // The monitor reaps it (pidfd); std's handle is not needed.
        drop(child);
        match ready {
            Ok(Ready::Created { pid }) => Ok((pid, shim_pid)),
            Ok(Ready::Failed { message }) => {
                wait_gone(shim_pid, Duration::from_secs(2));
                Err(std::io::Error::other(message))
            }
            Err(e) => {
                wait_gone(shim_pid, Duration::from_secs(2));
                let log =
                    std::fs::read_to_string(cfg.state_dir.join("shim.log")).unwrap_or_default();
                Err(std::io::Error::other(format!("{e} {}", log.trim())))
            }
        }
    }

    /// The container's mounts as the OCI config has them.
    fn host_mounts(&self, rec: &Record, rootfs: &Path) -> Result<Vec<HostMount>> {
        let mut out = Vec::new();
        for m in &rec.mounts {
            let ro = if m.rw { "rw" } else { "ro" };
            match m.kind.as_str() {
                "bind" => {
                    let mut options = vec!["rbind".to_string(), ro.to_string()];
                    options.push(if m.propagation.is_empty() {
                        "rprivate".into()
                    } else {
                        m.propagation.clone()
                    });
                    out.push(HostMount {
                        destination: m.destination.clone(),
                        kind: "bind".into(),
                        source: m.source.clone(),
                        options,
                    });
                }
                "volume" => {
                    let source = self
                        .volumes()
                        .mount_source(&m.name, &rec.id)
                        .map_err(|e| ContainerError::Internal(e.to_string()))?;
                    let in_image = resolve_in(rootfs, &m.destination);
                    if let Some(from) = in_image.filter(|p| p.is_dir()) {
                        if let Err(e) = self.volumes().copy_up(&m.name, &from) {
                            tracing::warn!("copying {} into volume {}: {e}", m.destination, m.name);
                        }
                    }
                    out.push(HostMount {
                        destination: m.destination.clone(),
                        kind: "bind".into(),
                        source: source.display().to_string(),
                        options: vec!["rbind".into(), ro.into(), "rprivate".into()],
                    });
                }
                _ => {
                    let mut options: Vec<String> =
                        vec!["nosuid".into(), "nodev".into(), "noexec".into()];
                    options.extend(
                        m.mode
                            .split(',')
                            .filter(|o| !o.is_empty())
                            .map(str::to_string),
                    );
                    // Docker's tmpfs mounts are writable by everyone unless
                    // a mode is given.
                    if !options.iter().any(|o| o.starts_with("mode=")) {
                        options.push("mode=1777".into());
                    }
                    if !m.rw && !options.iter().any(|o| o == "ro") {
                        options.push("ro".into());
                    }
                    out.push(HostMount {
                        destination: m.destination.clone(),
                        kind: "tmpfs".into(),
                        source: "tmpfs".into(),
                        options,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Unmounts the root filesystem and removes the state directory.
    pub(crate) fn unmount_rootfs(&self, ctr: &Ctr) {
        let (id, volumes): (String, Vec<String>) = {
            let r = ctr.rec();
            (
                r.id.clone(),
                r.mounts
                    .iter()
                    .filter(|m| m.kind == "volume")
                    .map(|m| m.name.clone())
                    .collect(),
            )
        };
        for v in volumes {
            let _ = self.volumes().unmount_source(&v, &id);
        }
        let rootfs = ctr.paths.rootfs();
        let _ = rustix::mount::unmount(&rootfs, rustix::mount::UnmountFlags::DETACH);
        let _ = std::fs::remove_dir(&rootfs);
        let _ = std::fs::remove_dir_all(&ctr.paths.state);
    }

    /// A shim ended: record the exit, then restart or remove as asked.
    pub fn on_shim_exit(&self, id: &str) {
        tracing::debug!("{id}: shim ended");
        let Ok(ctr) = self.containers.find(id) else {
            return;
        };
        let status =
            ExitStatus::read(&ctr.paths.state.join(protocol::EXIT_FILE)).unwrap_or(ExitStatus {
                exit_code: 255,
                finished_at: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
                oom_killed: false,
            });
        self.record_exit(&ctr, status);
    }

    pub(crate) fn record_exit(&self, ctr: &Arc<Ctr>, status: ExitStatus) {
        // Cleans the runtime's leftovers if the shim could not.
        let rt = hafen_runtime::Runtime::new(&self.containers.runtime_root);
        let id = ctr.rec().id.clone();
        let _ = hafen_runtime::container::delete(&rt, &id, true);
        self.unmount_rootfs(ctr);
        let (policy, auto_remove, by_user, name, image, restarts) = {
            let mut r = ctr.rec();
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.shim_pid = 0;
            r.state.exit_code = i64::from(status.exit_code);
            r.state.oom_killed = status.oom_killed;
            r.state.finished_at = super::ns_rfc3339(status.finished_at);
            r.state.health = None;
            let mut endpoints = std::mem::take(&mut r.networks);
            self.networks().detach(&id, &mut endpoints);
            r.networks = endpoints;
            r.ports.clear();
            ctr.commit(&r);
            (
                r.host_config.restart_policy.clone(),
                r.host_config.auto_remove,
                r.state.stopped_by_user,
                r.name.clone(),
                r.config.image.clone(),
                r.restart_count,
            )
        };
        let code = status.exit_code.to_string();
        self.container_event(
            &id,
            "die",
            &[("exitCode", &code), ("image", &image), ("name", &name)],
        );
        if auto_remove {
            let _ = self.remove_container(&id, true, true);
            return;
        }
        let restart = !by_user
            && match policy.name.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => {
                    status.exit_code != 0
                        && (policy.maximum_retry_count == 0
                            || restarts < policy.maximum_retry_count)
                }
                _ => false,
            };
        if restart {
            {
                let mut r = ctr.rec();
                r.state.status = Status::Restarting;
                r.restart_count += 1;
                ctr.commit(&r);
            }
            let engine = self.me();
            let ctr = ctr.clone();
            // Docker's back-off: 100 ms doubling (reset after a long run).
            let delay = Duration::from_millis(100u64 << restarts.clamp(0, 10));
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                let _op = lock(&ctr.op);
                if ctr.rec().state.status != Status::Restarting {
                    return;
                }
                if let Err(e) = engine.start_locked(&ctr) {
                    tracing::warn!("restarting {}: {e}", ctr.rec().id);
                    let mut r = ctr.rec();
                    r.state.status = Status::Exited;
                    ctr.commit(&r);
                }
            });
        }
    }

    /// Sends a signal to the container's processes.
    pub fn kill_container(&self, key: &str, signal: Option<&str>) -> Result<()> {
        let ctr = self.containers.find(key)?;
        let sig = signal_number(signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL"))?;
        let (id, status) = {
            let r = ctr.rec();
            (r.id.clone(), r.state.status)
        };
        if !status.is_running() {
            if status == Status::Restarting {
                let mut r = ctr.rec();
                r.state.status = Status::Exited;
                r.state.stopped_by_user = true;
                ctr.commit(&r);
                return Ok(());
            }
            return Err(ContainerError::Conflict(format!(
                "cannot kill container: {key}: container {id} is not running"
            )));
        }
        {
            let mut r = ctr.rec();
            r.state.stopped_by_user = true;
            r.save(&ctr.paths.dir).ok();
        }
        let rt = hafen_runtime::Runtime::new(&self.containers.runtime_root);
        hafen_runtime::container::kill(&rt, &id, sig, false)
            .map_err(|e| ContainerError::Internal(format!("cannot kill container {id}: {e}")))?;
        let sig_text = sig.to_string();
        let name = ctr.rec().name.clone();
        self.container_event(&id, "kill", &[("name", &name), ("signal", &sig_text)]);
        Ok(())
    }

    /// Stops a container: its stop signal, then SIGKILL after the timeout.
    /// `Ok(false)`: it was not running.
    pub fn stop_container(
        &self,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool> {
        let ctr = self.containers.find(key)?;
        let (id, status, stop_signal, stop_timeout, name) = {
            let r = ctr.rec();
            (
                r.id.clone(),
                r.state.status,
                r.config.stop_signal.clone(),
                r.config.stop_timeout,
                r.name.clone(),
            )
        };
        if status == Status::Restarting {
            let mut r = ctr.rec();
            r.state.status = Status::Exited;
            r.state.stopped_by_user = true;
            ctr.commit(&r);
            return Ok(true);
        }
        if !status.is_running() {
            return Ok(false);
        }
        let sig = signal_number(
            signal
                .filter(|s| !s.is_empty())
                .or(stop_signal.as_deref())
                .unwrap_or("SIGTERM"),
        )?;
        let wait = timeout.or(stop_timeout).unwrap_or(10);
        {
            let mut r = ctr.rec();
            r.state.stopped_by_user = true;
            r.save(&ctr.paths.dir).ok();
        }
        let rt = hafen_runtime::Runtime::new(&self.containers.runtime_root);
        if status == Status::Paused {
            let _ = hafen_runtime::container::resume(&rt, &id);
        }
        let _ = hafen_runtime::container::kill(&rt, &id, sig, false);
        if !wait_stopped(
            &ctr,
            (wait >= 0).then(|| Duration::from_secs(wait.unsigned_abs())),
        ) {
            let _ = hafen_runtime::container::kill(&rt, &id, libc::SIGKILL, true);
            wait_stopped(&ctr, Some(Duration::from_secs(30)));
        }
        self.container_event(&id, "stop", &[("name", &name)]);
        Ok(true)
    }

    /// Removes a container (killing it first with `force`).
    pub fn remove_container(&self, key: &str, force: bool, volumes: bool) -> Result<()> {
        let ctr = self.containers.find(key)?;
        let (id, status, name) = {
            let r = ctr.rec();
            (r.id.clone(), r.state.status, r.name.clone())
        };
        if status.is_running() {
            if !force {
                let what = if status == Status::Paused {
                    "container is paused and must be unpaused first"
                } else {
                    "container is running: stop the container before removing or force remove"
                };
                return Err(ContainerError::Conflict(format!(
                    "cannot remove container \"/{name}\": {what}"
                )));
            }
            let rt = hafen_runtime::Runtime::new(&self.containers.runtime_root);
            if status == Status::Paused {
                let _ = hafen_runtime::container::resume(&rt, &id);
            }
            {
                let mut r = ctr.rec();
                r.state.stopped_by_user = true;
                r.host_config.auto_remove = false;
                r.save(&ctr.paths.dir).ok();
            }
            let _ = hafen_runtime::container::kill(&rt, &id, libc::SIGKILL, true);
            wait_stopped(&ctr, Some(Duration::from_secs(30)));
        }
        let _op = lock(&ctr.op);
        {
            let mut r = ctr.rec();
            if r.state.status == Status::Removing {
                return Err(ContainerError::Conflict(format!(
                    "removal of container {id} is already in progress"
                )));
            }
            r.state.status = Status::Removing;
        }
        self.unmount_rootfs(&ctr);
        let mounts = ctr.rec().mounts.clone();
        if let Err(e) = self.images().snapshotter().remove(&snapshot_key(&id)) {
            tracing::warn!("removing the snapshot of {id}: {e}");
        }
        let _ = std::fs::remove_dir_all(&ctr.paths.dir);
        self.containers.forget(&id);
        for m in &mounts {
            if m.kind == "volume" {
                let _ = self.volumes().unmount_source(&m.name, &id);
                let _ = self.volumes().release(&m.name, &id);
                if volumes {
                    let anonymous = self
                        .volumes()
                        .get(&m.name)
                        .is_ok_and(|v| v.labels.contains_key("com.docker.volume.anonymous"));
                    if anonymous {
                        let _ = self.volumes().remove(&m.name, false);
                    }
                }
            }
        }
        lock(&self.containers.execs).retain(|_, e| e.container != id);
        tracing::debug!("{id}: removed");
        ctr.changed.send_modify(|n| *n += 1);
        self.container_event(&id, "destroy", &[("name", &name)]);
        Ok(())
    }

    /// Re-finds shims after a daemon restart; containers whose shim is gone
    /// are marked exited (from their exit file, or 255 after a reboot);
    /// `always`/`unless-stopped` ones whose shim is gone start again.
    pub fn recover_containers(&self) {
        let mut to_start = Vec::new();
        for ctr in self.containers.all() {
            let (id, status, shim_pid, policy, by_user) = {
                let r = ctr.rec();
                (
                    r.id.clone(),
                    r.state.status,
                    r.state.shim_pid,
                    r.host_config.restart_policy.name.clone(),
                    r.state.stopped_by_user,
                )
            };
            for m in ctr.rec().mounts.iter().filter(|m| m.kind == "volume") {
                let _ = self.volumes().acquire(&m.name, &id);
            }
            match status {
                Status::Running | Status::Paused => {
                    let alive = shim_pid > 0
                        && std::fs::read_to_string(ctr.paths.state.join(protocol::PID_FILE))
                            .ok()
                            .and_then(|p| p.trim().parse::<i32>().ok())
                            == Some(shim_pid)
                        && self.containers.monitor.watch(&id, shim_pid).is_ok();
                    if alive {
                        let r = ctr.rec().clone();
                        let h = &r.host_config;
                        let dns = crate::networks::etc_files::DnsSettings::of(h);
                        self.networks().readopt(
                            &id,
                            &r.name,
                            r.state.pid,
                            &r.networks,
                            &r.ports,
                            &dns,
                        );
                        continue;
                    }
                    let exit = ExitStatus::read(&ctr.paths.state.join(protocol::EXIT_FILE));
                    let rebooted = exit.is_none();
                    let status = exit.unwrap_or(ExitStatus {
                        exit_code: 255,
                        finished_at: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
                        oom_killed: false,
                    });
                    // After a reboot, restart policies are applied below
                    // (daemon start), not as a crash loop.
                    if rebooted {
                        {
                            let mut r = ctr.rec();
                            r.state.stopped_by_user = true;
                        }
                        self.record_exit(&ctr, status);
                        let mut r = ctr.rec();
                        r.state.stopped_by_user = by_user;
                        ctr.commit(&r);
                        if policy == "always" || (policy == "unless-stopped" && !by_user) {
                            to_start.push(ctr.clone());
                        }
                    } else {
                        self.record_exit(&ctr, status);
                    }
                }
                Status::Restarting => to_start.push(ctr.clone()),
                Status::Removing => {
                    let _ = self.remove_container(&id, true, false);
                }
                Status::Exited if policy == "always" && !by_user => {
                    to_start.push(ctr.clone());
                }
                _ => {}
            }
        }
        for ctr in to_start {
            let _op = lock(&ctr.op);
            if let Err(e) = self.start_locked(&ctr) {
                tracing::warn!("cannot restart container {}: {e}", ctr.rec().id);
            }
        }
    }

    /// Publishes a container event.
    pub fn container_event(&self, id: &str, action: &str, attrs: &[(&str, &str)]) {
        let attributes = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let legacy = !action.starts_with("exec_") && !action.starts_with("health_status");
        let from = attrs
            .iter()
            .find(|(k, _)| *k == "image")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        self.events().publish(hafen_api::models::Event {
            status: if legacy {
                action.to_string()
            } else {
                String::new()
            },
            id: if legacy {
                id.to_string()
            } else {
                String::new()
            },
            from: if legacy { from } else { String::new() },
            kind: "container".into(),
            action: action.into(),
            actor: hafen_api::models::Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: 0,
            time_nano: 0,
        });
    }
}

/// The conflict error for a name in use.
pub fn name_conflict(name: &str, id: &str) -> ContainerError {
    ContainerError::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

pub(crate) fn validate_restart(
    p: &hafen_api::models::RestartPolicy,
    auto_remove: bool,
) -> Result<()> {
    match p.name.as_str() {
        "" | "no" => {}
        "always" | "unless-stopped" => {
            if p.maximum_retry_count != 0 {
                return Err(ContainerError::Invalid(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                        .into(),
                ));
            }
            if auto_remove {
                return Err(ContainerError::Invalid(
                    "conflicting options: cannot specify both --restart and --rm".into(),
                ));
            }
        }
        "on-failure" => {
            if p.maximum_retry_count < 0 {
                return Err(ContainerError::Invalid(
                    "invalid restart policy: maximum retry count cannot be negative".into(),
                ));
            }
            if auto_remove {
                return Err(ContainerError::Invalid(
                    "conflicting options: cannot specify both --restart and --rm".into(),
                ));
            }
        }
        other => {
            return Err(ContainerError::Invalid(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )));
        }
    }
    Ok(())
}

/// `src:dst[:opts]` of `-v`: a bind (absolute source) or a named volume.
fn parse_bind(spec: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(ContainerError::Invalid(format!(
                "invalid volume specification: '{spec}'"
            )));
        }
    };
    let mut rw = true;
    let mut propagation = String::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => rw = false,
            "rw" => rw = true,
            "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                propagation = o.to_string()
            }
            _ => {
                return Err(ContainerError::Invalid(format!("invalid mode: {o}")));
            }
        }
    }
    if src.starts_with('/') {
        Ok(MountPoint {
            kind: "bind".into(),
            source: src.to_string(),
            destination: dst.to_string(),
            mode: opts.to_string(),
            rw,
            propagation: if propagation.is_empty() {
                "rprivate".into()
            } else {
                propagation
            },
            ..MountPoint::default()
        })
    } else {
        if !names::valid(src) {
            return Err(ContainerError::Invalid(format!(
                "create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        Ok(MountPoint {
            kind: "volume".into(),
            name: src.to_string(),
            destination: dst.to_string(),
            driver: "local".into(),
            mode: if opts.is_empty() {
                "z".into()
            } else {
                opts.to_string()
            },
            rw,
            ..MountPoint::default()
        })
    }
}

/// The host's resolv.conf without loopback name servers (which cannot be
/// reached from a container), or Google's as Docker falls back to.
fn resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let kept: Vec<&str> = host
        .lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver")
                && w.next()
                    .is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .collect();
    let mut text = kept.join("\n");
    if !kept
        .iter()
        .any(|l| l.trim_start().starts_with("nameserver"))
    {
        text.push_str("\nnameserver 8.8.8.8\nnameserver 8.8.4.4");
    }
    text.push('\n');
    text
}

/// Mounts a snapshot's mounts at `target`.
pub(crate) fn mount_rootfs(mounts: &[hafen_snapshot::Mount], target: &Path) -> std::io::Result<()> {
    hafen_shim::rootfs::mount_all(&rootfs_mounts(mounts), target)
}

fn rootfs_mounts(mounts: &[hafen_snapshot::Mount]) -> Vec<hafen_shim::rootfs::RootfsMount> {
    mounts
        .iter()
        .map(|m| hafen_shim::rootfs::RootfsMount {
            kind: m.kind.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        })
        .collect()
}

/// A path inside the root filesystem (symlinks not followed out of it: a
/// best effort for the copy-up source).
fn resolve_in(rootfs: &Path, path: &str) -> Option<PathBuf> {
    let p = rootfs.join(path.trim_start_matches('/'));
    let real = std::fs::canonicalize(&p).ok()?;
    real.starts_with(rootfs).then_some(real)
}

/// The exit code a start failure means (127: not found, 126: cannot run).
fn start_exit_code(text: &str) -> Option<i64> {
    let t = text.to_lowercase();
    if t.contains("no such file") || t.contains("not found") {
        Some(127)
    } else if t.contains("permission denied")
        || t.contains("exec format")
        || t.contains("is a directory")
    {
        Some(126)
    } else {
        None
    }
}

/// Waits until a process is gone (best effort).
fn wait_gone(pid: i32, limit: Duration) {
    let start = std::time::Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && start.elapsed() < limit {
        // Reaps it if it is our child.
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the container is not running; false on timeout.
fn wait_stopped(ctr: &Ctr, limit: Option<Duration>) -> bool {
    let deadline = limit.map(|l| std::time::Instant::now() + l);
    let mut rec = ctr.rec();
    loop {
        if !rec.state.status.is_running() {
            return true;
        }
        // Woken by `Ctr::commit`; the timeout is a safety net.
        let step = match deadline {
            Some(d) => {
                let now = std::time::Instant::now();
                if now >= d {
                    return false;
                }
                (d - now).min(Duration::from_millis(200))
            }
            None => Duration::from_millis(200),
        };
        rec = ctr
            .cond
            .wait_timeout(rec, step)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}
