//! Response compression (gzip, zstd) on pingora's downstream compression module.
//!
//! pingora's module compresses with the client's *first* listed encoding and its own type
//! list; vigie adds what an nginx user expects around it:
//! - [`negotiate`] (in `early_request_filter`, before the module reads the request) rewrites
//!   `Accept-Encoding` into the supported encodings the client accepts, best q-value first
//!   (ties: zstd, gzip), dropping `q=0`; the original header is restored upstream;
//! - [`for_route`] (in `request_filter`) sets the route's level, or turns compression off;
//! - [`check_response`] (in `response_filter`, and before vigie writes a static file) turns
//!   it off for a response that is not in the type allow-list, is declared smaller than
//!   `min_size`, carries `Cache-Control: no-transform`, or is a range (206 / Content-Range).
//!
//! A response already encoded by the upstream is passed through untouched (the module never
//! decompresses here), and the module adds `Vary: Accept-Encoding` and fixes the framing
//! (`Content-Length` dropped) when it compresses.

use http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::modules::http::compression::ResponseCompression;
use pingora::protocols::http::compression::Algorithm;
use pingora::proxy::Session;
use vigie_config::Compression;

/// Encodings vigie produces, in its order of preference for equal q-values.
///
/// Not brotli: pingora 0.9.1's brotli encoder only flushes at the end of the body and never
/// writes the stream's last block, so conforming decoders reject its output. Brotli comes
/// back with an encoder of vigie's own.
const SUPPORTED: [(&str, Algorithm); 2] = [("zstd", Algorithm::Zstd), ("gzip", Algorithm::Gzip)];

fn module(session: &mut Session) -> Option<&mut ResponseCompression> {
    session
        .downstream_modules_ctx
        .get_mut::<ResponseCompression>()
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
        } else if let Some((name, _)) = SUPPORTED.iter().find(|(n, _)| *n == coding) {
            listed.push((name, q));
        }
    }
    let mut out: Vec<(usize, &'static str, f32)> = Vec::new();
    for (rank, (name, _)) in SUPPORTED.iter().enumerate() {
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

/// Rewrite `Accept-Encoding` for the compression module and switch the module on (it only
/// reads the request when on). Returns the original header, to restore upstream.
pub fn negotiate(session: &mut Session) -> Option<HeaderValue> {
    let original = session.req_header().headers.get(ACCEPT_ENCODING).cloned();
    let rewritten = original
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .map(|v| preferred(v).join(", "));
    match rewritten {
        Some(list) if !list.is_empty() => {
            if let Ok(v) = HeaderValue::from_str(&list) {
                session
                    .req_header_mut()
                    .insert_header(ACCEPT_ENCODING, v)
                    .ok()?;
            }
        }
        _ => {
            session.req_header_mut().remove_header(&ACCEPT_ENCODING);
        }
    }
    if let Some(m) = module(session) {
        m.adjust_level(Compression::default().level);
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

/// Apply the route's setting: its level, or off.
pub fn for_route(session: &mut Session, c: Option<&Compression>) {
    let Some(m) = module(session) else { return };
    match c {
        None => m.adjust_level(0),
        Some(c) => {
            m.adjust_level(0);
            m.adjust_algorithm_level(Algorithm::Gzip, c.level);
            // zstd's 1-22: the same number is a comparable trade-off up to 9.
            m.adjust_algorithm_level(Algorithm::Zstd, c.level);
        }
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
        assert_eq!(preferred("gzip, deflate, br, zstd"), ["zstd", "gzip"]);
        assert_eq!(preferred("gzip;q=1.0, zstd;q=0.5"), ["gzip", "zstd"]);
        assert_eq!(preferred("zstd;q=0, gzip"), ["gzip"]);
        assert_eq!(preferred("br"), Vec::<&str>::new());
        assert_eq!(preferred("identity"), Vec::<&str>::new());
        assert_eq!(preferred("*;q=0.1, gzip;q=0"), ["zstd"]);
        assert_eq!(preferred("GZIP"), ["gzip"]);
        assert_eq!(preferred(""), Vec::<&str>::new());
    }
}
