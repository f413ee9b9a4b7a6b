//! Load clients the stock tools cannot be: `wrk` and `h2load` connect from one address and
//! keep every connection busy.
//!
//! - `bench-clients sources HOST:PORT HOSTNAME PATH SECONDS CONNS ADDRESSES REQS`: CONNS
//!   concurrent HTTP/1.1 clients, each connection bound to the next of ADDRESSES distinct source
//!   addresses across 127.0.0.0/8 (127.1.0.0 upwards), REQS keep-alive requests per connection,
//!   for SECONDS (0: one pass over the addresses). Prints `requests errors seconds req/s`. For
//!   the rate limiter with 100k clients (S5): the limiter keys on the peer address.
//! - `bench-clients idle HOST:PORT HOSTNAME N [tls]`: opens N connections (TLS with SNI
//!   HOSTNAME when `tls`, certificates not verified: the benchmark's own), sends one request on
//!   each and reads its answer, then holds them all open and idle. Prints `ready N` once all
//!   are open, and closes them when its standard input closes. For the memory per idle
//!   keep-alive connection (S7).
//!
//! - `bench-clients handshakes HOST:PORT HOSTNAME SECONDS CONNS [resume]`: CONNS concurrent
//!   clients, each in a loop for SECONDS: connect, a TLS 1.3 handshake with SNI HOSTNAME, one
//!   `GET /`, read the answer, close. Full handshakes (no session resumption, so the server
//!   signs every one) unless `resume`, which resumes each client's previous session with a
//!   ticket, as `wrk` does. Prints `requests errors seconds req/s`. For S2.
//!
//! Loopback only: every address it connects to or binds is in 127.0.0.0/8.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn usage() -> ! {
    eprintln!(
        "usage: bench-clients sources HOST:PORT HOSTNAME PATH SECONDS CONNS ADDRESSES REQS\n       \
         bench-clients idle HOST:PORT HOSTNAME N [tls]\n       \
         bench-clients handshakes HOST:PORT HOSTNAME SECONDS CONNS [resume]"
    );
    std::process::exit(2)
}

/// The `i`th source address: 127.1.0.0, 127.1.0.1, … (the loopback /8 is all local).
fn source(i: u64) -> IpAddr {
    let i = i % (1 << 24);
    IpAddr::V4(Ipv4Addr::new(
        127,
        1 + (i >> 16) as u8,
        (i >> 8) as u8,
        i as u8,
    ))
}

/// Read one HTTP/1.1 response with a `Content-Length` body; `false` on anything else.
async fn read_response<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 2") {
                return false;
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            return true;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn sources(args: &[String]) {
    let [target, host, path, secs, conns, addresses, reqs] = args else {
        usage()
    };
    let target: SocketAddr = target.parse().expect("HOST:PORT");
    assert!(target.ip().is_loopback(), "loopback only");
    let secs: u64 = secs.parse().expect("SECONDS");
    let conns: u64 = conns.parse().expect("CONNS");
    let addresses: u64 = addresses.parse().expect("ADDRESSES");
    let reqs: u64 = reqs.parse().expect("REQS");
    let request = Arc::new(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes());
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = (secs > 0).then(|| started + Duration::from_secs(secs));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (request, next, done, errors) =
            (request.clone(), next.clone(), done.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            loop {
                if until.is_some_and(|u| Instant::now() >= u) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if until.is_none() && i >= addresses {
                    return;
                }
                let socket = TcpSocket::new_v4().expect("socket");
                if socket
                    .bind(SocketAddr::new(source(i % addresses), 0))
                    .is_err()
                {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Ok(mut s) = socket.connect(target).await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let _ = s.set_nodelay(true);
                for _ in 0..reqs {
                    if s.write_all(&request).await.is_err()
                        || !read_response(&mut s, &mut buf).await
                    {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    report(tasks, started, &done, &errors).await;
}

/// Wait for the clients, then print `requests errors seconds req/s`.
async fn report(
    tasks: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
    done: &AtomicU64,
    errors: &AtomicU64,
) {
    for t in tasks {
        let _ = t.await;
    }
    let took = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "{n} {} {took:.2} {:.1}",
        errors.load(Ordering::Relaxed),
        n as f64 / took
    );
}

/// Accepts the benchmark's self-signed certificate.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client configuration that accepts the benchmark's certificate, allowing `versions`.
fn client_config(
    versions: &[&'static rustls::SupportedProtocolVersion],
    resume: bool,
) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    config
}

async fn handshakes(args: &[String]) {
    let (target, host, secs, conns, resume) = match args {
        [t, h, s, c] => (t, h, s, c, false),
        [t, h, s, c, mode] if mode == "resume" => (t, h, s, c, true),
        _ => usage(),
    };
    let target: SocketAddr = target.parse().expect("HOST:PORT");
    assert!(target.ip().is_loopback(), "loopback only");
    let secs: u64 = secs.parse().expect("SECONDS");
    let conns: u64 = conns.parse().expect("CONNS");
    let config = client_config(&[&rustls::version::TLS13], resume);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(host.clone()).expect("HOSTNAME");
    let request = Arc::new(
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes(),
    );
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (connector, name, request) = (connector.clone(), name.clone(), request.clone());
        let (done, errors) = (done.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            while Instant::now() < until {
                let ok = async {
                    let tcp = TcpStream::connect(target).await.ok()?;
                    let _ = tcp.set_nodelay(true);
                    let mut s = connector.connect(name.clone(), tcp).await.ok()?;
                    s.write_all(&request).await.ok()?;
                    read_response(&mut s, &mut buf).await.then_some(())
                }
                .await;
                let counter = if ok.is_some() { &done } else { &errors };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    report(tasks, started, &done, &errors).await;
}

trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

async fn idle(args: &[String]) {
    let (target, host, n, tls) = match args {
        [t, h, n] => (t, h, n, false),
        [t, h, n, mode] if mode == "tls" => (t, h, n, true),
        _ => usage(),
    };
    let target: SocketAddr = target.parse().expect("HOST:PORT");
    assert!(target.ip().is_loopback(), "loopback only");
    let n: usize = n.parse().expect("N");
    let config = client_config(rustls::DEFAULT_VERSIONS, true);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(host.clone()).expect("HOSTNAME");
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
    let mut open: Vec<Box<dyn Conn>> = Vec::with_capacity(n);
    let mut buf = Vec::with_capacity(4096);
    // In batches of 100 concurrent opens, so the listener's backlog never overflows.
    while open.len() < n {
        let batch = (n - open.len()).min(100);
        let mut pending = Vec::with_capacity(batch);
        for _ in 0..batch {
            let (connector, name) = (connector.clone(), name.clone());
            pending.push(tokio::spawn(async move {
                let tcp = TcpStream::connect(target).await.expect("connect");
                let _ = tcp.set_nodelay(true);
                let s: Box<dyn Conn> = if tls {
                    Box::new(connector.connect(name, tcp).await.expect("TLS handshake"))
                } else {
                    Box::new(tcp)
                };
                s
            }));
        }
        for p in pending {
            let mut s = p.await.expect("open");
            s.write_all(&request).await.expect("request");
            assert!(read_response(&mut s, &mut buf).await, "response");
            open.push(s);
        }
    }
    println!("ready {}", open.len());
    // Hold them until told to stop (standard input closes).
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await;
    drop(open);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sources") => sources(&args[1..]).await,
        Some("idle") => idle(&args[1..]).await,
        Some("handshakes") => handshakes(&args[1..]).await,
        _ => usage(),
    }
}
