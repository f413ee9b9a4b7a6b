//! Request limits and timeouts, custom error pages and `redirect_www`: good and bad TOML.

use std::path::PathBuf;
use std::time::Duration;

use super::errors;
use crate::*;

const SITE: &str = r#"
[[sites]]
names = ["example.com", "www.example.com", "api.example.com"]
  [[sites.routes]]
  path = "/"
  respond = {}
"#;

/// A file under the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("vigie-config-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Each case: a config with one mistake, and the one message it must produce.
const BAD: &[(&str, &str, &str)] = &[
    (
        "zero header timeout",
        "[server]\nheader_timeout = \"0s\"\n",
        r#"test.toml:2:18: invalid header_timeout "0s": expected more than zero"#,
    ),
    (
        "header timeout above pingora's wait",
        "[server]\nheader_timeout = \"2m\"\n",
        r#"test.toml:2:18: invalid header_timeout "2m": expected at most 60s (pingora's own wait for a request)"#,
    ),
    (
        "bad body timeout",
        "[server]\nbody_timeout = \"soon\"\n",
        r#"test.toml:2:16: invalid duration "soon": expected a number and a unit, like "30s", "5m", "1h""#,
    ),
    (
        "header limit above the parser's",
        "[server]\nmax_header_bytes = \"2MiB\"\n",
        r#"test.toml:2:20: invalid max_header_bytes 2097152: expected at most 1MiB (1048576 bytes)"#,
    ),
    (
        "zero uri limit",
        "[server]\nmax_uri_bytes = 0\n",
        r#"test.toml:2:17: invalid max_uri_bytes 0: expected a size above zero, like "64MiB""#,
    ),
    (
        "uri limit not below the header limit",
        "[server]\nmax_uri_bytes = \"64KiB\"\n",
        r#"test.toml:2:17: max_uri_bytes (65536) is not below max_header_bytes (32768): expected a smaller max_uri_bytes, since the request line is part of the header"#,
    ),
    (
        "header limit below the default uri limit",
        "[server]\nmax_header_bytes = \"4KiB\"\n",
        r#"test.toml:2:20: max_uri_bytes (8192) is not below max_header_bytes (4096): expected a smaller max_uri_bytes, since the request line is part of the header"#,
    ),
    (
        "error page for a success status",
        "[error_pages]\n200 = { body = \"ok\" }\n",
        r#"test.toml:2:1: invalid status "200" in error_pages: expected a status code from 400 to 599, like "404""#,
    ),
    (
        "error page status that is not a number",
        "[error_pages]\nnotfound = { body = \"gone\" }\n",
        r#"test.toml:2:1: invalid status "notfound" in error_pages: expected a status code from 400 to 599, like "404""#,
    ),
    (
        "error page with file and body",
        "[error_pages]\n404 = { file = \"/srv/404.html\", body = \"gone\" }\n",
        r#"test.toml:2:33: error page "404" has both file and body: expected one of them"#,
    ),
    (
        "error page with neither",
        "[error_pages]\n502 = { content_type = \"text/html\" }\n",
        r#"test.toml:2:7: error page "502" has neither file nor body: expected file = "/path/502.html" or body = "...""#,
    ),
    (
        "relative error page file",
        "[error_pages]\n404 = { file = \"errors/404.html\" }\n",
        r#"test.toml:2:16: invalid error page file "errors/404.html": expected an absolute path, like "/srv/errors/404.html""#,
    ),
    (
        "missing error page file",
        "[error_pages]\n404 = { file = \"/nonexistent/404.html\" }\n",
        r#"test.toml:2:16: cannot read error page file "/nonexistent/404.html": No such file or directory (os error 2)"#,
    ),
    (
        "error page file that is a directory",
        "[error_pages]\n404 = { file = \"/\" }\n",
        r#"test.toml:2:16: error page file "/" is not a file: expected a file like "/srv/errors/404.html""#,
    ),
    (
        "error page that is not a table",
        "[error_pages]\n404 = \"/srv/404.html\"\n",
        r#"test.toml:2:7: invalid type: string "/srv/404.html", expected a table { file = "/path" } or { body = "...", content_type = "..." }"#,
    ),
    (
        "bad error page content type",
        "[error_pages]\n404 = { body = \"gone\", content_type = \"text/html\\n\" }\n",
        r#"test.toml:2:39: invalid header value "text/html\n": expected printable text without line breaks or control characters"#,
    ),
    (
        "bad error page status on a site",
        r#"
[[sites]]
names = ["example.com"]
error_pages = { "4040" = { body = "gone" } }
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        r#"test.toml:4:17: invalid status "4040" in error_pages: expected a status code from 400 to 599, like "404""#,
    ),
    (
        "unknown redirect_www",
        r#"
[[sites]]
names = ["example.com", "www.example.com"]
redirect_www = "apex"
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        r#"test.toml:4:16: invalid redirect_www "apex": expected "to_apex" or "to_www""#,
    ),
    (
        "redirect_www without a pair of names",
        r#"
[[sites]]
names = ["example.com", "*.example.com", "www.example.org"]
redirect_www = "to_apex"
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        r#"test.toml:4:16: redirect_www = "to_apex" but this site has no pair of names like "example.com" and "www.example.com": expected both names in names"#,
    ),
    (
        "unknown trailing_slash",
        r#"
[[sites]]
names = ["example.com"]
trailing_slash = "always"
  [[sites.routes]]
  path = "/"
  respond = {}
"#,
        r#"test.toml:4:18: invalid trailing_slash "always": expected "add" or "remove" (leave it out to pass paths as sent)"#,
    ),
];

#[test]
fn bad_details() {
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
fn details_defaults() {
    let c = parse(SITE, "t").unwrap();
    assert_eq!(c.server.header_timeout, Duration::from_secs(60));
    assert_eq!(c.server.body_timeout, Duration::from_secs(60));
    assert_eq!(c.server.max_header_bytes, 32 * 1024);
    assert_eq!(c.server.max_uri_bytes, 8 * 1024);
    assert!(c.error_pages.is_empty());
    assert!(c.sites[0].error_pages.is_empty());
    assert!(c.sites[0].host_redirects.is_empty());
    // Without [server] at all, the same defaults.
    let c = parse("", "t").unwrap();
    assert_eq!(c.server.max_header_bytes, 32 * 1024);
    assert_eq!(c.server.header_timeout, Duration::from_secs(60));
}

#[test]
fn limits_and_timeouts() {
    let c = parse(
        r#"
[server]
header_timeout = "5s"
body_timeout = "2m"
max_header_bytes = "64KiB"
max_uri_bytes = 4096
"#,
        "t",
    )
    .unwrap();
    assert_eq!(c.server.header_timeout, Duration::from_secs(5));
    assert_eq!(c.server.body_timeout, Duration::from_secs(120));
    assert_eq!(c.server.max_header_bytes, 64 * 1024);
    assert_eq!(c.server.max_uri_bytes, 4096);
}

#[test]
fn redirect_www_pairs() {
    let with = |mode: &str| {
        let text = SITE.replace(
            "\n  [[sites.routes]]",
            &format!("\nredirect_www = \"{mode}\"\n  [[sites.routes]]"),
        );
        parse(&text, "t").unwrap().sites[0].host_redirects.clone()
    };
    let to_apex = with("to_apex");
    assert_eq!(to_apex.len(), 1);
    assert_eq!(to_apex["www.example.com"], "example.com");
    let to_www = with("to_www");
    assert_eq!(to_www.len(), 1);
    assert_eq!(to_www["example.com"], "www.example.com");
}

#[test]
fn error_pages_are_read_and_inherited() {
    let html = TempFile::new("404.html", "<h1>not here</h1>\n");
    let json = TempFile::new("503.json", "{\"error\":\"busy\"}");
    let text = format!(
        r#"
[error_pages]
404 = {{ file = "{html}" }}
503 = {{ file = "{json}" }}
"502" = {{ body = "upstream down" }}

[[sites]]
names = ["a.test"]
error_pages = {{ "404" = {{ body = "<p>a: gone</p>", content_type = "text/html" }} }}
  [[sites.routes]]
  path = "/"
  respond = {{}}

[[sites]]
names = ["b.test"]
  [[sites.routes]]
  path = "/"
  respond = {{}}
"#,
        html = html.path(),
        json = json.path(),
    );
    let c = parse(&text, "t").unwrap();
    let top = &c.error_pages;
    assert_eq!(top[&404].body, b"<h1>not here</h1>\n");
    assert_eq!(top[&404].content_type, "text/html; charset=utf-8");
    assert_eq!(top[&503].content_type, "application/json");
    assert_eq!(top[&502].body, b"upstream down");
    assert_eq!(top[&502].content_type, "text/plain; charset=utf-8");
    // Site a overrides 404 and inherits the rest; site b inherits everything.
    let a = &c.sites[0].error_pages;
    assert_eq!(a[&404].body, b"<p>a: gone</p>");
    assert_eq!(a[&404].content_type, "text/html");
    assert_eq!(a[&502], top[&502]);
    assert_eq!(a.len(), 3);
    assert_eq!(&c.sites[1].error_pages, top);
}

#[test]
fn oversized_error_page_file_is_refused() {
    let big = TempFile::new("big.html", &"x".repeat(1024 * 1024 + 1));
    let text = format!("[error_pages]\n500 = {{ file = \"{}\" }}\n", big.path());
    assert_eq!(
        errors(&text),
        [format!(
            "test.toml:2:16: error page file \"{}\" is larger than 1MiB: expected a small page \
             (it is kept in memory)",
            big.path()
        )]
    );
}
