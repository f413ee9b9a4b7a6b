//! The benchmark origin: a minimal hyper HTTP/1.1 server, as fast as the machine allows, so
//! the proxies are what the load measures. `GET /` answers 13 bytes, `GET /1m` 1 MiB,
//! `GET /cache/1k` and `/cache/100k` 1 KiB and 100 KiB, `GET /count` how many requests it
//! answered before (to show cache hits never reach it), `GET /json` a realistic
//! 100 KB JSON document (`json_body.rs`, for the compression scenarios), and any request body is
//! read and discarded (uploads).
//! Usage: `bench-origin PORT`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "json_body.rs"]
mod json_body;

use std::convert::Infallible;
use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

static MIB: [u8; 1 << 20] = [b'x'; 1 << 20];
static JSON: OnceLock<Bytes> = OnceLock::new();

static SERVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    // Drain the body (uploads).
    let _ = req.into_body().collect().await;
    let (body, content_type) = match path.as_str() {
        "/count" => {
            let n = SERVED.load(std::sync::atomic::Ordering::Relaxed);
            return Ok(Response::new(Full::new(Bytes::from(format!("{n}\n")))));
        }
        "/1m" => (Bytes::from_static(&MIB), "text/plain"),
        "/cache/1k" => (Bytes::from_static(&MIB[..1024]), "text/plain"),
        "/cache/100k" => (Bytes::from_static(&MIB[..102_400]), "text/plain"),
        "/json" => (
            JSON.get_or_init(|| Bytes::from(json_body::json_body(100 * 1024)))
                .clone(),
            "application/json",
        ),
        _ => (Bytes::from_static(b"hello, world\n"), "text/plain"),
    };
    SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Response::builder()
        .header("content-type", content_type)
        .body(Full::new(body))
        .expect("response"))
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(18000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .await;
            });
        }
    });
}
