//! Hijacked connections (`attach`, `exec start`): the bytes relayed both
//! ways between the client's upgraded connection and the backend's unix
//! stream, with dockerd's detach keys and half-close.

use std::io;

use axum::body::Body;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use super::{AttachStream, Attached};

const BUF: usize = 32 * 1024;

/// The most client input kept while the container has not started yet;
/// past it the client is not read until it has.
const PENDING_INPUT_MAX: usize = 1 << 20;

/// Finds the detach key sequence in the client's input. Bytes that may
/// start the sequence are held back until it is clear whether they do,
/// as dockerd's escape proxy does; the sequence itself never reaches the
/// container.
#[derive(Debug)]
pub(crate) struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    /// A scanner for `keys` (empty: never detaches).
    pub(crate) fn new(keys: Vec<u8>) -> DetachScanner {
        DetachScanner { keys, matched: 0 }
    }

    /// Appends to `out` what of `input` goes to the container; `true` when
    /// the whole sequence has been seen (the rest of `input` is dropped).
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return false;
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
            } else {
                // Not the sequence after all: what was held goes through,
                // and this byte may start the sequence anew.
                out.extend_from_slice(&self.keys[..self.matched]);
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    self.matched = 0;
                    out.push(b);
                }
            }
            if self.matched == self.keys.len() {
                self.matched = 0;
                return true;
            }
        }
        false
    }

    /// At the end of the input: the bytes still held go through.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.keys[..self.matched]);
        self.matched = 0;
    }
}

/// A backend stream for tokio.
fn to_tokio(stream: std::os::unix::net::UnixStream) -> io::Result<tokio::net::UnixStream> {
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

/// Client input read while the container is not yet started.
#[derive(Debug, Default)]
struct EarlyInput {
    bytes: Vec<u8>,
    eof: bool,
}

/// How waiting for a pending stream ended.
enum Waited {
    /// The stream (`None`: the container ended first).
    Ready(Option<std::os::unix::net::UnixStream>),
    /// The client sent the detach keys.
    Detached,
    /// The client's connection failed.
    ClientGone,
}

async fn wait_ready<R: AsyncRead + Unpin>(
    mut rx: oneshot::Receiver<Option<std::os::unix::net::UnixStream>>,
    client: &mut R,
    scanner: &mut DetachScanner,
    early: &mut EarlyInput,
) -> Waited {
    let mut buf = vec![0u8; BUF];
    loop {
        let reading = !early.eof && early.bytes.len() < PENDING_INPUT_MAX;
        tokio::select! {
            r = &mut rx => return Waited::Ready(r.ok().flatten()),
            n = client.read(&mut buf), if reading => match n {
                Ok(0) => {
                    scanner.finish(&mut early.bytes);
                    early.eof = true;
                }
                Ok(n) => {
                    if scanner.feed(&buf[..n], &mut early.bytes) {
                        return Waited::Detached;
                    }
                }
                Err(_) => return Waited::ClientGone,
            },
        }
    }
}

/// Output: the container's stream to the client, then the client's write
/// side closed.
async fn pump_out<R, W>(mut from: R, mut to: W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
    }
    to.flush().await?;
    to.shutdown().await
}

/// How the client's input ended.
#[derive(Debug, PartialEq, Eq)]
enum InputEnd {
    /// The client closed its side (or it failed): the container's input
    /// was closed, output goes on.
    Eof,
    /// The detach keys.
    Detached,
}

/// Input: the client's bytes to the container, scanned for the detach
/// keys. When the container stops taking input, the client is still read
/// (and the bytes dropped) so that the detach keys keep working.
async fn pump_in<R, W>(mut from: R, mut to: W, mut scanner: DetachScanner) -> InputEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    let mut out = Vec::with_capacity(BUF);
    let mut sink_ok = true;
    loop {
        out.clear();
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                scanner.finish(&mut out);
                if sink_ok && !out.is_empty() {
                    let _ = to.write_all(&out).await;
                }
                let _ = to.shutdown().await;
                return InputEnd::Eof;
            }
            Ok(n) => {
                let detached = scanner.feed(&buf[..n], &mut out);
                if sink_ok && !out.is_empty() && to.write_all(&out).await.is_err() {
                    sink_ok = false;
                }
                if detached {
                    return InputEnd::Detached;
                }
            }
        }
    }
}

async fn write_flush<W: AsyncWrite + Unpin>(to: &mut W, bytes: &[u8]) -> io::Result<()> {
    to.write_all(bytes).await?;
    to.flush().await
}

/// Relays an attach over the client's upgraded connection until the
/// container's side ends (the client's connection is then flushed and
/// closed), the client sends the detach keys (the connection is closed,
/// the container goes on) or the client goes away. When the client's
/// input ends, the container's input is closed and its output still
/// relayed.
pub(crate) async fn relay<C>(client: C, attached: Attached)
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Attached {
        stream,
        detach_keys,
        prefix,
        ..
    } = attached;
    let (mut client_rd, mut client_wr) = tokio::io::split(client);
    let mut scanner = DetachScanner::new(detach_keys);
    if !prefix.is_empty() && write_flush(&mut client_wr, &prefix).await.is_err() {
        return;
    }
    let mut early = EarlyInput::default();
    let ready = match stream {
        AttachStream::Ready(s) => Some(s),
        AttachStream::Closed => None,
        AttachStream::Pending(rx) => {
            match wait_ready(rx, &mut client_rd, &mut scanner, &mut early).await {
                Waited::Ready(s) => s,
                Waited::Detached | Waited::ClientGone => return,
            }
        }
    };
    let backend = match ready.map(to_tokio) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            tracing::warn!("attach: the container's stream: {e}");
            let _ = client_wr.shutdown().await;
            return;
        }
        None => {
            let _ = client_wr.shutdown().await;
            return;
        }
    };
    let (back_rd, mut back_wr) = backend.into_split();
    if !early.bytes.is_empty() {
        let _ = back_wr.write_all(&early.bytes).await;
    }
    if early.eof {
        let _ = back_wr.shutdown().await;
    }
    let input_done = early.eof;
    let out = pump_out(back_rd, client_wr);
    let input = async move {
        if input_done {
            // Keep the write half (dropping it is a no-op now) and never end.
            let _keep = back_wr;
            std::future::pending::<InputEnd>().await
        } else {
            pump_in(client_rd, back_wr, scanner).await
        }
    };
    tokio::pin!(out, input);
    let mut input_ended = false;
    loop {
        tokio::select! {
            r = &mut out => {
                if let Err(e) = r {
                    tracing::debug!("attach: the client went away: {e}");
                }
                return;
            }
            end = &mut input, if !input_ended => match end {
                InputEnd::Detached => return,
                InputEnd::Eof => input_ended = true,
            },
        }
    }
}

/// For a client that did not ask to upgrade: the container's output as a
/// streaming body (its input cannot be sent).
pub(crate) fn output_body(attached: Attached) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::spawn(async move {
        let Attached { stream, prefix, .. } = attached;
        if !prefix.is_empty() && tx.send(Ok(Bytes::from(prefix))).await.is_err() {
            return;
        }
        let ready = match stream {
            AttachStream::Ready(s) => Some(s),
            AttachStream::Closed => None,
            AttachStream::Pending(rx) => tokio::select! {
                r = rx => r.ok().flatten(),
                _ = tx.closed() => None,
            },
        };
        let Some(Ok(mut s)) = ready.map(to_tokio) else {
            return;
        };
        let mut buf = vec![0u8; BUF];
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                r = s.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(Ok(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                            return;
                        }
                    }
                },
            }
        }
    });
    Body::from_stream(ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(keys: &[u8], chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut s = DetachScanner::new(keys.to_vec());
        let mut out = Vec::new();
        for c in chunks {
            if s.feed(c, &mut out) {
                return (out, true);
            }
        }
        s.finish(&mut out);
        (out, false)
    }

    #[test]
    fn detach_keys_are_found_across_reads_and_not_forwarded() {
        assert_eq!(
            scan(&[16, 17], &[b"ab\x10", b"\x11zz"]),
            (b"ab".to_vec(), true)
        );
    }

    #[test]
    fn a_broken_sequence_is_forwarded_whole() {
        assert_eq!(
            scan(&[16, 17], &[b"a\x10b", b"\x10"]),
            (b"a\x10b\x10".to_vec(), false)
        );
    }

    #[test]
    fn a_repeated_first_key_still_detaches() {
        assert_eq!(
            scan(&[16, 17], &[b"\x10\x10\x11"]),
            (b"\x10".to_vec(), true)
        );
    }

    #[test]
    fn no_keys_forward_everything() {
        assert_eq!(
            scan(&[], &[b"\x10\x11", b"x"]),
            (b"\x10\x11x".to_vec(), false)
        );
    }

    #[test]
    fn a_single_key_detaches() {
        assert_eq!(scan(&[3], &[b"ab\x03c"]), (b"ab".to_vec(), true));
    }
}
