//! Routing, in one place: the site by host (exact names first, then the longest matching
//! wildcard) and the route by path (nginx-style prefixes, longest first). The service, the
//! benches and the tests all route through here; the path they route by comes from
//! [`super::paths::normalize_path`].

use std::collections::HashMap;

use vigie_config::{wildcard_matches, HostPattern, Site};

/// The sites' names, ready to find the site serving a host.
#[derive(Debug, Default)]
pub struct HostIndex {
    exact: HashMap<String, usize>,
    /// Wildcard suffixes, longest first, with their site index.
    wildcards: Vec<(String, usize)>,
}

impl HostIndex {
    /// The index of `sites`' names (validation guarantees no name is served twice).
    pub fn build(sites: &[Site]) -> HostIndex {
        let mut index = HostIndex::default();
        for (i, site) in sites.iter().enumerate() {
            for name in &site.names {
                match name {
                    HostPattern::Exact(n) => {
                        index.exact.insert(n.clone(), i);
                    }
                    HostPattern::Wildcard(suffix) => index.wildcards.push((suffix.clone(), i)),
                }
            }
        }
        index
            .wildcards
            .sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        index
    }

    /// The index of the site serving `host` (lower-case, without port): an exact name first,
    /// then the longest matching wildcard.
    pub fn find(&self, host: &str) -> Option<usize> {
        if let Some(i) = self.exact.get(host) {
            return Some(*i);
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| wildcard_matches(suffix, host))
            .map(|(_, i)| *i)
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

/// The route for a normalised `path` among `routes` (sorted longest prefix first, as
/// validation leaves them): the first whose prefix matches.
pub fn route_for<'a, R>(routes: &'a [R], path: &str, prefix: impl Fn(&R) -> &str) -> Option<&'a R> {
    routes.iter().find(|r| prefix_matches(prefix(r), path))
}

/// The path below a route's prefix, as a static route looks it up under its root
/// (`/static/` + `/static/a.css` -> `/a.css`).
pub fn below_prefix<'a>(prefix: &str, path: &'a str) -> &'a str {
    path.strip_prefix(prefix.trim_end_matches('/'))
        .unwrap_or(path)
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
    fn longest_prefix_first_wins() {
        let routes = ["/api/cv", "/api/", "/"];
        let pick = |p: &str| *route_for(&routes, p, |r| r).unwrap();
        assert_eq!(pick("/api/cv/2"), "/api/cv");
        assert_eq!(pick("/api/x"), "/api/");
        assert_eq!(pick("/api"), "/");
        assert!(route_for(&routes[..2], "/other", |r| r).is_none());
        assert_eq!(below_prefix("/static/", "/static/a.css"), "/a.css");
        assert_eq!(below_prefix("/", "/a.css"), "/a.css");
    }

    #[test]
    fn exact_names_before_the_longest_wildcard() {
        let text = r#"
[server]
admin = false
[[sites]]
names = ["*.example.com"]
  [[sites.routes]]
  path = "/"
  respond = {}
[[sites]]
names = ["*.api.example.com", "www.api.example.com"]
  [[sites.routes]]
  path = "/"
  respond = {}
"#;
        let config = vigie_config::parse(text, "t.toml").unwrap();
        let index = HostIndex::build(&config.sites);
        assert_eq!(index.find("a.example.com"), Some(0));
        assert_eq!(index.find("v1.api.example.com"), Some(1));
        assert_eq!(index.find("www.api.example.com"), Some(1));
        assert_eq!(index.find("example.com"), None);
        assert_eq!(index.find("other.test"), None);
    }
}
