//! Defects found by outside probes (issue 13): open redirects, unauthenticated admin
//! endpoints, leaked upstream `Server` headers, HTTP/2 header limits, request ids on vigie's
//! own answers, quick idle shutdown and the CLI's default configuration.

use crate::support::{raw_get, Vigie};

/// A site of each kind that builds a `Location`: a static route at `/` with a
/// subdirectory, `trailing_slash` add and remove, `redirect_www`, a `redirect` route with
/// `$request_uri`, and a TLS site (plain HTTP goes to HTTPS).
fn redirect_sites(www: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
https = ["{{https}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[[sites]]
names = ["static.test"]
  [[sites.routes]]
  path = "/"
  static = {{ root = "{www}" }}

[[sites]]
names = ["slash.test"]
trailing_slash = "add"
  [[sites.routes]]
  path = "/"
  respond = {{ status = 200, body = "slash\n" }}

[[sites]]
names = ["noslash.test"]
trailing_slash = "remove"
  [[sites.routes]]
  path = "/"
  respond = {{ status = 200, body = "noslash\n" }}

[[sites]]
names = ["apex.test", "www.apex.test"]
redirect_www = "to_apex"
  [[sites.routes]]
  path = "/"
  respond = {{ status = 200, body = "apex\n" }}

[[sites]]
names = ["moved.test"]
  [[sites.routes]]
  path = "/"
  redirect = {{ to = "$request_uri", status = 302 }}

[[sites]]
names = ["*.wild.test"]
  [[sites.routes]]
  path = "/"
  redirect = {{ to = "https://$host$request_uri" }}

[[sites]]
names = ["secure.test"]
tls = "internal"
  [[sites.routes]]
  path = "/"
  respond = {{ status = 200, body = "secure\n" }}
"#
    )
}

/// The `Location` of a raw response, if any.
fn location(text: &str) -> Option<String> {
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| value.trim().to_string())
    })
}

/// Panics when `loc` could be read by a browser as another host than `host`.
fn assert_same_host(loc: &str, host: &str, what: &str) {
    assert!(!loc.contains('\\'), "{what}: backslash in {loc:?}");
    match loc.split_once("://") {
        Some((scheme, rest)) => {
            assert!(scheme == "http" || scheme == "https", "{what}: {loc:?}");
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let name = authority.rsplit_once(':').map_or(authority, |(n, _)| n);
            assert_eq!(name, host, "{what}: {loc:?} names another host");
        }
        None => {
            assert!(loc.starts_with('/'), "{what}: {loc:?}");
            assert!(!loc.starts_with("//"), "{what}: network path {loc:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_redirect_points_to_another_host() {
    let www = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(www.path().join("a")).unwrap();
    std::fs::write(www.path().join("a/index.html"), "a\n").unwrap();
    let v = Vigie::start(&redirect_sites(&www.path().display().to_string())).await;
    let evil = [
        "//evil.example/../a",
        "/\\evil.example/../a",
        "//evil.example/%2e%2e/a",
        "///evil.example/../a",
        "/\\/evil.example/../a",
        "//evil.example/",
        "/\\evil.example/",
        "//evil.example",
        "/\\evil.example",
    ];
    let mut redirects = 0;
    for host in [
        "static.test",
        "slash.test",
        "noslash.test",
        "www.apex.test",
        "moved.test",
        "secure.test",
    ] {
        let target = if host == "www.apex.test" {
            "apex.test"
        } else {
            host
        };
        for path in evil {
            let (status, text) = raw_get(&v.http, host, path).await;
            let what = format!("{host} {path} ({status})");
            if let Some(loc) = location(&text) {
                redirects += 1;
                assert_same_host(&loc, target, &what);
            }
        }
    }
    // The sites above do redirect these requests (to a safe place): the test saw them.
    assert!(redirects >= 30, "only {redirects} redirects");
    // The normalised path is what the static directory redirect and trailing slashes keep.
    let (status, text) = raw_get(&v.http, "static.test", "//evil.example/../a").await;
    assert_eq!(status, 301, "{text}");
    assert_eq!(location(&text).as_deref(), Some("/a/"));
    let (_, text) = raw_get(&v.http, "slash.test", "//evil.example/../a?x=1").await;
    assert_eq!(location(&text).as_deref(), Some("/a/?x=1"));
    let (_, text) = raw_get(&v.http, "noslash.test", "/\\evil.example/").await;
    assert_eq!(location(&text).as_deref(), Some("/%5Cevil.example"));
    let (_, text) = raw_get(&v.http, "noslash.test", "//evil.example/").await;
    assert_eq!(location(&text).as_deref(), Some("/evil.example"));
    // The ordinary cases keep working.
    let (_, text) = raw_get(&v.http, "static.test", "/a").await;
    assert_eq!(location(&text).as_deref(), Some("/a/"));
    let (_, text) = raw_get(&v.http, "moved.test", "/x/y?z=1").await;
    assert_eq!(location(&text).as_deref(), Some("/x/y?z=1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_header_that_is_not_a_name_is_refused() {
    let www = tempfile::tempdir().unwrap();
    let v = Vigie::start(&redirect_sites(&www.path().display().to_string())).await;
    for host in [
        "evil.example/x.wild.test",
        "evil.example\\.wild.test",
        "evil.example?.wild.test",
        "evil.example#.wild.test",
        "user@evil.example.wild.test",
    ] {
        let (status, text) = raw_get(&v.http, host, "/").await;
        assert_eq!(status, 400, "{host}: {text}");
        assert!(location(&text).is_none(), "{host}: {text}");
    }
    let (status, text) = raw_get(&v.http, "a.wild.test", "/p").await;
    assert_eq!(status, 301, "{text}");
    assert_eq!(location(&text).as_deref(), Some("https://a.wild.test/p"));
}

const TOKEN: &str = "hardening-admin-token-0123456789";

fn admin_site(token: Option<&str>) -> String {
    let token = token.map_or(String::new(), |t| format!("admin_token = \"{t}\"\n"));
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
{token}
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  respond = {{ status = 200, body = "ok\n" }}
"#
    )
}

/// `vigie ARGS -c CONFIG` against `v`: exit success, stdout and stderr.
fn cli(v: &Vigie, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(crate::support::vigie::bin())
        .args(args)
        .arg("-c")
        .arg(&v.config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changing_admin_endpoints_need_the_token() {
    let c = crate::support::client();
    let post = |v: &Vigie, path: &str, auth: Option<&str>| {
        let mut r = c.post(format!("http://{}{path}", v.admin)).body("");
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    // No token configured: every POST is refused, saying why; GETs stay open.
    let v = Vigie::start(&admin_site(None)).await;
    for path in ["/certs/renew", "/certs/dry-run", "/cache/purge"] {
        let r = post(&v, path, Some(&format!("Bearer {TOKEN}")))
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        assert!(r.text().await.unwrap().contains("admin_token"), "{path}");
    }
    for path in ["/certs", "/healthz", "/metrics"] {
        let r = c.get(format!("http://{}{path}", v.admin)).send().await;
        assert_eq!(r.unwrap().status(), 200, "{path}");
    }
    let (ok, text) = cli(&v, &["cert", "renew", "example.com"]);
    assert!(!ok && text.contains("needs [server] admin_token"), "{text}");
    drop(v);

    // With a token: missing or wrong is 401, the right one gets through.
    let v = Vigie::start(&admin_site(Some(TOKEN))).await;
    let wrong = format!("Bearer {}x", &TOKEN[..TOKEN.len() - 1]);
    for path in ["/certs/renew", "/certs/dry-run", "/cache/purge"] {
        for auth in [None, Some("Bearer "), Some(wrong.as_str()), Some(TOKEN)] {
            let r = post(&v, path, auth).await.unwrap();
            assert_eq!(r.status(), 401, "{path} {auth:?}");
        }
        let r = post(&v, path, Some(&format!("Bearer {TOKEN}")))
            .await
            .unwrap();
        let status = r.status().as_u16();
        // Past the check: no ACME site (409), or a purge without a URL (400).
        assert!(status == 409 || status == 400, "{path}: {status}");
    }
    // The CLI sends the token from the configuration, and encodes what it puts in the query.
    let (ok, text) = cli(&v, &["cert", "renew", "a b&force=1"]);
    assert!(!ok && text.contains("no site uses tls"), "{text}");
    let (ok, text) = cli(&v, &["cert", "issue", "--dry-run", "--directory", "x&y"]);
    assert!(!ok && text.contains("no site uses tls"), "{text}");
    let (ok, text) = cli(&v, &["cache", "purge", "https://example.com/a?b=1&c"]);
    assert!(ok, "{text}");
    assert!(text.contains("purged 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_server_headers_are_hidden_unless_passed() {
    let origin = crate::support::Origin::start("app").await;
    let cfg = format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
[upstreams.app]
servers = ["{origin}"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "app"
  [[sites.routes]]
  path = "/c/pass/"
  upstream = "app"
  pass_headers = ["Server"]
[[sites]]
names = ["php.test"]
pass_headers = ["Server", "X-Powered-By"]
  [[sites.routes]]
  path = "/"
  upstream = "app"
"#,
        origin = origin.addr_str()
    );
    let v = Vigie::start(&cfg).await;
    let query = "?h=Server:BaseHTTP/0.6+Python/3.11.7&h=X-Powered-By:PHP/8.3&h=X-Other:kept";
    let get = |host: &'static str, path: &'static str| {
        let url = v.url(&format!("{path}{query}"));
        async move {
            let r = crate::support::client()
                .get(url)
                .header("host", host)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{host}{path}");
            let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
            (h("server"), h("x-powered-by"), h("x-other"))
        }
    };
    let (server, powered, other) = get("example.com", "/c/a").await;
    assert_eq!((server, powered), (None, None), "hidden by default");
    assert_eq!(other.as_deref(), Some("kept"));
    let (server, powered, _) = get("example.com", "/c/pass/a").await;
    assert_eq!(server.as_deref(), Some("BaseHTTP/0.6 Python/3.11.7"));
    assert_eq!(powered, None);
    let (server, powered, _) = get("php.test", "/c/a").await;
    assert_eq!(server.as_deref(), Some("BaseHTTP/0.6 Python/3.11.7"));
    assert_eq!(powered.as_deref(), Some("PHP/8.3"));
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_requests_have_the_field_count_limit_of_http1() {
    let origin = crate::support::Origin::start("app").await;
    let cfg = format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
[upstreams.app]
servers = ["{origin}"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "app"
"#,
        origin = origin.addr_str()
    );
    let v = Vigie::start(&cfg).await;
    // The name in the URL (HTTP/2 has no Host header to set), resolved to vigie.
    let addr: std::net::SocketAddr = v.http.parse().unwrap();
    let h2c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .resolve("example.com", addr)
        .build()
        .unwrap();
    let url = |path: &str| format!("http://example.com:{}{path}", addr.port());
    let send = |fields: usize| {
        let mut r = h2c.get(url("/x"));
        for i in 0..fields {
            r = r.header(format!("x-f{i}"), "v");
        }
        r.send()
    };
    // Within the limits.
    let r = send(50).await.unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    // 1,000 small fields: refused like HTTP/1 refuses more than 256.
    let r = send(1000).await.unwrap();
    let status = (r.version(), r.status().as_u16());
    assert_eq!(status, (reqwest::Version::HTTP_2, 431));
    let too_many = "the request header has too many fields";
    assert!(r.text().await.unwrap().contains(too_many));
    let r = send(257).await.unwrap();
    assert_eq!(r.status(), 431);
    assert!(r.text().await.unwrap().contains(too_many));
    assert_eq!(
        origin.count(),
        1,
        "only the requests within the limit went upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vigie_own_answers_carry_the_request_id() {
    let www = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(www.path().join("a")).unwrap();
    std::fs::write(www.path().join("a/index.html"), "a\n").unwrap();
    let v = Vigie::start(&redirect_sites(&www.path().display().to_string())).await;
    let c = crate::support::client();
    for (host, path, status) in [
        ("static.test", "/a/index.html", 200),
        ("static.test", "/a/", 200),
        ("static.test", "/a", 301),
        ("static.test", "/missing", 404),
        ("slash.test", "/x", 301),
        ("slash.test", "/x/", 200),
        ("moved.test", "/x", 302),
        ("unknown.test", "/", 421),
    ] {
        let r = c
            .get(v.url(path))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{host}{path}");
        let id = r.headers().get("x-request-id");
        assert!(id.is_some_and(|id| id.len() == 36), "{host}{path}: {id:?}");
    }
    // A conditional hit (304) too.
    let r = c.get(v.url("/a/index.html")).header("host", "static.test");
    let etag = r.send().await.unwrap().headers()["etag"].clone();
    let r = c
        .get(v.url("/a/index.html"))
        .header("host", "static.test")
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.headers().contains_key("x-request-id"));
}

#[test]
fn commands_without_c_use_etc_vigie_never_the_demo() {
    if std::path::Path::new("/etc/vigie/vigie.toml").exists() {
        eprintln!("skipped: this machine has /etc/vigie/vigie.toml");
        return;
    }
    for args in [&["check"][..], &["reload"], &["cert", "list"], &["ca"]] {
        let out = std::process::Command::new(crate::support::vigie::bin())
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {err}");
        assert!(err.contains("/etc/vigie/vigie.toml"), "{args:?}: {err}");
        assert!(!err.contains("signalled"), "{args:?}: {err}");
    }
    let help = std::process::Command::new(crate::support::vigie::bin())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("/etc/vigie/vigie.toml"), "{help}");
    assert!(
        !help.contains("Without it, vigie runs its embedded demo"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_at_once_when_idle_and_finishes_requests_in_flight() {
    let origin = crate::support::Origin::start("app").await;
    let cfg = format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
grace_period = "30s"
[upstreams.app]
servers = ["{origin}"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "app"
"#,
        origin = origin.addr_str()
    );
    // Idle (after one request, its keep-alive connection left open): out within ~1 s.
    let mut v = Vigie::start(&cfg).await;
    let c = crate::support::client();
    let r = c.get(v.url("/")).header("host", "example.com").send().await;
    assert_eq!(r.unwrap().status(), 200);
    let start = std::time::Instant::now();
    v.signal("TERM");
    let status = v.wait_exit(std::time::Duration::from_secs(5)).await;
    assert!(status.success(), "{status}\n{}", v.log());
    let took = start.elapsed();
    assert!(
        took < std::time::Duration::from_millis(1500),
        "took {took:?}"
    );

    // A request in flight is finished, then vigie exits, long before the 30 s.
    let mut v = Vigie::start(&cfg).await;
    let url = v.url("/slow?ms=1500");
    let slow = tokio::spawn(async move {
        crate::support::client()
            .get(url)
            .header("host", "example.com")
            .send()
            .await
    });
    crate::support::wait_until(
        std::time::Duration::from_secs(5),
        "the request upstream",
        || {
            let seen = origin.count() > 1;
            async move { seen }
        },
    )
    .await;
    v.signal("TERM");
    let r = slow
        .await
        .unwrap()
        .expect("the request in flight completes");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "app /slow?ms=1500\n");
    let status = v.wait_exit(std::time::Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
}
