//! Request filters: small, single-purpose steps that the proxy phases dispatch to.
//!
//! Each filter documents when it runs and what it returns. A filter that answers the request
//! itself returns `Ok(true)` ("handled": the proxy stops there), otherwise `Ok(false)`.

pub mod access;
pub mod body_limit;
pub mod brotli;
pub mod cache;
pub mod client_ip;
pub mod compress;
pub mod forwarded;
pub mod framing;
pub mod limit;
pub mod location;
pub mod oversize;
pub mod range;
pub mod request_buffer;
pub mod request_id;
pub mod respond;
pub mod rewrite;
pub mod static_files;
pub mod traversal;
pub mod try_files;
pub mod upstream_tls;
pub mod www;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use vigie_config::HeaderOps;

use crate::plan::pages::ErrorPages;

/// Per-request settings taken from the snapshot before anything can answer, run in
/// `early_request_filter`: the body read timeout (`[server] body_timeout`, per read like nginx's
/// `client_body_timeout`; pingora applies it to HTTP/1.x only). Upgrade requests
/// (WebSocket) keep pingora's own read timeout: their "body" is the tunnel, idle at times.
pub fn prepare(session: &mut Session, snap: &crate::snapshot::Snapshot) {
    if !session.is_upgrade_req() {
        session.set_read_timeout(Some(snap.config.server.body_timeout));
    }
}

/// The request's host, lower-cased, without port or trailing dot: from the URI authority
/// (HTTP/2, absolute-form) or the `Host` header. `None` when there is none, or when it is not
/// a host name or an IP literal (`/`, `\`, `@`, `?`...): such a host would end up in
/// `$host` and in the `Location` of redirects, naming another host.
pub fn request_host(session: &Session) -> Option<String> {
    let req = session.req_header();
    let raw = match req.uri.authority() {
        Some(a) => a.host().to_string(),
        None => {
            let h = req.headers.get(http::header::HOST)?.to_str().ok()?;
            strip_port(h).to_string()
        }
    };
    let host = raw.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty() && is_host_name(&host)).then_some(host)
}

/// Letters, digits, `-`, `_` and `.`, or a bracketed IPv6 literal.
fn is_host_name(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
        None => host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
    }
}

fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        // [v6]:port -> [v6] (site names keep IPv6 literals bracketed)
        return h.find(']').map_or(h, |end| &h[..=end]);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => h,
    }
}

/// Apply header operations to a response header: remove, then set.
pub fn apply_response_ops(resp: &mut ResponseHeader, ops: &HeaderOps) -> Result<()> {
    for name in &ops.remove {
        resp.remove_header(name);
    }
    for (name, value) in &ops.set {
        resp.insert_header(name.clone(), value.clone())?;
    }
    Ok(())
}

/// Apply header operations to a request header: remove, then set.
pub fn apply_request_ops(req: &mut pingora::http::RequestHeader, ops: &HeaderOps) -> Result<()> {
    for name in &ops.remove {
        req.remove_header(name);
    }
    for (name, value) in &ops.set {
        req.insert_header(name.clone(), value.clone())?;
    }
    Ok(())
}

/// Write a complete response that vigie generates itself (errors, `respond`, redirects).
/// `ops` are the route's response header operations, if a route was found. HEAD gets the
/// headers only.
pub async fn send(
    session: &mut Session,
    status: u16,
    content_type: &str,
    body: Bytes,
    extra: &[(&str, &str)],
    ops: Option<&HeaderOps>,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(4 + extra.len()))?;
    resp.insert_header(http::header::CONTENT_TYPE, content_type)?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    for (name, value) in extra {
        resp.insert_header(name.to_string(), *value)?;
    }
    request_id::echo(session, &mut resp)?;
    if let Some(ops) = ops {
        apply_response_ops(&mut resp, ops)?;
    }
    // vigie's own answers are small: never compressed.
    compress::off(session);
    let head = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head || body.is_empty())
        .await?;
    if !head && !body.is_empty() {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// A short plain-text error page for vigie's own errors, e.g. `502 Bad Gateway`.
pub fn error_body(status: u16, detail: &str) -> Bytes {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    if detail.is_empty() {
        Bytes::from(format!("{status} {reason}\n"))
    } else {
        Bytes::from(format!("{status} {reason}: {detail}\n"))
    }
}

/// Send one of vigie's own error responses: the custom page for its status from `pages` (the
/// site's, over the top-level ones: `plan::pages`), else a one-line text body with `detail`.
///
/// Only vigie's own errors go through here (no route, body too large, rate limited, upstream
/// failures...); `respond` routes and responses from upstreams are sent as they are, and the
/// status code is always kept. The caller passes the pages that apply: the request path
/// holds them (the snapshot's until the site is known, then the site's).
pub async fn send_error(
    session: &mut Session,
    pages: &ErrorPages,
    status: u16,
    detail: &str,
    ops: Option<&HeaderOps>,
) -> Result<()> {
    send_error_with(session, pages, status, detail, &[], ops).await
}

/// [`send_error`] with extra response headers (`Retry-After`, `Allow`...).
pub async fn send_error_with(
    session: &mut Session,
    pages: &ErrorPages,
    status: u16,
    detail: &str,
    extra: &[(&str, &str)],
    ops: Option<&HeaderOps>,
) -> Result<()> {
    match pages.get(status) {
        Some(page) => {
            let (ty, body) = (page.content_type.clone(), page.body.clone());
            send(session, status, &ty, body, extra, ops).await
        }
        None => {
            let body = error_body(status, detail);
            send(session, status, TEXT_PLAIN, body, extra, ops).await
        }
    }
}

/// The content type of vigie's own text answers.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::{is_host_name, strip_port};

    #[test]
    fn hosts_are_names_or_ip_literals() {
        for good in [
            "example.com",
            "a-b_c.example",
            "127.0.0.1",
            "[::1]",
            "[2001:db8::7]",
        ] {
            assert!(is_host_name(good), "{good}");
        }
        for bad in [
            "evil.example/x.a",
            "a\\b",
            "a?b",
            "a#b",
            "u@a",
            "[::1",
            "a b",
            "[x]",
        ] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:443"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }
}
