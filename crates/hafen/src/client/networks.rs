//! `hafen network create|ls|inspect|rm|prune|connect|disconnect`, as the
//! docker CLI does them.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use hafen_api::client::{self, ClientError, encode};
use hafen_api::filters;
use hafen_api::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, Network, NetworkConnect, NetworkCreate,
    NetworkCreateResponse, NetworkDisconnect, NetworkPruneReport,
};
use hyper::Method;

use super::format::{self, ListFormat};
use super::volumes::{decode, key_values, natural_cmp, parse_filters, reindent};
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

/// docker's `ValidateLabel`: a label needs a name without white space.
fn parse_label(value: &str) -> Result<String, String> {
    let key = value.split_once('=').map_or(value, |(k, _)| k);
    let key = key.trim_start_matches([' ', '\t', '\n', '\u{b}', '\u{c}', '\r']);
    if key.is_empty() {
        return Err(format!("invalid label '{value}': empty name"));
    }
    if key.contains(char::is_whitespace) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(value.to_string())
}

/// `hafen network create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network.
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Set driver specific options.
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    opt: Vec<String>,
    /// Set metadata on a network.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
    label: Vec<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    internal: bool,
    /// Enable or disable IPv4 address assignment.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    ipv4: Option<bool>,
    /// Enable or disable IPv6 address assignment (hafen's networks are
    /// IPv4: the daemon refuses it).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    ipv6: Option<bool>,
    /// Enable manual container attachment.
    #[arg(long)]
    attachable: bool,
    /// Create swarm routing-mesh network (refused by the daemon).
    #[arg(long)]
    ingress: bool,
    /// Control the network's scope.
    #[arg(long, default_value = "")]
    scope: String,
    /// Create a configuration only network (refused by the daemon).
    #[arg(long)]
    config_only: bool,
    /// The network from which to copy the configuration (not supported).
    #[arg(long, default_value = "")]
    config_from: String,
    /// IP Address Management Driver.
    #[arg(long, default_value = "default")]
    ipam_driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long, value_delimiter = ',')]
    subnet: Vec<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long, value_delimiter = ',')]
    ip_range: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet.
    #[arg(long, value_delimiter = ',')]
    gateway: Vec<String>,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver (refused
    /// by the daemon).
    #[arg(long, value_name = "NAME=IP")]
    aux_address: Vec<String>,
    /// Set IPAM driver specific options.
    #[arg(long, value_name = "KEY=VALUE")]
    ipam_opt: Vec<String>,
    /// The network's name.
    name: String,
}

/// The request `network create` sends, as the docker CLI builds it.
fn create_request(a: &CreateArgs) -> Result<NetworkCreate, CliError> {
    if a.subnet.len() < a.ip_range.len() || a.subnet.len() < a.gateway.len() {
        return Err(CliError::Failed(
            "every ip-range or gateway must have a corresponding subnet".into(),
        ));
    }
    if a.subnet.len() > 1 || a.gateway.len() > 1 || a.ip_range.len() > 1 {
        return Err(CliError::Failed(
            "hafen's networks have one IPv4 subnet: give --subnet, --gateway and --ip-range once"
                .into(),
        ));
    }
    if a.ipam_driver != "default" {
        return Err(CliError::Failed(format!(
            "IPAM driver {:?} is not supported: hafen has only the default one",
            a.ipam_driver
        )));
    }
    if !a.config_from.is_empty() {
        return Err(CliError::Failed(
            "--config-from is a swarm feature hafen does not have".into(),
        ));
    }
    if !a.aux_address.is_empty() && a.subnet.is_empty() {
        return Err(CliError::Failed(
            "no matching subnet for aux-address".into(),
        ));
    }
    let config = a
        .subnet
        .first()
        .map(|subnet| IpamConfig {
            subnet: subnet.clone(),
            ip_range: a.ip_range.first().cloned().unwrap_or_default(),
            gateway: a.gateway.first().cloned().unwrap_or_default(),
            auxiliary_addresses: (!a.aux_address.is_empty()).then(|| key_values(&a.aux_address)),
        })
        .into_iter()
        .collect();
    Ok(NetworkCreate {
        name: a.name.clone(),
        driver: a.driver.clone(),
        scope: a.scope.clone(),
        internal: a.internal,
        attachable: a.attachable,
        ingress: a.ingress,
        config_only: a.config_only,
        ipam: Some(Ipam {
            driver: a.ipam_driver.clone(),
            options: Some(key_values(&a.ipam_opt)),
            config,
        }),
        enable_ipv4: a.ipv4,
        enable_ipv6: a.ipv6,
        options: key_values(&a.opt),
        labels: key_values(&a.label),
        ..Default::default()
    })
}

fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>, CliError> {
    serde_json::to_vec(value)
        .map_err(|e| CliError::Failed(format!("cannot encode the request: {e}")))
}

/// `hafen network create`: prints the new network's ID.
pub fn create(g: &Global, a: CreateArgs) -> Result<(), CliError> {
    let body = to_json(&create_request(&a)?)?;
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
    /// Go template, `table`, `table TEMPLATE`, `json` or `raw`.
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

const DEFAULT_TABLE: &str = "table {{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}";

/// Go's `time.Time.String()` of an RFC 3339 time:
/// `2025-06-01 10:00:00.123456789 +0000 UTC` (fraction without trailing
/// zeros; a zone without a name shows its offset).
fn go_time_string(rfc3339: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
        return String::new();
    };
    let mut text = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos > 0 {
        text.push('.');
        text.push_str(format!("{nanos:09}").trim_end_matches('0'));
    }
    let offset = t.format("%z").to_string();
    let zone = if t.offset().local_minus_utc() == 0 {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!("{text} {offset} {zone}")
}

/// The fields docker's templates see for a network.
fn row(n: &Network, trunc: bool) -> BTreeMap<String, String> {
    let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let id = if trunc {
        n.id.chars().take(12).collect()
    } else {
        n.id.clone()
    };
    let mut r = BTreeMap::new();
    r.insert("ID".into(), id);
    r.insert("Name".into(), n.name.clone());
    r.insert("Driver".into(), n.driver.clone());
    r.insert("Scope".into(), n.scope.clone());
    r.insert("IPv4".into(), n.enable_ipv4.to_string());
    r.insert("IPv6".into(), n.enable_ipv6.to_string());
    r.insert("Internal".into(), n.internal.to_string());
    r.insert("Labels".into(), labels.join(","));
    r.insert("CreatedAt".into(), go_time_string(&n.created));
    r
}

/// `network ls` output for these networks (sorted here).
fn render_list(
    mut list: Vec<Network>,
    format: Option<&str>,
    quiet: bool,
    no_trunc: bool,
) -> Result<String, CliError> {
    list.sort_by(|x, y| natural_cmp(&x.name, &y.name));
    let format = match format.map(str::trim) {
        None | Some("") | Some("table") if quiet => "{{.ID}}".to_string(),
        None | Some("") => "table".to_string(),
        Some("raw") if quiet => "network_id: {{.ID}}".to_string(),
        Some("raw") => {
            "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
                .to_string()
        }
        Some(f) => f.to_string(),
    };
    let rows: Vec<BTreeMap<String, String>> = list.iter().map(|n| row(n, !no_trunc)).collect();
    let headers: BTreeMap<&str, &str> = HEADERS.iter().copied().collect();
    Ok(ListFormat::new(Some(&format), DEFAULT_TABLE).render(&rows, &headers)?)
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
    let list: Vec<Network> = decode(s.rt.block_on(s.client.get_json(&path))?)?;
    out(&render_list(
        list,
        a.format.as_deref(),
        a.quiet,
        a.no_trunc,
    )?);
    Ok(())
}

/// `hafen network inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Go template or `json`.
    #[arg(short, long)]
    format: Option<String>,
    /// Verbose output for diagnostics (accepted; nothing more to show).
    #[arg(short, long)]
    verbose: bool,
    /// The networks.
    #[arg(required = true)]
    networks: Vec<String>,
}

/// `hafen network inspect`: a JSON array of what was found; the errors
/// of what was not, exit 1.
pub fn inspect(g: &Global, a: InspectArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.networks {
        let mut path = format!("/networks/{}", encode(name));
        if a.verbose {
            path.push_str("?verbose=true");
        }
        match s.rt.block_on(s.client.get_json::<serde_json::Value>(&path)) {
            Ok(v) => found.push(v),
            Err(e @ ClientError::Api { .. }) => errors.push(e.to_string()),
            Err(e) => return Err(e.into()),
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
                let text = format::render_one(f, v).map_err(|e| {
                    eprintln!("{e}");
                    CliError::Exit(64)
                })?;
                out(&format!("{text}\n"));
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

/// `hafen network rm`: prints each name removed, each error as it comes
/// (docker 28 then ends with `exit status 1`).
pub fn rm(g: &Global, a: RmArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let mut failed = false;
    for name in &a.networks {
        let path = format!("/networks/{}", encode(name));
        match s.rt.block_on(
            s.client
                .request(Method::DELETE, &path, None, client::empty()),
        ) {
            Ok(_) => out(&format!("{name}\n")),
            Err(ClientError::Api { status: 404, .. }) if a.force => {}
            Err(e @ ClientError::Api { .. }) => {
                eprintln!("{e}");
                failed = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if failed {
        Err(CliError::Failed("exit status 1".into()))
    } else {
        Ok(())
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

/// What `network prune` prints for a report (docker adds a blank line).
fn prune_text(report: NetworkPruneReport) -> String {
    let mut text = String::new();
    if let Some(names) = report.networks_deleted.filter(|n| !n.is_empty()) {
        text.push_str("Deleted Networks:\n");
        for n in names {
            text.push_str(&n);
            text.push('\n');
        }
        text.push('\n');
    }
    text
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
    out(&prune_text(report));
    Ok(())
}

/// `hafen network connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// IPv4 address (e.g., "172.30.100.104").
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address (refused: hafen's networks are IPv4).
    #[arg(long)]
    ip6: Option<String>,
    /// Add link to another container (legacy; refused).
    #[arg(long)]
    link: Vec<String>,
    /// Add network-scoped alias for the container.
    #[arg(long, value_delimiter = ',')]
    alias: Vec<String>,
    /// Add a link-local address for the container.
    #[arg(long, value_delimiter = ',')]
    link_local_ip: Vec<String>,
    /// Driver options for the network.
    #[arg(long, value_delimiter = ',')]
    driver_opt: Vec<String>,
    /// Highest gw-priority provides the default gateway. Accepts positive
    /// and negative values.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    gw_priority: i64,
    /// The network.
    network: String,
    /// The container.
    container: String,
}

/// The request `network connect` sends, as the docker CLI builds it.
fn connect_request(a: &ConnectArgs) -> Result<NetworkConnect, CliError> {
    if !a.link.is_empty() {
        return Err(CliError::Failed(
            "--link is a legacy feature hafen does not have: use a user-defined network, where containers find each other by name".into(),
        ));
    }
    if a.ip6.as_deref().is_some_and(|ip| !ip.is_empty()) {
        return Err(CliError::Failed(
            "hafen's networks are IPv4: --ip6 is not supported".into(),
        ));
    }
    let mut driver_opts = BTreeMap::new();
    for opt in &a.driver_opt {
        let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
        if !opt.contains('=') || k.trim().is_empty() {
            return Err(CliError::Failed(
                "invalid key/value pair format in driver options".into(),
            ));
        }
        driver_opts.insert(k.trim().to_string(), v.trim().to_string());
    }
    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: a.ip.clone().unwrap_or_default(),
            ipv6_address: String::new(),
            link_local_ips: a.link_local_ip.clone(),
        }),
        aliases: (!a.alias.is_empty()).then(|| a.alias.clone()),
        driver_opts: Some(driver_opts),
        gw_priority: a.gw_priority,
        ..Default::default()
    };
    let endpoint = serde_json::to_value(&endpoint)
        .map_err(|e| CliError::Failed(format!("cannot encode the request: {e}")))?;
    Ok(NetworkConnect {
        container: a.container.clone(),
        endpoint_config: Some(endpoint),
    })
}

/// A POST with a JSON body and no answer to read.
fn post(g: &Global, path: &str, body: Vec<u8>) -> Result<(), CliError> {
    let s = Session::open(g)?;
    s.rt.block_on(s.client.request(
        Method::POST,
        path,
        Some("application/json"),
        client::from_reader(std::io::Cursor::new(body)),
    ))?;
    Ok(())
}

/// `hafen network connect`.
pub fn connect(g: &Global, a: ConnectArgs) -> Result<(), CliError> {
    let body = to_json(&connect_request(&a)?)?;
    post(
        g,
        &format!("/networks/{}/connect", encode(&a.network)),
        body,
    )
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
    let body = to_json(&NetworkDisconnect {
        container: a.container,
        force: a.force,
    })?;
    post(
        g,
        &format!("/networks/{}/disconnect", encode(&a.network)),
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: NetworkCommand,
    }

    fn parse(args: &[&str]) -> Result<NetworkCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("network").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    fn create_args(args: &[&str]) -> CreateArgs {
        match parse(args) {
            Ok(NetworkCommand::Create(a)) => a,
            other => panic!("not a create: {other:?}"),
        }
    }

    fn connect_args(args: &[&str]) -> ConnectArgs {
        match parse(args) {
            Ok(NetworkCommand::Connect(a)) => a,
            other => panic!("not a connect: {other:?}"),
        }
    }

    #[test]
    fn create_sends_what_the_docker_cli_sends() {
        let a = create_args(&[
            "create",
            "--subnet",
            "10.5.0.0/16",
            "--ip-range=10.5.1.0/24",
            "--gateway",
            "10.5.0.254",
            "--internal",
            "--label",
            "tier=db",
            "--label",
            "bare",
            "-o",
            "com.docker.network.bridge.name=br5",
            "app",
        ]);
        let v = serde_json::to_value(create_request(&a).expect("a request")).expect("json");
        assert_eq!(v["Name"], "app");
        assert_eq!(v["Driver"], "bridge");
        assert_eq!(v["Internal"], true);
        assert_eq!(
            v["IPAM"],
            json!({"Driver": "default", "Options": {}, "Config": [
                {"Subnet": "10.5.0.0/16", "IPRange": "10.5.1.0/24", "Gateway": "10.5.0.254"}
            ]})
        );
        assert_eq!(v["Labels"], json!({"tier": "db", "bare": ""}));
        assert_eq!(
            v["Options"],
            json!({"com.docker.network.bridge.name": "br5"})
        );
        // Flags not given are not sent.
        assert!(v.get("EnableIPv4").is_none() && v.get("EnableIPv6").is_none());

        let plain = create_request(&create_args(&["create", "-d", "bridge", "n"])).expect("ok");
        assert_eq!(plain.ipam.expect("ipam").config, Vec::new());

        let v6 = create_request(&create_args(&["create", "--ipv6", "--ipv4=false", "n"]))
            .expect("sent: the daemon refuses it");
        assert_eq!((v6.enable_ipv4, v6.enable_ipv6), (Some(false), Some(true)));
    }

    #[test]
    fn create_refuses_what_it_cannot_send() {
        let err = |args: &[&str]| match create_request(&create_args(args)) {
            Err(e) => e.to_string(),
            Ok(r) => panic!("accepted: {r:?}"),
        };
        assert_eq!(
            err(&["create", "--gateway", "10.0.0.1", "n"]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert!(err(&["create", "--subnet", "10.0.0.0/24,10.1.0.0/24", "n"]).contains("one IPv4"));
        assert!(err(&["create", "--ipam-driver", "dhcp", "n"]).contains("IPAM driver"));
        assert!(err(&["create", "--config-from", "base", "n"]).contains("swarm"));
        let bad_label = parse(&["create", "--label", "=x", "n"]).expect_err("empty label name");
        assert!(
            bad_label
                .to_string()
                .contains("invalid label '=x': empty name"),
            "{bad_label}"
        );
        assert!(parse(&["create", "a", "b"]).is_err());
    }

    #[test]
    fn connect_sends_an_endpoint_config() {
        let a = connect_args(&[
            "connect",
            "--ip",
            "10.5.1.9",
            "--alias",
            "db,cache",
            "--driver-opt",
            "k=v",
            "--gw-priority",
            "-3",
            "app",
            "web",
        ]);
        assert_eq!((a.network.as_str(), a.container.as_str()), ("app", "web"));
        let r = connect_request(&a).expect("a request");
        assert_eq!(r.container, "web");
        let ep = r.endpoint_config.expect("an endpoint");
        assert_eq!(ep["IPAMConfig"], json!({"IPv4Address": "10.5.1.9"}));
        assert_eq!(ep["Aliases"], json!(["db", "cache"]));
        assert_eq!(ep["DriverOpts"], json!({"k": "v"}));
        assert_eq!(ep["GwPriority"], -3);

        let plain = connect_request(&connect_args(&["connect", "app", "web"])).expect("ok");
        let ep = plain.endpoint_config.expect("an endpoint");
        assert_eq!(ep["IPAMConfig"], json!({}));
        assert_eq!(ep["Aliases"], serde_json::Value::Null);

        for (args, says) in [
            (&["connect", "--link", "db:db", "app", "web"][..], "legacy"),
            (
                &["connect", "--ip6", "2001:db8::3", "app", "web"][..],
                "IPv4",
            ),
            (
                &["connect", "--driver-opt", "novalue", "app", "web"][..],
                "invalid key/value pair format in driver options",
            ),
        ] {
            match connect_request(&connect_args(args)) {
                Err(e) => assert!(e.to_string().contains(says), "{e}"),
                Ok(r) => panic!("accepted {args:?}: {r:?}"),
            }
        }
    }

    #[test]
    fn aliases_and_flags_parse_as_docker_s() {
        assert!(matches!(parse(&["list"]), Ok(NetworkCommand::Ls(_))));
        assert!(matches!(
            parse(&["remove", "a", "b"]),
            Ok(NetworkCommand::Rm(RmArgs { ref networks, force: false }) ) if networks.len() == 2
        ));
        assert!(parse(&["rm"]).is_err());
        assert!(matches!(
            parse(&["prune", "-f", "--filter", "until=1h"]),
            Ok(NetworkCommand::Prune(PruneArgs { force: true, ref filter })) if filter == &["until=1h"]
        ));
        assert!(matches!(
            parse(&["disconnect", "-f", "app", "web"]),
            Ok(NetworkCommand::Disconnect(DisconnectArgs {
                force: true,
                ..
            }))
        ));
        assert!(matches!(
            parse(&["inspect", "-v", "-f", "{{.Name}}", "a", "b"]),
            Ok(NetworkCommand::Inspect(InspectArgs { verbose: true, ref networks, .. })) if networks.len() == 2
        ));
    }

    fn network(name: &str, id: &str) -> Network {
        Network {
            name: name.into(),
            id: id.into(),
            driver: "bridge".into(),
            scope: "local".into(),
            created: "2025-06-01T10:00:00.1234Z".into(),
            enable_ipv4: true,
            ..Default::default()
        }
    }

    #[test]
    fn ls_prints_docker_s_table() {
        let list = vec![
            network("net10", &"b".repeat(64)),
            network("bridge", &"a".repeat(64)),
            network("net9", &"c".repeat(64)),
        ];
        let table = render_list(list.clone(), None, false, false).expect("a table");
        assert_eq!(
            table,
            format!(
                "NETWORK ID     NAME      DRIVER    SCOPE\n\
                 {a}   bridge    bridge    local\n\
                 {c}   net9      bridge    local\n\
                 {b}   net10     bridge    local\n",
                a = "a".repeat(12),
                b = "b".repeat(12),
                c = "c".repeat(12)
            )
        );
        let quiet = render_list(list.clone(), None, true, true).expect("IDs");
        assert_eq!(
            quiet,
            format!(
                "{}\n{}\n{}\n",
                "a".repeat(64),
                "c".repeat(64),
                "b".repeat(64)
            )
        );
        let custom = render_list(
            list.clone(),
            Some("{{.Name}} {{.IPv4}} {{.CreatedAt}}"),
            true,
            false,
        )
        .expect("rows");
        assert_eq!(
            custom.lines().next(),
            Some("bridge true 2025-06-01 10:00:00.1234 +0000 UTC")
        );
        let raw = render_list(list, Some("raw"), false, false).expect("raw");
        assert!(raw.starts_with(&format!(
            "network_id: {}\nname: bridge\ndriver: bridge\nscope: local\n",
            "a".repeat(12)
        )));
    }

    #[test]
    fn times_print_as_go_prints_them() {
        assert_eq!(
            go_time_string("2025-06-01T10:00:00Z"),
            "2025-06-01 10:00:00 +0000 UTC"
        );
        assert_eq!(
            go_time_string("2025-06-01T10:00:00.500000000+02:00"),
            "2025-06-01 10:00:00.5 +0200 +0200"
        );
        assert_eq!(go_time_string("yesterday"), "");
    }

    #[test]
    fn prune_prints_what_went() {
        assert_eq!(
            prune_text(NetworkPruneReport {
                networks_deleted: Some(vec!["a".into(), "b".into()])
            }),
            "Deleted Networks:\na\nb\n\n"
        );
        assert_eq!(prune_text(NetworkPruneReport::default()), "");
        assert_eq!(
            prune_text(NetworkPruneReport {
                networks_deleted: Some(Vec::new())
            }),
            ""
        );
    }
}
