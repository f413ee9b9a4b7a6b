//! Proxy caching of a route: when to use the cache, the key, what may be stored and for how
//! long, variants, and the `X-Cache-Status` header.
//!
//! The phases, in pingora's order:
//! - [`enable`] (`request_cache_filter`): GET and HEAD on a route with `cache`, unless a
//!   bypass rule matches or the request carries `Authorization` (and the route does not say
//!   `store_authorized`): those go upstream untouched, marked `BYPASS`;
//! - [`key`] (`cache_key_callback`): scheme + routed host + path and query, plus the route's
//!   `key` parts. The host is the one vigie routed on, so neither `X-Forwarded-Host`, the
//!   case of `Host` nor an absolute-form URI can file a response under another site's key;
//! - [`cacheable`] (`response_cache_filter`): RFC 9111 — `no-store`/`private` never,
//!   `Set-Cookie` only with `store_set_cookie`, freshness from `s-maxage`, `max-age`,
//!   `Expires`, else the route's `valid` table; `no-cache` is stored but always revalidated;
//! - [`variance`] (`cache_vary_filter`): one entry per value of the headers `Vary` names.
//!
//! Cached routes fetch the identity encoding upstream (`Accept-Encoding` is dropped), so one
//! stored copy serves every client and the compression module encodes it per client on the
//! way out.

use std::time::{Duration, SystemTime};

use http::header::{ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, COOKIE, SET_COOKIE, VARY};
use pingora::cache::cache_control::{CacheControl, Cacheable, InterpretCacheControl};
use pingora::cache::filters::calculate_fresh_until;
use pingora::cache::key::HashBinary;
use pingora::cache::{
    CacheKey, CacheMeta, CacheMetaDefaults, CachePhase, NoCacheReason, RespCacheable,
    VarianceBuilder,
};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use vigie_config::{RequestPart, RouteCache};

use crate::cache::Zone;
use crate::filters::forwarded;

/// Whether and how a request uses the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Use {
    /// The route does not cache (or the method is not cacheable).
    #[default]
    Off,
    /// The route caches but this request skips it.
    Bypass,
    /// The cache is on for this request.
    On,
}

/// No default freshness: the route's `valid` table is applied by [`cacheable`] itself.
const NO_DEFAULTS: CacheMetaDefaults = CacheMetaDefaults::new(|_| None, 0, 0);

/// Statuses RFC 9111 lets a cache store on the origin's explicit freshness alone.
const HEURISTIC: [u16; 11] = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// In `request_cache_filter`: turn the cache on for this request when the route caches it.
pub fn enable(session: &mut Session, rc: &RouteCache, zone: &Zone) -> Use {
    let req = session.req_header();
    if req.method != http::Method::GET && req.method != http::Method::HEAD {
        return Use::Off;
    }
    let authorized = req.headers.contains_key(AUTHORIZATION) && !rc.store_authorized;
    if authorized || rc.bypass.iter().any(|p| part_value(req, p).is_some()) {
        return Use::Bypass;
    }
    zone.enable(&mut session.cache);
    Use::On
}

/// In `cache_key_callback`: the key for this request on a route with `rc`, tagged with the
/// route's `zone` (pingora's storage calls for the key reach that zone).
pub fn key(session: &Session, host: &str, rc: &RouteCache, zone: &Zone) -> CacheKey {
    let mut key = key_for(session.req_header(), forwarded::is_tls(session), host, rc);
    zone.tag(&mut key);
    key
}

/// The key of [`key`], from the request header alone: `tls` says whether the request came
/// over TLS (the scheme in the key), `host` is the host vigie routed on. Separate from the
/// session so it can be measured and tested without a connection.
pub fn key_for(req: &RequestHeader, tls: bool, host: &str, rc: &RouteCache) -> CacheKey {
    let scheme = if tls { "https" } else { "http" };
    let pq = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut primary = format!("{scheme}://{host}{pq}");
    for part in &rc.key {
        // A newline never occurs in a URI or a header value: the parts cannot run together.
        primary.push('\n');
        primary.push_str(&part_name(part));
        primary.push('=');
        if let Some(v) = part_value(req, part) {
            primary.push_str(&String::from_utf8_lossy(&v));
        }
    }
    CacheKey::new(primary, "")
}

fn part_name(p: &RequestPart) -> String {
    match p {
        RequestPart::Header(h) => format!("header:{h}"),
        RequestPart::Cookie(c) => format!("cookie:{c}"),
        RequestPart::Query(q) => format!("query:{q}"),
    }
}

/// The value of a request part, `None` when absent.
fn part_value(req: &RequestHeader, p: &RequestPart) -> Option<Vec<u8>> {
    match p {
        RequestPart::Header(h) => {
            let values: Vec<&[u8]> = req
                .headers
                .get_all(h)
                .iter()
                .map(|v| v.as_bytes())
                .collect();
            (!values.is_empty()).then(|| values.join(&b","[..]))
        }
        RequestPart::Cookie(name) => req
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_bytes().to_vec()),
        RequestPart::Query(name) => req.uri.query().and_then(|q| {
            q.split('&')
                .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_bytes().to_vec())
        }),
    }
}

/// In `response_cache_filter`: whether to store `resp`, and its freshness.
pub fn cacheable(resp: &ResponseHeader, authorized: bool, rc: &RouteCache) -> RespCacheable {
    let no = |why: &'static str| RespCacheable::Uncacheable(NoCacheReason::Custom(why));
    if resp.headers.contains_key(SET_COOKIE) && !rc.store_set_cookie {
        return no("Set-Cookie");
    }
    if resp
        .headers
        .get(CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        // The upstream encoded although it was asked for identity: not one copy for all.
        return no("Content-Encoding");
    }
    if vary_names(resp).any(|n| n == "*") {
        return no("Vary: *");
    }
    let cc = CacheControl::from_resp_headers(resp);
    if cc
        .as_ref()
        .is_some_and(|c| c.is_cacheable() == Cacheable::No)
    {
        return RespCacheable::Uncacheable(NoCacheReason::OriginNotCache);
    }
    if authorized
        && !cc
            .as_ref()
            .is_some_and(|c| c.allow_caching_authorized_req())
    {
        return no("Authorization");
    }
    let now = SystemTime::now();
    let status = resp.status.as_u16();
    let listed = rc
        .valid
        .iter()
        .find(|(s, _)| *s == status)
        .or_else(|| rc.valid.iter().find(|(s, _)| *s == 0))
        .map(|(_, d)| *d);
    let explicit = if HEURISTIC.contains(&status) || listed.is_some() {
        calculate_fresh_until(now, cc.as_ref(), resp, false, &NO_DEFAULTS)
    } else {
        None
    };
    let Some(fresh_until) = explicit.or_else(|| listed.and_then(|d| fresh_from(now, d))) else {
        return RespCacheable::Uncacheable(NoCacheReason::OriginNotCache);
    };
    let secs = |d: Option<Duration>, default: Duration| {
        u32::try_from(d.unwrap_or(default).as_secs()).unwrap_or(u32::MAX)
    };
    let swr = secs(
        cc.as_ref()
            .and_then(|c| c.serve_stale_while_revalidate_duration()),
        rc.stale_while_revalidate,
    );
    let sie = secs(
        cc.as_ref().and_then(|c| c.serve_stale_if_error_duration()),
        rc.stale_if_error,
    );
    let mut stored = resp.clone();
    if let Some(c) = &cc {
        c.strip_private_headers(&mut stored);
    }
    RespCacheable::Cacheable(CacheMeta::new(fresh_until, now, swr, sie, stored))
}

fn fresh_from(now: SystemTime, d: Duration) -> Option<SystemTime> {
    if d.is_zero() {
        None
    } else {
        now.checked_add(d)
    }
}

fn vary_names(resp: &ResponseHeader) -> impl Iterator<Item = String> + '_ {
    resp.headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
}

/// In `cache_vary_filter`: the variant of `meta` this request wants, from the headers the
/// stored response's `Vary` names. `Accept-Encoding` is left out: the stored copy is always
/// the identity encoding, and encoding happens per client on the way out.
pub fn variance(meta: &CacheMeta, req: &RequestHeader) -> Option<HashBinary> {
    let mut names: Vec<String> = vary_names(meta.response_header())
        .filter(|n| n != ACCEPT_ENCODING.as_str())
        .collect();
    names.sort();
    names.dedup();
    let mut v = VarianceBuilder::new();
    for name in names {
        let value: Vec<u8> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .flat_map(|x| x.as_bytes().iter().copied().chain(std::iter::once(b',')))
            .collect();
        v.add_owned_name_value(name, value);
    }
    v.finalize()
}

/// What `X-Cache-Status` says for this request.
pub fn status(session: &Session, used: Use) -> Option<&'static str> {
    Some(match used {
        Use::Off => return None,
        Use::Bypass => "BYPASS",
        Use::On => match session.cache.phase() {
            CachePhase::Hit => "HIT",
            CachePhase::Stale => "STALE",
            CachePhase::StaleUpdating => "UPDATING",
            CachePhase::Expired => "EXPIRED",
            CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => "REVALIDATED",
            _ => "MISS",
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rc(valid: &[(u16, u64)]) -> RouteCache {
        RouteCache {
            zone: "z".into(),
            valid: valid
                .iter()
                .map(|(s, d)| (*s, Duration::from_secs(*d)))
                .collect(),
            key: vec![],
            bypass: vec![],
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::from_secs(60),
            store_set_cookie: false,
            store_authorized: false,
            status_header: None,
        }
    }

    fn resp(status: u16, headers: &[(&str, &str)]) -> ResponseHeader {
        let mut r = ResponseHeader::build(status, None).unwrap();
        for (n, v) in headers {
            r.append_header(n.to_string(), *v).unwrap();
        }
        r
    }

    fn fresh_secs(r: RespCacheable) -> Option<u64> {
        match r {
            RespCacheable::Cacheable(m) => Some(m.fresh_sec()),
            RespCacheable::Uncacheable(_) => None,
        }
    }

    #[test]
    fn key_has_scheme_host_path_and_parts() {
        let mut req = RequestHeader::build("GET", b"/api/cv?page=2&sort=date", None).unwrap();
        req.append_header("host", "EXAMPLE.com").unwrap();
        req.append_header("accept-language", "fr").unwrap();
        req.append_header("accept-language", "en").unwrap();
        req.append_header("cookie", "a=1; lang=de").unwrap();
        let mut route = rc(&[]);
        let plain = key_for(&req, true, "example.com", &route);
        assert_eq!(
            plain.primary_key_str(),
            Some("https://example.com/api/cv?page=2&sort=date")
        );
        route.key = vec![
            RequestPart::Header(http::header::ACCEPT_LANGUAGE),
            RequestPart::Cookie("lang".into()),
            RequestPart::Query("page".into()),
            RequestPart::Query("absent".into()),
        ];
        let parts = key_for(&req, false, "example.com", &route);
        assert_eq!(
            parts.primary_key_str(),
            Some(
                "http://example.com/api/cv?page=2&sort=date\nheader:accept-language=fr,en\n\
                 cookie:lang=de\nquery:page=2\nquery:absent="
            )
        );
    }

    #[test]
    fn freshness_rules() {
        let route = rc(&[(200, 300)]);
        assert_eq!(
            fresh_secs(cacheable(&resp(200, &[]), false, &route)),
            Some(300)
        );
        // Unlisted status without explicit freshness: not stored.
        assert_eq!(fresh_secs(cacheable(&resp(404, &[]), false, &route)), None);
        // Explicit freshness wins, and makes 404 storable.
        let cc60 = [("cache-control", "max-age=60")];
        assert_eq!(
            fresh_secs(cacheable(&resp(404, &cc60), false, &route)),
            Some(60)
        );
        let sm = [("cache-control", "max-age=60, s-maxage=10")];
        assert_eq!(
            fresh_secs(cacheable(&resp(200, &sm), false, &route)),
            Some(10)
        );
        for never in ["no-store", "private", "private, max-age=60"] {
            let h = [("cache-control", never)];
            assert_eq!(
                fresh_secs(cacheable(&resp(200, &h), false, &route)),
                None,
                "{never}"
            );
        }
        let h = [("set-cookie", "a=b")];
        assert_eq!(fresh_secs(cacheable(&resp(200, &h), false, &route)), None);
        assert_eq!(fresh_secs(cacheable(&resp(200, &[]), true, &route)), None);
        let public = [("cache-control", "public, max-age=5")];
        assert_eq!(
            fresh_secs(cacheable(&resp(200, &public), true, &route)),
            Some(5)
        );
        let vary = [("vary", "Accept-Language, *")];
        assert_eq!(
            fresh_secs(cacheable(&resp(200, &vary), false, &route)),
            None
        );
        let any = rc(&[(0, 7)]);
        assert_eq!(fresh_secs(cacheable(&resp(500, &[]), false, &any)), Some(7));
    }
}
