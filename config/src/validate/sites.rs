//! `[[sites]]` and their `[[sites.routes]]`: names, TLS, actions, and the settings a route
//! inherits from its site.

use std::collections::{BTreeSet, HashMap};

use toml::Spanned;

use super::headers::merge;
use super::tls::challenge_name;
use super::values::parse_host_pattern;
use super::{Layer, Refs, Validator};
use crate::model::{
    Action, ChallengeKind, Compression, HeaderOps, HostPattern, PathMatch, Route, Site, SiteTls,
    TrailingSlash,
};
use crate::raw::{RawHeaderOps, RawRoute, RawSite, Size, Str, StrList, StrOr};

const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

impl Validator<'_> {
    pub(super) fn site(
        &mut self,
        raw: &Spanned<RawSite>,
        refs: &Refs,
        seen: &mut HashMap<HostPattern, usize>,
    ) -> Site {
        let site_at = raw.span().start;
        let s = raw.get_ref();

        let tls = s.tls.as_ref().and_then(|t| match t.get_ref() {
            StrOr::Str(kind) if kind == "acme" => Some(SiteTls::Acme),
            StrOr::Str(kind) if kind == "internal" => Some(SiteTls::Internal),
            StrOr::Str(other) => {
                self.error(
                    t.span().start,
                    format!(
                        "invalid tls \"{other}\": expected \"acme\", \"internal\" or {{ cert = \
                         \"...\", key = \"...\" }}"
                    ),
                );
                None
            }
            StrOr::Other(files) => Some(SiteTls::Files {
                cert: self.path(&files.cert, "cert"),
                key: self.path(&files.key, "key"),
            }),
        });

        let mut names = Vec::new();
        if s.names.get_ref().is_empty() {
            self.error(
                s.names.span().start,
                "site has no names: expected at least one host name, like names = \
                 [\"example.com\"]",
            );
        }
        let mut own: BTreeSet<HostPattern> = BTreeSet::new();
        for n in s.names.get_ref() {
            let Some(pattern) = self.check(n, parse_host_pattern) else {
                continue;
            };
            if !own.insert(pattern.clone()) {
                self.error(
                    n.span().start,
                    format!(
                        "host name \"{}\" is listed twice in this site: expected each name once",
                        n.get_ref()
                    ),
                );
                continue;
            }
            if let Some(other) = seen.get(&pattern) {
                let line = self.line(*other);
                self.error(
                    n.span().start,
                    format!(
                        "host name \"{}\" is already served by the site at line {line}",
                        n.get_ref()
                    ),
                );
                continue;
            }
            seen.insert(pattern.clone(), site_at);
            if tls == Some(SiteTls::Acme) && refs.challenge != ChallengeKind::Dns01 {
                if let HostPattern::Wildcard(_) = pattern {
                    self.error(
                        n.span().start,
                        format!(
                            "wildcard certificates need DNS-01: \"{}\" has tls = \"acme\" but \
                             the [acme] challenge is \"{}\"; expected challenge = \"dns-01\" \
                             with a dns_hook, or tls = {{ cert, key }}",
                            n.get_ref(),
                            challenge_name(refs.challenge)
                        ),
                    );
                }
            }
            names.push(pattern);
        }

        if let (Some(t), Some(_)) = (&s.tls, &tls) {
            let key = self.key_at(t.span().start);
            if !refs.https_listeners {
                self.error(
                    key,
                    "site has tls but [server] https has no listener: expected an address like \
                     \"0.0.0.0:443\" \
                     in https, or no tls on this site",
                );
            }
        }

        let mut site_layer = self.layer(
            &s.max_body,
            &s.limit,
            &s.headers,
            &s.request_headers,
            &s.response_headers,
            refs,
        );
        site_layer.compress = s.compress.as_ref().map(|c| self.compress(c));
        site_layer.pass_headers = s.pass_headers.as_ref().map(|p| self.pass_headers(p));
        site_layer.access = s.access.as_ref().map(|a| self.access(a));
        site_layer.basic_auth = s.basic_auth.as_ref().map(|b| self.basic_auth(b));

        if s.routes.is_empty() {
            self.error(
                site_at,
                "site has no routes: expected at least one [[sites.routes]] table with a path \
                 and an action",
            );
        }
        let mut paths: HashMap<(String, &'static str), usize> = HashMap::new();
        let mut routes = Vec::new();
        for r in &s.routes {
            let raw = r.get_ref();
            let at = [&raw.path, &raw.starts_with, &raw.exact, &raw.regex]
                .into_iter()
                .find_map(|v| v.as_ref())
                .map_or(r.span().start, |v| v.span().start);
            let route = self.route(raw, r.span().start, &site_layer, refs);
            let key = (route.path.clone(), match_kind(route.matching));
            if let Some(first) = paths.get(&key) {
                let line = self.line(*first);
                self.error(
                    at,
                    format!(
                        "duplicate route {} \"{}\" in this site (first at line {line}): \
                         expected each path once per site",
                        key.1, route.path
                    ),
                );
            } else {
                paths.insert(key, at);
            }
            routes.push(route);
        }
        // Exact and prefix routes longest first (an exact path before a prefix of the same
        // length), then regex routes; stable, so regexes keep file order.
        routes.sort_by_key(|r| match r.matching {
            PathMatch::Exact => (0, usize::MAX - r.path.len(), 0),
            PathMatch::Prefix { .. } => (0, usize::MAX - r.path.len(), 1),
            PathMatch::Regex { .. } => (1, 0, 0),
        });

        let host_redirects = self.host_redirects(s.redirect_www.as_ref(), &names);
        let error_pages = self.error_pages(s.error_pages.as_ref(), &refs.error_pages);
        let trailing_slash = s.trailing_slash.as_ref().and_then(|t| {
            self.check(t, |v| match v {
                "add" => Ok(TrailingSlash::Add),
                "remove" => Ok(TrailingSlash::Remove),
                _ => Err(format!(
                    "invalid trailing_slash \"{v}\": expected \"add\" or \"remove\" (leave it out \
                     to pass paths as sent)"
                )),
            })
        });
        let acme_profile = s
            .profile
            .as_ref()
            .and_then(|p| self.check(p, super::tls::parse_profile))
            .or_else(|| refs.profile.clone());
        Site {
            names,
            tls,
            routes,
            host_redirects,
            error_pages,
            trailing_slash,
            acme_profile,
        }
    }

    pub(super) fn layer(
        &mut self,
        max_body: &Option<Size>,
        limit: &Option<Str>,
        headers: &Option<Spanned<StrOr<StrList>>>,
        request: &Option<RawHeaderOps>,
        response: &Option<RawHeaderOps>,
        refs: &Refs,
    ) -> Layer {
        let max_body = max_body.as_ref().map(|m| self.size(m).filter(|n| *n > 0));
        let limit = limit.as_ref().map(|l| {
            if l.get_ref() == "off" {
                None
            } else {
                self.reference(l, "limit zone", "limits", &refs.limits)
                    .then(|| l.get_ref().clone())
            }
        });
        let mut response_sets = HeaderOps::default();
        if let Some(h) = headers {
            let names: Vec<(&str, usize)> = match h.get_ref() {
                StrOr::Str(n) => vec![(n.as_str(), h.span().start)],
                StrOr::Other(list) => list
                    .iter()
                    .map(|n| (n.get_ref().as_str(), n.span().start))
                    .collect(),
            };
            let defined: BTreeSet<String> = refs.header_sets.keys().cloned().collect();
            for (name, at) in names {
                match refs.header_sets.get(name) {
                    Some(set) => merge(&mut response_sets, set),
                    None => {
                        let s = Spanned::new(at..at + 1, name.to_owned());
                        self.reference(&s, "header set", "headers", &defined);
                    }
                }
            }
        }
        Layer {
            max_body,
            limit,
            response_sets,
            response: self.header_ops(response),
            request: self.header_ops(request),
            compress: None,
            pass_headers: None,
            access: None,
            basic_auth: None,
        }
    }

    pub(super) fn route(
        &mut self,
        r: &RawRoute,
        route_at: usize,
        site: &Layer,
        refs: &Refs,
    ) -> Route {
        let (path, matching, path_at) = self.route_match(r, route_at);
        let path = &path;

        // The action: exactly one of four keys.
        let present: Vec<(&str, usize)> = [
            ("upstream", r.upstream.as_ref().map(|s| s.span().start)),
            ("redirect", r.redirect.as_ref().map(|s| s.span().start)),
            ("respond", r.respond.as_ref().map(|s| s.span().start)),
            ("static", r.static_files.as_ref().map(|s| s.span().start)),
        ]
        .into_iter()
        .filter_map(|(k, at)| at.map(|at| (k, at)))
        .collect();
        match present.as_slice() {
            [] => self.error(
                path_at,
                format!(
                    "route \"{path}\" has no action: expected one of upstream, redirect, \
                 respond or static"
                ),
            ),
            [_] => {}
            [(first, _), rest @ ..] => {
                for (second, at) in rest {
                    self.error(
                        self.key_at(*at),
                        format!(
                            "route \"{path}\" has both {first} and {second}: expected exactly \
                             one of upstream, redirect, respond or static"
                        ),
                    );
                }
            }
        }

        if let Some(sp) = &r.strip_prefix {
            if r.upstream.is_none() {
                self.error(
                    self.key_at(sp.span().start),
                    format!(
                        "strip_prefix on route \"{path}\", which has no upstream: expected \
                     strip_prefix only beside upstream"
                    ),
                );
            }
        }

        let action = if let Some(u) = &r.upstream {
            self.reference(u, "upstream", "upstreams", &refs.upstreams);
            Action::Proxy {
                upstream: u.get_ref().clone(),
                strip_prefix: r.strip_prefix.as_ref().is_some_and(|s| *s.get_ref()),
            }
        } else if let Some(red) = &r.redirect {
            let red = red.get_ref();
            if red.to.get_ref().is_empty() {
                self.error(
                    red.to.span().start,
                    "empty redirect target: expected a URL like \
                 \"https://example.com$request_uri\"",
                );
            }
            Action::Redirect {
                status: self.status_in(
                    &red.status,
                    "redirect status",
                    &[301, 302, 303, 307, 308],
                    301,
                ),
                to: red.to.get_ref().clone(),
            }
        } else if let Some(resp) = &r.respond {
            let resp = resp.get_ref();
            let content_type = match &resp.content_type {
                None => DEFAULT_CONTENT_TYPE.to_owned(),
                Some(c) => {
                    self.header_value(c);
                    c.get_ref().clone()
                }
            };
            Action::Respond {
                status: self.status_code(&resp.status, "respond status", 200),
                body: resp.body.clone().unwrap_or_default(),
                content_type,
            }
        } else if let Some(st) = &r.static_files {
            let st = st.get_ref();
            let index = match &st.index {
                None => "index.html".to_owned(),
                Some(i) => {
                    if i.get_ref().is_empty() || i.get_ref().contains('/') {
                        self.error(
                            i.span().start,
                            format!(
                                "invalid index \"{}\": expected a file name like \"index.html\"",
                                i.get_ref()
                            ),
                        );
                    }
                    i.get_ref().clone()
                }
            };
            Action::Static {
                root: self.path(&st.root, "static root"),
                index,
                try_files: st.try_files.as_ref().and_then(|t| self.try_files(t)),
            }
        } else {
            Action::Respond {
                status: 404,
                body: String::new(),
                content_type: DEFAULT_CONTENT_TYPE.to_owned(),
            }
        };

        let cache = r
            .cache
            .as_ref()
            .map(|c| self.route_cache(c, path, r.upstream.is_some(), refs));

        let mut own = self.layer(
            &r.max_body,
            &r.limit,
            &r.headers,
            &r.request_headers,
            &r.response_headers,
            refs,
        );
        own.compress = r.compress.as_ref().map(|c| self.compress(c));
        own.pass_headers = r.pass_headers.as_ref().map(|p| self.pass_headers(p));
        let mut request_headers = HeaderOps::default();
        merge(&mut request_headers, &site.request);
        merge(&mut request_headers, &own.request);
        let mut response_headers = HeaderOps::default();
        for layer in [
            &site.response_sets,
            &site.response,
            &own.response_sets,
            &own.response,
        ] {
            merge(&mut response_headers, layer);
        }
        let compress = own
            .compress
            .or_else(|| site.compress.clone())
            .unwrap_or_else(|| default_compress(&action));
        let access = match &r.access {
            Some(a) => self.access(a),
            None => site.access.clone().unwrap_or_default(),
        };
        let basic_auth = match &r.basic_auth {
            Some(b) => Some(self.basic_auth(b)),
            None => site.basic_auth.clone(),
        };
        Route {
            path: path.clone(),
            matching,
            access,
            basic_auth,
            rewrites: r
                .rewrite
                .as_ref()
                .map(|w| self.rewrites(w))
                .unwrap_or_default(),
            action,
            max_body: own.max_body.unwrap_or_else(|| site.max_body.flatten()),
            request_buffer: r
                .request_buffer
                .as_ref()
                .and_then(|s| self.request_buffer(s)),
            limit: own.limit.unwrap_or_else(|| site.limit.clone().flatten()),
            cache,
            request_headers,
            response_headers,
            compress,
            pass_headers: own
                .pass_headers
                .or_else(|| site.pass_headers.clone())
                .unwrap_or_default(),
        }
    }
}

/// Compression when neither the route nor its site sets `compress`: on for static files,
/// which carry no per-user secret; off for proxied responses, which may reflect a secret
/// next to attacker-chosen input in one compressed HTTPS body (BREACH), as nginx and Caddy
/// compress only when told to. vigie's own answers (`respond`, `redirect`) are never
/// compressed.
fn default_compress(action: &Action) -> Option<Compression> {
    match action {
        Action::Static { .. } => Some(Compression::default()),
        Action::Proxy { .. } | Action::Redirect { .. } | Action::Respond { .. } => None,
    }
}

/// How a route's match is named in messages.
fn match_kind(m: PathMatch) -> &'static str {
    match m {
        PathMatch::Prefix {
            whole_segments: true,
            ..
        } => "path",
        PathMatch::Prefix { .. } => "starts_with",
        PathMatch::Exact => "exact path",
        PathMatch::Regex { .. } => "regex",
    }
}
