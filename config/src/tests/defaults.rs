//! Defaults, inheritance from site to route, and route order.

use crate::*;

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
                index: "index.html".into(),
                try_files: None
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
  static = { root = "/srv/www" }
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
    // Default for static files: on, with the default list.
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
fn compression_is_on_by_default_for_static_files_only() {
    let text = r#"[server]
admin = false
[upstreams.app]
servers = ["127.0.0.1:1"]
[[sites]]
names = ["plain.test"]
  [[sites.routes]]
  path = "/api/"
  upstream = "app"
  [[sites.routes]]
  path = "/assets/"
  static = { root = "/srv/www" }
  [[sites.routes]]
  path = "/"
  respond = { body = "hi" }
[[sites]]
names = ["on.test"]
compress = true
  [[sites.routes]]
  path = "/api/"
  upstream = "app"
  [[sites.routes]]
  path = "/private/"
  upstream = "app"
  compress = false
[[sites]]
names = ["off.test"]
compress = false
  [[sites.routes]]
  path = "/assets/"
  static = { root = "/srv/www" }
  [[sites.routes]]
  path = "/public/"
  upstream = "app"
  compress = { level = 1 }
"#;
    let c = parse(text, "test.toml").unwrap();
    let compress = |site: usize, path: &str| {
        c.sites[site]
            .routes
            .iter()
            .find(|r| r.path == path)
            .unwrap()
            .compress
            .clone()
    };
    let on = Some(Compression::default());
    // Nothing said: proxied responses (BREACH) and vigie's own answers are sent as they are,
    // static files are compressed.
    assert_eq!(compress(0, "/api/"), None);
    assert_eq!(compress(0, "/"), None);
    assert_eq!(compress(0, "/assets/"), on);
    // A site's `compress = true` turns it on for its proxied routes; a route says otherwise.
    assert_eq!(compress(1, "/api/"), on);
    assert_eq!(compress(1, "/private/"), None);
    // A site's `compress = false` turns static files off too; a route's table turns it on.
    assert_eq!(compress(2, "/assets/"), None);
    let public = compress(2, "/public/").unwrap();
    assert_eq!(public.level, 1);
    assert_eq!(public.types, Compression::default().types);
}

#[test]
fn pass_headers_route_over_site() {
    let c = parse(
        r#"
[[sites]]
names = ["a.test"]
pass_headers = ["server"]
  [[sites.routes]]
  path = "/"
  respond = {}
  [[sites.routes]]
  path = "/php/"
  respond = {}
  pass_headers = ["X-Powered-By", "Server"]
  [[sites.routes]]
  path = "/none/"
  respond = {}
  pass_headers = []
[[sites]]
names = ["b.test"]
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        "t",
    )
    .unwrap();
    let pass = |site: usize, path: &str| {
        c.sites[site]
            .routes
            .iter()
            .find(|r| r.path == path)
            .unwrap()
            .pass_headers
            .clone()
    };
    assert_eq!(pass(0, "/"), ["server"]);
    assert_eq!(pass(0, "/php/"), ["x-powered-by", "server"]);
    assert!(pass(0, "/none/").is_empty());
    assert!(pass(1, "/").is_empty());
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
