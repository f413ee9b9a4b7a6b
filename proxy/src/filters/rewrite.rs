//! Routing with `rewrite` rules (nginx `rewrite ... redirect|permanent|last|break`), run in
//! `request_filter` once the site is known.
//!
//! The route is found for the normalised path; its first rule whose regex matches applies:
//! `redirect`/`permanent` answer 302/301; `last` routes the rewritten path again (at most
//! [`MAX_LAST`] times, then 500, as nginx); `break` keeps the route and hands the rewritten
//! path on (upstream, or the file looked up). The request's query is kept unless the
//! replacement has its own `?...` (then the old one is appended; a trailing `?` drops it).
//! Every rewritten path is normalised again, and a `Location` never starts with `//` or `/\`.

use std::sync::Arc;

use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;
use vigie_config::RewriteFlag;

use crate::plan::paths::normalize_path;
use crate::plan::routing::Matcher;
use crate::plan::{RoutePlan, SitePlan};

use super::{respond, send_error};

/// Most internal re-routings of one request (nginx's limit).
pub const MAX_LAST: usize = 10;

/// Where routing with rewrites ended.
pub enum Routed {
    /// On this route, for this (normalised, maybe rewritten) path; `upstream_uri`: the path
    /// and query to send upstream when a rewrite changed them.
    To {
        /// The route.
        route: Arc<RoutePlan>,
        /// The path the route serves.
        path: String,
        /// The rewritten path and query, if any rule rewrote.
        upstream_uri: Option<String>,
    },
    /// Answered (404, a redirect, a cycle): the request is handled.
    Answered,
}

/// Route `path` on `site`, applying the routes' rewrites. `Ok(Routed::Answered)` when the
/// request was answered here.
pub async fn route(session: &mut Session, site: &SitePlan, path: String) -> Result<Routed> {
    let mut path = path;
    let mut query = session.req_header().uri.query().map(str::to_owned);
    let mut rewritten = false;
    for _ in 0..=MAX_LAST {
        let Some(route) = site.route_for(&path) else {
            send_error(session, &site.error_pages, 404, "", None).await?;
            return Ok(Routed::Answered);
        };
        let Some((flag, target)) = first_match(route, &path) else {
            let upstream_uri = rewritten.then(|| with_query(&path, query.as_deref()));
            let route = route.clone();
            return Ok(Routed::To {
                route,
                path,
                upstream_uri,
            });
        };
        let (new_path, new_query) = split_target(&target, query.as_deref());
        if let RewriteFlag::Redirect | RewriteFlag::Permanent = flag {
            let status = if flag == RewriteFlag::Permanent {
                301
            } else {
                302
            };
            let location = if new_path.starts_with('/') {
                with_query(
                    &format!("/{}", new_path.trim_start_matches(['/', '\\'])),
                    new_query.as_deref(),
                )
            } else {
                with_query(new_path, new_query.as_deref())
            };
            respond::redirect(session, status, &location, &route.response_headers).await?;
            return Ok(Routed::Answered);
        }
        let Some(normal) = normalize_path(new_path) else {
            send_error(session, &site.error_pages, 400, "invalid path", None).await?;
            return Ok(Routed::Answered);
        };
        (path, query, rewritten) = (normal, new_query, true);
        if flag == RewriteFlag::Break {
            let upstream_uri = Some(with_query(&path, query.as_deref()));
            let route = route.clone();
            return Ok(Routed::To {
                route,
                path,
                upstream_uri,
            });
        }
    }
    tracing::warn!(
        path,
        "rewrite cycle: more than {MAX_LAST} internal redirects"
    );
    send_error(session, &site.error_pages, 500, "rewrite cycle", None).await?;
    Ok(Routed::Answered)
}

/// The first rule of `route` that matches `path`: its flag and its expanded replacement.
fn first_match(route: &RoutePlan, path: &str) -> Option<(RewriteFlag, String)> {
    route.rewrites.iter().find_map(|rule| {
        let caps = rule.from.captures(path)?;
        Some((rule.flag, expand(&rule.to, &caps)))
    })
}

/// `to` with `$1`...`$9` replaced by the groups of `caps` (empty when a group did not take
/// part).
pub fn expand(to: &str, caps: &regex::Captures<'_>) -> String {
    let mut out = String::with_capacity(to.len() + 16);
    let mut chars = to.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().and_then(|d| d.to_digit(10))) {
            ('$', Some(n)) => {
                chars.next();
                out.push_str(caps.get(n as usize).map_or("", |m| m.as_str()));
            }
            _ => out.push(c),
        }
    }
    out
}

/// A redirect route's target with the route regex's groups (`$1`...) filled in; unchanged
/// for other routes.
pub fn with_captures(to: &str, matcher: &Matcher, path: &str) -> String {
    match matcher {
        Matcher::Regex(re) => match re.captures(path) {
            Some(caps) => expand(to, &caps),
            None => to.to_owned(),
        },
        _ => to.to_owned(),
    }
}

/// The path and query of a replacement: a `?` in it sets the query (the request's appended
/// after `&`); a trailing `?` drops it; none keeps the request's.
fn split_target<'a>(target: &'a str, query: Option<&str>) -> (&'a str, Option<String>) {
    match target.split_once('?') {
        None => (target, query.map(str::to_owned)),
        Some((p, "")) => (p, None),
        Some((p, q)) => (
            p,
            Some(match query {
                Some(old) if !old.is_empty() => format!("{q}&{old}"),
                _ => q.to_owned(),
            }),
        ),
    }
}

fn with_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    }
}

/// Send `uri` (a rewritten path and query) upstream, keeping the scheme and authority an
/// HTTP/2 request carries.
pub fn set_upstream_uri(req: &mut RequestHeader, uri: &str) -> Result<()> {
    let mut builder = http::Uri::builder();
    if let (Some(scheme), Some(authority)) = (req.uri.scheme(), req.uri.authority()) {
        builder = builder.scheme(scheme.clone()).authority(authority.clone());
    }
    let uri = builder.path_and_query(uri).build().map_err(|e| {
        pingora::Error::because(pingora::ErrorType::InvalidHTTPHeader, "rewrite", e)
    })?;
    req.set_uri(uri);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_captures() {
        let re = regex::Regex::new("^/old/(.*)/(x)?$").unwrap();
        let caps = re.captures("/old/a/b/").unwrap();
        assert_eq!(expand("/new/$1/$2$3$", &caps), "/new/a/b/$");
        assert_eq!(split_target("/n", Some("a=1")), ("/n", Some("a=1".into())));
        assert_eq!(
            split_target("/n?b=2", Some("a=1")),
            ("/n", Some("b=2&a=1".into()))
        );
        assert_eq!(split_target("/n?", Some("a=1")), ("/n", None));
        assert_eq!(split_target("/n?b=2", None), ("/n", Some("b=2".into())));
    }
}
