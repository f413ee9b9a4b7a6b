//! Tests of parsing and validation as a whole.

use super::*;

const EXAMPLE: &str = include_str!("../../dist/examples/stack.toml");

fn errors(text: &str) -> Vec<String> {
    match parse(text, "test.toml") {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// Each case: a config with one mistake, and the one message it must produce.
const BAD: &[(&str, &str, &str)] = &[
    (
        "unknown key",
        r#"
[server]
htp = ["0.0.0.0:80"]
"#,
        r##"test.toml:3:1: unknown key `htp`, expected one of `http`, `https`, `admin`, `state_dir`, `threads`, `unknown_host`, `grace_period`, `admin_token`, `header_timeout`, `body_timeout`, `max_header_bytes`, `max_uri_bytes`, `request_buffer`"##,
    ),
    (
        "bad listen address",
        r#"
[server]
http = ["0.0.0.0:80", "0.0.0.0:99999"]
"#,
        r##"test.toml:3:23: invalid listen address "0.0.0.0:99999": expected IP:PORT, like "0.0.0.0:443" or "[::]:443""##,
    ),
    (
        "single bad listen address",
        r#"
[server]
https = "localhost:443"
"#,
        r##"test.toml:3:9: invalid listen address "localhost:443": expected IP:PORT, like "0.0.0.0:443" or "[::]:443""##,
    ),
    (
        "bad duration",
        r#"
[server]
grace_period = "5 sconds"
"#,
        r##"test.toml:3:16: invalid duration "5 sconds": expected a number and a unit, like "30s", "5m", "1h""##,
    ),
    (
        "bad size",
        r#"
[cache.api]
memory = "20M"
"#,
        r##"test.toml:3:10: invalid size "20M": expected a number and a unit among B, KiB, MiB, GiB (or KB, MB, GB), like "20MiB""##,
    ),
    (
        "bad rate",
        r#"
[limits.per_ip]
rate = "100/min"
"#,
        r##"test.toml:3:8: invalid rate "100/min": expected COUNT/UNIT with UNIT s, m or h, like "100/m""##,
    ),
    (
        "undefined upstream",
        r#"
[server]
http = ["0.0.0.0:80"]
[upstreams.backend]
servers = ["127.0.0.1:8080"]
[upstreams.frontend]
servers = ["127.0.0.1:3000"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "bakend"
"#,
        r##"test.toml:12:14: upstream "bakend" is not defined; defined upstreams: backend, frontend"##,
    ),
    (
        "undefined limit zone",
        r#"
[limits.per_ip]
rate = "10r/s"
[upstreams.backend]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
limit = "perip"
  [[sites.routes]]
  path = "/"
  upstream = "backend"
"#,
        r##"test.toml:8:9: limit zone "perip" is not defined; defined limit zones: per_ip"##,
    ),
    (
        "duplicate host name",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080"]

[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "backend"

[[sites]]
names = ["www.example.com", "Example.COM."]
  [[sites.routes]]
  path = "/"
  upstream = "backend"
"#,
        r##"test.toml:12:29: host name "Example.COM." is already served by the site at line 5"##,
    ),
    (
        "overlapping listeners",
        r#"
[server]
http = ["127.0.0.1:80", "[::1]:80", "0.0.0.0:80"]
"#,
        r##"test.toml:3:37: listener 0.0.0.0:80 overlaps 127.0.0.1:80 (line 3): two listeners on one port must not cover the same address"##,
    ),
    (
        "admin overlaps",
        r#"
[server]
http = ["0.0.0.0:9145"]
"#,
        r##"test.toml:3:9: listener 0.0.0.0:9145 overlaps the default admin listener 127.0.0.1:9145: two listeners on one port must not cover the same address; set [server] admin to another address or false"##,
    ),
    (
        "two actions",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/old"
  upstream = "backend"
  redirect = { to = "/new" }
"#,
        r##"test.toml:9:3: route "/old" has both upstream and redirect: expected exactly one of upstream, redirect, respond or static"##,
    ),
    (
        "no action",
        r#"
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
"#,
        r##"test.toml:5:10: route "/" has no action: expected one of upstream, redirect, respond or static"##,
    ),
    (
        "path without slash",
        r#"
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "api/"
  respond = { body = "hi" }
"#,
        r##"test.toml:5:10: route path "api/" must start with "/", like "/api/""##,
    ),
    (
        "bad redirect status",
        r#"
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  redirect = { to = "https://example.com$request_uri", status = 200 }
"#,
        r##"test.toml:6:65: invalid redirect status 200: expected 301, 302, 303, 307 or 308"##,
    ),
    (
        "invalid CIDR",
        r#"
[client_ip]
trusted_proxies = ["10.0.0.0/8", "10.0.0.0/33"]
"#,
        r##"test.toml:3:34: invalid CIDR "10.0.0.0/33": expected an address range like "10.0.0.0/8" or "fd00::/8", or an IP like "127.0.0.1""##,
    ),
    (
        "wildcard with http-01",
        r#"
[server]
https = ["0.0.0.0:443"]
[[sites]]
names = ["*.example.com"]
tls = "acme"
  [[sites.routes]]
  path = "/"
  respond = { body = "hi" }
"#,
        r##"test.toml:5:10: wildcard certificates need DNS-01: "*.example.com" has tls = "acme" but the [acme] challenge is "http-01"; expected challenge = "dns-01" with a dns_hook, or tls = { cert, key }"##,
    ),
    (
        "syntax error",
        r#"
[server
http = ["0.0.0.0:80"]
"#,
        r##"test.toml:2:8: invalid table header: expected `.`, `]`"##,
    ),
    (
        "wrong type",
        r#"
[server]
threads = "2"
"#,
        r##"test.toml:3:11: invalid type: string "2", expected an integer"##,
    ),
    (
        "hash_on without hash",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080"]
hash_on = "header:X-User"
"#,
        r##"test.toml:4:1: hash_on is set but balance is "round_robin": expected balance = "hash" with hash_on"##,
    ),
    (
        "empty servers",
        r#"
[upstreams.backend]
servers = []
"#,
        r##"test.toml:3:11: upstream "backend" has no servers: expected at least one, like servers = ["127.0.0.1:8080"]"##,
    ),
    (
        "missing key",
        r#"
[[sites]]
tls = "internal"
"#,
        r##"test.toml:2:1: missing key `names`"##,
    ),
    (
        "tls without https listener",
        r#"
[[sites]]
names = ["localhost"]
tls = "internal"
  [[sites.routes]]
  path = "/"
  respond = { body = "hi" }
"#,
        r##"test.toml:4:1: site has tls but [server] https has no listener: expected an address like "0.0.0.0:443" in https, or no tls on this site"##,
    ),
    (
        "weight zero",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080", { addr = "backend:8080", weight = 0 }]
"#,
        r##"test.toml:3:64: invalid weight 0: expected an integer from 1 to 1000"##,
    ),
    (
        "bad server address",
        r#"
[upstreams.backend]
servers = ["backend"]
"#,
        r##"test.toml:3:12: invalid server address "backend": expected IP:PORT or HOST:PORT, like "127.0.0.1:8080" or "backend:8080""##,
    ),
    (
        "rise zero",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080"]
health = { path = "/health", rise = 0 }
"#,
        r##"test.toml:4:37: invalid rise 0: expected an integer from 1 to 1000"##,
    ),
    (
        "undefined header set",
        r#"
[headers.security]
"X-Frame-Options" = "DENY"
[[sites]]
names = ["example.com"]
headers = ["security", "cors"]
  [[sites.routes]]
  path = "/"
  respond = { body = "hi" }
"#,
        r##"test.toml:6:24: header set "cors" is not defined; defined header sets: security"##,
    ),
    (
        "undefined cache zone",
        r#"
[upstreams.backend]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "backend"
  cache = { zone = "api" }
"#,
        r##"test.toml:9:20: cache zone "api" is not defined; no [cache.NAME] table is defined"##,
    ),
    (
        "duplicate route path",
        r#"
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/a"
  respond = { body = "1" }
  [[sites.routes]]
  path = "/a"
  respond = { body = "2" }
"#,
        r##"test.toml:8:10: duplicate route path "/a" in this site (first at line 5): expected each path once per site"##,
    ),
    (
        "bad header name",
        r#"
[headers.security]
"X Frame" = "DENY"
"#,
        r##"test.toml:3:1: invalid header name "X Frame": expected letters, digits and !#$%&'*+-.^_`|~ only, like "X-Frame-Options""##,
    ),
    (
        "unknown_host status",
        r#"
[server]
unknown_host = 400
"#,
        r##"test.toml:3:16: invalid unknown_host status 400: expected 421 or 404"##,
    ),
    (
        "limit status",
        r#"
[limits.per_ip]
rate = "1/s"
status = 500
"#,
        r##"test.toml:4:10: invalid limit status 500: expected 429 or 503"##,
    ),
    (
        "respond status",
        r#"
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  respond = { status = 700 }
"#,
        r##"test.toml:6:24: invalid respond status 700: expected an integer from 100 to 599"##,
    ),
    (
        "delay with nodelay",
        r#"
[limits.per_ip]
rate = "1/s"
burst = 10
nodelay = true
delay = 5
"#,
        r##"test.toml:6:1: delay and nodelay = true cannot be combined: expected one of them"##,
    ),
    (
        "dns-01 without hook",
        r#"
[acme]
challenge = "dns-01"
"#,
        r##"test.toml:3:13: challenge "dns-01" has no dns_hook: expected dns_hook = "/path/to/hook" in [acme], a command called as `HOOK present|cleanup NAME VALUE`"##,
    ),
    (
        "bad host name",
        r#"
[[sites]]
names = ["exa mple.com"]
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        r##"test.toml:3:10: invalid host name "exa mple.com": expected a name like "example.com", a wildcard like "*.example.com", or an IP address"##,
    ),
    (
        "admin true",
        r#"
[server]
admin = true
"#,
        r##"test.toml:3:9: invalid admin true: expected an address like "127.0.0.1:9145", or false to turn it off"##,
    ),
    (
        "disk without disk_size",
        r#"
[cache.api]
memory = "64MiB"
disk = "/var/cache/vigie"
"#,
        r##"test.toml:4:1: disk has no disk_size: expected disk_size = "10GiB" or similar beside disk"##,
    ),
    (
        "bad cache request part",
        r#"
[cache.api]
memory = 1048576
[upstreams.b]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "b"
  cache = { zone = "api", key = ["cookie:lang", "body:x"] }
"#,
        r##"test.toml:11:49: invalid request part "body:x": expected "header:NAME", "cookie:NAME" or "query:NAME", like "cookie:session""##,
    ),
    (
        "bad cache valid status",
        r#"
[cache.api]
memory = 1048576
[upstreams.b]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "b"
  cache = { zone = "api", valid = { "1xx" = "1m" } }
"#,
        r##"test.toml:11:37: invalid status "1xx" in valid: expected a status code from 200 to 599, like "200", or "any""##,
    ),
    (
        "cache status header of the wrong type",
        r#"
[cache.api]
memory = 1048576
[upstreams.b]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "b"
  cache = { zone = "api", status_header = 1 }
"#,
        r##"test.toml:11:43: invalid type: integer `1`, expected a header name or false"##,
    ),
    (
        "max_object above the zone",
        r#"
[cache.api]
memory = 1024
max_object = 2048
"#,
        r##"test.toml:4:14: max_object 2048 is larger than the zone (1024 bytes): expected at most the memory (and disk_size) bound"##,
    ),
    (
        "short admin token",
        r#"
[server]
admin_token = "secret"
"#,
        r##"test.toml:3:15: invalid admin_token: expected at least 16 printable characters without spaces (`openssl rand -hex 24` makes one)"##,
    ),
    (
        "cache on a redirect",
        r#"
[cache.api]
memory = 1048576
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  redirect = { to = "/x" }
  cache = { zone = "api" }
"#,
        r##"test.toml:9:3: cache on route "/", which has no upstream: expected cache only beside upstream"##,
    ),
    (
        "bad default_name",
        r#"
[server]
https = ["0.0.0.0:443"]
[tls]
default_name = "other.com"
[[sites]]
names = ["example.com"]
tls = "internal"
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        r##"test.toml:5:16: default_name "other.com" is not an exact name of a site with tls: expected one of example.com"##,
    ),
];

#[test]
fn bad_configs() {
    let mut failed = Vec::new();
    for (name, text, expected) in BAD {
        let got = errors(text);
        if got != [*expected] {
            failed.push(format!(
                "{name}:\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn every_error_is_reported_at_once() {
    let text = r#"
[server]
http = ["0.0.0.0:80", "0.0.0.0:80"]
grace_period = "soon"

[upstreams.backend]
servers = ["127.0.0.1:8080", "backend"]
balance = "fastest"

[[sites]]
names = ["example.com"]
max_body = "big"
  [[sites.routes]]
  path = "api"
  upstream = "bakend"
  [[sites.routes]]
  path = "/"
"#;
    assert_eq!(
        errors(text),
        [
            r#"test.toml:3:23: listener 0.0.0.0:80 overlaps 0.0.0.0:80 (line 3): two listeners on one port must not cover the same address"#,
            r#"test.toml:4:16: invalid duration "soon": expected a number and a unit, like "30s", "5m", "1h""#,
            r#"test.toml:7:30: invalid server address "backend": expected IP:PORT or HOST:PORT, like "127.0.0.1:8080" or "backend:8080""#,
            r#"test.toml:8:11: invalid balance "fastest": expected "round_robin", "weighted", "least_conn", "hash" or "random_two""#,
            r#"test.toml:12:12: invalid size "big": expected a number and a unit among B, KiB, MiB, GiB (or KB, MB, GB), like "20MiB""#,
            r#"test.toml:14:10: route path "api" must start with "/", like "/api""#,
            r#"test.toml:15:14: upstream "bakend" is not defined; defined upstreams: backend"#,
            r#"test.toml:17:10: route "/" has no action: expected one of upstream, redirect, respond or static"#,
        ]
    );
    let all = parse(text, "test.toml").unwrap_err();
    assert_eq!(all.to_string().lines().count(), 8);
}

#[test]
fn the_example_stack_is_valid() {
    {
        let c = parse(EXAMPLE, "stack.toml").unwrap();
        assert_eq!(
            c.summary(),
            "2 sites, 4 routes, 3 upstreams (5 servers), 1 limit zone, 1 cache zone, listeners: \
             http 0.0.0.0:80 [::]:80, https 0.0.0.0:443 [::]:443, admin 127.0.0.1:9145"
        );
        let site = &c.sites[0];
        assert_eq!(
            site.names,
            [
                HostPattern::Exact("example.com".into()),
                HostPattern::Exact("www.example.com".into())
            ]
        );
        assert_eq!(site.tls, Some(SiteTls::Acme));
        let paths: Vec<&str> = site.routes.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/api/cv", "/api/", "/"]);
        let cv = &site.routes[0];
        assert_eq!(cv.max_body, Some(20 * 1024 * 1024));
        assert_eq!(cv.limit.as_deref(), Some("per_ip"));
        assert_eq!(
            cv.cache,
            Some(RouteCache {
                zone: "api".into(),
                valid: vec![(200, std::time::Duration::from_secs(300))],
                key: vec![],
                bypass: vec![],
                stale_while_revalidate: std::time::Duration::ZERO,
                stale_if_error: std::time::Duration::ZERO,
                store_set_cookie: false,
                store_authorized: false,
                status_header: Some(http::HeaderName::from_static("x-cache-status")),
            })
        );
        assert_eq!(cv.response_headers.set.len(), 6);
        assert_eq!(cv.response_headers.set[0].0, "strict-transport-security");
        assert_eq!(c.limits["per_ip"].rate.count, 100);
        assert_eq!(
            c.limits["per_ip"].rate.per,
            std::time::Duration::from_secs(60)
        );
        assert_eq!(c.caches["api"].memory, 64 << 20);
        assert_eq!(c.upstreams["backend"].balance, Balance::LeastConn);
        assert_eq!(c.sites[1].routes[0].max_body, None);
        // Every not-yet-implemented feature the reference uses is flagged, with a position.
        let warned: Vec<(usize, usize)> = c.warnings.iter().map(|w| (w.line, w.col)).collect();
        assert!(!warned.contains(&(19, 1)), "{warned:?}"); // [acme] is active
        assert!(!c
            .warnings
            .iter()
            .any(|w| w.message.contains("rate limiting")));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.caches["api"].max_object, 8 << 20);
        assert_eq!(c.caches["api"].lock_timeout.as_secs(), 5);
    }
}

#[test]
fn defaults() {
    let c = parse("", "empty.toml").unwrap();
    assert_eq!(c.server.http, []);
    assert_eq!(c.server.admin, Some("127.0.0.1:9145".parse().unwrap()));
    assert_eq!(
        c.server.state_dir,
        std::path::PathBuf::from("/var/lib/vigie")
    );
    assert_eq!(c.server.threads, None);
    assert_eq!(c.server.unknown_host_status, 421);
    assert_eq!(c.server.grace_period, std::time::Duration::from_secs(10));
    assert_eq!(c.tls.min_version, TlsVersion::V1_2);
    assert_eq!(c.acme, None);
    assert_eq!(c.client_ip.header, "x-forwarded-for");
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.access, Some(LogTarget::Stdout));
    assert_eq!(c.log.access_format, AccessFormat::Combined);
    assert!(c.warnings.is_empty());
    assert_eq!(
        c.summary(),
        "0 sites, 0 routes, 0 upstreams (0 servers), 0 limit zones, 0 cache zones, listeners: \
         admin 127.0.0.1:9145"
    );

    let c = parse(
        r#"
[server]
http = "[::]:8080"
admin = false
[limits.z]
rate = "10r/s"
[upstreams.u]
servers = ["127.0.0.1:1"]
health = {}
[[sites]]
names = ["a.test"]
  [[sites.routes]]
  path = "/"
  upstream = "u"
  [[sites.routes]]
  path = "/r"
  respond = {}
  [[sites.routes]]
  path = "/s"
  static = { root = "/srv" }
  [[sites.routes]]
  path = "/x"
  redirect = { to = "https://a.test$request_uri" }
"#,
        "t",
    )
    .unwrap();
    assert_eq!(c.server.http, ["[::]:8080".parse().unwrap()]);
    assert_eq!(c.server.admin, None);
    assert!(c
        .summary()
        .ends_with("listeners: http [::]:8080, admin off"));
    let z = &c.limits["z"];
    assert_eq!(
        (z.rate.count, z.rate.per),
        (10, std::time::Duration::from_secs(1))
    );
    assert_eq!((z.burst, z.nodelay, z.delay), (0, false, None));
    assert_eq!((z.max_clients, z.status, z.ipv6_prefix), (100_000, 429, 64));
    let u = &c.upstreams["u"];
    assert_eq!(u.balance, Balance::RoundRobin);
    assert_eq!((u.max_fails, u.retries, u.h2c), (1, 1, false));
    let h = u.health.as_ref().unwrap();
    assert_eq!((h.path.as_str(), h.rise, h.fall), ("/", 2, 3));
    assert_eq!(h.interval, std::time::Duration::from_secs(5));
    assert_eq!(h.timeout, std::time::Duration::from_secs(2));
    let actions: Vec<&Action> = c.sites[0].routes.iter().map(|r| &r.action).collect();
    assert_eq!(
        actions,
        [
            &Action::Respond {
                status: 200,
                body: String::new(),
                content_type: "text/plain; charset=utf-8".into()
            },
            &Action::Static {
                root: "/srv".into(),
                index: "index.html".into()
            },
            &Action::Redirect {
                status: 301,
                to: "https://a.test$request_uri".into()
            },
            &Action::Proxy {
                upstream: "u".into(),
                strip_prefix: false
            },
        ]
    );
}

#[test]
fn acme_defaults_when_a_site_uses_it() {
    let c = parse(
        r#"
[server]
https = ["0.0.0.0:443"]
[[sites]]
names = ["a.test"]
tls = "acme"
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        "t",
    )
    .unwrap();
    let acme = c.acme.unwrap();
    assert_eq!(
        acme.directory,
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(acme.challenge, ChallengeKind::Http01);
    assert_eq!(acme.email, None);
}

#[test]
fn wildcard_with_dns01_is_accepted() {
    let c = parse(
        r#"
[server]
https = ["0.0.0.0:443"]
[acme]
challenge = "dns-01"
dns_hook = "/etc/vigie/dns-hook"
[tls]
default_name = "Example.com"
[[sites]]
names = ["*.example.com", "example.com"]
tls = "acme"
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        "t",
    )
    .unwrap();
    assert_eq!(c.acme.unwrap().challenge, ChallengeKind::Dns01);
    assert_eq!(c.tls.default_name.as_deref(), Some("example.com"));
}

#[test]
fn inheritance() {
    let c = parse(
        r#"
[limits.site]
rate = "10/s"
[limits.strict]
rate = "1/s"
[headers.security]
"X-Frame-Options" = "DENY"
"X-Content-Type-Options" = "nosniff"
[headers.cors]
"Access-Control-Allow-Origin" = "*"
[upstreams.u]
servers = ["127.0.0.1:1"]
[[sites]]
names = ["a.test"]
max_body = "1MiB"
limit = "site"
headers = "security"
request_headers = { set = { "X-Site" = "1" }, remove = ["X-Drop"] }
response_headers = { set = { "X-Served-By" = "vigie" } }
  [[sites.routes]]
  path = "/"
  upstream = "u"
  [[sites.routes]]
  path = "/upload/"
  upstream = "u"
  max_body = "1GB"
  limit = "off"
  [[sites.routes]]
  path = "/api/"
  upstream = "u"
  strip_prefix = true
  max_body = 0
  limit = "strict"
  headers = ["cors"]
  request_headers = { set = { "X-Route" = "2", "x-site" = "3" } }
  response_headers = { set = { "X-Frame-Options" = "SAMEORIGIN" }, remove = ["X-Content-Type-Options", "Server"] }
"#,
        "t",
    )
    .unwrap();
    let routes = &c.sites[0].routes;
    let by_path = |p: &str| routes.iter().find(|r| r.path == p).unwrap();
    let root = by_path("/");
    assert_eq!(root.max_body, Some(1 << 20));
    assert_eq!(root.limit.as_deref(), Some("site"));
    let names = |ops: &[(http::HeaderName, http::HeaderValue)]| -> Vec<String> {
        ops.iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect()
    };
    assert_eq!(
        names(&root.response_headers.set),
        [
            "x-frame-options: DENY",
            "x-content-type-options: nosniff",
            "x-served-by: vigie"
        ]
    );
    assert_eq!(names(&root.request_headers.set), ["x-site: 1"]);
    assert_eq!(root.request_headers.remove, ["x-drop"]);

    let upload = by_path("/upload/");
    assert_eq!(upload.max_body, Some(1_000_000_000));
    assert_eq!(upload.limit, None);

    let api = by_path("/api/");
    assert_eq!(api.max_body, None, "0 means unlimited");
    assert_eq!(api.limit.as_deref(), Some("strict"));
    assert_eq!(
        api.action,
        Action::Proxy {
            upstream: "u".into(),
            strip_prefix: true
        }
    );
    // Site sets, site inline, route sets, route inline: later ones win, a remove cancels a set.
    assert_eq!(
        names(&api.response_headers.set),
        [
            "x-served-by: vigie",
            "access-control-allow-origin: *",
            "x-frame-options: SAMEORIGIN"
        ]
    );
    assert_eq!(
        api.response_headers.remove,
        ["x-content-type-options", "server"]
    );
    assert_eq!(names(&api.request_headers.set), ["x-route: 2", "x-site: 3"]);
    assert_eq!(api.request_headers.remove, ["x-drop"]);
}

#[test]
fn routes_sorted_longest_first_and_stable() {
    let c = parse(
        r#"
[[sites]]
names = ["a.test"]
  [[sites.routes]]
  path = "/"
  respond = {}
  [[sites.routes]]
  path = "/ab"
  respond = {}
  [[sites.routes]]
  path = "/abc/d"
  respond = {}
  [[sites.routes]]
  path = "/cd"
  respond = {}
  [[sites.routes]]
  path = "/a"
  respond = {}
"#,
        "t",
    )
    .unwrap();
    let paths: Vec<&str> = c.sites[0].routes.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/abc/d", "/ab", "/cd", "/a", "/"]);
}

#[test]
fn host_patterns() {
    let c = parse(
        r#"
[[sites]]
names = ["Example.COM.", "*.Example.com", "127.0.0.1", "[::1]", "FD00::0:1", "localhost", "my_host.internal"]
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        "t",
    )
    .unwrap();
    use HostPattern::{Exact, Wildcard};
    assert_eq!(
        c.sites[0].names,
        [
            Exact("example.com".into()),
            Wildcard("example.com".into()),
            Exact("127.0.0.1".into()),
            Exact("[::1]".into()),
            Exact("[fd00::1]".into()),
            Exact("localhost".into()),
            Exact("my_host.internal".into()),
        ]
    );
    assert_eq!(host_ip(&c.sites[0].names[3]), Some("::1".parse().unwrap()));
    for bad in [
        "*",
        "*.",
        "a..b",
        "-a.com",
        "a-.com",
        "999.1.1.1",
        "a.com:80",
        "*.*.a.com",
        "[1.2.3.4]",
        "é.fr",
        "",
    ] {
        let text = format!(
            "[[sites]]\nnames = [{bad:?}]\n[[sites.routes]]\npath = \"/\"\nrespond = {{}}\n"
        );
        let got = errors(&text);
        assert_eq!(got.len(), 1, "{bad}: {got:?}");
        assert!(got[0].contains("invalid host name"), "{bad}: {got:?}");
    }
}

#[test]
fn server_addresses() {
    let c = parse(
        r#"
[upstreams.u]
servers = ["127.0.0.1:8081", "[::1]:8082", "Backend:8080", "api.internal:80", { addr = "10.0.0.1:9000", weight = 3 }, { addr = "web_1:3000" }]
balance = "hash"
hash_on = "header:X-User"
"#,
        "t",
    )
    .unwrap();
    let u = &c.upstreams["u"];
    let got: Vec<(ServerAddr, u32)> = u
        .servers
        .iter()
        .map(|s| (s.addr.clone(), s.weight))
        .collect();
    let name = |h: &str, port| ServerAddr::Name {
        host: h.into(),
        port,
    };
    assert_eq!(
        got,
        [
            (ServerAddr::Ip("127.0.0.1:8081".parse().unwrap()), 1),
            (ServerAddr::Ip("[::1]:8082".parse().unwrap()), 1),
            (name("backend", 8080), 1),
            (name("api.internal", 80), 1),
            (ServerAddr::Ip("10.0.0.1:9000".parse().unwrap()), 3),
            (name("web_1", 3000), 1),
        ]
    );
    assert_eq!(u.servers[2].addr.to_string(), "backend:8080");
    assert_eq!(
        u.balance,
        Balance::Hash(HashKey::Header(http::HeaderName::from_static("x-user")))
    );
    for bad in [
        "backend",
        "backend:0",
        "backend:99999",
        "::1:80",
        "ba d:80",
        ":80",
    ] {
        let text = format!("[upstreams.u]\nservers = [{bad:?}]\n");
        let got = errors(&text);
        assert_eq!(got.len(), 1, "{bad}: {got:?}");
        assert!(got[0].contains("invalid server address"), "{bad}: {got:?}");
    }
}

#[test]
fn sizes_rates_durations() {
    use crate::validate::{parse_duration, parse_rate, parse_size};
    assert_eq!(parse_size("20MiB"), Ok(20 << 20));
    assert_eq!(parse_size("20 MiB"), Ok(20 << 20));
    assert_eq!(parse_size("1KB"), Ok(1000));
    assert_eq!(parse_size("3GB"), Ok(3_000_000_000));
    assert_eq!(parse_size("2GiB"), Ok(2 << 30));
    assert_eq!(parse_size("512"), Ok(512));
    assert_eq!(parse_size("512B"), Ok(512));
    for bad in ["20M", "20mb", "1.5GiB", "MiB", "-1", "", "20 MiBs", "1TB"] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse_size("99999999999GiB"),
        Err(r#"invalid size "99999999999GiB": too large, expected at most 16 EiB"#.to_owned())
    );
    let r = parse_rate("10r/s").unwrap();
    assert_eq!((r.count, r.per), (10, std::time::Duration::from_secs(1)));
    let r = parse_rate("100/m").unwrap();
    assert_eq!((r.count, r.per), (100, std::time::Duration::from_secs(60)));
    let r = parse_rate("5/h").unwrap();
    assert_eq!((r.count, r.per), (5, std::time::Duration::from_secs(3600)));
    for bad in ["100/min", "100", "/s", "0/s", "x/s", "-1/s", "10r/d"] {
        assert!(parse_rate(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse_duration("500ms"),
        Ok(std::time::Duration::from_millis(500))
    );
    assert_eq!(
        parse_duration("1h 30m"),
        Ok(std::time::Duration::from_secs(5400))
    );
    for bad in ["5", "", "soon", "5 sconds", "-1s"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    // A route cache with every key.
    let c = parse(
        r#"
[cache.c]
memory = "1MiB"
disk = "/tmp/c"
disk_size = "10MiB"
max_object = "64KiB"
lock_timeout = "2s"
[upstreams.b]
servers = ["127.0.0.1:8080"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "b"
  cache = { zone = "c", valid = { "200" = "5m", "any" = "10s" }, key = ["header:Accept-Language", "cookie:lang"], bypass = ["query:nocache"], stale_while_revalidate = "30s", stale_if_error = "1h", store_set_cookie = true, store_authorized = true, status_header = false }
"#,
        "t",
    )
    .unwrap();
    let z = &c.caches["c"];
    assert_eq!((z.max_object, z.lock_timeout.as_secs()), (65536, 2));
    assert_eq!(z.disk, Some(("/tmp/c".into(), 10 << 20)));
    let rc = c.sites[0].routes[0].cache.as_ref().unwrap();
    assert_eq!(
        rc.valid,
        [
            (200, std::time::Duration::from_secs(300)),
            (0, std::time::Duration::from_secs(10))
        ]
    );
    assert_eq!(
        rc.key,
        [
            RequestPart::Header(http::HeaderName::from_static("accept-language")),
            RequestPart::Cookie("lang".into())
        ]
    );
    assert_eq!(rc.bypass, [RequestPart::Query("nocache".into())]);
    assert_eq!(rc.stale_if_error.as_secs(), 3600);
    assert!(rc.store_set_cookie && rc.store_authorized && rc.status_header.is_none());
    // Sizes may be bare TOML integers too.
    let c = parse("[cache.c]\nmemory = 4096\n", "t").unwrap();
    assert_eq!(c.caches["c"].memory, 4096);
    assert_eq!(
        errors("[cache.c]\nmemory = -1\n"),
        [
            r#"test.toml:2:10: invalid size -1: expected a number and a unit among B, KiB, MiB, GiB (or KB, MB, GB), like "20MiB""#
        ]
    );
    assert_eq!(
        errors("[cache.c]\nmemory = true\n"),
        [
            r#"test.toml:2:10: invalid type: boolean `true`, expected a size string like "20MiB" or an integer of bytes"#
        ]
    );
}

#[test]
fn load_reports_unreadable_files() {
    let e = load(std::path::Path::new("/nonexistent/vigie.toml")).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/vigie.toml: cannot read: "),
        "{e}"
    );
    let path = std::env::temp_dir().join(format!("vigie-config-test-{}.toml", std::process::id()));
    std::fs::write(&path, "[server]\nthreads = 0\n").unwrap();
    let e = load(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2:11: invalid threads 0: expected an integer from 1 to 1024",
            path.display()
        )
    );
}

#[test]
fn warnings_point_at_keys() {
    let c = parse(
        r#"
[server]
http = ["0.0.0.0:80"]
[log]
access = "/var/log/vigie/access.log"
format = "json"
"#,
        "t",
    )
    .unwrap();
    assert_eq!(
        c.log.access,
        Some(LogTarget::File("/var/log/vigie/access.log".into()))
    );
    assert_eq!(c.log.access_format, AccessFormat::Json);
    assert_eq!(
        c.warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        Vec::<String>::new()
    );
    let c = parse("[log]\naccess = \"off\"\n", "t").unwrap();
    assert!(c.warnings.is_empty());
    assert_eq!(c.log.access, None);
}

#[test]
fn type_errors_read_as_config_words() {
    assert_eq!(
        errors("[server]\nhttp = 80\n"),
        ["test.toml:2:8: invalid type: integer `80`, expected a string or a list of strings"]
    );
    assert_eq!(
        errors("[[sites]]\nnames = [\"a\"]\ntls = 1\n"),
        [
            r#"test.toml:3:7: invalid type: integer `1`, expected "acme", "internal" or a table { cert = "...", key = "..." }"#
        ]
    );
    assert_eq!(
        errors("[upstreams.u]\nservers = [{ addr = \"127.0.0.1:1\", wieght = 2 }]\n"),
        ["test.toml:2:36: unknown key `wieght`, expected `addr` or `weight`"]
    );
    assert_eq!(
        errors("sites = 3\n"),
        ["test.toml:1:9: invalid type: integer `3`, expected an array"]
    );
}

#[test]
fn compression_settings_inherit_and_are_checked() {
    let text = r#"[server]
admin = false
[[sites]]
names = ["a.test"]
compress = { level = 2, brotli_level = 4, types = ["application/json", "text/*"] }
  [[sites.routes]]
  path = "/"
  respond = {}
  [[sites.routes]]
  path = "/off"
  respond = {}
  compress = false
[[sites]]
names = ["b.test"]
  [[sites.routes]]
  path = "/"
  respond = {}
"#;
    let c = parse(text, "test.toml").unwrap();
    let a = &c.sites[0].routes;
    let root = a.iter().find(|r| r.path == "/").unwrap();
    let compress = root.compress.as_ref().unwrap();
    assert_eq!(compress.level, 2);
    assert_eq!(compress.brotli_level, 4);
    assert!(compress.covers("application/json; charset=utf-8"));
    assert!(compress.covers("text/html"));
    assert!(!compress.covers("image/svg+xml"));
    assert_eq!(a.iter().find(|r| r.path == "/off").unwrap().compress, None);
    // Default: on, with the default list.
    let b = c.sites[1].routes[0].compress.as_ref().unwrap();
    assert_eq!(b, &crate::Compression::default());
    assert!(b.covers("image/svg+xml") && !b.covers("image/png"));

    let bad = text
        .replace("level = 2", "level = 12")
        .replace("brotli_level = 4", "brotli_level = 0")
        .replace("\"text/*\"", "\"*/html\"");
    let err = parse(&bad, "test.toml").unwrap_err().to_string();
    assert_eq!(
        err,
        "test.toml:5:22: invalid compression level 12: expected an integer from 1 (fast) to 9 (small)\n\
         test.toml:5:41: invalid brotli level 0: expected an integer from 1 (fast) to 11 (small)\n\
         test.toml:5:73: invalid content type \"*/html\": expected a type like \"application/json\" or a prefix like \"text/*\""
    );
    let bad = text.replace("compress = false", "compress = \"yes\"");
    let err = parse(&bad, "test.toml").unwrap_err().to_string();
    assert!(
        err.starts_with(
            "test.toml:12:14: invalid type: string \"yes\", expected true, false or a table"
        ),
        "{err}"
    );
}

#[test]
fn request_buffer_default_server_and_route() {
    let text = r#"
[server]
request_buffer = "16KiB"
[upstreams.u]
servers = ["127.0.0.1:1"]
[[sites]]
names = ["a.test"]
  [[sites.routes]]
  path = "/"
  upstream = "u"
  [[sites.routes]]
  path = "/stream/"
  upstream = "u"
  request_buffer = 0
  [[sites.routes]]
  path = "/form/"
  upstream = "u"
  request_buffer = "64KiB"
"#;
    let c = parse(text, "t").unwrap();
    assert_eq!(c.server.request_buffer, 16 * 1024);
    let route = |p: &str| c.sites[0].routes.iter().find(|r| r.path == p).unwrap();
    assert_eq!(route("/").request_buffer, None, "the server's applies");
    assert_eq!(route("/stream/").request_buffer, Some(0), "0 turns it off");
    assert_eq!(route("/form/").request_buffer, Some(64 * 1024));
    let default = parse("[server]\nhttp = \"127.0.0.1:80\"\n", "t").unwrap();
    assert_eq!(default.server.request_buffer, 64 * 1024);

    let bad = text.replace("\"64KiB\"", "\"1MiB\"");
    assert_eq!(
        parse(&bad, "test.toml").unwrap_err().to_string(),
        "test.toml:18:20: invalid request_buffer 1048576: expected at most 64KiB (65536 bytes, \
         pingora's retry buffer carries the body), or 0 for off"
    );
    let bad = text.replace("\"16KiB\"", "\"lots\"");
    let err = parse(&bad, "test.toml").unwrap_err().to_string();
    assert!(
        err.starts_with("test.toml:3:18: invalid size \"lots\""),
        "{err}"
    );
}

mod details;
