//! Test support: real origins on loopback, the real `vigie` binary, readiness checks.
//!
//! Nothing here sleeps to wait for something: every wait polls a condition with a deadline.

#![allow(dead_code, unreachable_pub)]

pub mod acme_stub;
pub mod adversary;
pub mod attack;
pub mod browser;
pub mod ca_proxy;
pub mod h2raw;
pub mod nginx;
pub mod origin;
pub mod pebble;
pub mod recorder;
pub mod redis;
pub mod tls;
pub mod vigie;

use std::future::Future;
use std::time::{Duration, Instant};

pub use origin::{Origin, WsOrigin};
pub use vigie::{check, Ports, Vigie};

/// A port that was free a moment ago on 127.0.0.1 (the kernel picked it), and that no other
/// call in this test process got: tests run in parallel and two listeners of one vigie must
/// never be handed the same port.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind 127.0.0.1:0");
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The value of one series (name with its labels, as Prometheus prints them) in `metrics`.
pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Poll `cond` every 20 ms until it is true; panic with `what` after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HTTP client that never uses a proxy from the environment and never follows redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Send raw bytes (a whole HTTP/1.1 request, sent with `Connection: close` added) and return
/// the status and the full response text. For paths a URL library would normalise.
pub async fn raw_get(addr: &str, host: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("response within 10s")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}
