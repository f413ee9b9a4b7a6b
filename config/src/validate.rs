//! Raw TOML -> validated [`Config`], collecting every error with its position.

mod details;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use toml::Spanned;

use crate::error::{line_col, ConfigError, ConfigErrors};

mod cache;
use crate::model::{
    AccessFormat, Acme, Action, Balance, ChallengeKind, ClientIp, Compression, Config, Eab,
    ErrorPages, HashKey, HeaderOps, HealthCheck, HostPattern, LimitZone, Log, LogTarget, Rate,
    Route, Server, ServerAddr, Site, SiteTls, TlsPolicy, TlsVersion, TrailingSlash, Upstream,
    UpstreamServer, Warning,
};
use crate::raw::{
    Int, RawAcme, RawClientIp, RawCompress, RawConfig, RawHeaderOps, RawHealth, RawLimit, RawLog,
    RawRoute, RawServer, RawSite, RawTls, RawUpstream, Size, Str, StrList, StrMap, StrOr,
};

const DEFAULT_ADMIN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 9145);
const DEFAULT_STATE_DIR: &str = "/var/lib/vigie";
const DEFAULT_ACME_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";
const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
const MAX_WEIGHT: i64 = 1000;
const U32_MAX: i64 = u32::MAX as i64;

const DURATION_EXPECTED: &str = "expected a number and a unit, like \"30s\", \"5m\", \"1h\"";
const SIZE_EXPECTED: &str =
    "expected a number and a unit among B, KiB, MiB, GiB (or KB, MB, GB), like \"20MiB\"";
const RATE_EXPECTED: &str = "expected COUNT/UNIT with UNIT s, m or h, like \"100/m\"";
const LISTEN_EXPECTED: &str = "expected IP:PORT, like \"0.0.0.0:443\" or \"[::]:443\"";

/// Parses and validates `text`; `origin` names the file in messages.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            return Err(ConfigErrors(vec![ConfigError {
                origin: origin.to_owned(),
                line,
                col,
                message: toml_message(&e),
            }]));
        }
    };
    let mut v = Validator {
        text,
        origin,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        v.errors.sort_by_key(|e| (e.line, e.col));
        Err(ConfigErrors(v.errors))
    }
}

/// toml's message on one line, in the words of this file format (keys, tables, arrays).
fn toml_message(e: &toml::de::Error) -> String {
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    [
        ("unknown field", "unknown key"),
        ("missing field", "missing key"),
        ("expected i64", "expected an integer"),
        ("invalid type: sequence", "invalid type: array"),
        ("invalid type: map", "invalid type: table"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ]
    .iter()
    .fold(message, |m, (from, to)| m.replace(from, to))
}

/// Names other sections define, so that references can be checked.
struct Refs {
    upstreams: BTreeSet<String>,
    limits: BTreeSet<String>,
    caches: BTreeSet<String>,
    header_sets: BTreeMap<String, HeaderOps>,
    https_listeners: bool,
    challenge: ChallengeKind,
    /// Top-level error pages, which sites inherit.
    error_pages: ErrorPages,
}

/// Settings a site or a route sets, before inheritance.
#[derive(Default)]
struct Layer {
    /// `Some(None)`: set to unlimited (`0`).
    max_body: Option<Option<u64>>,
    /// `Some(None)`: set to `"off"`.
    limit: Option<Option<String>>,
    response_sets: HeaderOps,
    response: HeaderOps,
    request: HeaderOps,
    /// `Some(None)`: `compress = false`.
    compress: Option<Option<Compression>>,
}

struct Validator<'t> {
    text: &'t str,
    origin: &'t str,
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

impl Validator<'_> {
    // ---- reporting ----

    fn error(&mut self, at: usize, message: impl Into<String>) {
        let (line, col) = line_col(self.text, at);
        self.errors.push(ConfigError {
            origin: self.origin.to_owned(),
            line,
            col,
            message: message.into(),
        });
    }

    fn line(&self, at: usize) -> usize {
        line_col(self.text, at).0
    }

    /// Where the key of the value starting at `value_start` begins (`key = value` on one
    /// line); `value_start` itself when it is not preceded by `key =` (a table header).
    fn key_at(&self, value_start: usize) -> usize {
        key_start(self.text, value_start)
    }

    // ---- checked conversions ----

    /// Applies `parse` to a string value; reports its error at the value.
    fn check<T>(&mut self, s: &Str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        match parse(s.get_ref()) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(s.span().start, message);
                None
            }
        }
    }

    fn duration(&mut self, s: &Option<Str>, default: Duration) -> Duration {
        s.as_ref()
            .and_then(|s| self.check(s, parse_duration))
            .unwrap_or(default)
    }

    /// A duration that must not be zero (intervals and timeouts).
    fn nonzero_duration(&mut self, s: &Option<Str>, what: &str, default: Duration) -> Duration {
        match s {
            None => default,
            Some(s) => match self.check(s, parse_duration) {
                Some(d) if d.is_zero() => {
                    self.error(
                        s.span().start,
                        format!(
                            "invalid {what} \"{}\": expected more than zero",
                            s.get_ref()
                        ),
                    );
                    default
                }
                Some(d) => d,
                None => default,
            },
        }
    }

    fn size(&mut self, s: &Size) -> Option<u64> {
        let at = s.span().start;
        let parsed = match s.get_ref() {
            StrOr::Str(text) => parse_size(text),
            StrOr::Other(n) => {
                u64::try_from(*n).map_err(|_| format!("invalid size {n}: {SIZE_EXPECTED}"))
            }
        };
        match parsed {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(at, message);
                None
            }
        }
    }

    fn nonzero_size(&mut self, s: &Size, what: &str) -> Option<u64> {
        match self.size(s)? {
            0 => {
                self.error(
                    s.span().start,
                    format!("invalid {what} 0: expected a size above zero, like \"64MiB\""),
                );
                None
            }
            n => Some(n),
        }
    }

    /// An integer in `min..=max`.
    fn int(&mut self, v: &Int, what: &str, min: i64, max: i64) -> Option<i64> {
        let n = *v.get_ref();
        if (min..=max).contains(&n) {
            return Some(n);
        }
        let expected = if max >= U32_MAX {
            format!("expected an integer of at least {min}")
        } else {
            format!("expected an integer from {min} to {max}")
        };
        self.error(v.span().start, format!("invalid {what} {n}: {expected}"));
        None
    }

    fn u32_or(&mut self, v: &Option<Int>, what: &str, min: i64, max: i64, default: u32) -> u32 {
        v.as_ref()
            .and_then(|v| self.int(v, what, min, max))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(default)
    }

    /// A status code among `allowed`.
    fn status_in(&mut self, v: &Option<Int>, what: &str, allowed: &[u16], default: u16) -> u16 {
        let Some(v) = v else { return default };
        let n = *v.get_ref();
        if let Some(s) = allowed.iter().find(|s| i64::from(**s) == n) {
            return *s;
        }
        self.error(
            v.span().start,
            format!("invalid {what} {n}: expected {}", or_list(allowed)),
        );
        default
    }

    /// A status code in `100..=599`.
    fn status_code(&mut self, v: &Option<Int>, what: &str, default: u16) -> u16 {
        v.as_ref()
            .and_then(|v| self.int(v, what, 100, 599))
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(default)
    }

    fn path(&mut self, s: &Str, what: &str) -> PathBuf {
        if s.get_ref().is_empty() {
            self.error(s.span().start, format!("empty {what}: expected a path"));
        }
        PathBuf::from(s.get_ref())
    }

    fn reference(
        &mut self,
        s: &Str,
        kind: &str,
        section: &str,
        defined: &BTreeSet<String>,
    ) -> bool {
        if defined.contains(s.get_ref()) {
            return true;
        }
        let message = if defined.is_empty() {
            format!(
                "{kind} \"{}\" is not defined; no [{section}.NAME] table is defined",
                s.get_ref()
            )
        } else {
            let plural = format!("{kind}s");
            let names: Vec<&str> = defined.iter().map(String::as_str).collect();
            format!(
                "{kind} \"{}\" is not defined; defined {plural}: {}",
                s.get_ref(),
                names.join(", ")
            )
        };
        self.error(s.span().start, message);
        false
    }

    fn header_name(&mut self, s: &Str) -> Option<HeaderName> {
        self.check(s, |name| {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                format!(
                    "invalid header name \"{name}\": expected letters, digits and \
                     !#$%&'*+-.^_`|~ only, like \"X-Frame-Options\""
                )
            })
        })
    }

    fn header_value(&mut self, s: &Str) -> Option<HeaderValue> {
        self.check(s, |value| {
            HeaderValue::from_str(value).map_err(|_| {
                format!(
                    "invalid header value \"{}\": expected printable text without line breaks \
                     or control characters",
                    value.escape_debug()
                )
            })
        })
    }

    /// A table of headers to set, in file order; the same header twice is an error.
    fn header_map(&mut self, map: &StrMap) -> Vec<(HeaderName, HeaderValue)> {
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut out: Vec<(HeaderName, HeaderValue)> = Vec::new();
        let mut seen: HashMap<HeaderName, usize> = HashMap::new();
        for (k, v) in entries {
            let name = self.header_name(k);
            let value = self.header_value(v);
            if let Some(name) = name {
                if let Some(first) = seen.get(&name) {
                    let line = self.line(*first);
                    self.error(
                        k.span().start,
                        format!(
                            "header \"{}\" is set twice in this table (line {line}): expected \
                             each header once (names ignore case)",
                            k.get_ref()
                        ),
                    );
                    continue;
                }
                seen.insert(name.clone(), k.span().start);
                if let Some(value) = value {
                    out.push((name, value));
                }
            }
        }
        out
    }

    fn header_ops(&mut self, raw: &Option<RawHeaderOps>) -> HeaderOps {
        let Some(raw) = raw else {
            return HeaderOps::default();
        };
        let set = self.header_map(&raw.set);
        let mut remove = Vec::new();
        for r in &raw.remove {
            if let Some(name) = self.header_name(r) {
                if !remove.contains(&name) {
                    remove.push(name);
                }
            }
        }
        HeaderOps { set, remove }
    }

    fn net(&mut self, s: &Str) -> Option<IpNet> {
        self.check(s, parse_net)
    }

    // ---- sections ----

    fn config(&mut self, raw: RawConfig) -> Config {
        let server = self.server(raw.server.as_ref());
        let error_pages = self.error_pages(raw.error_pages.as_ref(), &BTreeMap::new());
        let acme = raw.acme.as_ref().map(|a| self.acme(a));
        let limits = self.limits(&raw.limits);
        let caches = self.caches(&raw.cache);
        let header_sets = self.header_sets(&raw.headers);
        let upstreams = self.upstreams(&raw.upstreams);
        let client_ip = self.client_ip(raw.client_ip.as_ref());
        let log = self.log(raw.log.as_ref());

        let refs = Refs {
            upstreams: raw.upstreams.keys().map(|k| k.get_ref().clone()).collect(),
            limits: raw.limits.keys().map(|k| k.get_ref().clone()).collect(),
            caches: raw.cache.keys().map(|k| k.get_ref().clone()).collect(),
            header_sets,
            https_listeners: !server.https.is_empty(),
            challenge: acme.as_ref().map_or(ChallengeKind::Http01, |a| a.challenge),
            error_pages,
        };
        let mut seen_names: HashMap<HostPattern, usize> = HashMap::new();
        let sites: Vec<Site> = raw
            .sites
            .iter()
            .map(|s| self.site(s, &refs, &mut seen_names))
            .collect();

        let tls = self.tls(raw.tls.as_ref(), &sites);
        let uses_acme = sites.iter().any(|s| s.tls == Some(SiteTls::Acme));
        let acme = acme.or_else(|| uses_acme.then(default_acme));

        Config {
            server,
            tls,
            acme,
            client_ip,
            limits,
            caches,
            upstreams,
            sites,
            log,
            error_pages: refs.error_pages,
            warnings: {
                let mut w = std::mem::take(&mut self.warnings);
                w.sort_by_key(|w| (w.line, w.col));
                w
            },
        }
    }

    fn listeners(&mut self, raw: &Option<Spanned<StrOr<StrList>>>) -> Vec<(SocketAddr, usize)> {
        let Some(raw) = raw else { return Vec::new() };
        let items: Vec<(&str, usize)> = match raw.get_ref() {
            StrOr::Str(s) => vec![(s.as_str(), raw.span().start)],
            StrOr::Other(list) => list
                .iter()
                .map(|s| (s.get_ref().as_str(), s.span().start))
                .collect(),
        };
        let mut out = Vec::new();
        for (text, at) in items {
            match parse_listen(text) {
                Ok(addr) => out.push((addr, at)),
                Err(message) => self.error(at, message),
            }
        }
        out
    }

    fn server(&mut self, raw: Option<&RawServer>) -> Server {
        let limits = self.request_limits(raw);
        let Some(raw) = raw else {
            return Server {
                header_timeout: limits.header_timeout,
                body_timeout: limits.body_timeout,
                max_header_bytes: limits.max_header_bytes,
                max_uri_bytes: limits.max_uri_bytes,
                request_buffer: limits.request_buffer,
                http: Vec::new(),
                https: Vec::new(),
                admin: Some(DEFAULT_ADMIN),
                state_dir: PathBuf::from(DEFAULT_STATE_DIR),
                threads: None,
                unknown_host_status: 421,
                grace_period: Duration::from_secs(10),
                admin_token: None,
            };
        };
        let http = self.listeners(&raw.http);
        let https = self.listeners(&raw.https);
        let admin = match &raw.admin {
            None => Some((DEFAULT_ADMIN, 0)), // position unused: see `all` below
            Some(a) => match a.get_ref() {
                StrOr::Other(false) => None,
                StrOr::Other(true) => {
                    self.error(
                        a.span().start,
                        "invalid admin true: expected an address like \"127.0.0.1:9145\", or \
                         false to turn it off",
                    );
                    None
                }
                StrOr::Str(s) => match parse_listen(s) {
                    Ok(addr) => Some((addr, a.span().start)),
                    Err(message) => {
                        self.error(a.span().start, message);
                        None
                    }
                },
            },
        };

        // Overlaps, across every listener. The default admin listener has no position.
        let all: Vec<(SocketAddr, Option<usize>)> = http
            .iter()
            .chain(&https)
            .map(|(a, at)| (*a, Some(*at)))
            .chain(admin.map(|(a, at)| (a, raw.admin.as_ref().map(|_| at))))
            .collect();
        for (j, (b, b_at)) in all.iter().enumerate() {
            let Some((a, a_at)) = all[..j].iter().find(|(a, _)| overlaps(a, b)) else {
                continue;
            };
            let Some(a_at) = a_at else { continue };
            match b_at {
                Some(b_at) => {
                    let line = self.line(*a_at);
                    self.error(
                        *b_at,
                        format!(
                            "listener {b} overlaps {a} (line {line}): two listeners on one port \
                             must not cover the same address"
                        ),
                    );
                }
                None => self.error(
                    *a_at,
                    format!(
                        "listener {a} overlaps the default admin listener {b}: two listeners on \
                         one port must not cover the same address; set [server] admin to another \
                         address or false"
                    ),
                ),
            }
        }

        let state_dir = match &raw.state_dir {
            Some(s) => self.path(s, "state_dir"),
            None => PathBuf::from(DEFAULT_STATE_DIR),
        };
        let threads = raw
            .threads
            .as_ref()
            .and_then(|t| self.int(t, "threads", 1, 1024))
            .and_then(|n| usize::try_from(n).ok());
        let unknown_host_status =
            self.status_in(&raw.unknown_host, "unknown_host status", &[421, 404], 421);
        let grace_period = self.duration(&raw.grace_period, Duration::from_secs(10));
        let admin_token =
            raw.admin_token.as_ref().and_then(|t| {
                self.check(t, |v| {
                if v.len() < 16 || v.chars().any(|c| !c.is_ascii_graphic()) {
                    Err("invalid admin_token: expected at least 16 printable characters without \
                         spaces (`openssl rand -hex 24` makes one)"
                        .to_owned())
                } else {
                    Ok(v.to_owned())
                }
            })
            });
        Server {
            http: http.into_iter().map(|(a, _)| a).collect(),
            https: https.into_iter().map(|(a, _)| a).collect(),
            admin: admin.map(|(a, _)| a),
            state_dir,
            threads,
            unknown_host_status,
            grace_period,
            admin_token,
            header_timeout: limits.header_timeout,
            body_timeout: limits.body_timeout,
            max_header_bytes: limits.max_header_bytes,
            max_uri_bytes: limits.max_uri_bytes,
            request_buffer: limits.request_buffer,
        }
    }

    fn acme(&mut self, raw: &Spanned<RawAcme>) -> Acme {
        let a = raw.get_ref();
        let email = a.email.as_ref().and_then(|e| {
            self.check(e, |e| {
                if e.contains('@') && !e.starts_with('@') && !e.ends_with('@') {
                    Ok(e.to_owned())
                } else {
                    Err(format!(
                        "invalid email \"{e}\": expected an address like \"ops@example.com\""
                    ))
                }
            })
        });
        let directory = a
            .directory
            .as_ref()
            .and_then(|d| {
                self.check(d, |d| {
                    if (d.starts_with("https://") || d.starts_with("http://"))
                        && !d.contains(char::is_whitespace)
                    {
                        Ok(d.to_owned())
                    } else {
                        Err(format!(
                            "invalid directory \"{d}\": expected an http:// or https:// URL, \
                             like \"{DEFAULT_ACME_DIRECTORY}\""
                        ))
                    }
                })
            })
            .unwrap_or_else(|| DEFAULT_ACME_DIRECTORY.to_owned());
        let challenge = a
            .challenge
            .as_ref()
            .and_then(|c| {
                self.check(c, |c| match c {
                    "http-01" => Ok(ChallengeKind::Http01),
                    "tls-alpn-01" => Ok(ChallengeKind::TlsAlpn01),
                    "dns-01" => Ok(ChallengeKind::Dns01),
                    other => Err(format!(
                        "invalid challenge \"{other}\": expected \"http-01\", \"tls-alpn-01\" \
                         or \"dns-01\""
                    )),
                })
            })
            .unwrap_or(ChallengeKind::Http01);
        let dns_hook = a.dns_hook.as_ref().map(|h| self.path(h, "dns_hook"));
        if challenge == ChallengeKind::Dns01 && dns_hook.is_none() {
            if let Some(c) = &a.challenge {
                self.error(
                    c.span().start,
                    "challenge \"dns-01\" has no dns_hook: expected dns_hook = \
                     \"/path/to/hook\" in [acme], \
                     a command called as `HOOK present|cleanup NAME VALUE`",
                );
            }
        }
        let eab = a.eab.as_ref().map(|e| {
            for (s, what) in [(&e.kid, "kid"), (&e.hmac_key, "hmac_key")] {
                if s.get_ref().is_empty() {
                    self.error(
                        s.span().start,
                        format!("empty eab {what}: expected the value given by the CA"),
                    );
                }
            }
            Eab {
                kid: e.kid.get_ref().clone(),
                hmac_key: e.hmac_key.get_ref().clone(),
            }
        });
        Acme {
            email,
            directory,
            challenge,
            ca_roots: a.ca_roots.as_ref().map(|p| self.path(p, "ca_roots")),
            eab,
            dns_hook,
        }
    }

    fn tls(&mut self, raw: Option<&Spanned<RawTls>>, sites: &[Site]) -> TlsPolicy {
        let mut policy = TlsPolicy {
            min_version: TlsVersion::V1_2,
            default_name: None,
        };
        let Some(raw) = raw else { return policy };
        let t = raw.get_ref();
        if let Some(v) = &t.min_version {
            policy.min_version = self
                .check(v, |v| match v {
                    "1.2" => Ok(TlsVersion::V1_2),
                    "1.3" => Ok(TlsVersion::V1_3),
                    other => Err(format!(
                        "invalid min_version \"{other}\": expected \"1.2\" or \"1.3\""
                    )),
                })
                .unwrap_or(TlsVersion::V1_2);
        }
        if let Some(name) = &t.default_name {
            let tls_names: Vec<&str> = sites
                .iter()
                .filter(|s| s.tls.is_some())
                .flat_map(|s| &s.names)
                .filter_map(|n| match n {
                    HostPattern::Exact(n) => Some(n.as_str()),
                    HostPattern::Wildcard(_) => None,
                })
                .collect();
            let wanted = parse_host_pattern(name.get_ref());
            match wanted {
                Ok(HostPattern::Exact(n)) if tls_names.contains(&n.as_str()) => {
                    policy.default_name = Some(n)
                }
                _ => {
                    let expected = if tls_names.is_empty() {
                        "no site has tls".to_owned()
                    } else {
                        format!("expected one of {}", tls_names.join(", "))
                    };
                    self.error(
                        name.span().start,
                        format!(
                            "default_name \"{}\" is not an exact name of a site with tls: \
                             {expected}",
                            name.get_ref()
                        ),
                    );
                }
            }
        }
        policy
    }

    fn client_ip(&mut self, raw: Option<&RawClientIp>) -> ClientIp {
        let mut out = ClientIp {
            trusted_proxies: Vec::new(),
            header: HeaderName::from_static("x-forwarded-for"),
        };
        let Some(raw) = raw else { return out };
        out.trusted_proxies = raw
            .trusted_proxies
            .iter()
            .filter_map(|n| self.net(n))
            .collect();
        if let Some(h) = &raw.header {
            if let Some(h) = self.header_name(h) {
                out.header = h;
            }
        }
        out
    }

    fn limits(&mut self, raw: &BTreeMap<Str, Spanned<RawLimit>>) -> BTreeMap<String, LimitZone> {
        let mut out = BTreeMap::new();
        for (name, zone) in raw {
            if name.get_ref() == "off" {
                self.error(
                    name.span().start,
                    "limit zone name \"off\" is reserved (limit = \"off\" turns limiting off): \
                     expected another name",
                );
            }
            let z = zone.get_ref();
            let rate = self.check(&z.rate, parse_rate);
            let burst = self.u32_or(&z.burst, "burst", 0, U32_MAX, 0);
            let nodelay = z.nodelay.as_ref().is_some_and(|n| *n.get_ref());
            let delay = z.delay.as_ref().and_then(|d| {
                let n = self.int(d, "delay", 0, U32_MAX)?;
                if nodelay {
                    self.error(
                        self.key_at(d.span().start),
                        "delay and nodelay = true cannot be combined: expected one of them",
                    );
                    return None;
                }
                if n > i64::from(burst) {
                    self.error(
                        d.span().start,
                        format!("invalid delay {n}: expected at most burst ({burst})"),
                    );
                    return None;
                }
                u32::try_from(n).ok()
            });
            let max_clients = z
                .max_clients
                .as_ref()
                .and_then(|m| self.int(m, "max_clients", 1, i64::MAX))
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(100_000);
            let status = self.status_in(&z.status, "limit status", &[429, 503], 429);
            let exempt = z.exempt.iter().filter_map(|n| self.net(n)).collect();
            let ipv6_prefix = z
                .ipv6_prefix
                .as_ref()
                .and_then(|p| self.int(p, "ipv6_prefix", 1, 128))
                .and_then(|n| u8::try_from(n).ok())
                .unwrap_or(64);
            let max_connections = z
                .max_connections
                .as_ref()
                .and_then(|m| self.int(m, "max_connections", 1, U32_MAX))
                .and_then(|n| u32::try_from(n).ok());
            out.insert(
                name.get_ref().clone(),
                LimitZone {
                    name: name.get_ref().clone(),
                    rate: rate.unwrap_or(Rate {
                        count: 1,
                        per: Duration::from_secs(1),
                    }),
                    burst,
                    nodelay,
                    delay,
                    max_clients,
                    status,
                    exempt,
                    ipv6_prefix,
                    max_connections,
                },
            );
        }
        out
    }

    fn header_sets(&mut self, raw: &BTreeMap<Str, Spanned<StrMap>>) -> BTreeMap<String, HeaderOps> {
        raw.iter()
            .map(|(name, set)| {
                let ops = HeaderOps {
                    set: self.header_map(set.get_ref()),
                    remove: Vec::new(),
                };
                (name.get_ref().clone(), ops)
            })
            .collect()
    }

    fn upstreams(
        &mut self,
        raw: &BTreeMap<Str, Spanned<RawUpstream>>,
    ) -> BTreeMap<String, Upstream> {
        let mut out = BTreeMap::new();
        for (name, up) in raw {
            let u = up.get_ref();
            let name = name.get_ref().clone();
            let mut servers = Vec::new();
            if u.servers.get_ref().is_empty() {
                self.error(
                    u.servers.span().start,
                    format!(
                        "upstream \"{name}\" has no servers: expected at least one, like \
                     servers = [\"127.0.0.1:8080\"]"
                    ),
                );
            }
            for entry in u.servers.get_ref() {
                let at = entry.span().start;
                let (addr, weight) = match entry.get_ref() {
                    StrOr::Str(s) => (parse_server_addr(s).map_err(|m| (at, m)), 1),
                    StrOr::Other(t) => (
                        parse_server_addr(t.addr.get_ref()).map_err(|m| (t.addr.span().start, m)),
                        self.u32_or(&t.weight, "weight", 1, MAX_WEIGHT, 1),
                    ),
                };
                match addr {
                    Ok(addr) => servers.push(UpstreamServer { addr, weight }),
                    Err((at, message)) => self.error(at, message),
                }
            }
            let balance_name = u
                .balance
                .as_ref()
                .map_or("round_robin", |b| b.get_ref().as_str());
            let hash_key = match &u.hash_on {
                None => HashKey::ClientIp,
                Some(h) => {
                    if balance_name != "hash" {
                        self.error(
                            self.key_at(h.span().start),
                            format!(
                                "hash_on is set but balance is \"{balance_name}\": expected \
                                 balance = \"hash\" with hash_on"
                            ),
                        );
                    }
                    self.check(h, |h| {
                        if h == "client_ip" {
                            return Ok(HashKey::ClientIp);
                        }
                        h.strip_prefix("header:")
                            .and_then(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
                            .map(HashKey::Header)
                            .ok_or_else(|| {
                                format!(
                                    "invalid hash_on \"{h}\": expected \"client_ip\" or \
                                     \"header:NAME\", like \"header:X-User\""
                                )
                            })
                    })
                    .unwrap_or(HashKey::ClientIp)
                }
            };
            let balance = match &u.balance {
                None => Balance::RoundRobin,
                Some(b) => self
                    .check(b, |b| match b {
                        "round_robin" | "weighted" => Ok(Balance::RoundRobin),
                        "least_conn" => Ok(Balance::LeastConn),
                        "hash" => Ok(Balance::Hash(hash_key)),
                        "random_two" => Ok(Balance::RandomTwo),
                        other => Err(format!(
                            "invalid balance \"{other}\": expected \"round_robin\", \
                             \"weighted\", \"least_conn\", \"hash\" or \"random_two\""
                        )),
                    })
                    .unwrap_or(Balance::RoundRobin),
            };
            let health = u.health.as_ref().map(|h| self.health(h.get_ref()));
            let upstream = Upstream {
                name: name.clone(),
                servers,
                balance,
                health,
                max_fails: self.u32_or(&u.max_fails, "max_fails", 0, U32_MAX, 1),
                fail_timeout: self.duration(&u.fail_timeout, Duration::from_secs(10)),
                retries: self.u32_or(&u.retries, "retries", 0, 100, 1),
                connect_timeout: self.nonzero_duration(
                    &u.connect_timeout,
                    "connect_timeout",
                    Duration::from_secs(5),
                ),
                read_timeout: self.nonzero_duration(
                    &u.read_timeout,
                    "read_timeout",
                    Duration::from_secs(60),
                ),
                write_timeout: self.nonzero_duration(
                    &u.write_timeout,
                    "write_timeout",
                    Duration::from_secs(60),
                ),
                h2c: u.h2c.unwrap_or(false),
            };
            out.insert(name, upstream);
        }
        out
    }

    fn health(&mut self, h: &RawHealth) -> HealthCheck {
        let path = match &h.path {
            None => "/".to_owned(),
            Some(p) => {
                if !p.get_ref().starts_with('/') {
                    self.error(
                        p.span().start,
                        format!(
                            "health path \"{}\" must start with \"/\", like \"/health\"",
                            p.get_ref()
                        ),
                    );
                }
                p.get_ref().clone()
            }
        };
        let host = h.host.as_ref().and_then(|host| {
            self.check(host, |v| {
                if !v.is_empty()
                    && HeaderValue::from_str(v).is_ok()
                    && !v.contains(char::is_whitespace)
                {
                    Ok(v.to_owned())
                } else {
                    Err(format!(
                        "invalid health host \"{v}\": expected a host name, like \"app.internal\""
                    ))
                }
            })
        });
        HealthCheck {
            path,
            interval: self.nonzero_duration(&h.interval, "interval", Duration::from_secs(5)),
            timeout: self.nonzero_duration(&h.timeout, "timeout", Duration::from_secs(2)),
            rise: self.u32_or(&h.rise, "rise", 1, 1000, 2),
            fall: self.u32_or(&h.fall, "fall", 1, 1000, 3),
            host,
        }
    }

    fn log(&mut self, raw: Option<&RawLog>) -> Log {
        let mut log = Log {
            level: "info".to_owned(),
            access: Some(LogTarget::Stdout),
            access_format: AccessFormat::Combined,
            json: false,
        };
        let Some(raw) = raw else { return log };
        log.json = raw.json.as_ref().is_some_and(|j| *j.get_ref());
        if let Some(level) = &raw.level {
            if level.get_ref().trim().is_empty() {
                self.error(
                    level.span().start,
                    "empty level: expected a filter like \"info\" or \"vigie=debug\"",
                );
            } else {
                log.level = level.get_ref().clone();
            }
        }
        if let Some(access) = &raw.access {
            log.access = self
                .check(access, |a| match a {
                    "stdout" => Ok(Some(LogTarget::Stdout)),
                    "off" => Ok(None),
                    path if path.starts_with('/') => Ok(Some(LogTarget::File(PathBuf::from(path)))),
                    other => Err(format!(
                        "invalid access \"{other}\": expected \"stdout\", \"off\" or an absolute \
                     file path, like \"/var/log/vigie/access.log\""
                    )),
                })
                .unwrap_or(Some(LogTarget::Stdout));
        }
        if let Some(format) = &raw.format {
            log.access_format = self
                .check(format, |f| match f {
                    "combined" => Ok(AccessFormat::Combined),
                    "json" => Ok(AccessFormat::Json),
                    other => Err(format!(
                        "invalid format \"{other}\": expected \"combined\" or \"json\""
                    )),
                })
                .unwrap_or(AccessFormat::Combined);
        }
        log
    }

    fn site(
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

        if s.routes.is_empty() {
            self.error(
                site_at,
                "site has no routes: expected at least one [[sites.routes]] table with a path \
                 and an action",
            );
        }
        let mut paths: HashMap<&str, usize> = HashMap::new();
        let mut routes = Vec::new();
        for r in &s.routes {
            let route = r.get_ref();
            if let Some(first) = paths.get(route.path.get_ref().as_str()) {
                let line = self.line(*first);
                self.error(
                    route.path.span().start,
                    format!(
                        "duplicate route path \"{}\" in this site (first at line {line}): \
                         expected each path once per site",
                        route.path.get_ref()
                    ),
                );
            } else {
                paths.insert(route.path.get_ref(), route.path.span().start);
            }
            routes.push(self.route(route, &site_layer, refs));
        }
        // Longest prefix first; stable, so equal lengths keep file order.
        routes.sort_by_key(|r| std::cmp::Reverse(r.path.len()));

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
        Site {
            names,
            tls,
            routes,
            host_redirects,
            error_pages,
            trailing_slash,
        }
    }

    fn layer(
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
        }
    }

    fn route(&mut self, r: &RawRoute, site: &Layer, refs: &Refs) -> Route {
        let path = r.path.get_ref();
        if !path.starts_with('/') {
            self.error(
                r.path.span().start,
                format!(
                    "route path \"{path}\" must start with \"/\", like \"/{}\"",
                    path.trim_start_matches('/')
                ),
            );
        } else if path.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
            self.error(
                r.path.span().start,
                format!(
                    "route path \"{path}\" has a space, \"?\" or \"#\": expected a plain \
                 path prefix like \"/api/\""
                ),
            );
        }

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
                r.path.span().start,
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
        Route {
            path: path.clone(),
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
            compress: own
                .compress
                .or_else(|| site.compress.clone())
                .unwrap_or_else(|| Some(Compression::default())),
        }
    }

    fn compress(&mut self, c: &Spanned<RawCompress>) -> Option<Compression> {
        let t = match c.get_ref() {
            RawCompress::Bool(false) => return None,
            RawCompress::Bool(true) => return Some(Compression::default()),
            RawCompress::Table(t) => t,
        };
        let mut out = Compression::default();
        if let Some(level) = &t.level {
            match u32::try_from(*level.get_ref()) {
                Ok(l @ 1..=9) => out.level = l,
                _ => self.error(
                    level.span().start,
                    format!(
                        "invalid compression level {}: expected an integer from 1 (fast) to 9 (small)",
                        level.get_ref()
                    ),
                ),
            }
        }
        if let Some(level) = &t.brotli_level {
            match u32::try_from(*level.get_ref()) {
                Ok(l @ 1..=11) => out.brotli_level = l,
                _ => self.error(
                    level.span().start,
                    format!(
                        "invalid brotli level {}: expected an integer from 1 (fast) to 11 (small)",
                        level.get_ref()
                    ),
                ),
            }
        }
        if let Some(m) = &t.min_size {
            if let Some(n) = self.size(m) {
                out.min_size = n;
            }
        }
        if let Some(types) = &t.types {
            out.types = Vec::new();
            for ty in types {
                let v = ty.get_ref().trim().to_ascii_lowercase();
                let valid = v.split_once('/').is_some_and(|(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && !a.contains('*')
                        && (b == "*" || !b.contains('*'))
                });
                if valid {
                    out.types.push(v);
                } else {
                    self.error(
                        ty.span().start,
                        format!(
                            "invalid content type \"{}\": expected a type like \"application/json\" or a prefix like \"text/*\"",
                            ty.get_ref()
                        ),
                    );
                }
            }
        }
        Some(out)
    }
}

/// Applies `layer` after `acc`: a later remove cancels an earlier set of that header, and a
/// later set replaces an earlier one.
fn merge(acc: &mut HeaderOps, layer: &HeaderOps) {
    for name in &layer.remove {
        acc.set.retain(|(n, _)| n != name);
        if !acc.remove.contains(name) {
            acc.remove.push(name.clone());
        }
    }
    for (name, value) in &layer.set {
        acc.set.retain(|(n, _)| n != name);
        acc.set.push((name.clone(), value.clone()));
    }
}

fn default_acme() -> Acme {
    Acme {
        email: None,
        directory: DEFAULT_ACME_DIRECTORY.to_owned(),
        challenge: ChallengeKind::Http01,
        ca_roots: None,
        eab: None,
        dns_hook: None,
    }
}

fn challenge_name(c: ChallengeKind) -> &'static str {
    match c {
        ChallengeKind::Http01 => "http-01",
        ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        ChallengeKind::Dns01 => "dns-01",
    }
}

/// `a, b or c`.
fn or_list(items: &[u16]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(u16::to_string).collect();
            format!("{} or {last}", init.join(", "))
        }
    }
}

/// Where the key of `key = value` begins, given where the value begins; `value_start` when
/// no `key =` precedes it on its line.
fn key_start(text: &str, value_start: usize) -> usize {
    let Some(before) = text.get(..value_start) else {
        return value_start;
    };
    let Some(before_eq) = before.trim_end_matches([' ', '\t']).strip_suffix('=') else {
        return value_start;
    };
    let key = before_eq.trim_end_matches([' ', '\t']);
    let bytes = key.as_bytes();
    let mut i = key.len();
    while i > 0 {
        let c = bytes[i - 1];
        if c == b'"' || c == b'\'' {
            match key[..i - 1].rfind(char::from(c)) {
                Some(j) => i = j,
                None => break,
            }
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' {
            i -= 1;
        } else {
            break;
        }
    }
    if i == key.len() {
        value_start
    } else {
        i
    }
}

/// Two listeners overlap when they share a port and an IP family and either has the same
/// address or one is the unspecified address. IPv6 listeners are bound v6-only, so IPv4 and
/// IPv6 never overlap. Port 0 (any free port) never overlaps.
fn overlaps(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .ok()
        .filter(|_| !s.trim().is_empty())
        .ok_or_else(|| format!("invalid duration \"{s}\": {DURATION_EXPECTED}"))
}

pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size \"{s}\": {SIZE_EXPECTED}");
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    if number.is_empty() {
        return Err(bad());
    }
    let multiplier: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("invalid size \"{s}\": too large, expected at most 16 EiB"))
}

pub(crate) fn parse_rate(s: &str) -> Result<Rate, String> {
    let bad = || format!("invalid rate \"{s}\": {RATE_EXPECTED}");
    let (count, unit) = s.trim().split_once('/').ok_or_else(bad)?;
    let count = count.trim();
    let count = count.strip_suffix('r').unwrap_or(count);
    let count: u32 = count.parse().map_err(|_| bad())?;
    if count == 0 {
        return Err(format!(
            "invalid rate \"{s}\": expected a count of at least 1, like \"100/m\""
        ));
    }
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    Ok(Rate { count, per })
}

pub(crate) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| format!("invalid listen address \"{s}\": {LISTEN_EXPECTED}"))
}

pub(crate) fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "invalid CIDR \"{s}\": expected an address range like \"10.0.0.0/8\" or \
                 \"fd00::/8\", or an IP like \"127.0.0.1\""
            )
        })
}

/// A DNS name: labels of letters, digits, `-` and `_`, not starting or ending with `-`, at
/// most 63 bytes each and 253 in all; the last label is not all digits.
pub(crate) fn is_dns_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let labels_ok = s.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    labels_ok
        && !s
            .rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn parse_host_pattern(s: &str) -> Result<HostPattern, String> {
    let lower = s.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if let Some(suffix) = name.strip_prefix("*.") {
        if is_dns_name(suffix) {
            return Ok(HostPattern::Wildcard(suffix.to_owned()));
        }
    } else if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        if let Ok(ip) = inner.parse::<Ipv6Addr>() {
            return Ok(HostPattern::Exact(format!("[{ip}]")));
        }
    } else if let Ok(ip) = name.parse::<Ipv6Addr>() {
        return Ok(HostPattern::Exact(format!("[{ip}]")));
    } else if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Ok(HostPattern::Exact(ip.to_string()));
    } else if is_dns_name(name) {
        return Ok(HostPattern::Exact(name.to_owned()));
    }
    Err(format!(
        "invalid host name \"{s}\": expected a name like \"example.com\", a wildcard like \
         \"*.example.com\", or an IP address"
    ))
}

pub(crate) fn parse_server_addr(s: &str) -> Result<ServerAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(ServerAddr::Ip(addr));
    }
    s.rsplit_once(':')
        .filter(|(host, _)| is_dns_name(host))
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok().filter(|p| *p != 0)?)))
        .map(|(host, port)| ServerAddr::Name {
            host: host.to_ascii_lowercase(),
            port,
        })
        .ok_or_else(|| {
            format!(
                "invalid server address \"{s}\": expected IP:PORT or HOST:PORT, like \
                 \"127.0.0.1:8080\" or \"backend:8080\""
            )
        })
}
