//! The one `ProxyHttp` implementation. Each phase is a short dispatcher into `filters/*`.
//!
//! A request takes the current snapshot once, in `new_ctx`, and every phase reads only that
//! snapshot: a reload that lands mid-request never changes where the request goes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::cache::key::HashBinary;
use pingora::cache::{CacheKey, CacheMeta, RespCacheable};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};
use vigie_config::{Action, Balance, HashKey, RouteCache};

use crate::filters::limit::Outcome as LimitOutcome;
use crate::filters::{
    self, body_limit, cache, compress, forwarded, request_buffer, rewrite, upstream_tls,
};
use crate::plan::{RoutePlan, SitePlan};
use crate::snapshot::{Snapshot, SnapshotHandle};
use std::time::{Duration, Instant, SystemTime};

use crate::access_log::{self, AccessLog};
use crate::filters::request_id;
use crate::metrics::{Metrics, RequestRecord};
use crate::upstream::{InflightGuard, UpstreamGroup};
use vigie_acme::manager::HTTP01_PREFIX;
use vigie_acme::Http01Tokens;

mod route;
mod websocket;

/// The proxy: routes by host and path, answers or forwards.
pub struct Vigie {
    snapshots: SnapshotHandle,
    acme_tokens: Arc<Http01Tokens>,
    metrics: Arc<Metrics>,
    access_log: Option<Arc<AccessLog>>,
    shared_limits: Option<Arc<crate::limits::shared::Shared>>,
}

impl Vigie {
    /// A proxy reading from `snapshots`, answering the HTTP-01 challenges in `acme_tokens`,
    /// recording into `metrics` and `access_log`.
    pub fn new(
        snapshots: SnapshotHandle,
        acme_tokens: Arc<Http01Tokens>,
        metrics: Arc<Metrics>,
        access_log: Option<Arc<AccessLog>>,
    ) -> Self {
        Vigie {
            snapshots,
            acme_tokens,
            metrics,
            access_log,
            shared_limits: None,
        }
    }

    /// Decide rate limits cluster-wide through `shared` (with `[cluster]`).
    pub fn with_shared_limits(
        mut self,
        shared: Option<Arc<crate::limits::shared::Shared>>,
    ) -> Self {
        self.shared_limits = shared;
        self
    }

    /// Answer an ACME HTTP-01 validation request (any host, plain HTTP, never redirected or
    /// limited). `Ok(true)` when answered.
    async fn acme_challenge(&self, session: &mut Session) -> Result<bool> {
        let Some(token) = session.req_header().uri.path().strip_prefix(HTTP01_PREFIX) else {
            return Ok(false);
        };
        let Some(key_auth) = self.acme_tokens.lookup(token).await else {
            return Ok(false);
        };
        filters::send(
            session,
            200,
            "application/octet-stream",
            Bytes::from(key_auth),
            &[],
            None,
        )
        .await?;
        Ok(true)
    }
}

/// Per-request state.
pub struct Ctx {
    snap: Arc<Snapshot>,
    site: Option<Arc<SitePlan>>,
    route: Option<Arc<RoutePlan>>,
    /// The path and query a `rewrite` gave the request, sent upstream instead of its own.
    upstream_uri: Option<String>,
    host: Option<String>,
    client: Option<IpAddr>,
    body_seen: u64,
    /// What `request_buffer` read of the body before the upstream was chosen.
    replay: request_buffer::Replay,
    attempts: u32,
    tried: Vec<SocketAddr>,
    group: Option<Arc<UpstreamGroup>>,
    inflight: Option<InflightGuard>,
    accept_encoding: Option<http::HeaderValue>,
    started: Instant,
    start_time: SystemTime,
    upstream_started: Option<Instant>,
    upstream_time: Option<Duration>,
    request_id: String,
    limit: LimitOutcome,
    cache: cache::Use,
}

impl Ctx {
    /// The matched route, once `request_filter` found one.
    fn route(&self) -> Option<&RoutePlan> {
        self.route.as_deref()
    }

    /// The matched route's cache settings and zone, when it caches.
    fn cache(&self) -> Option<(&RouteCache, &crate::cache::Zone)> {
        let (rc, zone) = self.route()?.cache.as_ref()?;
        Some((rc, zone))
    }
}

fn hash_key(session: &Session, ctx: &Ctx, key: &HashKey) -> Vec<u8> {
    let ip = || {
        ctx.client
            .map(|ip| ip.to_string().into_bytes())
            .unwrap_or_default()
    };
    match key {
        HashKey::ClientIp => ip(),
        HashKey::Header(name) => session
            .req_header()
            .headers
            .get(name)
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_else(ip),
    }
}

/// The status vigie answers for an error that ended a request; 0 when the client is gone.
fn status_for(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            504
        }
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                ErrorType::ReadTimedout => 408,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

#[async_trait]
impl ProxyHttp for Vigie {
    type CTX = Ctx;

    /// pingora's compression module (gzip, zstd) and vigie's brotli module.
    fn init_downstream_modules(&self, modules: &mut pingora::modules::http::HttpModules) {
        compress::init_modules(modules);
    }

    fn new_ctx(&self) -> Ctx {
        Ctx {
            snap: self.snapshots.load_full(),
            site: None,
            route: None,
            upstream_uri: None,
            host: None,
            client: None,
            body_seen: 0,
            replay: request_buffer::Replay::Nothing,
            attempts: 0,
            tried: Vec::new(),
            group: None,
            inflight: None,
            accept_encoding: None,
            started: Instant::now(),
            start_time: SystemTime::now(),
            upstream_started: None,
            upstream_time: None,
            request_id: String::new(),
            limit: LimitOutcome::Off,
            cache: cache::Use::Off,
        }
    }

    /// Before pingora's modules read the request: the request id, and `Accept-Encoding`
    /// normalised for the compression module (q-values).
    async fn early_request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        self.metrics.request_started();
        filters::prepare(session, &ctx.snap);
        ctx.request_id = request_id::assign(session, &ctx.snap.config.client_ip)?;
        ctx.accept_encoding = compress::negotiate(session);
        Ok(())
    }

    /// Routing, answering routes and the declared body limit. `Ok(true)` = answered here.
    /// WebSocket upgrades are tunnelled here, by vigie (see `websocket`).
    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        if self.route_request(session, ctx).await? {
            return Ok(true);
        }
        if websocket::takes(session, ctx) {
            return self.websocket(session, ctx).await;
        }
        if let Some(route) = ctx.route() {
            let server = &ctx.snap.config.server;
            let limit = request_buffer::limit_for(server, route);
            let (timeout, max_body) = (server.body_timeout, route.max_body);
            let seen = &mut ctx.body_seen;
            ctx.replay = request_buffer::read(session, limit, timeout, max_body, seen).await?;
        }
        Ok(false)
    }

    /// Counts body bytes against the route's limit; fails with 413 past it. What
    /// `request_buffer` read is counted there, and restored here if pingora lost it.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let new = ctx.replay.piece(body);
        if let Some(limit) = ctx.route().and_then(|r| r.max_body) {
            let mut seen = ctx.body_seen;
            let res = body_limit::count(&mut seen, new, limit);
            ctx.body_seen = seen;
            res?;
        }
        Ok(())
    }

    /// Picks a server of the route's upstream group, skipping the ones this request tried.
    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let Some(group) = ctx.route().and_then(|r| r.upstream.clone()) else {
            return Error::e_explain(ErrorType::InternalError, "no proxy route for this request");
        };
        let key = match &group.config.balance {
            Balance::Hash(k) => hash_key(session, ctx, k),
            _ => Vec::new(),
        };
        let Some(addr) = group.select(&key, &ctx.tried) else {
            // An upstream failure like a refused connection: a cached route serves its stale
            // copy (stale-if-error) rather than the 503, whether the servers were found down
            // by this request or by an earlier one.
            let mut e = Error::explain(
                ErrorType::HTTPStatus(503),
                format!("no healthy server in upstream \"{}\"", group.config.name),
            );
            e.esource = ErrorSource::Upstream;
            return Err(e);
        };
        ctx.attempts += 1;
        ctx.tried.push(addr);
        ctx.upstream_started = Some(Instant::now());
        ctx.inflight = group.begin(&addr);
        let tls = ctx.route().and_then(|r| r.upstream_tls.clone());
        let sni = tls.as_ref().map(|t| upstream_tls::sni(t, &addr));
        let mut peer = HttpPeer::new(addr, tls.is_some(), sni.unwrap_or_default());
        if let Some(t) = &tls {
            upstream_tls::configure(&mut peer, &group.config.name, t);
        }
        let cfg = &group.config;
        peer.options.connection_timeout = Some(cfg.connect_timeout);
        peer.options.read_timeout = Some(cfg.read_timeout);
        peer.options.write_timeout = Some(cfg.write_timeout);
        if cfg.h2c && tls.is_none() {
            peer.options.set_http_version(2, 2);
        }
        ctx.group = Some(group);
        Ok(Box::new(peer))
    }

    /// Marks the server as failing and retries on another one while retries are left.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.inflight = None;
        if let Some(group) = &ctx.group {
            upstream_tls::log_failure(&group.config.name, peer._address.as_inet(), &e);
            if let Some(addr) = peer._address.as_inet() {
                group.report_failure(addr);
            }
            let more_servers = ctx.tried.len() < group.servers().len();
            if ctx.attempts <= group.config.retries && more_servers {
                e.set_retry(true);
            }
        }
        e
    }

    /// Forwarding headers, prefix stripping and the route's request header operations.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut pingora::http::RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        filters::framing::one_content_length(req)?;
        forwarded::set(
            session,
            req,
            &ctx.snap.config.client_ip,
            ctx.client,
            ctx.host.as_deref(),
        )?;
        if let Some(uri) = &ctx.upstream_uri {
            rewrite::set_upstream_uri(req, uri)?;
        }
        if let Some(route) = ctx.route() {
            if let Action::Proxy {
                strip_prefix: true, ..
            } = route.action
            {
                forwarded::strip_prefix(req, &route.path)?;
            }
            filters::apply_request_ops(req, &route.request_headers)?;
        }
        if ctx.cache == cache::Use::On {
            // One identity copy in the cache; compression happens per client on the way out.
            req.remove_header(&http::header::ACCEPT_ENCODING);
        } else {
            compress::restore(req, ctx.accept_encoding.as_ref());
        }
        Ok(())
    }

    /// Time to the upstream's response header, also counted on the server (status page).
    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut pingora::http::ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.upstream_time = ctx.upstream_started.map(|s| s.elapsed());
        if let (Some(server), Some(t)) = (&ctx.inflight, ctx.upstream_time) {
            server.response(t, resp.status.as_u16());
        }
        Ok(())
    }

    /// The route's response header operations on proxied responses.
    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut pingora::http::ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        forwarded::hide_upstream_headers(resp, ctx.route().map(|r| r.pass_headers.as_slice()));
        if let Some(route) = ctx.route() {
            filters::apply_response_ops(resp, &route.response_headers)?;
            compress::check_response(session, route.compress.as_ref(), resp);
        } else {
            compress::off(session);
        }
        resp.insert_header(request_id::HEADER, ctx.request_id.as_str())?;
        if let (Some((rc, _)), Some(status)) = (ctx.cache(), cache::status(session, ctx.cache)) {
            if let Some(name) = &rc.status_header {
                resp.insert_header(name.clone(), status)?;
            }
        }
        Ok(())
    }

    /// Turns the route's cache zone on for this request (GET/HEAD, no bypass rule).
    fn request_cache_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        if let Some((rc, zone)) = ctx.cache() {
            ctx.cache = cache::enable(session, rc, zone);
        }
        Ok(())
    }

    /// The cache key: scheme, routed host, path and query, and the route's key parts.
    fn cache_key_callback(&self, session: &Session, ctx: &mut Ctx) -> Result<CacheKey> {
        match (ctx.cache(), ctx.host.as_deref()) {
            (Some((rc, zone)), Some(host)) => Ok(cache::key(session, host, rc, zone)),
            _ => Error::e_explain(ErrorType::InternalError, "cache on a request without route"),
        }
    }

    /// Whether the upstream's response may be stored, and for how long.
    fn response_cache_filter(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<RespCacheable> {
        let authorized = session
            .req_header()
            .headers
            .contains_key(http::header::AUTHORIZATION);
        match ctx.cache() {
            Some((rc, _)) => Ok(cache::cacheable(resp, authorized, rc)),
            None => Ok(RespCacheable::Uncacheable(
                pingora::cache::NoCacheReason::NeverEnabled,
            )),
        }
    }

    /// The variant a request wants, from the stored response's `Vary`.
    fn cache_vary_filter(
        &self,
        meta: &CacheMeta,
        _ctx: &mut Ctx,
        req: &RequestHeader,
    ) -> Option<HashBinary> {
        cache::variance(meta, req)
    }

    /// Serve stale while revalidating (within the entry's window), and when the upstream
    /// fails or answers 5xx (within its stale-if-error window).
    fn should_serve_stale(&self, _s: &mut Session, _ctx: &mut Ctx, e: Option<&Error>) -> bool {
        e.is_none_or(|e| e.esource() == &ErrorSource::Upstream)
    }

    /// vigie's own error page (413, 502, 503, 504...) when the response has not started.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        if let Some(server) = ctx.inflight.take() {
            if e.esource() == &ErrorSource::Upstream {
                server.failure();
            }
        }
        let status = status_for(e);
        if status > 0 && session.response_written().is_none() {
            // The connection is not reused after this answer (below): say so, or a client
            // would send its next request on a connection about to close and lose it.
            session.set_keepalive(None);
            let detail = match e.etype() {
                ErrorType::HTTPStatus(_) => e.context.as_ref().map(|c| c.as_str().to_string()),
                _ => None,
            }
            .unwrap_or_default();
            let ops = ctx.route().map(|r| &r.response_headers);
            let pages = route::site_pages(ctx);
            if let Err(err) = filters::send_error(session, pages, status, &detail, ops).await {
                tracing::debug!(error = %err, "could not send the error response");
            }
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    /// Metrics and the access-log line, once per request.
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        ctx.inflight = None;
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let site = ctx.site.as_deref().map_or("-", |s| s.label.as_str());
        let route = ctx.route().map_or("-", |r| r.path.as_str());
        let req = session.req_header();
        let upstream = match (&ctx.group, ctx.upstream_time) {
            (Some(g), Some(t)) => Some((g.config.name.as_str(), t)),
            _ => None,
        };
        let cache_status = cache::status(session, ctx.cache);
        self.metrics.request_done(&RequestRecord {
            site,
            route,
            method: req.method.as_str(),
            status,
            duration: ctx.started.elapsed(),
            upstream,
            bytes_in: session.body_bytes_read(),
            bytes_out: session.body_bytes_sent(),
            retries: ctx.attempts.saturating_sub(1),
            cache: ctx
                .cache()
                .zip(cache_status)
                .map(|((rc, _), status)| (rc.zone.as_str(), status)),
        });
        let Some(log) = &self.access_log else { return };
        let header = |n: http::header::HeaderName| {
            req.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let uri = req.uri.path_and_query().map_or("/", |p| p.as_str());
        log.write(&access_log::Entry {
            client: ctx
                .client
                .map_or_else(|| "-".to_string(), |c| c.to_string()),
            time: ctx.start_time,
            method: req.method.as_str(),
            uri,
            version: match req.version {
                http::Version::HTTP_10 => "HTTP/1.0",
                http::Version::HTTP_2 => "HTTP/2.0",
                _ => "HTTP/1.1",
            },
            status,
            bytes: session.body_bytes_sent(),
            referer: header(http::header::REFERER),
            user_agent: header(http::header::USER_AGENT),
            host: ctx.host.as_deref().unwrap_or("-"),
            request_time: ctx.started.elapsed(),
            upstream: ctx
                .tried
                .last()
                .zip(ctx.upstream_time)
                .map(|(a, t)| (a.to_string(), t)),
            request_id: &ctx.request_id,
            limit: ctx.limit.as_str(),
            cache: cache_status.unwrap_or("-"),
        });
    }
}
