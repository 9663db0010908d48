//! Between the async server and the blocking backend: a request body read
//! as `std::io::Read`, and `std::io::Write` into a response body.

use std::io;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;

/// A request body as a blocking reader (for `spawn_blocking` work).
#[derive(Debug)]
pub struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl BodyReader {
    /// Starts pumping `body` into the reader. The channel is bounded: a
    /// slow reader slows the client down.
    ///
    /// What the reader leaves unread (it stopped at a tar's end, or the
    /// request failed) is still read from the client and dropped: a
    /// connection closed under a client still writing its body makes the
    /// client fail with a broken pipe instead of reading the answer.
    pub fn new(body: Body) -> BodyReader {
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(64);
        tokio::spawn(async move {
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                let item = chunk.map_err(io::Error::other);
                let failed = item.is_err();
                if failed {
                    let _ = tx.send(item).await;
                    return;
                }
                if tx.send(item).await.is_err() {
                    // The reader is gone: drain.
                    while let Some(Ok(_)) = stream.next().await {}
                    return;
                }
            }
        });
        BodyReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            // Called on a blocking thread, never on the runtime's own.
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// A blocking writer whose bytes become a response body.
#[derive(Debug)]
pub struct BodyWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl BodyWriter {
    /// A writer and the receiving end for the response.
    pub fn new() -> (BodyWriter, tokio::sync::mpsc::Receiver<Bytes>) {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        (
            BodyWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            },
            rx,
        )
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl io::Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}
