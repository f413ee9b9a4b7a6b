//! The live status page of the admin listener: `GET /` (also `/status`), its script
//! `GET /status.js`, and `GET /status.json`, the data the page polls and tools read.
//!
//! Read-only: nothing here changes state, and the page never calls a state-changing
//! endpoint. The page and its script are static files compiled into the binary (no CDN, no
//! framework) and hold no data; every value comes from `/status.json`. On an admin listener
//! bound to a non-loopback address, `/status.json` needs `Authorization: Bearer` with
//! `[server] admin_token` (refused with 403 when no token is configured, 401 when it is
//! missing or wrong); the page then shows a form asking for the token and keeps it in memory
//! only. On a loopback address reading needs no token, like `/metrics`.
//!
//! Cost: the request path records one latency bucket per upstream response (see
//! `upstream::ServerStats`) and nothing else for this page. The document is built on
//! demand from the metrics registry, the snapshot, the ACME manager and the last reload; a
//! background [`Sampler`] keeps a short history (see [`history`]) for the sparklines.

mod history;
mod json;
mod model;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::Response;
use vigie_acme::Manager;

use self::history::History;
pub use self::history::Sampler;
use crate::metrics::Metrics;
use crate::reload::Live;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");

/// Everything the page reads.
pub struct StatusPage {
    live: Live,
    manager: Option<Arc<Manager>>,
    metrics: Arc<Metrics>,
    admin: Option<SocketAddr>,
    started: SystemTime,
    history: History,
}

impl std::fmt::Debug for StatusPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusPage")
            .field("admin", &self.admin)
            .finish()
    }
}

/// Whether an admin listener on `addr` serves the status data only with the token.
pub fn token_required(addr: Option<SocketAddr>) -> bool {
    addr.is_some_and(|a| !a.ip().to_canonical().is_loopback())
}

fn answer(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut b = Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .header(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(http::header::REFERRER_POLICY, "no-referrer")
        .header(http::header::X_FRAME_OPTIONS, "DENY")
        .header(
            http::header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; connect-src 'self'; \
             style-src 'unsafe-inline'; img-src data:; form-action 'none'; \
             frame-ancestors 'none'; base-uri 'none'",
        );
    if status == 401 {
        b = b.header(
            http::header::WWW_AUTHENTICATE,
            "Bearer realm=\"vigie admin\"",
        );
    }
    b.body(body).unwrap_or_else(|_| Response::new(Vec::new()))
}

impl StatusPage {
    /// A page over the live state, the ACME manager and the metrics, for an admin listener
    /// bound to `admin` (which decides whether reading needs the token).
    pub fn new(
        live: Live,
        manager: Option<Arc<Manager>>,
        metrics: Arc<Metrics>,
        admin: Option<SocketAddr>,
    ) -> Arc<Self> {
        Arc::new(StatusPage {
            live,
            manager,
            metrics,
            admin,
            started: SystemTime::now(),
            history: History::default(),
        })
    }

    /// The background task that fills the history.
    pub fn sampler(self: &Arc<Self>) -> Sampler {
        Sampler::new(self.clone())
    }

    fn token_required(&self) -> bool {
        token_required(self.admin)
    }

    /// Take one history sample now.
    fn sample(&self) {
        let snap = self.live.snapshots.load_full();
        let mut sites = std::collections::HashMap::new();
        for ((site, _route), classes) in self.metrics.request_totals() {
            let e: &mut [u64; 6] = sites.entry(site).or_default();
            for (t, c) in e.iter_mut().zip(classes) {
                *t += c;
            }
        }
        self.history
            .record(SystemTime::now(), sites, json::latency_sample(&snap));
    }

    /// The answer to a `GET` of `path` when it is one of the page's, `None` otherwise.
    /// `authorization` is the request's `Authorization` header.
    pub fn response(&self, path: &str, authorization: Option<&str>) -> Option<Response<Vec<u8>>> {
        Some(match path {
            "/" | "/status" => answer(200, "text/html; charset=utf-8", PAGE.into()),
            "/status.js" => answer(200, "text/javascript; charset=utf-8", SCRIPT.into()),
            "/status.json" => {
                if let Some(refused) = self.refusal(authorization) {
                    return Some(refused);
                }
                match serde_json::to_vec_pretty(&self.status()) {
                    Ok(body) => answer(200, "application/json", body),
                    Err(e) => answer(
                        500,
                        "text/plain; charset=utf-8",
                        format!("cannot encode the status: {e}\n").into_bytes(),
                    ),
                }
            }
            _ => return None,
        })
    }

    /// Why `/status.json` is refused to this request, if it is.
    fn refusal(&self, authorization: Option<&str>) -> Option<Response<Vec<u8>>> {
        if !self.token_required() {
            return None;
        }
        let text = |status, msg: &str| answer(status, "text/plain; charset=utf-8", msg.into());
        let snap = self.live.snapshots.load();
        let Some(token) = snap.config.server.admin_token.as_deref() else {
            return Some(text(
                403,
                "the admin listener is on a non-loopback address: reading the status needs \
                 [server] admin_token in the configuration (and `Authorization: Bearer TOKEN`)\n",
            ));
        };
        let given = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if crate::admin::same_secret(given.trim().as_bytes(), token.as_bytes()) {
            None
        } else {
            Some(text(401, "missing or wrong admin token\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::token_required;

    #[test]
    fn loopback_addresses_need_no_token() {
        for (addr, needed) in [
            ("127.0.0.1:9145", false),
            ("127.0.0.2:9145", false),
            ("[::1]:9145", false),
            ("[::ffff:127.0.0.1]:9145", false),
            ("0.0.0.0:9145", true),
            ("[::]:9145", true),
            ("192.0.2.2:9145", true),
            ("[2001:db8::1]:9145", true),
        ] {
            let a = addr.parse().ok();
            assert_eq!(token_required(a), needed, "{addr}");
        }
        assert!(!token_required(None));
    }
}
