//! The embedded DNS server containers on user-defined networks ask at
//! 127.0.0.11, as dockerd's: container names, aliases and IDs of the
//! networks a container is on are answered here; other names are
//! forwarded to the upstream servers.
//!
//! The daemon binds the sockets inside each container's network namespace
//! and hands them over; one small tokio task per container serves them
//! from the daemon's runtime (no thread per container). Queries are parsed
//! with hickory-proto; malformed ones are dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a container may resolve.
pub trait Names: Send + Sync + 'static {
    /// The IPv4 addresses of `name` (lower-case, no trailing dot), or
    /// `None` if no container has it.
    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>>;
    /// The name of an address, for PTR queries.
    fn reverse(&self, addr: Ipv4Addr) -> Option<String>;
}

/// What to do with one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send this.
    Reply(Vec<u8>),
    /// Ask the upstream servers.
    Forward,
    /// Not a query: ignore it.
    Drop,
}

/// The TTL of names answered here (dockerd's).
pub const TTL: u32 = 600;

fn reply_to(query: &Message, code: ResponseCode) -> Message {
    let mut m = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.response_code = code;
    m.queries = query.queries.clone();
    m
}

/// Answers one query (wire bytes) from `names`, or says to forward it.
pub fn answer(query: &[u8], names: &dyn Names) -> Answer {
    let Ok(msg) = Message::from_vec(query) else {
        return Answer::Drop;
    };
    if msg.metadata.message_type != MessageType::Query {
        return Answer::Drop;
    }
    if msg.metadata.op_code != OpCode::Query || msg.queries.len() != 1 {
        return encode(&reply_to(&msg, ResponseCode::NotImp));
    }
    let q = &msg.queries[0];
    let name = q.name().to_lowercase().to_ascii();
    let name = name.trim_end_matches('.').to_string();
    if q.query_type() == RecordType::PTR {
        let Ok(net) = q.name().parse_arpa_name() else {
            return Answer::Forward;
        };
        let std::net::IpAddr::V4(ip) = net.addr() else {
            return Answer::Forward;
        };
        return match names.reverse(ip) {
            Some(target) => {
                let Ok(target) = Name::from_ascii(format!("{target}.")) else {
                    return Answer::Forward;
                };
                let mut m = reply_to(&msg, ResponseCode::NoError);
                m.metadata.authoritative = true;
                m.add_answer(Record::from_rdata(
                    q.name().clone(),
                    TTL,
                    RData::PTR(PTR(target)),
                ));
                encode(&m)
            }
            None => Answer::Forward,
        };
    }
    match names.lookup(&name) {
        Some(ips) => {
            let mut m = reply_to(&msg, ResponseCode::NoError);
            m.metadata.authoritative = true;
            // Other types of a container's name: no records, no error (so
            // resolvers do not go on to search domains or upstreams).
            if q.query_type() == RecordType::A {
                for ip in ips {
                    m.add_answer(Record::from_rdata(q.name().clone(), TTL, RData::A(A(ip))));
                }
            }
            encode(&m)
        }
        None => Answer::Forward,
    }
}

fn encode(m: &Message) -> Answer {
    m.to_vec().map(Answer::Reply).unwrap_or(Answer::Drop)
}

/// SERVFAIL for a query (no upstream answered).
fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    reply_to(&msg, ResponseCode::ServFail).to_vec().ok()
}

/// The upstream servers and how long to wait for each.
#[derive(Debug, Clone)]
pub struct Resolver {
    upstreams: Arc<Vec<SocketAddr>>,
    timeout: Duration,
}

/// Serves until dropped.
#[derive(Debug)]
pub struct ServeHandle {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// TCP connections served at once per container.
const MAX_TCP: usize = 16;
/// How long an idle TCP connection stays.
const TCP_IDLE: Duration = Duration::from_secs(5);

impl Resolver {
    /// A resolver forwarding to `upstreams` (2 s each).
    pub fn new(upstreams: Vec<SocketAddr>) -> Resolver {
        Resolver {
            upstreams: Arc::new(upstreams),
            timeout: Duration::from_secs(2),
        }
    }

    /// The same with another timeout per upstream server.
    pub fn with_timeout(mut self, timeout: Duration) -> Resolver {
        self.timeout = timeout;
        self
    }

    /// Serves `udp` (and `tcp`) with `names`; call within a tokio runtime.
    pub fn serve(
        &self,
        udp: std::net::UdpSocket,
        tcp: Option<std::net::TcpListener>,
        names: Arc<dyn Names>,
    ) -> ServeHandle {
        let mut tasks = Vec::new();
        let me = self.clone();
        let n = names.clone();
        tasks.push(tokio::spawn(async move {
            let _ = udp.set_nonblocking(true);
            let Ok(sock) = tokio::net::UdpSocket::from_std(udp) else {
                return;
            };
            let sock = Arc::new(sock);
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, from)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                let query = buf[..len].to_vec();
                match answer(&query, &*n) {
                    Answer::Reply(r) => {
                        let _ = sock.send_to(&r, from).await;
                    }
                    Answer::Drop => {}
                    Answer::Forward => {
                        let me = me.clone();
                        let sock = sock.clone();
                        tokio::spawn(async move {
                            if let Some(r) = me.forward_udp(&query).await {
                                let _ = sock.send_to(&r, from).await;
                            }
                        });
                    }
                }
            }
        }));
        if let Some(tcp) = tcp {
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                let _ = tcp.set_nonblocking(true);
                let Ok(listener) = tokio::net::TcpListener::from_std(tcp) else {
                    return;
                };
                let slots = Arc::new(tokio::sync::Semaphore::new(MAX_TCP));
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        continue;
                    };
                    let me = me.clone();
                    let names = names.clone();
                    tokio::spawn(async move {
                        me.serve_tcp(stream, &*names).await;
                        drop(permit);
                    });
                }
            }));
        }
        ServeHandle { tasks }
    }

    async fn serve_tcp(&self, mut stream: tokio::net::TcpStream, names: &dyn Names) {
        loop {
            let mut len = [0u8; 2];
            match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
            match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let reply = match answer(&query, names) {
                Answer::Reply(r) => Some(r),
                Answer::Drop => None,
                Answer::Forward => self.forward_tcp(&query).await,
            };
            if let Some(r) = reply {
                let Ok(n) = u16::try_from(r.len()) else {
                    return;
                };
                if stream.write_all(&n.to_be_bytes()).await.is_err()
                    || stream.write_all(&r).await.is_err()
                {
                    return;
                }
            }
        }
    }

    /// Asks the upstreams in turn over UDP; SERVFAIL if none answers.
    async fn forward_udp(&self, query: &[u8]) -> Option<Vec<u8>> {
        let id = query.get(..2)?;
        for up in self.upstreams.iter() {
            let bind: SocketAddr = if up.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
                continue;
            };
            if sock.send_to(query, up).await.is_err() {
                continue;
            }
            let mut buf = vec![0u8; 4096];
            let got = tokio::time::timeout(self.timeout, async {
                loop {
                    let (n, from) = sock.recv_from(&mut buf).await?;
                    if from == *up && n >= 2 && &buf[..2] == id {
                        return Ok::<usize, std::io::Error>(n);
                    }
                }
            })
            .await;
            if let Ok(Ok(n)) = got {
                return Some(buf[..n].to_vec());
            }
        }
        servfail(query)
    }

    /// Asks the upstreams in turn over TCP; SERVFAIL if none answers.
    async fn forward_tcp(&self, query: &[u8]) -> Option<Vec<u8>> {
        let len = u16::try_from(query.len()).ok()?;
        for up in self.upstreams.iter() {
            let asked = tokio::time::timeout(self.timeout, async {
                let mut s = tokio::net::TcpStream::connect(up).await?;
                s.write_all(&len.to_be_bytes()).await?;
                s.write_all(query).await?;
                let mut l = [0u8; 2];
                s.read_exact(&mut l).await?;
                let mut r = vec![0u8; usize::from(u16::from_be_bytes(l))];
                s.read_exact(&mut r).await?;
                Ok::<Vec<u8>, std::io::Error>(r)
            })
            .await;
            if let Ok(Ok(r)) = asked {
                return Some(r);
            }
        }
        servfail(query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use std::collections::HashMap;

    struct Table(HashMap<String, Vec<Ipv4Addr>>);

    impl Names for Table {
        fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
            self.0.get(name).cloned()
        }
        fn reverse(&self, addr: Ipv4Addr) -> Option<String> {
            self.0
                .iter()
                .find(|(_, v)| v.contains(&addr))
                .map(|(k, _)| format!("{k}.net"))
        }
    }

    fn table() -> Arc<Table> {
        Arc::new(Table(
            [("web".to_string(), vec![Ipv4Addr::new(10, 1, 0, 2)])].into(),
        ))
    }

    fn query(name: &str, kind: RecordType, id: u16) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), kind));
        m.to_vec().expect("encode")
    }

    fn parse(bytes: &[u8]) -> Message {
        Message::from_vec(bytes).expect("a message")
    }

    #[test]
    fn names_are_answered_here_others_forwarded() {
        let t = table();
        let Answer::Reply(r) = answer(&query("WEB.", RecordType::A, 7), &*t) else {
            panic!("answered")
        };
        let m = parse(&r);
        assert_eq!(m.metadata.id, 7);
        assert!(m.metadata.authoritative && m.metadata.recursion_available);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].ttl, TTL);
        assert_eq!(m.answers[0].data, RData::A(A(Ipv4Addr::new(10, 1, 0, 2))));
        let Answer::Reply(r) = answer(&query("web", RecordType::AAAA, 8), &*t) else {
            panic!("answered")
        };
        let m = parse(&r);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        let Answer::Reply(r) = answer(&query("2.0.1.10.in-addr.arpa.", RecordType::PTR, 9), &*t)
        else {
            panic!("answered")
        };
        assert_eq!(
            parse(&r).answers[0].data,
            RData::PTR(PTR(Name::from_ascii("web.net.").expect("name")))
        );
        assert_eq!(
            answer(&query("example.com.", RecordType::A, 1), &*t),
            Answer::Forward
        );
        for garbage in [&b""[..], b"\x01", b"\x00\x01\x01\x00\x00\x01", &[0xff; 40]] {
            assert_eq!(answer(garbage, &*t), Answer::Drop);
        }
    }

    async fn ask_udp(server: SocketAddr, q: &[u8]) -> Option<Vec<u8>> {
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
        c.send_to(q, server).await.ok()?;
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf[..n].to_vec())
    }

    #[tokio::test]
    async fn udp_and_tcp_with_an_upstream_and_without() {
        // A fake upstream on loopback: answers everything with 10.9.9.9.
        let up = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let up_addr = up.local_addr().expect("addr");
        let upstream = tokio::spawn(async move {
            let mut buf = vec![0u8; 512];
            while let Ok((n, from)) = up.recv_from(&mut buf).await {
                let q = parse(&buf[..n]);
                let mut m = reply_to(&q, ResponseCode::NoError);
                m.add_answer(Record::from_rdata(
                    q.queries[0].name().clone(),
                    60,
                    RData::A(A(Ipv4Addr::new(10, 9, 9, 9))),
                ));
                let _ = up.send_to(&m.to_vec().expect("encode"), from).await;
            }
        });
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (uaddr, taddr) = (udp.local_addr().expect("a"), tcp.local_addr().expect("a"));
        let _h = Resolver::new(vec![up_addr]).serve(udp, Some(tcp), table());

        // Garbage first: the server goes on.
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        c.send_to(b"\x00", uaddr).await.expect("send");
        c.send_to(&[0xffu8; 64], uaddr).await.expect("send");

        let r = parse(
            &ask_udp(uaddr, &query("web", RecordType::A, 11))
                .await
                .expect("answer"),
        );
        assert_eq!(r.metadata.id, 11);
        assert_eq!(r.answers.len(), 1);
        let r = parse(
            &ask_udp(uaddr, &query("elsewhere.test", RecordType::A, 12))
                .await
                .expect("answer"),
        );
        assert_eq!(r.metadata.id, 12);
        assert_eq!(r.answers[0].data, RData::A(A(Ipv4Addr::new(10, 9, 9, 9))));

        // TCP: two queries on one connection.
        let mut s = tokio::net::TcpStream::connect(taddr)
            .await
            .expect("connect");
        for id in [21u16, 22] {
            let q = query("web.", RecordType::A, id);
            s.write_all(&(q.len() as u16).to_be_bytes())
                .await
                .expect("w");
            s.write_all(&q).await.expect("w");
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.expect("r");
            let mut r = vec![0u8; usize::from(u16::from_be_bytes(l))];
            s.read_exact(&mut r).await.expect("r");
            let m = parse(&r);
            assert_eq!(m.metadata.id, id);
            assert_eq!(m.answers.len(), 1);
        }
        upstream.abort();

        // No upstream that answers: SERVFAIL after the timeout.
        let dead = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let dead_addr = dead.local_addr().expect("addr");
        drop(dead);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let uaddr = udp.local_addr().expect("addr");
        let _h2 = Resolver::new(vec![dead_addr])
            .with_timeout(Duration::from_millis(200))
            .serve(udp, None, table());
        let r = parse(
            &ask_udp(uaddr, &query("x.test", RecordType::A, 31))
                .await
                .expect("answer"),
        );
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let uaddr = udp.local_addr().expect("addr");
        let _h3 = Resolver::new(vec![]).serve(udp, None, table());
        let r = parse(
            &ask_udp(uaddr, &query("x.test", RecordType::A, 32))
                .await
                .expect("answer"),
        );
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    }
}
