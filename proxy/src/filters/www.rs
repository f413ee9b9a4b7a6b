//! Site-level canonical redirects.
//!
//! `redirect_www`: a request for `www.example.com` answered with a redirect to
//! `example.com` (or the reverse), the one-line version of nginx's extra `server` block with
//! `return 301 $scheme://example.com$request_uri`.
//!
//! Runs in `request_filter` once the site is known, before the HTTP-to-HTTPS redirect, so
//! that `http://www.example.com/` goes to `https://example.com/` in one hop. The path and
//! query are kept (the path normalised, see [`location`]); the scheme is kept, except that a plain-HTTP request to a site
//! with TLS goes straight to HTTPS; the port is kept (or becomes the HTTPS listener's).
//! 301 for GET and HEAD, 308 otherwise so that the method and body are kept.

use pingora::proxy::Session;
use pingora::Result;
use vigie_config::{HeaderOps, TrailingSlash};

use super::{forwarded, location, respond};
use crate::plan::SitePlan;

/// Redirect to the canonical name when `host` has one in `site`. `Ok(true)`: answered.
pub async fn redirect(
    session: &mut Session,
    site: &SitePlan,
    host: &str,
    https_port: Option<u16>,
) -> Result<bool> {
    let Some(canonical) = site.host_redirects.get(host) else {
        return Ok(false);
    };
    let tls = forwarded::is_tls(session);
    let (scheme, port) = match https_port {
        Some(p) if site.tls && !tls => ("https", (p != 443).then_some(p)),
        _ => (if tls { "https" } else { "http" }, request_port(session)),
    };
    let authority = match port {
        Some(p) => format!("{canonical}:{p}"),
        None => canonical.clone(),
    };
    let path = location::request_uri(session);
    let location = format!("{scheme}://{authority}{path}");
    let method = &session.req_header().method;
    let status = if method == http::Method::GET || method == http::Method::HEAD {
        301
    } else {
        308
    };
    respond::redirect(session, status, &location, &HeaderOps::default()).await?;
    Ok(true)
}

/// `trailing_slash`: redirect `/docs` to `/docs/` (`add`, for a last segment without a `.`)
/// or `/docs/` to `/docs` (`remove`, never `/`), keeping the query; a relative `Location`
/// built from the normalised path (see [`location`]), so scheme, host and port stay as the
/// client sent them. Runs after the site's host redirects,
/// before routing. `Ok(true)`: answered.
pub async fn trailing_slash(session: &mut Session, mode: Option<TrailingSlash>) -> Result<bool> {
    let Some(mode) = mode else {
        return Ok(false);
    };
    // Decided and built on the normalised path: a raw `//host/` must never come back as the
    // network path `//host`.
    let raw = session.req_header().uri.path();
    let path = location::request_path(session);
    let path = path.as_str();
    let new_path = match mode {
        TrailingSlash::Remove if path.len() > 1 && path.ends_with('/') => {
            let trimmed = path.trim_end_matches('/');
            // "//" alone would trim to nothing: the root keeps its slash.
            if trimmed.is_empty() {
                "/".to_string()
            } else {
                trimmed.to_string()
            }
        }
        TrailingSlash::Add
            if !path.ends_with('/')
                && !path
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.contains('.')) =>
        {
            format!("{path}/")
        }
        _ => return Ok(false),
    };
    if new_path == raw {
        return Ok(false);
    }
    let location = location::with_query(session, new_path);
    let method = &session.req_header().method;
    let status = if method == http::Method::GET || method == http::Method::HEAD {
        301
    } else {
        308
    };
    respond::redirect(session, status, &location, &HeaderOps::default()).await?;
    Ok(true)
}

/// The port the client wrote in the URI authority or the `Host` header, if any.
fn request_port(session: &Session) -> Option<u16> {
    let req = session.req_header();
    if let Some(a) = req.uri.authority() {
        return a.port_u16();
    }
    let host = req.headers.get(http::header::HOST)?.to_str().ok()?;
    let (_, port) = host.rsplit_once(':')?;
    // "[::1]" has colons but no port after its closing bracket.
    port.parse().ok().filter(|_| !host.ends_with(']'))
}
