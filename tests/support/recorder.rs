//! A recording backend: a raw TCP HTTP/1.1 server that keeps exactly what reached it.
//!
//! It parses requests strictly with `httparse` plus its own Content-Length / chunked framing
//! (one framing per request, `chunked` only as the last and only coding), records every
//! request (connection, index, method, target, headers in order, body) and every framing or
//! parse error with the bytes that caused it, and answers each request with a response that
//! names the request's index (`X-Seen: N`), so a desync between a proxy and this backend shows
//! as an error here, a request nobody asked for, or a response handed to the wrong client.
//!
//! Answers depend on the target, for the cache cases: paths containing `/cache/` are cacheable
//! for 60 s and reflect some request headers in their body; `setcookie`, `private`, `nostore`,
//! `varylang`, `varystar`, `nocc` and `err400` change the response (see [`respond`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest a backend waits for a peer's next bytes before dropping the connection.
const READ_LIMIT: Duration = Duration::from_secs(10);
/// Largest message this backend accepts (header or body).
const MAX_BYTES: usize = 1 << 20;

/// One request as the backend parsed it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Index over the whole backend (what `X-Seen` carries).
    pub idx: u64,
    /// Which connection it came on.
    pub conn: u64,
    /// The method.
    pub method: String,
    /// The request target, exactly (lossy UTF-8).
    pub target: String,
    /// The header fields in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body after de-chunking.
    pub body: Vec<u8>,
}

impl Recorded {
    /// Every value of the field `name` (case-insensitive), lossy text.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).to_string())
            .collect()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.all(name).into_iter().next()
    }
}

/// Bytes the backend could not take as HTTP: a desync sign when it is not a plain truncation.
#[derive(Debug, Clone)]
pub struct BackendError {
    /// The connection.
    pub conn: u64,
    /// What was wrong.
    pub what: String,
    /// The connection's bytes from the start of the offending message (at most 512).
    pub bytes: Vec<u8>,
    /// The message was cut by the end of the connection (the proxy gave up on it): benign.
    pub truncated: bool,
}

#[derive(Default)]
struct State {
    next_idx: AtomicU64,
    next_conn: AtomicU64,
    seen: Mutex<Vec<Recorded>>,
    errors: Mutex<Vec<BackendError>>,
}

/// The recording backend; stops when dropped.
pub struct Recorder {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Recorder {
    /// Listen on a free loopback port.
    pub async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind recorder");
        let addr = listener.local_addr().expect("recorder addr").to_string();
        let state = Arc::new(State::default());
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let conn = st.next_conn.fetch_add(1, Ordering::Relaxed);
                conns.spawn(serve(conn, stream, st.clone()));
            }
        });
        Recorder { addr, state, task }
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Recorded> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Every error so far.
    pub fn errors(&self) -> Vec<BackendError> {
        self.state.errors.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connection's bytes with a read position; reads more from the socket on demand.
struct Conn<S> {
    s: S,
    buf: Vec<u8>,
    eof: bool,
}

impl<S: AsyncRead + Unpin> Conn<S> {
    /// Read once more; false at the end of the connection or after the time limit.
    async fn more(&mut self) -> bool {
        if self.eof || self.buf.len() > MAX_BYTES {
            return false;
        }
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(READ_LIMIT, self.s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => {
                self.eof = true;
                false
            }
        }
    }

    /// The next line (without its CRLF) starting at `at`; `None` when the connection ends.
    /// Errors on a bare LF.
    async fn line(&mut self, at: usize) -> Result<Option<(Vec<u8>, usize)>, String> {
        loop {
            if let Some(i) = self.buf[at..].iter().position(|&b| b == b'\n') {
                let end = at + i;
                if end == at || self.buf[end - 1] != b'\r' {
                    return Err("bare LF in chunked framing".into());
                }
                return Ok(Some((self.buf[at..end - 1].to_vec(), end + 1)));
            }
            if !self.more().await {
                return Ok(None);
            }
        }
    }

    async fn need(&mut self, end: usize) -> bool {
        while self.buf.len() < end {
            if !self.more().await {
                return false;
            }
        }
        true
    }
}

enum Step {
    Done(Vec<u8>, usize),
    Truncated(String),
    Bad(String),
}

async fn serve(conn: u64, stream: TcpStream, st: Arc<State>) {
    let (r, mut w) = stream.into_split();
    let mut c = Conn {
        s: r,
        buf: Vec::new(),
        eof: false,
    };
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&c.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if c.more().await {
                    continue;
                }
                if !c.buf.is_empty() {
                    error(
                        &st,
                        conn,
                        "connection ended inside a request header",
                        &c.buf,
                        true,
                    );
                }
                return;
            }
            Err(e) => {
                error(
                    &st,
                    conn,
                    &format!("unparsable request: {e}"),
                    &c.buf,
                    false,
                );
                let _ = w.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                return;
            }
        };
        let method = req.method.unwrap_or_default().to_string();
        let target = req.path.unwrap_or_default().to_string();
        let fields: Vec<(String, Vec<u8>)> = req
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        let rec = Recorded {
            idx: 0,
            conn,
            method,
            target,
            headers: fields,
            body: Vec::new(),
        };
        let expect = rec
            .get("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
        if expect && w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
            return;
        }
        let step = match framing(&rec) {
            Err(what) => Step::Bad(what),
            Ok(None) => Step::Done(Vec::new(), head_len),
            Ok(Some(Framing::Length(n))) => {
                if c.need(head_len + n).await {
                    Step::Done(c.buf[head_len..head_len + n].to_vec(), head_len + n)
                } else {
                    Step::Truncated("connection ended inside a Content-Length body".into())
                }
            }
            Ok(Some(Framing::Chunked)) => chunked(&mut c, head_len).await,
        };
        match step {
            Step::Done(body, used) => {
                let mut rec = rec;
                rec.body = body;
                rec.idx = st.next_idx.fetch_add(1, Ordering::Relaxed);
                let resp = respond(&rec);
                st.seen.lock().unwrap().push(rec);
                c.buf.drain(..used);
                if w.write_all(&resp).await.is_err() {
                    return;
                }
            }
            Step::Truncated(what) => {
                error(&st, conn, &what, &c.buf, true);
                return;
            }
            Step::Bad(what) => {
                error(&st, conn, &what, &c.buf, false);
                let _ = w.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                return;
            }
        }
    }
}

fn error(st: &State, conn: u64, what: &str, bytes: &[u8], truncated: bool) {
    st.errors.lock().unwrap().push(BackendError {
        conn,
        what: what.to_string(),
        bytes: bytes[..bytes.len().min(512)].to_vec(),
        truncated,
    });
}

enum Framing {
    Length(usize),
    Chunked,
}

/// The body framing of a request, strictly: one of Content-Length (one value, digits only)
/// or `Transfer-Encoding: chunked`, never both.
fn framing(r: &Recorded) -> Result<Option<Framing>, String> {
    let te = r.all("transfer-encoding");
    let cl = r.all("content-length");
    if !te.is_empty() && !cl.is_empty() {
        return Err("Transfer-Encoding together with Content-Length".into());
    }
    if !te.is_empty() {
        if te.len() != 1 || te[0] != "chunked" {
            return Err(format!(
                "Transfer-Encoding other than one `chunked`: {te:?}"
            ));
        }
        return Ok(Some(Framing::Chunked));
    }
    match cl.as_slice() {
        [] => Ok(None),
        [one] if !one.is_empty() && one.bytes().all(|b| b.is_ascii_digit()) && one.len() < 10 => {
            Ok(Some(Framing::Length(one.parse().unwrap_or(0))))
        }
        _ => Err(format!("bad Content-Length {cl:?}")),
    }
}

async fn chunked<S: AsyncRead + Unpin>(c: &mut Conn<S>, start: usize) -> Step {
    let mut at = start;
    let mut body = Vec::new();
    loop {
        let (line, next) = match c.line(at).await {
            Ok(Some(l)) => l,
            Ok(None) => return Step::Truncated("connection ended inside a chunked body".into()),
            Err(e) => return Step::Bad(e),
        };
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size_text)
            .ok()
            .filter(|s| !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| usize::from_str_radix(s, 16).ok());
        let Some(size) = size else {
            return Step::Bad(format!(
                "bad chunk size line {:?}",
                String::from_utf8_lossy(&line)
            ));
        };
        at = next;
        if size == 0 {
            // Trailer fields until the empty line.
            loop {
                match c.line(at).await {
                    Ok(Some((l, next))) => {
                        at = next;
                        if l.is_empty() {
                            return Step::Done(body, at);
                        }
                        if !l.contains(&b':') || l[0] == b' ' || l[0] == b'\t' {
                            return Step::Bad("bad trailer field".into());
                        }
                    }
                    Ok(None) => return Step::Truncated("connection ended inside trailers".into()),
                    Err(e) => return Step::Bad(e),
                }
            }
        }
        if body.len() + size > MAX_BYTES {
            return Step::Bad("chunked body too large".into());
        }
        if !c.need(at + size + 2).await {
            return Step::Truncated("connection ended inside a chunk".into());
        }
        body.extend_from_slice(&c.buf[at..at + size]);
        if &c.buf[at + size..at + size + 2] != b"\r\n" {
            return Step::Bad("chunk data not followed by CRLF".into());
        }
        at += size + 2;
    }
}

/// The response to `r`: `seen N METHOD TARGET`, plus for `/cache/` targets the reflected
/// headers and the caching headers the target asks for.
fn respond(r: &Recorded) -> Vec<u8> {
    let t = r.target.as_str();
    let mut status = "200 OK";
    let mut extra = String::new();
    let mut body = format!("seen {} {} {}\n", r.idx, r.method, t);
    if t.contains("/cache/") {
        for h in [
            "x-forwarded-host",
            "x-forwarded-for",
            "x-real-ip",
            "x-forwarded-proto",
            "x-host",
            "x-forwarded-scheme",
            "x-original-url",
            "authorization",
            "cookie",
            "accept-language",
        ] {
            if let Some(v) = r.get(h) {
                body.push_str(&format!("{h}={v}\n"));
            }
        }
        let cc = if t.contains("nostore") {
            "no-store"
        } else if t.contains("private") {
            "private, max-age=60"
        } else {
            "max-age=60"
        };
        if !t.contains("nocc") {
            extra.push_str(&format!("Cache-Control: {cc}\r\n"));
        }
        if t.contains("setcookie") {
            extra.push_str(&format!("Set-Cookie: sid=secret-{}; Path=/\r\n", r.idx));
        }
        if t.contains("varylang") {
            extra.push_str("Vary: Accept-Language\r\n");
        }
        if t.contains("varystar") {
            extra.push_str("Vary: *\r\n");
        }
        if t.contains("err400") && r.get("x-metachar").is_some() {
            status = "400 Bad Request";
        }
    }
    let len = body.len();
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\nX-Seen: {}\r\n{extra}\r\n",
        r.idx
    )
    .into_bytes();
    if r.method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}
