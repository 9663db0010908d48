//! Published ports: what a container asks for (`PortBindings`,
//! `PublishAllPorts`) and the host ports it gets.
//!
//! A host port is reserved by binding a socket to it (not listening: the
//! traffic is DNATed before it could reach it), as dockerd does without
//! its proxy: another program cannot take the port while the container
//! has it, and a port another program has is refused.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use hafen_network::nft::{Proto, Published};
use serde_json::Value;

use super::NetworkError;

/// One port a container wants published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// TCP or UDP.
    pub proto: Proto,
    /// The port in the container.
    pub port: u16,
    /// The host address; `None`: all.
    pub host_ip: Option<Ipv4Addr>,
    /// The host ports to pick from; `(0, 0)`: any free one.
    pub host_ports: (u16, u16),
}

fn bad(what: &str) -> NetworkError {
    NetworkError::Invalid(format!("invalid port specification: {what:?}"))
}

/// `80/tcp` → (80, tcp).
pub fn parse_port_key(key: &str) -> Result<(u16, Proto), NetworkError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" | "" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return Err(bad(key)),
    };
    let port: u16 = port.parse().map_err(|_| bad(key))?;
    Ok((port, proto))
}

/// The ports of a container's host config (and, with `PublishAllPorts`,
/// every exposed port on a free host port).
pub fn wanted(
    bindings: Option<&Value>,
    publish_all: bool,
    exposed: Option<&std::collections::BTreeMap<String, Value>>,
) -> Result<Vec<Wanted>, NetworkError> {
    let mut out = Vec::new();
    if let Some(map) = bindings.and_then(Value::as_object) {
        for (key, list) in map {
            let (port, proto) = parse_port_key(key)?;
            let list = list.as_array().cloned().unwrap_or_default();
            let list = if list.is_empty() {
                vec![Value::Null]
            } else {
                list
            };
            for b in list {
                let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
                let host_ip = match ip {
                    "" | "0.0.0.0" => None,
                    ip => match ip.parse::<Ipv4Addr>() {
                        Ok(ip) => Some(ip),
                        // IPv6 host addresses: hafen's networks are IPv4.
                        Err(_) if ip.contains(':') => continue,
                        Err(_) => return Err(bad(ip)),
                    },
                };
                let hp = b.get("HostPort").and_then(Value::as_str).unwrap_or("");
                let host_ports = match hp.split_once('-') {
                    _ if hp.is_empty() => (0, 0),
                    Some((a, z)) => {
                        let a: u16 = a.parse().map_err(|_| bad(hp))?;
                        let z: u16 = z.parse().map_err(|_| bad(hp))?;
                        if a > z {
                            return Err(bad(hp));
                        }
                        (a, z)
                    }
                    None => {
                        let p: u16 = hp.parse().map_err(|_| bad(hp))?;
                        (p, p)
                    }
                };
                out.push(Wanted {
                    proto,
                    port,
                    host_ip,
                    host_ports,
                });
            }
        }
    }
    if publish_all {
        for key in exposed.into_iter().flat_map(|m| m.keys()) {
            let (port, proto) = parse_port_key(key)?;
            if !out.iter().any(|w| w.port == port && w.proto == proto) {
                out.push(Wanted {
                    proto,
                    port,
                    host_ip: None,
                    host_ports: (0, 0),
                });
            }
        }
    }
    Ok(out)
}

/// Binds `ip:port` (0: a free port) without listening: the reservation.
fn bind(proto: Proto, ip: Ipv4Addr, port: u16) -> std::io::Result<(OwnedFd, u16)> {
    use rustix::net::{AddressFamily, SocketAddrV4, SocketFlags, SocketType};
    let kind = match proto {
        Proto::Tcp => SocketType::STREAM,
        Proto::Udp => SocketType::DGRAM,
    };
    let fd = rustix::net::socket_with(AddressFamily::INET, kind, SocketFlags::CLOEXEC, None)?;
    rustix::net::bind(&fd, &SocketAddrV4::new(ip, port))?;
    let got = std::net::SocketAddr::try_from(rustix::net::getsockname(&fd)?)
        .map(|a| a.port())
        .unwrap_or(port);
    Ok((fd, got))
}

/// Reserves a host port for `w`, forwarding to `addr`. `taken`: the ports
/// hafen's containers hold already (their reservations are sockets too;
/// this tells the two refusals apart, as dockerd's messages do).
pub fn reserve(
    w: &Wanted,
    addr: Ipv4Addr,
    taken: &dyn Fn(Proto, Option<Ipv4Addr>, u16) -> bool,
) -> Result<(Published, OwnedFd), NetworkError> {
    let ip = w.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let shown = |p: u16| format!("{ip}:{p}");
    let publish = |host_port| Published {
        proto: w.proto,
        host_ip: w.host_ip,
        host_port,
        addr,
        port: w.port,
    };
    if w.host_ports == (0, 0) {
        let (fd, port) = bind(w.proto, ip, 0).map_err(|e| {
            NetworkError::Internal(format!(
                "cannot find a free host port for {}/{}: {e}",
                w.port,
                w.proto.as_str()
            ))
        })?;
        return Ok((publish(port), fd));
    }
    let (first, last) = w.host_ports;
    let mut last_err = None;
    for p in first..=last {
        if taken(w.proto, w.host_ip, p) {
            last_err = Some(NetworkError::Conflict(format!(
                "Bind for {} failed: port is already allocated",
                shown(p)
            )));
            continue;
        }
        match bind(w.proto, ip, p) {
            Ok((fd, _)) => return Ok((publish(p), fd)),
            Err(e) => {
                last_err = Some(NetworkError::Conflict(format!(
                    "failed to bind host port for {}:{addr}:{}/{}: {}",
                    shown(p),
                    w.port,
                    w.proto.as_str(),
                    e.to_string()
                        .split(" (os error")
                        .next()
                        .unwrap_or("")
                        .to_lowercase()
                )))
            }
        }
    }
    Err(last_err.unwrap_or_else(|| bad(&format!("{first}-{last}"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_and_publish_all() {
        let b = json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5300-5310"}],
            "90/tcp": [{"HostIp": "::", "HostPort": "9"}],
            "81": null});
        let exposed: std::collections::BTreeMap<String, Value> = [
            ("80/tcp".to_string(), json!({})),
            ("7/udp".to_string(), json!({})),
        ]
        .into();
        let w = wanted(Some(&b), true, Some(&exposed)).expect("parses");
        assert!(w.contains(&Wanted {
            proto: Proto::Tcp,
            port: 80,
            host_ip: None,
            host_ports: (8080, 8080)
        }));
        assert!(w.contains(&Wanted {
            proto: Proto::Udp,
            port: 53,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_ports: (5300, 5310)
        }));
        assert!(w.contains(&Wanted {
            proto: Proto::Tcp,
            port: 81,
            host_ip: None,
            host_ports: (0, 0)
        }));
        assert!(w.contains(&Wanted {
            proto: Proto::Udp,
            port: 7,
            host_ip: None,
            host_ports: (0, 0)
        }));
        assert_eq!(w.len(), 4, "{w:?}");
        for bad in [
            json!({"x/tcp": []}),
            json!({"80/sctpx": []}),
            json!({"80/tcp": [{"HostPort": "9-1"}]}),
            json!({"80/tcp": [{"HostIp": "nope"}]}),
        ] {
            assert!(wanted(Some(&bad), false, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_port_another_program_has_is_refused_and_free_ones_are_found() {
        // Loopback only.
        let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = holder.local_addr().expect("addr").port();
        let w = Wanted {
            proto: Proto::Tcp,
            port: 80,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_ports: (port, port),
        };
        let e = reserve(&w, Ipv4Addr::new(10, 0, 0, 2), &|_, _, _| false).expect_err("taken");
        assert!(e.to_string().contains("address already in use"), "{e}");
        let e = reserve(&w, Ipv4Addr::new(10, 0, 0, 2), &|_, _, _| true).expect_err("ours");
        assert_eq!(
            e.to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
        let any = Wanted {
            host_ports: (0, 0),
            ..w
        };
        let (p, fd) = reserve(&any, Ipv4Addr::new(10, 0, 0, 2), &|_, _, _| false).expect("free");
        assert_ne!(p.host_port, 0);
        // The reservation keeps others off the port.
        assert!(std::net::TcpListener::bind(("127.0.0.1", p.host_port)).is_err());
        drop(fd);
        assert!(std::net::TcpListener::bind(("127.0.0.1", p.host_port)).is_ok());
    }
}
