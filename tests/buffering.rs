//! Request buffering (`request_buffer`): a small body is read in full before vigie contacts
//! the origin, a large one streams; both arrive byte-exact, over HTTP/1.1 and HTTP/2.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::{client, wait_until, Vigie};

/// One request as the origin saw it.
#[derive(Debug, Clone)]
struct Arrival {
    /// When its header arrived (hyper calls the service once the header is parsed).
    header_at: Instant,
    /// The body, when it was read to its end.
    body: Option<Vec<u8>>,
}

#[derive(Default)]
struct Record {
    connections: Vec<Instant>,
    requests: Vec<Arrival>,
}

/// An HTTP/1.1 origin that records when each connection and request arrives and the whole
/// body of each request, and answers `200` with the body length.
struct RecordingOrigin {
    addr: SocketAddr,
    record: Arc<Mutex<Record>>,
    task: JoinHandle<()>,
}

impl RecordingOrigin {
    async fn start() -> RecordingOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let record = Arc::new(Mutex::new(Record::default()));
        let rec = record.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                rec.lock().unwrap().connections.push(Instant::now());
                while conns.try_join_next().is_some() {}
                let rec = rec.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(rec.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        RecordingOrigin { addr, record, task }
    }

    fn requests(&self) -> Vec<Arrival> {
        self.record.lock().unwrap().requests.clone()
    }

    fn connections(&self) -> usize {
        self.record.lock().unwrap().connections.len()
    }
}

impl Drop for RecordingOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    rec: Arc<Mutex<Record>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let index = {
        let mut r = rec.lock().unwrap();
        r.requests.push(Arrival {
            header_at: Instant::now(),
            body: None,
        });
        r.requests.len() - 1
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return Ok(Response::new(Full::new(Bytes::from("broken body")))),
    };
    let len = body.len();
    rec.lock().unwrap().requests[index].body = Some(body);
    Ok(Response::new(Full::new(Bytes::from(format!("{len}")))))
}

fn config(origin: SocketAddr, server_extra: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
{server_extra}

[upstreams.app]
servers = ["{origin}"]

[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "app"
  [[sites.routes]]
  path = "/small/"
  upstream = "app"
  max_body = "1KiB"
  [[sites.routes]]
  path = "/stream/"
  upstream = "app"
  request_buffer = 0
"#
    )
}

/// Bytes that differ from one position to the next, so a lost or moved piece shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A POST header for `path` with a `Content-Length` of `len`.
fn post_header(path: &str, len: usize) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: example.com\r\nContent-Length: {len}\r\n\r\n")
}

/// The status of the response on `s` (read to its end: vigie closes or the response is short).
async fn status_of(s: &mut TcpStream) -> u16 {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("response within 10s")
            .expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// 10 bytes every 200 ms: the origin sees nothing (no connection, no request) until the
/// last byte was sent, then the whole body at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_small_body_reaches_the_origin_only_when_complete() {
    let o = RecordingOrigin::start().await;
    let v = Vigie::start(&config(o.addr, "")).await;
    let body = pattern(50);
    let mut s = TcpStream::connect(&v.http).await.unwrap();
    s.write_all(post_header("/form", body.len()).as_bytes())
        .await
        .unwrap();
    // The time each piece starts to be written: the last one is the earliest the origin may
    // see the request (it may see it before this task runs again after the write).
    let mut last_sent = Instant::now();
    for piece in body.chunks(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(o.connections(), 0, "the origin was contacted mid-body");
        last_sent = Instant::now();
        s.write_all(piece).await.unwrap();
    }
    assert_eq!(status_of(&mut s).await, 200, "{}", v.log());
    let seen = o.requests();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].header_at >= last_sent,
        "the request reached the origin before its body ended"
    );
    assert_eq!(seen[0].body.as_deref(), Some(&body[..]));
}

/// With `request_buffer = 0` on the route, the same slow body streams: the origin has the
/// request while the client is still sending.
#[tokio::test(flavor = "multi_thread")]
async fn request_buffer_0_streams_a_small_body() {
    let o = RecordingOrigin::start().await;
    let v = Vigie::start(&config(o.addr, "")).await;
    let body = pattern(50);
    let mut s = TcpStream::connect(&v.http).await.unwrap();
    s.write_all(post_header("/stream/x", body.len()).as_bytes())
        .await
        .unwrap();
    s.write_all(&body[..10]).await.unwrap();
    wait_until(
        Duration::from_secs(5),
        "the origin sees the request",
        || {
            let n = o.requests().len();
            async move { n == 1 }
        },
    )
    .await;
    s.write_all(&body[10..]).await.unwrap();
    assert_eq!(status_of(&mut s).await, 200);
    assert_eq!(o.requests()[0].body.as_deref(), Some(&body[..]));
}

/// A 1 MiB upload is larger than the buffer: it streams. The origin has the request before
/// the client sent more than a quarter of it.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_body_streams() {
    let o = RecordingOrigin::start().await;
    let v = Vigie::start(&config(o.addr, "")).await;
    let body = pattern(1 << 20);
    let mut s = TcpStream::connect(&v.http).await.unwrap();
    s.write_all(post_header("/upload", body.len()).as_bytes())
        .await
        .unwrap();
    s.write_all(&body[..256 * 1024]).await.unwrap();
    wait_until(
        Duration::from_secs(5),
        "the origin sees the request",
        || {
            let n = o.requests().len();
            async move { n == 1 }
        },
    )
    .await;
    s.write_all(&body[256 * 1024..]).await.unwrap();
    assert_eq!(status_of(&mut s).await, 200);
    wait_until(Duration::from_secs(5), "the origin has the body", || {
        let done = o.requests()[0].body.is_some();
        async move { done }
    })
    .await;
    assert!(
        o.requests()[0].body.as_deref() == Some(&body[..]),
        "body changed"
    );
}

/// Bodies through every path arrive byte-exact: HTTP/1.1 with `Content-Length` (buffered)
/// and chunked (streamed), HTTP/2 (h2c) with `content-length` below and above the buffer.
#[tokio::test(flavor = "multi_thread")]
async fn bodies_arrive_byte_exact_over_http1_and_http2() {
    let o = RecordingOrigin::start().await;
    let v = Vigie::start(&config(o.addr, "")).await;
    let addr: SocketAddr = v.http.parse().unwrap();
    let h2_url = format!("http://example.com:{}/h2", addr.port());
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .resolve("example.com", addr)
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("h1 content-length", pattern(40_000)),
        ("h1 chunked", pattern(30_001)),
        ("h2 small", pattern(60_000)),
        ("h2 large", pattern(300_000)),
        ("h2 stream small", pattern(40_000)),
        ("h2 stream large", pattern(150_000)),
    ];
    for (i, (what, body)) in cases.iter().enumerate() {
        let req = match *what {
            "h1 chunked" => {
                let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
                    body.chunks(7_000).map(|c| Ok(c.to_vec())).collect();
                client()
                    .post(v.url("/chunked"))
                    .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                        pieces,
                    )))
            }
            "h1 content-length" => client().post(v.url("/cl")).body(body.clone()),
            "h2 stream small" | "h2 stream large" => {
                // No content-length: a stream body, in pieces of 5,000 bytes.
                let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
                    body.chunks(5_000).map(|c| Ok(c.to_vec())).collect();
                h2.post(&h2_url)
                    .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                        pieces,
                    )))
            }
            _ => h2.post(&h2_url).body(body.clone()),
        };
        let req = if what.starts_with("h1") {
            req.header("host", "example.com")
        } else {
            req
        };
        let r = req.send().await.unwrap();
        assert_eq!(
            r.version() == reqwest::Version::HTTP_2,
            what.starts_with("h2")
        );
        assert_eq!(r.status(), 200, "{what}");
        assert_eq!(r.text().await.unwrap(), body.len().to_string(), "{what}");
        let seen = o.requests();
        assert!(
            seen[i].body.as_deref() == Some(&body[..]),
            "{what}: body changed"
        );
    }
}

/// A client that stops sending its body gets 408 after `body_timeout`; the origin never
/// hears of it. A declared body above `max_body` gets 413 before anything is read.
#[tokio::test(flavor = "multi_thread")]
async fn body_timeout_and_max_body_apply_while_buffering() {
    let o = RecordingOrigin::start().await;
    let v = Vigie::start(&config(o.addr, "body_timeout = \"1s\"")).await;
    let mut s = TcpStream::connect(&v.http).await.unwrap();
    s.write_all(post_header("/form", 50).as_bytes())
        .await
        .unwrap();
    s.write_all(b"0123456789").await.unwrap();
    let started = Instant::now();
    assert_eq!(status_of(&mut s).await, 408, "{}", v.log());
    assert!(started.elapsed() >= Duration::from_millis(900));

    let mut s = TcpStream::connect(&v.http).await.unwrap();
    s.write_all(post_header("/small/x", 2000).as_bytes())
        .await
        .unwrap();
    assert_eq!(status_of(&mut s).await, 413);
    assert_eq!(o.connections(), 0, "the origin was contacted");
}

/// A slow-body attack bounded to loopback (`slowhttptest -B`, in Rust): 200 clients each
/// declare 4 KiB and send a byte every 100 ms for 2 s. Meanwhile the origin gets no
/// connection and no request; then each client sends the rest and every request arrives,
/// whole.
#[tokio::test(flavor = "multi_thread")]
async fn slow_bodies_never_reach_the_origin() {
    const CLIENTS: usize = 200;
    const LEN: usize = 4096;
    let o = RecordingOrigin::start().await;
    let v = Vigie::start(&config(o.addr, "")).await;
    let body = Arc::new(pattern(LEN));
    let (release_tx, release) = tokio::sync::watch::channel(false);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (addr, body, mut release) = (v.http.clone(), body.clone(), release.clone());
        clients.spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            s.write_all(post_header("/form", LEN).as_bytes())
                .await
                .unwrap();
            let mut sent = 0;
            while !*release.borrow() {
                s.write_all(&body[sent..=sent]).await.unwrap();
                sent += 1;
                let _ = tokio::time::timeout(Duration::from_millis(100), release.changed()).await;
            }
            s.write_all(&body[sent..]).await.unwrap();
            status_of(&mut s).await
        });
    }
    let attack = Instant::now();
    while attack.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(o.connections(), 0, "a slow body reached the origin");
    }
    assert!(o.requests().is_empty());
    release_tx.send(true).unwrap();
    while let Some(status) = clients.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let seen = o.requests();
    assert_eq!(seen.len(), CLIENTS);
    assert!(seen.iter().all(|a| a.body.as_deref() == Some(&body[..])));
}

/// When the first server refuses the connection, the retry on the next one carries the
/// buffered body again, whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_sends_the_buffered_body_again() {
    let o = RecordingOrigin::start().await;
    let dead = crate::support::free_port();
    let text = config(o.addr, "").replace(
        &format!("servers = [\"{}\"]", o.addr),
        &format!(
            "servers = [\"127.0.0.1:{dead}\", \"{}\"]\nretries = 1",
            o.addr
        ),
    );
    let v = Vigie::start(&text).await;
    let body = pattern(20_000);
    for i in 0..4 {
        let r = client()
            .post(v.url("/form"))
            .header("host", "example.com")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "request {i}: {}", v.log());
        assert_eq!(r.text().await.unwrap(), "20000");
    }
    let seen = o.requests();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|a| a.body.as_deref() == Some(&body[..])));
}

/// A chunked body: `pieces` of the body, then the last chunk.
fn chunked(body: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(piece) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn chunked_header(path: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n")
}

/// A chunked body has no declared length; a small one dribbled is buffered all the same:
/// nothing reaches the origin before its last chunk.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_chunked_body_is_buffered_too() {
    let o = RecordingOrigin::start().await;
    let v = Vigie::start(&config(o.addr, "")).await;
    let body = pattern(50);
    let mut s = TcpStream::connect(&v.http).await.unwrap();
    s.write_all(chunked_header("/form").as_bytes())
        .await
        .unwrap();
    let wire = chunked(&body, 10);
    let (pieces, last) = wire.split_at(wire.len() - 5);
    for piece in pieces.chunks(15) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(o.connections(), 0, "the origin was contacted mid-body");
        s.write_all(piece).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        o.connections(),
        0,
        "the origin was contacted before the last chunk"
    );
    // Taken before the last chunk is written: the origin may see the request before this
    // task is scheduled again after the write, but never before the write begins.
    let last_sent = Instant::now();
    s.write_all(last).await.unwrap();
    assert_eq!(status_of(&mut s).await, 200, "{}", v.log());
    let seen = o.requests();
    assert!(
        seen[0].header_at >= last_sent,
        "the origin saw the request before the last chunk was sent"
    );
    assert_eq!(seen[0].body.as_deref(), Some(&body[..]));
}

/// Chunked bodies sent at once, around the buffer size (whole, crossing it on the read that
/// ends it, crossing it mid-body, far above it): each arrives whole and unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn chunked_bodies_around_the_buffer_size_arrive_whole() {
    let o = RecordingOrigin::start().await;
    let v = Vigie::start(&config(o.addr, "")).await;
    let cases = [
        (60_000, 60_000),
        (65_536, 65_536),
        (65_537, 65_537),
        (70_000, 70_000),
        (70_000, 1_000),
        (100_000, 30_000),
        (100_000, 64_000),
        (300_000, 8_192),
    ];
    for (i, (len, piece)) in cases.iter().enumerate() {
        let body = pattern(*len);
        let mut s = TcpStream::connect(&v.http).await.unwrap();
        let mut wire = chunked_header("/c").into_bytes();
        wire.extend_from_slice(&chunked(&body, *piece));
        s.write_all(&wire).await.unwrap();
        assert_eq!(
            status_of(&mut s).await,
            200,
            "{len} in {piece}: {}",
            v.log()
        );
        wait_until(Duration::from_secs(5), "the origin has the body", || {
            let done = o.requests().get(i).is_some_and(|a| a.body.is_some());
            async move { done }
        })
        .await;
        let seen = o.requests();
        assert!(
            seen[i].body.as_deref() == Some(&body[..]),
            "{len} in {piece}: body changed ({:?} bytes)",
            seen[i].body.as_ref().map(Vec::len)
        );
    }
}
