//! The embedded DNS server containers on user-defined networks ask at
//! 127.0.0.11, as dockerd's (libnetwork's resolver).
//!
//! The daemon opens a UDP socket and a TCP listener on `127.0.0.11:53`
//! *inside* each container's network namespace and hands them to
//! [`Resolver::serve`]. One small tokio task per container serves both from
//! the daemon's runtime: no thread per container, and no buffer is held
//! while a container is idle. Queries being forwarded and TCP connections
//! run as child tasks of that task, bounded per container, and all of them
//! end (closing the sockets, so the namespace can go) when the
//! [`ServeHandle`] is dropped.
//!
//! What is answered here ([`answer`]):
//! - `A` for a name [`Names::lookup`] knows: its addresses, TTL 600,
//!   authoritative, recursion available (several addresses are rotated by
//!   the query's ID, so clients that take the first spread over them, like
//!   dockerd's shuffle);
//! - any other type for such a name (`AAAA`, `MX`, ...): NOERROR without
//!   records, so resolvers neither go upstream nor try search domains;
//! - `PTR` for `d.c.b.a.in-addr.arpa` when [`Names::reverse`] knows the
//!   address.
//!
//! Everything else is forwarded verbatim to the upstream servers, in order,
//! from the daemon's own namespace (UDP queries over UDP, TCP queries over
//! TCP), each server given a timeout (2 s); a server that answers SERVFAIL
//! or REFUSED is passed over for the next. With no upstream, or none
//! answering, the client gets SERVFAIL. Anything that is not a query is
//! ignored: nothing here panics on input.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

/// What a container may resolve: the engine implements it per container
/// (the names of the containers on the networks it shares with them).
pub trait Names: Send + Sync + 'static {
    /// IPv4 addresses for `name` (already lower-cased, without a trailing
    /// dot), or `None` if the name is not a container's.
    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>>;
    /// The name for an address (for PTR queries of in-addr.arpa), or `None`.
    fn reverse(&self, addr: Ipv4Addr) -> Option<String>;
}

/// What to do with one query message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send these bytes back (a complete DNS message).
    Reply(Vec<u8>),
    /// Not a name answered here: ask the upstream servers.
    Forward,
    /// Not a DNS query (garbage, a response, no question): ignore it.
    Drop,
}

/// The TTL of the records answered here (dockerd's).
pub const TTL: u32 = 600;

/// How long each upstream server is given by default.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a TCP connection may stay idle (or take to send a message).
const TCP_IDLE: Duration = Duration::from_secs(5);
/// TCP connections served at once per container; more wait in the backlog.
const MAX_TCP_CONNECTIONS: usize = 16;
/// UDP queries being forwarded at once per container; more are dropped
/// (their clients ask again).
const MAX_FORWARDS: usize = 64;
/// Datagrams handled in one go before the task lets others run.
const UDP_BATCH: usize = 32;
/// The largest query taken over UDP, and the largest UDP reply sent (also
/// what an EDNS reply advertises).
const MAX_UDP_PAYLOAD: u16 = 4096;
/// The size of a UDP reply to a query without EDNS.
const MIN_UDP_PAYLOAD: u16 = 512;
/// How long to pause after an unexpected socket error (no busy loop).
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The RCODEs after which the next upstream server is asked.
const RCODE_SERVFAIL: u8 = 2;
const RCODE_REFUSED: u8 = 5;

/// Answers one query message (wire bytes) from `names`, or says it must be
/// forwarded or dropped. The reply is not limited in size (as over TCP);
/// the server truncates replies to UDP clients to what they accept.
pub fn answer(query: &[u8], names: &dyn Names) -> Answer {
    respond(query, names, Transport::Tcp)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

fn respond(query: &[u8], names: &dyn Names, transport: Transport) -> Answer {
    let Ok(msg) = Message::from_vec(query) else {
        return Answer::Drop;
    };
    if msg.metadata.message_type != MessageType::Query {
        return Answer::Drop;
    }
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => usize::from(msg.max_payload().clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD)),
    };
    let q = match msg.queries.as_slice() {
        [] => return Answer::Drop,
        [q] => q,
        _ => return encode(reply_to(&msg, ResponseCode::FormErr), limit),
    };
    if msg.metadata.op_code != OpCode::Query {
        return encode(reply_to(&msg, ResponseCode::NotImp), limit);
    }
    if q.query_class() != DNSClass::IN {
        return Answer::Forward;
    }
    if q.query_type() == RecordType::PTR {
        if let Some(target) = arpa_v4(q.name()).and_then(|ip| names.reverse(ip)) {
            let Ok(target) = Name::from_ascii(format!("{}.", target.trim_end_matches('.'))) else {
                return Answer::Forward;
            };
            let mut m = reply_to(&msg, ResponseCode::NoError);
            m.metadata.authoritative = true;
            m.add_answer(Record::from_rdata(
                q.name().clone(),
                TTL,
                RData::PTR(PTR(target)),
            ));
            return encode(m, limit);
        }
    }
    let Some(ips) = local_name(q.name()).and_then(|name| names.lookup(&name)) else {
        return Answer::Forward;
    };
    let mut m = reply_to(&msg, ResponseCode::NoError);
    m.metadata.authoritative = true;
    if q.query_type() == RecordType::A {
        let mut ips = ips;
        if ips.len() > 1 {
            let start = usize::from(msg.metadata.id) % ips.len();
            ips.rotate_left(start);
        }
        for ip in ips {
            m.add_answer(Record::from_rdata(q.name().clone(), TTL, RData::A(A(ip))));
        }
    }
    encode(m, limit)
}

/// A response to `query` with its ID, opcode, question and RD flag.
fn reply_to(query: &Message, code: ResponseCode) -> Message {
    let mut m = Message::response(query.metadata.id, query.metadata.op_code);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.checking_disabled = query.metadata.checking_disabled;
    m.metadata.response_code = code;
    m.queries = query.queries.clone();
    if query.edns.is_some() {
        // RFC 6891: a query with an OPT record gets one back.
        let mut edns = Edns::new();
        edns.set_max_payload(MAX_UDP_PAYLOAD);
        m.set_edns(edns);
    }
    m
}

/// Encodes `m` in at most `limit` bytes: answers that do not fit are left
/// out and the TC flag set (clients that honour it ask again over TCP;
/// the others still get the first addresses).
fn encode(mut m: Message, limit: usize) -> Answer {
    let Ok(mut bytes) = m.to_vec() else {
        return Answer::Drop;
    };
    while bytes.len() > limit && !m.answers.is_empty() {
        // An A record with a compressed name takes 16 bytes.
        let excess = (bytes.len() - limit).div_ceil(16).clamp(1, m.answers.len());
        m.answers.truncate(m.answers.len() - excess);
        m.metadata.truncation = true;
        let Ok(b) = m.to_vec() else {
            return Answer::Drop;
        };
        bytes = b;
    }
    if bytes.len() > limit {
        return Answer::Drop;
    }
    Answer::Reply(bytes)
}

/// A name as [`Names::lookup`] takes it: lower case, labels joined by dots,
/// no trailing dot. `None` for the root and for labels no container name
/// can have (a dot inside, bytes that are not printable ASCII).
fn local_name(name: &Name) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    for label in name.iter() {
        if label.is_empty() || label.iter().any(|b| !b.is_ascii_graphic() || *b == b'.') {
            return None;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
    }
    (!out.is_empty()).then_some(out)
}

/// The address of `d.c.b.a.in-addr.arpa` (exactly four octets).
fn arpa_v4(name: &Name) -> Option<Ipv4Addr> {
    let mut labels = name.iter();
    if labels.len() != 6 {
        return None;
    }
    let d = octet(labels.next()?)?;
    let c = octet(labels.next()?)?;
    let b = octet(labels.next()?)?;
    let a = octet(labels.next()?)?;
    if !labels.next()?.eq_ignore_ascii_case(b"in-addr")
        || !labels.next()?.eq_ignore_ascii_case(b"arpa")
    {
        return None;
    }
    Some(Ipv4Addr::new(a, b, c, d))
}

fn octet(label: &[u8]) -> Option<u8> {
    if label.is_empty() || label.len() > 3 || !label.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(label).ok()?.parse().ok()
}

/// SERVFAIL for `query` (no upstream server answered).
fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    reply_to(&msg, ResponseCode::ServFail).to_vec().ok()
}

/// Whether `reply` is a response with the ID `id`.
fn is_reply_to(reply: &[u8], id: [u8; 2]) -> bool {
    reply.len() >= 12 && reply[..2] == id && reply[2] & 0x80 != 0
}

#[derive(Debug)]
struct Config {
    upstreams: Vec<SocketAddr>,
    timeout: Duration,
    tcp_idle: Duration,
}

/// The embedded DNS server: the upstream servers and how long each is
/// given. Cheap to clone; one serves any number of containers.
#[derive(Debug, Clone)]
pub struct Resolver {
    config: Arc<Config>,
}

/// Serving one container's sockets; dropping it stops the task and its
/// children (forwarded queries, TCP connections) and closes the sockets.
#[derive(Debug)]
pub struct ServeHandle {
    task: Option<JoinHandle<()>>,
}

impl ServeHandle {
    /// Whether the server still runs (false if `serve` was given sockets it
    /// could not use, or was called outside a tokio runtime).
    pub fn is_serving(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Resolver {
    /// A server forwarding other names to `upstreams`, tried in order (an
    /// address with port 0 means port 53), 2 s each, asked from the
    /// daemon's own namespace.
    pub fn new(upstreams: Vec<SocketAddr>) -> Self {
        let upstreams = upstreams
            .into_iter()
            .map(|mut a| {
                if a.port() == 0 {
                    a.set_port(53);
                }
                a
            })
            .collect();
        Resolver {
            config: Arc::new(Config {
                upstreams,
                timeout: UPSTREAM_TIMEOUT,
                tcp_idle: TCP_IDLE,
            }),
        }
    }

    /// The same with another timeout per upstream server.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Resolver {
            config: Arc::new(Config {
                upstreams: self.config.upstreams.clone(),
                timeout,
                tcp_idle: self.config.tcp_idle,
            }),
        }
    }

    /// Serves the sockets (bound in a container's namespace, usually on
    /// 127.0.0.11:53) with `names` until the returned handle is dropped.
    /// Must be called within a tokio runtime; outside one, or with sockets
    /// tokio cannot take, it logs an error and the handle serves nothing.
    pub fn serve(
        &self,
        udp: std::net::UdpSocket,
        tcp: Option<std::net::TcpListener>,
        names: Arc<dyn Names>,
    ) -> ServeHandle {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("the DNS server was started outside a tokio runtime");
            return ServeHandle { task: None };
        };
        let udp = match udp
            .set_nonblocking(true)
            .and_then(|()| UdpSocket::from_std(udp))
        {
            Ok(u) => Arc::new(u),
            Err(e) => {
                tracing::error!("the DNS server cannot use its UDP socket: {e}");
                return ServeHandle { task: None };
            }
        };
        let tcp = tcp.and_then(|l| {
            match l
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(l))
            {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!("the DNS server cannot use its TCP listener: {e}");
                    None
                }
            }
        });
        let task = runtime.spawn(run(self.config.clone(), udp, tcp, names));
        ServeHandle { task: Some(task) }
    }
}

/// The task of one container.
async fn run(
    config: Arc<Config>,
    udp: Arc<UdpSocket>,
    tcp: Option<TcpListener>,
    names: Arc<dyn Names>,
) {
    // Dropped with this task: aborts the children.
    let mut forwards: JoinSet<()> = JoinSet::new();
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            ready = udp.readable() => {
                let failed = match ready {
                    Ok(()) => drain_udp(&config, &udp, &names, &mut forwards),
                    Err(e) => {
                        tracing::debug!("DNS UDP socket: {e}");
                        true
                    }
                };
                if failed {
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            }
            accepted = accept(tcp.as_ref()), if conns.len() < MAX_TCP_CONNECTIONS => {
                match accepted {
                    Ok(stream) => {
                        conns.spawn(serve_connection(config.clone(), stream, names.clone()));
                    }
                    Err(e) => match e.kind() {
                        io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted => {}
                        _ => {
                            tracing::debug!("DNS TCP listener: {e}");
                            tokio::time::sleep(ERROR_PAUSE).await;
                        }
                    },
                }
            }
            Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<TcpStream> {
    match listener {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

/// Handles the datagrams waiting on `udp`; true after an unexpected error.
fn drain_udp(
    config: &Arc<Config>,
    udp: &Arc<UdpSocket>,
    names: &Arc<dyn Names>,
    forwards: &mut JoinSet<()>,
) -> bool {
    for _ in 0..UDP_BATCH {
        let (query, client) = match recv_query(udp) {
            Ok(Some(got)) => got,
            Ok(None) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) => {
                tracing::debug!("DNS UDP socket: {e}");
                return true;
            }
        };
        match respond(&query, &**names, Transport::Udp) {
            Answer::Reply(r) => {
                // A full send buffer loses the reply; the client asks again.
                let _ = udp.try_send_to(&r, client);
            }
            Answer::Drop => {}
            Answer::Forward if forwards.len() >= MAX_FORWARDS => {
                tracing::debug!("DNS: too many queries being forwarded, one dropped");
            }
            Answer::Forward => {
                let config = config.clone();
                let udp = udp.clone();
                forwards.spawn(async move {
                    if let Some(r) = config.forward(&query, Transport::Udp).await {
                        let _ = udp.send_to(&r, client).await;
                    }
                });
            }
        }
    }
    false
}

/// One datagram from `udp` (`None` if too large to be a query taken here).
/// The buffer lives only in this call, not in the idle task.
fn recv_query(udp: &UdpSocket) -> io::Result<Option<(Vec<u8>, SocketAddr)>> {
    let mut buf = [0u8; MAX_UDP_PAYLOAD as usize + 1];
    let (n, from) = udp.try_recv_from(&mut buf)?;
    if n > usize::from(MAX_UDP_PAYLOAD) {
        return Ok(None);
    }
    Ok(Some((buf[..n].to_vec(), from)))
}

/// One TCP connection: length-prefixed queries, answered in order, until
/// the client closes it or stays idle too long.
async fn serve_connection(config: Arc<Config>, mut stream: TcpStream, names: Arc<dyn Names>) {
    let idle = config.tcp_idle;
    loop {
        let query = match tokio::time::timeout(idle, read_frame(&mut stream)).await {
            Ok(Ok(q)) => q,
            _ => return,
        };
        let reply = match respond(&query, &*names, Transport::Tcp) {
            Answer::Reply(r) => r,
            Answer::Drop => continue,
            Answer::Forward => match config.forward(&query, Transport::Tcp).await {
                Some(r) => r,
                None => continue,
            },
        };
        match tokio::time::timeout(idle, write_frame(&mut stream, &reply)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}

async fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut msg).await?;
    Ok(msg)
}

async fn write_frame(stream: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // One write, so the prefix and the message leave in one segment.
    let mut frame = Vec::with_capacity(msg.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(msg);
    stream.write_all(&frame).await
}

impl Config {
    /// Asks the upstream servers in turn; their reply with the client's ID,
    /// else the last SERVFAIL/REFUSED one got, else our SERVFAIL.
    async fn forward(&self, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let id = [*query.first()?, *query.get(1)?];
        let mut fallback = None;
        for &upstream in &self.upstreams {
            let asked = match transport {
                Transport::Udp => {
                    tokio::time::timeout(self.timeout, exchange_udp(upstream, query, id)).await
                }
                Transport::Tcp => {
                    tokio::time::timeout(self.timeout, exchange_tcp(upstream, query, id)).await
                }
            };
            match asked {
                Ok(Ok(mut reply)) => {
                    reply[..2].copy_from_slice(&id);
                    let rcode = reply[3] & 0x0f;
                    if rcode == RCODE_SERVFAIL || rcode == RCODE_REFUSED {
                        tracing::debug!("DNS upstream {upstream} answered RCODE {rcode}");
                        fallback = Some(reply);
                        continue;
                    }
                    return Some(reply);
                }
                Ok(Err(e)) => tracing::debug!("DNS upstream {upstream}: {e}"),
                Err(_) => tracing::debug!("DNS upstream {upstream}: no answer in time"),
            }
        }
        fallback.or_else(|| servfail(query))
    }
}

/// Sends `query` to `upstream` from a new socket (a random port) and waits
/// for the reply with the same ID.
async fn exchange_udp(upstream: SocketAddr, query: &[u8], id: [u8; 2]) -> io::Result<Vec<u8>> {
    let local = match upstream.ip() {
        IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        IpAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let sock = UdpSocket::bind(local).await?;
    // Connected: only the upstream's datagrams arrive, and an ICMP port
    // unreachable ends the wait at once.
    sock.connect(upstream).await?;
    sock.send(query).await?;
    loop {
        sock.readable().await?;
        match recv_reply(&sock) {
            Ok(r) if is_reply_to(&r, id) => return Ok(r),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// One datagram from `sock`, however large (the buffer lives only here).
fn recv_reply(sock: &UdpSocket) -> io::Result<Vec<u8>> {
    let mut buf = [0u8; 65536];
    let n = sock.try_recv(&mut buf)?;
    Ok(buf[..n].to_vec())
}

/// Asks `upstream` over TCP.
async fn exchange_tcp(upstream: SocketAddr, query: &[u8], id: [u8; 2]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    write_frame(&mut stream, query).await?;
    let reply = read_frame(&mut stream).await?;
    if !is_reply_to(&reply, id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a reply to the query",
        ));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use std::collections::HashMap;
    use std::time::Instant;

    /// Names from a table: name → addresses; reverse gives `name.net`.
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

    const WEB: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
    /// What the fake upstreams answer.
    const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 9);

    fn table() -> Arc<Table> {
        let many = (1..=100).map(|i| Ipv4Addr::new(10, 2, 0, i)).collect();
        Arc::new(Table(
            [
                ("web".to_string(), vec![WEB]),
                ("db.1".to_string(), vec![Ipv4Addr::new(10, 1, 0, 3)]),
                (
                    "multi".to_string(),
                    vec![Ipv4Addr::new(10, 3, 0, 1), Ipv4Addr::new(10, 3, 0, 2)],
                ),
                ("many".to_string(), many),
                // Reverse of 10.1.0.0: what a partial in-addr.arpa name
                // must not be taken for.
                ("net0".to_string(), vec![Ipv4Addr::new(10, 1, 0, 0)]),
            ]
            .into(),
        ))
    }

    fn query(name: &str, kind: RecordType, id: u16) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), kind));
        m.to_vec().expect("encode")
    }

    fn query_edns(name: &str, kind: RecordType, id: u16, payload: u16) -> Vec<u8> {
        let mut m = Message::from_vec(&query(name, kind, id)).expect("parse");
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        m.set_edns(edns);
        m.to_vec().expect("encode")
    }

    fn parse(bytes: &[u8]) -> Message {
        Message::from_vec(bytes).expect("a DNS message")
    }

    fn reply(a: Answer) -> Message {
        match a {
            Answer::Reply(r) => parse(&r),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn a_records(m: &Message) -> Vec<Ipv4Addr> {
        m.answers
            .iter()
            .map(|r| match &r.data {
                RData::A(A(ip)) => *ip,
                other => panic!("not an A record: {other:?}"),
            })
            .collect()
    }

    /// A small deterministic generator for garbage.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn a_for_a_known_name_any_case_with_or_without_the_dot() {
        let t = table();
        for (name, id) in [("web", 7u16), ("WEB.", 8), ("wEb", 9)] {
            let m = reply(answer(&query(name, RecordType::A, id), &*t));
            assert_eq!(m.metadata.id, id);
            assert_eq!(m.metadata.message_type, MessageType::Response);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert!(m.metadata.authoritative, "AA");
            assert!(m.metadata.recursion_available, "RA");
            assert!(m.metadata.recursion_desired, "RD echoed");
            assert!(!m.metadata.truncation);
            assert_eq!(m.queries.len(), 1, "the question echoed");
            assert_eq!(a_records(&m), vec![WEB]);
            assert_eq!(m.answers[0].ttl, TTL);
            // The owner name as asked (clients compare it, some with 0x20).
            assert_eq!(
                m.answers[0].name.to_ascii(),
                format!("{}.", name.trim_end_matches('.'))
            );
        }
        // Dots inside a container name are labels on the wire.
        assert_eq!(
            a_records(&reply(answer(&query("DB.1", RecordType::A, 1), &*t))).len(),
            1
        );
    }

    #[test]
    fn several_addresses_are_all_given_and_rotated_by_id() {
        let t = table();
        let first = a_records(&reply(answer(&query("multi", RecordType::A, 2), &*t)));
        let second = a_records(&reply(answer(&query("multi", RecordType::A, 3), &*t)));
        assert_eq!(first.len(), 2);
        assert_ne!(first, second);
        let (mut a, mut b) = (first.clone(), second.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn other_types_of_a_known_name_are_empty_noerror() {
        let t = table();
        for kind in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
            let m = reply(answer(&query("Web.", kind, 5), &*t));
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{kind}");
            assert!(m.metadata.authoritative);
            assert!(m.answers.is_empty(), "{kind}");
        }
        // A name of nobody's: upstream's business.
        assert_eq!(
            answer(&query("nobody", RecordType::AAAA, 5), &*t),
            Answer::Forward
        );
    }

    #[test]
    fn ptr_of_a_known_address_only() {
        let t = table();
        let m = reply(answer(
            &query("2.0.1.10.in-addr.arpa.", RecordType::PTR, 9),
            &*t,
        ));
        assert_eq!(m.metadata.id, 9);
        assert!(m.metadata.authoritative);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].ttl, TTL);
        assert_eq!(
            m.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("web.net.").expect("name")))
        );
        // Upper case works too.
        let m = reply(answer(
            &query("2.0.1.10.IN-ADDR.ARPA", RecordType::PTR, 9),
            &*t,
        ));
        assert_eq!(m.answers.len(), 1);
        // Unknown address, partial names (not 10.1.0.0), other trees.
        for name in [
            "9.9.1.10.in-addr.arpa.",
            "1.10.in-addr.arpa.",
            "0.1.10.in-addr.arpa.",
            "x.0.1.10.in-addr.arpa.",
            "256.0.1.10.in-addr.arpa.",
            "2.0.1.10.in-addr.arpa.example.",
            "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
        ] {
            assert_eq!(
                answer(&query(name, RecordType::PTR, 1), &*t),
                Answer::Forward,
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_names_and_other_classes_are_forwarded() {
        let t = table();
        assert_eq!(
            answer(&query("example.com.", RecordType::A, 1), &*t),
            Answer::Forward
        );
        assert_eq!(
            answer(&query("web.example.com.", RecordType::A, 1), &*t),
            Answer::Forward
        );
        assert_eq!(answer(&query(".", RecordType::NS, 1), &*t), Answer::Forward);
        let mut m = Message::from_vec(&query("web", RecordType::A, 1)).expect("parse");
        m.queries[0].set_query_class(DNSClass::CH);
        assert_eq!(answer(&m.to_vec().expect("encode"), &*t), Answer::Forward);
    }

    #[test]
    fn not_queries_are_dropped_or_refused() {
        let t = table();
        let good = query("web", RecordType::A, 0x1234);
        for garbage in [
            &b""[..],
            b"\x01",
            &good[..11],
            &good[..12],
            &good[..good.len() - 1],
            &[0xff; 40],
        ] {
            assert_eq!(answer(garbage, &*t), Answer::Drop, "{garbage:?}");
        }
        // A response is not answered (no loops between servers).
        let mut m = parse(&good);
        m.metadata.message_type = MessageType::Response;
        assert_eq!(answer(&m.to_vec().expect("encode"), &*t), Answer::Drop);
        // No question.
        let empty = Message::new(3, MessageType::Query, OpCode::Query);
        assert_eq!(answer(&empty.to_vec().expect("encode"), &*t), Answer::Drop);
        // Another opcode: NOTIMP.
        let mut m = parse(&good);
        m.metadata.op_code = OpCode::Status;
        let r = reply(answer(&m.to_vec().expect("encode"), &*t));
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
        assert_eq!(r.metadata.id, 0x1234);
        // Two questions: FORMERR.
        let mut m = parse(&good);
        m.add_query(Query::query(
            Name::from_ascii("db.1").expect("n"),
            RecordType::A,
        ));
        let r = reply(answer(&m.to_vec().expect("encode"), &*t));
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn random_and_mangled_input_never_panics() {
        let t = table();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let good = query_edns("web", RecordType::A, 77, 1232);
        for round in 0..20_000 {
            let input = if round % 2 == 0 {
                let n = (rng.next() % 600) as usize;
                rng.bytes(n)
            } else {
                // A real query with a few bytes changed and maybe cut.
                let mut q = good.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let i = (rng.next() as usize) % q.len();
                    q[i] = rng.next() as u8;
                }
                let keep = q.len() - (rng.next() as usize % 4);
                q.truncate(keep);
                q
            };
            for transport in [Transport::Udp, Transport::Tcp] {
                if let Answer::Reply(r) = respond(&input, &*t, transport) {
                    // Whatever is answered is a response to the same ID.
                    assert!(is_reply_to(&r, [input[0], input[1]]), "{input:?}");
                }
            }
        }
    }

    #[test]
    fn udp_replies_fit_what_the_client_takes() {
        let t = table();
        // Without EDNS: 512 bytes, TC set, the first addresses kept.
        let Answer::Reply(r) = respond(&query("many", RecordType::A, 4), &*t, Transport::Udp)
        else {
            panic!("a reply")
        };
        assert!(r.len() <= 512, "{}", r.len());
        let m = parse(&r);
        assert!(m.metadata.truncation);
        assert!(
            m.answers.len() > 20 && m.answers.len() < 100,
            "{}",
            m.answers.len()
        );
        // With EDNS (4096): all of them, and an OPT record back.
        let q = query_edns("many", RecordType::A, 4, 4096);
        let Answer::Reply(r) = respond(&q, &*t, Transport::Udp) else {
            panic!("a reply")
        };
        let m = parse(&r);
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 100);
        assert!(m.edns.is_some());
        // Over TCP (and from `answer`): all of them.
        let m = reply(answer(&query("many", RecordType::A, 4), &*t));
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 100);
        assert!(m.edns.is_none());
    }

    #[test]
    fn upstreams_without_a_port_get_53() {
        let r = Resolver::new(vec![
            "192.0.2.1:0".parse().expect("addr"),
            "192.0.2.2:5353".parse().expect("addr"),
        ]);
        let ports: Vec<u16> = r.config.upstreams.iter().map(SocketAddr::port).collect();
        assert_eq!(ports, vec![53, 5353]);
        assert_eq!(r.config.timeout, UPSTREAM_TIMEOUT);
        assert_eq!(
            r.with_timeout(Duration::from_millis(5)).config.timeout,
            Duration::from_millis(5)
        );
    }

    #[test]
    fn serve_outside_a_runtime_does_not_panic() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let h = Resolver::new(vec![]).serve(udp, None, table());
        assert!(!h.is_serving());
    }

    // ---- the server, on loopback ----

    /// How an upstream answers.
    #[derive(Clone, Copy)]
    enum Upstream {
        /// With `ELSEWHERE` for every name.
        Answers,
        /// SERVFAIL.
        Fails,
        /// Over UDP a reply with another ID and `BOGUS` first, then the
        /// right one; over TCP only the wrong one.
        WrongId,
    }

    /// What a reply with the wrong ID carries.
    const BOGUS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 66);

    fn upstream_reply(query: &[u8], how: Upstream) -> Vec<u8> {
        let q = parse(query);
        let mut m = Message::response(q.metadata.id, OpCode::Query);
        m.metadata.recursion_available = true;
        m.queries = q.queries.clone();
        match how {
            Upstream::Answers => {
                m.add_answer(Record::from_rdata(
                    q.queries[0].name().clone(),
                    60,
                    RData::A(A(ELSEWHERE)),
                ));
            }
            Upstream::Fails => m.metadata.response_code = ResponseCode::ServFail,
            Upstream::WrongId => {
                m.metadata.id = q.metadata.id.wrapping_add(1);
                m.add_answer(Record::from_rdata(
                    q.queries[0].name().clone(),
                    60,
                    RData::A(A(BOGUS)),
                ));
            }
        }
        m.to_vec().expect("encode")
    }

    /// The queries an upstream got (transport, bytes).
    type Got = Arc<std::sync::Mutex<Vec<(Transport, Vec<u8>)>>>;

    /// A fake upstream on 127.0.0.1, UDP and TCP on one port.
    struct FakeUpstream {
        addr: SocketAddr,
        got: Got,
        tasks: Vec<JoinHandle<()>>,
    }

    impl Drop for FakeUpstream {
        fn drop(&mut self) {
            for t in &self.tasks {
                t.abort();
            }
        }
    }

    async fn fake_upstream(how: Upstream) -> FakeUpstream {
        // A port free for both UDP and TCP.
        let (tcp, udp) = loop {
            let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
            let addr = tcp.local_addr().expect("addr");
            if let Ok(udp) = UdpSocket::bind(addr).await {
                break (tcp, udp);
            }
        };
        let addr = udp.local_addr().expect("addr");
        let got: Got = Arc::default();
        let g = got.clone();
        let u = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = udp.recv_from(&mut buf).await {
                g.lock()
                    .expect("lock")
                    .push((Transport::Udp, buf[..n].to_vec()));
                let _ = udp.send_to(&upstream_reply(&buf[..n], how), from).await;
                if let Upstream::WrongId = how {
                    let right = upstream_reply(&buf[..n], Upstream::Answers);
                    let _ = udp.send_to(&right, from).await;
                }
            }
        });
        let g = got.clone();
        let t = tokio::spawn(async move {
            while let Ok((mut s, _)) = tcp.accept().await {
                let g = g.clone();
                tokio::spawn(async move {
                    while let Ok(q) = read_frame(&mut s).await {
                        g.lock().expect("lock").push((Transport::Tcp, q.clone()));
                        if write_frame(&mut s, &upstream_reply(&q, how)).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeUpstream {
            addr,
            got,
            tasks: vec![u, t],
        }
    }

    /// A loopback address nothing listens on (UDP or TCP).
    fn dead_address() -> SocketAddr {
        let s = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = s.local_addr().expect("addr");
        drop(s);
        addr
    }

    struct Server {
        udp: SocketAddr,
        tcp: SocketAddr,
        handle: ServeHandle,
    }

    fn start(resolver: &Resolver) -> Server {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (u, t) = (udp.local_addr().expect("a"), tcp.local_addr().expect("a"));
        let handle = resolver.serve(udp, Some(tcp), table());
        assert!(handle.is_serving());
        Server {
            udp: u,
            tcp: t,
            handle,
        }
    }

    async fn ask_udp_from(c: &UdpSocket, server: SocketAddr, q: &[u8]) -> Option<Vec<u8>> {
        c.send_to(q, server).await.expect("send");
        let mut buf = vec![0u8; 65536];
        let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf[..n].to_vec())
    }

    async fn ask_udp(server: SocketAddr, q: &[u8]) -> Option<Vec<u8>> {
        let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        ask_udp_from(&c, server, q).await
    }

    async fn ask_tcp(s: &mut TcpStream, q: &[u8]) -> Message {
        write_frame(s, q).await.expect("write");
        let r = tokio::time::timeout(Duration::from_secs(5), read_frame(s))
            .await
            .expect("a reply in time")
            .expect("read");
        parse(&r)
    }

    #[tokio::test]
    async fn udp_local_names_forwarding_and_garbage() {
        let up = fake_upstream(Upstream::Answers).await;
        let server = start(&Resolver::new(vec![up.addr]));

        // Garbage first, from the client that asks next: ignored.
        let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let mut rng = XorShift(42);
        let good = query("web", RecordType::A, 11);
        let mut garbage = vec![
            Vec::new(),
            vec![0u8],
            good[..11].to_vec(),
            good[..good.len() - 2].to_vec(),
        ];
        for _ in 0..50 {
            let n = 1 + (rng.next() % 300) as usize;
            garbage.push(rng.bytes(n));
        }
        for g in &garbage {
            c.send_to(g, server.udp).await.expect("send");
        }
        let r = parse(
            &ask_udp_from(&c, server.udp, &good)
                .await
                .expect("an answer"),
        );
        assert_eq!(
            r.metadata.id, 11,
            "the reply to the good query, not to garbage"
        );
        assert_eq!(a_records(&r), vec![WEB]);
        assert!(
            up.got.lock().expect("lock").is_empty(),
            "known names stay here"
        );

        // Unknown: forwarded verbatim over UDP, relayed with the ID.
        let q = query("Elsewhere.Test", RecordType::A, 12);
        let r = parse(&ask_udp(server.udp, &q).await.expect("an answer"));
        assert_eq!(r.metadata.id, 12);
        assert_eq!(a_records(&r), vec![ELSEWHERE]);
        assert_eq!(*up.got.lock().expect("lock"), vec![(Transport::Udp, q)]);

        // PTR and AAAA over the socket too.
        let r = parse(
            &ask_udp(
                server.udp,
                &query("2.0.1.10.in-addr.arpa", RecordType::PTR, 13),
            )
            .await
            .expect("an answer"),
        );
        assert_eq!(r.answers.len(), 1);
        let r = parse(
            &ask_udp(server.udp, &query("web", RecordType::AAAA, 14))
                .await
                .expect("an answer"),
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        assert_eq!(
            up.got.lock().expect("lock").len(),
            1,
            "AAAA of a container is not forwarded"
        );

        // A big answer over UDP is cut to 512 bytes with TC.
        let r = ask_udp(server.udp, &query("many", RecordType::A, 15))
            .await
            .expect("an answer");
        assert!(r.len() <= 512);
        assert!(parse(&r).metadata.truncation);
        assert!(server.handle.is_serving());
    }

    #[tokio::test]
    async fn upstreams_are_tried_in_order() {
        let failing = fake_upstream(Upstream::Fails).await;
        let good = fake_upstream(Upstream::Answers).await;
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let resolver = Resolver::new(vec![
            dead_address(),
            silent.local_addr().expect("addr"),
            failing.addr,
            good.addr,
        ])
        .with_timeout(Duration::from_millis(300));
        let server = start(&resolver);
        let started = Instant::now();
        let r = parse(
            &ask_udp(server.udp, &query("x.test", RecordType::A, 21))
                .await
                .expect("an answer"),
        );
        assert_eq!(r.metadata.id, 21);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(a_records(&r), vec![ELSEWHERE]);
        assert_eq!(
            failing.got.lock().expect("lock").len(),
            1,
            "SERVFAIL: the next one is asked"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );

        // Replies with another ID are not taken (UDP: the right one comes
        // next; TCP: the next server is asked).
        let wrong = fake_upstream(Upstream::WrongId).await;
        let server = start(&Resolver::new(vec![wrong.addr, good.addr]));
        let r = parse(
            &ask_udp(server.udp, &query("x.test", RecordType::A, 23))
                .await
                .expect("an answer"),
        );
        assert_eq!((r.metadata.id, a_records(&r)), (23, vec![ELSEWHERE]));
        let mut s = TcpStream::connect(server.tcp).await.expect("connect");
        let r = ask_tcp(&mut s, &query("x.test", RecordType::A, 24)).await;
        assert_eq!((r.metadata.id, a_records(&r)), (24, vec![ELSEWHERE]));
        assert_eq!(
            wrong.got.lock().expect("lock").len(),
            2,
            "asked first both times"
        );

        // Only failing ones: their SERVFAIL is relayed.
        let server = start(&Resolver::new(vec![failing.addr]));
        let r = parse(
            &ask_udp(server.udp, &query("x.test", RecordType::A, 22))
                .await
                .expect("an answer"),
        );
        assert_eq!(
            (r.metadata.id, r.metadata.response_code),
            (22, ResponseCode::ServFail)
        );
    }

    #[tokio::test]
    async fn servfail_without_upstreams_or_with_dead_ones() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        for (upstreams, id) in [
            (vec![], 31u16),
            (vec![dead_address()], 32),
            (vec![silent.local_addr().expect("addr"), dead_address()], 33),
        ] {
            let server = start(&Resolver::new(upstreams).with_timeout(Duration::from_millis(200)));
            let started = Instant::now();
            let q = query_edns("x.test", RecordType::A, id, 1232);
            let r = parse(&ask_udp(server.udp, &q).await.expect("an answer"));
            assert_eq!(r.metadata.id, id);
            assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
            assert!(!r.metadata.authoritative);
            assert_eq!(r.queries.len(), 1);
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{:?}",
                started.elapsed()
            );
            // Over TCP too.
            let mut s = TcpStream::connect(server.tcp).await.expect("connect");
            let r = ask_tcp(&mut s, &query("x.test", RecordType::A, id + 100)).await;
            assert_eq!(
                (r.metadata.id, r.metadata.response_code),
                (id + 100, ResponseCode::ServFail)
            );
        }
    }

    #[tokio::test]
    async fn tcp_several_queries_per_connection_forwarded_over_tcp() {
        let up = fake_upstream(Upstream::Answers).await;
        let server = start(&Resolver::new(vec![up.addr]));
        let mut s = TcpStream::connect(server.tcp).await.expect("connect");
        let r = ask_tcp(&mut s, &query("web.", RecordType::A, 41)).await;
        assert_eq!((r.metadata.id, a_records(&r)), (41, vec![WEB]));
        // Garbage in a frame, and an empty frame: skipped, the connection stays.
        write_frame(&mut s, &[0xff; 30]).await.expect("write");
        write_frame(&mut s, &[]).await.expect("write");
        let r = ask_tcp(&mut s, &query("MANY", RecordType::A, 42)).await;
        assert_eq!(r.metadata.id, 42);
        assert_eq!(r.answers.len(), 100, "no UDP limit over TCP");
        let q = query("elsewhere.test.", RecordType::A, 43);
        let r = ask_tcp(&mut s, &q).await;
        assert_eq!((r.metadata.id, a_records(&r)), (43, vec![ELSEWHERE]));
        assert_eq!(*up.got.lock().expect("lock"), vec![(Transport::Tcp, q)]);
        // Two queries in one write: two replies, in order.
        let (a, b) = (
            query("web", RecordType::A, 44),
            query("db.1", RecordType::A, 45),
        );
        let mut both = Vec::new();
        for q in [&a, &b] {
            both.extend_from_slice(&(q.len() as u16).to_be_bytes());
            both.extend_from_slice(q);
        }
        s.write_all(&both).await.expect("write");
        for id in [44, 45] {
            let r = parse(&read_frame(&mut s).await.expect("read"));
            assert_eq!(r.metadata.id, id);
            assert_eq!(r.answers.len(), 1);
        }
    }

    fn quick(resolver: Resolver, tcp_idle: Duration) -> Resolver {
        Resolver {
            config: Arc::new(Config {
                upstreams: resolver.config.upstreams.clone(),
                timeout: resolver.config.timeout,
                tcp_idle,
            }),
        }
    }

    #[tokio::test]
    async fn tcp_connections_are_capped_and_idle_ones_closed() {
        let server = start(&quick(Resolver::new(vec![]), Duration::from_millis(1500)));
        let mut idle = Vec::new();
        for _ in 0..MAX_TCP_CONNECTIONS {
            let mut s = TcpStream::connect(server.tcp).await.expect("connect");
            // Served (accepted) before the next one.
            let r = ask_tcp(&mut s, &query("web", RecordType::A, 1)).await;
            assert_eq!(r.answers.len(), 1);
            idle.push(s);
        }
        // One more: the kernel queues it, the server does not take it yet.
        let mut extra = TcpStream::connect(server.tcp).await.expect("connect");
        write_frame(&mut extra, &query("web", RecordType::A, 2))
            .await
            .expect("write");
        let waited = tokio::time::timeout(Duration::from_millis(300), read_frame(&mut extra)).await;
        assert!(waited.is_err(), "answered beyond the cap");
        // One closes: the queued one is served.
        drop(idle.pop());
        let r = tokio::time::timeout(Duration::from_secs(1), read_frame(&mut extra))
            .await
            .expect("served once a slot is free")
            .expect("read");
        assert_eq!(parse(&r).metadata.id, 2);
        // The idle ones are closed by the server after the idle time.
        let mut s = idle.pop().expect("one");
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut byte))
            .await
            .expect("closed in time")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed");
    }

    #[tokio::test]
    async fn dropping_the_handle_closes_everything() {
        // An upstream that never answers: a forwarded query stays in flight
        // (holding the server's UDP socket to reply on) when the handle goes.
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let resolver = Resolver::new(vec![silent.local_addr().expect("addr")])
            .with_timeout(Duration::from_secs(30));
        let server = start(&resolver);
        let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        c.send_to(&query("x.test", RecordType::A, 2), server.udp)
            .await
            .expect("send");
        let mut buf = [0u8; 512];
        tokio::time::timeout(Duration::from_secs(2), silent.recv(&mut buf))
            .await
            .expect("forwarded in time")
            .expect("recv");
        let mut s = TcpStream::connect(server.tcp).await.expect("connect");
        assert_eq!(
            ask_tcp(&mut s, &query("web", RecordType::A, 1))
                .await
                .answers
                .len(),
            1
        );
        let (udp, tcp) = (server.udp, server.tcp);
        drop(server.handle);
        // The open connection is closed (its task ended with the server)...
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut byte))
            .await
            .expect("closed in time")
            .unwrap_or(0);
        assert_eq!(n, 0);
        // ...and both sockets are released (the namespace may go).
        assert!(TcpStream::connect(tcp).await.is_err(), "still listening");
        let mut rebound = None;
        for _ in 0..100 {
            if let Ok(u) = std::net::UdpSocket::bind(udp) {
                rebound = Some(u);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(rebound.is_some(), "the UDP socket was not closed");
    }
}
