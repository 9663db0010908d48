//! The daemon's life (autostart, status, stop, restart, locking, config
//! file) and the Docker Engine API on its socket, spoken raw.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::daemon::Daemon;

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_cli_starts_a_daemon_when_none_answers_and_stop_stops_it() {
    let d = Daemon::new();
    let status = d.output(&["daemon", "status"]);
    assert_eq!(status.status.code(), Some(3), "no daemon yet");
    assert!(String::from_utf8_lossy(&status.stdout).contains("not running"));

    // Any client command starts one in the background and goes on.
    let out = d.ok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!out.trim().is_empty());
    let pid = d.pid().expect("the daemon runs");
    let status = d.ok(&["daemon", "status"]);
    assert!(status.contains(&format!("pid {pid}")), "{status}");
    assert!(d.socket().exists());
    // Its log goes to the run root.
    assert!(d.run_root().join("hafen-daemon.log").exists());

    // The socket is for root (and its group) only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.socket()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);

    d.ok(&["daemon", "stop"]);
    assert!(d.pid().is_none());
    assert!(!d.socket().exists(), "the socket is removed on exit");
    assert_eq!(d.output(&["daemon", "status"]).status.code(), Some(3));
    // Stopping what is not running is not an error.
    d.ok(&["daemon", "stop"]);
}

#[test]
fn a_second_daemon_on_the_same_root_is_refused() {
    let d = Daemon::new();
    d.start();
    let out = d
        .cmd(&[
            "daemon",
            "--host",
            &format!("unix://{}/other.sock", d.dir.path().display()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another hafen daemon"), "{err}");
    // The first one is unharmed.
    d.ok(&["daemon", "status"]);
}

#[test]
fn a_stale_pid_file_never_gets_another_process_killed() {
    let d = Daemon::new();
    // A pid file left by a daemon that died, naming a live process that is
    // not a daemon (its pid reused).
    let mut bystander = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    std::fs::create_dir_all(d.run_root()).unwrap();
    std::fs::write(d.run_root().join("hafen.pid"), bystander.id().to_string()).unwrap();
    std::fs::write(d.run_root().join("hafen.lock"), "").unwrap();
    let status = d.output(&["daemon", "status"]);
    assert_eq!(status.status.code(), Some(3));
    d.ok(&["daemon", "stop"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let alive = bystander.try_wait().unwrap().is_none();
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert!(alive, "daemon stop killed a process that is not the daemon");
    // And a daemon starts there all the same.
    d.ok(&["images"]);
}

#[test]
fn clients_starting_at_once_share_one_daemon() {
    let d = Daemon::new();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            d.cmd(&["images", "-q"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in clients {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    d.ok(&["daemon", "status"]);
}

#[test]
fn images_survive_a_daemon_restart() {
    let d = Daemon::new();
    d.load("docker-save.tar");
    let before = d.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}} {{.ID}}",
    ]);
    d.ok(&["daemon", "stop"]);
    let after = d.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}} {{.ID}}",
    ]);
    assert_eq!(before, after);
    assert!(after.contains("busyimg sha256:e9576207"), "{after}");
}

#[test]
fn the_config_file_sets_the_socket_and_a_bad_one_is_reported() {
    let d = Daemon::new();
    let sock = d.dir.path().join("from-config.sock");
    let config = d.dir.path().join("daemon.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"hosts": ["unix://{}"], "log-level": "debug", "ip-masq": false, "ip-forward": false}}"#,
            sock.display()
        ),
    )
    .unwrap();
    let mut child = d
        .cmd(&["daemon", "--config-file", config.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let host = format!("unix://{}", sock.display());
    let mut up = false;
    for _ in 0..500 {
        if sock.exists() && std::os::unix::net::UnixStream::connect(&sock).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let ping = d.cmd(&["-H", &host, "version"]).output().unwrap();
    d.cmd(&["daemon", "stop"]).output().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "the daemon listens where the config file says");
    assert!(ping.status.success());

    std::fs::write(&config, r#"{"no-such-key": 1}"#).unwrap();
    let out = d
        .cmd(&["daemon", "--config-file", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-key"));
}

#[test]
fn a_client_with_no_daemon_at_docker_host_fails_with_125() {
    // DOCKER_HOST names somebody else's daemon: none is started there.
    let d = Daemon::new();
    let host = format!("unix://{}/nobody.sock", d.dir.path().display());
    let out = d
        .cmd(&["images"])
        .env("DOCKER_HOST", &host)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nobody.sock"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(d.pid().is_none());
}

#[test]
fn a_client_starts_a_daemon_on_the_socket_it_is_told() {
    let d = Daemon::new();
    let sock = d.dir.path().join("elsewhere.sock");
    let host = format!("unix://{}", sock.display());
    let out = d.cmd(&["-H", &host, "images", "-q"]).output().unwrap();
    assert!(out.status.success());
    assert!(sock.exists());
    d.cmd(&["daemon", "stop"]).output().unwrap();
    assert!(!sock.exists());
}

#[test]
fn ping_answers_get_and_head_with_the_api_headers() {
    let d = Daemon::new();
    for method in ["GET", "HEAD"] {
        let (status, headers, body) = d.http(method, "/_ping");
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(header(&headers, "api-version"), Some("1.51"));
        assert_eq!(header(&headers, "ostype"), Some("linux"));
        assert!(header(&headers, "server").unwrap().starts_with("hafen/"));
        assert!(header(&headers, "docker-experimental").is_some());
        if method == "GET" {
            assert_eq!(body, "OK");
        }
    }
    // Versioned paths work from 1.24 up to the newest.
    for v in ["v1.24", "v1.41", "v1.51"] {
        let (status, _, body) = d.http("GET", &format!("/{v}/_ping"));
        assert!(status.contains(" 200 "), "{v}: {status}");
        assert_eq!(body, "OK");
    }
}

#[test]
fn versions_out_of_range_and_unknown_paths_get_dockers_errors() {
    let d = Daemon::new();
    let (status, headers, body) = d.http("GET", "/v1.99/version");
    assert!(status.contains(" 400 "), "{status}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("1.99"), "{body}");
    assert_eq!(header(&headers, "content-type"), Some("application/json"));

    let (status, headers, body) = d.http("GET", "/v1.11/version");
    assert!(status.contains(" 400 "), "{status}");
    assert!(
        header(&headers, "content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(body.contains("too old"), "{body}");

    let (status, headers, body) = d.http("GET", "/v1.45/no/such/thing");
    assert!(status.contains(" 404 "), "{status}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["message"], "page not found");
    assert!(header(&headers, "api-version").is_none());

    let (status, _, body) = d.http("GET", "/images/nope:latest/json");
    assert!(status.contains(" 404 "), "{status}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["message"], "No such image: nope:latest");
}

#[test]
fn version_and_info_have_dockers_shape() {
    let d = Daemon::new();
    let (_, _, body) = d.http("GET", "/v1.51/version");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ApiVersion"], "1.51");
    assert_eq!(v["MinAPIVersion"], "1.24");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Arch"], "amd64");
    assert!(v["Components"].as_array().unwrap()[0]["Name"].is_string());

    let (_, _, body) = d.http("GET", "/v1.51/info");
    let v: Value = serde_json::from_str(&body).unwrap();
    for key in [
        "ID",
        "Containers",
        "Images",
        "Driver",
        "DockerRootDir",
        "NCPU",
        "MemTotal",
        "OperatingSystem",
        "KernelVersion",
        "CgroupVersion",
        "ServerVersion",
    ] {
        assert!(v.get(key).is_some(), "info lacks {key}: {body}");
    }
    assert_eq!(v["DockerRootDir"], d.root().display().to_string());
    assert_eq!(v["NCPU"].as_u64().unwrap(), num_cpus());
    assert_eq!(v["Images"], 0);
}

fn num_cpus() -> u64 {
    std::thread::available_parallelism().unwrap().get() as u64
}

#[test]
fn system_df_counts_images_and_what_prune_would_reclaim() {
    let d = Daemon::new();
    d.load("docker-save.tar");
    let (_, _, body) = d.http("GET", "/v1.51/system/df");
    let v: Value = serde_json::from_str(&body).unwrap();
    let images = v["Images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["Size"], 1982429);
    assert_eq!(v["LayersSize"], 1982429);
    assert_eq!(images[0]["Containers"], 0);
    assert_eq!(v["Containers"].as_array().unwrap().len(), 0);
}

#[test]
fn events_are_recorded_and_filtered() {
    let d = Daemon::new();
    let since = d.ok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!since.is_empty());
    let start = chrono_now();
    d.load("docker-save.tar");
    d.ok(&["tag", "busyimg", "evtest:one"]);
    d.ok(&["rmi", "evtest:one"]);
    let end = chrono_now() + 1;
    let out = d.ok(&[
        "events",
        "--since",
        &start.to_string(),
        "--until",
        &end.to_string(),
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"image load"), "{out}");
    assert!(lines.contains(&"image tag"), "{out}");
    assert!(lines.contains(&"image untag"), "{out}");

    let out = d.ok(&[
        "events",
        "--since",
        &start.to_string(),
        "--until",
        &end.to_string(),
        "--filter",
        "event=tag",
        "--format",
        "{{json .}}",
    ]);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{out}");
    assert_eq!(events[0]["Actor"]["Attributes"]["name"], "evtest:one");
}

#[test]
fn events_stream_live_to_a_waiting_client() {
    let d = Daemon::new();
    d.load("docker-save.tar");
    let mut watcher = d
        .cmd(&[
            "events",
            "--filter",
            "type=image",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.starts_with("tag");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    // Tag until the watcher has seen it (it may subscribe a little later).
    let mut seen = None;
    for i in 0..100 {
        d.ok(&["tag", "busyimg", &format!("live:{i}")]);
        std::thread::sleep(std::time::Duration::from_millis(50));
        if reader.is_finished() {
            seen = Some(reader.join().unwrap());
            break;
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    let lines = seen.expect("the watcher saw a tag event");
    assert!(lines.last().unwrap().starts_with("tag live:"), "{lines:?}");
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
