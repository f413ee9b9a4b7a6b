//! The admin listener (loopback by default): `/healthz`, and the certificate API used by
//! `vigie cert`. `/metrics` and the purge API join it in their own issues.
//!
//! - `GET /healthz`: 200 with the loaded configuration's age, once a snapshot is loaded.
//! - `GET /certs`: one line per ACME-managed site: names, issuer, not-after, next renewal,
//!   failures and the last error; in a cluster, the order lock's holder (read from Redis)
//!   and who ordered the certificate, when.
//! - `POST /certs/renew?name=NAME&force=1`: renew now (one site, or all without `name`) and
//!   answer once the pass is over, so the new certificate is live when the answer arrives.
//! - `POST /certs/dry-run[?directory=URL]`: order every managed certificate from a staging
//!   directory, storing and serving nothing.
//! - `POST /cache/purge[?prefix=1]` with the URL as the body: remove that URL's cached
//!   entries (all variants), or every URL starting with it, from every cache zone; in a
//!   `[cluster]`, from every instance's (`cluster::purge`): 502 when Redis could not be
//!   reached to tell the others (this instance's purge is done).
//! - `GET /` (also `/status`), `/status.js`, `/status.json`: the live status page and its
//!   data (see `status`, which has its own token rule for non-loopback addresses).
//!
//! Every state-changing endpoint (every `POST`) needs `Authorization: Bearer TOKEN` with
//! `[server] admin_token`, compared in constant time; without a configured token they are
//! refused (403). Read-only `GET`s stay open (the listener is on loopback by default).
//! Query values are percent-decoded ([`encode_query_value`] is what `vigie` sends).

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use vigie_acme::{Manager, Status};

use crate::background::acme_sites;
use crate::metrics::{AcmeFigures, Metrics};
use crate::reload::Live;

/// The admin HTTP application.
pub struct Admin {
    live: Live,
    manager: Option<Arc<Manager>>,
    metrics: Arc<Metrics>,
    status: Option<Arc<crate::status::StatusPage>>,
    purges: Option<Arc<crate::cluster::purge::Fanout>>,
}

impl Admin {
    /// An admin app over the live state, the ACME manager and the metrics.
    pub fn new(live: Live, manager: Option<Arc<Manager>>, metrics: Arc<Metrics>) -> Self {
        Admin {
            live,
            manager,
            metrics,
            status: None,
            purges: None,
        }
    }

    /// Tell the other instances of the cluster about every purge.
    pub fn with_purge_fanout(mut self, fanout: Arc<crate::cluster::purge::Fanout>) -> Self {
        self.purges = Some(fanout);
        self
    }

    /// Serve the status page too.
    pub fn with_status(mut self, page: Arc<crate::status::StatusPage>) -> Self {
        self.status = Some(page);
        self
    }

    fn metrics_page(&self) -> Response<Vec<u8>> {
        let snap = self.live.snapshots.load_full();
        let mut certs: Vec<(String, &'static str, SystemTime)> = Vec::new();
        let table = &snap.certs;
        for (name, ck) in table
            .exact
            .iter()
            .map(|(n, c)| (n.clone(), c))
            .chain(table.wildcard.iter().map(|(n, c)| (format!("*.{n}"), c)))
        {
            if let Some(info) = ck
                .cert
                .first()
                .and_then(|der| vigie_acme::pem::info(der, "certificate").ok())
            {
                certs.push((name, "configured", info.not_after));
            }
        }
        let status = self
            .manager
            .as_ref()
            .map(|m| m.status())
            .unwrap_or_default();
        let mut acme = AcmeFigures::default();
        for s in &status {
            if let Some(c) = &s.cert {
                for n in &s.names {
                    certs.push((n.clone(), "acme", c.not_after));
                }
            }
            acme.orders.push((s.names.join(","), s.issued, s.failed));
        }
        if let Some(m) = &self.manager {
            acme.fallbacks = m.fallbacks();
            acme.locks = m.lock_counts();
        }
        let body = self.metrics.render(&snap, &certs, &acme);
        Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}

fn text(status: u16, body: String) -> Response<Vec<u8>> {
    let body = body.into_bytes();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn date(t: Option<SystemTime>) -> String {
    t.map_or_else(|| "-".to_string(), httpdate::fmt_http_date)
}

/// One line per site, tab-separated: names, issuer, not-after, renew-at, serial, failures,
/// error, profile, why it is waiting (renewal rule, back-off, rate limit or Retry-After), the
/// directory of the CA that issued the certificate, and in a cluster the node holding the
/// order lock now, the node that ordered the certificate (with its lock's fence) and when.
pub fn format_status(list: &[Status]) -> String {
    let mut out = String::from(
        "names\tissuer\tnot_after\trenew_at\tserial\tfailures\tlast_error\tprofile\twaiting\tca\t\
         lock_holder\tordered_by\tordered_at\n",
    );
    for s in list {
        let cert = s.cert.as_ref();
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            s.names.join(","),
            cert.map_or("-", |c| c.issuer.as_str()),
            date(cert.map(|c| c.not_after)),
            date(s.renew_at),
            cert.map_or("-", |c| c.serial.as_str()),
            s.failures,
            s.last_error.as_deref().unwrap_or("-"),
            s.profile.as_deref().unwrap_or("-"),
            s.waiting.as_deref().unwrap_or("-"),
            s.ca.as_deref().unwrap_or("-"),
            s.lock_holder.as_deref().unwrap_or("-"),
            s.ordered_by.as_ref().map_or_else(
                || "-".to_string(),
                |(node, fence)| format!("{node} (fence {fence})")
            ),
            date(s.ordered_at),
        ));
    }
    out
}

/// The percent-decoded value of `key` in `query`; a value that does not decode to UTF-8
/// counts as absent.
fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| crate::filters::static_files::percent_decode(v))
}

/// `value` percent-encoded for a query string: everything but the unreserved characters of
/// RFC 3986 (letters, digits, `-._~`) as `%XX`, so `&`, `=`, `#`, spaces... stay in it.
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `query` turns the flag `key` on (`key`, `key=1`, `key=true`).
fn flag(query: &str, key: &str) -> bool {
    matches!(query_param(query, key).as_deref(), Some("1" | "true" | ""))
}

/// The staging directory used for a dry run of a configuration that names `directory`.
pub fn staging_for(directory: &str) -> String {
    if directory.contains("acme-v02.api.letsencrypt.org") {
        "https://acme-staging-v02.api.letsencrypt.org/directory".to_string()
    } else {
        directory.to_string()
    }
}

impl Admin {
    async fn dry_run(&self, query: &str) -> Response<Vec<u8>> {
        let Some(manager) = &self.manager else {
            return text(404, "no ACME manager\n".into());
        };
        let snap = self.live.snapshots.load_full();
        let Some(acme) = &snap.config.acme else {
            return text(409, "no site uses tls = \"acme\"\n".into());
        };
        let mut staging = acme.clone();
        staging.directory = query_param(query, "directory")
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| staging_for(&acme.directory));
        let mut out = format!("dry run against {}\n", staging.directory);
        let mut failed = false;
        for names in acme_sites(&snap.config).into_iter().map(|w| w.names) {
            match manager.dry_run(&staging, &names).await {
                Ok(info) => out.push_str(&format!(
                    "ok\t{}\tissuer {}\tnot_after {}\n",
                    names.join(","),
                    info.issuer,
                    httpdate::fmt_http_date(info.not_after)
                )),
                Err(e) => {
                    failed = true;
                    out.push_str(&format!("failed\t{}\t{e}\n", names.join(",")));
                }
            }
        }
        text(if failed { 502 } else { 200 }, out)
    }

    /// The refusal when the request may not change state: no token configured (403), or a
    /// missing or wrong `Authorization: Bearer` (401); `None` when it may.
    fn refusal(&self, session: &ServerSession, what: &str) -> Option<Response<Vec<u8>>> {
        let snap = self.live.snapshots.load();
        let Some(token) = snap.config.server.admin_token.as_deref() else {
            return Some(text(
                403,
                format!(
                    "{what} changes state: it needs [server] admin_token in the configuration \
                     (and `Authorization: Bearer TOKEN`)\n"
                ),
            ));
        };
        let given = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if same_secret(given.trim().as_bytes(), token.as_bytes()) {
            None
        } else {
            Some(text(401, "missing or wrong admin token\n".into()))
        }
    }

    async fn purge(&self, session: &mut ServerSession, query: &str) -> Response<Vec<u8>> {
        let snap = self.live.snapshots.load_full();
        let mut body = Vec::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return text(400, format!("cannot read the request body: {e}\n")),
            }
            if body.len() > 8192 {
                return text(413, "the URL is longer than 8 KiB\n".into());
            }
        }
        let url = String::from_utf8_lossy(&body).trim().to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return text(
                400,
                format!(
                    "expected an absolute http:// or https:// URL as the body, got \"{url}\"\n"
                ),
            );
        }
        let prefix = flag(query, "prefix");
        let purged: usize = snap.caches.values().map(|z| z.purge(&url, prefix)).sum();
        let Some(fanout) = &self.purges else {
            return text(200, format!("purged {purged}\n"));
        };
        match fanout.publish(&url, prefix).await {
            Ok(others) => text(
                200,
                format!("purged {purged}\nsent to {others} other instances of the cluster\n"),
            ),
            // The local purge is done; the status says the cluster's is not.
            Err(e) => text(
                502,
                format!(
                    "purged {purged}\nthe other instances of the cluster were NOT purged: {e}\n"
                ),
            ),
        }
    }

    async fn renew(&self, query: &str) -> Response<Vec<u8>> {
        let Some(manager) = &self.manager else {
            return text(404, "no ACME manager\n".into());
        };
        let snap = self.live.snapshots.load_full();
        let Some(acme) = &snap.config.acme else {
            return text(409, "no site uses tls = \"acme\"\n".into());
        };
        let name = query_param(query, "name").filter(|n| !n.is_empty());
        let name = name.as_deref();
        let force = flag(query, "force");
        let sites = acme_sites(&snap.config);
        if let Some(n) = name {
            if !sites
                .iter()
                .flat_map(|w| &w.names)
                .any(|x| x.eq_ignore_ascii_case(n))
            {
                return text(404, format!("{n} is not an ACME-managed name\n"));
            }
        }
        manager.request(name, force).await;
        manager.run_once(acme, &sites).await;
        // The background pass recomputes when to wake: a failed forced renewal is retried
        // after its back-off, not at the background's earlier (possibly hour-long) wake-up.
        self.live.acme_wake.notify_one();
        let list: Vec<Status> = manager
            .status()
            .into_iter()
            .filter(|s| name.is_none_or(|n| s.names.iter().any(|x| x.eq_ignore_ascii_case(n))))
            .collect();
        let failed = list.iter().any(|s| s.last_error.is_some());
        text(if failed { 502 } else { 200 }, format_status(&list))
    }
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        let query = session.req_header().uri.query().unwrap_or("").to_string();
        let post = session.req_header().method == http::Method::POST;
        if let Some(page) = self.status.as_ref().filter(|_| !post) {
            let auth = session
                .req_header()
                .headers
                .get(http::header::AUTHORIZATION);
            if let Some(answer) = page.response(&path, auth.and_then(|v| v.to_str().ok())) {
                return answer;
            }
        }
        match (path.as_str(), post) {
            ("/healthz", false) => {
                let snap = self.live.snapshots.load();
                let age = SystemTime::now()
                    .duration_since(snap.loaded_at)
                    .map_or(0, |d| d.as_secs());
                text(
                    200,
                    format!(
                        "ok\nconfig_loaded_seconds_ago {age}\nsites {}\n",
                        snap.sites().len()
                    ),
                )
            }
            ("/metrics", false) => self.metrics_page(),
            ("/certs", false) => {
                let list = match &self.manager {
                    Some(m) => m.status_now().await,
                    None => Vec::new(),
                };
                text(200, format_status(&list))
            }
            ("/certs/renew" | "/certs/dry-run" | "/cache/purge", true) => {
                if let Some(refused) = self.refusal(session, &format!("POST {path}")) {
                    return refused;
                }
                match path.as_str() {
                    "/certs/renew" => self.renew(&query).await,
                    "/certs/dry-run" => self.dry_run(&query).await,
                    _ => self.purge(session, &query).await,
                }
            }
            _ => text(404, "404 Not Found\n".to_string()),
        }
    }
}

/// Compare a presented secret with the configured one in constant time: every byte of
/// `given` is compared (with a byte of `expected`, cycling), whatever matches, and a length
/// difference is folded into the result rather than returned early. The time depends only
/// on the presented length, which the client knows anyway.
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    if expected.is_empty() {
        return false;
    }
    let mut diff = u8::from(given.len() != expected.len());
    for (i, b) in given.iter().enumerate() {
        diff |= b ^ expected[i % expected.len()];
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::{encode_query_value, query_param, same_secret};

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"s3cret!", b"s3cret"));
        assert!(!same_secret(b"s3cres", b"s3cret"));
        assert!(!same_secret(b"s3crets3cret", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
        assert!(!same_secret(b"", b""));
    }

    #[test]
    fn query_values_round_trip() {
        for value in ["a.example.com", "a b&force=1#x", "https://x/dir?y=1", "é%"] {
            let query = format!("force=0&name={}", encode_query_value(value));
            assert_eq!(
                query_param(&query, "name").as_deref(),
                Some(value),
                "{query}"
            );
        }
        assert_eq!(query_param("name=bad%zz", "name"), None);
        assert_eq!(query_param("force", "force").as_deref(), Some(""));
    }
}
