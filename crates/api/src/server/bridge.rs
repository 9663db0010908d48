//! Between the async server and the blocking backend: a request body read
//! as `std::io::Read`, and `std::io::Write` into a response body.

use std::io;
use std::sync::mpsc;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;

/// A request body as a blocking reader (for `spawn_blocking` work).
#[derive(Debug)]
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl BodyReader {
    /// Starts pumping `body` into the reader.
    pub fn new(body: Body) -> BodyReader {
        let (tx, rx) = mpsc::sync_channel::<io::Result<Bytes>>(16);
        tokio::spawn(async move {
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                let item = chunk.map_err(io::Error::other);
                let failed = item.is_err();
                let tx = tx.clone();
                // The channel is bounded: send from a blocking thread so
                // that a slow reader slows the client, not the runtime.
                let sent = tokio::task::spawn_blocking(move || tx.send(item).is_ok())
                    .await
                    .unwrap_or(false);
                if !sent || failed {
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
            match self.rx.recv() {
                Ok(Ok(b)) => self.current = b,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
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
