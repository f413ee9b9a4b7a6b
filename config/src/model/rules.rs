//! The nginx features a route can carry beside its action: how its path matches (prefix,
//! exact, regular expression), access rules by client address, HTTP Basic authentication,
//! rewrites, and `try_files` on static routes.

use std::path::PathBuf;

use ipnet::IpNet;

use super::Position;

/// How a route's `path` matches a request path (nginx `location` modifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatch {
    /// `path = "/x"` or `starts_with = "/x"`: a prefix, longest wins. With `no_regex`
    /// (nginx `^~`), when it is the longest matching prefix, regex routes are not consulted.
    Prefix {
        /// nginx `^~`.
        no_regex: bool,
        /// `path`: the prefix matches whole path segments (`/admin` matches `/admin` and
        /// `/admin/x`, not `/administrator`); `starts_with` (`false`): any path that begins
        /// with it, as nginx's `location /admin` does.
        whole_segments: bool,
    },
    /// `exact = "/x"`: nginx `location = /x`.
    Exact,
    /// `regex = "..."`: nginx `~` (or `~*` when case-insensitive), tried in file order.
    Regex {
        /// nginx `~*`.
        case_insensitive: bool,
    },
}

/// One `access` rule: first match wins; no match allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRule {
    /// `allow` (true) or `deny` (false).
    pub allow: bool,
    /// The addresses it covers; `None` for `"all"`.
    pub from: Option<IpNet>,
}

impl AccessRule {
    /// Whether the rule covers `ip` (`None`: the address is unknown, only `"all"` covers it).
    pub fn covers(&self, ip: Option<std::net::IpAddr>) -> bool {
        match (self.from, ip) {
            (None, _) => true,
            (Some(net), Some(ip)) => net.contains(&ip),
            (Some(_), None) => false,
        }
    }
}

/// Whether `rules` let `ip` in: the first rule that covers it decides; none allows.
pub fn access_allows(rules: &[AccessRule], ip: Option<std::net::IpAddr>) -> bool {
    rules.iter().find(|r| r.covers(ip)).is_none_or(|r| r.allow)
}

/// `basic_auth`: HTTP Basic authentication against an htpasswd file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// The realm sent in `WWW-Authenticate`. Default `"Restricted"`.
    pub realm: String,
    /// The htpasswd file, read when the configuration is compiled (and on reload).
    pub htpasswd: PathBuf,
    /// Where the `htpasswd` key is, for errors found reading the file.
    pub at: Position,
}

/// One `rewrite` rule on a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The regular expression on the (normalised) path; checked to compile.
    pub from: String,
    /// The replacement: `$1`... are `from`'s groups; a `?` starts a new query string (the
    /// request's query is kept otherwise).
    pub to: String,
    /// What happens on a match.
    pub flag: RewriteFlag,
}

/// What a matching `rewrite` does (nginx's flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteFlag {
    /// Answer 302 with the replacement as `Location`.
    Redirect,
    /// Answer 301 with the replacement as `Location`.
    Permanent,
    /// Route the rewritten path again (at most 10 times).
    Last,
    /// Send the rewritten path upstream (or look it up, on a static route) on this route.
    Break,
}

/// `try_files` on a static route: candidates looked up in order under the root, then the
/// fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryFiles {
    /// Candidates, each a path with `$uri` standing for the path below the route's prefix;
    /// one ending in `/` names a directory (served through its index file).
    pub candidates: Vec<String>,
    /// What happens when none exists.
    pub fallback: TryFallback,
}

/// The last entry of `try_files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryFallback {
    /// `"=404"`: answer this status.
    Status(u16),
    /// `"/index.html"`: serve this file under the route's root.
    File(String),
}
