//! The HTTP/1.x request header guard: a deadline for the whole request header, and limits on
//! its size, enforced on the connection's bytes before pingora parses them.
//!
//! pingora's header read timeout is per read, so a client dripping a byte now and then holds
//! a connection forever (slowloris), and its parser accepts headers up to 1 MiB and answers
//! a larger one with 400. [`Guarded`] wraps the client connection and holds each request
//! header back until the empty line that ends it has arrived, then hands it to pingora whole:
//!
//! - the header must be complete within `[server] header_timeout`, counted from the
//!   connection's start for its first request and from the first byte of the next ones (the
//!   idle time between keep-alive requests is pingora's keep-alive timeout); otherwise the
//!   client gets `408 Request Timeout`, or the connection is simply closed when not a byte of
//!   the request arrived (a browser's unused preconnection), as nginx does;
//! - a request target longer than `max_uri_bytes` gets `414 URI Too Long`, a header larger
//!   than `max_header_bytes` (request line included) `431 Request Header Fields Too Large`;
//!   nothing of a refused header reaches pingora.
//!
//! A refusal is written straight to the connection with `Connection: close` (its body is the
//! top-level `error_pages` entry when there is one), the write side is shut, what the client
//! still sends is read and dropped for a moment (so that closing does not reset the
//! connection before the client read the answer), and pingora's read then fails; having read
//! nothing of that request, pingora closes the connection quietly. The body is not watched:
//! `body_timeout` (per read) covers it. pingora's own wait for a request (60 s per read) runs
//! around the guard's, which is why `header_timeout` is at most 60 s.
//!
//! `Front` re-arms the guard before each request of a keep-alive connection
//! ([`Guarded::rearm_handle`]). HTTP/2 is not guarded here: its headers arrive in frames.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use vigie_config::Server;

use crate::snapshot::SnapshotHandle;

pub use scan::{HeaderScan, Scan, MAX_FIELDS};

mod scan;
mod stream;

/// How long a refused client may go on sending before the connection is closed.
const LINGER: Duration = Duration::from_secs(2);
/// How much a refused client may send meanwhile.
const LINGER_BYTES: usize = 256 * 1024;
/// The HTTP/2 connection preface (h2c with prior knowledge).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The limits a guard enforces, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deadline for a whole request header.
    pub header_timeout: Duration,
    /// Largest header, request line included.
    pub max_header_bytes: usize,
    /// Longest request target.
    pub max_uri_bytes: usize,
}

impl Limits {
    /// The limits of a validated `[server]`.
    pub fn of(server: &Server) -> Limits {
        Limits {
            header_timeout: server.header_timeout,
            max_header_bytes: server.max_header_bytes,
            max_uri_bytes: server.max_uri_bytes,
        }
    }
}

enum Phase {
    /// Reading a request header.
    Header(HeaderScan),
    /// Past the header (body, response, or a connection that is not HTTP/1): not watched.
    Through,
    /// Writing a refusal.
    Refusing { response: Bytes, written: usize },
    /// Refusal sent: dropping what the client still sends, until EOF or the linger ends.
    Lingering { drained: usize },
    /// Done: every read fails with this kind.
    Closed(io::ErrorKind),
}

/// A client connection watched by the header guard (see the module docs).
pub struct Guarded {
    inner: Stream,
    phase: Phase,
    limits: Limits,
    snapshots: SnapshotHandle,
    /// Bytes read but not handed over yet: the request header being held back, or what the
    /// h2c preface check read ahead. Served before the connection's.
    pending: BytesMut,
    /// How much of `pending` the header scan has seen.
    scanned: usize,
    deadline: Option<Instant>,
    sleep: Pin<Box<Sleep>>,
    rearm: Arc<AtomicBool>,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Guarded {
    /// Guard a new connection: the deadline of its first request header starts now.
    pub fn new(inner: Stream, snapshots: SnapshotHandle) -> Guarded {
        let limits = Limits::of(&snapshots.load().config.server);
        let deadline = Instant::now() + limits.header_timeout;
        Guarded {
            inner,
            phase: Phase::Header(HeaderScan::new(
                limits.max_header_bytes,
                limits.max_uri_bytes,
            )),
            limits,
            snapshots,
            pending: BytesMut::new(),
            scanned: 0,
            deadline: Some(deadline),
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            rearm: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Set this to make the next read start watching a new request header, with the limits
    /// of the snapshot current then; its deadline starts with its first byte.
    pub fn rearm_handle(&self) -> Arc<AtomicBool> {
        self.rearm.clone()
    }

    /// The next request arrived pipelined, in bytes pingora already holds: let it through
    /// unwatched (the guard cannot tell where it starts); the one after is watched again.
    pub fn pass_pipelined(&mut self) {
        self.take_rearm();
        self.disarm();
    }

    /// Stop watching (an HTTP/2 connection).
    pub fn disarm(&mut self) {
        self.phase = Phase::Through;
        self.deadline = None;
    }

    /// Whether the connection starts with the HTTP/2 preface (h2c with prior knowledge).
    /// Reads ahead only as far as needed to tell, within the header deadline, so that a short
    /// HTTP/1.0 request is not left waiting for 24 bytes; what it read is served first.
    pub async fn starts_with_h2_preface(&mut self) -> bool {
        loop {
            if self.pending.len() >= H2_PREFACE.len() {
                return self.pending.starts_with(H2_PREFACE);
            }
            if !H2_PREFACE.starts_with(&self.pending) {
                return false;
            }
            if !self.read_ahead().await {
                return false;
            }
        }
    }

    /// Wait, at most `idle`, for the first bytes of the next request on a keep-alive
    /// connection, and start its header deadline with them. `false`: the client closed, the
    /// wait timed out, or the server is shutting down (the connection is then closed quietly,
    /// as pingora closes an idle keep-alive connection).
    pub async fn wait_for_request(&mut self, idle: Duration, shutdown: &ShutdownWatch) -> bool {
        self.take_rearm();
        if self.pending.is_empty() {
            let mut shutdown = shutdown.clone();
            let read = tokio::time::timeout(idle, std::future::poll_fn(|cx| self.poll_first(cx)));
            let got = tokio::select! {
                r = read => matches!(r, Ok(Ok(n)) if n > 0),
                _ = shutdown.changed() => false,
            };
            if !got {
                return false;
            }
        }
        self.arm();
        true
    }

    /// Read the first bytes of a request into `pending`. The read goes to a buffer on the
    /// stack, which exists only while the connection is polled: an idle connection holds no
    /// read buffer at all, and what arrives (a whole common header, in one read) is copied
    /// once.
    fn poll_first(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut rb = ReadBuf::uninit(&mut buf);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
        self.pending.extend_from_slice(rb.filled());
        Poll::Ready(Ok(rb.filled().len()))
    }

    /// Read more into `pending`, within the deadline; `false` on EOF, error or timeout.
    async fn read_ahead(&mut self) -> bool {
        let read = self.inner.read_buf(&mut self.pending);
        let n = match self.deadline {
            Some(d) => tokio::time::timeout_at(d, read).await.ok(),
            None => Some(read.await),
        };
        matches!(n, Some(Ok(n)) if n > 0)
    }

    fn take_rearm(&mut self) {
        if self.rearm.swap(false, Ordering::AcqRel) {
            self.limits = Limits::of(&self.snapshots.load().config.server);
            let l = &self.limits;
            self.phase = Phase::Header(HeaderScan::new(l.max_header_bytes, l.max_uri_bytes));
            self.deadline = None;
            self.scanned = 0;
        }
    }

    fn arm(&mut self) {
        let deadline = Instant::now() + self.limits.header_timeout;
        self.deadline = Some(deadline);
        self.sleep.as_mut().reset(deadline);
    }

    /// Whether the deadline has passed; registers for a wake-up at it otherwise.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        match self.deadline {
            None => false,
            Some(d) if Instant::now() >= d => true,
            Some(_) => self.sleep.as_mut().poll(cx).is_ready(),
        }
    }

    fn refuse(&mut self, status: u16) {
        tracing::debug!(status, "request header refused");
        self.phase = Phase::Refusing {
            response: refusal(&self.snapshots, status),
            written: 0,
        };
    }

    /// Serve `pending` first, then the connection.
    fn read_some(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() {
            if self.pending.len() <= buf.remaining() {
                buf.put_slice(&self.pending);
                // Drop the allocation: an idle connection keeps nothing of it.
                self.pending = BytesMut::new();
            } else {
                let n = buf.remaining();
                buf.put_slice(&self.pending.split_to(n));
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }

    /// One read while a header is expected: the header is held back until it is complete,
    /// then handed over whole. `None`: the phase changed, go again.
    fn poll_header(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Option<Poll<io::Result<()>>> {
        loop {
            let Phase::Header(scan) = &mut self.phase else {
                return None;
            };
            if self.scanned < self.pending.len() {
                let status = match scan.feed(&self.pending[self.scanned..]) {
                    Scan::More => None,
                    Scan::Done => Some(None),
                    Scan::UriTooLong => Some(Some(414)),
                    Scan::TooLarge => Some(Some(431)),
                };
                self.scanned = self.pending.len();
                match status {
                    None => {}
                    Some(None) => {
                        self.phase = Phase::Through;
                        self.deadline = None;
                        return Some(self.read_some(cx, buf));
                    }
                    Some(Some(status)) => {
                        self.refuse(status);
                        return None;
                    }
                }
            }
            if self.poll_deadline(cx) {
                if self.pending.is_empty() {
                    tracing::debug!("connection closed: no request within header_timeout");
                    self.phase = Phase::Closed(io::ErrorKind::TimedOut);
                } else {
                    self.refuse(408);
                }
                return None;
            }
            // Read straight into the caller's buffer: a header that arrives whole (the
            // common case) is handed over as it is, with no copy. An incomplete one is moved
            // to `pending` and taken back out of the caller's buffer.
            if buf.remaining() == 0 {
                return Some(Poll::Ready(Ok(())));
            }
            let before = buf.filled().len();
            match Pin::new(&mut self.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) if buf.filled().len() == before => {
                    // The client left before completing a header: pingora sees an end of
                    // stream with nothing read, and closes quietly.
                    self.phase = Phase::Through;
                    self.pending.clear();
                    return Some(Poll::Ready(Ok(())));
                }
                Poll::Ready(Ok(())) => {}
                other => return Some(other),
            }
            if self.pending.is_empty() {
                let Phase::Header(scan) = &mut self.phase else {
                    return None;
                };
                match scan.feed(&buf.filled()[before..]) {
                    Scan::Done => {
                        self.phase = Phase::Through;
                        self.deadline = None;
                        return Some(Poll::Ready(Ok(())));
                    }
                    Scan::More => {}
                    Scan::UriTooLong => {
                        buf.set_filled(before);
                        self.refuse(414);
                        return None;
                    }
                    Scan::TooLarge => {
                        buf.set_filled(before);
                        self.refuse(431);
                        return None;
                    }
                }
                self.pending.extend_from_slice(&buf.filled()[before..]);
                self.scanned = self.pending.len();
            } else {
                self.pending.extend_from_slice(&buf.filled()[before..]);
            }
            buf.set_filled(before);
            if self.deadline.is_none() {
                self.arm();
            }
        }
    }

    /// Write the refusal, flush it and shut the write side; then linger.
    fn poll_refusing(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let Phase::Refusing { response, written } = &mut self.phase else {
                return Poll::Ready(());
            };
            if *written == response.len() {
                break;
            }
            match ready!(Pin::new(&mut self.inner).poll_write(cx, &response[*written..])) {
                Ok(n) if n > 0 => *written += n,
                _ => {
                    self.phase = Phase::Closed(io::ErrorKind::BrokenPipe);
                    return Poll::Ready(());
                }
            }
        }
        if ready!(Pin::new(&mut self.inner).poll_flush(cx)).is_err() {
            self.phase = Phase::Closed(io::ErrorKind::BrokenPipe);
            return Poll::Ready(());
        }
        // Half-close so the client sees the end of the answer; a failure here changes nothing.
        let _ = ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
        let until = Instant::now() + LINGER;
        self.deadline = Some(until);
        self.sleep.as_mut().reset(until);
        self.phase = Phase::Lingering { drained: 0 };
        Poll::Ready(())
    }

    /// Drop what the client still sends until EOF, the byte budget or the linger's end.
    fn poll_lingering(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [0u8; 8192];
        loop {
            let mut rb = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                    let Phase::Lingering { drained } = &mut self.phase else {
                        return Poll::Ready(());
                    };
                    *drained += rb.filled().len();
                    if *drained <= LINGER_BYTES {
                        continue;
                    }
                }
                Poll::Pending if !self.poll_deadline(cx) => return Poll::Pending,
                _ => {}
            }
            self.phase = Phase::Closed(io::ErrorKind::ConnectionAborted);
            return Poll::Ready(());
        }
    }
}

/// The whole response refusing a request header with `status`.
fn refusal(snapshots: &SnapshotHandle, status: u16) -> Bytes {
    let snap = snapshots.load();
    let (content_type, body) = match snap.error_pages.get(status) {
        Some(page) => (page.content_type.clone(), page.body.clone()),
        None => {
            let detail = match status {
                408 => "the request header was not received in time",
                414 => "the request target is too long",
                _ => "the request header is too large",
            };
            let body = crate::filters::error_body(status, detail);
            (crate::filters::TEXT_PLAIN.to_owned(), body)
        }
    };
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    let mut out = BytesMut::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&body);
    out.freeze()
}
