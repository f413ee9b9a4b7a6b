//! The admin listener (loopback by default): `/healthz`, and the certificate API used by
//! `vigie cert`. `/metrics` and the purge API join it in their own issues.
//!
//! - `GET /healthz`: 200 with the loaded configuration's age, once a snapshot is loaded.
//! - `GET /certs`: one line per ACME-managed site: names, issuer, not-after, next renewal,
//!   failures and the last error.
//! - `POST /certs/renew?name=NAME&force=1`: renew now (one site, or all without `name`) and
//!   answer once the pass is over, so the new certificate is live when the answer arrives.
//! - `POST /cache/purge[?prefix=1]` with `Authorization: Bearer TOKEN` (`[server]
//!   admin_token`) and the URL as the body: remove that URL's cached entries (all variants),
//!   or every URL starting with it, from every cache zone.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use vigie_acme::{Manager, Status};

use crate::background::acme_sites;
use crate::metrics::Metrics;
use crate::reload::Live;

/// The admin HTTP application.
pub struct Admin {
    live: Live,
    manager: Option<Arc<Manager>>,
    metrics: Arc<Metrics>,
}

impl Admin {
    /// An admin app over the live state, the ACME manager and the metrics.
    pub fn new(live: Live, manager: Option<Arc<Manager>>, metrics: Arc<Metrics>) -> Self {
        Admin {
            live,
            manager,
            metrics,
        }
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
        let mut acme = Vec::new();
        for s in &status {
            if let Some(c) = &s.cert {
                for n in &s.names {
                    certs.push((n.clone(), "acme", c.not_after));
                }
            }
            acme.push((s.names.join(","), s.issued, s.failed));
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

/// One line per site, tab-separated: names, issuer, not-after, renew-at, failures, error.
pub fn format_status(list: &[Status]) -> String {
    let mut out =
        String::from("names\tissuer\tnot_after\trenew_at\tserial\tfailures\tlast_error\n");
    for s in list {
        let cert = s.cert.as_ref();
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            s.names.join(","),
            cert.map_or("-", |c| c.issuer.as_str()),
            date(cert.map(|c| c.not_after)),
            date(s.renew_at),
            cert.map_or("-", |c| c.serial.as_str()),
            s.failures,
            s.last_error.as_deref().unwrap_or("-"),
        ));
    }
    out
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
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
            .map_or_else(|| staging_for(&acme.directory), str::to_string);
        let mut out = format!("dry run against {}\n", staging.directory);
        let mut failed = false;
        for names in acme_sites(&snap.config) {
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

    async fn purge(&self, session: &mut ServerSession, query: &str) -> Response<Vec<u8>> {
        let snap = self.live.snapshots.load_full();
        let Some(token) = &snap.config.server.admin_token else {
            return text(
                403,
                "cache purge needs [server] admin_token in the configuration\n".into(),
            );
        };
        let given = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same_secret(given.trim().as_bytes(), token.as_bytes()) {
            return text(401, "missing or wrong admin token\n".into());
        }
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = session.read_request_body().await {
            body.extend_from_slice(&chunk);
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
        let prefix = matches!(query_param(query, "prefix"), Some("1" | "true" | ""));
        let purged: usize = snap.caches.values().map(|z| z.purge(&url, prefix)).sum();
        text(200, format!("purged {purged}\n"))
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
        let force = matches!(query_param(query, "force"), Some("1" | "true" | ""));
        let sites = acme_sites(&snap.config);
        if let Some(n) = name {
            if !sites.iter().flatten().any(|x| x.eq_ignore_ascii_case(n)) {
                return text(404, format!("{n} is not an ACME-managed name\n"));
            }
        }
        manager.request(name, force).await;
        manager.run_once(acme, &sites).await;
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
                let list = self
                    .manager
                    .as_ref()
                    .map(|m| m.status())
                    .unwrap_or_default();
                text(200, format_status(&list))
            }
            ("/certs/renew", true) => self.renew(&query).await,
            ("/certs/dry-run", true) => self.dry_run(&query).await,
            ("/cache/purge", true) => self.purge(session, &query).await,
            _ => text(404, "404 Not Found\n".to_string()),
        }
    }
}

/// Compare a presented secret with the configured one without an early exit.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
