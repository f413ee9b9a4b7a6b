//! Forwarding headers on the request sent upstream; runs in `upstream_request_filter`.
//!
//! Sets `X-Forwarded-For` (the trusted chain plus the peer, or only the peer when the peer is
//! not trusted, so a client cannot plant addresses), `X-Real-IP` (the resolved client),
//! `X-Forwarded-Proto` and `X-Forwarded-Host`. `Host` is kept as the client sent it.
//! Hop-by-hop headers are removed by pingora's standard upstream request policy.
//!
//! On the way back ([`hide_upstream_headers`], in `response_filter`), the upstream's
//! `Server` and `X-Powered-By` are removed unless the route passes them (`pass_headers`), as
//! nginx hides `Server` unless `proxy_pass_header Server`: they name the backends' software.

use std::net::IpAddr;

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;
use vigie_config::ClientIp;

use super::client_ip::{is_trusted, peer_ip};

/// Whether the downstream connection is TLS.
pub fn is_tls(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

/// Set the forwarding headers on `req` (see the module docs).
pub fn set(
    session: &Session,
    req: &mut RequestHeader,
    cfg: &ClientIp,
    client: Option<IpAddr>,
    host: Option<&str>,
) -> Result<()> {
    let peer = peer_ip(session);
    let trusted = peer.is_some_and(|p| is_trusted(cfg, p));
    let xff = http::header::HeaderName::from_static("x-forwarded-for");
    // The peer's text, made once: it is the whole chain and the client too, most of the time.
    let peer_text = peer.map(ip_text);
    if let (Some(peer), Some(peer_text)) = (peer, &peer_text) {
        let chain = if trusted {
            let prior: Vec<&str> = req
                .headers
                .get_all(&xff)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if prior.is_empty() {
                peer_text.clone()
            } else {
                format!("{}, {peer}", prior.join(", "))
            }
        } else {
            peer_text.clone()
        };
        req.insert_header(xff, chain)?;
    }
    if let Some(client) = client {
        let text = match peer_text {
            Some(t) if peer == Some(client) => t,
            _ => ip_text(client),
        };
        req.insert_header("x-real-ip", text)?;
    }
    let proto_from_proxy = trusted && req.headers.contains_key("x-forwarded-proto");
    if !proto_from_proxy {
        let proto = if is_tls(session) { "https" } else { "http" };
        req.insert_header("x-forwarded-proto", proto)?;
    }
    let host_from_proxy = trusted && req.headers.contains_key("x-forwarded-host");
    if !host_from_proxy {
        match host {
            Some(h) => req.insert_header("x-forwarded-host", h)?,
            None => {
                req.remove_header("x-forwarded-host");
            }
        }
    }
    Ok(())
}

/// Remove the upstream headers that name its software
/// ([`vigie_config::HIDDEN_UPSTREAM_HEADERS`]) except those in `pass` (the route's
/// `pass_headers`). Runs before the route's own response header operations, so a route can
/// still set a `Server` of its choosing.
pub fn hide_upstream_headers(resp: &mut ResponseHeader, pass: Option<&[String]>) {
    let pass = pass.unwrap_or_default();
    for name in vigie_config::HIDDEN_UPSTREAM_HEADERS {
        if !pass.iter().any(|p| p == name) {
            resp.remove_header(name);
        }
    }
}

/// An address as text, IPv4 without going through `fmt` (this runs on every request).
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut out = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

/// Remove a route prefix from the request path (`strip_prefix = true`), keeping the query.
pub fn strip_prefix(req: &mut RequestHeader, prefix: &str) -> Result<()> {
    let path = req.uri.path();
    let Some(rest) = path.strip_prefix(prefix.trim_end_matches('/')) else {
        return Ok(());
    };
    let mut new = if rest.starts_with('/') {
        rest.to_string()
    } else {
        format!("/{rest}")
    };
    if let Some(q) = req.uri.query() {
        new.push('?');
        new.push_str(q);
    }
    // Keep the scheme and authority an HTTP/2 request carries: an HTTP/2 upstream needs them
    // (there is no Host header to fall back on).
    let mut builder = http::Uri::builder();
    if let (Some(scheme), Some(authority)) = (req.uri.scheme(), req.uri.authority()) {
        builder = builder.scheme(scheme.clone()).authority(authority.clone());
    }
    let uri = builder.path_and_query(new).build().map_err(|e| {
        pingora::Error::because(pingora::ErrorType::InvalidHTTPHeader, "strip_prefix", e)
    })?;
    req.set_uri(uri);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    #[test]
    fn ip_text_is_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "192.168.1.9",
            "::1",
            "2001:db8::7",
        ] {
            let addr: std::net::IpAddr = ip.parse().expect("address");
            assert_eq!(super::ip_text(addr), addr.to_string());
        }
    }
}
