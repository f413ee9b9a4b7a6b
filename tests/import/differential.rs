//! The differential runs, one per corpus entry: the same requests to real nginx running the
//! original and to vigie running the import, compared on status, `Location`, the headers that
//! matter and what the origin received. Each documented difference (the import report lists
//! it) is asserted exactly.

use super::harness::{compare, differential, Answer, Case, Expected, Req};
use crate::support::nginx::Nginx;

/// Fails when nginx is missing: `make deps` installs it, and without it nothing is compared.
fn need_nginx() {
    assert!(
        Nginx::available(),
        "nginx is not installed (make deps installs it)"
    );
}

/// GETs of `paths` on `host` from 127.0.0.2, labelled `GET host/path`.
fn gets(host: &str, paths: &[&str]) -> Vec<Req> {
    paths
        .iter()
        .map(|p| Req::get(host, p, "", "127.0.0.2", &format!("GET {host}{p}")))
        .collect()
}

/// The answer of request `label`.
fn answer<'r>(results: &'r [(String, Answer, Answer)], label: &str) -> (&'r Answer, &'r Answer) {
    let (_, n, v) = results
        .iter()
        .find(|(l, _, _)| l == label)
        .unwrap_or_else(|| panic!("no request {label}"));
    (n, v)
}

#[tokio::test(flavor = "multi_thread")]
async fn differential_runbook_stack() {
    need_nginx();
    let results = differential(Case::new(
        "01-runbook-stack.conf",
        &["example.com", "grafana.example.com", "unknown.example"],
    ))
    .await;
    compare(
        &results,
        UNKNOWN_HOST,
        &["origin1", "origin2", "origin3"],
        &[],
    );
}

/// nginx sends a Host no server names to the first server (here: the app); vigie answers
/// 421 (`[server] unknown_host`), listed in the import report.
const UNKNOWN_HOST: &[Expected<'_>] = &[
    ("GET unknown.example/", 200, 421, None),
    ("GET unknown.example/api/x", 200, 421, None),
    ("GET unknown.example/api/cv", 200, 421, None),
    ("GET unknown.example/api/cv?lang=fr", 200, 421, None),
    ("GET unknown.example/api/cvs", 200, 421, None),
    ("GET unknown.example/a/../api/cv", 200, 421, None),
    ("GET unknown.example//double", 200, 421, None),
    ("GET unknown.example/%2e%2e/x", 400, 421, None),
    ("GET unknown.example/upload", 200, 421, None),
    ("GET unknown.example/up", 200, 421, None),
    ("POST unknown.example/api/x", 200, 421, None),
    ("GET UNKNOWN.EXAMPLE (upper case)", 200, 421, None),
];

#[tokio::test(flavor = "multi_thread")]
async fn differential_simple_sites() {
    need_nginx();
    for (name, hosts) in [
        (
            "07-www-redirect.conf",
            &["example.com", "www.example.com"][..],
        ),
        ("11-gzip.conf", &["example.com"][..]),
        (
            "16-wildcard.conf",
            &["a.example.org", "example.net", "x.example.net"][..],
        ),
        ("14-includes", &["a.example.com", "b.example.com"][..]),
    ] {
        let results = differential(Case::new(name, hosts)).await;
        compare(&results, WWW_LOCATIONS, &[], &[]);
    }
}

/// A `return 301 http://example.com$request_uri` sends the raw request target; vigie's
/// `redirect_www` builds Location from the normalised path (a raw `//x` would name another
/// host to a browser), listed in the import report.
const WWW_LOCATIONS: &[Expected<'_>] = &[
    (
        "GET www.example.com/a/../api/cv",
        301,
        301,
        Some((
            "http://example.com/a/../api/cv",
            "http://example.com/api/cv",
        )),
    ),
    (
        "GET www.example.com//double",
        301,
        301,
        Some(("http://example.com//double", "http://example.com/double")),
    ),
];

/// `ip_hash`: both keep a client on one server of the group, but pick it differently
/// (nginx by the address's first three octets, vigie by a consistent hash of the whole
/// address), so the group's servers are compared as one; body size limits per location.
#[tokio::test(flavor = "multi_thread")]
async fn differential_sticky_upstream_and_body_limits() {
    need_nginx();
    let mut case = Case::new("15-timeouts-hash.conf", &["example.com"]);
    for (path, len) in [
        ("/", 2_000_000),
        ("/upload", 2_000_000),
        ("/upload", 200_000_000),
    ] {
        case.extra.push(Req {
            label: format!("POST {path} declaring {len} bytes"),
            raw: format!(
                "POST {path} HTTP/1.1\r\nHost: example.com\r\nContent-Length: {len}\r\n\
                 Connection: close\r\n\r\n"
            ),
            from: "127.0.0.2".into(),
        });
    }
    let results = differential(case).await;
    compare(&results, &[], &["origin1", "origin2"], &[]);
    let (n, _) = answer(&results, "POST / declaring 2000000 bytes");
    assert_eq!(n.status, 413, "the limit is exercised");
}

/// A single-page app: files, directories with an index, the `try_files` fallback to
/// `/index.html`, and the API prefix stripped by `proxy_pass http://…/`.
#[tokio::test(flavor = "multi_thread")]
async fn differential_spa_try_files() {
    need_nginx();
    let mut case = Case::new("03-spa.conf", &[]);
    case.files = &[
        ("/srv/app/dist/index.html", "spa index\n"),
        ("/srv/app/dist/app.js", "console.log(1)\n"),
        ("/srv/app/dist/app.css", "body {}\n"),
        ("/srv/app/dist/docs/index.html", "docs index\n"),
    ];
    case.roots = &["/srv"];
    case.extra = gets(
        "app.example.com",
        &[
            "/",
            "/index.html",
            "/app.js",
            "/app.css",
            "/dashboard/settings",
            "/docs/",
            "/missing.png",
            "/api/users/7",
            "/api/",
            "/api",
            "/%2e%2e/etc/passwd",
        ],
    );
    let results = differential(case).await;
    // JavaScript: nginx 1.22's mime.types says application/javascript, vigie the current
    // registration, text/javascript (RFC 9239).
    let (js, rest): (Vec<_>, Vec<_>) = results
        .into_iter()
        .partition(|(l, _, _)| l == "GET app.example.com/app.js");
    compare(&rest, &[], &[], &["content-type"]);
    let (_, n, v) = &js[0];
    assert_eq!(n.header("content-type"), Some("application/javascript"));
    assert_eq!(
        v.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(n.body, v.body);
    let results = rest;
    let (n, _) = answer(&results, "GET app.example.com/dashboard/settings");
    assert_eq!(
        n.body.lines().next(),
        Some("spa index"),
        "the fallback is exercised"
    );
}

/// An API gateway: an exact location, regex locations (case-sensitive and not) in file
/// order, `^~` winning over regexes, and `proxy_pass` with a URI part replacing the prefix.
#[tokio::test(flavor = "multi_thread")]
async fn differential_api_gateway_regex_locations() {
    need_nginx();
    let mut case = Case::new("04-api-gateway.conf", &[]);
    case.extra = gets(
        "api.example.com",
        &[
            "/health",
            "/health/x",
            "/v1/users",
            "/v22/users/5?x=1",
            "/V1/users",
            "/img.PNG",
            "/v1/users/me.png",
            "/static/img.png",
            "/static/a/b",
            "/orders/12",
            "/orders/",
            "/orders",
            "/other",
        ],
    );
    let results = differential(case).await;
    compare(&results, &[], &[], &[]);
    let (n, _) = answer(&results, "GET api.example.com/orders/12");
    assert_eq!(n.body.lines().next(), Some("origin2 /api/orders/12"));
}

/// Basic authentication from an htpasswd file with the two formats `htpasswd` writes
/// (`{SHA}` and Apache MD5): no, wrong, unknown and right credentials.
#[tokio::test(flavor = "multi_thread")]
async fn differential_basic_auth() {
    need_nginx();
    let mut case = Case::new("05-basic-auth.conf", &["example.com"]);
    case.files = &[(
        "/etc/nginx/htpasswd",
        "admin:{SHA}/vNB+F2HQ559kaLUZbmHHvZrXpg=\nops:$apr1$abcdefgh$2sUI7eCg8OCOhE6ZGA93w/\n",
    )];
    case.roots = &["/etc/nginx/htpasswd"];
    for (who, creds) in [
        ("none", None),
        ("admin", Some("YWRtaW46czNjcmV0")),
        ("wrong password", Some("YWRtaW46d3Jvbmc=")),
        ("ops (apr1)", Some("b3BzOm9wc3Bhc3M=")),
        ("unknown user", Some("bm9ib2R5OnMzY3JldA==")),
        ("not base64", Some("!!!")),
    ] {
        for path in ["/admin", "/admin/users", "/administrator", "/Admin"] {
            let header = creds
                .map(|c| format!("Authorization: Basic {c}\r\n"))
                .unwrap_or_default();
            case.extra.push(Req::get(
                "example.com",
                path,
                &header,
                "127.0.0.2",
                &format!("GET {path} as {who}"),
            ));
        }
    }
    let results = differential(case).await;
    compare(&results, &[], &[], &["www-authenticate"]);
    let (n, _) = answer(&results, "GET /admin as admin");
    assert_eq!(n.body.lines().next(), Some("origin2 /admin"));
    let (n, _) = answer(&results, "GET /admin as wrong password");
    assert_eq!(n.status, 401);
}

/// Access rules by client address: the same paths from an allowed and a denied address.
#[tokio::test(flavor = "multi_thread")]
async fn differential_allow_deny() {
    need_nginx();
    let mut case = Case::new("06-allow-deny.conf", &["internal.example.com"]);
    for from in ["127.0.0.2", "127.0.0.3"] {
        for path in ["/metrics", "/metrics/cpu", "/metricsfoo", "/"] {
            case.extra.push(Req::get(
                "internal.example.com",
                path,
                "",
                from,
                &format!("GET {path} from {from}"),
            ));
        }
    }
    let results = differential(case).await;
    compare(&results, &[], &[], &[]);
    assert_eq!(
        answer(&results, "GET /metrics from 127.0.0.3").0.status,
        403
    );
    assert_eq!(
        answer(&results, "GET /metrics from 127.0.0.2").0.status,
        200
    );
}

/// `return 444` closes the connection without an answer (status 0 here) on a location; the
/// catch-all server's 444 becomes vigie's 421 for unknown hosts (in the import report).
#[tokio::test(flavor = "multi_thread")]
async fn differential_drop_444() {
    need_nginx();
    let mut case = Case::new("09-drop-444.conf", &["example.com"]);
    case.extra = gets("example.com", &["/wp-login.php", "/wp-login.php/x"]);
    case.extra
        .extend(gets("scanner.invalid", &["/", "/wp-login.php"]));
    let results = differential(case).await;
    compare(
        &results,
        &[
            ("GET scanner.invalid/", 0, 421, None),
            ("GET scanner.invalid/wp-login.php", 0, 421, None),
            ("GET EXAMPLE.COM (upper case)", 200, 200, None),
        ],
        &[],
        &[],
    );
    assert_eq!(answer(&results, "GET example.com/wp-login.php").1.status, 0);
}

/// `error_page 502 … /50x.html` served from the location that has the file, with the
/// origin down; the file itself is served at its own path.
#[tokio::test(flavor = "multi_thread")]
async fn differential_error_pages() {
    need_nginx();
    let mut case = Case::new("10-error-pages.conf", &[]);
    case.files = &[("/usr/share/nginx/html/50x.html", "<h1>Sorry, down</h1>\n")];
    case.roots = &["/usr/share/nginx/html"];
    case.dead = &["3001"];
    case.extra = gets("example.com", &["/", "/api/x", "/50x.html"]);
    let results = differential(case).await;
    compare(&results, &[], &[], &["content-type"]);
    for label in ["GET example.com/", "GET example.com/api/x"] {
        let (n, v) = answer(&results, label);
        assert_eq!(n.status, 502);
        assert!(n.body.contains("Sorry, down"), "nginx: {n:?}");
        assert!(v.body.contains("Sorry, down"), "vigie: {v:?}");
    }
}

/// Static files with `alias` and `root` beside a proxied location that hides a header and
/// adds one; `add_header` without `always` is on 2xx/3xx only in nginx, on every status in
/// vigie (in the import report), asserted on the origin's 500.
#[tokio::test(flavor = "multi_thread")]
async fn differential_static_and_proxy() {
    need_nginx();
    let mut case = Case::new("12-static-and-proxy.conf", &[]);
    case.files = &[
        ("/srv/static/logo.txt", "logo\n"),
        ("/srv/static/sub/b.txt", "sub b\n"),
        ("/srv/media/a.txt", "media a\n"),
    ];
    case.roots = &["/srv"];
    case.extra = gets(
        "example.com",
        &[
            "/static/logo.txt",
            "/static/sub/b.txt",
            "/static/missing",
            "/static/../media/a.txt",
            "/media/a.txt",
            "/media/missing",
            "/",
            "/page",
            "/status/500",
        ],
    );
    let results = differential(case).await;
    let (documented, rest): (Vec<_>, Vec<_>) = results
        .into_iter()
        .partition(|(l, _, _)| l == "GET example.com/status/500");
    compare(&rest, &[], &[], &["x-frame-options", "x-powered-by"]);
    let (_, n, v) = &documented[0];
    assert_eq!((n.status, v.status), (500, 500));
    assert_eq!(n.header("x-frame-options"), None);
    assert_eq!(v.header("x-frame-options"), Some("DENY"));
}

/// `rewrite … permanent` into a redirect with the capture, and `rewrite … break` before
/// proxying.
#[tokio::test(flavor = "multi_thread")]
async fn differential_rewrite() {
    need_nginx();
    let mut case = Case::new("13-rewrite.conf", &[]);
    case.extra = gets(
        "example.com",
        &[
            "/old/a/b",
            "/old/",
            "/old/a?x=1",
            "/blog/post-1",
            "/blog/post-1?draft=1",
            "/blog/",
            "/blogx",
            "/new/a",
        ],
    );
    let results = differential(case).await;
    compare(&results, &[], &[], &[]);
    let (n, _) = answer(&results, "GET example.com/blog/post-1");
    assert_eq!(n.body.lines().next(), Some("origin1 /posts/post-1"));
}

/// A documented Location difference, as in [`Expected`].
type Locations = Option<(&'static str, &'static str)>;

/// HTTP→HTTPS redirects and the TLS server behind them, with its HSTS header; vigie
/// redirects other methods with 308 (nginx: the configured 301), in the import report.
#[tokio::test(flavor = "multi_thread")]
async fn differential_https_redirect() {
    need_nginx();
    let ca = crate::support::tls::TestCa::new("differential");
    let (cert, key) = ca.leaf(&["example.com", "www.example.com"]);
    let files = [
        ("/etc/ssl/example.com.crt", cert.as_str()),
        ("/etc/ssl/example.com.key", key.as_str()),
    ];
    let mut case = Case::new(
        "08-https-redirect.conf",
        &["example.com", "www.example.com"],
    );
    case.files = &files;
    case.roots = &["/etc/ssl"];
    case.ca = Some(&ca);
    for host in ["example.com", "www.example.com"] {
        for path in ["/", "/x?y=1"] {
            case.tls.push((
                format!("TLS GET {host}{path}"),
                host.to_string(),
                path.to_string(),
            ));
        }
    }
    let results = differential(case).await;
    let mut expected: Vec<(String, u16, u16, Locations)> = vec![
        ("POST example.com/api/x".into(), 301, 308, None),
        ("POST www.example.com/api/x".into(), 301, 308, None),
    ];
    // nginx's `https://$host$request_uri` copies the raw target; vigie's redirect is built
    // from the normalised path (as for `redirect_www`), and a path that climbs above the
    // root goes to `/` instead of nginx's 400.
    for host in ["example.com", "www.example.com"] {
        expected.extend([
            (format!("GET {host}/a/../api/cv"), 301, 301, None),
            (format!("GET {host}//double"), 301, 301, None),
            (format!("GET {host}/%2e%2e/x"), 400, 301, None),
        ]);
    }
    let expected: Vec<Expected<'_>> = expected
        .iter()
        .map(|(l, n, v, loc)| (l.as_str(), *n, *v, *loc))
        .collect();
    compare(&results, &expected, &[], &["strict-transport-security"]);
    let (n, v) = answer(&results, "GET example.com//double");
    assert_eq!(n.location.as_deref(), Some("https://example.com//double"));
    assert_eq!(v.location.as_deref(), Some("https://example.com/double"));
    let (n, _) = answer(&results, "TLS GET example.com/x?y=1");
    assert_eq!(n.body.lines().next(), Some("origin1 /x?y=1"));
}

/// A certbot-managed site: nginx serves certbot's files, vigie obtains its certificate by
/// ACME (here from a CA that cannot be reached: the HTTP side does not wait for it). Over
/// plain HTTP both redirect to HTTPS (vigie: 308 for other methods), and nginx's `return 404`
/// for other hosts is vigie's 421.
#[tokio::test(flavor = "multi_thread")]
async fn differential_certbot_http_side() {
    need_nginx();
    let ca = crate::support::tls::TestCa::new("differential");
    let (cert, key) = ca.leaf(&["shop.example.com"]);
    let files = [
        (
            "/etc/letsencrypt/live/shop.example.com/fullchain.pem",
            cert.as_str(),
        ),
        (
            "/etc/letsencrypt/live/shop.example.com/privkey.pem",
            key.as_str(),
        ),
        (
            "/etc/letsencrypt/options-ssl-nginx.conf",
            "ssl_session_cache shared:le_nginx_SSL:10m;\n",
        ),
    ];
    let mut case = Case::new("02-certbot.conf", &["shop.example.com", "other.example"]);
    case.files = &files;
    case.roots = &["/etc/letsencrypt"];
    case.vigie_toml =
        "\n[acme]\nemail = \"ops@example.com\"\ndirectory = \"https://127.0.0.1:9/directory\"\n";
    let results = differential(case).await;
    let mut expected: Vec<(String, u16, u16, Locations)> = vec![
        ("POST shop.example.com/api/x".into(), 301, 308, None),
        ("GET shop.example.com/a/../api/cv".into(), 301, 301, None),
        ("GET shop.example.com//double".into(), 301, 301, None),
        ("GET shop.example.com/%2e%2e/x".into(), 400, 301, None),
    ];
    for (label, _, _) in results
        .iter()
        .filter(|(l, _, _)| l.contains("other.example") || l.contains("OTHER.EXAMPLE"))
    {
        let (n, _) = answer(&results, label);
        expected.push((label.clone(), n.status, 421, None));
    }
    let expected: Vec<Expected<'_>> = expected
        .iter()
        .map(|(l, n, v, loc)| (l.as_str(), *n, *v, *loc))
        .collect();
    compare(&results, &expected, &[], &[]);
    let (n, v) = answer(&results, "GET shop.example.com/api/cv?lang=fr");
    assert_eq!(
        n.location.as_deref(),
        Some("https://shop.example.com/api/cv?lang=fr")
    );
    assert_eq!(n.location, v.location);
    assert_eq!(answer(&results, "GET other.example/").0.status, 404);
}
