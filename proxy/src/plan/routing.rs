//! Routing, in one place: the site by host (exact names first, then the longest matching
//! wildcard) and the route by path, in nginx's `location` order (exact, then the longest
//! prefix when it has `no_regex`, then regexes in file order, then the longest prefix). The
//! service, the benches and the tests all route through here; the path they route by comes
//! from [`super::paths::normalize_path`].

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

/// How a compiled route matches a path; regexes are compiled once, with the plan.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// A prefix (see [`prefix_matches`]); `no_regex`: nginx `^~`.
    Prefix {
        /// When this is the longest matching prefix, regex routes are not consulted.
        no_regex: bool,
        /// `path` (whole segments, [`prefix_matches`]) or `starts_with` (`false`: any path
        /// beginning with it, nginx's string prefix).
        whole_segments: bool,
    },
    /// The path itself (nginx `location =`).
    Exact,
    /// A regular expression (nginx `~`, `~*`).
    Regex(regex::Regex),
}

/// The route for a normalised `path`, in nginx's order: an exact route; else the longest
/// matching prefix if it has `no_regex`; else the first matching regex in file order; else
/// the longest matching prefix. `routes` are as validation leaves them (exact and prefix
/// routes longest first, regexes after, in file order); `key` gives a route's path and
/// matcher.
pub fn select<'a, R>(
    routes: &'a [R],
    path: &str,
    key: impl Fn(&R) -> (&str, &Matcher),
) -> Option<&'a R> {
    let mut prefix = None;
    for r in routes {
        match key(r) {
            (p, Matcher::Exact) if p == path => return Some(r),
            (
                p,
                Matcher::Prefix {
                    no_regex,
                    whole_segments,
                },
            ) if prefix.is_none()
                && if *whole_segments {
                    prefix_matches(p, path)
                } else {
                    path.starts_with(p)
                } =>
            {
                if *no_regex {
                    return Some(r);
                }
                prefix = Some(r);
            }
            (_, Matcher::Regex(re)) if re.is_match(path) => return Some(r),
            _ => {}
        }
    }
    prefix
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
    fn nginx_location_order() {
        let re = |s: &str| Matcher::Regex(regex::Regex::new(s).unwrap());
        let routes = [
            (
                "/images/",
                Matcher::Prefix {
                    no_regex: true,
                    whole_segments: true,
                },
            ),
            ("/", Matcher::Exact),
            (
                "/documents/",
                Matcher::Prefix {
                    no_regex: false,
                    whole_segments: true,
                },
            ),
            (
                "/",
                Matcher::Prefix {
                    no_regex: false,
                    whole_segments: true,
                },
            ),
            ("\\.(gif|jpg)$", re("\\.(gif|jpg)$")),
            ("^/documents/x", re("^/documents/x")),
        ];
        let pick = |p: &str| select(&routes, p, |(p, m)| (p, m)).unwrap().0;
        assert_eq!(pick("/"), "/", "exact");
        assert_eq!(pick("/index.html"), "/");
        assert_eq!(pick("/documents/a.html"), "/documents/");
        assert_eq!(
            pick("/documents/a.jpg"),
            "\\.(gif|jpg)$",
            "regex beats prefix"
        );
        assert_eq!(pick("/images/a.gif"), "/images/", "^~ stops regexes");
        assert_eq!(
            pick("/documents/x.html"),
            "^/documents/x",
            "first regex in order"
        );
    }

    #[test]
    fn starts_with_is_nginx_string_prefix() {
        let prefix = |p: &str, whole_segments| {
            (
                p.to_string(),
                Matcher::Prefix {
                    no_regex: false,
                    whole_segments,
                },
            )
        };
        let routes = [
            prefix("/admin/", true),
            prefix("/admin", false),
            prefix("/api", true),
            prefix("/", true),
        ];
        let pick = |p: &str| {
            select(&routes, p, |(p, m)| (p.as_str(), m))
                .unwrap()
                .0
                .clone()
        };
        assert_eq!(pick("/administrator"), "/admin");
        assert_eq!(pick("/admin"), "/admin");
        assert_eq!(pick("/admin/x"), "/admin/", "the longest prefix still wins");
        assert_eq!(pick("/apix"), "/", "path keeps whole segments");
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
