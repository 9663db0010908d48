//! cgroup v1: one hierarchy per controller.

use std::path::Path;
use std::time::{Duration, Instant};

use hafen_oci::runtime::LinuxResources;

use super::{Cgroup, CgroupError, DeviceRule, Result, read_file, write_file};

/// A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and no
/// process can join it until both are set: copy them from the parent,
/// filling in parents the same way.
pub(super) fn init_cpuset(dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let current = read_file(dir, file).unwrap_or_default();
        if !current.is_empty() {
            continue;
        }
        let Some(parent) = dir.parent() else { continue };
        if read_file(parent, file).unwrap_or_default().is_empty() {
            init_cpuset(parent)?;
        }
        let value = read_file(parent, file).map_err(|source| CgroupError::Read {
            path: parent.join(file),
            source,
        })?;
        write_file(dir, file, &value)?;
    }
    Ok(())
}

fn dir<'a>(cg: &'a Cgroup, controller: &'static str, resource: &'static str) -> Result<&'a Path> {
    cg.v1_dir(controller).ok_or(CgroupError::ControllerMissing {
        resource,
        controller,
    })
}

/// `-1` means unlimited.
fn limit_value(v: i64) -> String {
    if v < 0 {
        "-1".to_string()
    } else {
        v.to_string()
    }
}

/// Applies resources to the v1 hierarchies.
pub(super) fn apply(cg: &Cgroup, res: &LinuxResources) -> Result<()> {
    if let Some(mem) = res.memory() {
        let set_any = mem.limit().is_some()
            || mem.reservation().is_some()
            || mem.swap().is_some()
            || mem.swappiness().is_some()
            || mem.disable_oom_killer().is_some()
            || mem.kernel_tcp().is_some();
        if set_any {
            let d = dir(cg, "memory", "memory")?;
            // memory+swap must never be below memory: when growing, raise the
            // combined limit first; when shrinking, lower memory first.
            let swap_file = d.join("memory.memsw.limit_in_bytes");
            let has_swap = swap_file.exists();
            if let Some(swap) = mem.swap().filter(|_| has_swap) {
                let current: i64 = read_file(d, "memory.limit_in_bytes")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(i64::MAX);
                let target = mem.limit().unwrap_or(-1);
                let growing = swap < 0 || target < 0 || target > current || swap > current;
                if growing {
                    write_file(d, "memory.memsw.limit_in_bytes", &limit_value(swap))?;
                    if let Some(limit) = mem.limit() {
                        write_file(d, "memory.limit_in_bytes", &limit_value(limit))?;
                    }
                } else {
                    if let Some(limit) = mem.limit() {
                        write_file(d, "memory.limit_in_bytes", &limit_value(limit))?;
                    }
                    write_file(d, "memory.memsw.limit_in_bytes", &limit_value(swap))?;
                }
            } else if let Some(limit) = mem.limit() {
                write_file(d, "memory.limit_in_bytes", &limit_value(limit))?;
                if limit < 0 && has_swap {
                    write_file(d, "memory.memsw.limit_in_bytes", "-1")?;
                }
            }
            if let Some(r) = mem.reservation() {
                write_file(d, "memory.soft_limit_in_bytes", &limit_value(r))?;
            }
            if let Some(s) = mem.swappiness() {
                if s > 100 {
                    return Err(CgroupError::Invalid(format!(
                        "memory.swappiness {s} is above 100"
                    )));
                }
                write_file(d, "memory.swappiness", &s.to_string())?;
            }
            if let Some(disable) = mem.disable_oom_killer() {
                write_file(d, "memory.oom_control", if disable { "1" } else { "0" })?;
            }
            if let Some(tcp) = mem.kernel_tcp() {
                write_file(d, "memory.kmem.tcp.limit_in_bytes", &limit_value(tcp))?;
            }
        }
    }
    if let Some(cpu) = res.cpu() {
        if let Some(shares) = cpu.shares() {
            write_file(
                dir(cg, "cpu", "cpu.shares")?,
                "cpu.shares",
                &shares.to_string(),
            )?;
        }
        if let Some(period) = cpu.period() {
            write_file(
                dir(cg, "cpu", "cpu.period")?,
                "cpu.cfs_period_us",
                &period.to_string(),
            )?;
        }
        if let Some(quota) = cpu.quota() {
            write_file(
                dir(cg, "cpu", "cpu.quota")?,
                "cpu.cfs_quota_us",
                &limit_value(quota),
            )?;
        }
        if let Some(burst) = cpu.burst() {
            write_file(
                dir(cg, "cpu", "cpu.burst")?,
                "cpu.cfs_burst_us",
                &burst.to_string(),
            )?;
        }
        if let Some(p) = cpu.realtime_period() {
            write_file(
                dir(cg, "cpu", "cpu.realtimePeriod")?,
                "cpu.rt_period_us",
                &p.to_string(),
            )?;
        }
        if let Some(r) = cpu.realtime_runtime() {
            write_file(
                dir(cg, "cpu", "cpu.realtimeRuntime")?,
                "cpu.rt_runtime_us",
                &r.to_string(),
            )?;
        }
        if let Some(idle) = cpu.idle() {
            write_file(dir(cg, "cpu", "cpu.idle")?, "cpu.idle", &idle.to_string())?;
        }
        if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            write_file(dir(cg, "cpuset", "cpu.cpus")?, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|c| !c.is_empty()) {
            write_file(dir(cg, "cpuset", "cpu.mems")?, "cpuset.mems", mems)?;
        }
    }
    if let Some(pids) = res.pids() {
        let limit = pids.limit();
        let value = if limit > 0 {
            limit.to_string()
        } else {
            "max".to_string()
        };
        write_file(dir(cg, "pids", "pids.limit")?, "pids.max", &value)?;
    }
    if let Some(bio) = res.block_io() {
        let uses = bio.weight().is_some()
            || bio.leaf_weight().is_some()
            || bio.weight_device().as_ref().is_some_and(|w| !w.is_empty())
            || [
                bio.throttle_read_bps_device(),
                bio.throttle_write_bps_device(),
                bio.throttle_read_iops_device(),
                bio.throttle_write_iops_device(),
            ]
            .iter()
            .any(|t| t.as_ref().is_some_and(|t| !t.is_empty()));
        if uses {
            let d = dir(cg, "blkio", "blockIO")?;
            // CFQ's blkio.weight is gone from modern kernels; BFQ's is the same knob.
            let weight_file = if d.join("blkio.weight").exists() {
                "blkio.weight"
            } else {
                "blkio.bfq.weight"
            };
            if let Some(w) = bio.weight() {
                write_file(d, weight_file, &w.to_string())?;
            }
            if let Some(w) = bio.leaf_weight() {
                write_file(d, "blkio.leaf_weight", &w.to_string())?;
            }
            let device_file = if d.join("blkio.weight_device").exists() {
                "blkio.weight_device"
            } else {
                "blkio.bfq.weight_device"
            };
            for wd in bio.weight_device().iter().flatten() {
                if let Some(w) = wd.weight() {
                    write_file(
                        d,
                        device_file,
                        &format!("{}:{} {w}", wd.major(), wd.minor()),
                    )?;
                }
                if let Some(w) = wd.leaf_weight() {
                    write_file(
                        d,
                        "blkio.leaf_weight_device",
                        &format!("{}:{} {w}", wd.major(), wd.minor()),
                    )?;
                }
            }
            let throttles = [
                (
                    "blkio.throttle.read_bps_device",
                    bio.throttle_read_bps_device(),
                ),
                (
                    "blkio.throttle.write_bps_device",
                    bio.throttle_write_bps_device(),
                ),
                (
                    "blkio.throttle.read_iops_device",
                    bio.throttle_read_iops_device(),
                ),
                (
                    "blkio.throttle.write_iops_device",
                    bio.throttle_write_iops_device(),
                ),
            ];
            for (file, list) in throttles {
                for t in list.iter().flatten() {
                    write_file(
                        d,
                        file,
                        &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                    )?;
                }
            }
        }
    }
    if let Some(limits) = res.hugepage_limits() {
        if let Some(d) = cg.v1_dir("hugetlb") {
            for h in limits {
                let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
                write_file(d, &file, &limit_value(h.limit()))?;
            }
        } else if !limits.is_empty() && cg.unified.is_none() {
            return Err(CgroupError::ControllerMissing {
                resource: "hugepageLimits",
                controller: "hugetlb",
            });
        }
    }
    if let Some(net) = res.network() {
        if let Some(class) = net.class_id() {
            let d = dir(cg, "net_cls", "network.classID")?;
            write_file(d, "net_cls.classid", &class.to_string())?;
        }
        for p in net.priorities().iter().flatten() {
            let d = dir(cg, "net_prio", "network.priorities")?;
            write_file(
                d,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    Ok(())
}

/// Writes device rules to `devices.deny`/`devices.allow`, in order, after
/// denying everything.
pub(super) fn apply_devices(cg: &Cgroup, rules: &[DeviceRule]) -> Result<()> {
    let Some(d) = cg.v1_dir("devices") else {
        return Ok(());
    };
    // A new cgroup inherits its parent's list (usually "a *:* rwm"): start
    // from nothing allowed.
    write_file(d, "devices.deny", "a")?;
    for rule in rules {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write_file(d, file, &rule.v1_line())?;
    }
    Ok(())
}

/// Freezes or thaws through `freezer.state` and waits for the state to settle.
pub(super) fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut delay = Duration::from_micros(100);
    loop {
        write_file(dir, "freezer.state", want)?;
        if read_file(dir, "freezer.state").is_ok_and(|s| s == want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            // Do not leave a half-frozen cgroup behind.
            let _ = write_file(dir, "freezer.state", "THAWED");
            return Err(CgroupError::FreezeTimeout(dir.to_path_buf()));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}
