//! Resource usage counters, in the JSON shape of runc's `events --stats`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{Cgroup, read_file};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// CPU time used.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CpuUsage {
    /// Total CPU time, in nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Per CPU, in nanoseconds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Per CPU in kernel mode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// Per CPU in user mode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// Kernel mode, in nanoseconds.
    pub kernel: u64,
    /// User mode, in nanoseconds.
    pub user: u64,
}

/// CFS throttling.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Throttling {
    /// Enforcement periods.
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the group was throttled.
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Total throttled time, in nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// CPU statistics.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Cpu {
    /// Usage.
    pub usage: CpuUsage,
    /// Throttling.
    pub throttling: Throttling,
}

/// One memory counter set.
#[derive(Debug, Default, Clone, Serialize)]
pub struct MemoryEntry {
    /// The limit (`u64::MAX`-ish means none).
    pub limit: u64,
    /// Current usage.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Highest usage seen.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Memory statistics.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Memory {
    /// Page cache.
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory plus swap (v1) or swap (v2).
    pub swap: MemoryEntry,
    /// Kernel memory.
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers.
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// Every counter of `memory.stat`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Task counts.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Pids {
    /// Tasks in the cgroup.
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// The limit (0: none).
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One block I/O counter.
#[derive(Debug, Default, Clone, Serialize)]
pub struct BlkioEntry {
    /// Device major.
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    /// Device minor.
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard` or `Total`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// The value.
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// Block I/O statistics.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Blkio {
    /// Bytes transferred.
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations.
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// Huge page usage for one page size.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Hugetlb {
    /// Bytes in use.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Highest use.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Allocation failures.
    pub failcnt: u64,
}

/// Everything `events --stats` reports.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    /// CPU.
    pub cpu: Cpu,
    /// Memory.
    pub memory: Memory,
    /// Tasks.
    pub pids: Pids,
    /// Block I/O.
    pub blkio: Blkio,
    /// Huge pages by size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

fn num(dir: &Path, file: &str) -> u64 {
    read_file(dir, file)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `max` or a number.
fn num_or_max(dir: &Path, file: &str) -> u64 {
    match read_file(dir, file) {
        Ok(v) if v == "max" => u64::MAX,
        Ok(v) => v.parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// Parses `key value` lines.
fn key_values(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn list(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// The hugepage sizes the kernel supports, as cgroup file names use them.
fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut sizes: Vec<String> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(match kb {
                kb if kb >= 1 << 20 => format!("{}GB", kb >> 20),
                kb if kb >= 1 << 10 => format!("{}MB", kb >> 10),
                kb => format!("{kb}KB"),
            })
        })
        .collect();
    sizes.sort();
    sizes
}

fn blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let dev = parts.next()?;
            let op = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value,
            })
        })
        .collect()
}

/// Reads the v1 counters.
pub(super) fn read_v1(cg: &Cgroup) -> Stats {
    let mut s = Stats::default();
    if let Some(d) = cg.v1_dir("cpuacct") {
        s.cpu.usage.total = num(d, "cpuacct.usage");
        s.cpu.usage.percpu = list(&read_file(d, "cpuacct.usage_percpu").unwrap_or_default());
        s.cpu.usage.percpu_kernel =
            list(&read_file(d, "cpuacct.usage_percpu_sys").unwrap_or_default());
        s.cpu.usage.percpu_user =
            list(&read_file(d, "cpuacct.usage_percpu_user").unwrap_or_default());
        // Nanoseconds where the kernel has them, else clock ticks.
        if d.join("cpuacct.usage_user").exists() {
            s.cpu.usage.user = num(d, "cpuacct.usage_user");
            s.cpu.usage.kernel = num(d, "cpuacct.usage_sys");
        } else {
            let stat = key_values(&read_file(d, "cpuacct.stat").unwrap_or_default());
            let tick_ns = 1_000_000_000 / crate::sys::clock_ticks();
            s.cpu.usage.user = stat.get("user").copied().unwrap_or(0) * tick_ns;
            s.cpu.usage.kernel = stat.get("system").copied().unwrap_or(0) * tick_ns;
        }
    }
    if let Some(d) = cg.v1_dir("cpu") {
        let stat = key_values(&read_file(d, "cpu.stat").unwrap_or_default());
        s.cpu.throttling.periods = stat.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = stat.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(d) = cg.v1_dir("memory") {
        let entry = |prefix: &str| MemoryEntry {
            limit: num(d, &format!("{prefix}.limit_in_bytes")),
            usage: num(d, &format!("{prefix}.usage_in_bytes")),
            max: num(d, &format!("{prefix}.max_usage_in_bytes")),
            failcnt: num(d, &format!("{prefix}.failcnt")),
        };
        s.memory.usage = entry("memory");
        s.memory.swap = entry("memory.memsw");
        s.memory.kernel = entry("memory.kmem");
        s.memory.kernel_tcp = entry("memory.kmem.tcp");
        s.memory.raw = key_values(&read_file(d, "memory.stat").unwrap_or_default());
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
    }
    if let Some(d) = cg.v1_dir("pids") {
        s.pids.current = num(d, "pids.current");
        s.pids.limit = match num_or_max(d, "pids.max") {
            u64::MAX => 0,
            n => n,
        };
    }
    if let Some(d) = cg.v1_dir("blkio") {
        let pick = |a: &str, b: &str| {
            let text = read_file(d, a).unwrap_or_default();
            if blkio_v1(&text).is_empty() {
                read_file(d, b).unwrap_or_default()
            } else {
                text
            }
        };
        s.blkio.io_service_bytes_recursive = blkio_v1(&pick(
            "blkio.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        ));
        s.blkio.io_serviced_recursive = blkio_v1(&pick(
            "blkio.io_serviced_recursive",
            "blkio.throttle.io_serviced_recursive",
        ));
    }
    let hugetlb_dir = cg.v1_dir("hugetlb");
    for size in hugepage_sizes() {
        if let Some(d) = hugetlb_dir {
            s.hugetlb.insert(
                size.clone(),
                Hugetlb {
                    usage: num(d, &format!("hugetlb.{size}.usage_in_bytes")),
                    max: num(d, &format!("hugetlb.{size}.max_usage_in_bytes")),
                    failcnt: num(d, &format!("hugetlb.{size}.failcnt")),
                },
            );
        } else if let Some(d) = cg.unified.as_deref().filter(|_| cg.unified_has("hugetlb")) {
            s.hugetlb.insert(size.clone(), hugetlb_v2(d, &size));
        }
    }
    s
}

fn hugetlb_v2(d: &Path, size: &str) -> Hugetlb {
    let events = key_values(&read_file(d, &format!("hugetlb.{size}.events")).unwrap_or_default());
    Hugetlb {
        usage: num(d, &format!("hugetlb.{size}.current")),
        max: 0,
        failcnt: events.get("max").copied().unwrap_or(0),
    }
}

/// Reads the v2 counters.
pub(crate) fn read_v2(d: &Path) -> Stats {
    let mut s = Stats::default();
    let cpu = key_values(&read_file(d, "cpu.stat").unwrap_or_default());
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = get(&cpu, "usage_usec") * 1000;
    s.cpu.usage.user = get(&cpu, "user_usec") * 1000;
    s.cpu.usage.kernel = get(&cpu, "system_usec") * 1000;
    s.cpu.throttling.periods = get(&cpu, "nr_periods");
    s.cpu.throttling.throttled_periods = get(&cpu, "nr_throttled");
    s.cpu.throttling.throttled_time = get(&cpu, "throttled_usec") * 1000;
    let events = key_values(&read_file(d, "memory.events").unwrap_or_default());
    s.memory.usage = MemoryEntry {
        limit: num_or_max(d, "memory.max"),
        usage: num(d, "memory.current"),
        max: num(d, "memory.peak"),
        failcnt: get(&events, "max"),
    };
    s.memory.swap = MemoryEntry {
        limit: num_or_max(d, "memory.swap.max"),
        usage: num(d, "memory.swap.current"),
        max: num(d, "memory.swap.peak"),
        failcnt: 0,
    };
    s.memory.raw = key_values(&read_file(d, "memory.stat").unwrap_or_default());
    s.memory.cache = get(&s.memory.raw, "file");
    s.pids.current = num(d, "pids.current");
    s.pids.limit = match num_or_max(d, "pids.max") {
        u64::MAX => 0,
        n => n,
    };
    for line in read_file(d, "io.stat").unwrap_or_default().lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in parts {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    for size in hugepage_sizes() {
        if d.join(format!("hugetlb.{size}.current")).exists() {
            s.hugetlb.insert(size.clone(), hugetlb_v2(d, &size));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines() {
        let entries = blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (entries[0].major, entries[0].minor, entries[0].value),
            (8, 0, 4096)
        );
        assert_eq!(entries[0].op, "Read");
    }

    #[test]
    fn v2_counters_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let w = |f: &str, v: &str| std::fs::write(dir.path().join(f), v).unwrap();
        w(
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\n",
        );
        w("memory.current", "4096\n");
        w("memory.max", "max\n");
        w("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n");
        w("pids.current", "3\n");
        w("pids.max", "max\n");
        w(
            "io.stat",
            "8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        let s = read_v2(dir.path());
        assert_eq!(s.cpu.usage.total, 1_500_000);
        assert_eq!(s.cpu.usage.kernel, 500_000);
        assert_eq!(s.memory.usage.usage, 4096);
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!(s.memory.usage.failcnt, 2);
        assert_eq!(s.pids.current, 3);
        assert_eq!(s.pids.limit, 0);
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["cpu"]["usage"]["total"], 1_500_000);
        assert_eq!(json["memory"]["usage"]["failcnt"], 2);
    }
}
