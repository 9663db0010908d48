//! `GET /containers/{id}/stats`: a container's cgroup counters in the JSON
//! shape dockerd writes (`ContainerStatsResponse` of the Engine API, as
//! docker 28 fills it on cgroup v1 and v2 hosts).
//!
//! dockerd gets the counters through containerd's cgroups library; the same
//! files are read here (through the runtime's [`Cgroup::stats`] and, for
//! what that does not keep, the cgroup files themselves), and shaped field
//! by field as dockerd does: the v1 memory counters under their v1 names,
//! the v2 ones under theirs, block I/O as `Read`/`Write` entries on v1 and
//! `read`/`write` on v2, a memory limit no larger than the machine's memory.

use std::collections::BTreeMap;
use std::path::Path;

use hafen_runtime::cgroups::{Cgroup, Layout, Stats};
use serde_json::{Map, Value, json};

/// The `memory_stats.stats` keys dockerd reports on cgroup v1 (missing
/// counters are 0).
const V1_MEMORY_KEYS: &[&str] = &[
    "cache",
    "rss",
    "rss_huge",
    "mapped_file",
    "dirty",
    "writeback",
    "pgpgin",
    "pgpgout",
    "pgfault",
    "pgmajfault",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "total_cache",
    "total_rss",
    "total_rss_huge",
    "total_mapped_file",
    "total_dirty",
    "total_writeback",
    "total_pgpgin",
    "total_pgpgout",
    "total_pgfault",
    "total_pgmajfault",
    "total_inactive_anon",
    "total_active_anon",
    "total_inactive_file",
    "total_active_file",
    "total_unevictable",
];

/// The `memory_stats.stats` keys dockerd reports on cgroup v2.
const V2_MEMORY_KEYS: &[&str] = &[
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
];

/// The block I/O lists of `blkio_stats`, with the v1 file each comes from.
const BLKIO_LISTS: &[(&str, &str)] = &[
    ("io_service_bytes_recursive", "io_service_bytes_recursive"),
    ("io_serviced_recursive", "io_serviced_recursive"),
    ("io_queue_recursive", "io_queued_recursive"),
    ("io_service_time_recursive", "io_service_time_recursive"),
    ("io_wait_time_recursive", "io_wait_time_recursive"),
    ("io_merged_recursive", "io_merged_recursive"),
    ("io_time_recursive", "time_recursive"),
    ("sectors_recursive", "sectors_recursive"),
];

/// Linux's clock ticks per second, as dockerd and containerd assume.
const CLOCK_TICKS: u64 = 100;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// One stats sample of a running container, as dockerd writes it.
///
/// `name` is the container's name (a `/` is put in front if it has none);
/// `previous` is the sample before this one, if any (its `read` becomes
/// `preread` and its `cpu_stats` become `precpu_stats`, from which clients
/// compute the CPU percentage; without one they are zero, as in dockerd's
/// one-shot samples). `online_cpus` comes from `/proc/stat` as in dockerd;
/// `num_cpus` is used only if that file cannot be read.
pub fn docker_stats(
    id: &str,
    name: &str,
    cgroup: &Cgroup,
    previous: Option<&Value>,
    num_cpus: u32,
) -> Value {
    let read = go_time_now();
    let v2 = cgroup.layout == Layout::V2;
    let counters = cgroup.stats();
    let (blkio, cpu_usage, throttling, memory, pids) = if v2 {
        let dir = cgroup.unified.as_deref();
        (
            blkio_v2(dir),
            cpu_usage_v2(&counters),
            throttling(&counters),
            memory_v2(dir),
            pids_v2(dir),
        )
    } else {
        (
            blkio_v1(cgroup.v1_dir("blkio")),
            cpu_usage_v1(cgroup),
            throttling(&counters),
            memory_v1(cgroup),
            pids_v1(cgroup),
        )
    };
    let mut cpu_stats = Map::new();
    cpu_stats.insert("cpu_usage".into(), cpu_usage);
    let (system, online) = system_cpu_usage().unwrap_or((0, num_cpus));
    if system != 0 {
        cpu_stats.insert("system_cpu_usage".into(), json!(system));
    }
    if online != 0 {
        cpu_stats.insert("online_cpus".into(), json!(online));
    }
    cpu_stats.insert("throttling_data".into(), throttling);

    let preread = previous
        .and_then(|p| p.get("read"))
        .and_then(Value::as_str)
        .unwrap_or(GO_ZERO_TIME)
        .to_string();
    let precpu = previous
        .and_then(|p| p.get("cpu_stats"))
        .cloned()
        .unwrap_or_else(zero_cpu_stats);

    let mut out = Map::new();
    let name = if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{name}")
    };
    out.insert("name".into(), json!(name));
    out.insert("id".into(), json!(id));
    out.insert("read".into(), json!(read));
    out.insert("preread".into(), json!(preread));
    out.insert("pids_stats".into(), pids);
    out.insert("blkio_stats".into(), blkio);
    out.insert("num_procs".into(), json!(0));
    out.insert("storage_stats".into(), json!({}));
    out.insert("cpu_stats".into(), Value::Object(cpu_stats));
    out.insert("precpu_stats".into(), precpu);
    out.insert("memory_stats".into(), memory);
    Value::Object(out)
}

/// `networks` of a stats sample: the counters of each interface but
/// loopback, from the container's `/proc/<pid>/net/dev`.
pub fn network_counters(net_dev: &str) -> Value {
    let mut out = Map::new();
    for line in net_dev.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let n: Vec<u64> = rest
            .split_whitespace()
            .map(|w| w.parse().unwrap_or(0))
            .collect();
        if n.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({"rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2], "rx_dropped": n[3],
                "tx_bytes": n[8], "tx_packets": n[9], "tx_errors": n[10], "tx_dropped": n[11]}),
        );
    }
    Value::Object(out)
}

/// What dockerd writes for a container that is not running: its name and
/// ID and zero values.
pub fn empty_stats(id: &str, name: &str) -> Value {
    let name = if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{name}")
    };
    let mut blkio = Map::new();
    for (key, _) in BLKIO_LISTS {
        blkio.insert((*key).into(), Value::Null);
    }
    json!({
        "name": name,
        "id": id,
        "read": GO_ZERO_TIME,
        "preread": GO_ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": blkio,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": zero_cpu_stats(),
        "precpu_stats": zero_cpu_stats(),
        "memory_stats": {},
    })
}

/// Go's zero `time.Time` in JSON.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// An all-zero `CPUStats` as Go encodes it (empty fields omitted).
fn zero_cpu_stats() -> Value {
    json!({
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// Now, as Go encodes a UTC `time.Time` (RFC 3339, nanoseconds without
/// trailing zeros).
pub fn go_time_now() -> String {
    go_time(chrono::Utc::now())
}

/// A time as Go's `time.Time` JSON (RFC 3339 with the fraction's trailing
/// zeros cut, `Z` for UTC).
pub fn go_time(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % NANOS_PER_SECOND as u32;
    if nanos == 0 {
        format!("{base}Z")
    } else {
        let frac = format!("{nanos:09}");
        format!("{base}.{}Z", frac.trim_end_matches('0'))
    }
}

/// Reads a cgroup file, trimmed; `None` if it cannot be read.
fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|t| t.trim().to_string())
}

/// A number file; 0 if missing. `max` is `u64::MAX` (containerd's reading).
fn number(dir: Option<&Path>, file: &str) -> u64 {
    match dir.and_then(|d| read(d, file)) {
        Some(t) if t == "max" => u64::MAX,
        Some(t) => t.parse().unwrap_or(0),
        None => 0,
    }
}

/// `key value` lines.
fn key_values(dir: Option<&Path>, file: &str) -> BTreeMap<String, u64> {
    dir.and_then(|d| read(d, file))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// One blkio entry.
fn blkio_entry(major: u64, minor: u64, op: &str, value: u64) -> Value {
    json!({"major": major, "minor": minor, "op": op, "value": value})
}

/// A v1 blkio file: `MAJ:MIN [Op] value` lines (a device-less `Total`
/// line is skipped, as containerd does).
fn parse_blkio_v1(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (dev, op, value) = match fields.as_slice() {
                [dev, op, value] => (*dev, *op, *value),
                [dev, value] => (*dev, "", *value),
                _ => return None,
            };
            let (major, minor) = dev.split_once(':')?;
            Some(blkio_entry(
                major.parse().ok()?,
                minor.parse().ok()?,
                op,
                value.parse().ok()?,
            ))
        })
        .collect()
}

/// `blkio_stats` on v1: the CFQ/BFQ recursive files where the kernel has
/// them, else the throttle ones (as containerd reads them); an empty list is
/// `null`, as Go encodes a nil slice.
fn blkio_v1(dir: Option<&Path>) -> Value {
    let mut out = Map::new();
    for (key, file) in BLKIO_LISTS {
        let mut entries = dir
            .and_then(|d| read(d, &format!("blkio.{file}")))
            .map(|t| parse_blkio_v1(&t))
            .unwrap_or_default();
        if entries.is_empty() {
            entries = dir
                .and_then(|d| read(d, &format!("blkio.throttle.{file}")))
                .map(|t| parse_blkio_v1(&t))
                .unwrap_or_default();
        }
        let value = if entries.is_empty() {
            Value::Null
        } else {
            Value::Array(entries)
        };
        out.insert((*key).into(), value);
    }
    Value::Object(out)
}

/// `blkio_stats` on v2: `io.stat`'s bytes read and written per device, the
/// other lists `null` (dockerd has nothing for them).
fn blkio_v2(dir: Option<&Path>) -> Value {
    let mut bytes = Vec::new();
    for line in dir
        .and_then(|d| read(d, "io.stat"))
        .unwrap_or_default()
        .lines()
    {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        let (mut rbytes, mut wbytes) = (0u64, 0u64);
        for kv in parts {
            match kv.split_once('=') {
                Some(("rbytes", v)) => rbytes = v.parse().unwrap_or(0),
                Some(("wbytes", v)) => wbytes = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        bytes.push(blkio_entry(major, minor, "read", rbytes));
        bytes.push(blkio_entry(major, minor, "write", wbytes));
    }
    let mut out = Map::new();
    for (key, _) in BLKIO_LISTS {
        let value = if *key == "io_service_bytes_recursive" && !bytes.is_empty() {
            Value::Array(std::mem::take(&mut bytes))
        } else {
            Value::Null
        };
        out.insert((*key).into(), value);
    }
    Value::Object(out)
}

/// `cpu_usage` on v1: `cpuacct.usage`, the per-CPU list, and user and
/// system time from `cpuacct.stat` (clock ticks, as containerd reads them).
fn cpu_usage_v1(cgroup: &Cgroup) -> Value {
    let dir = cgroup.v1_dir("cpuacct");
    let percpu: Vec<u64> = dir
        .and_then(|d| read(d, "cpuacct.usage_percpu"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let stat = key_values(dir, "cpuacct.stat");
    let ticks = |k: &str| stat.get(k).copied().unwrap_or(0) * NANOS_PER_SECOND / CLOCK_TICKS;
    let mut usage = Map::new();
    usage.insert("total_usage".into(), json!(number(dir, "cpuacct.usage")));
    if !percpu.is_empty() {
        usage.insert("percpu_usage".into(), json!(percpu));
    }
    usage.insert("usage_in_kernelmode".into(), json!(ticks("system")));
    usage.insert("usage_in_usermode".into(), json!(ticks("user")));
    Value::Object(usage)
}

/// `cpu_usage` on v2 (no per-CPU list).
fn cpu_usage_v2(s: &Stats) -> Value {
    json!({
        "total_usage": s.cpu.usage.total,
        "usage_in_kernelmode": s.cpu.usage.kernel,
        "usage_in_usermode": s.cpu.usage.user,
    })
}

/// `throttling_data` (v1 `cpu.stat`, v2 `cpu.stat`).
fn throttling(s: &Stats) -> Value {
    let t = &s.cpu.throttling;
    json!({
        "periods": t.periods,
        "throttled_periods": t.throttled_periods,
        "throttled_time": t.throttled_time,
    })
}

/// The machine's memory (`MemTotal`), in bytes; 0 if unknown.
fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let rest = l.strip_prefix("MemTotal:")?;
                let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                Some(kb * 1024)
            })
        })
        .unwrap_or(0)
}

/// Caps a limit at the machine's memory, as dockerd does.
fn cap_limit(limit: u64) -> u64 {
    let machine = machine_memory();
    if machine > 0 && limit > machine {
        machine
    } else {
        limit
    }
}

/// Puts the non-zero counters in dockerd's field order (Go omits zeros).
fn memory_object(
    usage: u64,
    max_usage: u64,
    stats: Map<String, Value>,
    failcnt: u64,
    limit: u64,
) -> Value {
    let mut m = Map::new();
    if usage != 0 {
        m.insert("usage".into(), json!(usage));
    }
    if max_usage != 0 {
        m.insert("max_usage".into(), json!(max_usage));
    }
    m.insert("stats".into(), Value::Object(stats));
    if failcnt != 0 {
        m.insert("failcnt".into(), json!(failcnt));
    }
    if limit != 0 {
        m.insert("limit".into(), json!(limit));
    }
    Value::Object(m)
}

/// The fixed key set of `memory_stats.stats`, sorted as Go sorts map keys.
fn memory_map(keys: &[&str], raw: &BTreeMap<String, u64>) -> Map<String, Value> {
    let sorted: BTreeMap<&str, u64> = keys
        .iter()
        .map(|k| (*k, raw.get(*k).copied().unwrap_or(0)))
        .collect();
    sorted
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

fn memory_v1(cgroup: &Cgroup) -> Value {
    let dir = cgroup.v1_dir("memory");
    if dir.is_none() {
        return json!({});
    }
    let raw = key_values(dir, "memory.stat");
    memory_object(
        number(dir, "memory.usage_in_bytes"),
        number(dir, "memory.max_usage_in_bytes"),
        memory_map(V1_MEMORY_KEYS, &raw),
        number(dir, "memory.failcnt"),
        cap_limit(number(dir, "memory.limit_in_bytes")),
    )
}

fn memory_v2(dir: Option<&Path>) -> Value {
    if dir.is_none() {
        return json!({});
    }
    let raw = key_values(dir, "memory.stat");
    let events = key_values(dir, "memory.events");
    memory_object(
        number(dir, "memory.current"),
        0,
        memory_map(V2_MEMORY_KEYS, &raw),
        events.get("oom").copied().unwrap_or(0),
        cap_limit(number(dir, "memory.max")),
    )
}

fn pids_object(current: u64, limit: u64) -> Value {
    let mut m = Map::new();
    if current != 0 {
        m.insert("current".into(), json!(current));
    }
    if limit != 0 {
        m.insert("limit".into(), json!(limit));
    }
    Value::Object(m)
}

/// v1 pids: a `max` limit is 0 (none), as containerd's v1 reading.
fn pids_v1(cgroup: &Cgroup) -> Value {
    let dir = cgroup.v1_dir("pids");
    let limit = match number(dir, "pids.max") {
        u64::MAX => 0,
        n => n,
    };
    pids_object(number(dir, "pids.current"), limit)
}

/// v2 pids: a `max` limit is `u64::MAX`, as containerd's v2 reading.
fn pids_v2(dir: Option<&Path>) -> Value {
    pids_object(number(dir, "pids.current"), number(dir, "pids.max"))
}

/// The host's CPU time (nanoseconds, from the `cpu` line of `/proc/stat`)
/// and its number of online CPUs (the `cpuN` lines), as dockerd reads them.
pub fn system_cpu_usage() -> Option<(u64, u32)> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse_proc_stat(text: &str) -> Option<(u64, u32)> {
    let mut usage = None;
    let mut cpus = 0u32;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            break;
        };
        if rest.starts_with(' ') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.len() < 7 {
                return None;
            }
            let mut ticks = 0u64;
            for f in &fields[..7] {
                ticks = ticks.saturating_add(f.parse::<u64>().ok()?);
            }
            usage = Some(ticks.saturating_mul(NANOS_PER_SECOND) / CLOCK_TICKS);
        } else if rest.starts_with(|c: char| c.is_ascii_digit()) {
            cpus += 1;
        }
    }
    Some((usage?, cpus))
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn proc_stat_in_nanoseconds() {
        let text = "cpu  100 0 50 1000 10 0 5 7 0 0\ncpu0 50 0 25 500 5 0 2 0 0 0\ncpu1 50 0 25 500 5 0 3 0 0 0\nintr 1 2\n";
        // (100+0+50+1000+10+0+5) ticks of 10 ms; steal is not counted.
        assert_eq!(parse_proc_stat(text), Some((11_650_000_000, 2)));
        assert_eq!(parse_proc_stat("cpu  1 2\n"), None);
        let (usage, cpus) = system_cpu_usage().expect("/proc/stat");
        assert!(usage > 0);
        assert!(cpus >= 1);
    }

    #[test]
    fn go_times() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 120_000_000).expect("time");
        assert_eq!(go_time(t), "2023-11-14T22:13:20.12Z");
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        assert_eq!(go_time(t), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn v1_blkio_lines() {
        let e = parse_blkio_v1("8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n");
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0],
            json!({"major": 8, "minor": 0, "op": "Read", "value": 4096})
        );
        let sectors = parse_blkio_v1("8:16 24\n");
        assert_eq!(
            sectors,
            vec![json!({"major": 8, "minor": 16, "op": "", "value": 24})]
        );
    }

    /// A v2 directory with the files the kernel has, as dockerd shapes them.
    #[test]
    fn v2_fields_as_dockerd() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = |f: &str, v: &str| std::fs::write(dir.path().join(f), v).expect("write");
        w(
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n",
        );
        w("memory.current", "8192\n");
        w("memory.max", "max\n");
        w("memory.peak", "9000\n");
        w("memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n");
        w(
            "memory.stat",
            "anon 4096\nfile 4096\ninactive_file 1024\nzswap 5\n",
        );
        w("pids.current", "3\n");
        w("pids.max", "max\n");
        w(
            "io.stat",
            "8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        let cg = Cgroup {
            layout: Layout::V2,
            v1: Vec::new(),
            unified: Some(dir.path().to_path_buf()),
            unified_controllers: Vec::new(),
        };
        let v = docker_stats("abc", "web", &cg, None, 4);
        assert_eq!(v["name"], "/web");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["preread"], GO_ZERO_TIME);
        assert_eq!(v["num_procs"], 0);
        assert_eq!(v["storage_stats"], json!({}));
        assert_eq!(
            v["cpu_stats"]["cpu_usage"],
            json!({"total_usage": 1_500_000, "usage_in_kernelmode": 500_000, "usage_in_usermode": 1_000_000})
        );
        assert_eq!(
            v["cpu_stats"]["throttling_data"],
            json!({"periods": 3, "throttled_periods": 1, "throttled_time": 7000})
        );
        assert!(
            v["cpu_stats"]["system_cpu_usage"]
                .as_u64()
                .is_some_and(|n| n > 0)
        );
        assert!(
            v["cpu_stats"]["online_cpus"]
                .as_u64()
                .is_some_and(|n| n >= 1)
        );
        assert_eq!(v["precpu_stats"], zero_cpu_stats());
        let mem = &v["memory_stats"];
        assert_eq!(mem["usage"], 8192);
        assert!(
            mem.get("max_usage").is_none(),
            "dockerd has no max_usage on v2"
        );
        assert_eq!(mem["failcnt"], 2, "the oom count of memory.events");
        assert_eq!(
            mem["limit"],
            machine_memory(),
            "no limit: the machine's memory"
        );
        let stats = mem["stats"].as_object().expect("stats");
        assert_eq!(stats.len(), V2_MEMORY_KEYS.len());
        assert_eq!(stats["inactive_file"], 1024);
        assert_eq!(stats["slab"], 0);
        assert!(!stats.contains_key("zswap"));
        let keys: Vec<&String> = stats.keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "Go writes map keys sorted");
        assert_eq!(v["pids_stats"], json!({"current": 3, "limit": u64::MAX}));
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"],
            json!([
                {"major": 8, "minor": 0, "op": "read", "value": 512},
                {"major": 8, "minor": 0, "op": "write", "value": 1024},
            ])
        );
        assert_eq!(v["blkio_stats"]["io_serviced_recursive"], Value::Null);
        assert!(v.get("networks").is_none());
        let keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "name",
                "id",
                "read",
                "preread",
                "pids_stats",
                "blkio_stats",
                "num_procs",
                "storage_stats",
                "cpu_stats",
                "precpu_stats",
                "memory_stats"
            ]
        );

        // The next sample carries this one's CPU figures and time.
        w(
            "cpu.stat",
            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
        );
        let next = docker_stats("abc", "/web", &cg, Some(&v), 4);
        assert_eq!(next["name"], "/web");
        assert_eq!(next["preread"], v["read"]);
        assert_eq!(next["precpu_stats"], v["cpu_stats"]);
        assert_eq!(next["cpu_stats"]["cpu_usage"]["total_usage"], 2_500_000);
    }

    #[test]
    fn network_counters_per_interface_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  eth0:    2230      25    1    2    0     0          0         0      648       8    3    4    0     0       0          0\n";
        let v = network_counters(text);
        assert_eq!(
            v,
            json!({"eth0": {"rx_bytes": 2230, "rx_packets": 25, "rx_errors": 1, "rx_dropped": 2,
                "tx_bytes": 648, "tx_packets": 8, "tx_errors": 3, "tx_dropped": 4}})
        );
    }

    #[test]
    fn stopped_container() {
        let v = empty_stats("abc", "web");
        assert_eq!(v["name"], "/web");
        assert_eq!(v["read"], GO_ZERO_TIME);
        assert_eq!(v["memory_stats"], json!({}));
        assert_eq!(v["blkio_stats"]["io_service_bytes_recursive"], Value::Null);
    }

    /// A process in a cgroup of its own (made under this test's cgroup and
    /// removed at the end), working so that every counter moves.
    #[test]
    fn real_cgroup() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let path = format!("hafen-stats-test-{}", std::process::id());
        let cg = Cgroup::for_container(Some(&path), "stats-test", false).expect("cgroup");
        cg.create().expect("create the cgroup");
        let limit: u64 = 256 << 20;
        if let Some(mem) = cg.v1_dir("memory") {
            std::fs::write(mem.join("memory.limit_in_bytes"), limit.to_string()).expect("limit");
        } else if let Some(dir) = cg
            .unified
            .as_deref()
            .filter(|d| d.join("memory.max").exists())
        {
            std::fs::write(dir.join("memory.max"), limit.to_string()).expect("limit");
        }
        let scratch = tempfile::tempdir().expect("tempdir");
        let file = scratch.path().join("data");
        let script = format!(
            "read x; dd if=/dev/zero of={} bs=1M count=8 2>/dev/null; sync; \
             i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done; exec sleep 60",
            file.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let pid = i32::try_from(child.id()).expect("pid");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cg.add_process(pid).expect("join the cgroup");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(b"go\n")
                .expect("start");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("wait for the work");
            assert_eq!(line.trim(), "done");
            let first = docker_stats("id1", "busy", &cg, None, 2);
            let second = docker_stats("id1", "busy", &cg, Some(&first), 2);
            (first, second)
        }));
        let _ = child.kill();
        let _ = child.wait();
        // The cgroup is empty once the child is reaped.
        for _ in 0..100 {
            if cg.destroy().is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!cg.exists(), "the test cgroup is removed");
        let (first, second) = match result {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        };
        let cpu = &first["cpu_stats"]["cpu_usage"];
        assert!(
            cpu["total_usage"].as_u64().is_some_and(|n| n > 10_000_000),
            "{cpu}"
        );
        let user_sys = cpu["usage_in_usermode"].as_u64().unwrap_or(0)
            + cpu["usage_in_kernelmode"].as_u64().unwrap_or(0);
        assert!(user_sys > 0, "{cpu}");
        assert!(
            first["pids_stats"]["current"]
                .as_u64()
                .is_some_and(|n| n >= 1)
        );
        assert_eq!(second["precpu_stats"], first["cpu_stats"]);
        assert_eq!(second["preread"], first["read"]);
        let mem = &first["memory_stats"];
        if cg.layout == Layout::V2 {
            assert!(cpu.get("percpu_usage").is_none());
        } else {
            let percpu = cpu["percpu_usage"].as_array().expect("percpu on v1");
            assert!(!percpu.is_empty());
            assert!(
                mem["max_usage"].as_u64().is_some_and(|n| n >= 8 << 20),
                "{mem}"
            );
            assert!(mem["stats"].get("total_inactive_file").is_some());
        }
        if mem.get("stats").is_some() {
            // 8 MiB written, in the page cache (or tmpfs) of the cgroup.
            assert!(mem["usage"].as_u64().is_some_and(|n| n >= 8 << 20), "{mem}");
            assert_eq!(mem["limit"], limit);
        }

        // On a hybrid host the same cgroup's v2 directory, read as v2.
        if cg.layout == Layout::Hybrid {
            assert!(
                first["blkio_stats"]
                    .get("io_service_bytes_recursive")
                    .is_some()
            );
        }
    }

    /// The v2 reading of a real v2 directory (the unified hierarchy of a
    /// hybrid host has CPU counters but no controllers).
    #[test]
    fn real_unified_directory() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let path = format!("hafen-stats-v2-test-{}", std::process::id());
        let cg = Cgroup::for_container(Some(&path), "stats-v2-test", false).expect("cgroup");
        let Some(unified) = cg.unified.clone() else {
            eprintln!("skipped: no v2 hierarchy");
            return;
        };
        let v2 = Cgroup {
            layout: Layout::V2,
            v1: Vec::new(),
            unified: Some(unified.clone()),
            unified_controllers: Vec::new(),
        };
        v2.create_unified().expect("create");
        let mut child = Command::new("sh")
            .args(["-c", "read x; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done; exec sleep 60"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let pid = i32::try_from(child.id()).expect("pid");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            v2.add_process(pid).expect("join");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(b"go\n")
                .expect("start");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("wait");
            docker_stats("id2", "v2", &v2, None, 1)
        }));
        let _ = child.kill();
        let _ = child.wait();
        for _ in 0..100 {
            if std::fs::remove_dir(&unified).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!unified.exists(), "the test cgroup is removed");
        let v = match result {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        };
        let cpu = &v["cpu_stats"]["cpu_usage"];
        assert!(
            cpu["total_usage"].as_u64().is_some_and(|n| n > 10_000_000),
            "{cpu}"
        );
        assert!(cpu.get("percpu_usage").is_none());
        assert_eq!(v["blkio_stats"]["io_serviced_recursive"], Value::Null);
    }
}
