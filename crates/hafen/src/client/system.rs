//! `hafen version`, `info`, `system df`, `events`.

use std::collections::BTreeMap;

use clap::Args;
use hafen_api::client::{encode, next_chunk};
use hafen_api::filters::{self, Filters};
use hafen_api::models::{Event, ImageSummary, Version};
use hyper::Method;
use serde_json::{Value, json};

use super::format::{self, ListFormat, human_size, short_id, since, tabwrite};
use super::{CliError, Global, Session, out};

/// `--format` only.
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Go template or `json`.
    #[arg(short, long)]
    format: Option<String>,
}

fn client_version(negotiated: &str) -> Value {
    json!({
        "Platform": {"Name": "hafen"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": negotiated,
        "DefaultAPIVersion": hafen_api::version::MAX.to_string(),
        "Os": "linux",
        "Arch": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
    })
}

/// `hafen version`.
pub fn version(g: &Global, a: FormatArgs) -> Result<(), CliError> {
    let s = Session::open(g);
    let (client, server) = match &s {
        Ok(s) => {
            let v: Version = s.rt.block_on(s.client.get_json("/version"))?;
            (client_version(&s.client.api_version().to_string()), Some(v))
        }
        Err(_) => (client_version(&hafen_api::version::MAX.to_string()), None),
    };
    if let Some(f) = a.format.as_deref() {
        let data = json!({"Client": client, "Server": server});
        out(&format!(
            "{}\n",
            format::render_one(f, &data).map_err(|e| {
                let _ = e;
                CliError::Exit(64)
            })?
        ));
        return s.map(|_| ());
    }
    let mut lines = vec![
        "Client: hafen".to_string(),
        format!(" Version:\t{}", client["Version"].as_str().unwrap_or("")),
        {
            let negotiated = client["ApiVersion"].as_str().unwrap_or("");
            let max = hafen_api::version::MAX.to_string();
            if negotiated == max {
                format!(" API version:\t{negotiated}")
            } else {
                format!(" API version:\t{negotiated} (downgraded from {max})")
            }
        },
        format!(" OS/Arch:\tlinux/{}", client["Arch"].as_str().unwrap_or("")),
        String::new(),
    ];
    if let Some(v) = &server {
        lines.push(format!(
            "Server: {}",
            v.platform.get("Name").cloned().unwrap_or_default()
        ));
        for c in &v.components {
            lines.push(format!(" {}:", c.name));
            lines.push(format!("  Version:\t{}", c.version));
            let details = c.details.clone().unwrap_or_default();
            if c.name == "Engine" {
                let get = |k: &str| details.get(k).cloned().unwrap_or_default();
                lines.push(format!(
                    "  API version:\t{} (minimum version {})",
                    get("ApiVersion"),
                    get("MinAPIVersion")
                ));
                lines.push(format!("  OS/Arch:\t{}/{}", get("Os"), get("Arch")));
                lines.push(format!("  Experimental:\t{}", get("Experimental")));
            } else {
                for (k, val) in &details {
                    lines.push(format!("  {k}:\t{val}"));
                }
            }
        }
    }
    out(&tabwrite(&lines, 20, 1));
    s.map(|_| ())
}

/// `hafen info`.
pub fn info(g: &Global, a: FormatArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let info: Value = s.rt.block_on(s.client.get_json("/info"))?;
    if let Some(f) = a.format.as_deref() {
        let text = format::render_one(f, &info).map_err(|_| CliError::Exit(64))?;
        out(&format!("{text}\n"));
        return Ok(());
    }
    let str_of = |k: &str| info[k].as_str().unwrap_or("").to_string();
    let num = |k: &str| info[k].as_i64().unwrap_or(0);
    let mut t = String::new();
    t.push_str(&format!(
        "Client: hafen\n Version:    {}\n Context:    default\n Debug Mode: false\n\n",
        env!("CARGO_PKG_VERSION")
    ));
    t.push_str("Server:\n");
    t.push_str(&format!(" Containers: {}\n", num("Containers")));
    t.push_str(&format!(
        "  Running: {}\n  Paused: {}\n  Stopped: {}\n",
        num("ContainersRunning"),
        num("ContainersPaused"),
        num("ContainersStopped")
    ));
    t.push_str(&format!(" Images: {}\n", num("Images")));
    t.push_str(&format!(" Server Version: {}\n", str_of("ServerVersion")));
    t.push_str(&format!(" Storage Driver: {}\n", str_of("Driver")));
    for pair in info["DriverStatus"].as_array().into_iter().flatten() {
        t.push_str(&format!(
            "  {}: {}\n",
            pair[0].as_str().unwrap_or(""),
            pair[1].as_str().unwrap_or("")
        ));
    }
    t.push_str(&format!(" Logging Driver: {}\n", str_of("LoggingDriver")));
    t.push_str(&format!(" Cgroup Driver: {}\n", str_of("CgroupDriver")));
    t.push_str(&format!(" Cgroup Version: {}\n", str_of("CgroupVersion")));
    t.push_str(" Plugins:\n");
    for k in ["Volume", "Network", "Log"] {
        let list: Vec<&str> = info["Plugins"][k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        t.push_str(&format!("  {k}: {}\n", list.join(" ")));
    }
    t.push_str(" Swarm: inactive\n");
    let runtimes: Vec<String> = info["Runtimes"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    t.push_str(&format!(" Runtimes: {}\n", runtimes.join(" ")));
    t.push_str(&format!(" Default Runtime: {}\n", str_of("DefaultRuntime")));
    t.push_str(" Security Options:\n");
    for o in info["SecurityOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let mut parts = o.split(',');
        let name = parts.next().unwrap_or("").trim_start_matches("name=");
        t.push_str(&format!("  {name}\n"));
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                let mut k = k.to_string();
                if let Some(f) = k.get_mut(0..1) {
                    f.make_ascii_uppercase();
                }
                t.push_str(&format!("   {k}: {v}\n"));
            }
        }
    }
    t.push_str(&format!(" Kernel Version: {}\n", str_of("KernelVersion")));
    t.push_str(&format!(
        " Operating System: {}\n",
        str_of("OperatingSystem")
    ));
    t.push_str(&format!(" OSType: {}\n", str_of("OSType")));
    t.push_str(&format!(" Architecture: {}\n", str_of("Architecture")));
    t.push_str(&format!(" CPUs: {}\n", num("NCPU")));
    t.push_str(&format!(
        " Total Memory: {}\n",
        format::bytes_size(num("MemTotal"))
    ));
    t.push_str(&format!(" Name: {}\n", str_of("Name")));
    t.push_str(&format!(" ID: {}\n", str_of("ID")));
    t.push_str(&format!(" Docker Root Dir: {}\n", str_of("DockerRootDir")));
    t.push_str(&format!(
        " Debug Mode: {}\n",
        info["Debug"].as_bool().unwrap_or(false)
    ));
    t.push_str(" Experimental: false\n");
    t.push_str(" Insecure Registries:\n");
    for c in info["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        t.push_str(&format!("  {c}\n"));
    }
    t.push_str(&format!(
        " Live Restore Enabled: {}\n\n",
        info["LiveRestoreEnabled"].as_bool().unwrap_or(false)
    ));
    out(&t);
    for w in info["Warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        eprintln!("{w}");
    }
    Ok(())
}

/// `hafen system df`.
#[derive(Debug, Args)]
pub struct DfArgs {
    /// Per image.
    #[arg(short, long)]
    verbose: bool,
    /// Go template, `table …` or `json`.
    #[arg(long)]
    format: Option<String>,
}

fn reclaimable(size: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", human_size(size, 4), size * 100 / total)
    } else {
        human_size(size, 4)
    }
}

/// `hafen system df`.
pub fn df(g: &Global, a: DfArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let du: Value = s.rt.block_on(s.client.get_json("/system/df"))?;
    let images: Vec<ImageSummary> =
        serde_json::from_value(du["Images"].clone()).unwrap_or_default();
    let layers = du["LayersSize"].as_i64().unwrap_or(0);
    let active = images.iter().filter(|i| i.containers > 0).count();
    let volumes: Vec<(String, i64, i64)> = du["Volumes"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    let usage = |k: &str| v["UsageData"][k].as_i64().unwrap_or(-1);
                    let name = v["Name"].as_str().unwrap_or_default().to_string();
                    (name, usage("RefCount"), usage("Size"))
                })
                .collect()
        })
        .unwrap_or_default();
    let used: i64 = images
        .iter()
        .filter(|i| i.containers > 0 && i.size >= 0 && i.shared_size >= 0)
        .map(|i| i.size - i.shared_size)
        .sum();
    if a.verbose {
        let mut lines = vec![
            "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS"
                .to_string(),
        ];
        for i in &images {
            let (repo, tag) = i
                .repo_tags
                .first()
                .and_then(|t| t.rsplit_once(':'))
                .map_or(("<none>".to_string(), "<none>".to_string()), |(r, t)| {
                    (r.to_string(), t.to_string())
                });
            lines.push(format!(
                "{repo}\t{tag}\t{}\t{}\t{}\t{}\t{}\t{}",
                short_id(&i.id),
                since(i.created),
                human_size(i.size, 3),
                human_size(i.shared_size, 4),
                human_size(i.size - i.shared_size, 4),
                i.containers
            ));
        }
        let mut t = String::from("Images space usage:\n\n");
        t.push_str(&tabwrite(&lines, 10, 3));
        t.push_str("\nContainers space usage:\n\n");
        t.push_str(&tabwrite(
            &["CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES".into()],
            10,
            3,
        ));
        t.push_str("\nLocal Volumes space usage:\n\n");
        let mut volume_lines = vec!["VOLUME NAME\tLINKS\tSIZE".to_string()];
        for (name, links, size) in &volumes {
            let size = if *size < 0 {
                "N/A".to_string()
            } else {
                human_size(*size, 4)
            };
            volume_lines.push(format!("{name}\t{links}\t{size}"));
        }
        t.push_str(&tabwrite(&volume_lines, 10, 3));
        t.push_str("\nBuild cache usage: 0B\n\n");
        t.push_str(&tabwrite(
            &["CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED".into()],
            10,
            3,
        ));
        out(&t);
        return Ok(());
    }
    let row = |kind: &str, total: usize, active: usize, size: i64, recl: String| {
        BTreeMap::from([
            ("Type".to_string(), kind.to_string()),
            ("TotalCount".to_string(), total.to_string()),
            ("Active".to_string(), active.to_string()),
            ("Size".to_string(), human_size(size, 4)),
            ("Reclaimable".to_string(), recl),
        ])
    };
    let rows = vec![
        row(
            "Images",
            images.len(),
            active,
            layers,
            reclaimable(layers - used, layers),
        ),
        row("Containers", 0, 0, 0, "0B".into()),
        {
            let size: i64 = volumes.iter().map(|v| v.2.max(0)).sum();
            let unused: i64 = volumes
                .iter()
                .filter(|v| v.1 == 0)
                .map(|v| v.2.max(0))
                .sum();
            row(
                "Local Volumes",
                volumes.len(),
                volumes.iter().filter(|v| v.1 > 0).count(),
                size,
                reclaimable(unused, size),
            )
        },
        row("Build Cache", 0, 0, 0, "0B".into()),
    ];
    let headers: BTreeMap<&str, &str> = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ]
    .into_iter()
    .collect();
    out(&ListFormat::new(
        a.format.as_deref(),
        "table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}",
    )
    .render(&rows, &headers)?);
    Ok(())
}

/// `hafen events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Events since (Unix time, RFC 3339 or a duration like `10m`).
    #[arg(long)]
    since: Option<String>,
    /// Events until.
    #[arg(long)]
    until: Option<String>,
    /// `type=image`, `event=tag`, `image=…`, `label=…`.
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Go template or `json`.
    #[arg(long)]
    format: Option<String>,
}

/// A `--since`/`--until` value as the API wants it (`sec.nanos`).
fn time_arg(text: &str) -> Result<String, CliError> {
    if text.parse::<f64>().is_ok() {
        return Ok(text.to_string());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    let d = humantime::parse_duration(text).map_err(|_| {
        CliError::Failed(format!(
            "invalid time {text:?}: use a Unix time, RFC 3339 or a duration (10m)"
        ))
    })?;
    let t = chrono::Utc::now() - chrono::Duration::from_std(d).unwrap_or_default();
    Ok(format!(
        "{}.{:09}",
        t.timestamp(),
        t.timestamp_subsec_nanos()
    ))
}

/// `hafen events`.
pub fn events(g: &Global, a: EventsArgs) -> Result<(), CliError> {
    let mut f = Filters::new();
    for item in &a.filter {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            CliError::Failed(format!(
                "bad format of filter (expected name=value): {item}"
            ))
        })?;
        f.entry(k.to_string()).or_default().push(v.to_string());
    }
    let mut q = Vec::new();
    if let Some(s) = &a.since {
        q.push(format!("since={}", time_arg(s)?));
    }
    if let Some(u) = &a.until {
        q.push(format!("until={}", time_arg(u)?));
    }
    if !f.is_empty() {
        q.push(format!("filters={}", encode(&filters::encode(&f))));
    }
    let s = Session::open(g)?;
    let path = if q.is_empty() {
        "/events".to_string()
    } else {
        format!("/events?{}", q.join("&"))
    };
    let resp =
        s.rt.block_on(
            s.client
                .request(Method::GET, &path, None, hafen_api::client::empty()),
        )?;
    let mut body = resp.into_body();
    let mut pending = Vec::new();
    while let Some(chunk) = s.rt.block_on(next_chunk(&mut body))? {
        pending.extend_from_slice(&chunk);
        let mut stream = serde_json::Deserializer::from_slice(&pending).into_iter::<Value>();
        let mut consumed = 0;
        while let Some(Ok(v)) = stream.next() {
            consumed = stream.byte_offset();
            let e: Event = serde_json::from_value(v.clone()).unwrap_or_default();
            match a.format.as_deref() {
                Some(fmt) => out(&format!(
                    "{}\n",
                    format::render_one(fmt, &v).map_err(|_| CliError::Exit(64))?
                )),
                None => {
                    let when = chrono::DateTime::from_timestamp_nanos(e.time_nano)
                        .format("%Y-%m-%dT%H:%M:%S%.9fZ");
                    let attrs: Vec<String> = e
                        .actor
                        .attributes
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    let attrs = if attrs.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", attrs.join(", "))
                    };
                    out(&format!(
                        "{when} {} {} {}{attrs}\n",
                        e.kind, e.action, e.actor.id
                    ));
                }
            }
        }
        pending.drain(..consumed);
    }
    Ok(())
}
