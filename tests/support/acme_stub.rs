//! A scripted ACME directory, for what Pebble 2.4 cannot serve (profiles): it advertises the
//! profiles `classic` and `shortlived`, registers any account, records every signed request's
//! decoded payload, and answers `newOrder` with a `rateLimited` problem and `Retry-After: 3600`.
//! Over real TLS on loopback (instant-acme speaks HTTPS only).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::tls::TestCa;

/// A running stub.
pub struct AcmeStub {
    /// Directory URL.
    pub directory: String,
    /// PEM of the CA of its TLS certificate (for `[acme] ca_roots`).
    pub ca_roots: std::path::PathBuf,
    /// (path, decoded JWS payload) of every POST.
    pub posts: Arc<Mutex<Vec<(String, String)>>>,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AcmeStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AcmeStub {
    /// Start on a free loopback port.
    pub async fn start() -> AcmeStub {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("acme stub CA");
        let ca_roots = dir.path().join("ca.pem");
        std::fs::write(&ca_roots, &ca.pem).unwrap();
        let acceptor = ca.acceptor(&["127.0.0.1"]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let posts = Arc::new(Mutex::new(Vec::new()));
        let (p, b) = (posts.clone(), base.clone());
        let task = tokio::spawn(async move {
            let nonce = Arc::new(std::sync::atomic::AtomicU64::new(1));
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, p, b, nonce) =
                    (acceptor.clone(), p.clone(), b.clone(), nonce.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls, &b, &p, &nonce).await;
                    }
                });
            }
        });
        AcmeStub {
            directory: format!("{base}/dir"),
            ca_roots,
            posts,
            _dir: dir,
            task,
        }
    }

    /// The recorded POSTs to `path`.
    pub fn posts_to(&self, path: &str) -> Vec<String> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, body)| body.clone())
            .collect()
    }
}

async fn serve(
    mut s: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    base: &str,
    posts: &Mutex<Vec<(String, String)>>,
    nonce: &std::sync::atomic::AtomicU64,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if method == "POST" {
        let jws: serde_json::Value =
            serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or_default();
        let payload = jws["payload"].as_str().unwrap_or("");
        let decoded = base64url(payload);
        posts.lock().unwrap().push((
            path.to_string(),
            String::from_utf8_lossy(&decoded).into_owned(),
        ));
    }
    let n = nonce.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (status, extra, body) = match path {
        "/dir" => (
            "200 OK",
            String::new(),
            serde_json::json!({
                "newNonce": format!("{base}/nonce"),
                "newAccount": format!("{base}/acct"),
                "newOrder": format!("{base}/order"),
                "revokeCert": format!("{base}/revoke"),
                "keyChange": format!("{base}/key"),
                "meta": { "profiles": {
                    "classic": "90-day certificates",
                    "shortlived": "6-day certificates"
                } }
            })
            .to_string(),
        ),
        "/nonce" => ("200 OK", String::new(), String::new()),
        "/acct" => (
            "201 Created",
            format!("Location: {base}/acct/1\r\n"),
            r#"{"status":"valid"}"#.to_string(),
        ),
        "/order" => (
            "429 Too Many Requests",
            "Retry-After: 3600\r\n".to_string(),
            r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"stub: too many new orders"}"#
                .to_string(),
        ),
        _ => ("404 Not Found", String::new(), String::new()),
    };
    let ctype = if path == "/order" {
        "application/problem+json"
    } else {
        "application/json"
    };
    let rsp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nReplay-Nonce: stub-nonce-{n}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(rsp.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// Decode unpadded base64url (JWS payloads).
fn base64url(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'-' => 62,
            _ => 63,
        }
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | val(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
