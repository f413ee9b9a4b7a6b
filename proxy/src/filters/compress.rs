//! Response compression: gzip and zstd on pingora's downstream compression module, brotli on
//! vigie's own module ([`super::brotli`]; pingora 0.9.1's brotli encoder never finishes its
//! stream).
//!
//! pingora's module compresses with the client's *first* listed encoding and its own type
//! list; vigie adds what an nginx user expects around it:
//! - [`negotiate`] (in `early_request_filter`, before the modules read the request) rewrites
//!   `Accept-Encoding` into the supported encodings the client accepts, best q-value first
//!   (ties: zstd, br, gzip — the cheapest per byte saved first), dropping `q=0`; the original
//!   header is restored upstream. When `br` comes first, pingora's module is off for the
//!   request and vigie's brotli module is on instead: exactly one of them may compress;
//! - [`for_route`] (in `request_filter`) sets the route's levels, or turns compression off;
//! - [`check_response`] (in `response_filter`, and before vigie writes a static file) turns
//!   it off for a response that is not in the type allow-list, is declared smaller than
//!   `min_size`, carries `Cache-Control: no-transform`, or is a range (206 / Content-Range).
//!
//! A response already encoded by the upstream is passed through untouched (neither module
//! decompresses here), and the compressing module adds `Vary: Accept-Encoding` and fixes the
//! framing (`Content-Length` dropped, chunked on HTTP/1.1). Responses without a body (HEAD,
//! 204, 304) are never encoded.

use http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::modules::http::compression::{ResponseCompression, ResponseCompressionBuilder};
use pingora::modules::http::HttpModules;
use pingora::protocols::http::compression::Algorithm;
use pingora::proxy::Session;
use vigie_config::Compression;

use super::brotli::{BrotliCompression, BrotliCompressionBuilder};

/// Encodings vigie produces, in its order of preference for equal q-values: zstd compresses
/// about as well as brotli at a fraction of the CPU, brotli better than gzip.
const SUPPORTED: [&str; 3] = ["zstd", "br", "gzip"];

/// Register the compression modules (pingora's and vigie's brotli), both off until
/// [`negotiate`] turns one on. For `ProxyHttp::init_downstream_modules`.
pub fn init_modules(modules: &mut HttpModules) {
    modules.add_module(ResponseCompressionBuilder::enable(0));
    modules.add_module(BrotliCompressionBuilder::module());
}

fn module(session: &mut Session) -> Option<&mut ResponseCompression> {
    session
        .downstream_modules_ctx
        .get_mut::<ResponseCompression>()
        .filter(|m| m.is_header_phase())
}

fn brotli(session: &mut Session) -> Option<&mut BrotliCompression> {
    session
        .downstream_modules_ctx
        .get_mut::<BrotliCompression>()
        .filter(|m| m.is_header_phase())
}

/// The supported encodings `accept` allows, best first; `None` when nothing to rewrite.
pub fn preferred(accept: &str) -> Vec<&'static str> {
    let mut star: Option<f32> = None;
    let mut listed: Vec<(&str, f32)> = Vec::new();
    for part in accept.split(',') {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or_default().trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for param in it {
            if let Some(v) = param
                .trim()
                .strip_prefix("q=")
                .or_else(|| param.trim().strip_prefix("Q="))
            {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        if coding == "*" {
            star = Some(q);
        } else if let Some(name) = SUPPORTED.iter().find(|n| **n == coding) {
            listed.push((name, q));
        }
    }
    let mut out: Vec<(usize, &'static str, f32)> = Vec::new();
    for (rank, name) in SUPPORTED.iter().enumerate() {
        let q = listed
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, q)| *q)
            .or(star)
            .unwrap_or(0.0);
        if q > 0.0 {
            out.push((rank, name, q));
        }
    }
    out.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    out.into_iter().map(|(_, n, _)| n).collect()
}

/// Rewrite `Accept-Encoding` for the compression module and switch the module that will
/// compress on: vigie's brotli module when `br` is the best encoding, otherwise pingora's (it
/// only reads the request when on). Returns the original header, to restore upstream.
pub fn negotiate(session: &mut Session) -> Option<HeaderValue> {
    let original = session.req_header().headers.get(ACCEPT_ENCODING).cloned();
    // Nothing to rewrite without the header; the modules stay at their defaults (they
    // compress nothing for a client that accepts no encoding).
    original.as_ref()?;
    let list = original
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .map(preferred)
        .unwrap_or_default();
    let rewritten = HeaderValue::from_str(&list.join(", ")).ok();
    match rewritten {
        Some(v) if !list.is_empty() => {
            let _ = session.req_header_mut().insert_header(ACCEPT_ENCODING, v);
        }
        _ => {
            session.req_header_mut().remove_header(&ACCEPT_ENCODING);
        }
    }
    let default = Compression::default();
    let br_first = list.first() == Some(&"br");
    if let Some(m) = module(session) {
        m.adjust_level(if br_first { 0 } else { default.level });
    }
    if let Some(b) = brotli(session) {
        b.set_level(if br_first { default.brotli_level } else { 0 });
    }
    original
}

/// Put the client's `Accept-Encoding` back on the request sent upstream.
pub fn restore(req: &mut pingora::http::RequestHeader, original: Option<&HeaderValue>) {
    match original {
        Some(v) => {
            let _ = req.insert_header(ACCEPT_ENCODING, v.clone());
        }
        None => {
            req.remove_header(&ACCEPT_ENCODING);
        }
    }
}

/// Apply the route's setting: its levels, or off. Whichever module [`negotiate`] chose stays
/// the only one on.
pub fn for_route(session: &mut Session, c: Option<&Compression>) {
    let br_chosen = brotli(session).is_some_and(|b| b.level() > 0);
    if let Some(b) = brotli(session) {
        b.set_level(match c {
            Some(c) if br_chosen => c.brotli_level,
            _ => 0,
        });
    }
    let Some(m) = module(session) else { return };
    m.adjust_level(0);
    if let (Some(c), false) = (c, br_chosen) {
        m.adjust_algorithm_level(Algorithm::Gzip, c.level);
        // zstd's 1-22: the same number is a comparable trade-off up to 9.
        m.adjust_algorithm_level(Algorithm::Zstd, c.level);
    }
}

/// Turn compression off.
pub fn off(session: &mut Session) {
    for_route(session, None);
}

/// Turn compression off for this response if it must not be compressed (module docs).
pub fn check_response(session: &mut Session, c: Option<&Compression>, resp: &ResponseHeader) {
    let Some(c) = c else {
        return off(session);
    };
    let h = &resp.headers;
    let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let eligible = text(CONTENT_TYPE).is_some_and(|ct| c.covers(ct))
        && text(CONTENT_LENGTH)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .is_none_or(|len| len >= c.min_size)
        && !text(CACHE_CONTROL).is_some_and(|cc| cc.to_ascii_lowercase().contains("no-transform"))
        && resp.status.as_u16() != 206
        && !h.contains_key(CONTENT_RANGE);
    if !eligible {
        off(session);
    }
}

#[cfg(test)]
mod tests {
    use super::preferred;

    #[test]
    fn q_values_order_and_exclude() {
        assert_eq!(preferred("gzip, deflate, br, zstd"), ["zstd", "br", "gzip"]);
        assert_eq!(preferred("gzip, deflate, br"), ["br", "gzip"]);
        assert_eq!(preferred("gzip;q=1.0, zstd;q=0.5"), ["gzip", "zstd"]);
        assert_eq!(preferred("br;q=0.5, gzip"), ["gzip", "br"]);
        assert_eq!(preferred("zstd;q=0, gzip"), ["gzip"]);
        assert_eq!(preferred("br"), ["br"]);
        assert_eq!(preferred("identity"), Vec::<&str>::new());
        assert_eq!(preferred("*;q=0.1, gzip;q=0"), ["zstd", "br"]);
        assert_eq!(preferred("GZIP"), ["gzip"]);
        assert_eq!(preferred(""), Vec::<&str>::new());
    }
}
