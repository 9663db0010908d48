//! cgroup v2: one unified hierarchy.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hafen_oci::runtime::LinuxResources;

use super::{
    Cgroup, CgroupError, DeviceRule, Result, compile_bpf_program, mkdir_all, read_file, write_file,
};

/// Creates the directory (and parents) and enables the available controllers
/// in every new ancestor's `cgroup.subtree_control`, so the container's
/// directory offers them.
pub(super) fn create(dir: &Path, controllers: &[String], made: &mut Vec<PathBuf>) -> Result<()> {
    // Find the first ancestor that exists: controllers must be enabled from it
    // down to the container's parent.
    let mut missing = Vec::new();
    let mut cursor = dir;
    while !cursor.exists() {
        missing.push(cursor.to_path_buf());
        match cursor.parent() {
            Some(parent) => cursor = parent,
            None => break,
        }
    }
    let mut parent = cursor.to_path_buf();
    for child in missing.iter().rev() {
        enable_controllers(&parent, controllers);
        mkdir_all(child, made)?;
        parent = child.clone();
    }
    Ok(())
}

/// Enables what `parent` offers of `wanted` for its children. Failures are
/// not fatal: a cgroup with processes of its own cannot delegate domain
/// controllers, and the resource writes will then say what is missing.
fn enable_controllers(parent: &Path, wanted: &[String]) {
    let available = read_file(parent, "cgroup.controllers").unwrap_or_default();
    let enabled = read_file(parent, "cgroup.subtree_control").unwrap_or_default();
    let todo: Vec<String> = available
        .split_whitespace()
        .filter(|c| wanted.iter().any(|w| w == c))
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if todo.is_empty() {
        return;
    }
    if write_file(parent, "cgroup.subtree_control", &todo.join(" ")).is_err() {
        for one in &todo {
            if let Err(e) = write_file(parent, "cgroup.subtree_control", one) {
                tracing::debug!("cannot enable {one} in {}: {e}", parent.display());
            }
        }
    }
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// cgroup v1 `cpu.shares` (2..262144) to v2 `cpu.weight` (1..10000), the
/// conversion runc and the kernel documentation use.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// cgroup v1 `blkio.weight` (10..1000) to v2 `io.weight` (1..10000).
pub(crate) fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).clamp(10, 1000) - 10) * 9999 / 990
}

/// Applies resources to a v2 directory.
pub(super) fn apply(dir: &Path, controllers: &[String], res: &LinuxResources) -> Result<()> {
    let has = |c: &str| controllers.iter().any(|x| x == c);
    let need = |c: &'static str, resource: &'static str| {
        if has(c) {
            Ok(())
        } else {
            Err(CgroupError::ControllerMissing {
                resource,
                controller: c,
            })
        }
    };
    if let Some(mem) = res.memory() {
        if let Some(limit) = mem.limit() {
            need("memory", "memory.limit")?;
            write_file(dir, "memory.max", &max_or(limit))?;
        }
        if let Some(low) = mem.reservation() {
            need("memory", "memory.reservation")?;
            write_file(dir, "memory.low", &max_or(low))?;
        }
        if let Some(swap) = mem.swap() {
            need("memory", "memory.swap")?;
            // The spec's swap is memory+swap; v2 limits swap alone.
            let value = match (swap, mem.limit()) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(limit)) if limit >= 0 => {
                    if s < limit {
                        return Err(CgroupError::Invalid(format!(
                            "memory.swap {s} is below memory.limit {limit}: swap is memory plus swap"
                        )));
                    }
                    (s - limit).to_string()
                }
                (s, _) => s.to_string(),
            };
            write_file(dir, "memory.swap.max", &value)?;
        }
        if mem.disable_oom_killer() == Some(true) {
            tracing::warn!("memory.disableOOMKiller has no cgroup v2 equivalent; ignored");
        }
    }
    if let Some(cpu) = res.cpu() {
        if let Some(shares) = cpu.shares().filter(|&s| s > 0) {
            need("cpu", "cpu.shares")?;
            write_file(dir, "cpu.weight", &shares_to_weight(shares).to_string())?;
        }
        if cpu.quota().is_some() || cpu.period().is_some() {
            need("cpu", "cpu.quota")?;
            let current = read_file(dir, "cpu.max").unwrap_or_else(|_| "max 100000".into());
            let mut parts = current.split_whitespace();
            let old_quota = parts.next().unwrap_or("max").to_string();
            let old_period = parts.next().unwrap_or("100000").to_string();
            let quota = cpu.quota().map_or(old_quota, max_or);
            let period = cpu
                .period()
                .filter(|&p| p > 0)
                .map_or(old_period, |p| p.to_string());
            write_file(dir, "cpu.max", &format!("{quota} {period}"))?;
        }
        if let Some(burst) = cpu.burst() {
            need("cpu", "cpu.burst")?;
            write_file(dir, "cpu.max.burst", &burst.to_string())?;
        }
        if let Some(idle) = cpu.idle() {
            need("cpu", "cpu.idle")?;
            write_file(dir, "cpu.idle", &idle.to_string())?;
        }
        if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            need("cpuset", "cpu.cpus")?;
            write_file(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|c| !c.is_empty()) {
            need("cpuset", "cpu.mems")?;
            write_file(dir, "cpuset.mems", mems)?;
        }
        if cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some() {
            return Err(CgroupError::Invalid(
                "cpu.realtimeRuntime/realtimePeriod are not supported by cgroup v2".into(),
            ));
        }
    }
    if let Some(pids) = res.pids() {
        need("pids", "pids.limit")?;
        let limit = pids.limit();
        write_file(
            dir,
            "pids.max",
            &if limit > 0 {
                limit.to_string()
            } else {
                "max".into()
            },
        )?;
    }
    if let Some(bio) = res.block_io() {
        if let Some(w) = bio.weight() {
            need("io", "blockIO.weight")?;
            if dir.join("io.bfq.weight").exists() {
                write_file(dir, "io.bfq.weight", &w.to_string())?;
            } else {
                write_file(
                    dir,
                    "io.weight",
                    &format!("default {}", blkio_weight_to_io_weight(w)),
                )?;
            }
        }
        for wd in bio.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                need("io", "blockIO.weightDevice")?;
                let line = format!(
                    "{}:{} {}",
                    wd.major(),
                    wd.minor(),
                    blkio_weight_to_io_weight(w)
                );
                write_file(dir, "io.weight", &line)?;
            }
        }
        let throttles = [
            ("rbps", bio.throttle_read_bps_device()),
            ("wbps", bio.throttle_write_bps_device()),
            ("riops", bio.throttle_read_iops_device()),
            ("wiops", bio.throttle_write_iops_device()),
        ];
        for (key, list) in throttles {
            for t in list.iter().flatten() {
                need("io", "blockIO.throttle")?;
                let rate = if t.rate() == 0 {
                    "max".to_string()
                } else {
                    t.rate().to_string()
                };
                write_file(
                    dir,
                    "io.max",
                    &format!("{}:{} {key}={rate}", t.major(), t.minor()),
                )?;
            }
        }
    }
    apply_hugetlb(dir, controllers, res)?;
    if let Some(net) = res.network() {
        if net.class_id().is_some() || net.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            tracing::warn!("linux.resources.network has no cgroup v2 equivalent; ignored");
        }
    }
    apply_unified(dir, res)
}

fn apply_hugetlb(dir: &Path, controllers: &[String], res: &LinuxResources) -> Result<()> {
    let Some(limits) = res.hugepage_limits() else {
        return Ok(());
    };
    if limits.is_empty() {
        return Ok(());
    }
    if !controllers.iter().any(|c| c == "hugetlb") {
        return Err(CgroupError::ControllerMissing {
            resource: "hugepageLimits",
            controller: "hugetlb",
        });
    }
    for h in limits {
        write_file(
            dir,
            &format!("hugetlb.{}.max", h.page_size()),
            &max_or(h.limit()),
        )?;
    }
    Ok(())
}

fn apply_unified(dir: &Path, res: &LinuxResources) -> Result<()> {
    for (key, value) in res.unified().iter().flatten() {
        if key.contains('/') || key.starts_with('.') || !key.contains('.') {
            return Err(CgroupError::Invalid(format!(
                "unified key {key:?} is not a cgroup file"
            )));
        }
        if key.starts_with("cgroup.")
            && !matches!(key.as_str(), "cgroup.max.depth" | "cgroup.max.descendants")
        {
            return Err(CgroupError::Invalid(format!(
                "unified key {key:?} is a cgroup core file hafen manages itself"
            )));
        }
        if !dir.join(key).exists() {
            return Err(CgroupError::Invalid(format!(
                "unified key {key:?}: no such file (is its controller enabled?)"
            )));
        }
        write_file(dir, key, value)?;
    }
    Ok(())
}

/// On a hybrid host, the unified hierarchy drives only what the v1
/// hierarchies lack (typically hugetlb) and the `unified` map.
pub(super) fn apply_hybrid(
    dir: &Path,
    controllers: &[String],
    cg: &Cgroup,
    res: &LinuxResources,
) -> Result<()> {
    if cg.v1_dir("hugetlb").is_none() {
        apply_hugetlb(dir, controllers, res)?;
    }
    apply_unified(dir, res)
}

/// Installs the device rules as an eBPF program on the directory.
pub(super) fn apply_devices(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let program = compile_bpf_program(rules);
    let err = |source| CgroupError::DeviceFilter {
        path: dir.to_path_buf(),
        source,
    };
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| err(e.into()))?;
    crate::sys::attach_device_filter(fd.as_fd(), &program).map_err(err)
}

/// Freezes or thaws through `cgroup.freeze` and waits for `cgroup.events`.
pub(super) fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "1" } else { "0" };
    write_file(dir, "cgroup.freeze", want)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut delay = Duration::from_micros(100);
    loop {
        let events = read_file(dir, "cgroup.events").unwrap_or_default();
        if events.lines().any(|l| l == format!("frozen {want}")) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = write_file(dir, "cgroup.freeze", "0");
            return Err(CgroupError::FreezeTimeout(dir.to_path_buf()));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversions_match_the_kernel_documentation() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
    }

    /// A v2 directory stand-in: cgroup v2 controllers cannot be enabled on
    /// this (hybrid, v1) test host, so the translation of resources to files
    /// is checked against a plain directory.
    #[test]
    fn resources_become_v2_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "memory.max",
            "memory.swap.max",
            "cpu.max",
            "cpu.weight",
            "pids.max",
            "io.weight",
        ] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        std::fs::write(dir.path().join("cpu.max"), "max 100000").unwrap();
        let res: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":104857600,"swap":209715200},
                "cpu":{"shares":1024,"quota":50000},
                "pids":{"limit":32},
                "blockIO":{"weight":500},
                "unified":{"memory.high":"90000000"}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("memory.high"), "").unwrap();
        let controllers: Vec<String> = ["memory", "cpu", "pids", "io"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        apply(dir.path(), &controllers, &res).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("memory.max"), "104857600");
        assert_eq!(read("memory.swap.max"), "104857600");
        assert_eq!(read("cpu.weight"), "39");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("pids.max"), "32");
        assert_eq!(read("io.weight"), "default 4950");
        assert_eq!(read("memory.high"), "90000000");
    }

    #[test]
    fn bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let controllers = vec!["memory".to_string()];
        let res: LinuxResources =
            serde_json::from_str(r#"{"memory":{"limit":200,"swap":100}}"#).unwrap();
        std::fs::write(dir.path().join("memory.max"), "").unwrap();
        assert!(matches!(
            apply(dir.path(), &controllers, &res),
            Err(CgroupError::Invalid(_))
        ));
        let res: LinuxResources =
            serde_json::from_str(r#"{"unified":{"../../etc/passwd":"x"}}"#).unwrap();
        assert!(matches!(
            apply(dir.path(), &controllers, &res),
            Err(CgroupError::Invalid(_))
        ));
        let res: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":5}}"#).unwrap();
        assert!(matches!(
            apply(dir.path(), &controllers, &res),
            Err(CgroupError::ControllerMissing { .. })
        ));
    }
}
