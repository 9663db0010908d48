//! `hafen build` against a private daemon (in its own network namespace,
//! see `support::daemon`), from the tests' busybox image: what the built
//! image holds and says, the cache, and Dockerfiles that must fail.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::daemon::Daemon;

fn daemon() -> Daemon {
    let d = Daemon::new();
    d.busybox();
    d
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `hafen build` of `dir` with `args`; must succeed. Its stderr (the
/// progress) and the image ID.
fn build(d: &Daemon, dir: &Path, args: &[&str]) -> (String, String) {
    let iid = dir.parent().unwrap().join("iid");
    let mut all = vec![
        "build",
        "--progress",
        "plain",
        "--iidfile",
        iid.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    all.push(dir.to_str().unwrap());
    let out = d.output(&all);
    assert!(
        out.status.success(),
        "build failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    (text(&out.stderr), std::fs::read_to_string(&iid).unwrap())
}

fn build_fails(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["build", "--progress", "plain"];
    all.extend_from_slice(args);
    all.push(dir.to_str().unwrap());
    let out = d.output(&all);
    assert!(
        !out.status.success(),
        "build passed:\n{}",
        text(&out.stderr)
    );
    out
}

fn inspect(d: &Daemon, id: &str) -> Value {
    let v: Value = serde_json::from_str(&d.ok(&["image", "inspect", id])).unwrap();
    v[0].clone()
}

fn run(d: &Daemon, image: &str, script: &str) -> String {
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        image,
        "-c",
        script,
    ])
}

#[test]
fn a_multi_stage_build_has_the_files_and_config_docker_writes() {
    let d = daemon();
    let ctx = d.dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
ARG GREETING=hello

FROM ${BASE} AS builder
ARG GREETING
ENV OUT=/out \
    NAME="the builder"
WORKDIR /src
COPY src/ ./
RUN mkdir -p $OUT && cat a.txt b.txt > $OUT/joined && echo "${GREETING:-none} ${MISSING:-dflt} ${GREETING:+set}" > $OUT/words
RUN <<EOF
echo from a heredoc > /out/heredoc
echo second line >> /out/heredoc
EOF
RUN --mount=type=cache,target=/cache echo run >> /cache/count && wc -l < /cache/count > /out/cache-runs

FROM busybox AS other
RUN echo other > /other

FROM busybox
LABEL org.example.name="hafen test" version=1
EXPOSE 8080 53/udp
ENV APP=/app
WORKDIR $APP
COPY --from=builder /out/ ./
COPY --from=other /other /app/other
COPY --chown=1000:1000 --chmod=600 secret.txt /app/secret
COPY <<EOF /app/inline
inline $APP
EOF
USER 1000
VOLUME /data
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --retries=2 CMD true
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/joined"]
"#,
            ),
            ("src/a.txt", "A\n"),
            ("src/b.txt", "B\n"),
            ("src/ignored.log", "no\n"),
            ("secret.txt", "s3cret\n"),
            (".dockerignore", "**/*.log\n"),
        ],
    );
    let (progress, id) = build(&d, &ctx, &["-t", "app:1", "-t", "app:latest"]);
    assert!(progress.contains("Step 1/"), "{progress}");

    // The files.
    let files = run(
        &d,
        "app:1",
        "cd /app && ls -a && cat joined words heredoc other inline cache-runs && stat -c '%u:%g %a' secret && id -u",
    );
    assert_eq!(
        files,
        ".\n..\ncache-runs\nheredoc\ninline\njoined\nother\nsecret\nwords\n\
         A\nB\nhello dflt set\nfrom a heredoc\nsecond line\nother\ninline /app\n1\n1000:1000 600\n1000\n"
    );
    // The ignored file never reached the builder stage.
    let (_, b2) = {
        let ctx2 = d.dir.path().join("ctx2");
        write(
            &ctx2,
            &[
                ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
                ("a", "1"),
                ("x.log", "2"),
                ("d/y.log", "3"),
                (".dockerignore", "*.log\n**/*.log\n"),
            ],
        );
        build(&d, &ctx2, &["-t", "ctx2"])
    };
    assert_eq!(
        run(&d, b2.trim(), "cd /ctx && find . | sort"),
        ".\n./.dockerignore\n./Dockerfile\n./a\n./d\n"
    );

    // The config, as docker build writes it.
    let img = inspect(&d, "app:latest");
    assert_eq!(img["Id"], Value::String(id.trim().to_string()));
    let c = &img["Config"];
    assert_eq!(c["User"], "1000");
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["cat /app/joined"]));
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "8080/tcp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(
        c["Labels"],
        serde_json::json!({"org.example.name": "hafen test", "version": "1"})
    );
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64, "Retries": 2})
    );
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"APP=/app"), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    // ARGs are not in the image.
    assert!(!env.iter().any(|e| e.starts_with("GREETING")), "{env:?}");
    // History: one entry per step of the last stage, with BuildKit's
    // texts; the configuration steps make no layer.
    let hist: Value = serde_json::from_str(
        &d.ok(&[
            "image",
            "history",
            "--no-trunc",
            "--format",
            "{{json .}}",
            "app:1",
        ])
        .lines()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .first()
        .cloned()
        .unwrap(),
    )
    .unwrap();
    assert!(
        hist["CreatedBy"]
            .as_str()
            .unwrap()
            .contains("CMD [\"cat /app/joined\"]"),
        "{hist}"
    );
    // The image runs as the config says.
    assert_eq!(
        d.ok(&["run", "--rm", "--network", "none", "app:1"]),
        "A\nB\n"
    );
    // Nothing left behind: no step containers, no step images.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    let images = d.ok(&["images", "-a", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut images: Vec<&str> = images.lines().collect();
    images.sort();
    assert_eq!(
        images,
        ["app:1", "app:latest", "busybox:latest", "ctx2:latest"]
    );
}

#[test]
fn the_cache_reuses_every_step_that_did_not_change() {
    let d = daemon();
    let ctx = d.dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN echo one > /one\nCOPY a /a\nRUN cat /a > /copy-of-a\nCOPY b /b\nENV X=1\nCMD [\"true\"]\n",
            ),
            ("a", "first\n"),
            ("b", "bee\n"),
        ],
    );
    let (first, id1) = build(&d, &ctx, &["-t", "c"]);
    assert_eq!(first.matches("Using cache").count(), 0, "{first}");
    // Unchanged: every step from the cache, the same image.
    let (again, id2) = build(&d, &ctx, &["-t", "c"]);
    assert_eq!(again.matches("Using cache").count(), 6, "{again}");
    assert_eq!(id1, id2);
    // A new modification time only: still all cached.
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.join("a"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
        .unwrap();
    drop(f);
    let (touched, id3) = build(&d, &ctx, &["-t", "c"]);
    assert_eq!(touched.matches("Using cache").count(), 6, "{touched}");
    assert_eq!(id1, id3);
    // New content in `a`: the steps before COPY a come from the cache,
    // COPY a and everything after it run again.
    std::fs::write(ctx.join("a"), "second\n").unwrap();
    let (changed, id4) = build(&d, &ctx, &["-t", "c"]);
    let steps: Vec<&str> = changed.split("Step ").skip(1).collect();
    let cached: Vec<bool> = steps.iter().map(|s| s.contains("Using cache")).collect();
    assert_eq!(
        cached,
        [false, true, false, false, false, false, false],
        "{changed}"
    );
    assert_ne!(id1, id4);
    assert_eq!(run(&d, "c", "cat /copy-of-a /one"), "second\none\n");
    // --no-cache runs everything.
    let (nocache, _) = build(&d, &ctx, &["--no-cache", "-t", "c"]);
    assert_eq!(nocache.matches("Using cache").count(), 0, "{nocache}");
    // The cache survives a daemon restart.
    d.ok(&["daemon", "stop"]);
    let (restarted, _) = build(&d, &ctx, &["-t", "c"]);
    assert_eq!(restarted.matches("Using cache").count(), 6, "{restarted}");
}

#[test]
fn bad_dockerfiles_fail_with_their_line_and_leave_nothing() {
    let d = daemon();
    let before = d.ok(&["images", "-aq"]);
    let cases: &[(&str, &str)] = &[
        (
            "FROM busybox\nRUN true\nFROBNICATE x\n",
            "Dockerfile:3: unknown instruction: FROBNICATE",
        ),
        ("# no stage\nRUN true\n", "Dockerfile:2: no build stage"),
        (
            "FROM busybox\n\nCOPY missing /x\n",
            "Dockerfile:3: COPY failed: file not found",
        ),
        (
            "FROM busybox\nCOPY ../outside /x\n",
            "Dockerfile:2: COPY source \"../outside\" is outside the build context",
        ),
        (
            "FROM busybox\nRUN echo about to fail; echo last words; exit 3\n",
            "Dockerfile:2: process \"/bin/sh -c echo about to fail; echo last words; exit 3\" did not complete successfully: exit code: 3",
        ),
        (
            "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n",
            "circular dependency detected on stage",
        ),
        (
            "FROM nosuchimage\n",
            "Dockerfile:1: image \"nosuchimage\" is not here",
        ),
        (
            "FROM busybox\nADD http://example.com/x /x\n",
            "Dockerfile:2: ADD http://example.com/x: downloading a URL needs the network",
        ),
        ("FROM busybox\nRUN <<EOF\necho never ends\n", "Dockerfile:2"),
    ];
    for (i, (dockerfile, expected)) in cases.iter().enumerate() {
        let ctx = d.dir.path().join(format!("bad{i}"));
        write(&ctx, &[("Dockerfile", dockerfile)]);
        let out = build_fails(&d, &ctx, &["-t", "bad"]);
        let err = text(&out.stderr);
        assert!(err.contains(expected), "case {i}: {err}");
        if dockerfile.contains("exit 3") {
            assert_eq!(out.status.code(), Some(3), "{err}");
            assert!(err.contains("last words"), "{err}");
        }
    }
    // No step container, no image (dangling or not) left.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(d.ok(&["images", "-aq"]), before);
    assert_eq!(d.ok(&["images", "-q", "--filter", "dangling=true"]), "");
}

#[test]
fn contexts_from_stdin_targets_and_outputs() {
    let d = daemon();
    let ctx = d.dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox AS one\nRUN echo one > /f\nFROM busybox AS two\nRUN echo two > /f\n",
            ),
            ("other.Dockerfile", "FROM busybox\nCOPY file /file\n"),
            ("file", "content\n"),
        ],
    );
    // --target builds only the stages the target needs.
    let (progress, _) = build(&d, &ctx, &["--target", "one", "-t", "t1"]);
    assert!(!progress.contains("echo two"), "{progress}");
    assert_eq!(run(&d, "t1", "cat /f"), "one\n");
    // -f names another Dockerfile.
    build(
        &d,
        &ctx,
        &[
            "-f",
            ctx.join("other.Dockerfile").to_str().unwrap(),
            "-t",
            "t2",
        ],
    );
    assert_eq!(run(&d, "t2", "cat /file"), "content\n");
    // A Dockerfile on stdin with the directory as context.
    let out = d.with_stdin(
        &["build", "-q", "-f", "-", "-t", "t3", ctx.to_str().unwrap()],
        b"FROM busybox\nCOPY file /from-stdin\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("sha256:"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(run(&d, "t3", "cat /from-stdin"), "content\n");
    // The context as a tar on stdin.
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all(".", &ctx).unwrap();
    let out = d.with_stdin(
        &["build", "-q", "-f", "other.Dockerfile", "-t", "t4", "-"],
        &tar.into_inner().unwrap(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(run(&d, "t4", "cat /file"), "content\n");
    // --output writes the image's files.
    let dest = d.dir.path().join("out");
    build(
        &d,
        &ctx,
        &[
            "--target",
            "two",
            "-o",
            &format!("type=local,dest={}", dest.display()),
        ],
    );
    assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "two\n");
    assert!(dest.join("bin/busybox").exists());
}

#[test]
fn docker_build_works_against_hafen() {
    let d = daemon();
    let ctx = d.dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox\nARG V=1\nCOPY f /f\nRUN echo v$V >> /f\nCMD [\"cat\", \"/f\"]\n",
            ),
            ("f", "file\n"),
        ],
    );
    let iid = d.dir.path().join("iid");
    d.start();
    let docker = |cli: &str, args: &[&str]| {
        std::process::Command::new(cli)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .output()
            .unwrap()
    };
    for cli in ["/usr/local/bin/docker", "/usr/bin/docker"] {
        let out = docker(
            cli,
            &[
                "build",
                "--build-arg",
                "V=2",
                "-t",
                "dk",
                "--iidfile",
                iid.to_str().unwrap(),
                ctx.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{cli}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("Step 1/5 : FROM busybox"),
            "{cli}: {stdout}"
        );
        assert!(
            stdout.contains("Successfully tagged dk:latest"),
            "{cli}: {stdout}"
        );
        let id = std::fs::read_to_string(&iid).unwrap();
        assert_eq!(inspect(&d, "dk")["Id"], Value::String(id));
        assert_eq!(
            d.ok(&["run", "--rm", "--network", "none", "dk"]),
            "file\nv2\n"
        );
        // A failing step: docker reports it and exits with its code.
        let bad = ctx.join("bad");
        write(&bad, &[("Dockerfile", "FROM busybox\nRUN exit 7\n")]);
        let out = docker(cli, &["build", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(7), "{cli}: {}", text(&out.stderr));
    }
}

#[test]
fn add_unpacks_archives_and_copy_options_and_mounts_work() {
    let d = daemon();
    let ctx = d.dir.path().join("ctx");
    write(
        &ctx,
        &[
            ("pkg/a/x.txt", "ax\n"),
            ("pkg/a/skip.md", "no\n"),
            ("pkg/b/y.txt", "by\n"),
            ("secret.txt", "top-secret\n"),
            ("plain", "plain\n"),
        ],
    );
    // A gzip archive in the context.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    {
        let mut tar = tar::Builder::new(&mut gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o640);
        h.set_uid(7);
        h.set_gid(8);
        tar.append_data(&mut h, "inner/file", &b"data\n"[..])
            .unwrap();
        tar.finish().unwrap();
    }
    std::fs::write(ctx.join("arch.tar.gz"), gz.finish().unwrap()).unwrap();
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox AS src\nRUN mkdir -p /data && echo from-stage > /data/f\n\
             FROM busybox\n\
             ADD arch.tar.gz /unpacked/\n\
             ADD plain /plain-added\n\
             COPY --parents pkg/*/x.txt /parents/\n\
             COPY --exclude=**/*.md pkg/ /excl/\n\
             WORKDIR /made/by/workdir\n\
             RUN --mount=type=bind,from=src,source=/data,target=/m cat /m/f > /from-mount\n\
             RUN --mount=type=secret,id=tok cat /run/secrets/tok > /secret-copy\n\
             RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch > /tmpfs-ls\n",
        )],
    );
    build(
        &d,
        &ctx,
        &[
            "-t",
            "opts",
            "--secret",
            &format!("id=tok,src={}", ctx.join("secret.txt").display()),
        ],
    );
    let out = run(
        &d,
        "opts",
        "stat -c '%n %u:%g %a' /unpacked/inner/file && cat /unpacked/inner/file /plain-added \
         && cd /parents && find . -type f | sort && cd /excl && find . -type f | sort \
         && cat /from-mount /secret-copy /tmpfs-ls && test -d /made/by/workdir && echo wd",
    );
    assert_eq!(
        out,
        "/unpacked/inner/file 7:8 640\ndata\nplain\n./pkg/a/x.txt\n./a/x.txt\n./b/y.txt\n\
         from-stage\ntop-secret\nx\nwd\n"
    );
    // The secret is in no layer: not in the image's history either.
    let hist = d.ok(&["history", "--no-trunc", "opts"]);
    assert!(!hist.contains("top-secret"), "{hist}");
}

/// The same Dockerfile built by docker (BuildKit, in a private dockerd
/// 20.10) and by hafen: the same config and the same history texts.
#[test]
fn the_image_config_is_the_one_docker_buildkit_writes() {
    let d = daemon();
    let dk = support::dockerd::Dockerd::start();
    let rootfs = support::shared_rootfs();
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    tar.append_dir_all(".", &rootfs).unwrap();
    let bytes = tar.into_inner().unwrap();
    let tarfile = d.dir.path().join("busybox.tar");
    std::fs::write(&tarfile, &bytes).unwrap();
    let docker = |args: &[&str]| {
        std::process::Command::new(support::daemon::DOCKER_20)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", dk.socket().display()))
            .env("DOCKER_BUILDKIT", "1")
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .output()
            .unwrap()
    };
    let o = docker(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        tarfile.to_str().unwrap(),
        "busybox:latest",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ctx = d.dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox\nARG N=2\nENV A=1 B=\"two words\"\nLABEL l=$A other=\"x y\"\n\
                 EXPOSE 80 53/udp\nWORKDIR /app\nVOLUME /data\nSTOPSIGNAL SIGINT\n\
                 SHELL [\"/bin/sh\", \"-c\"]\nRUN echo $N > /app/n\nUSER 1000\nCOPY f /f\n\
                 ENTRYPOINT [\"/bin/e\"]\nHEALTHCHECK --interval=30s --retries=2 CMD check\n\
                 ONBUILD RUN later\nCMD [\"x\"]\n",
            ),
            ("f", "x\n"),
        ],
    );
    let o = docker(&[
        "build",
        "--network",
        "none",
        "-t",
        "cmp",
        ctx.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "docker build: {}", text(&o.stderr));
    let (_, _) = build(&d, &ctx, &["-t", "cmp"]);
    let theirs: Value =
        serde_json::from_slice(&docker(&["image", "inspect", "cmp"]).stdout).unwrap();
    let ours = inspect(&d, "cmp");
    // dockerd shows every field of its Config struct, set or not.
    let norm = |v: &Value| match v {
        Value::Null | Value::Bool(false) => Value::Null,
        Value::String(s) if s.is_empty() => Value::Null,
        Value::Array(a) if a.is_empty() => Value::Null,
        Value::Object(o) if o.is_empty() => Value::Null,
        other => other.clone(),
    };
    for key in [
        "User",
        "ExposedPorts",
        "Env",
        "Cmd",
        "Entrypoint",
        "Volumes",
        "WorkingDir",
        "Labels",
        "StopSignal",
        "Healthcheck",
        "OnBuild",
        "Shell",
        "ArgsEscaped",
    ] {
        assert_eq!(
            norm(&ours["Config"][key]),
            norm(&theirs[0]["Config"][key]),
            "{key}: {} vs {}",
            ours["Config"],
            theirs[0]["Config"]
        );
    }
    let history =
        |out: Vec<u8>| -> Vec<String> { text(&out).lines().map(str::to_string).collect() };
    let fmt = [
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "cmp",
    ];
    let theirs = history(docker(&fmt).stdout);
    let ours = history(d.output(&fmt).stdout);
    // The base image's own entry says who imported it: skip it.
    assert_eq!(ours[..ours.len() - 1], theirs[..theirs.len() - 1]);
    assert_eq!(
        inspect(&d, "cmp")["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .len(),
        4,
        "base, WORKDIR, RUN and COPY each make a layer"
    );
}

#[test]
fn onbuild_triggers_labels_and_a_dockerfiles_own_ignore_file() {
    let d = daemon();
    let base = d.dir.path().join("base");
    write(
        &base,
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD COPY . /ctx/\nONBUILD RUN echo triggered > /trig\n",
        )],
    );
    build(&d, &base, &["-t", "ob-base"]);
    let child = d.dir.path().join("child");
    write(
        &child,
        &[
            ("app.Dockerfile", "FROM ob-base\nRUN cat /trig\n"),
            // The Dockerfile's own ignore file wins over .dockerignore.
            ("app.Dockerfile.dockerignore", "secret\n"),
            (".dockerignore", "kept\n"),
            ("secret", "no\n"),
            ("kept", "yes\n"),
        ],
    );
    let (progress, _) = build(
        &d,
        &child,
        &[
            "-f",
            child.join("app.Dockerfile").to_str().unwrap(),
            "--label",
            "team=build",
            "-t",
            "ob-child",
        ],
    );
    assert!(progress.contains("triggered"), "{progress}");
    assert_eq!(
        run(&d, "ob-child", "ls -A /ctx | sort; cat /trig"),
        ".dockerignore\napp.Dockerfile\napp.Dockerfile.dockerignore\nkept\ntriggered\n"
    );
    let img = inspect(&d, "ob-child");
    assert_eq!(
        img["Config"]["Labels"],
        serde_json::json!({"team": "build"})
    );
    // The triggers ran: the child image has none left.
    assert!(
        img["Config"]["OnBuild"].is_null() || img["Config"]["OnBuild"] == serde_json::json!([]),
        "{}",
        img["Config"]
    );
}

/// The CLI names its context directory by path and inode; a daemon that
/// sees another directory at that path (here: the CLI runs in a mount
/// namespace of its own, with a tmpfs over the path) refuses it, and the
/// CLI sends the context as a tar instead.
#[test]
fn a_context_the_daemon_does_not_see_is_sent_as_a_tar() {
    let d = daemon();
    d.start();
    let mnt = d.dir.path().join("mnt");
    write(
        &mnt,
        &[
            ("ctx/Dockerfile", "FROM busybox\nCOPY f /f\n"),
            ("ctx/f", "the daemon's view\n"),
        ],
    );
    let inner = d.cmd(&[
        "build",
        "-q",
        "-t",
        "seen",
        mnt.join("ctx").to_str().unwrap(),
    ]);
    let script = format!(
        "mount -t tmpfs none {m} && mkdir {m}/ctx && printf 'FROM busybox\\nCOPY f /f\\n' > {m}/ctx/Dockerfile && echo the client view > {m}/ctx/f && exec \"$0\" \"$@\"",
        m = mnt.display()
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(inner.get_program())
        .args(inner.get_args())
        .stdin(std::process::Stdio::null());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(run(&d, "seen", "cat /f"), "the client view\n");
}

/// A daemon killed while a step runs: the next daemon removes the step's
/// container and image and the build's temporary files.
#[test]
fn a_daemon_killed_in_the_middle_of_a_build_leaves_nothing_behind() {
    let d = daemon();
    let before = d.ok(&["images", "-aq"]);
    let ctx = d.dir.path().join("ctx");
    write(&ctx, &[("Dockerfile", "FROM busybox\nRUN sleep 60\n")]);
    d.start();
    let mut client = d
        .cmd(&["build", "-q", ctx.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while d.ok(&["ps", "-q"]).trim().is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the step never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.kill_hard();
    assert!(!client.wait().unwrap().success());
    // The next daemon (started by this command) cleans up.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(d.ok(&["images", "-aq"]), before);
    assert!(!d.root().join("build/tmp").exists());
}
