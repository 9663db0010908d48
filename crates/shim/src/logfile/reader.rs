//! The daemon's side: `docker logs` (tail, since, until, stream filters)
//! over the live file and its rotated predecessors, and `docker logs -f`.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::clock::Timestamp;
use super::{LogError, Stream, rotated_path};

/// Bytes read at a time, forwards and backwards.
const BLOCK: usize = 64 * 1024;
/// Longest line the reader holds in memory; longer ones are skipped.
const MAX_RAW_LINE: usize = 1 << 20;
/// Attempts at opening a consistent set of files while a rotation runs.
const CHAIN_ATTEMPTS: usize = 5;
/// How often a follower also checks the path itself, in case a rotation
/// did not mark the old file (the shim died half-way through one).
const PATH_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// One log entry read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stream it came from.
    pub stream: Stream,
    /// When the shim read it (for a line split into partial entries: when
    /// it read the first piece).
    pub time: Timestamp,
    /// The output bytes; a complete line ends with `\n`, a partial entry
    /// does not.
    pub line: Vec<u8>,
    /// The entry's `attrs` (label/env log-opts), for `docker logs --details`.
    pub attrs: BTreeMap<String, String>,
}

/// The time as `docker logs -t` prints it: RFC 3339 in UTC with exactly
/// nine fraction digits (dockerd's `rfc3339NanoFixed`), e.g.
/// `2026-11-22T08:41:02.123456780Z`.
pub fn timestamp(entry: &Entry) -> String {
    entry.time.to_rfc3339_nano_fixed()
}

/// What `docker logs` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// Only the last so many entries (counted over both streams and before
    /// `since`/`until`, as dockerd counts); `None` for all.
    pub tail: Option<usize>,
    /// Leave out entries older than this.
    pub since: Option<Timestamp>,
    /// Stop at the first entry newer than this.
    pub until: Option<Timestamp>,
    /// Include stdout entries.
    pub stdout: bool,
    /// Include stderr entries.
    pub stderr: bool,
}

impl Default for Query {
    /// Everything, both streams.
    fn default() -> Self {
        Query {
            tail: None,
            since: None,
            until: None,
            stdout: true,
            stderr: true,
        }
    }
}

/// The filter a [`Query`] applies to each entry.
#[derive(Debug, Clone, Copy)]
struct Filter {
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    stdout: bool,
    stderr: bool,
}

impl Filter {
    fn new(q: &Query) -> Self {
        Filter {
            since: q.since,
            until: q.until,
            stdout: q.stdout,
            stderr: q.stderr,
        }
    }

    /// Takes one raw line: pushes its entry to `out` if wanted; `false`
    /// once an entry lies past `until` (reading stops there, as in dockerd).
    /// Lines that are no entry are skipped.
    fn take(&self, line: &[u8], out: &mut impl FnMut(Entry)) -> bool {
        let Some(e) = parse_entry(line) else {
            return true;
        };
        if self.since.is_some_and(|s| e.time < s) {
            return true;
        }
        if self.until.is_some_and(|u| e.time > u) {
            return false;
        }
        let wanted = match e.stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        };
        if wanted {
            out(e);
        }
        true
    }
}

#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(default)]
    log: Option<String>,
    #[serde(default, borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    time: Option<Cow<'a, str>>,
    #[serde(default)]
    attrs: Option<BTreeMap<String, String>>,
}

/// Decodes one line of a json-file log (without its `\n`). `None` for a
/// line that is not an entry: bad JSON, a torn line, an unknown stream or
/// a missing or malformed time.
pub fn parse_entry(line: &[u8]) -> Option<Entry> {
    let raw: RawEntry<'_> = serde_json::from_slice(line).ok()?;
    let stream = match raw.stream.as_deref()? {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    let time = Timestamp::parse_rfc3339(raw.time.as_deref()?)?;
    Some(Entry {
        stream,
        time,
        line: raw.log.unwrap_or_default().into_bytes(),
        attrs: raw.attrs.unwrap_or_default(),
    })
}

/// Identity of an open file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(m: &fs::Metadata) -> Self {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// One file of the log, opened.
#[derive(Debug)]
struct Segment {
    file: File,
    /// The name it had when opened (for messages).
    path: PathBuf,
    id: FileId,
    /// Its size when opened.
    len: u64,
}

fn open_segment(path: &Path) -> Result<Option<Segment>, LogError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io("open", path, e)),
    };
    let meta = file.metadata().map_err(|e| LogError::io("stat", path, e))?;
    Ok(Some(Segment {
        file,
        path: path.to_path_buf(),
        id: FileId::of(&meta),
        len: meta.len(),
    }))
}

fn stat_id(path: &Path) -> Result<Option<FileId>, LogError> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(FileId::of(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io("stat", path, e)),
    }
}

/// Opens `path.{max_file-1}` … `path.1`, `path` (those that exist), oldest
/// first. If a rotation moves files meanwhile (the live file changes, or a
/// gap shows in the numbering) it starts again, a few times.
fn open_chain(path: &Path, max_file: u32) -> Result<Vec<Segment>, LogError> {
    let mut chain = Vec::new();
    for attempt in 0..CHAIN_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let before = stat_id(path)?;
        chain.clear();
        let mut gap = false;
        for i in 1..max_file {
            match open_segment(&rotated_path(path, i))? {
                Some(s) => chain.push(s),
                None => {
                    gap =
                        i + 1 < max_file && fs::symlink_metadata(rotated_path(path, i + 1)).is_ok();
                    break;
                }
            }
        }
        chain.reverse();
        let live = open_segment(path)?;
        let live_id = live.as_ref().map(|s| s.id);
        chain.extend(live);
        let after = stat_id(path)?;
        if !gap && before == after && after == live_id {
            break;
        }
    }
    Ok(chain)
}

/// Reads at `offset`, retrying when interrupted.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Where the last `n` (≥ 1) complete lines of `file[..len]` start, and
/// how many lines there are from there (fewer than `n` when the file has
/// fewer). Reads backwards in blocks, so the cost follows `n`, not the
/// file's size. A last line without `\n` does not count.
fn tail_start(file: &File, len: u64, n: usize) -> io::Result<(u64, usize)> {
    let mut buf = vec![0u8; BLOCK];
    let mut pos = len;
    let mut seen_end = false;
    let mut found = 0;
    while pos > 0 {
        let size = BLOCK.min(usize::try_from(pos).unwrap_or(BLOCK));
        pos -= size as u64;
        let block = &mut buf[..size];
        let mut got = 0;
        while got < size {
            let r = read_at(file, &mut block[got..], pos + got as u64)?;
            if r == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "log file shrank",
                ));
            }
            got += r;
        }
        for j in (0..size).rev() {
            if block[j] != b'\n' {
                continue;
            }
            if !seen_end {
                seen_end = true;
                continue;
            }
            found += 1;
            if found == n {
                return Ok((pos + j as u64 + 1, found));
            }
        }
    }
    Ok((0, found + usize::from(seen_end)))
}

/// The offset just after the last `\n` in `file[..len]` (0 if none).
fn last_line_end(file: &File, len: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 4096];
    let mut pos = len;
    while pos > 0 {
        let size = buf.len().min(usize::try_from(pos).unwrap_or(buf.len()));
        pos -= size as u64;
        let got = read_at(file, &mut buf[..size], pos)?;
        if let Some(j) = buf[..got].iter().rposition(|&b| b == b'\n') {
            return Ok(pos + j as u64 + 1);
        }
    }
    Ok(0)
}

/// Hands each complete line of `file[start..limit]` (without its `\n`) to
/// `on_line` until it returns `false`. Returns the offset after the last
/// line handed over (or skipped) and whether `on_line` stopped; a
/// trailing line without `\n` (still being written, or torn) is left
/// unread. A line longer than `max_line` is no entry (dockerd's longest
/// is about 100 KiB): it is skipped without being held in memory, and
/// when it runs up to `limit` the offset returned lies past it.
fn scan_lines(
    file: &File,
    start: u64,
    limit: u64,
    max_line: usize,
    mut on_line: impl FnMut(&[u8]) -> bool,
) -> io::Result<(u64, bool)> {
    let mut buf: Vec<u8> = Vec::new();
    let mut base = start; // file offset of buf[0]
    let mut read_pos = start;
    let mut searched = 0; // buf[..searched] holds no '\n'
    let mut skipping = false; // inside an overlong line
    while read_pos < limit {
        let want = BLOCK.min(usize::try_from(limit - read_pos).unwrap_or(BLOCK));
        let old = buf.len();
        buf.resize(old + want, 0);
        let got = read_at(file, &mut buf[old..], read_pos)?;
        buf.truncate(old + got);
        if got == 0 {
            break;
        }
        read_pos += got as u64;
        let mut line_start = 0;
        let mut i = searched;
        while let Some(k) = buf[i..].iter().position(|&b| b == b'\n') {
            let nl = i + k;
            if skipping {
                skipping = false;
            } else if !on_line(&buf[line_start..nl]) {
                return Ok((base + nl as u64 + 1, true));
            }
            line_start = nl + 1;
            i = line_start;
        }
        buf.drain(..line_start);
        base += line_start as u64;
        if skipping || buf.len() > max_line {
            skipping = true;
            base += buf.len() as u64;
            buf.clear();
        }
        searched = buf.len();
    }
    Ok((base, false))
}

/// Reads the log at `path` (with its rotated files `path.1` …
/// `path.{max_file-1}`) as `docker logs` does, oldest entry first.
/// A missing log reads as empty.
pub fn read(path: &Path, max_file: u32, q: &Query) -> Result<Vec<Entry>, LogError> {
    Ok(read_follow(path, max_file, q)?.0)
}

/// [`read`], and a [`Follower`] that continues exactly where the read
/// stopped (`docker logs -f`).
pub fn read_follow(
    path: &Path,
    max_file: u32,
    q: &Query,
) -> Result<(Vec<Entry>, Follower), LogError> {
    let mut entries = Vec::new();
    let follower = read_each(path, max_file, q, |e| entries.push(e))?;
    Ok((entries, follower))
}

/// [`read_follow`] handing each entry to `f` instead of collecting them.
pub fn read_each(
    path: &Path,
    max_file: u32,
    q: &Query,
    mut f: impl FnMut(Entry),
) -> Result<Follower, LogError> {
    let max_file = max_file.max(1);
    let mut chain = open_chain(path, max_file)?;
    let filter = Filter::new(q);
    // Where reading starts in each file; None: nothing wanted from it.
    let mut starts: Vec<Option<u64>> = vec![Some(0); chain.len()];
    if let Some(n) = q.tail {
        let mut want = n;
        for (seg, start) in chain.iter().zip(starts.iter_mut()).rev() {
            if want == 0 {
                *start = None;
                continue;
            }
            let (at, found) = tail_start(&seg.file, seg.len, want)
                .map_err(|e| LogError::io("read", &seg.path, e))?;
            *start = Some(at);
            want -= found.min(want);
        }
    }
    let mut stopped = false;
    let mut follow_at = 0;
    let last = chain.len().saturating_sub(1);
    for (i, (seg, start)) in chain.iter().zip(&starts).enumerate() {
        let end = match (*start, stopped) {
            (Some(at), false) => {
                let (end, stop) = scan_lines(&seg.file, at, seg.len, MAX_RAW_LINE, |line| {
                    filter.take(line, &mut f)
                })
                .map_err(|e| LogError::io("read", &seg.path, e))?;
                stopped = stop;
                end
            }
            _ if i == last => {
                last_line_end(&seg.file, seg.len).map_err(|e| LogError::io("read", &seg.path, e))?
            }
            _ => 0,
        };
        if i == last {
            follow_at = end;
        }
    }
    let cur = chain.pop().map(|seg| Cursor {
        file: seg.file,
        path: seg.path,
        id: seg.id,
        offset: follow_at,
    });
    Ok(Follower {
        path: path.to_path_buf(),
        max_file,
        filter,
        cur,
        queue: VecDeque::new(),
        done: stopped,
        last_check: Instant::now(),
    })
}

/// The file a follower is reading and how far.
#[derive(Debug)]
struct Cursor {
    file: File,
    path: PathBuf,
    id: FileId,
    offset: u64,
}

impl Cursor {
    fn start(seg: Segment) -> Self {
        Cursor {
            file: seg.file,
            path: seg.path,
            id: seg.id,
            offset: 0,
        }
    }
}

/// Follows a log as it is written (`docker logs -f`), across rotations.
///
/// It holds the file it reads open, so a rotation cannot pull it away: it
/// finishes that file, then goes on with the next one (`path.{k-1}` after
/// `path.{k}`, `path` last), neither losing nor repeating entries — unless
/// it falls so far behind that files it has not read were already
/// deleted. Polling costs one `fstat` when nothing changed: the writer
/// takes the write bits off a file when it rotates it away, which that
/// `fstat` shows (and a removed file shows no links); once a second the
/// follower also compares the path itself, for a rotation the shim did not
/// live to mark.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    max_file: u32,
    filter: Filter,
    /// None until the log exists.
    cur: Option<Cursor>,
    /// Newer files, oldest first, opened when a rotation was seen.
    queue: VecDeque<Segment>,
    done: bool,
    last_check: Instant,
}

impl Follower {
    /// Whether an entry past the query's `until` was reached: nothing more
    /// will be returned.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The entries written since the last call (or since the read this
    /// follower came from), oldest first. Lines still being written are
    /// left for the next call.
    pub fn poll(&mut self) -> Result<Vec<Entry>, LogError> {
        let mut out = Vec::new();
        if self.done {
            return Ok(out);
        }
        if self.cur.is_none() {
            let mut chain: VecDeque<Segment> = open_chain(&self.path, self.max_file)?.into();
            let Some(first) = chain.pop_front() else {
                return Ok(out);
            };
            self.cur = Some(Cursor::start(first));
            self.queue = chain;
        }
        let filter = self.filter;
        let mut push = |e: Entry| out.push(e);
        while let Some(cur) = self.cur.as_mut() {
            let meta = cur
                .file
                .metadata()
                .map_err(|e| LogError::io("stat", &cur.path, e))?;
            if !read_new(cur, meta.len(), &filter, &mut push)? {
                self.done = true;
                break;
            }
            if let Some(next) = self.queue.pop_front() {
                // `cur` was rotated away before it was opened or queued:
                // it is complete, and now read.
                self.cur = Some(Cursor::start(next));
                continue;
            }
            let finished = meta.mode() & 0o222 == 0 || meta.nlink() == 0;
            if !finished && self.last_check.elapsed() < PATH_CHECK_INTERVAL {
                break;
            }
            self.last_check = Instant::now();
            let live = stat_id(&self.path)?;
            if live == Some(cur.id) || (live.is_none() && !finished) {
                break;
            }
            // Rotated away: read what it got after the fstat above, then
            // go on with its successors.
            let len = cur
                .file
                .metadata()
                .map_err(|e| LogError::io("stat", &cur.path, e))?
                .len();
            if !read_new(cur, len, &filter, &mut push)? {
                self.done = true;
                break;
            }
            let mut chain = open_chain(&self.path, self.max_file)?;
            let newer = match chain.iter().position(|s| s.id == cur.id) {
                Some(i) => chain.split_off(i + 1),
                // Gone (removed by rotation, or max_file is 1): every file
                // there is now came after it.
                None => chain,
            };
            self.queue = newer.into();
            match self.queue.pop_front() {
                Some(next) => self.cur = Some(Cursor::start(next)),
                // The new live file is not there yet.
                None => break,
            }
        }
        Ok(out)
    }
}

/// Reads `cur` from its offset up to `len`; `false` when `until` stopped it.
fn read_new(
    cur: &mut Cursor,
    len: u64,
    filter: &Filter,
    out: &mut impl FnMut(Entry),
) -> Result<bool, LogError> {
    if len <= cur.offset {
        return Ok(true);
    }
    let (end, stop) = scan_lines(&cur.file, cur.offset, len, MAX_RAW_LINE, |line| {
        filter.take(line, out)
    })
    .map_err(|e| LogError::io("read", &cur.path, e))?;
    cur.offset = end;
    Ok(!stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_of(
        content: &[u8],
        max_line: usize,
        stop_at: Option<&[u8]>,
    ) -> (Vec<Vec<u8>>, u64, bool) {
        let mut f = tempfile::tempfile().expect("temp file");
        f.write_all(content).expect("write");
        let mut got = Vec::new();
        let (end, stopped) = scan_lines(&f, 0, content.len() as u64, max_line, |l| {
            got.push(l.to_vec());
            Some(l) != stop_at
        })
        .expect("scan");
        (got, end, stopped)
    }

    #[test]
    fn scan_skips_overlong_lines_without_holding_them() {
        let mut content = b"short\n".to_vec();
        content.extend(vec![b'g'; 300_000]);
        content.extend(b"\nafter\n");
        let (got, end, stopped) = lines_of(&content, 1000, None);
        assert_eq!(got, [b"short".to_vec(), b"after".to_vec()]);
        assert_eq!((end, stopped), (content.len() as u64, false));
        // An overlong line at the end: the offset moves past it.
        let mut content = b"a\n".to_vec();
        content.extend(vec![b'g'; 200_000]);
        let (got, end, _) = lines_of(&content, 1000, None);
        assert_eq!(got, [b"a".to_vec()]);
        assert_eq!(end, content.len() as u64);
        // A long line under the limit is kept, a torn last one is not.
        let mut content = vec![b'k'; 150_000];
        content.extend(b"\nlast\ntorn");
        let (got, end, _) = lines_of(&content, MAX_RAW_LINE, None);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), 150_000);
        assert_eq!(end, content.len() as u64 - 4);
        // Stopping reports the offset after the line it stopped at.
        let (got, end, stopped) = lines_of(b"x\ny\nz\n", 10, Some(b"y"));
        assert_eq!((got.len(), end, stopped), (2, 4, true));
    }

    #[test]
    fn tail_start_counts_from_the_end() {
        let mut f = tempfile::tempfile().expect("temp file");
        let mut content = Vec::new();
        for n in 0..10_000 {
            content.extend(format!("line {n}\n").bytes());
        }
        content.extend(b"torn");
        f.write_all(&content).expect("write");
        let len = content.len() as u64;
        let (at, found) = tail_start(&f, len, 3).expect("tail");
        assert_eq!(found, 3);
        assert_eq!(
            &content[at as usize..],
            b"line 9997\nline 9998\nline 9999\ntorn"
        );
        assert_eq!(tail_start(&f, len, 20_000).expect("tail"), (0, 10_000));
        assert_eq!(tail_start(&f, len, 10_000).expect("tail"), (0, 10_000));
        assert_eq!(last_line_end(&f, len).expect("end"), len - 4);
        assert_eq!(tail_start(&f, 4, 1).expect("tail"), (0, 0));
        assert_eq!(last_line_end(&f, 4).expect("end"), 0);
    }
}
