//! The validated configuration: pure data with structure, no strings where a type exists.
//!
//! Invariants once a [`Config`] exists (established by `validate`):
//! - every name a site or route refers to (upstream, limit zone, cache zone, header set) exists;
//! - no host name is claimed by two sites; every route's path starts with `/`;
//! - listener addresses do not overlap; every upstream has at least one server;
//! - route settings that inherit from their site (body limit, limit zone, headers) are already
//!   resolved, so the proxy reads one [`Route`] and never walks back to its [`Site`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// A whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listeners, state directory and process settings.
    pub server: Server,
    /// TLS policy shared by every HTTPS listener.
    pub tls: TlsPolicy,
    /// ACME account settings, when any site uses `tls = "acme"`.
    pub acme: Option<Acme>,
    /// Where the client address comes from.
    pub client_ip: ClientIp,
    /// Named rate-limit zones (`[limits.NAME]`).
    pub limits: BTreeMap<String, LimitZone>,
    /// Named cache zones (`[cache.NAME]`).
    pub caches: BTreeMap<String, CacheZone>,
    /// Named upstream groups (`[upstreams.NAME]`).
    pub upstreams: BTreeMap<String, Upstream>,
    /// Sites in file order.
    pub sites: Vec<Site>,
    /// Logging settings.
    pub log: Log,
    /// Custom pages for vigie's own error responses when no site is known (unknown host,
    /// malformed or oversized requests, header timeout), and the default of every site.
    pub error_pages: ErrorPages,
    /// Things that parse and validate but are not acted on yet, or look like mistakes.
    pub warnings: Vec<Warning>,
}

/// A note about a valid configuration: a key whose feature has not landed, or a likely mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line of the key the warning is about.
    pub line: usize,
    /// 1-based column of that key.
    pub col: usize,
    /// What the warning says.
    pub message: String,
}

/// A 1-based line and column in the configuration file, kept in the model for checks made
/// after validation (they report where the key they concern is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column (in characters), 0 when unknown.
    pub col: usize,
}

/// `[server]`: listeners and process settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Plain-HTTP listeners (`http = [...]`).
    pub http: Vec<SocketAddr>,
    /// TLS listeners (`https = [...]`).
    pub https: Vec<SocketAddr>,
    /// Admin listener (`/healthz`, later `/metrics`); `None` when `admin = false`.
    /// Default `127.0.0.1:9145`.
    pub admin: Option<SocketAddr>,
    /// Where ACME accounts, certificates and the disk cache live. Default `/var/lib/vigie`.
    pub state_dir: PathBuf,
    /// Worker threads per service. Default: the number of CPUs.
    pub threads: Option<usize>,
    /// Status answered when no site claims the request's Host (421 or 404). Default 421.
    pub unknown_host_status: u16,
    /// How long in-flight requests may take to finish on shutdown. Default 10s.
    pub grace_period: Duration,
    /// Bearer token the admin listener asks for on write operations (cache purge);
    /// `None`: those operations are refused.
    pub admin_token: Option<String>,
    /// Deadline for a client to send a whole request header (HTTP/1.x), counted from the
    /// connection's start for its first request and from the first byte for the next ones
    /// (nginx `client_header_timeout`). Default 60s.
    pub header_timeout: Duration,
    /// Longest wait for the next piece of a request body (per read, as nginx's
    /// `client_body_timeout`). Default 60s.
    pub body_timeout: Duration,
    /// Largest request header, request line included; larger ones get 431. Default 32 KiB.
    pub max_header_bytes: usize,
    /// Longest request target (path and query); longer ones get 414. Default 8 KiB.
    pub max_uri_bytes: usize,
    /// Request bodies up to this many bytes are read in full before an upstream is chosen (a
    /// slow client never holds an upstream connection); larger ones stream. `0` = off.
    /// Default 64 KiB, at most 64 KiB.
    pub request_buffer: u64,
}

/// Custom error pages by status code.
pub type ErrorPages = BTreeMap<u16, ErrorPage>;

/// A custom page for one of vigie's own error responses; the status code is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPage {
    /// The body: the file's contents (read when the configuration is loaded) or inline text.
    pub body: Vec<u8>,
    /// Its content type.
    pub content_type: String,
}

/// `[tls]`: protocol policy.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsPolicy {
    /// Lowest TLS version offered. Default 1.2.
    pub min_version: TlsVersion,
    /// Host name whose certificate is served to clients that send no SNI.
    pub default_name: Option<String>,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

/// `[acme]`: the ACME account and how challenges are answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Acme {
    /// Contact address given to the CA.
    pub email: Option<String>,
    /// Directory URL (Let's Encrypt production by default).
    pub directory: String,
    /// Challenge type used for names that are not wildcards.
    pub challenge: ChallengeKind,
    /// Extra PEM roots trusted when talking to the ACME server (a private CA such as Pebble).
    pub ca_roots: Option<PathBuf>,
    /// External Account Binding, for CAs that require it.
    pub eab: Option<Eab>,
    /// Command called for DNS-01 as `HOOK present|cleanup NAME VALUE`.
    pub dns_hook: Option<PathBuf>,
}

/// ACME challenge types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// HTTP-01 on the plain-HTTP listener.
    Http01,
    /// TLS-ALPN-01 on the TLS listener.
    TlsAlpn01,
    /// DNS-01 through `dns_hook`.
    Dns01,
}

/// External Account Binding credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eab {
    /// Key identifier given by the CA.
    pub kid: String,
    /// Base64url HMAC key given by the CA.
    pub hmac_key: String,
}

/// `[client_ip]`: trusting proxy headers.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientIp {
    /// Peers whose forwarding header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The header holding the forwarded chain. Default `X-Forwarded-For`.
    pub header: http::HeaderName,
}

/// `[limits.NAME]`: a per-client request rate limit (nginx `limit_req_zone` + `limit_req`).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitZone {
    /// Zone name.
    pub name: String,
    /// Sustained rate.
    pub rate: Rate,
    /// Requests allowed above the rate before rejection. Default 0.
    pub burst: u32,
    /// With a burst: pass the burst at once instead of pacing it. Default false.
    pub nodelay: bool,
    /// nginx's two-stage `delay=N`: the first N excess requests pass at once, the rest are paced.
    pub delay: Option<u32>,
    /// Most clients tracked at once (the memory bound). Default 100000.
    pub max_clients: usize,
    /// Status for rejected requests (429 or 503). Default 429.
    pub status: u16,
    /// Clients never limited.
    pub exempt: Vec<IpNet>,
    /// IPv6 clients are keyed by this prefix length. Default 64.
    pub ipv6_prefix: u8,
    /// Most concurrent connections per client (nginx `limit_conn`), if set.
    pub max_connections: Option<u32>,
}

/// A rate: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period.
    pub count: u32,
    /// The period (one second, minute or hour).
    pub per: Duration,
}

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

/// `[upstreams.NAME]`: a group of servers behind one name.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// Group name.
    pub name: String,
    /// Servers, each with a weight.
    pub servers: Vec<UpstreamServer>,
    /// How a server is picked.
    pub balance: Balance,
    /// Active health check, if any.
    pub health: Option<HealthCheck>,
    /// Failures (connect errors or timeouts) within `fail_timeout` that mark a server down
    /// passively for `fail_timeout` (nginx `max_fails`). Default 1; 0 turns it off.
    pub max_fails: u32,
    /// See `max_fails`. Default 10s.
    pub fail_timeout: Duration,
    /// Extra attempts on another server when connecting fails (idempotent requests, or any
    /// request whose body has not been sent). Default 1.
    pub retries: u32,
    /// TCP connect timeout. Default 5s.
    pub connect_timeout: Duration,
    /// Timeout between two reads from the server. Default 60s.
    pub read_timeout: Duration,
    /// Timeout between two writes to the server. Default 60s.
    pub write_timeout: Duration,
    /// Speak HTTP/2 in clear text (h2c) to the servers. Default false.
    pub h2c: bool,
}

/// One server of an upstream group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamServer {
    /// Where it listens: an address, or a host name resolved when the snapshot is built.
    pub addr: ServerAddr,
    /// Relative weight (>= 1). Default 1.
    pub weight: u32,
}

/// A server address as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddr {
    /// A literal IP and port.
    Ip(SocketAddr),
    /// A DNS name and port (e.g. a Docker service `backend:8080`).
    Name {
        /// The host name.
        host: String,
        /// The port.
        port: u16,
    },
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerAddr::Ip(a) => write!(f, "{a}"),
            ServerAddr::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Load-balancing algorithms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    /// Weighted round robin (weights default to 1, so plain round robin). Default.
    RoundRobin,
    /// Fewest requests in flight, ties broken by weight then round robin.
    LeastConn,
    /// Consistent hashing (ketama) on a key, so a key sticks to one server.
    Hash(HashKey),
    /// Two random servers, the one with fewer requests in flight wins.
    RandomTwo,
}

/// What consistent hashing hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The client address (after trusted-proxy resolution).
    ClientIp,
    /// A request header's value (falls back to the client address when absent).
    Header(http::HeaderName),
}

/// An active HTTP health check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// Path requested with GET; a 2xx/3xx answer is healthy.
    pub path: String,
    /// Time between two checks. Default 5s.
    pub interval: Duration,
    /// Timeout of one check. Default 2s.
    pub timeout: Duration,
    /// Consecutive successes that bring a server back. Default 2.
    pub rise: u32,
    /// Consecutive failures that take a server out. Default 3.
    pub fall: u32,
    /// Host header sent; default the server's address.
    pub host: Option<String>,
}

/// `[[sites]]`: a virtual host.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Names served, lower-case; exact names or `*.suffix` wildcards.
    pub names: Vec<HostPattern>,
    /// Where the certificate comes from; `None` for a plain-HTTP-only site.
    pub tls: Option<SiteTls>,
    /// Routes, sorted longest path prefix first.
    pub routes: Vec<Route>,
    /// Names answered with a redirect to their canonical twin (`redirect_www`): requested
    /// name -> canonical name, both lower-case exact names of this site.
    pub host_redirects: BTreeMap<String, String>,
    /// Custom error pages: the site's, over the top-level ones.
    pub error_pages: ErrorPages,
    /// Trailing-slash normalisation by redirect; `None` (the default): paths are left as sent.
    pub trailing_slash: Option<TrailingSlash>,
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
    pub path: String,
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

/// `[log]`: access and diagnostic logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    /// Diagnostic level filter (`info`, `vigie=debug`, ...); `RUST_LOG` wins. Default `info`.
    pub level: String,
    /// Access log destination; `None` = off. Default stdout.
    pub access: Option<LogTarget>,
    /// Access log line format.
    pub access_format: AccessFormat,
    /// Diagnostic logs as JSON lines instead of text. Default false.
    pub json: bool,
}

/// Where a log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

/// Access log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFormat {
    /// nginx's `combined`.
    Combined,
    /// One JSON object per line.
    Json,
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
