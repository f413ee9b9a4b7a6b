//! Routing by host and path; answering routes: respond, redirect, static files.

use crate::support::{client, raw_get, Origin, Vigie};

fn two_sites(a: &Origin, b: &Origin, www: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
unknown_host = 421

[upstreams.a]
servers = ["{a}"]
[upstreams.b]
servers = ["{b}"]

[[sites]]
names = ["example.com", "www.example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "a"
  [[sites.routes]]
  path = "/api/"
  upstream = "b"
  [[sites.routes]]
  path = "/api/cv"
  respond = {{ status = 200, body = "cv route\n" }}
  [[sites.routes]]
  path = "/hello"
  respond = {{ status = 201, body = "hello there\n", content_type = "text/x-test" }}
  [[sites.routes]]
  path = "/old"
  redirect = {{ to = "https://$host/new$request_uri", status = 308 }}
  [[sites.routes]]
  path = "/files/"
  static = {{ root = "{www}" }}

[[sites]]
names = ["*.example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "b"
"#,
        a = a.addr_str(),
        b = b.addr_str(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_by_host_then_longest_prefix() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let www = tempfile::tempdir().unwrap();
    let v = Vigie::start(&two_sites(&a, &b, &www.path().display().to_string())).await;

    let r = v.get("example.com", "/page").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "a /page\n");
    // Host matching ignores case, port and a trailing dot.
    let r = v.get("WWW.Example.com.:8080", "/x").await;
    assert_eq!(r.text().await.unwrap(), "a /x\n");
    // Longest prefix: /api/ goes to b, /api/cv is answered by its own route, /apix is not /api/.
    assert_eq!(
        v.get("example.com", "/api/users")
            .await
            .text()
            .await
            .unwrap(),
        "b /api/users\n"
    );
    assert_eq!(
        v.get("example.com", "/api/cv").await.text().await.unwrap(),
        "cv route\n"
    );
    assert_eq!(
        v.get("example.com", "/api/cv?lang=fr")
            .await
            .text()
            .await
            .unwrap(),
        "cv route\n"
    );
    assert_eq!(
        v.get("example.com", "/api/cvx").await.text().await.unwrap(),
        "b /api/cvx\n"
    );
    assert_eq!(
        v.get("example.com", "/apix").await.text().await.unwrap(),
        "a /apix\n"
    );
    // Wildcard site: any subdomain, one or more labels deep; exact names win over it.
    assert_eq!(
        v.get("shop.example.com", "/").await.text().await.unwrap(),
        "b /\n"
    );
    assert_eq!(
        v.get("a.b.example.com", "/").await.text().await.unwrap(),
        "b /\n"
    );
    // Dot segments are resolved before routing: this is /api/x, not a file under /files/.
    let (status, text) = raw_get(&v.http, "example.com", "/files/../api/x").await;
    assert_eq!(status, 200);
    assert!(text.ends_with("b /files/../api/x\n"), "{text}");
    // Unknown host: 421, never another site.
    let r = v.get("evil.test", "/").await;
    assert_eq!(r.status(), 421);
    assert!(r
        .text()
        .await
        .unwrap()
        .starts_with("421 Misdirected Request"));
    assert_eq!(
        a.count() + b.count(),
        8,
        "origins saw exactly the proxied requests"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_host_can_be_404_and_missing_route_is_404() {
    let a = Origin::start("a").await;
    let cfg = format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
unknown_host = 404
[upstreams.a]
servers = ["{}"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/only/"
  upstream = "a"
"#,
        a.addr_str()
    );
    let v = Vigie::start(&cfg).await;
    assert_eq!(v.get("other.test", "/").await.status(), 404);
    assert_eq!(v.get("example.com", "/elsewhere").await.status(), 404);
    assert_eq!(v.get("example.com", "/only/x").await.status(), 200);
    assert_eq!(a.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn respond_and_redirect() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let www = tempfile::tempdir().unwrap();
    let v = Vigie::start(&two_sites(&a, &b, &www.path().display().to_string())).await;

    let r = v.get("example.com", "/hello").await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "text/x-test");
    assert_eq!(r.text().await.unwrap(), "hello there\n");

    let r = v.get("example.com", "/old/page?x=1").await;
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        "https://example.com/new/old/page?x=1"
    );

    // HEAD gets the headers of the fixed response and no body.
    let r = client()
        .head(v.url("/hello"))
        .header("host", "example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-length"], "12");
    assert_eq!(r.bytes().await.unwrap().len(), 0);
    assert_eq!(a.count() + b.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn static_files() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let www = tempfile::tempdir().unwrap();
    let root = www.path().join("root");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>home</h1>\n").unwrap();
    std::fs::write(root.join("app.js"), "console.log(1)\n").unwrap();
    std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>\n").unwrap();
    std::fs::write(root.join("space name.txt"), "spaced\n").unwrap();
    std::fs::write(www.path().join("secret.txt"), "do not serve\n").unwrap();
    std::os::unix::fs::symlink(www.path().join("secret.txt"), root.join("link.txt")).unwrap();
    let v = Vigie::start(&two_sites(&a, &b, &root.display().to_string())).await;

    let r = v.get("example.com", "/files/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    assert_eq!(r.text().await.unwrap(), "<h1>home</h1>\n");

    let r = v.get("example.com", "/files/app.js").await;
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    assert_eq!(
        v.get("example.com", "/files/space%20name.txt")
            .await
            .text()
            .await
            .unwrap(),
        "spaced\n"
    );

    // Conditional requests.
    let r = client()
        .get(v.url("/files/index.html"))
        .header("host", "example.com")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    let r = client()
        .get(v.url("/files/index.html"))
        .header("host", "example.com")
        .header("if-modified-since", &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = client()
        .get(v.url("/files/index.html"))
        .header("host", "example.com")
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A directory without its slash is redirected; with it, its index is served.
    let r = v.get("example.com", "/files/docs").await;
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/files/docs/");
    assert_eq!(
        v.get("example.com", "/files/docs/")
            .await
            .text()
            .await
            .unwrap(),
        "<h1>docs</h1>\n"
    );

    // Nothing outside the root: encoded slashes and backslashes, NUL, symlinks out.
    for path in [
        "/files/..%2fsecret.txt",
        "/files/docs/..%2f..%2fsecret.txt",
        "/files/..%5csecret.txt",
        "/files/link.txt",
        "/files/missing.txt",
        "/files/docs%00.html",
    ] {
        let (status, body) = raw_get(&v.http, "example.com", path).await;
        assert!(!body.contains("do not serve"), "{path} escaped the root");
        assert!(status == 404 || status == 400, "{path}: {status}");
    }
    // Encoded dot segments are resolved before routing: this leaves /files/ for the `/`
    // route (the origin), and never reaches the file outside the root.
    let (status, body) = raw_get(&v.http, "example.com", "/files/%2e%2e/secret.txt").await;
    assert_eq!(status, 200);
    assert!(body.ends_with("a /files/%2e%2e/secret.txt\n"), "{body}");
    // Only GET and HEAD.
    let r = client()
        .post(v.url("/files/index.html"))
        .header("host", "example.com")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    assert_eq!(a.count() + b.count(), 1);
}
