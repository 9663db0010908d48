//! The real docker CLIs (28 and Debian's 20.10) against hafen, side by
//! side with a real dockerd: the same commands must print the same.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::daemon::{DOCKER_20, DOCKER_28, Daemon, data};
use support::dockerd::Dockerd;

/// What a command printed, and how it ended.
fn shown(out: &std::process::Output) -> String {
    format!(
        "{}{}[exit {}]",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code().unwrap_or(-1)
    )
}

struct Pair {
    hafen: Daemon,
    docker: Dockerd,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            hafen: Daemon::new(),
            docker: Dockerd::start(),
        }
    }

    /// The same command against both, with API 1.41 (the newest dockerd
    /// 20.10 speaks) so both answer in the same shape.
    fn both(&self, cli: &str, args: &[&str]) -> (String, String) {
        let mut quiet = vec!["--log-level", "error"];
        quiet.extend_from_slice(args);
        let args = quiet;
        let hafen = {
            self.hafen.start();
            std::process::Command::new(cli)
                .args(&args)
                .env(
                    "DOCKER_HOST",
                    format!("unix://{}", self.hafen.socket().display()),
                )
                .env("DOCKER_API_VERSION", "1.41")
                .env("DOCKER_CONFIG", self.hafen.dir.path().join("docker-config"))
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        };
        let docker = std::process::Command::new(cli)
            .args(&args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.docker.socket().display()),
            )
            .env("DOCKER_API_VERSION", "1.41")
            .env(
                "DOCKER_CONFIG",
                self.docker.dir.path().join("docker-config"),
            )
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (shown(&hafen), shown(&docker))
    }

    /// The same command must print the same against both.
    fn same(&self, cli: &str, args: &[&str]) -> String {
        let (hafen, docker) = self.both(cli, args);
        assert_eq!(
            hafen, docker,
            "{cli} {args:?}: hafen (left) and dockerd (right) differ"
        );
        hafen
    }

    /// The same, with the lines in any order (the docker CLI prints the
    /// repositories of one image in Go's random map order).
    fn same_lines(&self, cli: &str, args: &[&str]) {
        let (hafen, docker) = self.both(cli, args);
        let sorted = |s: &str| {
            let mut l: Vec<String> = s.lines().map(str::to_string).collect();
            l.sort();
            l
        };
        assert_eq!(sorted(&hafen), sorted(&docker), "{cli} {args:?}");
    }

    /// `image inspect` of the same image: the same JSON, but for where the
    /// layers live and when the image was last tagged.
    fn same_inspect(&self, cli: &str, name: &str, ignore: &[&str]) {
        let (hafen, docker) = self.both(cli, &["image", "inspect", name]);
        let parse = |s: &str| -> Value {
            let json = s.rsplit_once("[exit").unwrap().0;
            let mut v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {s}"));
            let o = v[0].as_object_mut().unwrap();
            for key in ["GraphDriver", "Metadata"].iter().chain(ignore) {
                o.remove(*key);
            }
            v
        };
        assert_eq!(parse(&hafen), parse(&docker), "inspect {name}");
    }
}

#[test]
fn docker_28_prints_the_same_for_hafen_as_for_dockerd() {
    let p = Pair::new();
    let multi = data("docker-save-multi.tar");
    let c = DOCKER_28;
    p.same(c, &["load", "-i", multi.to_str().unwrap()]);
    p.same(c, &["images"]);
    p.same(c, &["images", "-a"]);
    p.same(c, &["images", "--digests"]);
    p.same(c, &["images", "-q", "--no-trunc"]);
    p.same(c, &["images", "--format", "{{json .}}"]);
    p.same(
        c,
        &[
            "images",
            "--format",
            "table {{.ID}}\t{{.Repository}}\t{{.Size}}",
        ],
    );
    p.same(
        c,
        &["images", "--filter", "label=org.example.purpose=hafen-test"],
    );
    p.same(c, &["images", "--filter", "before=busyplus"]);
    p.same(c, &["images", "--filter", "dangling=true"]);
    p.same(c, &["images", "busyimg"]);
    p.same(c, &["image", "ls", "--filter", "reference=busy*:v1"]);
    p.same(c, &["history", "busyplus"]);
    p.same(c, &["history", "--no-trunc", "-H=false", "busyimg"]);
    p.same(
        c,
        &[
            "history",
            "--format",
            "{{.ID}} {{.Size}} {{.Comment}}",
            "busyimg",
        ],
    );
    p.same(c, &["system", "df"]);
    p.same(c, &["system", "df", "-v"]);
    p.same_inspect(c, "busyplus", &[]);
    p.same_inspect(c, "busyimg:v1", &[]);
    p.same(
        c,
        &[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Size}} {{json .RootFS}}",
            "busyplus",
        ],
    );
    p.same(c, &["tag", "busyimg", "registry.example:5000/team/app:1.0"]);
    p.same_lines(c, &["images"]);
    p.same(c, &["images", "registry.example:5000/team/app"]);
    // Refusals.
    p.same(c, &["rmi", "e9576207f977"]);
    p.same(c, &["tag", "busyimg", "UPPER"]);
    p.same(c, &["history", "nope"]);
    // Removal, then pruning.
    p.same(c, &["rmi", "registry.example:5000/team/app:1.0"]);
    p.same(c, &["rmi", "-f", "e9576207f977"]);
    p.same(c, &["images", "-a"]);
    p.same(c, &["image", "prune", "-f"]);
    p.same(c, &["image", "prune", "-a", "-f"]);
    p.same(c, &["images", "-a"]);
    p.same(c, &["system", "df"]);
}

#[test]
fn docker_20_imports_saves_and_loads_across_hafen_and_dockerd() {
    let p = Pair::new();
    let c = DOCKER_20;
    let single = data("docker-save.tar");
    p.same(c, &["load", "-i", single.to_str().unwrap()]);
    p.same(c, &["images"]);
    p.same(c, &["history", "busyimg"]);

    // import: the same root filesystem with the same changes gives the
    // same image but for its creation time (so its ID).
    let rootfs = p.hafen.dir.path().join("rootfs.tar");
    {
        // The busybox layer of the test image is a root filesystem.
        let mut a = tar::Archive::new(std::fs::File::open(&single).unwrap());
        let mut found = false;
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_string_lossy().ends_with("layer.tar") {
                e.unpack(&rootfs).unwrap();
                found = true;
            }
        }
        assert!(found);
    }
    let args = [
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "ENV A=1",
        "-c",
        "LABEL x=y",
        "-m",
        "imported",
        rootfs.to_str().unwrap(),
        "imp:1",
    ];
    let (hafen, docker) = p.both(c, &args);
    assert!(
        hafen.starts_with("sha256:") && docker.starts_with("sha256:"),
        "{hafen} / {docker}"
    );
    // (DockerVersion names the daemon that imported it.)
    p.same_inspect(c, "imp:1", &["Id", "Created", "DockerVersion"]);
    p.same(
        c,
        &[
            "history",
            "--format",
            "{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
            "imp:1",
        ],
    );
    p.same(
        c,
        &[
            "images",
            "--format",
            "{{.Repository}} {{.Tag}} {{.Size}}",
            "imp",
        ],
    );

    // save from hafen, load into dockerd: the same IDs; and back.
    let from_hafen = p.hafen.dir.path().join("from-hafen.tar");
    let out = p.hafen.docker(
        c,
        &[
            "save",
            "-o",
            from_hafen.to_str().unwrap(),
            "busyimg",
            "imp:1",
        ],
    );
    assert!(out.status.success(), "{}", shown(&out));
    let fresh = Dockerd::start();
    let out = fresh.docker(c, &["load", "-i", from_hafen.to_str().unwrap()]);
    assert_eq!(
        shown(&out),
        "Loaded image: busyimg:latest\nLoaded image: imp:1\n[exit 0]"
    );
    let ids = |out: std::process::Output| {
        let mut l: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    let fmt = [
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}} {{.ID}}",
    ];
    assert_eq!(ids(fresh.docker(c, &fmt)), ids(p.hafen.docker(c, &fmt)));

    let from_docker = p.docker.dir.path().join("from-docker.tar");
    let out = p
        .docker
        .docker(c, &["save", "-o", from_docker.to_str().unwrap(), "imp:1"]);
    assert!(out.status.success(), "{}", shown(&out));
    let other = Daemon::new();
    let out = other.docker(c, &["load", "-i", from_docker.to_str().unwrap()]);
    assert_eq!(shown(&out), "Loaded image: imp:1\n[exit 0]");
    assert_eq!(
        ids(other.docker(c, &fmt)),
        ids(p.docker.docker(
            c,
            &[
                "images",
                "--no-trunc",
                "--format",
                "{{.Repository}} {{.ID}}",
                "imp"
            ]
        ))
    );
}

#[test]
fn docker_28_negotiates_the_newest_api_with_hafen() {
    let d = Daemon::new();
    let out = d.docker(
        DOCKER_28,
        &[
            "version",
            "--format",
            "{{.Client.APIVersion}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
        ],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let parts: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(parts.len(), 3, "{text}");
    // The client speaks its newest (1.50 for 28.2): hafen speaks it and
    // newer, so nothing is downgraded.
    assert_eq!(parts[0], "1.50", "{text}");
    assert_eq!(parts[1], "1.51", "{text}");
    assert_eq!(parts[2], "1.24");

    let out = d.docker(
        DOCKER_28,
        &["info", "--format", "{{.Images}} {{.Driver}} {{.OSType}}"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0 overlayfs linux\n");

    let multi = data("docker-save-multi.tar");
    let out = d.docker(DOCKER_28, &["load", "-q", "-i", multi.to_str().unwrap()]);
    assert!(out.status.success(), "{}", shown(&out));
    let out = d.docker(
        DOCKER_28,
        &[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.Containers}}",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        // Containers are counted in the list from API 1.51 on; 28.2 speaks 1.50.
        "busyplus:latest N/A\nbusyimg:latest N/A\nbusyimg:v1 N/A\n"
    );
    // save to stdout, loaded by hafen elsewhere from stdin.
    let out = d.docker(DOCKER_28, &["save", "busyplus"]);
    assert!(out.status.success());
    let other = Daemon::new();
    let loaded = other.with_stdin(&["load"], &out.stdout);
    assert_eq!(
        String::from_utf8_lossy(&loaded.stdout),
        "Loaded image: busyplus:latest\n"
    );
    let out = d.docker(DOCKER_28, &["image", "rm", "busyimg:v1"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Untagged: busyimg:v1\n"
    );
}
