//! `[[sites]]` and `[[sites.routes]]`: host patterns, routes, what each does, caching and
//! compression on a route, header operations.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

/// `[cache.NAME]`: a cache zone.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheZone {
    /// Zone name.
    pub name: String,
    /// Memory bound in bytes.
    pub memory: u64,
    /// Optional disk tier: directory and bound in bytes.
    pub disk: Option<(PathBuf, u64)>,
    /// Where the `disk` key is in the file (0:0 without one): the directory is checked
    /// against the file system by the proxy, whose errors point there.
    pub disk_at: Position,
    /// Largest response body stored, in bytes; bigger ones pass uncached. Default: an eighth
    /// of the smallest tier bound.
    pub max_object: u64,
    /// How long concurrent misses on one key wait for the request that fetches it before
    /// going upstream themselves. Default 5s.
    pub lock_timeout: Duration,
}

/// Header operations applied to a request or a response, in order: remove, then set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderOps {
    /// Headers set (replacing any existing value).
    pub set: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Headers removed.
    pub remove: Vec<http::HeaderName>,
}

/// `[[sites]]`: a virtual host.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Names served, lower-case; exact names or `*.suffix` wildcards.
    pub names: Vec<HostPattern>,
    /// Where the certificate comes from; `None` for a plain-HTTP-only site.
    pub tls: Option<SiteTls>,
    /// Routes: exact and prefix routes longest path first, then regex routes in file order.
    pub routes: Vec<Route>,
    /// Names answered with a redirect to their canonical twin (`redirect_www`): requested
    /// name -> canonical name, both lower-case exact names of this site.
    pub host_redirects: BTreeMap<String, String>,
    /// Custom error pages: the site's, over the top-level ones.
    pub error_pages: ErrorPages,
    /// Trailing-slash normalisation by redirect; `None` (the default): paths are left as sent.
    pub trailing_slash: Option<TrailingSlash>,
    /// The ACME profile this site's certificate is ordered under (its own `profile`, else
    /// `[acme] profile`); `None`: the CA's default.
    pub acme_profile: Option<String>,
}

/// `trailing_slash` on a site: which form of a path is canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailingSlash {
    /// `/docs` is redirected to `/docs/` (paths whose last segment has no `.`).
    Add,
    /// `/docs/` is redirected to `/docs` (every path but `/`).
    Remove,
}

/// A host name pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostPattern {
    /// Exactly this name (lower-case, no trailing dot).
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (stored as `example.com`), one or
    /// more labels deep. Does not match `example.com` itself.
    Wildcard(String),
}

/// Where a site's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteTls {
    /// Issued and renewed through ACME.
    Acme,
    /// Issued by vigie's own local CA (for localhost and IP addresses).
    Internal,
    /// Read from PEM files (re-read on reload).
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
}

/// `[[sites.routes]]`: what a path prefix does. Inherited settings are already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Path prefix, starting with `/`. A prefix ending in `/` matches itself and below;
    /// one that does not (`/api/cv`) matches itself, itself + `/...`, and itself + `?` query.
    /// For an `exact` route the exact path, for a `regex` route the expression.
    pub path: String,
    /// How `path` matches (prefix, exact, regex).
    pub matching: PathMatch,
    /// Access rules by client address (route, else site); empty allows everyone.
    pub access: Vec<AccessRule>,
    /// HTTP Basic authentication (route, else site).
    pub basic_auth: Option<BasicAuth>,
    /// Rewrites, in order; the first that matches applies.
    pub rewrites: Vec<Rewrite>,
    /// What the route does.
    pub action: Action,
    /// Request body limit in bytes (route, else site). `None` = unlimited.
    pub max_body: Option<u64>,
    /// The route's own `request_buffer` (bytes, `0` = off); `None`: `[server]`'s.
    pub request_buffer: Option<u64>,
    /// Rate-limit zone name (route, else site), `None` when off.
    pub limit: Option<String>,
    /// Cache settings, for proxy routes.
    pub cache: Option<RouteCache>,
    /// Header operations on the request sent upstream (site's, then route's).
    pub request_headers: HeaderOps,
    /// Header operations on the response sent to the client (named sets, site's, then route's).
    pub response_headers: HeaderOps,
    /// Response compression (route, else site, else on with defaults for static files and
    /// off for the rest: see the README's BREACH note); `None` = off.
    pub compress: Option<Compression>,
    /// Upstream response headers hidden by default that this route passes to the client
    /// (`pass_headers`, route, else site; lower-case names from [`HIDDEN_UPSTREAM_HEADERS`]).
    pub pass_headers: Vec<String>,
}

/// Upstream response headers that name the backends' software, hidden from clients unless a
/// site or route lists them in `pass_headers` (like nginx's `proxy_pass_header`).
pub const HIDDEN_UPSTREAM_HEADERS: [&str; 2] = ["server", "x-powered-by"];

/// Response compression settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression {
    /// Compression level, 1 (fast) to 9 (small); applied to gzip and zstd. Default 5.
    pub level: u32,
    /// Brotli's own level, 1 (fast) to 11 (small): its scale differs from gzip's, and levels
    /// above 6 cost several times more CPU for a few percent. Default 5.
    pub brotli_level: u32,
    /// Responses whose declared length is below this are sent as they are. Default 256.
    pub min_size: u64,
    /// Content types compressed: exact types (`application/json`) or `type/*` prefixes.
    pub types: Vec<String>,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            level: 5,
            brotli_level: DEFAULT_BROTLI_LEVEL,
            min_size: 256,
            types: DEFAULT_COMPRESS_TYPES
                .iter()
                .map(|t| t.to_string())
                .collect(),
        }
    }
}

/// Brotli's default level: 5, between nginx-brotli's 6 and the 4 often used for on-the-fly
/// compression (`benches/RESULTS.md` has the measured trade-off).
pub const DEFAULT_BROTLI_LEVEL: u32 = 5;

/// Content types compressed by default: text, JSON, JavaScript, SVG, XML, wasm and friends.
pub const DEFAULT_COMPRESS_TYPES: &[&str] = &[
    "text/*",
    "application/json",
    "application/javascript",
    "application/x-javascript",
    "application/xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/xhtml+xml",
    "application/manifest+json",
    "application/ld+json",
    "application/problem+json",
    "application/wasm",
    "image/svg+xml",
    "font/ttf",
    "font/otf",
];

impl Compression {
    /// Whether a response of `content_type` (parameters ignored) is compressed.
    pub fn covers(&self, content_type: &str) -> bool {
        let ct = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        self.types.iter().any(|t| match t.strip_suffix("/*") {
            Some(major) => ct.strip_prefix(major).is_some_and(|r| r.starts_with('/')),
            None => *t == ct,
        })
    }
}

/// What a route does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Proxy to the named upstream group.
    Proxy {
        /// Upstream group name (exists).
        upstream: String,
        /// Remove the route's path prefix before proxying. Default false.
        strip_prefix: bool,
    },
    /// Answer with a redirect (nginx `return 301 URL`).
    Redirect {
        /// 301, 302, 303, 307 or 308.
        status: u16,
        /// Target; `$request_uri` (path and query) and `$host` are substituted.
        to: String,
    },
    /// Answer with a fixed response (nginx `return CODE TEXT`).
    Respond {
        /// Status code.
        status: u16,
        /// Body.
        body: String,
        /// Content type. Default `text/plain; charset=utf-8`.
        content_type: String,
    },
    /// Serve files from a directory.
    Static {
        /// Root directory; the path below the route prefix is looked up under it.
        root: PathBuf,
        /// File served for a directory. Default `index.html`.
        index: String,
        /// `try_files`; `None`: the path is looked up as it is, else 404.
        try_files: Option<TryFiles>,
    },
}

/// Caching on a proxy route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteCache {
    /// Cache zone name (exists).
    pub zone: String,
    /// How long responses of each status are kept when the upstream says nothing
    /// (`Cache-Control`, `Expires`); status 0 stands for `"any"`.
    pub valid: Vec<(u16, Duration)>,
    /// Request parts added to the key (scheme, host, path and query are always in it).
    pub key: Vec<RequestPart>,
    /// Request parts whose presence makes the request skip the cache (`BYPASS`).
    pub bypass: Vec<RequestPart>,
    /// Default window to serve a stale entry while it is refreshed in the background.
    pub stale_while_revalidate: Duration,
    /// Default window to serve a stale entry when the upstream fails or answers 5xx.
    pub stale_if_error: Duration,
    /// Store responses that carry `Set-Cookie` (default false: never).
    pub store_set_cookie: bool,
    /// Store responses to requests with `Authorization` (default false: only when the
    /// response says `public`, `s-maxage` or `must-revalidate`, as RFC 9111 allows).
    pub store_authorized: bool,
    /// Response header telling HIT, MISS...; `None` = off. Default `X-Cache-Status`.
    pub status_header: Option<http::HeaderName>,
}

/// A part of a request that a cache key or a bypass rule looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestPart {
    /// A request header (`header:NAME`).
    Header(http::HeaderName),
    /// A cookie (`cookie:NAME`).
    Cookie(String),
    /// A query parameter (`query:NAME`).
    Query(String),
}

impl HostPattern {
    /// Whether `host` (lower-case, no port) matches this pattern.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => name == host,
            HostPattern::Wildcard(suffix) => wildcard_matches(suffix, host),
        }
    }
}

/// `example.com`, or `*.example.com` for a wildcard: the name as written in `names`.
impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// Whether `host` is a subdomain of `suffix`, as `*.suffix` matches: one label or more
/// before it.
pub fn wildcard_matches(suffix: &str, host: &str) -> bool {
    host.strip_suffix(suffix)
        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

/// The IP a host pattern names, when it is an IP literal (for `tls = "internal"` defaults).
pub fn host_ip(pattern: &HostPattern) -> Option<IpAddr> {
    match pattern {
        HostPattern::Exact(name) => name.trim_matches(|c| c == '[' || c == ']').parse().ok(),
        HostPattern::Wildcard(_) => None,
    }
}
