//! Request and response details: www redirects, custom error pages, no version in `Server`,
//! header size limits (431, 414), header and body deadlines (408), byte ranges.

mod limits;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{client, free_port, raw_get, Origin, Ports, Vigie};

struct Setup {
    v: Vigie,
    origin: Origin,
    _pages: tempfile::TempDir,
    _www: tempfile::TempDir,
}

/// A file of 1000 bytes whose byte `i` is `b'a' + i % 26`.
fn letters() -> Vec<u8> {
    (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect()
}

async fn setup() -> Setup {
    let origin = Origin::start("app").await;
    let pages = tempfile::tempdir().unwrap();
    std::fs::write(pages.path().join("404.html"), "<h1>Nothing here</h1>\n").unwrap();
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("letters.txt"), letters()).unwrap();
    let text = format!(
        r#"
[server]
http = ["{{http}}"]
https = ["{{https}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
header_timeout = "1s"
body_timeout = "1s"
max_header_bytes = "16KiB"
max_uri_bytes = "2KiB"

[error_pages]
404 = {{ file = "{pages}/404.html" }}
421 = {{ body = "no such site\n" }}
408 = {{ body = "too slow\n" }}
429 = {{ body = "slow down\n" }}

[limits.tight]
rate = "1/m"

[upstreams.app]
servers = ["{origin}"]

[upstreams.down]
servers = ["127.0.0.1:{closed}"]
retries = 0

[[sites]]
names = ["example.com", "www.example.com"]
redirect_www = "to_apex"
compress = true
error_pages = {{ "502" = {{ body = "<h1>We are down</h1>", content_type = "text/html" }} }}
  [[sites.routes]]
  path = "/"
  upstream = "app"
  [[sites.routes]]
  path = "/down/"
  upstream = "down"
  [[sites.routes]]
  path = "/gone"
  respond = {{ status = 404, body = "written by hand" }}
  [[sites.routes]]
  path = "/limited/"
  upstream = "app"
  limit = "tight"
  [[sites.routes]]
  path = "/files/"
  static = {{ root = "{www}" }}

[[sites]]
names = ["shop.test", "www.shop.test"]
redirect_www = "to_www"
tls = "internal"
  [[sites.routes]]
  path = "/"
  upstream = "app"

[[sites]]
names = ["slash.test"]
trailing_slash = "add"
  [[sites.routes]]
  path = "/"
  upstream = "app"

[[sites]]
names = ["noslash.test"]
trailing_slash = "remove"
  [[sites.routes]]
  path = "/"
  upstream = "app"
"#,
        pages = pages.path().display(),
        www = www.path().display(),
        origin = origin.addr_str(),
        closed = free_port(),
    );
    let v = Vigie::start(&text).await;
    Setup {
        v,
        origin,
        _pages: pages,
        _www: www,
    }
}

/// Send `request` as raw bytes and read the answer until the server closes or `limit`.
async fn exchange(addr: &str, request: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).to_string()
}

/// The internal CA's root, to trust vigie's HTTPS listener.
fn internal_root(v: &Vigie) -> reqwest::Certificate {
    let pem = std::fs::read_to_string(v.state().join("ca/root.pem")).unwrap();
    reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn www_redirects_keep_scheme_port_path_and_query() {
    let s = setup().await;
    let v = &s.v;
    let r = v.get("www.example.com", "/a/b?x=1&y=2").await;
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "http://example.com/a/b?x=1&y=2");
    let r = v.get("WWW.example.com:8080", "/").await;
    assert_eq!(r.headers()["location"], "http://example.com:8080/");
    let r = client()
        .post(v.url("/form"))
        .header("host", "www.example.com")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308, "the method and body are kept");
    assert_eq!(r.headers()["location"], "http://example.com/form");
    // The canonical name itself is served.
    let r = v.get("example.com", "/a/b?x=1").await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.origin.seen().last().unwrap().uri, "/a/b?x=1");

    // A site with TLS: plain HTTP goes to the canonical name over HTTPS in one hop.
    let https_port = Ports::port(&v.https);
    let r = v.get("shop.test", "/p?q=1").await;
    assert_eq!(r.status(), 301);
    let expected = format!("https://www.shop.test:{https_port}/p?q=1");
    assert_eq!(r.headers()["location"], expected.as_str());
    let r = v.get("www.shop.test", "/p?q=1").await;
    assert_eq!(
        r.headers()["location"],
        expected.as_str(),
        "to HTTPS, same name"
    );
    // Over HTTPS: the apex redirects to www; www is served.
    let c = v.https_client(&["shop.test", "www.shop.test"], &[internal_root(v)]);
    let r = c
        .get(v.https_url("shop.test", "/p?q=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], expected.as_str());
    let r = c.get(expected.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn trailing_slashes_are_passed_as_sent() {
    let s = setup().await;
    for path in ["/a/", "/a", "/a//b/", "/dir/index.html/"] {
        let (status, _) = raw_get(&s.v.http, "example.com", path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(s.origin.seen().last().unwrap().uri, path);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trailing_slash_normalisation_redirects_when_a_site_asks_for_it() {
    let s = setup().await;
    let location = |text: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("location: ")
                    .or_else(|| l.strip_prefix("Location: "))
            })
            .map(|l| l.trim().to_string())
    };
    for (host, path, want) in [
        ("slash.test", "/docs", Some((301, "/docs/"))),
        ("slash.test", "/docs?x=1", Some((301, "/docs/?x=1"))),
        ("slash.test", "/docs/", None),
        ("slash.test", "/app.js", None),
        ("noslash.test", "/docs/", Some((301, "/docs"))),
        ("noslash.test", "/docs//?x=1", Some((301, "/docs?x=1"))),
        ("noslash.test", "/", None),
        ("noslash.test", "/docs", None),
    ] {
        let before = s.origin.count();
        let (status, text) = raw_get(&s.v.http, host, path).await;
        match want {
            Some((code, to)) => {
                assert_eq!(status, code, "{host}{path}: {text}");
                assert_eq!(location(&text).as_deref(), Some(to), "{host}{path}");
                assert_eq!(s.origin.count(), before, "{host}{path} reached the origin");
            }
            None => {
                assert_eq!(status, 200, "{host}{path}: {text}");
                assert_eq!(s.origin.seen().last().unwrap().uri, path);
            }
        }
    }
    // A POST keeps its method and body: 308.
    let r = client()
        .post(s.v.url("/form"))
        .header("host", "slash.test")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_error_pages_keep_the_status() {
    let s = setup().await;
    let v = &s.v;
    let page = |r: &reqwest::Response| {
        (
            r.status().as_u16(),
            r.headers()["content-type"].to_str().unwrap().to_string(),
        )
    };
    // Top-level page from a file, for a static file that is not there.
    let r = v.get("example.com", "/files/missing.txt").await;
    assert_eq!(page(&r), (404, "text/html; charset=utf-8".into()));
    assert_eq!(r.text().await.unwrap(), "<h1>Nothing here</h1>\n");
    // HEAD: the page's headers, no body.
    let r = client()
        .head(v.url("/files/missing.txt"))
        .header("host", "example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-length"], "22");
    assert_eq!(r.bytes().await.unwrap().len(), 0);
    // Before any site is known: the top-level page.
    let r = v.get("nobody.test", "/").await;
    assert_eq!(page(&r), (421, "text/plain; charset=utf-8".into()));
    assert_eq!(r.text().await.unwrap(), "no such site\n");
    // The site's own page for an upstream that refuses connections.
    let r = v.get("example.com", "/down/x").await;
    assert_eq!(page(&r), (502, "text/html".into()));
    assert_eq!(r.text().await.unwrap(), "<h1>We are down</h1>");
    // The rate limiter's answer keeps its headers.
    assert_eq!(v.get("example.com", "/limited/").await.status(), 200);
    let r = v.get("example.com", "/limited/").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.text().await.unwrap(), "slow down\n");
    // A `respond` route and an upstream's own 404 are not vigie's errors: sent as they are.
    let r = v.get("example.com", "/gone").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "written by hand");
    let r = v.get("example.com", "/status/404").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "app /status/404\n");
}

/// vigie adds no `Server` header; pingora's own 400 for a malformed request says "Pingora"
/// with no version.
#[tokio::test(flavor = "multi_thread")]
async fn no_server_version_is_disclosed() {
    let s = setup().await;
    let v = &s.v;
    for (host, path) in [
        ("example.com", "/"),
        ("example.com", "/files/letters.txt"),
        ("example.com", "/files/missing"),
        ("example.com", "/down/"),
        ("www.example.com", "/"),
        ("nobody.test", "/"),
    ] {
        let r = v.get(host, path).await;
        assert!(
            !r.headers().contains_key("server"),
            "{host}{path}: {:?}",
            r.headers().get("server")
        );
    }
    let bad = exchange(
        &v.http,
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    for line in bad
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("server:"))
    {
        assert!(
            !line.contains('/') && !line.contains(char::is_numeric),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ranges_pass_through_proxies_and_static_files_answer_them() {
    let s = setup().await;
    let v = &s.v;
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut req = client().get(v.url(path)).header("host", "example.com");
        for (k, val) in headers {
            req = req.header(*k, *val);
        }
        req.send()
    };
    // Proxied: the Range reaches the origin, its 206 comes back untouched and uncompressed.
    let r = get(
        "/body?kb=4&status=206&ct=text/plain",
        &[("range", "bytes=0-99"), ("accept-encoding", "gzip")],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 0-4095/99999");
    assert!(!r.headers().contains_key("content-encoding"));
    assert_eq!(r.bytes().await.unwrap().len(), 4096);
    assert_eq!(
        s.origin.seen().last().unwrap().headers["range"],
        "bytes=0-99"
    );

    // Static files: one range.
    let file = letters();
    let r = get("/files/letters.txt", &[]).await.unwrap();
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=-5", 995, 999),
        ("bytes=990-", 990, 999),
    ] {
        let r = get(
            "/files/letters.txt",
            &[("range", range), ("accept-encoding", "gzip")],
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 206, "{range}");
        let cr = format!("bytes {start}-{end}/1000");
        assert_eq!(r.headers()["content-range"], cr.as_str());
        assert!(!r.headers().contains_key("content-encoding"));
        assert_eq!(&r.bytes().await.unwrap()[..], &file[start..=end], "{range}");
    }
    let r = get("/files/letters.txt", &[("range", "bytes=1000-")])
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */1000");
    // Several ranges, or an If-Range that no longer matches: the whole file.
    for headers in [
        vec![("range", "bytes=0-1,5-6")],
        vec![("range", "bytes=0-9"), ("if-range", "\"stale\"")],
    ] {
        let r = get("/files/letters.txt", &headers).await.unwrap();
        assert_eq!(r.status(), 200, "{headers:?}");
        assert_eq!(r.bytes().await.unwrap().len(), 1000);
    }
    let r = get(
        "/files/letters.txt",
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 206);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_a_missing_error_page_file() {
    let out = crate::support::check("[error_pages]\n404 = { file = \"/nonexistent/404.html\" }\n");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "test.toml:2:16: cannot read error page file \"/nonexistent/404.html\": No such file or directory"
        ),
        "{stderr}"
    );
}
