//! `server { }` and `location { }` blocks → `[[sites]]` and `[[sites.routes]]`.

use std::fmt::Write as _;

use super::emit::{list, q, size, str_table};
use super::location::location;
use super::parse::Directive;
use super::translate::{from, Out};

/// What one `server` block is.
struct Server<'a> {
    d: &'a Directive,
    names: Vec<String>,
    ssl: bool,
    /// `return 301 https://HOST$request_uri` and nothing else: the HOST (or `$host`).
    redirect_to: Option<String>,
}

/// Settings a server passes down to its locations, and the site's own keys.
#[derive(Default, Clone)]
pub(super) struct Scope {
    pub(super) root: Option<String>,
    pub(super) index: Option<String>,
}

/// Translates every `server` block, merging those that serve the same names.
pub(super) fn servers(out: &mut Out, list: &[&Directive]) {
    let mut all: Vec<Server<'_>> = list.iter().map(|d| classify(out, d)).collect();
    if let Some(first) = all.iter().find(|s| !s.names.is_empty()) {
        if all.iter().all(|s| !s.names.is_empty()) {
            note_at(out, first.d, "nginx sends a Host no server_name matches to the default (first) server; vigie answers it 421 ([server] unknown_host)");
        }
    }
    // Drop plain-HTTP → HTTPS redirects of names a TLS site serves: vigie does that itself.
    let tls_names: Vec<String> = all
        .iter()
        .filter(|s| s.ssl && s.redirect_to.is_none())
        .flat_map(|s| s.names.clone())
        .collect();
    let mut www: Vec<(String, String)> = Vec::new();
    all.retain(|s| match &s.redirect_to {
        Some(h) if h == "$host" && !s.ssl && s.names.iter().all(|n| tls_names.contains(n)) => {
            note_at(out, s.d, "HTTP→HTTPS redirect: vigie redirects plain HTTP to HTTPS for every site with tls (301, 308 for other methods)");
            false
        }
        Some(h) if s.names.iter().all(|n| n.strip_prefix("www.") == Some(h.as_str())) => {
            www.extend(s.names.iter().map(|n| (n.clone(), h.clone())));
            note_at(out, s.d, "www redirect: redirect_www = \"to_apex\" on the site (301 for GET/HEAD, 308 otherwise; Location carries the normalised path, not the raw $request_uri)");
            false
        }
        _ => true,
    });
    // One site per set of names: prefer the TLS block's content.
    let mut done: Vec<Vec<String>> = Vec::new();
    for s in &all {
        if done.contains(&s.names) {
            continue;
        }
        let same: Vec<&Server<'_>> = all.iter().filter(|o| o.names == s.names).collect();
        let main = same.iter().find(|o| o.ssl).copied().unwrap_or(s);
        for other in same.iter().filter(|o| !std::ptr::eq(**o, main)) {
            if other.redirect_to.is_none() && !other.ssl {
                note_at(out, other.d, "this plain-HTTP server is merged into the TLS one: vigie redirects its requests to HTTPS");
            }
        }
        done.push(s.names.clone());
        if s.names.is_empty() {
            note_at(out, s.d, "a server without names (catch-all) is not a vigie site: vigie answers hosts no site serves with 421 ([server] unknown_host = 404 to answer 404; nginx's 444 has no equivalent there)");
            continue;
        }
        let mut names = main.names.clone();
        let mut redirect_www = false;
        for (w, apex) in &www {
            if names.contains(apex) {
                names.push(w.clone());
                redirect_www = true;
            }
        }
        site(out, main, &names, redirect_www);
    }
}

fn note_at(out: &mut Out, d: &Directive, what: &str) {
    out.report.push(format!(
        "{}:{}: server — {what}",
        d.pos.file.display(),
        d.pos.line
    ));
}

fn classify<'a>(out: &mut Out, d: &'a Directive) -> Server<'a> {
    let mut names = Vec::new();
    let mut ssl = false;
    for c in d.children() {
        match c.name.as_str() {
            "server_name" => {
                for n in &c.args {
                    if n.starts_with('~') {
                        out.fail(c, &format!("regex name {n}: vigie matches exact names and *.wildcards; list the names"));
                    } else if n == "_" || n.is_empty() {
                        out.note(c, "catch-all name: vigie answers hosts no site serves with 421 ([server] unknown_host = 404 for nginx's 404)");
                    } else if let Some(base) = n.strip_prefix('.') {
                        names.push(base.to_string());
                        names.push(format!("*.{base}"));
                    } else {
                        names.push(n.to_lowercase());
                    }
                }
            }
            "listen" => {
                let Some(addr) = c.args.first() else { continue };
                let this_ssl = c.args.iter().any(|a| a == "ssl");
                ssl |= this_ssl;
                let addr = if addr.chars().all(|ch| ch.is_ascii_digit()) {
                    format!("0.0.0.0:{addr}")
                } else if addr.contains(':') {
                    addr.clone()
                } else {
                    format!("{addr}:80")
                };
                let target = if this_ssl {
                    &mut out.https
                } else {
                    &mut out.http
                };
                if !target.contains(&addr) {
                    target.push(addr);
                }
                for flag in &c.args[1..] {
                    match flag.as_str() {
                        "ssl" | "http2" => {}
                        "default_server" => out.note(c, "default_server: vigie answers hosts no site serves with 421 ([server] unknown_host)"),
                        f => out.note(c, &format!("{f}: ignored")),
                    }
                }
            }
            _ => {}
        }
    }
    let meaningful: Vec<&Directive> = d
        .children()
        .iter()
        .filter(|c| {
            !matches!(
                c.name.as_str(),
                "listen" | "server_name" | "access_log" | "error_log"
            )
        })
        .collect();
    let redirect_to = match meaningful.as_slice() {
        [r] if r.name == "return"
            && matches!(
                r.args.first().map(String::as_str),
                Some("301" | "302" | "308")
            ) =>
        {
            r.args
                .get(1)
                .and_then(|u| u.strip_prefix("https://"))
                .and_then(|u| u.strip_suffix("$request_uri"))
                .map(str::to_string)
        }
        _ => None,
    };
    Server {
        d,
        names,
        ssl,
        redirect_to,
    }
}

fn site(out: &mut Out, s: &Server<'_>, names: &[String], redirect_www: bool) {
    let d = s.d;
    let mut t = format!("{}[[sites]]\nnames = {}\n", from(&d.pos), list(names));
    if redirect_www {
        t.push_str("redirect_www = \"to_apex\"\n");
    }
    let mut scope = Scope::default();
    let mut routes = String::new();
    let mut resp_set = Vec::new();
    let mut req_set = Vec::new();
    let mut cert = None;
    let mut key = None;
    let mut has_root_route = false;
    let mut server_return = None;
    let mut error_pages = Vec::new();
    for c in d.children() {
        match c.name.as_str() {
            "listen" | "server_name" => {}
            "ssl_certificate" => cert = c.args.first().cloned(),
            "ssl_certificate_key" => key = c.args.first().cloned(),
            "root" => scope.root = c.args.first().cloned(),
            "index" => scope.index = c.args.first().cloned(),
            "client_max_body_size" => match c.args.first().and_then(|a| size(a)) {
                Some(v) => {
                    let _ = writeln!(t, "max_body = {v}");
                }
                None => out.fail(c, "unreadable size"),
            },
            "add_header" => header_set(out, c, &mut resp_set),
            "proxy_set_header" => req_header(out, c, &mut req_set),
            "limit_req" => limit(out, c, &mut t),
            "return" => server_return = Some(c),
            "error_page" => error_pages.push(c),
            "location" => {
                if c.args.last().is_some_and(|p| p == "/") && c.args.len() == 1 {
                    has_root_route = true;
                }
                routes.push_str(&location(out, c, &scope));
            }
            _ => other(out, c),
        }
    }
    slash_redirects(out, d, &mut routes);
    if let Some(r) = server_return {
        if !routes.is_empty() {
            out.note(r, "a server-level return applies before locations in nginx; vigie puts it on the / route");
        }
        let body = ret(out, r);
        let _ = write!(
            routes,
            "{}[[sites.routes]]\npath = \"/\"\n{body}",
            from(&r.pos)
        );
    } else if !has_root_route && scope.root.is_some() {
        let body = static_files(&scope, "/", None);
        let _ = write!(
            routes,
            "{}[[sites.routes]]\npath = \"/\"\n{body}",
            from(&d.pos)
        );
    }
    match (cert, key) {
        (Some(c), _) if c.starts_with("/etc/letsencrypt/live/") => {
            t.push_str("tls = \"acme\"\n");
            out.report.push(format!("{}:{}: ssl_certificate — certbot certificate: vigie obtains and renews it itself (tls = \"acme\"; set [acme] email, then stop certbot's timer)", d.pos.file.display(), d.pos.line));
        }
        (Some(c), Some(k)) => {
            let _ = writeln!(t, "tls = {{ cert = {}, key = {} }}", q(&c), q(&k));
        }
        (None, _) if s.ssl => t.push_str("tls = \"acme\"\n"),
        _ => {}
    }
    if !resp_set.is_empty() {
        let _ = writeln!(t, "response_headers = {{ set = {} }}", str_table(&resp_set));
    }
    if !req_set.is_empty() {
        let _ = writeln!(t, "request_headers = {{ set = {} }}", str_table(&req_set));
    }
    let pages = error_page_files(out, d, &scope, &error_pages);
    if !pages.is_empty() {
        let items: Vec<String> = pages
            .iter()
            .map(|(code, file)| format!("{} = {{ file = {} }}", q(code), q(file)))
            .collect();
        let _ = writeln!(t, "error_pages = {{ {} }}", items.join(", "));
    }
    t.push('\n');
    t.push_str(&routes);
    out.sites.push_str(&t);
}

pub(super) fn header_set(out: &mut Out, c: &Directive, set: &mut Vec<(String, String)>) {
    let [name, value, rest @ ..] = c.args.as_slice() else {
        return out.fail(c, "add_header takes a name and a value");
    };
    if value.contains('$') {
        return out.note(
            c,
            "values with variables are not translated; set a fixed value",
        );
    }
    if !rest.iter().any(|a| a == "always") {
        out.note(
            c,
            "vigie adds the header on every status (nginx without `always`: only on 2xx/3xx)",
        );
    }
    set.push((name.clone(), value.clone()));
}

pub(super) fn req_header(out: &mut Out, c: &Directive, set: &mut Vec<(String, String)>) {
    let [name, value] = c.args.as_slice() else {
        return out.fail(c, "proxy_set_header takes a name and a value");
    };
    if BUILT_IN.contains(&name.to_ascii_lowercase().as_str()) {
        return out.note(c, "vigie sets Host, X-Forwarded-For/-Proto/-Host and X-Real-IP itself and tunnels WebSockets: nothing to write");
    }
    if value.contains('$') {
        return out.note(
            c,
            "values with variables are not translated; set a fixed value",
        );
    }
    set.push((name.clone(), value.clone()));
}

const BUILT_IN: &[&str] = &[
    "host",
    "x-real-ip",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "upgrade",
    "connection",
];

pub(super) fn limit(out: &mut Out, c: &Directive, t: &mut String) {
    let Some(zone) = c.args.iter().find_map(|a| a.strip_prefix("zone=")) else {
        return out.fail(c, "limit_req without zone=");
    };
    let _ = writeln!(t, "limit = {}", q(zone));
    let mut opts = Vec::new();
    for a in &c.args {
        if let Some(b) = a.strip_prefix("burst=") {
            opts.push(format!("burst = {b}\n"));
        } else if a == "nodelay" {
            opts.push("nodelay = true\n".into());
        } else if let Some(v) = a.strip_prefix("delay=") {
            opts.push(format!("delay = {v}\n"));
        }
    }
    if out.limit_opts.contains_key(zone) {
        out.note(c, "vigie keeps burst/nodelay/delay on the zone: the first limit_req of this zone sets them");
    } else {
        out.limit_opts.insert(zone.to_string(), opts);
    }
}

pub(super) fn other(out: &mut Out, c: &Directive) {
    match c.name.as_str() {
        "access_log" => out.note(c, "vigie writes one access line per request to stderr; set [log] access"),
        "error_log" => out.note(c, "vigie logs to stderr (journald)"),
        "gzip" | "gzip_types" | "gzip_comp_level" | "gzip_min_length" | "gzip_vary" | "gzip_proxied" => {
            out.note(c, "vigie compresses text responses by default (`compress` to tune)")
        }
        "error_page" => out.note(c, "not translated: vigie's error_pages cover vigie's own errors; write error_pages = { \"502\" = { file = \"...\" } }"),
        n if n.starts_with("ssl_") => out.note(c, "vigie's TLS settings are fixed (TLS 1.2+ AEAD, session resumption)"),
        n if n.starts_with("proxy_") => out.note(c, "set it per location"),
        "if" => out.fail(c, "`if` blocks are not translated; express them as routes"),
        _ => out.note(c, "not translated"),
    }
}

/// `return CODE [URL|TEXT]`.
pub(super) fn ret(out: &mut Out, c: &Directive) -> String {
    let code: u16 = c.args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
    let arg = c.args.get(1);
    match (code, arg) {
        (301 | 302 | 303 | 307 | 308, Some(url)) => {
            format!("redirect = {{ to = {}, status = {code} }}\n", q(url))
        }
        (444, _) => "respond = { status = 444 }\n".into(),
        (100..=599, Some(text)) => format!(
            "respond = {{ status = {code}, body = {}, content_type = \"text/plain\" }}\n",
            q(text)
        ),
        (100..=599, None) => format!("respond = {{ status = {code} }}\n"),
        _ => {
            out.fail(c, "unreadable return");
            String::new()
        }
    }
}

pub(super) fn static_files(scope: &Scope, prefix: &str, alias: Option<&str>) -> String {
    // nginx's root has the whole URI appended; vigie's root is below the route prefix (alias).
    let root = match (alias, &scope.root) {
        (Some(a), _) => a.to_string(),
        (None, Some(r)) => format!(
            "{}{}",
            r.trim_end_matches('/'),
            if prefix == "/" {
                ""
            } else {
                prefix.trim_end_matches('/')
            }
        ),
        (None, None) => String::new(),
    };
    match &scope.index {
        Some(i) => format!("static = {{ root = {}, index = {} }}\n", q(&root), q(i)),
        None => format!("static = {{ root = {} }}\n", q(&root)),
    }
}

/// `error_page CODE... /uri` of a server: each code with the file that serves `/uri` (the
/// `= /uri` location, else the longest prefix location holding it, else the server's root).
/// nginx without `proxy_intercept_errors` shows them for its own errors only, as vigie's
/// `error_pages` do.
fn error_page_files(
    out: &mut Out,
    server: &Directive,
    scope: &Scope,
    list: &[&Directive],
) -> Vec<(String, String)> {
    let mut pages = Vec::new();
    for c in list {
        let Some((uri, codes)) = c.args.split_last() else {
            continue;
        };
        if !uri.starts_with('/')
            || codes.is_empty()
            || codes.iter().any(|k| k.parse::<u16>().is_err())
        {
            out.note(c, "not translated: only `error_page CODE... /file` is; write error_pages = { \"502\" = { file = \"...\" } }");
            continue;
        }
        match page_file(server, scope, uri) {
            Some(file) => pages.extend(codes.iter().map(|k| (k.clone(), file.clone()))),
            None => out.note(c, &format!("not translated: no root or alias serves {uri}; write error_pages = {{ \"{}\" = {{ file = \"...\" }} }}", codes[0])),
        }
    }
    pages
}

/// The file nginx serves for `uri` in `server`, from `root`/`alias`.
fn page_file(server: &Directive, scope: &Scope, uri: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for l in server.children().iter().filter(|c| c.name == "location") {
        let (exact, p) = match l.args.as_slice() {
            [m, p] if m == "=" => (true, p.as_str()),
            [m, p] if m == "^~" => (false, p.as_str()),
            [p] => (false, p.as_str()),
            _ => continue,
        };
        if (exact && p != uri) || !uri.starts_with(p) {
            continue;
        }
        let dir = |name: &str| {
            l.children()
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.args.first().cloned())
        };
        let file = match (dir("alias"), dir("root").or_else(|| scope.root.clone())) {
            (Some(a), _) => format!("{a}{}", &uri[p.len()..]),
            (None, Some(r)) => format!("{}{uri}", r.trim_end_matches('/')),
            (None, None) => continue,
        };
        let rank = if exact { usize::MAX } else { p.len() };
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, file));
        }
    }
    best.map(|(_, f)| f).or_else(|| {
        scope
            .root
            .as_ref()
            .map(|r| format!("{}{uri}", r.trim_end_matches('/')))
    })
}

/// nginx answers `/orders` with a 301 to `/orders/` when `location /orders/` proxies and no
/// location names `/orders` itself: an exact route does the same (without the query).
fn slash_redirects(out: &mut Out, server: &Directive, routes: &mut String) {
    let locations: Vec<&Directive> = server
        .children()
        .iter()
        .filter(|c| c.name == "location")
        .collect();
    for l in &locations {
        let Some(p) = l.args.last() else { continue };
        let proxied = l.children().iter().any(|c| c.name == "proxy_pass");
        let modifier_ok = l.args.len() == 1 || l.args[0] == "^~";
        if !proxied || !modifier_ok || p == "/" || !p.ends_with('/') {
            continue;
        }
        let bare = p.trim_end_matches('/');
        if locations
            .iter()
            .any(|o| o.args.last().is_some_and(|a| a == bare))
        {
            continue;
        }
        out.note(l, &format!("{bare} (no slash) is redirected to {p} with 301 as nginx does, by an exact route (the query is not kept)"));
        let _ = write!(
            routes,
            "{}[[sites.routes]]\nexact = {}\nredirect = {{ to = {}, status = 301 }}\n\n",
            from(&l.pos),
            q(bare),
            q(&format!("$scheme://$host{p}"))
        );
    }
}
