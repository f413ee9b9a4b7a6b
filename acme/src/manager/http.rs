//! The HTTP client vigie gives instant-acme: the same hyper + rustls stack instant-acme uses
//! by default, wrapped so that vigie sees what the CA says about pacing.
//!
//! instant-acme turns an error answer into a `Problem` and drops its headers, so the
//! `Retry-After` of a `rateLimited` (or 503) answer would be lost. This wrapper keeps the
//! latest one in [`CaTraffic`], and counts every request sent to the CA.
//!
//! Every request has a deadline: a CA that accepts the connection and then says nothing
//! fails the request instead of holding the order (and the manager's lock) forever. A
//! request that got no answer (connect or TLS error, deadline) or a 5xx answer marks the CA
//! unreachable, which the fallback policy reads.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

use super::AcmeError;

/// What vigie learnt from the CA's answers: requests sent, and the last `Retry-After` of an
/// answer that was not a success.
#[derive(Debug, Default)]
pub(super) struct CaTraffic {
    requests: AtomicU64,
    retry_after: Mutex<Option<SystemTime>>,
    unreachable: Mutex<Option<String>>,
}

impl CaTraffic {
    /// Requests sent to any CA since start.
    pub(super) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Take (and clear) the last `Retry-After` the CA gave with an error answer.
    pub(super) fn take_retry_after(&self) -> Option<SystemTime> {
        self.retry_after.lock().ok().and_then(|mut r| r.take())
    }

    /// Take (and clear) why the CA was last found unreachable: no answer, or a 5xx one.
    pub(super) fn take_unreachable(&self) -> Option<String> {
        self.unreachable.lock().ok().and_then(|mut r| r.take())
    }

    fn unreachable(&self, why: String) {
        if let Ok(mut r) = self.unreachable.lock() {
            *r = Some(why);
        }
    }

    fn note(&self, rsp: &BytesResponse) {
        let status = rsp.parts.status;
        if status.is_success() || status.is_redirection() {
            return;
        }
        if status.is_server_error() {
            self.unreachable(format!("the CA answered {status}"));
        }
        let Some(at) = rsp
            .parts
            .headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after)
        else {
            return;
        };
        if let Ok(mut r) = self.retry_after.lock() {
            *r = Some(at);
        }
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub(super) fn parse_retry_after(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    match value.parse::<u64>() {
        Ok(secs) => Some(SystemTime::now() + Duration::from_secs(secs)),
        Err(_) => httpdate::parse_http_date(value).ok(),
    }
}

type Inner = Client<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>;

/// instant-acme's HTTP client with vigie's bookkeeping around it.
pub(super) struct CaClient {
    inner: Inner,
    traffic: Arc<CaTraffic>,
    timeout: Duration,
}

impl CaClient {
    /// A client trusting the platform's roots, or only the PEM certificates in `roots`;
    /// each request fails after `timeout` without an answer.
    pub(super) fn new(
        roots: Option<&Path>,
        traffic: Arc<CaTraffic>,
        timeout: Duration,
    ) -> Result<Self, AcmeError> {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match roots {
            None => builder.try_with_platform_verifier().map_err(|e| {
                AcmeError::Storage(format!("cannot load the platform's trusted roots: {e}"))
            })?,
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| AcmeError::Storage(format!("ca_roots {}: {e}", path.display())))?;
                let mut store = rustls::RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                    let cert = cert.map_err(|e| {
                        AcmeError::Storage(format!("ca_roots {}: {e}", path.display()))
                    })?;
                    store.add(cert).map_err(|e| {
                        AcmeError::Storage(format!("ca_roots {}: {e}", path.display()))
                    })?;
                }
                if store.is_empty() {
                    return Err(AcmeError::Storage(format!(
                        "ca_roots {}: no PEM certificate in the file",
                        path.display()
                    )));
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| AcmeError::Storage(format!("TLS client: {e}")))?
                    .with_root_certificates(store)
                    .with_no_client_auth();
                builder.with_tls_config(config)
            }
        };
        let connector = builder.https_only().enable_http1().enable_http2().build();
        Ok(CaClient {
            inner: Client::builder(TokioExecutor::new()).build(connector),
            traffic,
            timeout,
        })
    }
}

impl HttpClient for CaClient {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        self.traffic.requests.fetch_add(1, Ordering::Relaxed);
        let fut = HttpClient::request(&self.inner, req);
        let traffic = self.traffic.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(Ok(rsp)) => {
                    traffic.note(&rsp);
                    Ok(rsp)
                }
                Ok(Err(e)) => {
                    traffic.unreachable(format!("no answer from the CA: {e}"));
                    Err(e)
                }
                Err(_) => {
                    let why = format!("no answer from the CA within {}s", timeout.as_secs_f64());
                    traffic.unreachable(why.clone());
                    Err(instant_acme::Error::Other(Box::new(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        why,
                    ))))
                }
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = SystemTime::now();
        let t = parse_retry_after("120").unwrap();
        let d = t.duration_since(now).unwrap();
        assert!(
            d >= Duration::from_secs(119) && d <= Duration::from_secs(121),
            "{d:?}"
        );
        let t = parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT").unwrap();
        assert!(t < now);
        assert!(parse_retry_after("soon").is_none());
    }
}
