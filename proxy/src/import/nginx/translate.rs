//! nginx directives → vigie TOML and a report.
//!
//! Invariants: every table written carries a `# from FILE:LINE` comment; every directive
//! that is not translated exactly gets one report line `file:line: directive — what vigie
//! does instead / what to do`; [`Import::serves_same_sites`] is false only when a site or a
//! location could not be expressed at all (the exit status of `vigie import nginx`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::emit::{duration, list, q, size, str_table};
use super::parse::{parse_file, Directive, ParseError, Pos};

/// The result of an import.
#[derive(Debug, Default)]
pub struct Import {
    /// The vigie configuration (TOML).
    pub toml: String,
    /// `file:line: directive — …` lines, in file order.
    pub report: Vec<String>,
    /// False when the result would not serve the same sites.
    pub serves_same_sites: bool,
}

/// Parses `path` (following includes) and translates it.
pub fn import_file(path: &Path) -> Result<Import, ParseError> {
    let tree = parse_file(path)?;
    Ok(translate(&tree))
}

/// Directives that need no translation: vigie does it by default.
const NOT_NEEDED: &[(&str, &str)] = &[
    (
        "proxy_http_version",
        "vigie speaks HTTP/1.1 to upstreams and tunnels WebSockets by itself",
    ),
    ("proxy_buffering", "vigie streams responses"),
    (
        "proxy_redirect",
        "vigie does not rewrite Location headers; check the upstream's redirects",
    ),
    (
        "ssl_protocols",
        "vigie offers TLS 1.2 and 1.3 (set [tls] min_version if needed)",
    ),
    ("ssl_ciphers", "vigie offers AEAD ciphers only"),
    ("ssl_prefer_server_ciphers", "vigie's cipher order is fixed"),
    ("ssl_session_cache", "vigie resumes TLS sessions by itself"),
    (
        "ssl_session_timeout",
        "vigie resumes TLS sessions by itself",
    ),
    ("ssl_dhparam", "vigie uses ECDHE only"),
    ("sendfile", "not applicable"),
    ("tcp_nopush", "not applicable"),
    ("tcp_nodelay", "not applicable"),
    ("keepalive_timeout", "vigie keeps client connections 60s"),
    ("types_hash_max_size", "not applicable"),
    ("server_tokens", "vigie sends no version"),
    ("include_mime_types", "not applicable"),
    ("default_type", "vigie guesses types from the extension"),
    ("types", "vigie guesses types from the extension"),
    ("user", "run vigie under systemd (dist/vigie.service)"),
    (
        "worker_processes",
        "vigie uses [server] threads (default: the CPUs)",
    ),
    ("pid", "vigie writes its pid into state_dir"),
    ("worker_connections", "not applicable"),
    ("multi_accept", "not applicable"),
    ("charset", "vigie keeps the upstream's Content-Type"),
];

/// What the translation has written so far (shared with [`super::site`]).
#[derive(Default)]
pub(super) struct Out {
    pub(super) http: Vec<String>,
    pub(super) https: Vec<String>,
    pub(super) upstreams: String,
    pub(super) limits: String,
    pub(super) caches: String,
    pub(super) client_ip: String,
    pub(super) sites: String,
    pub(super) report: Vec<String>,
    pub(super) fatal: bool,
    /// Upstream blocks by name (for `proxy_pass http://NAME`).
    pub(super) upstream_names: Vec<String>,
    /// Upstreams made for a bare `proxy_pass http://host:port`, by address.
    pub(super) direct: BTreeMap<String, String>,
    /// Upstream timeouts set by `proxy_*_timeout`, by upstream name.
    pub(super) timeouts: BTreeMap<String, Vec<(String, String)>>,
    /// `limit_req` options (burst, nodelay, delay) by zone, from its first use.
    pub(super) limit_opts: BTreeMap<String, Vec<String>>,
}

impl Out {
    pub(super) fn note(&mut self, d: &Directive, what: &str) {
        self.report.push(format!(
            "{}:{}: {} — {what}",
            d.pos.file.display(),
            d.pos.line,
            d.name
        ));
    }
    pub(super) fn fail(&mut self, d: &Directive, what: &str) {
        self.note(d, &format!("NOT TRANSLATED: {what}"));
        self.fatal = true;
    }
}

pub(super) fn from(pos: &Pos) -> String {
    format!("# from {}:{}\n", pos.file.display(), pos.line)
}

/// Translates a parsed nginx configuration.
pub fn translate(tree: &[Directive]) -> Import {
    let mut out = Out::default();
    let http: Vec<&Directive> = match tree.iter().find(|d| d.name == "http") {
        Some(h) => h.children().iter().collect(),
        None => tree.iter().collect(),
    };
    for d in tree.iter().filter(|d| d.name != "http") {
        if !http.iter().any(|h| std::ptr::eq(*h, d)) {
            top_level(&mut out, d);
        }
    }
    // Upstreams and zones first: servers refer to them.
    for d in &http {
        match d.name.as_str() {
            "upstream" => upstream(&mut out, d),
            "limit_req_zone" => limit_zone(&mut out, d),
            "limit_conn_zone" => {}
            "proxy_cache_path" => cache_zone(&mut out, d),
            _ => {}
        }
    }
    let servers: Vec<&Directive> = http
        .iter()
        .copied()
        .filter(|d| d.name == "server")
        .collect();
    for d in &http {
        match d.name.as_str() {
            "upstream" | "limit_req_zone" | "proxy_cache_path" | "server" => {}
            _ => http_level(&mut out, d),
        }
    }
    super::site::servers(&mut out, &servers);
    finish(out)
}

fn top_level(out: &mut Out, d: &Directive) {
    match d.name.as_str() {
        "events" => {}
        "error_log" => out.note(d, "vigie logs to stderr (journald); set [log] level"),
        n => match NOT_NEEDED.iter().find(|(k, _)| *k == n) {
            Some((_, why)) => out.note(d, why),
            None => out.note(d, "ignored: not an http setting vigie knows"),
        },
    }
}

/// A directive directly in `http { }` (not a server, upstream or zone).
fn http_level(out: &mut Out, d: &Directive) {
    match d.name.as_str() {
        "set_real_ip_from" => {
            if out.client_ip.is_empty() {
                out.client_ip = format!("{}[client_ip]\ntrusted_proxies = [", from(&d.pos));
            } else {
                out.client_ip.push_str(", ");
            }
            out.client_ip.push_str(&q(d.args.first().map_or("", String::as_str)));
        }
        "real_ip_header" => out.note(d, "vigie reads X-Forwarded-For from trusted proxies ([client_ip] header)"),
        "access_log" => out.note(d, "vigie writes one access line per request to stderr; set [log] access"),
        "error_log" => out.note(d, "vigie logs to stderr (journald); set [log] level"),
        "gzip" | "gzip_types" | "gzip_comp_level" | "gzip_min_length" | "gzip_vary" | "gzip_proxied" => {
            out.note(d, "vigie compresses text responses by default (gzip and brotli; `compress` on a site to tune)")
        }
        "limit_conn_zone" | "map" | "log_format" | "proxy_cache_key" => {
            out.note(d, "not translated: no vigie equivalent at http level")
        }
        "include" => {}
        n => match NOT_NEEDED.iter().find(|(k, _)| *k == n) {
            Some((_, why)) => out.note(d, why),
            None => out.note(d, "not translated at http level; set it on the sites if it matters"),
        },
    }
}

fn upstream(out: &mut Out, d: &Directive) {
    let Some(name) = d.args.first() else {
        return out.fail(d, "upstream without a name");
    };
    out.upstream_names.push(name.clone());
    let mut t = format!("{}[upstreams.{}]\n", from(&d.pos), q(name));
    let mut servers = Vec::new();
    let mut extra = String::new();
    for c in d.children() {
        match c.name.as_str() {
            "server" => {
                let Some(addr) = c.args.first() else {
                    out.fail(c, "server without an address");
                    continue;
                };
                let mut weight = None;
                for a in &c.args[1..] {
                    if let Some(w) = a.strip_prefix("weight=") {
                        weight = Some(w.to_string());
                    } else if let Some(v) = a.strip_prefix("max_fails=") {
                        let _ = writeln!(extra, "max_fails = {v}");
                    } else if let Some(v) = a.strip_prefix("fail_timeout=") {
                        if let Some(v) = duration(v) {
                            let _ = writeln!(extra, "fail_timeout = {}", q(&v));
                        }
                    } else if a == "backup" {
                        out.note(c, "backup: vigie has no backup servers; this one takes normal traffic, or remove it");
                    } else {
                        out.note(c, &format!("{a}: ignored"));
                    }
                }
                let addr = if addr.contains(':') {
                    addr.clone()
                } else {
                    format!("{addr}:80")
                };
                servers.push(match weight {
                    Some(w) => format!("{{ addr = {}, weight = {w} }}", q(&addr)),
                    None => q(&addr),
                });
            }
            "least_conn" => extra.push_str("balance = \"least_conn\"\n"),
            "ip_hash" => {
                extra.push_str("balance = \"hash\"\nhash_on = \"client_ip\"\n");
                out.note(
                    c,
                    "vigie keeps each client on one server too, but by its own consistent hash of the whole address: a client may land on another server than under nginx",
                );
            }
            "hash" => {
                extra.push_str("balance = \"hash\"\n");
                out.note(
                    c,
                    "vigie hashes on the client address (or hash_on = \"header:NAME\")",
                );
            }
            "keepalive" | "keepalive_timeout" | "keepalive_requests" => {
                out.note(c, "vigie pools upstream connections by itself")
            }
            _ => out.note(c, "ignored in upstream"),
        }
    }
    // max_fails/fail_timeout are per server in nginx, per group in vigie: keep the first.
    let mut seen = Vec::new();
    for line in extra.lines() {
        let key = line.split(' ').next().unwrap_or("");
        if !seen.contains(&key) {
            seen.push(key);
            t.push_str(line);
            t.push('\n');
        }
    }
    let _ = writeln!(t, "servers = [{}]", servers.join(", "));
    out.upstreams.push_str(&t);
    out.upstreams.push('\n');
}

fn limit_zone(out: &mut Out, d: &Directive) {
    let zone = d.args.iter().find_map(|a| a.strip_prefix("zone="));
    let rate = d.args.iter().find_map(|a| a.strip_prefix("rate="));
    let (Some(zone), Some(rate)) = (zone, rate) else {
        return out.fail(d, "limit_req_zone without zone= and rate=");
    };
    let name = zone.split(':').next().unwrap_or(zone);
    if d.args
        .first()
        .is_some_and(|k| k != "$binary_remote_addr" && k != "$remote_addr")
    {
        out.note(d, "vigie keys limits on the client address only");
    }
    let _ = write!(
        out.limits,
        "{}[limits.{}]\nrate = {}\n",
        from(&d.pos),
        q(name),
        q(rate)
    );
    let _ = writeln!(out.limits, "#LIMIT_OPTS:{name}#");
}

fn cache_zone(out: &mut Out, d: &Directive) {
    let Some(zone) = d.args.iter().find_map(|a| a.strip_prefix("keys_zone=")) else {
        return out.fail(d, "proxy_cache_path without keys_zone=");
    };
    let (name, mem) = zone.split_once(':').unwrap_or((zone, "10m"));
    let mem = size(mem).unwrap_or_else(|| q("10MiB"));
    // nginx's keys_zone holds keys only; the bodies are on disk up to max_size.
    let memory = d
        .args
        .iter()
        .find_map(|a| a.strip_prefix("max_size="))
        .and_then(size)
        .unwrap_or(mem);
    let _ = write!(
        out.caches,
        "{}[cache.{}]\nmemory = {memory}\n\n",
        from(&d.pos),
        q(name)
    );
    out.note(
        d,
        "the zone is kept in memory, bounded by max_size; to keep entries across restarts add disk = \"STATE_DIR/cache/NAME\" (vigie refuses nginx's directory: it holds files vigie did not write)",
    );
}

fn finish(mut out: Out) -> Import {
    let mut toml = String::from(
        "# Written by `vigie import nginx`; read the report it printed.\n\n[server]\n",
    );
    let _ = writeln!(toml, "http = {}", list(&out.http));
    let _ = writeln!(toml, "https = {}", list(&out.https));
    toml.push('\n');
    if !out.client_ip.is_empty() {
        toml.push_str(&out.client_ip);
        toml.push_str("]\n\n");
    }
    let mut limits = out.limits.clone();
    for (zone, opts) in &out.limit_opts {
        limits = limits.replace(&format!("#LIMIT_OPTS:{zone}#\n"), &opts.join(""));
    }
    while let Some(start) = limits.find("#LIMIT_OPTS:") {
        let end = limits[start..]
            .find("#\n")
            .map_or(limits.len(), |e| start + e + 2);
        limits.replace_range(start..end, "");
    }
    for (addr, name) in &out.direct {
        let _ = write!(
            out.upstreams,
            "[upstreams.{}]\nservers = [{}]\n",
            q(name),
            q(addr)
        );
        if let Some(t) = out.timeouts.get(name) {
            for (k, v) in t {
                let _ = writeln!(out.upstreams, "{k} = {}", q(v));
            }
        }
        out.upstreams.push('\n');
    }
    for part in [&limits, &out.caches, &out.upstreams] {
        if !part.is_empty() {
            toml.push_str(part);
            toml.push('\n');
        }
    }
    toml.push_str(&out.sites);
    let _ = str_table;
    Import {
        toml,
        report: out.report,
        serves_same_sites: !out.fatal,
    }
}
