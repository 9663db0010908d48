//! `stats`: the columns the docker CLI (28) computes from a stats sample
//! and how it prints them (`cli/command/container/stats_helpers.go` and
//! `formatter_stats.go`): CPU % from the deltas to the previous sample,
//! memory without the inactive page cache, block I/O summed by operation,
//! sizes in go-units' binary (`7.6GiB`) or decimal (`1.2MB`) form.

use std::collections::BTreeMap;

use serde_json::Value;

/// The default `table` format of `docker stats` on Linux.
pub const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// The column headers by field name, as the docker CLI names them.
pub fn headers() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("ID", "CONTAINER ID"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ])
}

/// One row of `docker stats`: the figures the CLI computes from a sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsRow {
    /// What the user named the container by (empty: set by the caller).
    pub container: String,
    /// The name as the daemon sent it (`/web`).
    pub name: String,
    /// The full ID.
    pub id: String,
    /// CPU use in percent of one CPU (can exceed 100).
    pub cpu_percentage: f64,
    /// Memory used, without the inactive page cache, in bytes.
    pub memory: f64,
    /// The memory limit in bytes.
    pub memory_limit: f64,
    /// `memory` in percent of `memory_limit`.
    pub memory_percentage: f64,
    /// Bytes received over all interfaces.
    pub network_rx: f64,
    /// Bytes sent over all interfaces.
    pub network_tx: f64,
    /// Bytes read from block devices.
    pub block_read: f64,
    /// Bytes written to block devices.
    pub block_write: f64,
    /// The number of processes.
    pub pids_current: u64,
    /// No valid sample (an error or a timeout): every column shows `--`.
    pub invalid: bool,
}

fn u64_at(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The CLI's `calculateCPUPercentUnix`.
fn cpu_percent(v: &Value) -> f64 {
    let previous_cpu = u64_at(v, &["precpu_stats", "cpu_usage", "total_usage"]);
    let previous_system = u64_at(v, &["precpu_stats", "system_cpu_usage"]);
    let cpu_delta =
        u64_at(v, &["cpu_stats", "cpu_usage", "total_usage"]) as f64 - previous_cpu as f64;
    let system_delta =
        u64_at(v, &["cpu_stats", "system_cpu_usage"]) as f64 - previous_system as f64;
    let mut online = u64_at(v, &["cpu_stats", "online_cpus"]) as f64;
    if online == 0.0 {
        online = v
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map_or(0, Vec::len) as f64;
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        (cpu_delta / system_delta) * online * 100.0
    } else {
        0.0
    }
}

/// The CLI's `calculateMemUsageUnixNoCache`: usage less
/// `total_inactive_file` (v1) or `inactive_file` (v2).
fn memory_without_cache(mem: &Value) -> f64 {
    let usage = u64_at(mem, &["usage"]);
    let stats = mem.get("stats");
    if let Some(v) = stats
        .and_then(|s| s.get("total_inactive_file"))
        .and_then(Value::as_u64)
        && v < usage
    {
        return (usage - v) as f64;
    }
    let inactive = stats
        .and_then(|s| s.get("inactive_file"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if inactive < usage {
        (usage - inactive) as f64
    } else {
        usage as f64
    }
}

/// The CLI's `calculateBlockIO`: bytes by the first letter of the op.
fn block_io(v: &Value) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    let entries = v
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array);
    for e in entries.into_iter().flatten() {
        let op = e.get("op").and_then(Value::as_str).unwrap_or("");
        let value = e.get("value").and_then(Value::as_u64).unwrap_or(0);
        match op.as_bytes().first() {
            Some(b'r' | b'R') => read = read.wrapping_add(value),
            Some(b'w' | b'W') => write = write.wrapping_add(value),
            _ => {}
        }
    }
    (read, write)
}

/// The CLI's `calculateNetwork`.
fn network(v: &Value) -> (f64, f64) {
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = v.get("networks").and_then(Value::as_object) {
        for n in nets.values() {
            rx += u64_at(n, &["rx_bytes"]) as f64;
            tx += u64_at(n, &["tx_bytes"]) as f64;
        }
    }
    (rx, tx)
}

/// The figures of one stats sample (a `ContainerStatsResponse`), as the
/// docker CLI computes them on Linux.
pub fn stats_row(v: &Value) -> StatsRow {
    let memory = memory_without_cache(v.get("memory_stats").unwrap_or(&Value::Null));
    let memory_limit = u64_at(v, &["memory_stats", "limit"]) as f64;
    let memory_percentage = if memory_limit != 0.0 {
        memory / memory_limit * 100.0
    } else {
        0.0
    };
    let (block_read, block_write) = block_io(v);
    let (network_rx, network_tx) = network(v);
    StatsRow {
        container: String::new(),
        name: v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        id: v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        cpu_percentage: cpu_percent(v),
        memory,
        memory_limit,
        memory_percentage,
        network_rx,
        network_tx,
        block_read: block_read as f64,
        block_write: block_write as f64,
        pids_current: u64_at(v, &["pids_stats", "current"]),
        invalid: false,
    }
}

const NO_VALUE: &str = "--";

impl StatsRow {
    /// `NAME`: the name without its first character (the `/`), `--` if
    /// there is none.
    pub fn name_column(&self) -> String {
        let mut chars = self.name.chars();
        match (chars.next(), chars.as_str()) {
            (Some(_), rest) if !rest.is_empty() => rest.to_string(),
            _ => NO_VALUE.into(),
        }
    }

    /// `CONTAINER ID`: 12 hex digits unless `no_trunc`.
    pub fn id_column(&self, no_trunc: bool) -> String {
        if no_trunc {
            return self.id.clone();
        }
        let id = self.id.split_once(':').map_or(self.id.as_str(), |(_, h)| h);
        id.chars().take(12).collect()
    }

    /// `CPU %` (`0.00%`).
    pub fn cpu_perc(&self) -> String {
        if self.invalid {
            return NO_VALUE.into();
        }
        percentage(self.cpu_percentage)
    }

    /// `MEM USAGE / LIMIT` (`1.5MiB / 7.6GiB`).
    pub fn mem_usage(&self) -> String {
        if self.invalid {
            return "-- / --".into();
        }
        format!(
            "{} / {}",
            bytes_size(self.memory),
            bytes_size(self.memory_limit)
        )
    }

    /// `MEM %`.
    pub fn mem_perc(&self) -> String {
        if self.invalid {
            return NO_VALUE.into();
        }
        percentage(self.memory_percentage)
    }

    /// `NET I/O` (`0B / 0B`, `1.2kB / 648B`).
    pub fn net_io(&self) -> String {
        if self.invalid {
            return NO_VALUE.into();
        }
        format!(
            "{} / {}",
            human_size_with_precision(self.network_rx, 3),
            human_size_with_precision(self.network_tx, 3)
        )
    }

    /// `BLOCK I/O`.
    pub fn block_io(&self) -> String {
        if self.invalid {
            return NO_VALUE.into();
        }
        format!(
            "{} / {}",
            human_size_with_precision(self.block_read, 3),
            human_size_with_precision(self.block_write, 3)
        )
    }

    /// `PIDS`.
    pub fn pids(&self) -> String {
        if self.invalid {
            return NO_VALUE.into();
        }
        self.pids_current.to_string()
    }

    /// Every field by its template name (`{{.CPUPerc}}`), for `--format`
    /// (and `--format json`, whose keys these are).
    pub fn fields(&self, no_trunc: bool) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("Container".to_string(), self.container.clone()),
            ("Name".to_string(), self.name_column()),
            ("ID".to_string(), self.id_column(no_trunc)),
            ("CPUPerc".to_string(), self.cpu_perc()),
            ("MemUsage".to_string(), self.mem_usage()),
            ("MemPerc".to_string(), self.mem_perc()),
            ("NetIO".to_string(), self.net_io()),
            ("BlockIO".to_string(), self.block_io()),
            ("PIDs".to_string(), self.pids()),
        ])
    }
}

/// Go's `strconv.FormatFloat(v, 'f', 2, 64) + "%"`.
fn percentage(v: f64) -> String {
    format!("{v:.2}%")
}

/// go-units' `BytesSize`: `%.4g` of the size in the largest binary unit
/// that keeps it at least 1 (`1.5MiB`, `7.629GiB`, `0B`).
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let (v, unit) = scale(size, 1024.0, &UNITS);
    format!("{}{unit}", go_g(v, 4))
}

/// go-units' `HumanSizeWithPrecision`: `%.<precision>g` in decimal units
/// (`1.2kB`, `648B`, `1e+03kB` as Go prints 999.5 kB with 3 digits).
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let (v, unit) = scale(size, 1000.0, &UNITS);
    format!("{}{unit}", go_g(v, precision))
}

fn scale<'a>(mut size: f64, base: f64, units: &[&'a str]) -> (f64, &'a str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// Go's `fmt.Sprintf("%.<precision>g", v)`: `precision` significant
/// digits, trailing zeros removed, the exponent form when the exponent is
/// below -4 or at least `precision` (`1e+03`).
pub fn go_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let precision = precision.max(1);
    // Rounded to `precision` digits: the mantissa and the exponent.
    let sci = format!("{:.*e}", precision - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let p = i64::try_from(precision).unwrap_or(i64::MAX);
    if exp < -4 || exp >= p {
        let mantissa = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = usize::try_from((p - 1 - exp).max(0)).unwrap_or(0);
        trim_fraction(&format!("{v:.decimals$}")).to_string()
    }
}

/// `1.500` → `1.5`, `2.000` → `2`; a number without a fraction as is.
fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn go_g_as_go() {
        // Values checked against Go's fmt.Sprintf("%.Ng", v).
        assert_eq!(go_g(0.0, 3), "0");
        assert_eq!(go_g(648.0, 3), "648");
        assert_eq!(go_g(1.2345, 3), "1.23");
        assert_eq!(go_g(12.0, 3), "12");
        assert_eq!(go_g(100.0, 3), "100");
        assert_eq!(go_g(999.5, 3), "1e+03");
        assert_eq!(go_g(999.4, 3), "999");
        assert_eq!(go_g(1.5, 4), "1.5");
        assert_eq!(go_g(7.62939453125, 4), "7.629");
        assert_eq!(go_g(1023.99, 4), "1024");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
        assert_eq!(go_g(0.0001234, 3), "0.000123");
        assert_eq!(go_g(123456.0, 3), "1.23e+05");
    }

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(1_572_864.0), "1.5MiB");
        assert_eq!(bytes_size(8_192_000_000.0), "7.629GiB");
        assert_eq!(bytes_size(1023.0), "1023B");
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(human_size_with_precision(0.0, 3), "0B");
        assert_eq!(human_size_with_precision(648.0, 3), "648B");
        assert_eq!(human_size_with_precision(1234.0, 3), "1.23kB");
        assert_eq!(human_size_with_precision(999_500.0, 3), "1e+03kB");
        assert_eq!(human_size_with_precision(4_096_000.0, 3), "4.1MB");
    }

    #[test]
    fn percentages_round_as_go() {
        assert_eq!(percentage(0.0), "0.00%");
        assert_eq!(percentage(12.345_678), "12.35%");
        assert_eq!(percentage(150.0), "150.00%");
        // Exactly halfway in binary: Go rounds to even.
        assert_eq!(percentage(0.125), "0.12%");
        assert_eq!(percentage(0.375), "0.38%");
    }

    fn sample_v1() -> Value {
        json!({
            "name": "/web",
            "id": "0123456789abcdef0123",
            "read": "2024-01-01T00:00:01Z",
            "pids_stats": {"current": 3},
            "blkio_stats": {
                "io_service_bytes_recursive": [
                    {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                    {"major": 8, "minor": 0, "op": "Write", "value": 1_500_000},
                    {"major": 8, "minor": 0, "op": "Sync", "value": 99},
                    {"major": 8, "minor": 0, "op": "Total", "value": 1_504_096},
                ],
                "io_serviced_recursive": null
            },
            "cpu_stats": {
                "cpu_usage": {"total_usage": 300_000_000u64, "percpu_usage": [1, 2], "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "system_cpu_usage": 4_000_000_000u64,
                "online_cpus": 2,
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
            },
            "precpu_stats": {
                "cpu_usage": {"total_usage": 100_000_000u64, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "system_cpu_usage": 2_000_000_000u64,
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
            },
            "memory_stats": {
                "usage": 10_485_760,
                "stats": {"total_inactive_file": 2_097_152, "inactive_file": 1},
                "limit": 8_192_000_000u64
            },
            "networks": {
                "eth0": {"rx_bytes": 1234, "tx_bytes": 648},
                "eth1": {"rx_bytes": 1000, "tx_bytes": 0}
            }
        })
    }

    #[test]
    fn a_v1_sample() {
        let row = stats_row(&sample_v1());
        // 0.2 s of 2 s of both CPUs: 10% of one CPU, times 2 CPUs.
        assert_eq!(row.cpu_perc(), "20.00%");
        // 10 MiB less 2 MiB of inactive page cache.
        assert_eq!(row.memory, 8_388_608.0);
        assert_eq!(row.mem_usage(), "8MiB / 7.629GiB");
        assert_eq!(row.mem_perc(), "0.10%");
        assert_eq!(row.net_io(), "2.23kB / 648B");
        assert_eq!(row.block_io(), "4.1kB / 1.5MB");
        assert_eq!(row.pids(), "3");
        assert_eq!(row.name_column(), "web");
        assert_eq!(row.id_column(false), "0123456789ab");
        assert_eq!(row.id_column(true), "0123456789abcdef0123");
        let fields = row.fields(false);
        assert_eq!(fields["CPUPerc"], "20.00%");
        assert_eq!(fields["PIDs"], "3");
        assert_eq!(fields.len(), headers().len());
    }

    #[test]
    fn a_v2_sample_and_edge_cases() {
        let mut v = sample_v1();
        v["memory_stats"] =
            json!({"usage": 4096, "stats": {"inactive_file": 1024}, "limit": 1_000_000});
        v["cpu_stats"]["online_cpus"] = json!(0);
        v["blkio_stats"]["io_service_bytes_recursive"] = json!([
            {"major": 8, "minor": 0, "op": "read", "value": 10},
            {"major": 8, "minor": 0, "op": "write", "value": 20},
            {"major": 8, "minor": 0, "op": "", "value": 30},
        ]);
        v.as_object_mut().expect("object").remove("networks");
        let row = stats_row(&v);
        assert_eq!(row.memory, 3072.0);
        assert_eq!(row.mem_usage(), "3KiB / 976.6KiB");
        // No online_cpus: the length of percpu_usage (2).
        assert_eq!(row.cpu_perc(), "20.00%");
        assert_eq!(row.block_io(), "10B / 20B");
        assert_eq!(row.net_io(), "0B / 0B");

        // v1 with a total_inactive_file at least the usage: the v2 rule.
        let mem = json!({"usage": 100, "stats": {"total_inactive_file": 200, "inactive_file": 40}});
        assert_eq!(memory_without_cache(&mem), 60.0);

        // A first sample without a previous one, and a stopped container.
        let empty = json!({"name": "/x", "id": "abc", "memory_stats": {}, "cpu_stats": {}, "precpu_stats": {}});
        let row = stats_row(&empty);
        assert_eq!(row.cpu_perc(), "0.00%");
        assert_eq!(row.mem_usage(), "0B / 0B");
        assert_eq!(row.mem_perc(), "0.00%");
        assert_eq!(row.pids(), "0");
        let nameless = stats_row(&json!({"name": "/"}));
        assert_eq!(nameless.name_column(), "--");

        let invalid = StatsRow {
            invalid: true,
            ..row
        };
        assert_eq!(invalid.cpu_perc(), "--");
        assert_eq!(invalid.mem_usage(), "-- / --");
        assert_eq!(invalid.pids(), "--");
    }
}
