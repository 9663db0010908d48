//! `hafen network create|ls|inspect|rm|prune|connect|disconnect`, as the
//! docker CLI does them.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use hafen_api::client::{self, encode};
use hafen_api::filters;
use hafen_api::models::{
    Ipam, IpamConfig, Network, NetworkCreate, NetworkCreateResponse, NetworkPruneReport,
};
use hyper::Method;
use serde_json::json;

use super::format::{self, ListFormat};
use super::volumes::{decode, key_values, parse_filters, reindent};
use super::{CliError, Global, Session, out};

/// `hafen network …`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

/// Runs a `hafen network` command.
pub fn run(g: &Global, command: NetworkCommand) -> Result<(), CliError> {
    match command {
        NetworkCommand::Create(a) => create(g, a),
        NetworkCommand::Ls(a) => ls(g, a),
        NetworkCommand::Inspect(a) => inspect(g, a),
        NetworkCommand::Rm(a) => rm(g, a),
        NetworkCommand::Prune(a) => prune(g, a),
        NetworkCommand::Connect(a) => connect(g, a),
        NetworkCommand::Disconnect(a) => disconnect(g, a),
    }
}

/// `hafen network create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network.
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    subnet: Vec<String>,
    /// IPv4 Gateway for the master subnet.
    #[arg(long)]
    gateway: Vec<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long)]
    ip_range: Vec<String>,
    /// Auxiliary IPv4 addresses used by Network driver.
    #[arg(long)]
    aux_address: Vec<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    internal: bool,
    /// Enable manual container attachment.
    #[arg(long)]
    attachable: bool,
    /// Enable or disable IPv6 networking.
    #[arg(long)]
    ipv6: bool,
    /// Set metadata on a network.
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options.
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    /// The network's name.
    name: String,
}

/// `hafen network create`.
pub fn create(g: &Global, a: CreateArgs) -> Result<(), CliError> {
    if a.subnet.len() > 1 || a.gateway.len() > 1 || a.ip_range.len() > 1 {
        return Err(CliError::Failed(
            "hafen's networks have one IPv4 subnet: give --subnet, --gateway and --ip-range once"
                .into(),
        ));
    }
    if (!a.gateway.is_empty() || !a.ip_range.is_empty()) && a.subnet.is_empty() {
        return Err(CliError::Failed(
            "every ip-range or gateway must have a corresponding subnet".into(),
        ));
    }
    let ipam = (!a.subnet.is_empty()).then(|| Ipam {
        driver: "default".into(),
        options: None,
        config: vec![IpamConfig {
            subnet: a.subnet[0].clone(),
            ip_range: a.ip_range.first().cloned().unwrap_or_default(),
            gateway: a.gateway.first().cloned().unwrap_or_default(),
            auxiliary_addresses: (!a.aux_address.is_empty()).then(|| key_values(&a.aux_address)),
        }],
    });
    let request = NetworkCreate {
        name: a.name,
        driver: a.driver,
        internal: a.internal,
        attachable: a.attachable,
        ipam,
        enable_ipv6: a.ipv6.then_some(true),
        options: key_values(&a.opt),
        labels: key_values(&a.label),
        ..Default::default()
    };
    let body = serde_json::to_vec(&request)
        .map_err(|e| CliError::Failed(format!("cannot encode the request: {e}")))?;
    let s = Session::open(g)?;
    let r: NetworkCreateResponse = decode(s.rt.block_on(s.client.call_json(
        Method::POST,
        "/networks/create",
        Some(body),
    ))?)?;
    out(&format!("{}\n", r.id));
    Ok(())
}

/// `hafen network ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display network IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the output.
    #[arg(long)]
    no_trunc: bool,
    /// Go template, `table`, `table TEMPLATE` or `json`.
    #[arg(long)]
    format: Option<String>,
    /// Provide filter values (e.g. `driver=bridge`).
    #[arg(short, long = "filter")]
    filter: Vec<String>,
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

/// The fields docker's templates see for a network.
fn row(n: &Network, trunc: bool) -> BTreeMap<String, String> {
    let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let id = if trunc {
        n.id.chars().take(12).collect()
    } else {
        n.id.clone()
    };
    let created = chrono::DateTime::parse_from_rfc3339(&n.created)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S.%f %z %Z").to_string())
        .unwrap_or_default();
    let mut r = BTreeMap::new();
    r.insert("ID".into(), id);
    r.insert("Name".into(), n.name.clone());
    r.insert("Driver".into(), n.driver.clone());
    r.insert("Scope".into(), n.scope.clone());
    r.insert("IPv4".into(), n.enable_ipv4.to_string());
    r.insert("IPv6".into(), n.enable_ipv6.to_string());
    r.insert("Internal".into(), n.internal.to_string());
    r.insert("Labels".into(), labels.join(","));
    r.insert("CreatedAt".into(), created);
    r
}

/// `hafen network ls`.
pub fn ls(g: &Global, a: LsArgs) -> Result<(), CliError> {
    let f = parse_filters(&a.filter)?;
    let s = Session::open(g)?;
    let path = if f.is_empty() {
        "/networks".to_string()
    } else {
        format!("/networks?filters={}", encode(&filters::encode(&f)))
    };
    let mut list: Vec<Network> = decode(s.rt.block_on(s.client.get_json(&path))?)?;
    list.sort_by(|x, y| x.name.cmp(&y.name));
    let format = match a.format.as_deref().map(str::trim) {
        None | Some("") | Some("table") if a.quiet => "{{.ID}}".to_string(),
        None | Some("") => "table".to_string(),
        Some(f) => f.to_string(),
    };
    let rows: Vec<BTreeMap<String, String>> = list.iter().map(|n| row(n, !a.no_trunc)).collect();
    let headers: BTreeMap<&str, &str> = HEADERS.iter().copied().collect();
    out(&ListFormat::new(
        Some(&format),
        "table {{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}",
    )
    .render(&rows, &headers)?);
    Ok(())
}

/// `hafen network inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Go template or `json`.
    #[arg(short, long)]
    format: Option<String>,
    /// Verbose output (accepted).
    #[arg(short, long)]
    verbose: bool,
    /// The networks.
    #[arg(required = true)]
    networks: Vec<String>,
}

/// `hafen network inspect`.
pub fn inspect(g: &Global, a: InspectArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.networks {
        match s.rt.block_on(
            s.client
                .get_json::<serde_json::Value>(&format!("/networks/{}", encode(name))),
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

/// `hafen network rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist.
    #[arg(short, long)]
    force: bool,
    /// The networks.
    #[arg(required = true)]
    networks: Vec<String>,
}

/// `hafen network rm`.
pub fn rm(g: &Global, a: RmArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let mut errors = Vec::new();
    for name in &a.networks {
        let path = format!("/networks/{}", encode(name));
        match s.rt.block_on(
            s.client
                .request(Method::DELETE, &path, None, client::empty()),
        ) {
            Ok(_) => out(&format!("{name}\n")),
            Err(e) if a.force && e.to_string().contains("not found") => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(errors.join("\n")))
    }
}

/// `hafen network prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. `until=<timestamp>`).
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// `hafen network prune`.
pub fn prune(g: &Global, a: PruneArgs) -> Result<(), CliError> {
    let f = parse_filters(&a.filter)?;
    if !a.force {
        out("WARNING! This will remove all custom networks not used by at least one container.\n");
        if !super::confirm("Are you sure you want to continue?") {
            return Ok(());
        }
    }
    let s = Session::open(g)?;
    let path = if f.is_empty() {
        "/networks/prune".to_string()
    } else {
        format!("/networks/prune?filters={}", encode(&filters::encode(&f)))
    };
    let report: NetworkPruneReport =
        decode(s.rt.block_on(s.client.call_json(Method::POST, &path, None))?)?;
    if let Some(names) = report.networks_deleted.filter(|n| !n.is_empty()) {
        let mut text = String::from("Deleted Networks:\n");
        for n in names {
            text.push_str(&n);
            text.push('\n');
        }
        out(&text);
    }
    Ok(())
}

/// `hafen network connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container.
    #[arg(long)]
    alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address (refused: IPv4 only).
    #[arg(long)]
    ip6: Option<String>,
    /// Add link to another container (legacy; refused).
    #[arg(long)]
    link: Vec<String>,
    /// Driver options for the network.
    #[arg(long)]
    driver_opt: Vec<String>,
    /// The network.
    network: String,
    /// The container.
    container: String,
}

/// `hafen network connect`.
pub fn connect(g: &Global, a: ConnectArgs) -> Result<(), CliError> {
    if !a.link.is_empty() {
        return Err(CliError::Failed(
            "--link is a legacy feature hafen does not have: use a user-defined network, where containers find each other by name".into(),
        ));
    }
    if a.ip6.is_some() {
        return Err(CliError::Failed(
            "hafen's networks are IPv4: --ip6 is not supported".into(),
        ));
    }
    let mut endpoint = json!({});
    if let Some(ip) = a.ip.filter(|i| !i.is_empty()) {
        endpoint["IPAMConfig"] = json!({"IPv4Address": ip});
    }
    if !a.alias.is_empty() {
        endpoint["Aliases"] = json!(a.alias);
    }
    if !a.driver_opt.is_empty() {
        endpoint["DriverOpts"] = json!(key_values(&a.driver_opt));
    }
    let body = json!({"Container": a.container, "EndpointConfig": endpoint});
    let s = Session::open(g)?;
    s.rt.block_on(s.client.request(
        Method::POST,
        &format!("/networks/{}/connect", encode(&a.network)),
        Some("application/json"),
        client::from_reader(std::io::Cursor::new(body.to_string().into_bytes())),
    ))?;
    Ok(())
}

/// `hafen network disconnect`.
#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    force: bool,
    /// The network.
    network: String,
    /// The container.
    container: String,
}

/// `hafen network disconnect`.
pub fn disconnect(g: &Global, a: DisconnectArgs) -> Result<(), CliError> {
    let body = json!({"Container": a.container, "Force": a.force});
    let s = Session::open(g)?;
    s.rt.block_on(s.client.request(
        Method::POST,
        &format!("/networks/{}/disconnect", encode(&a.network)),
        Some("application/json"),
        client::from_reader(std::io::Cursor::new(body.to_string().into_bytes())),
    ))?;
    Ok(())
}
