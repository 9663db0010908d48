//! The shim's side: turning pipe chunks into json-file entries, appending
//! them, rotating the files.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::clock::Timestamp;
use super::json::{self, Counter, Sink};
use super::{LogError, LogOptions, MAX_LINE, Stream, rotated_path};

/// Mode of a log file being written (dockerd uses 0640 too).
const LIVE_MODE: u32 = 0o640;
/// Mode a file gets once rotated away: no write bits. Followers see it
/// with one `fstat` on the descriptor they hold and move on to the next
/// file (see [`super::Follower`]).
pub(crate) const FINISHED_MODE: u32 = 0o440;
/// Entries whose encoding surely fits in this many bytes are encoded in
/// one buffer and written with one `write`; longer ones are counted first
/// and written in pieces of this size, so memory stays bounded.
const STAGE: usize = 8 * 1024;

/// Appends a container's output to its json-file log, rotating it.
///
/// Single-threaded and small: besides the file it holds at most one
/// partial line per stream (up to 16 KiB each) and an 8 KiB staging
/// buffer. Errors are returned, never panics; after an error the writer
/// stays usable (a failed rotation keeps writing to the current file, a
/// lost file is reopened on the next write).
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: Option<File>,
    /// Bytes in `file`, as far as this writer knows.
    size: u64,
    max_size: u64,
    max_file: u32,
    /// `,"attrs":{…}` or empty.
    attrs: Vec<u8>,
    /// Output not yet ended by a newline, per stream.
    pending: [Vec<u8>; 2],
    /// Time of the first piece of a line already split into partial
    /// entries; the later pieces carry the same time, as in dockerd.
    partial_time: [Option<Timestamp>; 2],
    stage: Vec<u8>,
}

impl LogWriter {
    /// Opens (or creates, mode 0640) the log at `path` for appending, as
    /// after a container restart. A last line left incomplete by a crash
    /// is terminated so the next entry starts on a line of its own.
    pub fn open(path: &Path, opts: LogOptions) -> Result<Self, LogError> {
        if opts.compress {
            return Err(LogError::UnsupportedOpt("compress".to_string()));
        }
        let file = open_live(path).map_err(|e| LogError::io("open", path, e))?;
        let meta = file.metadata().map_err(|e| LogError::io("stat", path, e))?;
        let mut w = LogWriter {
            path: path.to_path_buf(),
            file: Some(file),
            size: meta.len(),
            max_size: opts.max_size,
            max_file: opts.max_file.max(1),
            attrs: json::render_attrs(&opts.attrs),
            pending: [Vec::new(), Vec::new()],
            partial_time: [None, None],
            stage: Vec::new(),
        };
        w.terminate_torn_line()?;
        Ok(w)
    }

    /// The path of the live file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs a chunk of a stream's output, as read from its pipe: every
    /// complete line becomes an entry (`"log"` ending in `\n`); a line
    /// that reaches 16 KiB without a newline is written as a partial entry
    /// of 16 KiB (no `\n`) and continued in the next; the rest waits for
    /// more output or [`flush_stream`](Self::flush_stream).
    ///
    /// On error the chunk's other lines are still attempted; the first
    /// error is returned.
    pub fn write(&mut self, stream: Stream, mut bytes: &[u8]) -> Result<(), LogError> {
        let s = stream.index();
        let mut result = Ok(());
        while !bytes.is_empty() {
            let room = MAX_LINE - self.pending[s].len();
            let window = &bytes[..bytes.len().min(room)];
            let (end, newline) = match window.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None if window.len() == room => (room, false),
                None => {
                    self.pending[s].extend_from_slice(window);
                    break;
                }
            };
            let time = if newline {
                self.partial_time[s].take().unwrap_or_else(Timestamp::now)
            } else {
                *self.partial_time[s].get_or_insert_with(Timestamp::now)
            };
            let r = if self.pending[s].is_empty() {
                self.emit(stream, &window[..end], newline, time)
            } else {
                let mut line = std::mem::take(&mut self.pending[s]);
                line.extend_from_slice(&window[..end]);
                let r = self.emit(stream, &line, newline, time);
                line.clear();
                self.pending[s] = line;
                r
            };
            if result.is_ok() {
                result = r;
            }
            bytes = &bytes[end + usize::from(newline)..];
        }
        result
    }

    /// Writes what a stream left without a final newline as a partial
    /// entry (no `\n`), as dockerd does when the stream ends. Nothing
    /// happens when nothing is pending.
    pub fn flush_stream(&mut self, stream: Stream) -> Result<(), LogError> {
        let s = stream.index();
        let time = self.partial_time[s].take();
        if self.pending[s].is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.pending[s]);
        let r = self.emit(stream, &line, false, time.unwrap_or_else(Timestamp::now));
        self.pending[s] = line;
        self.pending[s].clear();
        r
    }

    /// [`flush_stream`](Self::flush_stream) for both streams (stdout
    /// first), at the end of the container's output.
    pub fn flush_partial(&mut self) -> Result<(), LogError> {
        let out = self.flush_stream(Stream::Stdout);
        let err = self.flush_stream(Stream::Stderr);
        out.and(err)
    }

    /// Encodes and appends one entry, rotating first when it would not fit.
    fn emit(
        &mut self,
        stream: Stream,
        line: &[u8],
        newline: bool,
        time: Timestamp,
    ) -> Result<(), LogError> {
        if !time.in_rfc3339_range() {
            // dockerd's time.MarshalJSON fails the same way and drops the entry.
            return Err(LogError::TimeOutOfRange);
        }
        let text = time.text(false);
        let mut stage = std::mem::take(&mut self.stage);
        stage.clear();
        // Allocated once, at its final size: neither path grows it further.
        stage.reserve_exact(STAGE);
        let small = json::entry_len_bound(line.len(), self.attrs.len()) <= STAGE;
        let len = if small {
            json::encode_entry(
                &mut stage,
                line,
                newline,
                stream,
                &self.attrs,
                text.as_bytes(),
            );
            stage.len() as u64
        } else {
            let mut c = Counter::default();
            json::encode_entry(&mut c, line, newline, stream, &self.attrs, text.as_bytes());
            c.0
        };
        // A failed rotation still writes the entry to the current file:
        // better an oversized file than a lost line.
        let rotated = if self.max_size > 0 && self.size > 0 && self.size + len > self.max_size {
            self.rotate()
        } else {
            Ok(())
        };
        let written = self.ensure_file().and_then(|()| match &mut self.file {
            None => Err(io::Error::other("log file not open")),
            Some(file) if small => file.write_all(&stage),
            Some(file) => {
                let mut chunks = Chunked {
                    file,
                    buf: &mut stage,
                    err: None,
                };
                json::encode_entry(
                    &mut chunks,
                    line,
                    newline,
                    stream,
                    &self.attrs,
                    text.as_bytes(),
                );
                chunks.finish()
            }
        });
        self.stage = stage;
        match written {
            Ok(()) => self.size += len,
            Err(e) => {
                // Take back a torn entry so that the file stays line-aligned.
                if let Some(f) = &self.file {
                    let _ = f.set_len(self.size);
                }
                let err = LogError::io("write", &self.path, e);
                return rotated.and(Err(err));
            }
        }
        rotated
    }

    /// Reopens the live file if an earlier rotation lost it.
    fn ensure_file(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            let f = open_live(&self.path)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        Ok(())
    }

    /// Writes a newline if the file ends inside a line.
    fn terminate_torn_line(&mut self) -> Result<(), LogError> {
        if self.size == 0 {
            return Ok(());
        }
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        let mut last = [0u8; 1];
        file.read_exact_at(&mut last, self.size - 1)
            .map_err(|e| LogError::io("read", &self.path, e))?;
        if last[0] != b'\n' {
            file.write_all(b"\n")
                .map_err(|e| LogError::io("write", &self.path, e))?;
            self.size += 1;
        }
        Ok(())
    }

    /// Moves `path.{i}` to `path.{i+1}` (dropping the oldest) and `path`
    /// to `path.1`, marks the old file finished and starts a new one;
    /// with `max_file` 1 the old file is just removed. Dockerd's naming.
    ///
    /// On an error before the old file is moved nothing changes and the
    /// writer keeps appending to it.
    fn rotate(&mut self) -> Result<(), LogError> {
        if self.max_file >= 2 {
            self.shift_rotated()?;
            let first = rotated_path(&self.path, 1);
            match fs::rename(&self.path, &first) {
                Ok(()) => {}
                // Someone removed the live file: start a new one.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("rename", &self.path, e)),
            }
        } else {
            match fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("remove", &self.path, e)),
            }
        }
        if let Some(old) = self.file.take() {
            // The marker followers look for; a failure only costs them a
            // later detection (they also check the path now and then).
            let _ = old.set_permissions(Permissions::from_mode(FINISHED_MODE));
        }
        self.size = 0;
        let file = open_live(&self.path).map_err(|e| LogError::io("open", &self.path, e))?;
        self.file = Some(file);
        Ok(())
    }

    /// Makes room for `path.1`: removes `path.{max_file-1}` if it exists
    /// and moves every `path.{i}` up by one. Only the files that exist are
    /// touched (they are numbered without gaps), so a huge `max_file`
    /// costs nothing.
    fn shift_rotated(&self) -> Result<(), LogError> {
        let last = self.max_file - 1;
        let mut count = 0;
        while count < last && fs::symlink_metadata(rotated_path(&self.path, count + 1)).is_ok() {
            count += 1;
        }
        if count == last {
            let oldest = rotated_path(&self.path, last);
            match fs::remove_file(&oldest) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("remove", &oldest, e)),
            }
            count -= 1;
        }
        for i in (1..=count).rev() {
            let from = rotated_path(&self.path, i);
            match fs::rename(&from, rotated_path(&self.path, i + 1)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("rename", &from, e)),
            }
        }
        Ok(())
    }
}

/// Opens the live file for appending (and reading its last byte),
/// creating it with mode 0640.
fn open_live(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(LIVE_MODE)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// A sink that writes through a bounded buffer.
struct Chunked<'a> {
    file: &'a mut File,
    buf: &'a mut Vec<u8>,
    err: Option<io::Error>,
}

impl Chunked<'_> {
    fn drain(&mut self) {
        if self.err.is_none() && !self.buf.is_empty() {
            if let Err(e) = self.file.write_all(self.buf) {
                self.err = Some(e);
            }
        }
        self.buf.clear();
    }

    fn finish(mut self) -> io::Result<()> {
        self.drain();
        match self.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Sink for Chunked<'_> {
    fn put(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.buf.len() >= STAGE {
                self.drain();
            }
            let n = bytes.len().min(STAGE - self.buf.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() >= STAGE {
                self.drain();
            }
        }
    }
}
