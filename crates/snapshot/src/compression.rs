//! Layer compression: detected from the stream's first bytes, whatever the
//! media type claims (Docker does the same).

use std::io::{self, BufRead, BufReader, Read};

/// A layer's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl Compression {
    /// Detects the compression from the first bytes of a stream.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The suffix of the layer media types (`+gzip`, `+zstd`, ``).
    pub fn media_type_suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "+gzip",
            Compression::Zstd => "+zstd",
        }
    }
}

/// Wraps a reader so that it yields the uncompressed bytes, whatever the
/// compression; returns the compression found too.
pub fn decompress<'a>(
    reader: impl Read + Send + 'a,
) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let mut buffered = BufReader::with_capacity(1 << 20, reader);
    let head = buffered.fill_buf()?;
    let compression = Compression::detect(head);
    let out: Box<dyn Read + Send + 'a> = match compression {
        Compression::None => Box::new(buffered),
        // Several gzip members in a row are one stream (pigz, concatenated
        // layers).
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    };
    Ok((compression, out))
}

/// Reads `reader` on another thread, a megabyte at a time, so that its
/// work (decompressing, hashing, copying into a blob: whatever `reader`
/// does as it is read) overlaps with the consumer's (writing files).
/// Errors reach the consumer in order; [`ReadAhead::finish`] hands
/// `reader` back once it is consumed, for its hashes or its tee.
pub fn read_ahead<R: Read + Send + 'static>(reader: R) -> ReadAhead<R> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(8);
    let failed = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("read-ahead".into())
        .spawn(move || pump(reader, &tx));
    let handle = match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            let _ = failed.send(Err(e));
            None
        }
    };
    drop(failed);
    ReadAhead {
        rx,
        current: Vec::new(),
        pos: 0,
        ended: false,
        handle,
    }
}

/// The reading thread: chunks of `reader` into `tx`, then an empty chunk
/// for the end (a thread that dies says nothing, and that is an error).
/// Returns the reader if it was read to its end.
fn pump<R: Read>(
    mut reader: R,
    tx: &std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> Option<R> {
    loop {
        let mut buf = vec![0u8; 1 << 20];
        let mut filled = 0;
        // Fill the chunk (small reads from a decompressor add up).
        let result = loop {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break Ok(true),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        break Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        // What was read before an error or the end goes first.
        if filled > 0 {
            buf.truncate(filled);
            tx.send(Ok(buf)).ok()?;
        }
        match result {
            Ok(false) => {}
            Ok(true) => {
                tx.send(Ok(Vec::new())).ok()?;
                return Some(reader);
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return None;
            }
        }
    }
}

/// The consumer's end of [`read_ahead`].
pub struct ReadAhead<R> {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    ended: bool,
    handle: Option<std::thread::JoinHandle<Option<R>>>,
}

impl<R> std::fmt::Debug for ReadAhead<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead").field("pos", &self.pos).finish()
    }
}

impl<R> ReadAhead<R> {
    /// The reader, once everything has been read from it (to its end).
    pub fn finish(self) -> io::Result<R> {
        drop(self.rx);
        let Some(handle) = self.handle else {
            return Err(io::Error::other("the reading thread did not start"));
        };
        match handle.join() {
            Ok(Some(reader)) => Ok(reader),
            Ok(None) => Err(io::Error::other("the stream was not read to its end")),
            Err(_) => Err(io::Error::other("the reading thread failed")),
        }
    }
}

impl<R> Read for ReadAhead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.ended = true,
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("the reading thread stopped")),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_and_decompresses_each_kind() {
        let data = b"hello layer".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap_or_default();
        let gz = gz.finish().unwrap_or_default();
        let zst = zstd::encode_all(&data[..], 1).unwrap_or_default();
        for (bytes, kind) in [
            (data.clone(), Compression::None),
            (gz, Compression::Gzip),
            (zst, Compression::Zstd),
        ] {
            let (found, mut r) =
                decompress(io::Cursor::new(bytes)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(found, kind);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out, data);
        }
    }

    #[test]
    fn read_ahead_passes_bytes_and_errors_in_order() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        read_ahead(io::Cursor::new(data.clone()))
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, data);
        let mut counted = read_ahead(io::Cursor::new(data.clone()));
        io::copy(&mut counted, &mut io::sink()).unwrap_or_else(|e| panic!("{e}"));
        let back = counted.finish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.position(), data.len() as u64);
        let truncated = flate2::read::GzDecoder::new(io::Cursor::new(vec![0x1f, 0x8b, 8, 0]));
        let mut out = Vec::new();
        assert!(read_ahead(truncated).read_to_end(&mut out).is_err());
    }
}
