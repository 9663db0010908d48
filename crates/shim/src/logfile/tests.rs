//! Tests of the json-file log across writer and reader.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn opts(max_size: u64, max_file: u32) -> LogOptions {
    LogOptions {
        max_size,
        max_file,
        ..LogOptions::default()
    }
}

fn writer(path: &Path, max_size: u64, max_file: u32) -> LogWriter {
    LogWriter::open(path, opts(max_size, max_file)).expect("open writer")
}

fn all(path: &Path, max_file: u32) -> Vec<Entry> {
    read(path, max_file, &Query::default()).expect("read")
}

fn texts(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.line).into_owned())
        .collect()
}

fn raw_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read file")
        .lines()
        .map(str::to_string)
        .collect()
}

/// A hand-made entry line with a chosen time.
fn entry_line(stream: Stream, log: &str, secs: i64, nanos: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let t = Timestamp { secs, nanos };
    let (body, newline) = match log.strip_suffix('\n') {
        Some(body) => (body, true),
        None => (log, false),
    };
    json::encode_entry(
        &mut out,
        body.as_bytes(),
        newline,
        stream,
        b"",
        t.text(false).as_bytes(),
    );
    out
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(bytes).expect("append");
}

/// A 30-byte payload: its entry is 91–101 bytes long (the time's fraction
/// varies), so a 250-byte file holds exactly two.
fn payload(n: usize) -> String {
    format!("entry {n:05} {}\n", "x".repeat(17))
}

#[test]
fn chunks_become_lines_per_stream() {
    let d = dir();
    let p = d.path().join("c.log");
    let mut w = writer(&p, 0, 1);
    w.write(Stream::Stdout, b"hel").expect("w");
    w.write(Stream::Stderr, b"err1\nerr").expect("w");
    w.write(Stream::Stdout, b"lo\nwor").expect("w");
    w.write(Stream::Stdout, b"ld\n\n").expect("w");
    w.write(Stream::Stderr, b"2\n").expect("w");
    let got = all(&p, 1);
    assert_eq!(
        texts(&got),
        ["err1\n", "hello\n", "world\n", "\n", "err2\n"]
    );
    let streams: Vec<&str> = got.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(streams, ["stderr", "stdout", "stdout", "stdout", "stderr"]);
    assert!(got.windows(2).all(|w| w[0].time <= w[1].time));
    assert!(got.iter().all(|e| e.attrs.is_empty()));
    assert_eq!(raw_lines(&p).len(), 5);
}

#[test]
fn long_lines_are_split_at_16k_with_one_time() {
    let d = dir();
    let p = d.path().join("long.log");
    let mut w = writer(&p, 0, 1);
    let mut line = vec![b'a'; 40_000];
    line.push(b'\n');
    for chunk in line.chunks(1000) {
        w.write(Stream::Stdout, chunk).expect("write");
    }
    let got = all(&p, 1);
    let lens: Vec<usize> = got.iter().map(|e| e.line.len()).collect();
    assert_eq!(lens, [MAX_LINE, MAX_LINE, 40_000 - 2 * MAX_LINE + 1]);
    assert!(!got[0].line.ends_with(b"\n") && !got[1].line.ends_with(b"\n"));
    assert!(got[2].line.ends_with(b"\n"));
    assert_eq!(
        got.iter().flat_map(|e| e.line.clone()).collect::<Vec<u8>>(),
        line
    );
    assert!(
        got.iter().all(|e| e.time == got[0].time),
        "pieces share the first piece's time"
    );

    // Exactly 16 KiB before the newline: a full piece, then "\n" alone.
    let d = dir();
    let p = d.path().join("exact.log");
    let mut w = writer(&p, 0, 1);
    let mut line = vec![b'b'; MAX_LINE];
    line.push(b'\n');
    w.write(Stream::Stdout, &line).expect("write");
    // One byte less fits in one entry.
    let mut short = vec![b'c'; MAX_LINE - 1];
    short.push(b'\n');
    w.write(Stream::Stdout, &short).expect("write");
    let got = all(&p, 1);
    let lens: Vec<usize> = got.iter().map(|e| e.line.len()).collect();
    assert_eq!(lens, [MAX_LINE, 1, MAX_LINE]);
    assert_eq!(got[1].line, b"\n");
    assert_eq!(got[0].time, got[1].time);
}

#[test]
fn unterminated_output_is_flushed_as_partial_entries() {
    let d = dir();
    let p = d.path().join("p.log");
    let mut w = writer(&p, 0, 1);
    w.write(Stream::Stdout, b"no newline").expect("w");
    w.write(Stream::Stderr, b"e").expect("w");
    assert!(
        all(&p, 1).is_empty(),
        "nothing written before a newline or the end"
    );
    w.flush_stream(Stream::Stdout).expect("flush");
    assert_eq!(texts(&all(&p, 1)), ["no newline"]);
    w.flush_partial().expect("flush");
    w.flush_partial().expect("nothing left");
    let got = all(&p, 1);
    assert_eq!(texts(&got), ["no newline", "e"]);
    assert_eq!(got[1].stream, Stream::Stderr);
    assert!(raw_lines(&p)[0].starts_with(r#"{"log":"no newline","stream":"stdout","time":""#));

    // A long unterminated line: 16 KiB pieces then the rest, one time.
    w.write(Stream::Stdout, &vec![b'z'; MAX_LINE + 10])
        .expect("w");
    w.flush_partial().expect("flush");
    let got = all(&p, 1);
    assert_eq!(got.len(), 4);
    assert_eq!((got[2].line.len(), got[3].line.len()), (MAX_LINE, 10));
    assert_eq!(got[2].time, got[3].time);
}

#[test]
fn entry_lines_have_exactly_dockers_fields() {
    let d = dir();
    let p = d.path().join("fields.log");
    let mut w = writer(&p, 0, 1);
    let text = "hello <&> \t \"q\" \\ é \u{2028}\r";
    w.write(Stream::Stdout, format!("{text}\n").as_bytes())
        .expect("w");
    w.write(Stream::Stderr, b"bad \xff byte\n").expect("w");
    let lines = raw_lines(&p);
    assert!(
        lines[0].contains(r#"\u003c\u0026\u003e \u0009 \"q\" \\ é \u2028\r\n"#),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains(r"bad \ufffd byte\n"), "{}", lines[1]);
    for (line, (stream, log)) in lines.iter().zip([
        ("stdout", format!("{text}\n")),
        ("stderr", "bad \u{fffd} byte\n".to_string()),
    ]) {
        let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        let obj = v.as_object().expect("an object");
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["log", "stream", "time"],
            "same fields, same order as dockerd"
        );
        assert_eq!(obj["log"], serde_json::Value::String(log));
        assert_eq!(obj["stream"], stream);
        let time = obj["time"].as_str().expect("time is a string");
        assert!(
            time.ends_with('Z') && time.len() <= 30 && time.as_bytes()[10] == b'T',
            "{time}"
        );
        if let Some((_, frac)) = time.trim_end_matches('Z').split_once('.') {
            assert!(
                !frac.ends_with('0') && frac.len() <= 9,
                "RFC3339Nano trims zeros: {time}"
            );
        }
        let t = Timestamp::parse_rfc3339(time).expect("parses");
        assert_eq!(t.to_rfc3339_nano(), time);
    }
}

#[test]
fn attrs_go_between_stream_and_time() {
    let d = dir();
    let p = d.path().join("attrs.log");
    let mut o = opts(0, 1);
    o.attrs.insert("app".into(), "web".into());
    o.attrs.insert("STAGE".into(), "prod".into());
    let mut w = LogWriter::open(&p, o).expect("open");
    w.write(Stream::Stdout, b"hi\n").expect("w");
    let line = &raw_lines(&p)[0];
    let v: serde_json::Value = serde_json::from_str(line).expect("json");
    let keys: Vec<&str> = v
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["log", "stream", "attrs", "time"]);
    assert!(
        line.contains(r#""attrs":{"STAGE":"prod","app":"web"}"#),
        "{line}"
    );
    let got = all(&p, 1);
    assert_eq!(got[0].attrs.get("app").map(String::as_str), Some("web"));
    assert_eq!(got[0].attrs.len(), 2);
}

#[test]
fn reopening_appends_and_seals_a_torn_line() {
    let d = dir();
    let p = d.path().join("re.log");
    {
        let mut w = writer(&p, 0, 1);
        w.write(Stream::Stdout, b"one\n").expect("w");
    }
    append(&p, br#"{"log":"tor"#);
    let mut w = writer(&p, 0, 1);
    w.write(Stream::Stdout, b"two\n").expect("w");
    assert_eq!(texts(&all(&p, 1)), ["one\n", "two\n"]);
    let lines = raw_lines(&p);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1], r#"{"log":"tor"#);
    assert!(
        LogWriter::open(
            &p,
            LogOptions {
                compress: true,
                ..opts(1000, 2)
            }
        )
        .is_err()
    );
}

fn write_entries(w: &mut LogWriter, range: std::ops::RangeInclusive<usize>) {
    for n in range {
        w.write(Stream::Stdout, payload(n).as_bytes())
            .expect("write");
    }
}

fn expect_entries(got: &[Entry], range: std::ops::RangeInclusive<usize>) {
    let want: Vec<String> = range.map(payload).collect();
    assert_eq!(texts(got), want);
}

#[test]
fn rotation_keeps_max_file_files() {
    let d = dir();
    let p = d.path().join("r.log");
    let mut w = writer(&p, 250, 3);
    write_entries(&mut w, 1..=9);
    // Two entries a file: 9 entries made 5 files; 3 are kept.
    assert!(p.exists() && rotated_path(&p, 1).exists() && rotated_path(&p, 2).exists());
    assert!(!rotated_path(&p, 3).exists());
    for f in [p.clone(), rotated_path(&p, 1), rotated_path(&p, 2)] {
        assert!(fs::metadata(&f).expect("stat").len() <= 250);
    }
    expect_entries(&all(&p, 3), 5..=9);
    expect_entries(&all(&rotated_path(&p, 1), 1), 7..=8);
    // Rotated files lose their write bits; the live one keeps them.
    let mode = |f: &Path| fs::metadata(f).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&rotated_path(&p, 1)), 0o440);
    assert_eq!(mode(&p) & 0o600, 0o600);
    // A reader told of fewer files sees fewer.
    expect_entries(&all(&p, 2), 7..=9);
    // After a restart the writer keeps counting the live file's size.
    drop(w);
    let mut w = writer(&p, 250, 3);
    write_entries(&mut w, 10..=10);
    expect_entries(&all(&p, 3), 5..=10);
    expect_entries(&all(&p, 1), 9..=10);
}

#[test]
fn one_file_rotation_starts_over() {
    let d = dir();
    let p = d.path().join("one.log");
    let mut w = writer(&p, 250, 1);
    write_entries(&mut w, 1..=5);
    expect_entries(&all(&p, 1), 5..=5);
    assert!(!rotated_path(&p, 1).exists());
}

#[test]
fn unlimited_size_never_rotates() {
    let d = dir();
    let p = d.path().join("u.log");
    let mut w = writer(&p, 0, 3);
    write_entries(&mut w, 1..=50);
    assert!(!rotated_path(&p, 1).exists());
    expect_entries(&all(&p, 3), 1..=50);
}

#[test]
fn a_huge_max_file_only_touches_existing_files() {
    let d = dir();
    let p = d.path().join("h.log");
    let mut w = writer(&p, 250, u32::MAX);
    let start = Instant::now();
    write_entries(&mut w, 1..=20);
    expect_entries(&all(&p, u32::MAX), 1..=20);
    assert!(rotated_path(&p, 9).exists() && !rotated_path(&p, 10).exists());
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn tail_counts_entries_across_rotated_files() {
    let d = dir();
    let p = d.path().join("t.log");
    let mut w = writer(&p, 250, 20);
    for n in 1..=21 {
        let s = if n % 2 == 0 {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        w.write(s, payload(n).as_bytes()).expect("write");
    }
    // The live file holds entry 21 only; the tail reaches back.
    let tail = |n: usize, stdout: bool, stderr: bool| {
        read(
            &p,
            20,
            &Query {
                tail: Some(n),
                stdout,
                stderr,
                ..Query::default()
            },
        )
        .expect("read")
    };
    expect_entries(&tail(5, true, true), 17..=21);
    expect_entries(&tail(1, true, true), 21..=21);
    expect_entries(&tail(2, true, true), 20..=21);
    expect_entries(&tail(100, true, true), 1..=21);
    assert!(tail(0, true, true).is_empty());
    // dockerd counts the tail over both streams, then filters.
    assert_eq!(texts(&tail(4, true, false)), [payload(19), payload(21)]);
    assert_eq!(texts(&tail(4, false, true)), [payload(18), payload(20)]);
}

#[test]
fn tail_reads_backwards_not_the_whole_file() {
    let d = dir();
    let p = d.path().join("big.log");
    // A 256 GiB hole, then three entries: a forward reader would take
    // minutes, a backward one a few reads.
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&p)
        .expect("create");
    f.set_len(256 << 30).expect("sparse file");
    drop(f);
    let mut body = Vec::new();
    for n in 1..=3 {
        body.extend(entry_line(Stream::Stdout, &payload(n), 1_000 + n as i64, 0));
    }
    append(&p, &body);
    let start = Instant::now();
    let (got, mut f) = read_follow(
        &p,
        1,
        &Query {
            tail: Some(2),
            ..Query::default()
        },
    )
    .expect("read");
    expect_entries(&got, 2..=3);
    append(&p, &entry_line(Stream::Stderr, &payload(4), 1_004, 0));
    expect_entries(&f.poll().expect("poll"), 4..=4);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn since_and_until_filter_by_time() {
    let d = dir();
    let p = d.path().join("s.log");
    for n in 0..=10 {
        append(
            &p,
            &entry_line(Stream::Stdout, &payload(n), 100 + n as i64, 0),
        );
    }
    let q = |since: Option<(i64, u32)>, until: Option<(i64, u32)>| Query {
        since: since.map(Timestamp::from),
        until: until.map(Timestamp::from),
        ..Query::default()
    };
    expect_entries(&read(&p, 1, &q(Some((105, 0)), None)).expect("r"), 5..=10);
    expect_entries(&read(&p, 1, &q(Some((105, 1)), None)).expect("r"), 6..=10);
    expect_entries(&read(&p, 1, &q(None, Some((107, 0)))).expect("r"), 0..=7);
    expect_entries(
        &read(&p, 1, &q(Some((103, 0)), Some((105, 0)))).expect("r"),
        3..=5,
    );
    assert!(read(&p, 1, &q(Some((200, 0)), None)).expect("r").is_empty());
    // With a tail, since filters what the tail selected.
    let got = read(
        &p,
        1,
        &Query {
            tail: Some(3),
            ..q(Some((109, 0)), None)
        },
    )
    .expect("r");
    expect_entries(&got, 9..=10);

    // until stops at the first later entry, as in dockerd, even if the
    // clock went back afterwards.
    let d2 = dir();
    let p2 = d2.path().join("s2.log");
    for (n, t) in [(1, 100), (2, 101), (3, 109), (4, 102)] {
        append(&p2, &entry_line(Stream::Stdout, &payload(n), t, 0));
    }
    expect_entries(&read(&p2, 1, &q(None, Some((105, 0)))).expect("r"), 1..=2);

    // A follower honours both and ends past until.
    let (got, mut f) = read_follow(&p, 1, &q(Some((108, 0)), Some((112, 0)))).expect("r");
    expect_entries(&got, 8..=10);
    assert!(!f.is_done());
    append(&p, &entry_line(Stream::Stdout, &payload(11), 111, 0));
    append(&p, &entry_line(Stream::Stdout, &payload(12), 113, 0));
    expect_entries(&f.poll().expect("poll"), 11..=11);
    assert!(f.is_done());
    append(&p, &entry_line(Stream::Stdout, &payload(13), 112, 0));
    assert!(f.poll().expect("poll").is_empty());
}

#[test]
fn follower_returns_each_new_entry_once() {
    let d = dir();
    let p = d.path().join("f.log");
    let mut w = writer(&p, 0, 1);
    write_entries(&mut w, 1..=3);
    let (got, mut f) = read_follow(&p, 1, &Query::default()).expect("read");
    expect_entries(&got, 1..=3);
    assert!(f.poll().expect("poll").is_empty());
    write_entries(&mut w, 4..=5);
    expect_entries(&f.poll().expect("poll"), 4..=5);
    assert!(f.poll().expect("poll").is_empty());

    // A line still being written waits until it is whole.
    let line = entry_line(Stream::Stderr, &payload(6), 2_000_000_000, 5);
    append(&p, &line[..20]);
    assert!(f.poll().expect("poll").is_empty());
    append(&p, &line[20..]);
    let got = f.poll().expect("poll");
    expect_entries(&got, 6..=6);
    assert_eq!(got[0].stream, Stream::Stderr);
    assert_eq!(timestamp(&got[0]), "2033-05-18T03:33:20.000000005Z");

    // --tail 0: nothing old, then what comes.
    let (got, mut f) = read_follow(
        &p,
        1,
        &Query {
            tail: Some(0),
            ..Query::default()
        },
    )
    .expect("read");
    assert!(got.is_empty());
    write_entries(&mut w, 7..=7);
    expect_entries(&f.poll().expect("poll"), 7..=7);
}

/// Follows while `writes` entries go in between two polls, with files of
/// two entries each and `max_file` files kept.
fn follow_through_rotations(max_file: u32, last: usize) {
    let d = dir();
    let p = d.path().join("fr.log");
    let mut w = writer(&p, 250, max_file);
    write_entries(&mut w, 1..=1);
    let (got, mut f) = read_follow(&p, max_file, &Query::default()).expect("read");
    expect_entries(&got, 1..=1);
    write_entries(&mut w, 2..=last);
    expect_entries(&f.poll().expect("poll"), 2..=last);
    assert!(f.poll().expect("poll").is_empty());
    // One more rotation.
    write_entries(&mut w, last + 1..=last + 2);
    expect_entries(&f.poll().expect("poll"), last + 1..=last + 2);
    assert!(f.poll().expect("poll").is_empty());
}

#[test]
fn follower_crosses_one_rotation() {
    // Entry 3 starts path, the followed file is path.1.
    follow_through_rotations(3, 3);
}

#[test]
fn follower_crosses_several_rotations_between_polls() {
    // Five rotations while the follower slept.
    follow_through_rotations(10, 11);
}

#[test]
fn follower_survives_its_file_being_deleted() {
    // max-file 2: after two rotations the followed file is gone, but the
    // follower holds it, and every file still there is newer.
    follow_through_rotations(2, 6);
    // max-file 1: each rotation removes the file.
    follow_through_rotations(1, 4);
}

#[test]
fn follower_waits_for_the_log_to_appear() {
    let d = dir();
    let p = d.path().join("later.log");
    let (got, mut f) = read_follow(&p, 3, &Query::default()).expect("read");
    assert!(got.is_empty());
    assert!(f.poll().expect("poll").is_empty());
    let mut w = writer(&p, 250, 3);
    write_entries(&mut w, 1..=4);
    expect_entries(&f.poll().expect("poll"), 1..=4);
}

#[test]
fn follower_notices_an_unmarked_rotation_within_seconds() {
    let d = dir();
    let p = d.path().join("ext.log");
    {
        let mut w = writer(&p, 0, 2);
        write_entries(&mut w, 1..=2);
    }
    let (got, mut f) = read_follow(&p, 2, &Query::default()).expect("read");
    expect_entries(&got, 1..=2);
    // As if a shim died between its rename and marking the old file.
    fs::rename(&p, rotated_path(&p, 1)).expect("rename");
    let mut w = writer(&p, 0, 2);
    write_entries(&mut w, 3..=4);
    let mut got = f.poll().expect("poll");
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        got = f.poll().expect("poll");
    }
    expect_entries(&got, 3..=4);
}

#[test]
fn corrupt_lines_are_skipped() {
    let d = dir();
    let p = d.path().join("bad.log");
    let mut body = entry_line(Stream::Stdout, "good 1\n", 100, 0);
    for bad in [
        &b""[..],
        b"not json",
        br#"{"log":"x","stream":"stdin","time":"2020-01-01T00:00:00Z"}"#,
        br#"{"log":"x","stream":"stdout"}"#,
        br#"{"log":"x","stream":"stdout","time":"yesterday"}"#,
        br#"{"log":1,"stream":"stdout","time":"2020-01-01T00:00:00Z"}"#,
        br#"{"log":"x","stream":"stdout","time":"2020-01-01T00:00:00Z","attrs":{"a":1}}"#,
        br#"{"log":"x\ud800","stream":"stdout","time":"2020-01-01T00:00:00Z"}"#,
        br#"{"log":"\xff","stream":"stdout","time":"2020-01-01T00:00:00Z"}"#,
        b"{\"log\":\"\xff\",\"stream\":\"stdout\",\"time\":\"2020-01-01T00:00:00Z\"}",
        b"[1,2]",
        b"\0\0\0",
        b"{\"log\":\"x\"",
    ] {
        body.extend_from_slice(bad);
        body.push(b'\n');
    }
    body.extend(entry_line(Stream::Stderr, "good 2\n", 101, 0));
    body.extend_from_slice(br#"{"log":"torn","str"#);
    fs::write(&p, &body).expect("write");
    let got = all(&p, 1);
    assert_eq!(texts(&got), ["good 1\n", "good 2\n"]);
    let got = read(
        &p,
        1,
        &Query {
            tail: Some(2),
            ..Query::default()
        },
    )
    .expect("read");
    assert_eq!(
        texts(&got),
        ["good 2\n"],
        "the tail counts lines, bad ones too"
    );
    // A minimal but valid entry: no log at all.
    append(
        &p,
        b"\n{\"stream\":\"stdout\",\"time\":\"2020-01-01T00:00:00Z\"}\n",
    );
    assert_eq!(texts(&all(&p, 1)), ["good 1\n", "good 2\n", ""]);
}

#[test]
fn random_bytes_never_panic() {
    let d = dir();
    let p = d.path().join("noise.log");
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut body = Vec::with_capacity(300_000);
    for _ in 0..300_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let b = (state >> 56) as u8;
        body.push(match b % 16 {
            0 => b'\n',
            1 => b'{',
            2 => b'"',
            _ => b,
        });
    }
    body.push(b'\n');
    body.extend(entry_line(Stream::Stdout, "survivor\n", 5, 0));
    fs::write(&p, &body).expect("write");
    for tail in [None, Some(0), Some(1), Some(7), Some(100_000)] {
        let got = read(
            &p,
            3,
            &Query {
                tail,
                ..Query::default()
            },
        )
        .expect("read");
        if tail != Some(0) {
            assert_eq!(texts(&got).last().map(String::as_str), Some("survivor\n"));
        }
    }
}

#[test]
fn write_errors_are_returned_and_the_writer_recovers() {
    let d = dir();
    let p = d.path().join("err.log");
    // The oldest rotated name is a non-empty directory: it cannot be
    // removed, so the rotation fails.
    let blocker = rotated_path(&p, 2);
    fs::create_dir(&blocker).expect("mkdir");
    fs::write(blocker.join("x"), b"x").expect("fill");
    fs::create_dir(rotated_path(&p, 1)).expect("mkdir");
    let mut w = writer(&p, 250, 3);
    write_entries(&mut w, 1..=2);
    let err = w
        .write(Stream::Stdout, payload(3).as_bytes())
        .expect_err("rotation fails");
    assert!(matches!(err, LogError::Io { op: "remove", .. }), "{err}");
    // The entry was kept in the current file instead of being lost.
    expect_entries(&all(&p, 1), 1..=3);
    fs::remove_dir_all(&blocker).expect("rm");
    fs::remove_dir_all(rotated_path(&p, 1)).expect("rm");
    write_entries(&mut w, 4..=4);
    expect_entries(&all(&p, 3), 1..=4);
    assert!(rotated_path(&p, 1).is_file());
    assert_eq!(raw_lines(&p).len(), 1);
}

#[test]
fn options_feed_the_writer() {
    let d = dir();
    let p: PathBuf = d.path().join("o.log");
    let o: BTreeMap<String, String> = [
        ("max-size".to_string(), "250b".to_string()),
        ("max-file".to_string(), "2".to_string()),
    ]
    .into();
    let mut w = LogWriter::open(&p, LogOptions::from_opts(&o).expect("opts")).expect("open");
    assert_eq!(w.path(), p.as_path());
    write_entries(&mut w, 1..=5);
    expect_entries(&all(&p, 2), 3..=5);
    assert!(!rotated_path(&p, 2).exists());
}
