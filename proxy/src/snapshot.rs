//! The runtime snapshot: everything the request path reads, built from one validated config.
//!
//! A snapshot is immutable. Reload builds a new one and swaps it in whole through
//! [`SnapshotHandle`]; a request takes the current snapshot once in `new_ctx` and reads only
//! that one until it ends, so a reload never changes a request half-way.
//!
//! Upstream groups whose definition did not change are carried over from the previous
//! snapshot (same `Arc`), keeping their health and in-flight state.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use vigie_acme::{CertError, CertTable};
use vigie_config::{Config, HostPattern, Route};

use crate::cache::Zone as CacheZone;
use crate::filters::error_pages::ErrorPages;
use crate::limits::Zone;
use crate::upstream::{UpstreamError, UpstreamGroup};

/// The shared, swappable handle to the current snapshot.
pub type SnapshotHandle = Arc<ArcSwap<Snapshot>>;

/// A site ready for routing.
#[derive(Debug)]
pub struct SiteRuntime {
    /// Index of the site in the config (for logs and metrics).
    pub index: usize,
    /// Label for logs and metrics: the site's first name.
    pub label: String,
    /// Routes, longest prefix first.
    pub routes: Vec<Route>,
    /// Whether the site has a certificate (plain-HTTP requests to it are redirected to HTTPS).
    pub tls: bool,
    /// Names redirected to their canonical twin (`redirect_www`).
    pub host_redirects: BTreeMap<String, String>,
    /// Custom error pages (the site's over the top-level ones).
    pub error_pages: Arc<ErrorPages>,
    /// Trailing-slash normalisation, when the site asks for it.
    pub trailing_slash: Option<vigie_config::TrailingSlash>,
}

/// Everything a request needs, frozen at build time.
#[derive(Debug)]
pub struct Snapshot {
    /// The validated config this was built from.
    pub config: Arc<Config>,
    /// When it was built.
    pub loaded_at: SystemTime,
    sites: Vec<SiteRuntime>,
    exact: HashMap<String, usize>,
    /// Wildcard suffixes, longest first, with their site index.
    wildcards: Vec<(String, usize)>,
    /// Upstream groups by name.
    pub upstreams: BTreeMap<String, Arc<UpstreamGroup>>,
    /// Certificates from files and the local CA, for the TLS resolver.
    pub certs: CertTable,
    /// Port of the first HTTPS listener, for redirects from HTTP.
    pub https_port: Option<u16>,
    /// Rate-limit zones by name.
    pub limits: HashMap<String, Arc<Zone>>,
    /// Per-client connection cap: the smallest `max_connections` of the zones.
    pub connection_cap: Option<u32>,
    /// Cache zones by name.
    pub caches: HashMap<String, Arc<CacheZone>>,
    /// Top-level custom error pages, for errors before a site is known.
    pub error_pages: Arc<ErrorPages>,
}

/// Why a snapshot could not be built from a valid config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An upstream group could not be built.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A certificate or key could not be loaded or issued.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// A cache zone's disk directory could not be used.
    #[error(transparent)]
    Cache(#[from] crate::cache::ZoneError),
}

impl Snapshot {
    /// Build a snapshot, reusing `previous`'s upstream groups whose definition is unchanged.
    pub fn build(config: Config, previous: Option<&Snapshot>) -> Result<Snapshot, BuildError> {
        let mut upstreams = BTreeMap::new();
        for (name, cfg) in &config.upstreams {
            let kept = previous
                .and_then(|p| p.upstreams.get(name))
                .filter(|g| g.config == *cfg)
                .cloned();
            let group = match kept {
                Some(g) => g,
                None => Arc::new(UpstreamGroup::build(cfg)?),
            };
            upstreams.insert(name.clone(), group);
        }
        let mut sites = Vec::new();
        let mut exact = HashMap::new();
        let mut wildcards = Vec::new();
        for (index, site) in config.sites.iter().enumerate() {
            for name in &site.names {
                match name {
                    HostPattern::Exact(n) => {
                        exact.insert(n.clone(), index);
                    }
                    HostPattern::Wildcard(suffix) => wildcards.push((suffix.clone(), index)),
                }
            }
            let label = site
                .names
                .first()
                .map_or_else(|| format!("site{index}"), ToString::to_string);
            sites.push(SiteRuntime {
                index,
                label,
                routes: site.routes.clone(),
                tls: site.tls.is_some(),
                host_redirects: site.host_redirects.clone(),
                trailing_slash: site.trailing_slash,
                error_pages: ErrorPages::build(&site.error_pages),
            });
        }
        wildcards.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        let certs = crate::tls::configured_table(&config)?;
        let https_port = config.server.https.first().map(|a| a.port());
        let limits = crate::limits::build_zones(&config.limits, previous.map(|p| &p.limits));
        let connection_cap = config
            .limits
            .values()
            .filter_map(|z| z.max_connections)
            .min();
        let caches = crate::cache::build_zones(&config.caches, previous.map(|p| &p.caches))?;
        Ok(Snapshot {
            caches,
            error_pages: ErrorPages::build(&config.error_pages),
            limits,
            connection_cap,
            certs,
            https_port,
            config: Arc::new(config),
            loaded_at: SystemTime::now(),
            sites,
            exact,
            wildcards,
            upstreams,
        })
    }

    /// The site serving `host` (lower-case, without port), if any: exact names first, then
    /// the longest matching wildcard.
    pub fn site_for(&self, host: &str) -> Option<&SiteRuntime> {
        if let Some(i) = self.exact.get(host) {
            return self.sites.get(*i);
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| vigie_config::wildcard_matches(suffix, host))
            .and_then(|(_, i)| self.sites.get(*i))
    }

    /// Whether `ip` escapes the connection cap: a trusted proxy, or exempt in a zone.
    pub fn connection_cap_exempt(&self, ip: std::net::IpAddr) -> bool {
        crate::filters::client_ip::is_trusted(&self.config.client_ip, ip)
            || self.limits.values().any(|z| z.exempt(ip))
    }

    /// All sites, in config order.
    pub fn sites(&self) -> &[SiteRuntime] {
        &self.sites
    }
}

/// Whether a route prefix matches a (normalised) request path. A prefix ending in `/`
/// matches everything below it; any other prefix matches itself and what is below `prefix/`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl SiteRuntime {
    /// The route for a normalised path: the longest matching prefix.
    pub fn route_for(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| prefix_matches(&r.path, path))
    }
}

/// Normalise a request path for routing: resolve `.` and `..` segments (also percent-encoded),
/// merge repeated slashes. Returns `None` when `..` would climb above the root.
///
/// Runs on every request: a path with nothing to resolve (no empty segment, none starting
/// with `.` or `%2e`) is returned as it is, with one allocation.
pub fn normalize_path(path: &str) -> Option<String> {
    let plain = path.starts_with('/')
        && !path.contains("//")
        && !path.contains("/.")
        && !path
            .as_bytes()
            .windows(4)
            .any(|w| w[0] == b'/' && w[1..].eq_ignore_ascii_case(b"%2e"));
    if plain {
        return Some(path.to_owned());
    }
    let mut out: Vec<&str> = Vec::new();
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    for seg in path.split('/') {
        match dots(seg) {
            Some(0 | 1) => {}
            Some(2) => {
                out.pop()?;
            }
            _ => out.push(seg),
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() || (trailing && !s.ends_with('/')) {
        s.push('/');
    }
    Some(s)
}

/// How many dots a segment made only of dots (`.` or `%2e`, any case) holds; `None` for any
/// other segment.
fn dots(seg: &str) -> Option<usize> {
    let mut rest = seg.as_bytes();
    let mut n = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return None;
        }
        n += 1;
    }
    Some(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(prefix_matches("/", "/anything"));
        assert!(prefix_matches("/api/", "/api/x"));
        assert!(!prefix_matches("/api/", "/api"));
        assert!(prefix_matches("/api/cv", "/api/cv"));
        assert!(prefix_matches("/api/cv", "/api/cv/1"));
        assert!(!prefix_matches("/api/cv", "/api/cvx"));
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize_path("/a/./b//c").unwrap(), "/a/b/c");
        assert_eq!(normalize_path("/a/../b/").unwrap(), "/b/");
        assert_eq!(normalize_path("/static/%2e%2e/api/x").unwrap(), "/api/x");
        assert_eq!(normalize_path("/").unwrap(), "/");
        assert_eq!(normalize_path("/a/..").unwrap(), "/");
        assert!(normalize_path("/../etc/passwd").is_none());
        assert!(normalize_path("/%2E%2e/etc/passwd").is_none());
        assert_eq!(normalize_path("/a/.%2E/b").unwrap(), "/b");
        assert_eq!(normalize_path("/a/...").unwrap(), "/a/...");
        assert_eq!(normalize_path("/a.b/c%2ed/").unwrap(), "/a.b/c%2ed/");
        assert_eq!(normalize_path("/.well-known/x").unwrap(), "/.well-known/x");
        assert_eq!(normalize_path("a/b").unwrap(), "/a/b");
        assert_eq!(normalize_path("").unwrap(), "/");
    }

    /// The shortcut for paths with nothing to resolve gives what resolving gives.
    #[test]
    fn plain_paths_are_kept_as_resolving_would() {
        let segs = [
            "a", "", ".", "..", "%2e", "%2E%2e", ".x", "x.", "b%2ec", "...",
        ];
        for a in segs {
            for b in segs {
                for c in segs {
                    for end in ["", "/"] {
                        let path = format!("/{a}/{b}/{c}{end}");
                        let got = normalize_path(&path);
                        // The reference: the same rules, segment by segment, no shortcut.
                        let mut out: Vec<&str> = Vec::new();
                        let mut ok = true;
                        for seg in path.split('/') {
                            match seg.to_ascii_lowercase().replace("%2e", ".").as_str() {
                                "" | "." => {}
                                ".." => ok &= out.pop().is_some(),
                                _ => out.push(seg),
                            }
                        }
                        let trailing =
                            path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
                        let mut want = out.iter().map(|s| format!("/{s}")).collect::<String>();
                        if want.is_empty() || (trailing && !want.ends_with('/')) {
                            want.push('/');
                        }
                        assert_eq!(got, ok.then_some(want), "{path}");
                    }
                }
            }
        }
    }
}
