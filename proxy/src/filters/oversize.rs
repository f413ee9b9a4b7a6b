//! Request size limits on the parsed request: 414 for a request target longer than
//! `[server] max_uri_bytes`, 431 for a header larger than `max_header_bytes` or with more than
//! `MAX_FIELDS` fields (256, the most HTTP/1 accepts).
//!
//! Runs first in `request_filter`. For HTTP/1.x the connection's header guard
//! (`crate::header_guard`) has already refused such requests while reading them, before
//! they were buffered whole; this check is what applies to HTTP/2, whose headers arrive in
//! frames the guard does not parse. Sizes count as on the wire in HTTP/1.1: the request line,
//! then `name: value` and a line end per field.

use pingora::proxy::Session;
use pingora::Result;
use vigie_config::Server;

use crate::header_guard::MAX_FIELDS;
use crate::plan::pages::ErrorPages;

/// Refuse a request over the limits (see the module docs). `Ok(true)`: answered.
pub async fn refuse(session: &mut Session, pages: &ErrorPages, server: &Server) -> Result<bool> {
    let Some((status, detail)) = over_limits(session, server) else {
        return Ok(false);
    };
    session.set_keepalive(None);
    super::send_error(session, pages, status, detail, None).await?;
    Ok(true)
}

fn over_limits(session: &Session, server: &Server) -> Option<(u16, &'static str)> {
    let req = session.req_header();
    let target = req.raw_path().len();
    if target > server.max_uri_bytes {
        return Some((414, "the request target is too long"));
    }
    // HTTP/2 may split `Cookie` into one field per cookie (RFC 9113 §8.2.3): one field.
    let cookies = req.headers.get_all(http::header::COOKIE).iter().count();
    if req.headers.len() - cookies.saturating_sub(1) > MAX_FIELDS {
        return Some((431, "the request header has too many fields"));
    }
    // "METHOD TARGET HTTP/1.1\r\n", then "name: value\r\n" per field, then "\r\n".
    let line = req.method.as_str().len() + target + 11;
    let fields: usize = req
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if line + fields + 2 > server.max_header_bytes {
        return Some((431, "the request header is too large"));
    }
    None
}
