//! `location { }` → one `[[sites.routes]]` table.

use std::fmt::Write as _;

use super::emit::{duration, q, size, str_table};
use super::parse::Directive;
use super::site::{header_set, limit, other, req_header, ret, static_files, Scope};
use super::translate::{from, Out};

/// Translates one location into a route table (its text).
pub(super) fn location(out: &mut Out, d: &Directive, scope: &Scope) -> String {
    let mut t = format!("{}[[sites.routes]]\n", from(&d.pos));
    let (prefix, regex) = match d.args.as_slice() {
        [p] => {
            let _ = writeln!(t, "{} = {}", prefix_key(p), q(p));
            (Some(p.clone()), false)
        }
        [m, p] if m == "=" => {
            let _ = writeln!(t, "exact = {}", q(p));
            (None, false)
        }
        [m, p] if m == "^~" => {
            let _ = writeln!(t, "{} = {}\nno_regex = true", prefix_key(p), q(p));
            (Some(p.clone()), false)
        }
        [m, p] if m == "~" || m == "~*" => {
            let _ = writeln!(t, "regex = {}", q(p));
            if m == "~*" {
                t.push_str("case_insensitive = true\n");
            }
            (None, true)
        }
        _ => {
            out.fail(d, "unreadable location");
            return String::new();
        }
    };
    let mut scope = scope.clone();
    let mut alias = None;
    let mut upstream = None;
    let mut resp_set = Vec::new();
    let mut resp_remove = Vec::new();
    let mut req_set = Vec::new();
    let mut cache_zone = None;
    let mut valid = Vec::new();
    let mut bypass = Vec::new();
    let mut body = String::new();
    let mut try_files = None;
    let mut access = Vec::new();
    let mut realm = None;
    let mut htpasswd = None;
    let mut rewrites = Vec::new();
    let mut timeouts = Vec::new();
    for c in d.children() {
        let first = c.args.first().cloned().unwrap_or_default();
        match c.name.as_str() {
            "proxy_pass" => upstream = proxy_pass(out, c, prefix.as_deref(), regex, &mut rewrites),
            "root" => scope.root = Some(first),
            "alias" => alias = Some(first),
            "index" => scope.index = Some(first),
            "try_files" => try_files = Some(c.args.clone()),
            "return" => body.push_str(&ret(out, c)),
            "add_header" => header_set(out, c, &mut resp_set),
            "proxy_hide_header" => resp_remove.push(first),
            "proxy_set_header" => req_header(out, c, &mut req_set),
            "client_max_body_size" => match size(&first) {
                Some(v) => {
                    let _ = writeln!(body, "max_body = {v}");
                }
                None => out.fail(c, "unreadable size"),
            },
            "limit_req" => limit(out, c, &mut body),
            "proxy_cache" => cache_zone = Some(first),
            "proxy_cache_valid" => {
                let (codes, time) = c.args.split_at(c.args.len().saturating_sub(1));
                let time = time.first().and_then(|t| duration(t)).unwrap_or_default();
                let codes: Vec<String> = if codes.is_empty() {
                    vec!["200".into(), "301".into(), "302".into()]
                } else {
                    codes.to_vec()
                };
                valid.extend(codes.into_iter().map(|k| (k, time.clone())));
            }
            "proxy_cache_bypass" => {
                for a in &c.args {
                    if let Some(v) = a.strip_prefix("$cookie_") {
                        bypass.push(format!("cookie:{v}"));
                    } else if let Some(v) = a.strip_prefix("$http_") {
                        bypass.push(format!("header:{}", v.replace('_', "-")));
                    } else if let Some(v) = a.strip_prefix("$arg_") {
                        bypass.push(format!("query:{v}"));
                    } else {
                        out.note(c, &format!("{a}: not translated"));
                    }
                }
            }
            "proxy_cache_key" => out.note(
                c,
                "vigie's key is scheme + host + path + query (add parts with cache.key)",
            ),
            "allow" | "deny" => access.push(format!("{{ {} = {} }}", c.name, q(&first))),
            "auth_basic" => realm = Some(first),
            "auth_basic_user_file" => htpasswd = Some(first),
            "rewrite" => rewrite(out, c, &mut rewrites),
            "proxy_connect_timeout" | "proxy_read_timeout" | "proxy_send_timeout" => {
                let key = match c.name.as_str() {
                    "proxy_connect_timeout" => "connect_timeout",
                    "proxy_read_timeout" => "read_timeout",
                    _ => "write_timeout",
                };
                match duration(&first) {
                    Some(v) => timeouts.push((key.to_string(), v)),
                    None => out.fail(c, "unreadable time"),
                }
            }
            "proxy_http_version" => out.note(
                c,
                "vigie speaks HTTP/1.1 to upstreams and tunnels WebSockets itself",
            ),
            "location" => out.fail(
                c,
                "nested locations are not translated: write them as routes of the site",
            ),
            "expires" => out.note(c, "not translated: set Cache-Control with response_headers"),
            _ => other(out, c),
        }
    }
    if let Some(u) = &upstream {
        let _ = writeln!(t, "upstream = {}", q(u));
        if !timeouts.is_empty() {
            if out.direct.values().any(|n| n == u) {
                out.timeouts.entry(u.clone()).or_default().extend(timeouts);
            } else {
                out.note(d, &format!("proxy_*_timeout: set connect_timeout/read_timeout/write_timeout on [upstreams.{u}] (vigie's timeouts are per upstream)"));
            }
        }
    } else if (alias.is_some() || scope.root.is_some())
        && !body.contains("redirect")
        && !body.contains("respond")
    {
        t.push_str(&static_files(
            &scope,
            prefix.as_deref().unwrap_or("/"),
            alias.as_deref(),
        ));
    }
    let has_action = upstream.is_some()
        || t.contains("static = ")
        || body.contains("redirect")
        || body.contains("respond");
    if let Some(files) = try_files {
        let items: Vec<String> = files.iter().map(|f| q(f)).collect();
        let list = format!(", try_files = [{}] }}\n", items.join(", "));
        match t.rfind(" }\n") {
            Some(i) if t[i..].len() == 3 && t.contains("static = ") => {
                t.truncate(i);
                t.push_str(&list);
            }
            _ => out.note(d, "try_files outside a static location: not translated"),
        }
    }
    if !has_action {
        // nginx serves files from its default root (`html` under its prefix) there.
        body.push_str("respond = { status = 404 }\n");
        if rewrites
            .iter()
            .all(|r| !r.contains("\"last\"") && !r.contains("\"break\""))
        {
            out.note(d, "no content handler: what no rewrite redirects is answered 404 (nginx looks for a file under its default root)");
        }
    }
    t.push_str(&body);
    if !rewrites.is_empty() {
        let _ = writeln!(t, "rewrite = [{}]", rewrites.join(", "));
    }
    if !access.is_empty() {
        let _ = writeln!(t, "access = [{}]", access.join(", "));
    }
    if let (Some(r), Some(h)) = (&realm, &htpasswd) {
        if r != "off" {
            let _ = writeln!(
                t,
                "basic_auth = {{ realm = {}, htpasswd = {} }}",
                q(r),
                q(h)
            );
        }
    }
    if let Some(z) = cache_zone {
        let _ = write!(
            t,
            "cache = {{ zone = {}, valid = {}",
            q(&z),
            str_table(&valid)
        );
        if !bypass.is_empty() {
            let items: Vec<String> = bypass.iter().map(|b| q(b)).collect();
            let _ = write!(t, ", bypass = [{}]", items.join(", "));
        }
        t.push_str(" }\n");
    }
    if !resp_set.is_empty() || !resp_remove.is_empty() {
        let rm: Vec<String> = resp_remove.iter().map(|r| q(r)).collect();
        let _ = writeln!(
            t,
            "response_headers = {{ set = {}, remove = [{}] }}",
            str_table(&resp_set),
            rm.join(", ")
        );
    }
    if !req_set.is_empty() {
        let _ = writeln!(t, "request_headers = {{ set = {} }}", str_table(&req_set));
    }
    t.push('\n');
    t
}

/// `proxy_pass http://NAME[/uri]`: the upstream's name; a URI part becomes nginx's prefix
/// replacement (`strip_prefix` for `/`, else a `break` rewrite).
fn proxy_pass(
    out: &mut Out,
    c: &Directive,
    prefix: Option<&str>,
    regex: bool,
    rewrites: &mut Vec<String>,
) -> Option<String> {
    let url = c.args.first()?;
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        out.fail(c, "only http:// and https:// upstreams are translated");
        return None;
    };
    if rest.contains('$') {
        out.fail(c, "proxy_pass with variables is not translated");
        return None;
    }
    let (host, uri) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let name = if out.upstream_names.iter().any(|n| n == host) {
        host.to_string()
    } else {
        let addr = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:{}", if tls { 443 } else { 80 })
        };
        let next = format!("direct_{}", out.direct.len() + 1);
        out.direct.entry(addr).or_insert(next).clone()
    };
    if tls {
        out.note(c, &format!("TLS to the upstream: add [upstreams.{name}.tls] (verify against the system roots by default)"));
    }
    if let Some(uri) = uri {
        match prefix {
            // Even `proxy_pass http://u/` under `location /` sends the normalised path
            // (nginx replaces the prefix in it); the rewrite does the same.
            Some(p) if !regex => {
                let from = format!("^{}(.*)$", regex_escape(p));
                rewrites.push(format!(
                    "{{ from = {}, to = {}, flag = \"break\" }}",
                    q(&from),
                    q(&format!("{uri}$1"))
                ));
            }
            _ => out.fail(
                c,
                "a URI part in proxy_pass inside a regex or exact location is not translated",
            ),
        }
    }
    Some(name)
}

/// `rewrite REGEX REPLACEMENT [flag]`.
fn rewrite(out: &mut Out, c: &Directive, rewrites: &mut Vec<String>) {
    let [from_re, to, rest @ ..] = c.args.as_slice() else {
        return out.fail(c, "rewrite takes a regex and a replacement");
    };
    let flag = rest.first().map_or("break", String::as_str);
    if !matches!(flag, "redirect" | "permanent" | "last" | "break") {
        return out.fail(c, &format!("unknown rewrite flag {flag}"));
    }
    rewrites.push(format!(
        "{{ from = {}, to = {}, flag = {} }}",
        q(from_re),
        q(to),
        q(flag)
    ));
}

/// Escapes regex metacharacters of a literal path.
fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The route key for an nginx prefix location: `path` when it ends with `/` (the same
/// match), else `starts_with` (nginx's `location /admin` also matches `/administrator`).
fn prefix_key(p: &str) -> &'static str {
    if p.ends_with('/') {
        "path"
    } else {
        "starts_with"
    }
}
