//! Routing a request (host, path, site-level redirects, limits and body checks) and answering
//! the routes that answer by themselves (`respond`, `redirect`, `static`).

use pingora::proxy::Session;
use pingora::Result;
use vigie_config::Action;

use crate::filters::{
    self, access, body_limit, client_ip, compress, forwarded, oversize, respond, rewrite, www,
};
use crate::plan::paths::normalize_path;
use crate::plan::RoutePlan;

use crate::plan::pages::ErrorPages;

use super::*;

impl Vigie {
    /// Route the request and answer it when the route answers by itself.
    /// `Ok(true)`: handled (answered); `Ok(false)`: go on to proxy.
    pub(super) async fn route_request(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let snap = ctx.snap.clone();
        ctx.client = client_ip::resolve(session, &snap.config.client_ip);
        if oversize::refuse(session, &snap.error_pages, &snap.config.server).await? {
            return Ok(true);
        }
        if !forwarded::is_tls(session) && self.acme_challenge(session).await? {
            return Ok(true);
        }
        let Some(host) = filters::request_host(session) else {
            filters::send_error(
                session,
                &snap.error_pages,
                400,
                "missing or invalid Host header",
                None,
            )
            .await?;
            return Ok(true);
        };
        let Some(site) = snap.site_for(&host) else {
            let status = snap.config.server.unknown_host_status;
            filters::send_error(
                session,
                &snap.error_pages,
                status,
                "no site is configured for this host",
                None,
            )
            .await?;
            return Ok(true);
        };
        let pages = &site.error_pages;
        if www::redirect(session, site, &host, snap.https_port).await? {
            return Ok(true);
        }
        ctx.host = Some(host);
        ctx.site = Some(site.clone());
        if site.tls && !forwarded::is_tls(session) {
            if let Some(port) = snap.https_port {
                let host = ctx.host.as_deref().unwrap_or_default();
                respond::to_https(session, host, port).await?;
                return Ok(true);
            }
        }
        if www::trailing_slash(session, site.trailing_slash).await? {
            return Ok(true);
        }
        let raw_path = session.req_header().uri.path();
        let climbs = filters::traversal::climbs_above_root(raw_path);
        let Some(path) = normalize_path(raw_path).filter(|_| !climbs) else {
            filters::send_error(session, pages, 400, "invalid path", None).await?;
            return Ok(true);
        };
        let (route, path) = match filters::rewrite::route(session, site, path).await? {
            rewrite::Routed::To {
                route,
                path,
                upstream_uri,
            } => {
                ctx.upstream_uri = upstream_uri;
                (route, path)
            }
            rewrite::Routed::Answered => return Ok(true),
        };
        let route = &route;
        ctx.route = Some(route.clone());
        if respond::drops(route) {
            return Err(respond::drop_connection());
        }
        if access::refuse_address(session, pages, route, ctx.client).await?
            || access::refuse_credentials(session, pages, route).await?
        {
            return Ok(true);
        }
        match route.action {
            Action::Proxy { .. } | Action::Static { .. } => {
                compress::for_route(session, route.compress.as_ref())
            }
            _ => compress::off(session),
        }
        ctx.limit = filters::limit::apply(
            session,
            pages,
            route,
            ctx.client,
            self.shared_limits.as_deref(),
        )
        .await?;
        if ctx.limit.answered() {
            return Ok(true);
        }
        if let Some(limit) = route.max_body {
            if body_limit::declared_too_large(session, limit) {
                session.set_keepalive(None);
                let detail = format!("the request body is larger than {limit} bytes");
                filters::send_error(session, pages, 413, &detail, Some(&route.response_headers))
                    .await?;
                return Ok(true);
            }
        }
        self.answer(session, ctx, route, &path).await
    }

    /// Answer `respond`, `redirect` and `static` routes; `Ok(false)` for proxy routes.
    async fn answer(
        &self,
        session: &mut Session,
        ctx: &Ctx,
        route: &RoutePlan,
        path: &str,
    ) -> Result<bool> {
        let ops = &route.response_headers;
        match &route.action {
            Action::Proxy { .. } => return Ok(false),
            Action::Respond {
                status,
                body,
                content_type,
            } => respond::respond(session, *status, content_type, body, ops).await?,
            Action::Redirect { status, to } => {
                let scheme = if forwarded::is_tls(session) {
                    "https"
                } else {
                    "http"
                };
                let host = ctx.host.as_deref().unwrap_or_default();
                let to = rewrite::with_captures(to, &route.matcher, path);
                let location = respond::expand_target(&to, session, host, scheme);
                respond::redirect(session, *status, &location, ops).await?;
            }
            Action::Static { .. } => {
                filters::try_files::serve(session, site_pages(ctx), route, path).await?
            }
        }
        Ok(true)
    }
}

/// The error pages that apply to this request: its site's once the site is known, else the
/// top-level ones.
pub(super) fn site_pages(ctx: &Ctx) -> &ErrorPages {
    match &ctx.site {
        Some(site) => &site.error_pages,
        None => &ctx.snap.error_pages,
    }
}
