//! Published ports and the rules of hafen's networks, in hafen's own
//! nftables table (`ip hafen`), never in legacy iptables.
//!
//! The table is written whole from the daemon's state and replaced in one
//! `nft` transaction: the kernel either has the old table or the new one,
//! never half of a change, and a restarted daemon rebuilds exactly what its
//! records say. Published ports are elements of four maps (TCP/UDP, any
//! host address or one), so the rules stay the same few however many
//! containers publish ports:
//!
//! - `prerouting` and `output` (nat): traffic to a local address is
//!   DNATed by the maps, so published ports answer from other machines and
//!   from the host itself, 127.0.0.1 included (the bridges get
//!   `route_localnet` and `postrouting` masquerades loopback sources);
//! - `postrouting`: outbound masquerade for networks that ask for it;
//! - `forward`: internal networks reach nothing outside them, and
//!   different networks do not reach each other (as dockerd isolates them).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

/// The table's name (family `ip`).
pub const TABLE: &str = "hafen";

/// A transport protocol ports are published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port: `host_ip:host_port` forwarded to `addr:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Published {
    /// TCP or UDP.
    pub proto: Proto,
    /// The host address it is published on; `None`: every address.
    pub host_ip: Option<Ipv4Addr>,
    /// The port on the host.
    pub host_port: u16,
    /// The container's address.
    pub addr: Ipv4Addr,
    /// The port in the container.
    pub port: u16,
}

/// A network's part of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// Its bridges (more than one when it holds more containers than a
    /// Linux bridge has ports).
    pub bridges: Vec<String>,
    /// Its subnet.
    pub subnet: Ipv4Net,
    /// Masquerade traffic that leaves the network (outbound access).
    pub masquerade: bool,
    /// `--internal`: no traffic in or out of the network.
    pub internal: bool,
}

/// Everything the table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The bridge networks.
    pub networks: Vec<NetworkRules>,
    /// The published ports of every container.
    pub ports: Vec<Published>,
}

/// `nft` failed or is missing.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The `nft` program cannot be run.
    #[error("cannot run nft (install the nftables package): {0}")]
    Missing(std::io::Error),
    /// `nft` refused the rules.
    #[error("nft refused hafen's rules: {0}")]
    Refused(String),
}

fn quoted(names: &[String]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", names.join(", "))
}

impl Ruleset {
    /// The nft script that replaces the table with this ruleset.
    pub fn render(&self) -> String {
        let mut s = String::new();
        // Creating it first makes the delete safe when there is none; the
        // three lines are one transaction.
        let _ = writeln!(s, "table ip {TABLE} {{}}\ndelete table ip {TABLE}");
        let _ = writeln!(s, "table ip {TABLE} {{");
        let mut ports = self.ports.clone();
        ports.sort();
        ports.dedup();
        for proto in [Proto::Tcp, Proto::Udp] {
            let p = proto.as_str();
            let any: Vec<String> = ports
                .iter()
                .filter(|x| x.proto == proto && x.host_ip.is_none())
                .map(|x| format!("{} : {} . {}", x.host_port, x.addr, x.port))
                .collect();
            let one: Vec<String> = ports
                .iter()
                .filter(|x| x.proto == proto)
                .filter_map(|x| {
                    let ip = x.host_ip?;
                    Some(format!("{ip} . {} : {} . {}", x.host_port, x.addr, x.port))
                })
                .collect();
            let elements = |v: &[String]| {
                if v.is_empty() {
                    String::new()
                } else {
                    format!(" elements = {{ {} }};", v.join(", "))
                }
            };
            let _ = writeln!(
                s,
                "  map {p}_any {{ type inet_service : ipv4_addr . inet_service;{} }}",
                elements(&any)
            );
            let _ = writeln!(
                s,
                "  map {p}_ip {{ type ipv4_addr . inet_service : ipv4_addr . inet_service;{} }}",
                elements(&one)
            );
        }
        let _ = writeln!(
            s,
            "  chain published {{\n    dnat ip to ip daddr . tcp dport map @tcp_ip\n    dnat ip to tcp dport map @tcp_any\n    dnat ip to ip daddr . udp dport map @udp_ip\n    dnat ip to udp dport map @udp_any\n  }}"
        );
        let _ = writeln!(
            s,
            "  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; fib daddr type local goto published; }}"
        );
        let _ = writeln!(
            s,
            "  chain output {{ type nat hook output priority -100; policy accept; fib daddr type local goto published; }}"
        );
        let all: Vec<String> = self
            .networks
            .iter()
            .flat_map(|n| n.bridges.iter().cloned())
            .collect();
        let _ = writeln!(
            s,
            "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;"
        );
        if !all.is_empty() {
            // The host's own 127.0.0.1 reaching a published port.
            let _ = writeln!(
                s,
                "    oifname {} ip saddr 127.0.0.0/8 masquerade",
                quoted(&all)
            );
        }
        for n in self
            .networks
            .iter()
            .filter(|n| n.masquerade && !n.internal && !n.bridges.is_empty())
        {
            let _ = writeln!(
                s,
                "    ip saddr {} oifname != {} masquerade",
                n.subnet,
                quoted(&n.bridges)
            );
        }
        let _ = writeln!(s, "  }}");
        let _ = writeln!(
            s,
            "  chain forward {{\n    type filter hook forward priority filter; policy accept;"
        );
        for n in self.networks.iter().filter(|n| !n.bridges.is_empty()) {
            let mine = quoted(&n.bridges);
            if n.internal {
                let _ = writeln!(s, "    iifname {mine} oifname != {mine} drop");
                let _ = writeln!(s, "    oifname {mine} iifname != {mine} drop");
            } else {
                let others: Vec<String> = all
                    .iter()
                    .filter(|b| !n.bridges.contains(b))
                    .cloned()
                    .collect();
                if !others.is_empty() {
                    let _ = writeln!(s, "    iifname {mine} oifname {} drop", quoted(&others));
                }
            }
        }
        let _ = writeln!(s, "  }}\n}}");
        s
    }

    /// Replaces hafen's table with this ruleset, atomically.
    pub fn apply(&self) -> Result<(), NftError> {
        run_nft(&self.render())
    }
}

/// Removes hafen's table (nothing happens if there is none).
pub fn remove_table() -> Result<(), NftError> {
    run_nft(&format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n"))
}

fn run_nft(script: &str) -> Result<(), NftError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Missing)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NftError::Refused(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NftError::Refused(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        let first = text
            .lines()
            .find(|l| l.starts_with("Error"))
            .or_else(|| text.lines().next())
            .unwrap_or("no message")
            .to_string();
        Err(NftError::Refused(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ruleset {
        Ruleset {
            networks: vec![
                NetworkRules {
                    bridges: vec!["hafen0".into()],
                    subnet: "10.70.0.0/16".parse().expect("net"),
                    masquerade: true,
                    internal: false,
                },
                NetworkRules {
                    bridges: vec!["br-a".into(), "br-a.1".into()],
                    subnet: "10.71.0.0/16".parse().expect("net"),
                    masquerade: false,
                    internal: true,
                },
            ],
            ports: vec![
                Published {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    addr: Ipv4Addr::new(10, 70, 0, 2),
                    port: 80,
                },
                Published {
                    proto: Proto::Udp,
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 5353,
                    addr: Ipv4Addr::new(10, 70, 0, 3),
                    port: 53,
                },
            ],
        }
    }

    #[test]
    fn renders_maps_and_rules() {
        let s = sample().render();
        assert!(s.contains("map tcp_any { type inet_service : ipv4_addr . inet_service; elements = { 8080 : 10.70.0.2 . 80 }; }"), "{s}");
        assert!(
            s.contains("elements = { 127.0.0.1 . 5353 : 10.70.0.3 . 53 }"),
            "{s}"
        );
        assert!(
            s.contains("ip saddr 10.70.0.0/16 oifname != { \"hafen0\" } masquerade"),
            "{s}"
        );
        assert!(!s.contains("ip saddr 10.71.0.0/16"), "{s}");
        assert!(
            s.contains("iifname { \"br-a\", \"br-a.1\" } oifname != { \"br-a\", \"br-a.1\" } drop"),
            "{s}"
        );
        assert!(
            s.contains("iifname { \"hafen0\" } oifname { \"br-a\", \"br-a.1\" } drop"),
            "{s}"
        );
    }

    /// The rendered table is accepted by the real nft, in a network
    /// namespace of this test's own thread, and replacing it works.
    #[test]
    fn nft_takes_the_table_and_replaces_it() {
        let r = std::thread::spawn(|| -> Result<String, String> {
            crate::unshare_network_of_this_thread().map_err(|e| e.to_string())?;
            sample().apply().map_err(|e| e.to_string())?;
            Ruleset::default().apply().map_err(|e| e.to_string())?;
            let mut second = sample();
            second.ports.truncate(1);
            second.apply().map_err(|e| e.to_string())?;
            let out = Command::new("nft")
                .args(["list", "table", "ip", TABLE])
                .output()
                .map_err(|e| e.to_string())?;
            remove_table().map_err(|e| e.to_string())?;
            remove_table().map_err(|e| e.to_string())?;
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .join()
        .expect("the thread");
        let listed = r.expect("nft works");
        assert!(listed.contains("8080 : 10.70.0.2 . 80"), "{listed}");
        assert!(!listed.contains("5353"), "{listed}");
    }

    #[test]
    fn a_bad_ruleset_is_refused_with_nfts_message() {
        let r = std::thread::spawn(|| {
            crate::unshare_network_of_this_thread().map_err(|e| e.to_string())?;
            let mut bad = sample();
            bad.networks[0].bridges = vec!["a\"b".into()];
            bad.apply().map_err(|e| e.to_string())
        })
        .join()
        .expect("the thread");
        let e = r.expect_err("refused");
        assert!(e.contains("nft refused"), "{e}");
    }
}
