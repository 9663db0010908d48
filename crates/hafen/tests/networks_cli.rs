//! Networks through the `hafen` CLI, against a private daemon that runs in
//! a network namespace this test makes (see `support::daemon`): bridges,
//! veths, addresses, published ports (nftables), the embedded DNS server,
//! `network` commands, connect/disconnect, and what is left after errors.
//! Traffic goes only to loopback and to the test's own containers, inside
//! that namespace; forwarding and masquerading stay off.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::daemon::Daemon;

struct Out {
    stdout: String,
    stderr: String,
    code: i32,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn out(o: Output) -> Out {
    Out {
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code().unwrap_or(-1),
    }
}

fn h(d: &Daemon, args: &[&str]) -> Out {
    out(d.output(args))
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let o = h(d, args);
    assert_eq!(o.code, 0, "hafen {args:?}: {o:?}");
    o.stdout
}

fn fails(d: &Daemon, args: &[&str], code: i32) -> String {
    let o = h(d, args);
    assert_eq!(o.code, code, "hafen {args:?} should end with {code}: {o:?}");
    o.stderr
}

fn inspect(d: &Daemon, format: &str, name: &str) -> String {
    ok(d, &["inspect", "-f", format, name]).trim().to_string()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn setup() -> Daemon {
    let d = Daemon::new();
    d.busybox();
    d
}

/// `busybox <args>` (the host's busybox-static) inside the daemon's
/// namespace, as the host's programs would run.
fn host_busybox(d: &Daemon, args: &[&str]) -> Out {
    let mut c = d.in_netns("busybox");
    out(c.args(args).output().unwrap())
}

/// GET `url` from the daemon's namespace; the body, once it answers.
fn fetch(d: &Daemon, url: &str) -> String {
    let mut last = None;
    for _ in 0..100 {
        let o = host_busybox(d, &["wget", "-q", "-O", "-", url]);
        if o.code == 0 {
            return o.stdout;
        }
        last = Some(o);
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} does not answer: {last:?}");
}

/// A web server container serving `body` on port 80.
fn web(d: &Daemon, extra: &[&str], body: &str) -> String {
    let script =
        format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    ok(d, &args).trim().to_string()
}

/// `ip <args>` in the daemon's namespace.
fn ip(d: &Daemon, args: &[&str]) -> String {
    let o = out(Command::new("ip")
        .arg("-n")
        .arg(&d.netns)
        .args(args)
        .output()
        .unwrap());
    assert_eq!(o.code, 0, "ip {args:?}: {o:?}");
    o.stdout
}

/// hafen's nftables table in the daemon's namespace.
fn nft_table(d: &Daemon) -> String {
    let o = out(d
        .in_netns("nft")
        .args(["list", "table", "ip", "hafen"])
        .output()
        .unwrap());
    o.stdout
}

/// The veths on the daemon's host side.
fn veths(d: &Daemon) -> Vec<String> {
    ip(d, &["-o", "link", "show", "type", "veth"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

#[test]
fn the_default_bridge_gives_an_address_and_publishes_ports() {
    let d = setup();
    let id = web(
        &d,
        &["--name", "web", "-p", "8080:80", "-p", "127.0.0.1::80"],
        "hello",
    );
    let addr = inspect(&d, "{{.NetworkSettings.IPAddress}}", "web");
    let gw = inspect(&d, "{{.NetworkSettings.Gateway}}", "web");
    assert!(addr.starts_with("172.17.0."), "{addr}");
    assert_eq!(gw, "172.17.0.1");
    assert_eq!(
        inspect(&d, "{{.NetworkSettings.Networks.bridge.IPAddress}}", "web"),
        addr
    );
    let mac = inspect(&d, "{{.NetworkSettings.MacAddress}}", "web");
    assert!(mac.starts_with("02:42:ac:11:00:"), "{mac}");

    // Inside: eth0 with the address and MAC, a default route, /etc/hosts.
    let inside = ok(&d, &["exec", "web", "ip", "addr", "show", "eth0"]);
    assert!(inside.contains(&format!("inet {addr}/16")), "{inside}");
    assert!(inside.contains(&mac), "{inside}");
    let route = ok(&d, &["exec", "web", "ip", "route"]);
    assert!(route.contains("default via 172.17.0.1 dev eth0"), "{route}");
    let hosts = ok(&d, &["exec", "web", "cat", "/etc/hosts"]);
    assert!(
        hosts.ends_with(&format!("{addr}\t{}\n", &id[..12])),
        "{hosts}"
    );
    let lo = ok(&d, &["exec", "web", "ip", "link", "show", "lo"]);
    assert!(lo.contains("UP"), "{lo}");

    // The port: on every host address, 127.0.0.1 included, and the
    // container's own address directly.
    assert_eq!(fetch(&d, "http://127.0.0.1:8080/"), "hello\n");
    assert_eq!(fetch(&d, "http://172.17.0.1:8080/"), "hello\n");
    assert_eq!(fetch(&d, &format!("http://{addr}/")), "hello\n");
    let ports = ok(&d, &["port", "web"]);
    let random: u16 = ports
        .lines()
        .find_map(|l| l.strip_prefix("80/tcp -> 127.0.0.1:"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(ports.contains("80/tcp -> 0.0.0.0:8080"), "{ports}");
    assert_eq!(fetch(&d, &format!("http://127.0.0.1:{random}/")), "hello\n");
    let ps = ok(&d, &["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains("0.0.0.0:8080->80/tcp"), "{ps}");
    assert!(ps.contains(&format!("127.0.0.1:{random}->80/tcp")), "{ps}");
    assert!(nft_table(&d).contains(&format!("8080 : {addr} . 80")));
    let netio = ok(
        &d,
        &["stats", "--no-stream", "--format", "{{.NetIO}}", "web"],
    );
    assert_ne!(netio.trim(), "0B / 0B", "the stats count eth0's traffic");
    let raw = ok(
        &d,
        &["stats", "--no-stream", "--format", "{{json .}}", "web"],
    );
    assert!(!raw.is_empty());

    // A second container gets the next address and reaches the first.
    let other = ok(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            &format!("ip -4 -o addr show eth0; wget -q -O - http://{addr}/"),
        ],
    );
    assert!(other.contains("inet 172.17.0."), "{other}");
    assert!(!other.contains(&format!("inet {addr}/")), "{other}");
    assert!(other.ends_with("hello\n"), "{other}");

    // Gone: the veth, the rules, the address (a new container may have it
    // again only after the others went round).
    // The second container's pair goes with its namespace.
    wait_for("one veth", || veths(&d).len() == 1);
    ok(&d, &["rm", "-f", "web"]);
    wait_for("the veths to go", || veths(&d).is_empty());
    let table = nft_table(&d);
    assert!(!table.contains("8080"), "{table}");
    assert!(!table.contains(&addr), "{table}");
    let ipam = std::fs::read_dir(d.root().join("networks"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            std::fs::read_dir(e.path().join("ipam"))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum::<usize>();
    assert_eq!(ipam, 0, "addresses are freed");
}

#[test]
fn none_host_and_container_modes() {
    let d = setup();
    let none = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ip",
            "-o",
            "link",
        ],
    );
    assert_eq!(none.lines().count(), 1, "{none}");
    assert!(none.contains("lo:") && none.contains("UP"), "{none}");
    assert_eq!(
        ok(
            &d,
            &["run", "--rm", "--network", "none", "busybox", "ip", "route"]
        ),
        ""
    );

    // host: the daemon's namespace (the test's), its links.
    ip(&d, &["link", "add", "hostmark0", "type", "bridge"]);
    let host = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ip",
            "-o",
            "link",
        ],
    );
    assert!(host.contains("hostmark0"), "{host}");
    assert!(host.contains("hafen0"), "{host}");

    // container:NAME shares another container's namespace.
    let web = web(&d, &["--name", "web"], "shared");
    let addr = inspect(&d, "{{.NetworkSettings.IPAddress}}", "web");
    let got = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "container:web",
            "busybox",
            "sh",
            "-c",
            "ip -4 -o addr show eth0; wget -q -O - http://127.0.0.1/",
        ],
    );
    assert!(got.contains(&format!("inet {addr}/")), "{got}");
    assert!(got.ends_with("shared\n"), "{got}");
    let e = fails(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "container:web",
            "-p",
            "80:80",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(
        e.contains("conflicting options: port publishing and the container type network mode"),
        "{e}"
    );
    ok(&d, &["stop", "-t", "0", &web]);
    let e = fails(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "container:web",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(e.contains("non running container"), "{e}");
    let e = fails(
        &d,
        &["run", "--rm", "--network", "nosuchnet", "busybox", "true"],
        125,
    );
    assert!(e.contains("network nosuchnet not found"), "{e}");
}

#[test]
fn user_defined_networks_resolve_names_and_are_isolated() {
    let d = setup();
    let net = ok(
        &d,
        &[
            "network",
            "create",
            "--subnet",
            "10.201.0.0/24",
            "--label",
            "team=a",
            "appnet",
        ],
    );
    let net = net.trim();
    assert_eq!(net.len(), 64, "{net}");
    web(
        &d,
        &[
            "--name",
            "db",
            "--network",
            "appnet",
            "--network-alias",
            "database",
            "--ip",
            "10.201.0.50",
        ],
        "from-db",
    );
    assert_eq!(
        inspect(&d, "{{.NetworkSettings.Networks.appnet.IPAddress}}", "db"),
        "10.201.0.50"
    );
    let db_id = inspect(&d, "{{.Id}}", "db");

    let script = format!(
        "cat /etc/resolv.conf; for n in db database DB.appnet {}; do wget -q -O - http://$n/ || echo fail $n; done",
        &db_id[..12]
    );
    let got = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "appnet",
            "busybox",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(got.contains("nameserver 127.0.0.11\n"), "{got}");
    assert!(got.contains("options ndots:0"), "{got}");
    assert_eq!(got.matches("from-db").count(), 4, "{got}");

    // The default bridge has no names, and reaches nothing on appnet.
    let other = ok(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "wget -q -T 2 -O - http://db/ || echo no-name; wget -q -T 2 -O - http://10.201.0.50/ || echo no-route",
        ],
    );
    assert!(other.contains("no-name"), "{other}");
    assert!(other.contains("no-route"), "{other}");

    // Inspect shows the network with its container.
    let v: Value = serde_json::from_str(&ok(&d, &["network", "inspect", "appnet"])).unwrap();
    let n = &v[0];
    assert_eq!(n["Name"], "appnet");
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.201.0.0/24");
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.201.0.1");
    assert_eq!(n["Labels"]["team"], "a");
    assert_eq!(n["Containers"][&db_id]["Name"], "db");
    assert_eq!(n["Containers"][&db_id]["IPv4Address"], "10.201.0.50/24");
    let ls = ok(
        &d,
        &[
            "network",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}",
        ],
    );
    for want in [
        "appnet bridge local",
        "bridge bridge local",
        "host host local",
        "none null local",
    ] {
        assert!(ls.lines().any(|l| l == want), "{want} in {ls}");
    }
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let d = setup();
    ok(
        &d,
        &["network", "create", "--subnet", "10.202.0.0/24", "one"],
    );
    let links_before = ip(&d, &["-o", "link"]).lines().count();
    let e = fails(
        &d,
        &["network", "create", "--subnet", "10.202.0.128/25", "two"],
        1,
    );
    assert!(e.contains("overlaps"), "{e}");
    let e = fails(&d, &["network", "create", "one"], 1);
    assert!(e.contains("network with name one already exists"), "{e}");
    let e = fails(
        &d,
        &[
            "network",
            "create",
            "--subnet",
            "10.203.0.0/24",
            "--gateway",
            "10.9.0.1",
            "three",
        ],
        1,
    );
    assert!(e.contains("10.9.0.1"), "{e}");
    let e = fails(
        &d,
        &["network", "create", "--subnet", "10.204.0.0/31", "four"],
        1,
    );
    assert!(e.contains("too small"), "{e}");
    assert_eq!(
        ip(&d, &["-o", "link"]).lines().count(),
        links_before,
        "no bridge was left"
    );

    // A used IP, a taken host port (by hafen, by another program).
    web(
        &d,
        &[
            "--name",
            "alpha",
            "--network",
            "one",
            "--ip",
            "10.202.0.9",
            "-p",
            "9090:80",
        ],
        "a",
    );
    let veths_before = veths(&d);
    let table_before = nft_table(&d);
    let e = fails(
        &d,
        &[
            "run",
            "-d",
            "--network",
            "one",
            "--ip",
            "10.202.0.9",
            "busybox",
            "sleep",
            "9",
        ],
        125,
    );
    assert!(e.contains("Address already in use"), "{e}");
    let e = fails(
        &d,
        &[
            "run",
            "-d",
            "--network",
            "one",
            "-p",
            "9090:80",
            "busybox",
            "sleep",
            "9",
        ],
        125,
    );
    assert!(
        e.contains("Bind for 0.0.0.0:9090 failed: port is already allocated"),
        "{e}"
    );
    let mut holder = d
        .in_netns("busybox")
        .args(["nc", "-l", "-p", "9191"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("nc to listen", || {
        ip(&d, &["-o", "link"]).contains("lo") && {
            let o = out(d
                .in_netns("busybox")
                .args(["netstat", "-ltn"])
                .output()
                .unwrap());
            o.stdout.contains(":9191")
        }
    });
    let e = fails(
        &d,
        &[
            "run",
            "-d",
            "--network",
            "one",
            "-p",
            "9191:80",
            "busybox",
            "sleep",
            "9",
        ],
        125,
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(e.contains("address already in use"), "{e}");
    assert_eq!(veths(&d), veths_before, "no veth was left");
    assert_eq!(nft_table(&d), table_before, "no rule was left");
    let e = fails(
        &d,
        &["run", "--rm", "--ip", "172.17.0.99", "busybox", "true"],
        125,
    );
    assert!(
        e.contains("user specified IP address is supported on user defined networks only"),
        "{e}"
    );

    // In use, connected twice, not connected.
    let e = fails(&d, &["network", "rm", "one"], 1);
    assert!(e.contains("has active endpoints"), "{e}");
    let e = fails(&d, &["network", "connect", "one", "alpha"], 1);
    assert!(e.contains("already exists in network one"), "{e}");
    let e = fails(&d, &["network", "disconnect", "bridge", "alpha"], 1);
    assert!(e.contains("is not connected to network bridge"), "{e}");
    let e = fails(&d, &["network", "rm", "bridge"], 1);
    assert!(e.contains("pre-defined network"), "{e}");
    ok(&d, &["rm", "-f", "alpha"]);
    ok(&d, &["network", "rm", "one"]);
    wait_for("the bridge to go", || {
        !ip(&d, &["-o", "link"]).contains("br-")
    });
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let d = setup();
    ok(
        &d,
        &["network", "create", "--subnet", "10.205.0.0/24", "back"],
    );
    web(&d, &["--name", "svc", "--network", "back"], "svc");
    ok(
        &d,
        &["run", "-d", "--name", "cli", "busybox", "sleep", "600"],
    );
    assert_eq!(
        ok(&d, &["exec", "cli", "ip", "-o", "-4", "addr"])
            .lines()
            .count(),
        2
    );
    ok(&d, &["network", "connect", "--alias", "cc", "back", "cli"]);
    let addrs = ok(&d, &["exec", "cli", "ip", "-o", "-4", "addr"]);
    assert!(
        addrs.contains("eth1") && addrs.contains("inet 10.205.0."),
        "{addrs}"
    );
    // Now on a user-defined network: it resolves svc.
    let got = ok(&d, &["exec", "cli", "wget", "-q", "-O", "-", "http://svc/"]);
    assert_eq!(got, "svc\n");
    let nets = inspect(
        &d,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        "cli",
    );
    assert_eq!(nets, "back bridge");
    ok(&d, &["network", "disconnect", "back", "cli"]);
    let addrs = ok(&d, &["exec", "cli", "ip", "-o", "-4", "addr"]);
    assert!(!addrs.contains("eth1"), "{addrs}");
    assert_eq!(
        inspect(
            &d,
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            "cli"
        ),
        "bridge"
    );
    // A stopped container is connected for its next start.
    ok(&d, &["stop", "-t", "0", "cli"]);
    ok(&d, &["network", "connect", "back", "cli"]);
    ok(&d, &["start", "cli"]);
    let addrs = ok(&d, &["exec", "cli", "ip", "-o", "-4", "addr"]);
    assert!(addrs.contains("inet 10.205.0."), "{addrs}");
}

#[test]
fn a_restarted_daemon_keeps_ports_addresses_and_names() {
    let d = setup();
    ok(
        &d,
        &["network", "create", "--subnet", "10.206.0.0/24", "keep"],
    );
    web(
        &d,
        &["--name", "keeper", "--network", "keep", "-p", "8181:80"],
        "kept",
    );
    let addr = inspect(&d, "{{.NetworkSettings.Networks.keep.IPAddress}}", "keeper");
    assert_eq!(fetch(&d, "http://127.0.0.1:8181/"), "kept\n");
    d.kill_hard();
    // The next command starts a new daemon: it finds the container, its
    // port and its name again.
    let ps = ok(&d, &["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert_eq!(ps.trim(), "keeper 0.0.0.0:8181->80/tcp");
    assert!(nft_table(&d).contains(&format!("8181 : {addr} . 80")));
    assert_eq!(fetch(&d, "http://127.0.0.1:8181/"), "kept\n");
    let got = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "keep",
            "busybox",
            "sh",
            "-c",
            "ip -4 -o addr show eth0; wget -q -O - http://keeper/",
        ],
    );
    assert!(!got.contains(&format!("inet {addr}/")), "{got}");
    assert!(got.ends_with("kept\n"), "{got}");
    let e = fails(&d, &["run", "-d", "-p", "8181:80", "busybox", "true"], 125);
    assert!(e.contains("port is already allocated"), "{e}");
}

/// A DNS server for one answer, on 127.0.0.1:53 inside the daemon's
/// namespace: every A question gets 10.9.9.9. Serves until dropped.
struct FakeUpstream {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeUpstream {
    fn start(d: &Daemon) -> FakeUpstream {
        let ns = std::fs::File::open(d.netns_path()).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            let sock = std::net::UdpSocket::bind("127.0.0.1:53").unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 512];
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if n < 12 {
                    continue;
                }
                // The question ends after its name and 4 bytes.
                let mut end = 12;
                while end < n && buf[end] != 0 {
                    end += 1 + buf[end] as usize;
                }
                end += 5;
                if end > n {
                    continue;
                }
                let qtype = u16::from_be_bytes([buf[end - 4], buf[end - 3]]);
                let mut reply = buf[..end].to_vec();
                reply[2] = 0x81;
                reply[3] = 0x80;
                let answers: u16 = if qtype == 1 { 1 } else { 0 };
                reply[6..8].copy_from_slice(&answers.to_be_bytes());
                reply[8..12].fill(0);
                if qtype == 1 {
                    reply.extend_from_slice(&[
                        0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 9, 9,
                    ]);
                }
                let _ = sock.send_to(&reply, from);
            }
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        FakeUpstream {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn other_names_are_forwarded_to_the_upstream_servers() {
    let d = Daemon::new();
    std::fs::write(
        d.config_file(),
        r#"{"ip-masq": false, "ip-forward": false, "dns": ["127.0.0.1"]}"#,
    )
    .unwrap();
    d.busybox();
    let _upstream = FakeUpstream::start(&d);
    ok(&d, &["network", "create", "fwd"]);
    let got = ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "fwd",
            "busybox",
            "nslookup",
            "-type=a",
            "somewhere.example",
        ],
    );
    assert!(got.contains("10.9.9.9"), "{got}");
    // Without an upstream that answers (a dead one): SERVFAIL, quickly.
    let got = h(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "fwd",
            "--dns",
            "127.0.0.2",
            "busybox",
            "nslookup",
            "-type=a",
            "elsewhere.example",
        ],
    );
    assert_ne!(got.code, 0, "{got:?}");
    assert!(!got.stdout.contains("10.9.9.9"), "{got:?}");
}

/// Raises the host's neighbour table limits (one table for all network
/// namespaces: 1100 containers talking to one need more than the default
/// 1024 entries, with Docker as with hafen) and puts them back.
struct NeighbourRoom(Vec<(String, String)>);

impl NeighbourRoom {
    fn raise() -> NeighbourRoom {
        let mut old = Vec::new();
        for (key, value) in [
            ("gc_thresh3", "16384"),
            ("gc_thresh2", "8192"),
            ("gc_thresh1", "4096"),
        ] {
            let path = format!("/proc/sys/net/ipv4/neigh/default/{key}");
            let was = std::fs::read_to_string(&path).unwrap().trim().to_string();
            if was.parse::<u64>().unwrap() < value.parse::<u64>().unwrap() {
                std::fs::write(&path, value).unwrap();
            }
            old.push((path, was));
        }
        NeighbourRoom(old)
    }
}

impl Drop for NeighbourRoom {
    fn drop(&mut self) {
        for (path, was) in self.0.iter().rev() {
            let _ = std::fs::write(path, was);
        }
    }
}

/// Runs `f(i)` for `0..n` on two threads (the machine has two cores).
fn on_two_threads(n: usize, f: impl Fn(usize) + Sync) {
    std::thread::scope(|s| {
        for half in 0..2 {
            let f = &f;
            s.spawn(move || {
                for i in (half..n).step_by(2) {
                    f(i);
                }
            });
        }
    });
}

#[test]
fn a_network_holds_more_containers_than_a_bridge_has_ports() {
    const N: usize = 1100;
    let d = setup();
    let _room = NeighbourRoom::raise();
    ok(
        &d,
        &["network", "create", "--subnet", "10.210.0.0/20", "big"],
    );
    on_two_threads(N, |i| {
        ok(
            &d,
            &[
                "run",
                "-d",
                "--name",
                &format!("m{i}"),
                "--network",
                "big",
                "busybox",
                "sleep",
                "3600",
            ],
        );
    });
    let v: Value = serde_json::from_str(&ok(&d, &["network", "inspect", "big"])).unwrap();
    let addrs: Vec<String> = v[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| {
            c["IPv4Address"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(addrs.len(), N);
    let bridges = ip(&d, &["-o", "link", "show", "type", "bridge"]);
    assert!(
        bridges.lines().count() >= 3,
        "hafen0, big's first and a further one: {bridges}"
    );
    // The chosen one (the last) reaches every other and they answer it.
    // An ARP request floods every port of the segment, more copies than
    // the kernel's receive backlog holds (netdev_max_backlog, 1000): one
    // can be lost, so a ping may be tried three times.
    let script = format!(
        "n=0; for a in {}; do for t in 1 2 3; do ping -c 1 -W 2 $a >/dev/null 2>&1 && {{ n=$((n+1)); break; }}; done; done; echo $n",
        addrs.join(" ")
    );
    let reached = ok(&d, &["exec", &format!("m{}", N - 1), "sh", "-c", &script]);
    assert_eq!(reached.trim(), N.to_string());
    on_two_threads(N, |i| {
        ok(&d, &["rm", "-f", &format!("m{i}")]);
    });
    // The further bridges and their trunks go with the network.
    ok(&d, &["network", "rm", "big"]);
    wait_for("the veths to go", || veths(&d).is_empty());
    let bridges = ip(&d, &["-o", "link", "show", "type", "bridge"]);
    assert_eq!(bridges.lines().count(), 1, "only hafen0 is left: {bridges}");
}

/// The docker CLI 28 against hafen: network commands, `run -p`,
/// `run --network` and `port` print what they print against dockerd.
#[test]
fn the_docker_cli_manages_networks_on_hafen() {
    use support::daemon::DOCKER_28;
    let d = setup();
    let dk = |args: &[&str]| {
        let o = out(d.docker(DOCKER_28, args));
        assert_eq!(o.code, 0, "docker {args:?}: {o:?}");
        o.stdout
    };
    let id = dk(&[
        "network",
        "create",
        "--subnet",
        "10.220.0.0/24",
        "--label",
        "x=y",
        "dnet",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let ls = dk(&["network", "ls"]);
    assert!(
        ls.starts_with("NETWORK ID     NAME      DRIVER    SCOPE\n"),
        "{ls}"
    );
    assert!(
        ls.contains(&format!("{}   dnet      bridge    local\n", &id[..12])),
        "{ls}"
    );
    let filtered = dk(&[
        "network",
        "ls",
        "--filter",
        "label=x=y",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(filtered, "dnet\n");
    let v: Value = serde_json::from_str(&dk(&["network", "inspect", "dnet"])).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.220.0.0/24");
    assert_eq!(
        dk(&[
            "network",
            "inspect",
            "-f",
            "{{.Driver}} {{.Scope}} {{.Internal}}",
            "dnet"
        ]),
        "bridge local false\n"
    );

    dk(&[
        "run",
        "-d",
        "--name",
        "dweb",
        "--network",
        "dnet",
        "-p",
        "8282:80",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    assert_eq!(dk(&["port", "dweb"]), "80/tcp -> 0.0.0.0:8282\n");
    assert_eq!(dk(&["port", "dweb", "80"]), "0.0.0.0:8282\n");
    let ps = dk(&["ps", "--format", "{{.Names}} {{.Ports}} {{.Networks}}"]);
    assert_eq!(ps, "dweb 0.0.0.0:8282->80/tcp dnet\n");
    let ip = dk(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.dnet.IPAddress}}",
        "dweb",
    ]);
    assert!(ip.starts_with("10.220.0."), "{ip}");

    dk(&["run", "-d", "--name", "dother", "busybox", "sleep", "600"]);
    dk(&["network", "connect", "--alias", "dalias", "dnet", "dother"]);
    let got = dk(&["exec", "dother", "nslookup", "dweb"]);
    assert!(got.contains(ip.trim()), "{got}");
    dk(&["network", "disconnect", "dnet", "dother"]);
    let o = out(d.docker(DOCKER_28, &["network", "rm", "dnet"]));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("has active endpoints"), "{o:?}");
    dk(&["rm", "-f", "dweb", "dother"]);
    assert_eq!(dk(&["network", "rm", "dnet"]), "dnet\n");
    let o = out(d.docker(DOCKER_28, &["network", "inspect", "dnet"]));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("network dnet not found"), "{o:?}");
}
