//! `hafen volume create|ls|inspect|rm|prune`, as the docker CLI does them.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use hafen_api::client::{self, encode};
use hafen_api::filters::{self, Filters};
use hafen_api::models::{Volume, VolumeCreate, VolumeList, VolumePruneReport};
use hyper::Method;

use super::format::{self, ListFormat, human_size};
use super::{CliError, Global, Session, out};

/// `hafen volume …`.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Show volumes in detail.
    Inspect(InspectArgs),
    /// Remove volumes.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes.
    Prune(PruneArgs),
}

/// Runs a `hafen volume` command.
pub fn run(g: &Global, command: VolumeCommand) -> Result<(), CliError> {
    match command {
        VolumeCommand::Create(a) => create(g, a),
        VolumeCommand::Ls(a) => ls(g, a),
        VolumeCommand::Inspect(a) => inspect(g, a),
        VolumeCommand::Rm(a) => rm(g, a),
        VolumeCommand::Prune(a) => prune(g, a),
    }
}

/// Drops `null` members (dockerd writes empty maps and lists as null;
/// the models want them absent).
fn without_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(o) => o
            .into_iter()
            .filter(|(_, x)| !x.is_null())
            .map(|(k, x)| (k, without_nulls(x)))
            .collect(),
        serde_json::Value::Array(a) => a.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

/// A daemon's JSON answer as a model.
pub(super) fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, CliError> {
    serde_json::from_value(without_nulls(v))
        .map_err(|e| CliError::Api(client::ClientError::Decode(e.to_string())))
}

/// `-f key=value` flags, as docker reads them.
pub(super) fn parse_filters(list: &[String]) -> Result<Filters, CliError> {
    let mut f = Filters::new();
    for item in list {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            CliError::Hafen(format!(
                "invalid argument {item:?} for \"-f, --filter\" flag: bad format of filter (expected name=value)"
            ))
        })?;
        f.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    Ok(f)
}

/// `key=value` pairs (a bare `key` has an empty value).
pub(super) fn key_values(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

/// `hafen volume create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The volume driver.
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Driver options (`type=tmpfs`, `device=…`, `o=…`).
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    opt: Vec<String>,
    /// Labels.
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// The name (the same as the argument).
    #[arg(long, hide = true)]
    name: Option<String>,
    /// The name (made up if none).
    volume: Option<String>,
}

/// `hafen volume create`.
pub fn create(g: &Global, a: CreateArgs) -> Result<(), CliError> {
    let name = match (a.volume, a.name) {
        (Some(_), Some(_)) => {
            return Err(CliError::Failed(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
                    .into(),
            ));
        }
        (Some(n), None) | (None, Some(n)) => n,
        (None, None) => String::new(),
    };
    for l in &a.label {
        let key = l.split_once('=').map_or(l.as_str(), |(k, _)| k);
        let key = key.trim_start();
        if key.is_empty() {
            return Err(CliError::Hafen(format!(
                "invalid argument {l:?} for \"--label\" flag: invalid label '{l}': empty name"
            )));
        }
        if key.contains(char::is_whitespace) {
            return Err(CliError::Hafen(format!(
                "invalid argument {l:?} for \"--label\" flag: label '{key}' contains whitespaces"
            )));
        }
    }
    let request = VolumeCreate {
        name,
        driver: a.driver,
        driver_opts: key_values(&a.opt),
        labels: key_values(&a.label),
    };
    let body = serde_json::to_vec(&request)
        .map_err(|e| CliError::Failed(format!("cannot encode the request: {e}")))?;
    let s = Session::open(g)?;
    let v: Volume = decode(s.rt.block_on(s.client.call_json(
        Method::POST,
        "/volumes/create",
        Some(body),
    ))?)?;
    out(&format!("{}\n", v.name));
    Ok(())
}

/// `hafen volume ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only names.
    #[arg(short, long)]
    quiet: bool,
    /// Go template, `table`, `table TEMPLATE`, `json` or `raw`.
    #[arg(long)]
    format: Option<String>,
    /// Filter (`dangling=true`, `driver=`, `label=k[=v]`, `name=`).
    #[arg(short, long = "filter")]
    filter: Vec<String>,
}

const VOLUME_HEADERS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("Group", "GROUP"),
    ("Availability", "AVAILABILITY"),
    ("Status", "STATUS"),
];

/// The fields docker's templates see for a volume.
fn volume_row(v: &Volume) -> BTreeMap<String, String> {
    let labels: Vec<String> = v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
    let mut r = BTreeMap::new();
    r.insert("Name".into(), v.name.clone());
    r.insert("Driver".into(), v.driver.clone());
    r.insert("Scope".into(), v.scope.clone());
    r.insert("Mountpoint".into(), v.mountpoint.clone());
    r.insert("Labels".into(), labels.join(","));
    r.insert(
        "Links".into(),
        v.usage_data
            .as_ref()
            .map_or_else(|| "N/A".into(), |u| u.ref_count.to_string()),
    );
    r.insert(
        "Size".into(),
        v.usage_data
            .as_ref()
            .map_or_else(|| "N/A".into(), |u| human_size(u.size, 4)),
    );
    for k in ["Group", "Availability", "Status"] {
        r.insert(k.into(), "N/A".into());
    }
    r
}

/// Natural order: runs of digits compare as numbers (`v2` < `v10`);
/// digits sort before other characters; with equal numbers, fewer leading
/// zeros first.
pub(super) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        let run = |s: &[u8], start: usize| {
            let zeros = s[start..].iter().take_while(|c| **c == b'0').count();
            let digits = s[start + zeros..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            (zeros, start + zeros, start + zeros + digits)
        };
        let (za, sa, ea) = run(a, i);
        let (zb, sb, eb) = run(b, j);
        let by_value = (ea - sa)
            .cmp(&(eb - sb))
            .then_with(|| a[sa..ea].cmp(&b[sb..eb]))
            .then(za.cmp(&zb));
        if by_value != Ordering::Equal {
            return by_value;
        }
        i = ea;
        j = eb;
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// `hafen volume ls`.
pub fn ls(g: &Global, a: LsArgs) -> Result<(), CliError> {
    let f = parse_filters(&a.filter)?;
    let s = Session::open(g)?;
    let path = if f.is_empty() {
        "/volumes".to_string()
    } else {
        format!("/volumes?filters={}", encode(&filters::encode(&f)))
    };
    let mut list: VolumeList = decode(s.rt.block_on(s.client.get_json(&path))?)?;
    list.volumes.sort_by(|x, y| natural_cmp(&x.name, &y.name));
    let format = match a.format.as_deref().map(str::trim) {
        None | Some("") | Some("table") if a.quiet => "{{.Name}}".to_string(),
        None | Some("") => "table".to_string(),
        Some("raw") if a.quiet => "name: {{.Name}}".to_string(),
        Some("raw") => "name: {{.Name}}\\ndriver: {{.Driver}}\\n".to_string(),
        Some(f) => f.to_string(),
    };
    let rows: Vec<BTreeMap<String, String>> = list.volumes.iter().map(volume_row).collect();
    let headers: BTreeMap<&str, &str> = VOLUME_HEADERS.iter().copied().collect();
    out(&ListFormat::new(Some(&format), "table {{.Driver}}\\t{{.Name}}").render(&rows, &headers)?);
    Ok(())
}

/// `hafen volume inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Go template or `json`.
    #[arg(short, long)]
    format: Option<String>,
    /// The volumes.
    #[arg(required = true)]
    volumes: Vec<String>,
}

/// serde_json indents with 2 spaces; docker with 4.
pub(super) fn reindent(text: &str) -> String {
    text.lines()
        .map(|l| {
            let n = l.len() - l.trim_start_matches(' ').len();
            format!("{}{}", " ".repeat(n * 2), &l[n..])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `hafen volume inspect`.
pub fn inspect(g: &Global, a: InspectArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.volumes {
        match s.rt.block_on(
            s.client
                .get_json::<serde_json::Value>(&format!("/volumes/{}", encode(name))),
        ) {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e.to_string()),
        }
    }
    match a.format.as_deref() {
        None | Some("") => {
            let text = serde_json::to_string_pretty(&found).unwrap_or_else(|_| "[]".into());
            out(&format!("{}\n", reindent(&text)));
        }
        Some("json") => out(&format!(
            "{}\n",
            serde_json::to_string(&found).unwrap_or_default()
        )),
        Some(f) => {
            for v in &found {
                out(&format!(
                    "{}\n",
                    format::render_one(f, v).map_err(|_| CliError::Exit(64))?
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(errors.join("\n")))
    }
}

/// `hafen volume rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// No error for volumes that do not exist.
    #[arg(short, long)]
    force: bool,
    /// The volumes.
    #[arg(required = true)]
    volumes: Vec<String>,
}

/// `hafen volume rm`.
pub fn rm(g: &Global, a: RmArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let mut errors = Vec::new();
    for name in &a.volumes {
        let mut path = format!("/volumes/{}", encode(name));
        if a.force {
            path.push_str("?force=1");
        }
        match s.rt.block_on(
            s.client
                .request(Method::DELETE, &path, None, client::empty()),
        ) {
            Ok(_) => out(&format!("{name}\n")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(errors.join("\n")))
    }
}

/// `hafen volume prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// All unused volumes, not only anonymous ones.
    #[arg(short, long)]
    all: bool,
    /// Do not ask.
    #[arg(short, long)]
    force: bool,
    /// `label=…`, `label!=…`, `all=true`.
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// `hafen volume prune`.
pub fn prune(g: &Global, a: PruneArgs) -> Result<(), CliError> {
    let mut f = parse_filters(&a.filter)?;
    let mut warning =
        "WARNING! This will remove anonymous local volumes not used by at least one container.";
    if a.all {
        if f.contains_key("all") {
            return Err(CliError::Failed(
                "conflicting options: cannot specify both --all and --filter all=1".into(),
            ));
        }
        f.insert("all".into(), vec!["true".into()]);
        warning = "WARNING! This will remove all local volumes not used by at least one container.";
    }
    if !a.force {
        out(&format!("{warning}\n"));
        if !super::confirm("Are you sure you want to continue?") {
            return Ok(());
        }
    }
    let s = Session::open(g)?;
    let path = if f.is_empty() {
        "/volumes/prune".to_string()
    } else {
        format!("/volumes/prune?filters={}", encode(&filters::encode(&f)))
    };
    let report: VolumePruneReport =
        decode(s.rt.block_on(s.client.call_json(Method::POST, &path, None))?)?;
    let mut text = String::new();
    let mut reclaimed = 0;
    if let Some(names) = report.volumes_deleted.filter(|n| !n.is_empty()) {
        text.push_str("Deleted Volumes:\n");
        for n in names {
            text.push_str(&n);
            text.push('\n');
        }
        text.push('\n');
        reclaimed = report.space_reclaimed;
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(i64::try_from(reclaimed).unwrap_or(i64::MAX), 4)
    ));
    out(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_naturally() {
        let mut names = vec!["v10", "v2", "b", "a1", "a01", "a", "v2x", "1", "_x", "A"];
        names.sort_by(|x, y| natural_cmp(x, y));
        assert_eq!(
            names,
            ["1", "A", "_x", "a", "a1", "a01", "b", "v2", "v2x", "v10"]
        );
    }

    #[test]
    fn rows_have_docker_s_fields() {
        let mut v = Volume {
            name: "v1".into(),
            driver: "local".into(),
            scope: "local".into(),
            mountpoint: "/x/_data".into(),
            ..Volume::default()
        };
        v.labels.insert("b".into(), "2".into());
        v.labels.insert("a".into(), String::new());
        let r = volume_row(&v);
        assert_eq!(r["Labels"], "a=,b=2");
        assert_eq!(r["Links"], "N/A");
        assert_eq!(r["Size"], "N/A");
        v.usage_data = Some(hafen_api::models::VolumeUsage {
            size: 1_982_429,
            ref_count: 2,
        });
        let r = volume_row(&v);
        assert_eq!((r["Size"].as_str(), r["Links"].as_str()), ("1.982MB", "2"));
        assert_eq!(
            key_values(&["a=b=c".into(), "flag".into()]),
            BTreeMap::from([("a".into(), "b=c".into()), ("flag".into(), String::new())])
        );
        assert!(parse_filters(&["nofilter".into()]).is_err());
    }
}
