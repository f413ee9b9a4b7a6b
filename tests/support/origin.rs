//! Real upstream servers on 127.0.0.1:0: an HTTP/1.1 origin that names itself and counts its
//! requests, and a WebSocket echo server.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What an origin saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query as received.
    pub uri: String,
    /// Headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// Body length received.
    pub body_len: usize,
}

struct State {
    name: String,
    count: AtomicUsize,
    health: AtomicU16,
    fail: AtomicU16,
    seen: Mutex<Vec<Seen>>,
}

/// An HTTP origin. Answers `NAME PATH` with 200 on every path, except:
/// `/health` (status set by [`Origin::set_health`], default 200, not counted),
/// `/slow?ms=N` (waits N ms first), `/status/N` (answers status N).
pub struct Origin {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Origin {
    /// Start an origin named `name` (HTTP/1.1, with upgrades).
    pub async fn start(name: &str) -> Origin {
        Self::start_with(name, false).await
    }

    /// Start an origin named `name` that speaks only HTTP/2 in clear text (prior knowledge).
    pub async fn start_h2c(name: &str) -> Origin {
        Self::start_with(name, true).await
    }

    /// Start an origin named `name` on `addr` (e.g. again on the address of one stopped).
    pub async fn start_at(name: &str, addr: SocketAddr) -> Origin {
        Self::start_on(name, false, addr).await
    }

    async fn start_with(name: &str, h2c: bool) -> Origin {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        Self::start_on(name, h2c, any).await
    }

    async fn start_on(name: &str, h2c: bool, addr: SocketAddr) -> Origin {
        let listener = TcpListener::bind(addr).await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let state = Arc::new(State {
            name: name.to_string(),
            count: AtomicUsize::new(0),
            health: AtomicU16::new(200),
            fail: AtomicU16::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            // Connections live in this set: stopping the origin (aborting this task) drops
            // the set, which closes every open connection too.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                while conns.try_join_next().is_some() {}
                let st = st.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let io = TokioIo::new(stream);
                    if h2c {
                        let exec = hyper_util::rt::TokioExecutor::new();
                        let _ = hyper::server::conn::http2::Builder::new(exec)
                            .serve_connection(io, svc)
                            .await;
                    } else {
                        let _ = http1::Builder::new()
                            .serve_connection(io, svc)
                            .with_upgrades()
                            .await;
                    }
                });
            }
        });
        Origin { addr, state, task }
    }

    /// `127.0.0.1:PORT` as a string, for configs.
    pub fn addr_str(&self) -> String {
        self.addr.to_string()
    }

    /// Requests answered (health checks excluded).
    pub fn count(&self) -> usize {
        self.state.count.load(Ordering::SeqCst)
    }

    /// Status `/health` answers from now on.
    pub fn set_health(&self, status: u16) {
        self.state.health.store(status, Ordering::SeqCst);
    }

    /// Status every `/c/` request answers from now on (0: back to normal).
    pub fn set_fail(&self, status: u16) {
        self.state.fail.store(status, Ordering::SeqCst);
    }

    /// The requests seen so far (health checks excluded).
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen lock").clone()
    }

    /// Stop listening and close every open connection.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    st: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/health" {
        let status = st.health.load(Ordering::SeqCst);
        return Ok(Response::builder()
            .status(status)
            .body(Full::new(Bytes::from("health\n")))
            .expect("response"));
    }
    let method = req.method().to_string();
    let version = format!("{:?}", req.version());
    let uri = req.uri().to_string();
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let n = st.count.fetch_add(1, Ordering::SeqCst) + 1;
    st.seen.lock().expect("seen lock").push(Seen {
        method,
        uri: uri.clone(),
        headers: headers.clone(),
        body_len: body.len(),
    });
    if path == "/slow" {
        let ms = query
            .strip_prefix("ms=")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if path == "/body" {
        return Ok(body_response(&st.name, &query));
    }
    if path.starts_with("/c/") {
        return Ok(scripted(&st, n, &path, &query, &headers));
    }
    let mut status = 200;
    if let Some(code) = path.strip_prefix("/status/") {
        status = code.parse().unwrap_or(200);
    }
    Ok(Response::builder()
        .status(status)
        .header("x-origin", st.name.as_str())
        .header("x-origin-version", version)
        .header("set-by-origin", "yes")
        .body(Full::new(Bytes::from(format!("{} {}\n", st.name, uri))))
        .expect("response"))
}

/// `/c/...?k=v&...`: a response scripted by its query, for cache tests. `status=N`;
/// `h=Name:Value` (repeatable, `+` for a space) adds a header; `etag=E` adds `ETag: "E"` and
/// answers 304 to a matching `If-None-Match`; `size=N` makes the body N bytes of `x`, else
/// the body is `NAME n=COUNT PATH` plus the values of the request headers named by `echo=`.
/// While [`Origin::set_fail`] is set, every `/c/` request answers that status.
fn scripted(
    st: &State,
    n: usize,
    path: &str,
    query: &str,
    req: &BTreeMap<String, String>,
) -> Response<Full<Bytes>> {
    let fail = st.fail.load(Ordering::SeqCst);
    if fail != 0 {
        return Response::builder()
            .status(fail)
            .body(Full::new(Bytes::from("failing\n")))
            .expect("response");
    }
    let mut resp = Response::builder().header("x-origin", st.name.as_str());
    let mut status = 200;
    let mut body = format!("{} n={n} {path}", st.name);
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        let v = v.replace('+', " ");
        match k {
            "status" => status = v.parse().unwrap_or(200),
            "h" => {
                if let Some((name, value)) = v.split_once(':') {
                    resp = resp.header(name, value.trim());
                }
            }
            "etag" => {
                let tag = format!("\"{v}\"");
                if req.get("if-none-match") == Some(&tag) {
                    status = 304;
                }
                resp = resp.header("etag", tag);
            }
            "size" => body = "x".repeat(v.parse().unwrap_or(0)),
            "echo" => body.push_str(&format!(" {v}={}", req.get(v.as_str()).map_or("", |s| s))),
            _ => {}
        }
    }
    if status == 304 {
        return resp
            .status(304)
            .body(Full::new(Bytes::new()))
            .expect("response");
    }
    resp.status(status)
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

/// A WebSocket echo server.
pub struct WsOrigin {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl WsOrigin {
    /// Start the echo server.
    pub async fn start() -> WsOrigin {
        use futures_util::{SinkExt, StreamExt};
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind ws origin");
        let addr = listener.local_addr().expect("ws addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        WsOrigin { addr, task }
    }
}

impl Drop for WsOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The deterministic body `/body?kb=N` serves: JSON-like text, compressible.
pub fn test_body(kb: usize) -> Vec<u8> {
    let mut out = String::from("[");
    let mut i = 0;
    while out.len() < kb * 1024 {
        out.push_str(&format!(
            "{{\"id\":{i},\"name\":\"item {i}\",\"tags\":[\"a\",\"b\"]}},"
        ));
        i += 1;
    }
    out.truncate(kb * 1024 - 1);
    out.push(']');
    out.into_bytes()
}

/// `/body?kb=N&ct=TYPE&cc=CACHE_CONTROL&ce=ENCODING&status=N&bytes=N`: a body of N KiB (or
/// exactly `bytes` bytes) with the given headers, so tests can shape any response.
fn body_response(name: &str, query: &str) -> Response<Full<Bytes>> {
    let param = |k: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(key, _)| *key == k)
            .map(|(_, v)| {
                v.replace("%2F", "/")
                    .replace("%2f", "/")
                    .replace("%20", " ")
            })
    };
    let kb = param("kb").and_then(|v| v.parse().ok()).unwrap_or(100);
    let mut body = test_body(kb.max(1));
    if let Some(n) = param("bytes").and_then(|v| v.parse::<usize>().ok()) {
        body.truncate(n);
    }
    let mut b = Response::builder()
        .status(
            param("status")
                .and_then(|v| v.parse().ok())
                .unwrap_or(200u16),
        )
        .header("x-origin", name)
        .header(
            "content-type",
            param("ct").unwrap_or_else(|| "application/json".into()),
        );
    if let Some(cc) = param("cc") {
        b = b.header("cache-control", cc);
    }
    if let Some(ce) = param("ce") {
        b = b.header("content-encoding", ce);
    }
    if param("status").as_deref() == Some("206") {
        b = b.header("content-range", format!("bytes 0-{}/99999", body.len() - 1));
    }
    b.body(Full::new(Bytes::from(body))).expect("response")
}
