//! The nginx features of a route: how its path matches (`path`, `exact`, `regex`), `access`,
//! `basic_auth`, `rewrite` and `try_files`; and `[upstreams.NAME.tls]`.

use toml::Spanned;

use super::values::parse_net;
use super::Validator;
use crate::error::line_col;
use crate::model::{
    AccessRule, BasicAuth, PathMatch, Position, Rewrite, RewriteFlag, TryFallback, TryFiles,
    UpstreamTls, Warning,
};
use crate::raw::{RawAccessRule, RawBasicAuth, RawRewrite, RawRoute, RawUpstreamTls, Str};

/// Most `$N` a replacement may name (nginx allows `$1`..`$9`).
const MAX_GROUP: usize = 9;

impl Validator<'_> {
    fn position(&self, at: usize) -> Position {
        let (line, col) = line_col(self.text, at);
        Position { line, col }
    }

    fn warn(&mut self, at: usize, message: String) {
        let Position { line, col } = self.position(at);
        self.warnings.push(Warning { line, col, message });
    }

    /// The route's match: exactly one of `path`, `exact` and `regex`; returns the string
    /// (empty on error), its kind and where it is.
    pub(super) fn route_match(
        &mut self,
        r: &RawRoute,
        route_at: usize,
    ) -> (String, PathMatch, usize) {
        let present: Vec<(&str, &Str)> = [
            ("path", &r.path),
            ("starts_with", &r.starts_with),
            ("exact", &r.exact),
            ("regex", &r.regex),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let (key, value) = match present.as_slice() {
            [] => {
                self.error(
                    route_at,
                    "route has no path: expected one of path = \"/prefix\", starts_with = \
                     \"/prefix\", exact = \"/x\" or regex = \"^/x\"",
                );
                return (
                    String::new(),
                    PathMatch::Prefix {
                        no_regex: false,
                        whole_segments: true,
                    },
                    route_at,
                );
            }
            [one] => *one,
            [(first, v), rest @ ..] => {
                for (second, s) in rest {
                    self.error(
                        self.key_at(s.span().start),
                        format!(
                            "route has both {first} and {second}: expected exactly one of \
                             path, starts_with, exact or regex"
                        ),
                    );
                }
                (*first, *v)
            }
        };
        let at = value.span().start;
        let text = value.get_ref().clone();
        if let Some(ci) = &r.case_insensitive {
            if key != "regex" {
                self.error(
                    self.key_at(ci.span().start),
                    format!(
                        "case_insensitive on a route with {key}: expected it only beside regex"
                    ),
                );
            }
        }
        if let Some(nr) = &r.no_regex {
            if key != "path" && key != "starts_with" {
                self.error(
                    self.key_at(nr.span().start),
                    format!(
                        "no_regex on a route with {key}: expected it only beside path or \
                         starts_with"
                    ),
                );
            }
        }
        let matching = match key {
            "regex" => {
                let case_insensitive = r.case_insensitive.as_ref().is_some_and(|c| *c.get_ref());
                self.regex(value, case_insensitive);
                PathMatch::Regex { case_insensitive }
            }
            "exact" => {
                self.plain_path(value, "exact path");
                PathMatch::Exact
            }
            _ => {
                self.plain_path(value, "route path");
                PathMatch::Prefix {
                    no_regex: r.no_regex.as_ref().is_some_and(|n| *n.get_ref()),
                    whole_segments: key == "path",
                }
            }
        };
        (text, matching, at)
    }

    /// A path that starts with `/` and holds no space, `?` or `#`.
    fn plain_path(&mut self, s: &Str, what: &str) {
        let path = s.get_ref();
        if !path.starts_with('/') {
            self.error(
                s.span().start,
                format!(
                    "{what} \"{path}\" must start with \"/\", like \"/{}\"",
                    path.trim_start_matches('/')
                ),
            );
        } else if path.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
            self.error(
                s.span().start,
                format!(
                    "{what} \"{path}\" has a space, \"?\" or \"#\": expected a plain path like \
                     \"/api/\""
                ),
            );
        }
    }

    /// Checks that a regular expression compiles; returns its number of capture groups.
    fn regex(&mut self, s: &Str, case_insensitive: bool) -> usize {
        match regex::RegexBuilder::new(s.get_ref())
            .case_insensitive(case_insensitive)
            .build()
        {
            Ok(re) => re.captures_len() - 1,
            Err(e) => {
                let reason = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                self.error(
                    s.span().start,
                    format!("invalid regex \"{}\": {reason}", s.get_ref()),
                );
                0
            }
        }
    }

    /// `access = [{ allow = "..." }, { deny = "all" }]`.
    pub(super) fn access(&mut self, rules: &[Spanned<RawAccessRule>]) -> Vec<AccessRule> {
        let mut out = Vec::new();
        for rule in rules {
            let (allow, value) = match (&rule.get_ref().allow, &rule.get_ref().deny) {
                (Some(a), None) => (true, a),
                (None, Some(d)) => (false, d),
                _ => {
                    self.error(
                        rule.span().start,
                        "invalid access rule: expected exactly one of { allow = \"CIDR\" } or \
                         { deny = \"CIDR\" } (or \"all\")",
                    );
                    continue;
                }
            };
            if value.get_ref() == "all" {
                out.push(AccessRule { allow, from: None });
            } else if let Some(net) = self.check(value, parse_net) {
                out.push(AccessRule {
                    allow,
                    from: Some(net),
                });
            }
        }
        out
    }

    /// `basic_auth = { realm, htpasswd }`.
    pub(super) fn basic_auth(&mut self, raw: &Spanned<RawBasicAuth>) -> BasicAuth {
        let b = raw.get_ref();
        let realm = match &b.realm {
            None => "Restricted".to_owned(),
            Some(r) => {
                if r.get_ref().contains(['"', '\\']) || r.get_ref().chars().any(char::is_control) {
                    self.error(
                        r.span().start,
                        format!(
                            "invalid realm \"{}\": expected text without quotes, backslashes \
                             or control characters",
                            r.get_ref()
                        ),
                    );
                }
                r.get_ref().clone()
            }
        };
        BasicAuth {
            realm,
            htpasswd: self.path(&b.htpasswd, "htpasswd"),
            at: self.position(b.htpasswd.span().start),
        }
    }

    /// `rewrite = [{ from, to, flag }]`.
    pub(super) fn rewrites(&mut self, rules: &[Spanned<RawRewrite>]) -> Vec<Rewrite> {
        let mut out = Vec::new();
        for rule in rules {
            let r = rule.get_ref();
            let groups = self.regex(&r.from, false);
            let to = r.to.get_ref();
            if to.is_empty() {
                self.error(
                    r.to.span().start,
                    "empty rewrite target: expected a path like \"/new/$1\" or a URL",
                );
            }
            for n in group_refs(to) {
                if n > groups.min(MAX_GROUP) {
                    self.error(
                        r.to.span().start,
                        format!(
                            "rewrite target \"{to}\" names ${n}, but \"{}\" has {groups} \
                             capture group(s)",
                            r.from.get_ref()
                        ),
                    );
                    break;
                }
            }
            let flag = match &r.flag {
                None => RewriteFlag::Last,
                Some(f) => self
                    .check(f, |f| match f {
                        "redirect" => Ok(RewriteFlag::Redirect),
                        "permanent" => Ok(RewriteFlag::Permanent),
                        "last" => Ok(RewriteFlag::Last),
                        "break" => Ok(RewriteFlag::Break),
                        other => Err(format!(
                            "invalid rewrite flag \"{other}\": expected \"redirect\", \
                             \"permanent\", \"last\" or \"break\""
                        )),
                    })
                    .unwrap_or(RewriteFlag::Break),
            };
            let is_url = to.starts_with("http://") || to.starts_with("https://");
            if !is_url && !to.starts_with('/') && !to.is_empty() {
                self.error(
                    r.to.span().start,
                    format!("rewrite target \"{to}\" must start with \"/\" or be an http(s) URL"),
                );
            } else if is_url && matches!(flag, RewriteFlag::Last | RewriteFlag::Break) {
                self.error(
                    r.to.span().start,
                    format!(
                        "rewrite target \"{to}\" is a URL: expected flag \"redirect\" or \
                         \"permanent\" with a URL"
                    ),
                );
            }
            out.push(Rewrite {
                from: r.from.get_ref().clone(),
                to: to.clone(),
                flag,
            });
        }
        out
    }

    /// `try_files = ["$uri", "$uri/", "/index.html"]` (last may be `"=404"`).
    pub(super) fn try_files(&mut self, list: &Spanned<Vec<Str>>) -> Option<TryFiles> {
        let entries = list.get_ref();
        let Some((last, candidates)) = entries.split_last() else {
            self.error(
                list.span().start,
                "empty try_files: expected a list like [\"$uri\", \"$uri/\", \"/index.html\"]",
            );
            return None;
        };
        let mut ok = true;
        for c in candidates {
            let v = c.get_ref();
            if !(v.starts_with('/') || v.starts_with("$uri")) || v.starts_with('=') {
                self.error(
                    c.span().start,
                    format!(
                        "invalid try_files entry \"{v}\": expected \"$uri\", \"$uri/\", \
                         \"$uri.html\" or a path like \"/index.html\" (\"=404\" only last)"
                    ),
                );
                ok = false;
            }
        }
        let fallback = if let Some(code) = last.get_ref().strip_prefix('=') {
            match code.parse::<u16>() {
                Ok(c) if (100..=599).contains(&c) => TryFallback::Status(c),
                _ => {
                    self.error(
                        last.span().start,
                        format!(
                            "invalid try_files status \"{}\": expected \"=404\"",
                            last.get_ref()
                        ),
                    );
                    return None;
                }
            }
        } else if last.get_ref().starts_with('/') && !last.get_ref().contains("$uri") {
            TryFallback::File(last.get_ref().clone())
        } else {
            self.error(
                last.span().start,
                format!(
                    "invalid try_files fallback \"{}\": expected a file path like \
                     \"/index.html\" or a status like \"=404\"",
                    last.get_ref()
                ),
            );
            return None;
        };
        ok.then(|| TryFiles {
            candidates: candidates.iter().map(|c| c.get_ref().clone()).collect(),
            fallback,
        })
    }

    /// `[upstreams.NAME.tls]`.
    pub(super) fn upstream_tls(
        &mut self,
        name: &str,
        raw: &Spanned<RawUpstreamTls>,
    ) -> UpstreamTls {
        let t = raw.get_ref();
        let flag = |v: &Option<Spanned<bool>>| v.as_ref().is_none_or(|b| *b.get_ref());
        let (sni, verify) = (flag(&t.sni), flag(&t.verify));
        if let Some(v) = t.verify.as_ref().filter(|v| !*v.get_ref()) {
            self.warn(
                self.key_at(v.span().start),
                format!(
                    "upstream \"{name}\" has verify = false: its servers' certificates are not \
                     checked, so anyone on the path can impersonate them"
                ),
            );
        }
        if let Some(s) = t.sni.as_ref().filter(|_| !sni && verify) {
            self.error(
                self.key_at(s.span().start),
                format!(
                    "upstream \"{name}\" has sni = false with verify: a certificate cannot be \
                     checked without SNI here; expected sni = true, or verify = false too"
                ),
            );
        }
        let server_name = t.server_name.as_ref().and_then(|s| {
            self.check(s, |v| {
                if super::values::is_dns_name(v) || v.parse::<std::net::IpAddr>().is_ok() {
                    Ok(v.to_ascii_lowercase())
                } else {
                    Err(format!(
                        "invalid server_name \"{v}\": expected a host name like \"api.internal\""
                    ))
                }
            })
        });
        let client_cert = match (&t.client_cert, &t.client_key) {
            (Some(c), Some(k)) => Some((self.path(c, "client_cert"), self.path(k, "client_key"))),
            (None, None) => None,
            (Some(c), None) | (None, Some(c)) => {
                self.error(
                    self.key_at(c.span().start),
                    format!(
                        "upstream \"{name}\" has one of client_cert and client_key: expected \
                         both, or neither"
                    ),
                );
                None
            }
        };
        UpstreamTls {
            server_name,
            sni,
            ca: t.ca.as_ref().map(|c| self.path(c, "ca")),
            verify,
            client_cert,
            h2: flag(&t.h2),
            at: self.position(raw.span().start),
        }
    }
}

/// The `$N` group numbers a replacement names.
fn group_refs(to: &str) -> impl Iterator<Item = usize> + '_ {
    to.as_bytes()
        .windows(2)
        .filter(|w| w[0] == b'$' && w[1].is_ascii_digit())
        .map(|w| usize::from(w[1] - b'0'))
}
