//! A counting, fault-injecting HTTPS proxy in front of Pebble's ACME API.
//!
//! Pebble issues every certificate; this proxy only does what a real Pebble cannot: count
//! the requests a client sends to its CA, and play a scripted outage on demand (connections
//! dropped, `503` with `Retry-After`, or `rateLimited` problems with `Retry-After` on
//! `newOrder`). It terminates TLS with a certificate of its own CA (give `ca_roots` to the
//! client), reads each HTTP/1.1 request and forwards it to Pebble with the client's `Host`
//! header, so the URLs Pebble puts in its answers point back at the proxy.
//!
//! What is counted: one entry per HTTP request read (whatever the answer), plus one per TCP
//! connection dropped unread while the CA is "unreachable".
//!
//! With [`CaProxy::with_ari`] it also plays the part of ARI (RFC 9773), which Pebble 2.4 does
//! not have: the directory it forwards gains a `renewalInfo` URL, `GET /renewal-info/ID` is
//! answered with a suggested window (fixed per certificate at its first query) and a
//! `Retry-After`, and the JWS payloads of `newOrder` are kept so a test can read `replaces`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

use super::tls::TestCa;

/// How the proxy behaves now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything to Pebble.
    None,
    /// The CA is unreachable: new connections are closed before TLS, requests on open ones
    /// are dropped unanswered.
    Unreachable,
    /// Every request gets `503` with `Retry-After: secs` and a `serverInternal` problem.
    Unavailable {
        /// The `Retry-After` value.
        secs: u64,
    },
    /// `newOrder` gets `429` with `Retry-After: secs` and a `rateLimited` problem; other
    /// requests (directory, nonces) reach Pebble, as with a real CA's rate limit.
    RateLimited {
        /// The `Retry-After` value.
        secs: u64,
    },
}

/// One request (or dropped connection) seen by the proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When it arrived.
    pub at: Instant,
    /// `METHOD /path`, or `connection` for a connection dropped unread.
    pub what: String,
    /// The status answered (0: dropped).
    pub status: u16,
}

/// A running proxy.
pub struct CaProxy {
    /// The directory URL through the proxy.
    pub directory: String,
    /// PEM of the CA of the proxy's TLS certificate (for `[acme] ca_roots`).
    pub ca_roots: std::path::PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    fault: Arc<Mutex<Fault>>,
    ari: Arc<Mutex<Option<Ari>>>,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CaProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    upstream: String,
    /// The directory's path (its answer gains `renewalInfo` under ARI).
    directory_path: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
    fault: Arc<Mutex<Fault>>,
    ari: Arc<Mutex<Option<Ari>>>,
}

/// The scripted ARI: each certificate's window, from `start` to `end` after its first query.
#[derive(Debug, Default)]
pub struct Ari {
    start: Duration,
    end: Duration,
    retry_after: u64,
    /// Certificate id → (window start, window end).
    windows: HashMap<String, (SystemTime, SystemTime)>,
    /// The decoded JWS payloads of every `newOrder` the CA created (answered 201).
    orders: Vec<serde_json::Value>,
}

impl Shared {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap()
    }

    fn note(&self, what: String, status: u16) {
        self.seen.lock().unwrap().push(Seen {
            at: Instant::now(),
            what,
            status,
        });
    }
}

impl CaProxy {
    /// Start on a free loopback port in front of the ACME server at `directory` (whose TLS
    /// certificate is signed by the PEM file `api_ca`).
    pub async fn start(directory: &str, api_ca: &std::path::Path) -> CaProxy {
        let url = reqwest::Url::parse(directory).unwrap();
        let upstream = format!(
            "https://{}:{}",
            url.host_str().unwrap(),
            url.port_or_known_default().unwrap()
        );
        let pem = std::fs::read(api_ca).unwrap();
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            // HTTP/1.1, so that Pebble sees the client's `Host` (over HTTP/2 it would take
            // `:authority`, its own address) and writes the proxy's URLs in its answers.
            .http1_only()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("ACME fault proxy CA");
        let ca_roots = dir.path().join("ca.pem");
        std::fs::write(&ca_roots, &ca.pem).unwrap();
        let acceptor = ca.acceptor(&["127.0.0.1"]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fault = Arc::new(Mutex::new(Fault::None));
        let ari = Arc::new(Mutex::new(None));
        let shared = Arc::new(Shared {
            upstream,
            directory_path: url.path().to_string(),
            client,
            seen: seen.clone(),
            fault: fault.clone(),
            ari: ari.clone(),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                if shared.fault() == Fault::Unreachable {
                    shared.note("connection".into(), 0);
                    drop(tcp);
                    continue;
                }
                let (acceptor, shared) = (acceptor.clone(), shared.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { answer(&shared, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        CaProxy {
            directory: format!("https://{addr}{}", url.path()),
            ca_roots,
            seen,
            fault,
            ari,
            _dir: dir,
            task,
        }
    }

    /// Offer ARI from now on: a certificate's suggested window runs from `start` to `end`
    /// after its first renewal-information query, answered with `Retry-After: retry_after`.
    pub fn with_ari(&self, start: Duration, end: Duration, retry_after: u64) {
        *self.ari.lock().unwrap() = Some(Ari {
            start,
            end,
            retry_after,
            ..Ari::default()
        });
    }

    /// The windows handed out so far: certificate id → (start, end).
    pub fn ari_windows(&self) -> HashMap<String, (SystemTime, SystemTime)> {
        self.ari
            .lock()
            .unwrap()
            .as_ref()
            .map(|a| a.windows.clone())
            .unwrap_or_default()
    }

    /// The decoded payloads of the `newOrder` requests the CA created (201) while ARI was on.
    pub fn ari_orders(&self) -> Vec<serde_json::Value> {
        self.ari
            .lock()
            .unwrap()
            .as_ref()
            .map(|a| a.orders.clone())
            .unwrap_or_default()
    }

    /// Switch behaviour (takes effect for the next request or connection).
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests (and dropped connections) seen since `since`.
    pub fn count_since(&self, since: Instant) -> usize {
        self.seen().iter().filter(|s| s.at >= since).count()
    }

    /// `newOrder` requests seen since `since` (Pebble's path is `/order-plz`).
    pub fn orders_since(&self, since: Instant) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.at >= since && s.what == "POST /order-plz")
            .collect()
    }
}

fn problem(status: u16, kind: &str, secs: u64) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "type": format!("urn:ietf:params:acme:error:{kind}"),
        "detail": "scripted by the test's fault proxy",
        "status": status,
    });
    Response::builder()
        .status(status)
        .header("content-type", "application/problem+json")
        .header("retry-after", secs.to_string())
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Answer one request: as the fault says, or with Pebble's answer.
async fn answer(
    shared: &Shared,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let what = format!("{} {}", req.method(), req.uri().path());
    let fault = shared.fault();
    let scripted = match fault {
        Fault::None => None,
        Fault::Unreachable => {
            shared.note(what, 0);
            return Err(std::io::Error::other("scripted: CA unreachable"));
        }
        Fault::Unavailable { secs } => Some(problem(503, "serverInternal", secs)),
        Fault::RateLimited { secs } if what == "POST /order-plz" => {
            Some(problem(429, "rateLimited", secs))
        }
        Fault::RateLimited { .. } => None,
    };
    if let Some(rsp) = scripted {
        shared.note(what, rsp.status().as_u16());
        return Ok(rsp);
    }
    if shared.ari.lock().unwrap().is_some() {
        if let Some(id) = req.uri().path().strip_prefix("/renewal-info/") {
            let rsp = renewal_info(shared, id);
            shared.note("GET /renewal-info".into(), rsp.status().as_u16());
            return Ok(rsp);
        }
        if req.uri().path() == shared.directory_path {
            let host = req
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let rsp = forward(shared, req).await;
            shared.note(what, rsp.status().as_u16());
            return Ok(with_renewal_info(rsp, &host).await);
        }
        if what == "POST /order-plz" {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let payload = jws_payload(&body);
            let req = Request::from_parts(parts, Full::new(body));
            let rsp = forward(shared, req).await;
            shared.note(what, rsp.status().as_u16());
            // Created orders only: Pebble rejects 5% of good nonces, and vigie sends a
            // rejected newOrder again, the same payload twice.
            if let (Some(payload), 201) = (payload, rsp.status().as_u16()) {
                if let Some(a) = shared.ari.lock().unwrap().as_mut() {
                    a.orders.push(payload);
                }
            }
            return Ok(rsp);
        }
    }
    let rsp = forward(shared, req).await;
    shared.note(what, rsp.status().as_u16());
    Ok(rsp)
}

/// The scripted renewal information for certificate `id`.
fn renewal_info(shared: &Shared, id: &str) -> Response<Full<Bytes>> {
    let mut guard = shared.ari.lock().unwrap();
    let Some(ari) = guard.as_mut() else {
        return problem(404, "malformed", 0);
    };
    let now = SystemTime::now();
    let (start, end) = *ari
        .windows
        .entry(id.to_string())
        .or_insert((now + ari.start, now + ari.end));
    let rfc3339 = |t: SystemTime| {
        time::OffsetDateTime::from(t)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let body = serde_json::json!({
        "suggestedWindow": { "start": rfc3339(start), "end": rfc3339(end) },
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("retry-after", ari.retry_after.to_string())
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Pebble's directory with a `renewalInfo` URL on the proxy added.
async fn with_renewal_info(rsp: Response<Full<Bytes>>, host: &str) -> Response<Full<Bytes>> {
    let (mut parts, body) = rsp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Ok(mut dir) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Full::new(bytes));
    };
    dir["renewalInfo"] = serde_json::Value::String(format!("https://{host}/renewal-info"));
    parts.headers.remove("content-length");
    Response::from_parts(parts, Full::new(Bytes::from(dir.to_string())))
}

/// The decoded payload of a flattened JWS request body.
fn jws_payload(body: &[u8]) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let jws: serde_json::Value = serde_json::from_slice(body).ok()?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jws["payload"].as_str()?)
        .ok()?;
    serde_json::from_slice(&payload).ok()
}

/// Send `req` to Pebble (with the client's `Host`) and return its answer whole.
async fn forward<B>(shared: &Shared, req: Request<B>) -> Response<Full<Bytes>>
where
    B: hyper::body::Body,
{
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return problem(400, "malformed", 0),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = shared
        .client
        .request(parts.method, format!("{}{path}", shared.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            out = out.header(name, value);
        }
    }
    let Ok(rsp) = out.send().await else {
        return problem(502, "serverInternal", 1);
    };
    let mut back = Response::builder().status(rsp.status());
    for (name, value) in rsp.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            back = back.header(name, value);
        }
    }
    let bytes = rsp.bytes().await.unwrap_or_default();
    back.body(Full::new(bytes)).unwrap()
}
