//! The nginx features of a route and `[upstreams.NAME.tls]`: one mistake each, the one
//! message with its position; and what good ones validate to.

use super::errors;
use crate::model::{PathMatch, RewriteFlag};

const HEAD: &str = "[upstreams.u]\nservers = [\"127.0.0.1:1\"]\n[[sites]]\nnames = [\"a.test\"]\n  [[sites.routes]]\n";

/// Each case: the route (or upstream tls) lines after [`HEAD`], and the one message.
const BAD: &[(&str, &str)] = &[
    (
        "  regex = \"^/api/(\"\n  upstream = \"u\"\n",
        "test.toml:6:11: invalid regex \"^/api/(\": error: unclosed group",
    ),
    (
        "  path = \"/a\"\n  exact = \"/a\"\n  upstream = \"u\"\n",
        "test.toml:7:3: route has both path and exact: expected exactly one of path, starts_with, exact or regex",
    ),
    (
        "  exact = \"/a\"\n  no_regex = true\n  upstream = \"u\"\n",
        "test.toml:7:3: no_regex on a route with exact: expected it only beside path or starts_with",
    ),
    (
        "  path = \"/\"\n  upstream = \"u\"\n  access = [{ allow = \"10.0.0.0/33\" }]\n",
        "test.toml:8:23: invalid CIDR \"10.0.0.0/33\": expected an address range like \"10.0.0.0/8\" or \"fd00::/8\", or an IP like \"127.0.0.1\"",
    ),
    (
        "  path = \"/\"\n  upstream = \"u\"\n  access = [{ allow = \"10.0.0.0/8\", deny = \"all\" }]\n",
        "test.toml:8:13: invalid access rule: expected exactly one of { allow = \"CIDR\" } or { deny = \"CIDR\" } (or \"all\")",
    ),
    (
        "  path = \"/\"\n  upstream = \"u\"\n  rewrite = [{ from = \"^/(a)$\", to = \"/b/$2\", flag = \"last\" }]\n",
        "test.toml:8:38: rewrite target \"/b/$2\" names $2, but \"^/(a)$\" has 1 capture group(s)",
    ),
    (
        "  path = \"/\"\n  upstream = \"u\"\n  rewrite = [{ from = \"^/a$\", to = \"/b\", flag = \"forever\" }]\n",
        "test.toml:8:49: invalid rewrite flag \"forever\": expected \"redirect\", \"permanent\", \"last\" or \"break\"",
    ),
    (
        "  path = \"/\"\n  static = { root = \"/srv\", try_files = [\"=404\", \"/index.html\"] }\n",
        "test.toml:7:42: invalid try_files entry \"=404\": expected \"$uri\", \"$uri/\", \"$uri.html\" or a path like \"/index.html\" (\"=404\" only last)",
    ),
    (
        "  path = \"/\"\n  upstream = \"u\"\n[upstreams.u.tls]\nsni = false\n",
        "test.toml:9:1: upstream \"u\" has sni = false with verify: a certificate cannot be checked without SNI here; expected sni = true, or verify = false too",
    ),
    (
        "  path = \"/\"\n  upstream = \"u\"\n[upstreams.u.tls]\nclient_cert = \"/c.pem\"\n",
        "test.toml:9:1: upstream \"u\" has one of client_cert and client_key: expected both, or neither",
    ),
];

#[test]
fn bad_rules() {
    let mut failed = Vec::new();
    for (route, expected) in BAD {
        let got = errors(&format!("{HEAD}{route}"));
        if got != [*expected] {
            failed.push(format!(
                "{route}\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn routes_are_ordered_for_nginx_selection() {
    let text = format!(
        "{HEAD}  regex = \"b$\"\n  upstream = \"u\"\n  rewrite = [{{ from = \"^/x$\", to = \"/y\" }}]\n\
         [[sites.routes]]\n  path = \"/\"\n  upstream = \"u\"\n\
         [[sites.routes]]\n  regex = \"a$\"\n  case_insensitive = true\n  upstream = \"u\"\n\
         [[sites.routes]]\n  exact = \"/\"\n  upstream = \"u\"\n"
    );
    let c = crate::parse(&text, "t.toml").unwrap();
    let kinds: Vec<(&str, PathMatch)> = c.sites[0]
        .routes
        .iter()
        .map(|r| (r.path.as_str(), r.matching))
        .collect();
    assert_eq!(
        kinds,
        [
            ("/", PathMatch::Exact),
            (
                "/",
                PathMatch::Prefix {
                    no_regex: false,
                    whole_segments: true
                }
            ),
            (
                "b$",
                PathMatch::Regex {
                    case_insensitive: false
                }
            ),
            (
                "a$",
                PathMatch::Regex {
                    case_insensitive: true
                }
            ),
        ]
    );
    assert_eq!(c.sites[0].routes[2].rewrites[0].flag, RewriteFlag::Last);
}
