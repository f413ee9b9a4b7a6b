//! A raw HTTP/2 client for abuse tests: writes frames byte by byte (h2c with prior knowledge)
//! and records what the server sent back (GOAWAY and its code, RST_STREAM codes, responses,
//! PING and SETTINGS acknowledgements, when the connection closed).
//!
//! A frame is a 9-byte header (24-bit length, type, flags, 31-bit stream id) and its payload.
//! Header blocks use HPACK literal fields without indexing and without Huffman coding, which
//! every decoder accepts and which keeps the encoder a dozen lines.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

/// Frame types.
pub const DATA: u8 = 0x0;
/// HEADERS.
pub const HEADERS: u8 = 0x1;
/// RST_STREAM.
pub const RST_STREAM: u8 = 0x3;
/// SETTINGS.
pub const SETTINGS: u8 = 0x4;
/// PING.
pub const PING: u8 = 0x6;
/// GOAWAY.
pub const GOAWAY: u8 = 0x7;
/// WINDOW_UPDATE.
pub const WINDOW_UPDATE: u8 = 0x8;
/// CONTINUATION.
pub const CONTINUATION: u8 = 0x9;
/// Flags.
pub const END_STREAM: u8 = 0x1;
/// END_HEADERS.
pub const END_HEADERS: u8 = 0x4;
/// ACK (SETTINGS, PING).
pub const ACK: u8 = 0x1;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The name of an HTTP/2 error code.
pub fn code_name(code: u32) -> String {
    let names = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    names
        .get(code as usize)
        .map_or_else(|| format!("code {code}"), |n| n.to_string())
}

/// One frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = Vec::with_capacity(9 + len);
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn int7(mut n: usize, out: &mut Vec<u8>) {
    if n < 127 {
        out.push(n as u8);
        return;
    }
    out.push(127);
    n -= 127;
    while n >= 128 {
        out.push((n % 128 + 128) as u8);
        n /= 128;
    }
    out.push(n as u8);
}

/// Append a literal header field without indexing, new name, no Huffman coding.
pub fn literal(name: &str, value: &[u8], out: &mut Vec<u8>) {
    out.push(0x00);
    int7(name.len(), out);
    out.extend_from_slice(name.as_bytes());
    int7(value.len(), out);
    out.extend_from_slice(value);
}

/// The header block of `GET path` for `host`.
pub fn request_block(host: &str, path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    literal(":method", b"GET", &mut b);
    literal(":scheme", b"http", &mut b);
    literal(":path", path.as_bytes(), &mut b);
    literal(":authority", host.as_bytes(), &mut b);
    b
}

/// What the server sent back.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// GOAWAY's error code, if one came.
    pub goaway: Option<u32>,
    /// RST_STREAM frames by error code.
    pub rst: BTreeMap<u32, usize>,
    /// HEADERS frames (responses).
    pub responses: usize,
    /// PING acknowledgements.
    pub ping_acks: usize,
    /// SETTINGS frames (not acknowledgements).
    pub settings: usize,
    /// SETTINGS acknowledgements.
    pub settings_acks: usize,
    /// When (since connecting) the server closed the connection or it broke.
    pub closed: Option<Duration>,
}

impl Seen {
    /// One line: `GOAWAY ENHANCE_YOUR_CALM, closed after 0.1 s; 20 RST CANCEL; 3 responses`.
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        match (self.goaway, self.closed) {
            (Some(c), Some(t)) => parts.push(format!(
                "GOAWAY {}, closed after {:.2} s",
                code_name(c),
                t.as_secs_f64()
            )),
            (Some(c), None) => parts.push(format!("GOAWAY {} (left open)", code_name(c))),
            (None, Some(t)) => parts.push(format!(
                "closed without GOAWAY after {:.2} s",
                t.as_secs_f64()
            )),
            (None, None) => parts.push("connection kept open".into()),
        }
        for (code, n) in &self.rst {
            parts.push(format!("{n} RST_STREAM {}", code_name(*code)));
        }
        if self.responses > 0 {
            parts.push(format!("{} responses", self.responses));
        }
        if self.ping_acks > 0 {
            parts.push(format!("{} PING acks", self.ping_acks));
        }
        if self.settings_acks > 1 {
            parts.push(format!("{} SETTINGS acks", self.settings_acks));
        }
        parts.join("; ")
    }

    /// Refused at once, or told to go away.
    pub fn ended(&self) -> bool {
        self.closed.is_some() || self.goaway.is_some()
    }
}

/// An h2c connection written frame by frame; a task reads and records the server's frames,
/// acknowledges its SETTINGS and keeps the connection's receive window open.
pub struct H2Raw {
    write: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    seen: Arc<Mutex<Seen>>,
    reader: tokio::task::JoinHandle<()>,
    /// Frames written so far.
    pub sent: usize,
    /// The write error that ended a flood, if one did.
    pub write_error: Option<String>,
}

impl H2Raw {
    /// Connect, send the preface and an empty SETTINGS, and wait for the server's SETTINGS.
    pub async fn connect(addr: &str) -> std::io::Result<H2Raw> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (mut read, mut write) = tcp.into_split();
        write.write_all(PREFACE).await?;
        write.write_all(&frame(SETTINGS, 0, 0, &[])).await?;
        let write = Arc::new(tokio::sync::Mutex::new(write));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (w, s) = (write.clone(), seen.clone());
        let start = Instant::now();
        let reader = tokio::spawn(async move {
            let mut head = [0u8; 9];
            let mut payload = Vec::new();
            loop {
                if read.read_exact(&mut head).await.is_err() {
                    break;
                }
                let len =
                    usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
                payload.resize(len, 0);
                if read.read_exact(&mut payload).await.is_err() {
                    break;
                }
                let reply = record(&s, head[3], head[4], &payload);
                if let Some(reply) = reply {
                    if w.lock().await.write_all(&reply).await.is_err() {
                        break;
                    }
                }
            }
            s.lock().expect("seen").closed = Some(start.elapsed());
        });
        let conn = H2Raw {
            write,
            seen,
            reader,
            sent: 0,
            write_error: None,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while conn.seen().settings == 0 && conn.seen().closed.is_none() {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("no SETTINGS from the server in 5 s"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(conn)
    }

    /// What the server sent so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().expect("seen").clone()
    }

    /// Write `frames` in batches of `batch`, for at most `limit`, until done or the
    /// connection ends; the count and any write error are kept in `sent` / `write_error`.
    pub async fn flood<I>(&mut self, frames: I, batch: usize, limit: Duration)
    where
        I: IntoIterator<Item = Vec<u8>>,
    {
        let deadline = Instant::now() + limit;
        let mut frames = frames.into_iter().peekable();
        while frames.peek().is_some() {
            let mut buf = Vec::new();
            let mut n = 0;
            for f in frames.by_ref().take(batch) {
                buf.extend_from_slice(&f);
                n += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let write = async { self.write.lock().await.write_all(&buf).await };
            match tokio::time::timeout(left, write).await {
                Ok(Ok(())) => self.sent += n,
                Ok(Err(e)) => {
                    self.write_error = Some(e.to_string());
                    return;
                }
                Err(_) => {
                    self.write_error = Some(format!("write blocked past {limit:?}"));
                    return;
                }
            }
            if self.seen().closed.is_some() || Instant::now() > deadline {
                return;
            }
        }
    }

    /// Wait until the server closed the connection, at most `limit`; what it sent.
    pub async fn settle(&self, limit: Duration) -> Seen {
        let deadline = Instant::now() + limit;
        while self.seen().closed.is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.seen()
    }
}

impl Drop for H2Raw {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Record one frame from the server; the frame to answer with, if any.
fn record(seen: &Mutex<Seen>, kind: u8, flags: u8, payload: &[u8]) -> Option<Vec<u8>> {
    let mut s = seen.lock().expect("seen");
    let word = |at: usize| {
        payload
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match kind {
        SETTINGS if flags & ACK != 0 => s.settings_acks += 1,
        SETTINGS => {
            s.settings += 1;
            return Some(frame(SETTINGS, ACK, 0, &[]));
        }
        GOAWAY => s.goaway = word(4),
        RST_STREAM => *s.rst.entry(word(0).unwrap_or(u32::MAX)).or_default() += 1,
        HEADERS => s.responses += 1,
        PING if flags & ACK != 0 => s.ping_acks += 1,
        PING => return Some(frame(PING, ACK, 0, payload)),
        DATA if !payload.is_empty() => {
            let n = payload.len() as u32;
            return Some(frame(WINDOW_UPDATE, 0, 0, &n.to_be_bytes()));
        }
        _ => {}
    }
    None
}
