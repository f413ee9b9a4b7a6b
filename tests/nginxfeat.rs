//! The nginx features an import needs, over real sockets: exact and regex routes in nginx's
//! order, access rules, Basic authentication, rewrites, `try_files`, `respond` 444.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{client, Origin, Vigie};

fn config(a: &Origin, b: &Origin, www: &str, htpasswd: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[upstreams.a]
servers = ["{a}"]
[upstreams.b]
servers = ["{b}"]

[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "a"
  [[sites.routes]]
  exact = "/"
  respond = {{ status = 200, body = "exact root\n" }}
  [[sites.routes]]
  path = "/images/"
  no_regex = true
  upstream = "a"
  [[sites.routes]]
  regex = "\\.(gif|jpg)$"
  case_insensitive = true
  upstream = "b"
  [[sites.routes]]
  regex = "^/api/v([0-9]+)/"
  upstream = "b"
  rewrite = [{{ from = "^/api/v[0-9]+/(.*)$", to = "/internal/$1", flag = "break" }}]
  [[sites.routes]]
  path = "/old/"
  upstream = "a"
  rewrite = [{{ from = "^/old/(.*)$", to = "/new/$1", flag = "permanent" }}]
  [[sites.routes]]
  path = "/moved"
  upstream = "a"
  rewrite = [{{ from = "^/moved$", to = "/images/moved?x=1", flag = "last" }}]
  [[sites.routes]]
  path = "/loop"
  upstream = "a"
  rewrite = [{{ from = "^/loop$", to = "/loop", flag = "last" }}]
  [[sites.routes]]
  path = "/lan/"
  upstream = "a"
  access = [{{ allow = "10.0.0.0/8" }}, {{ allow = "127.0.0.0/8" }}, {{ deny = "all" }}]
  [[sites.routes]]
  path = "/closed/"
  upstream = "a"
  access = [{{ deny = "127.0.0.1" }}]
  [[sites.routes]]
  path = "/admin/"
  upstream = "a"
  basic_auth = {{ realm = "Admin", htpasswd = "{htpasswd}" }}
  [[sites.routes]]
  path = "/app/"
  static = {{ root = "{www}", try_files = ["$uri", "$uri/", "/index.html"] }}
  [[sites.routes]]
  path = "/strict/"
  static = {{ root = "{www}", try_files = ["$uri", "=404"] }}
  [[sites.routes]]
  path = "/drop"
  respond = {{ status = 444 }}
"#,
        a = a.addr_str(),
        b = b.addr_str(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_locations_access_auth_rewrites_try_files_and_444() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "spa shell\n").unwrap();
    std::fs::write(www.path().join("app.js"), "js\n").unwrap();
    std::fs::create_dir(www.path().join("docs")).unwrap();
    std::fs::write(www.path().join("docs/index.html"), "docs index\n").unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let htpasswd = www.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("ann:{hash}\nbob:$apr1$abcdefgh$FBwExRW4dCc8aL.OvjpIE1\n"),
    )
    .unwrap();
    let text = config(
        &a,
        &b,
        &www.path().display().to_string(),
        &htpasswd.display().to_string(),
    );
    let v = Vigie::start(&text).await;
    let body = |r: reqwest::Response| async move { r.text().await.unwrap() };

    // Locations: exact, prefix, ^~, regex in order, case-insensitive.
    assert_eq!(body(v.get("example.com", "/").await).await, "exact root\n");
    assert_eq!(body(v.get("example.com", "/page").await).await, "a /page\n");
    assert_eq!(
        body(v.get("example.com", "/x/pic.JPG").await).await,
        "b /x/pic.JPG\n"
    );
    assert_eq!(
        body(v.get("example.com", "/images/pic.gif").await).await,
        "a /images/pic.gif\n"
    );
    // Regex route with a break rewrite: the origin gets the rewritten path and the query.
    let r = v.get("example.com", "/api/v2/users?id=7").await;
    assert_eq!(body(r).await, "b /internal/users?id=7\n");
    assert_eq!(b.seen().last().unwrap().uri, "/internal/users?id=7");

    // Rewrites: permanent redirect with the capture and the query; last re-routes.
    let r = v.get("example.com", "/old/a/b?q=1").await;
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/new/a/b?q=1");
    let r = v.get("example.com", "/moved?y=2").await;
    assert_eq!(body(r).await, "a /images/moved?x=1&y=2\n");
    assert_eq!(a.seen().last().unwrap().uri, "/images/moved?x=1&y=2");
    assert_eq!(v.get("example.com", "/loop").await.status(), 500);

    // Access rules on the client address.
    assert_eq!(v.get("example.com", "/lan/x").await.status(), 200);
    assert_eq!(v.get("example.com", "/closed/x").await.status(), 403);

    // Basic authentication: bcrypt and apr1 users; unknown user and wrong password refused.
    let url = v.url("/admin/panel");
    let get = |user: &str, pass: &str| {
        client()
            .get(&url)
            .header("host", "example.com")
            .basic_auth(user, Some(pass))
            .send()
    };
    let r = v.get("example.com", "/admin/panel").await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"Admin\"");
    assert_eq!(get("ann", "s3cret").await.unwrap().status(), 200);
    assert_eq!(get("bob", "password").await.unwrap().status(), 200);
    assert_eq!(get("ann", "wrong").await.unwrap().status(), 401);
    assert_eq!(get("nobody", "s3cret").await.unwrap().status(), 401);
    assert!(a
        .seen()
        .iter()
        .all(|s| s.uri != "/admin/panel" || s.headers.contains_key("authorization")));

    // try_files: the file, the directory's index, then the SPA shell; or 404.
    assert_eq!(
        body(v.get("example.com", "/app/app.js").await).await,
        "js\n"
    );
    assert_eq!(
        body(v.get("example.com", "/app/docs").await).await,
        "docs index\n"
    );
    assert_eq!(
        body(v.get("example.com", "/app/some/route").await).await,
        "spa shell\n"
    );
    assert_eq!(v.get("example.com", "/strict/nope").await.status(), 404);
    assert_eq!(
        body(v.get("example.com", "/strict/app.js").await).await,
        "js\n"
    );

    // respond 444: the connection is closed, nothing is answered.
    let mut s = tokio::net::TcpStream::connect(&v.http).await.unwrap();
    s.write_all(b"GET /drop HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut got))
        .await
        .expect("the connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&got));
}
