//! Response compression: each encoding decoded by a real decoder (and brotli by curl too) and
//! compared byte for byte, over HTTP/1.1 and HTTP/2, every case that must stay uncompressed,
//! and the default (proxied responses only when the site or route says so, for BREACH).

use std::io::Read;

use crate::support::origin::test_body;
use crate::support::tls::TestCa;
use crate::support::{client, Origin, Vigie};

fn config(origin: &str, www: &str) -> String {
    config_with(origin, www, "", "")
}

/// `https` (a listener line) and `site_tls` (a `tls = ...` line) make the site HTTPS too.
fn config_with(origin: &str, www: &str, https: &str, site_tls: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
{https}
admin = "{{admin}}"
state_dir = "{{state}}"

[upstreams.app]
servers = ["{origin}"]

[[sites]]
names = ["example.com"]
{site_tls}
compress = true
  [[sites.routes]]
  path = "/"
  upstream = "app"
  [[sites.routes]]
  path = "/plain/"
  upstream = "app"
  strip_prefix = true
  compress = false
  [[sites.routes]]
  path = "/fast/"
  upstream = "app"
  strip_prefix = true
  compress = {{ level = 1, brotli_level = 1, min_size = "10KiB", types = ["application/json"] }}
  [[sites.routes]]
  path = "/files/"
  static = {{ root = "{www}" }}
"#
    )
}

struct Got {
    status: u16,
    encoding: Option<String>,
    vary: Option<String>,
    length: Option<String>,
    body: Vec<u8>,
}

async fn get(v: &Vigie, path: &str, accept: Option<&str>) -> Got {
    let mut req = client().get(v.url(path)).header("host", "example.com");
    if let Some(a) = accept {
        req = req.header("accept-encoding", a);
    }
    let r = req.send().await.unwrap();
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    Got {
        status: r.status().as_u16(),
        encoding: h("content-encoding"),
        vary: h("vary"),
        length: h("content-length"),
        body: r.bytes().await.unwrap().to_vec(),
    }
}

fn decode(encoding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::decode_all(data).unwrap(),
        "br" => {
            brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        other => panic!("unexpected encoding {other}"),
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn each_encoding_round_trips_and_q_values_decide() {
    let o = Origin::start("app").await;
    let www = tempfile::tempdir().unwrap();
    let v = Vigie::start(&config(&o.addr_str(), &www.path().display().to_string())).await;
    let original = test_body(100);
    for (accept, expected) in [
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip;q=1.0, zstd;q=0.5", "gzip"),
        ("zstd;q=0, gzip;q=0.1", "gzip"),
        ("br", "br"),
        ("gzip, deflate, br", "br"),
        ("br;q=0.5, gzip", "gzip"),
        ("gzip;q=0.5, br", "br"),
        ("br;q=0.9, zstd;q=0.2, gzip;q=0.1", "br"),
        ("zstd;q=0, br;q=0, *", "gzip"),
    ] {
        let g = get(&v, "/body?kb=100", Some(accept)).await;
        assert_eq!(g.status, 200);
        assert_eq!(
            g.encoding.as_deref(),
            Some(expected),
            "Accept-Encoding: {accept}"
        );
        assert!(g
            .vary
            .as_deref()
            .is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")));
        assert!(
            g.length.is_none(),
            "a compressed stream has no declared length"
        );
        assert!(
            g.body.len() < original.len() / 3,
            "{accept}: {} bytes",
            g.body.len()
        );
        assert_eq!(decode(expected, &g.body), original, "{accept}");
    }
    // The origin saw the client's own Accept-Encoding, not vigie's rewrite.
    assert!(o
        .seen()
        .iter()
        .any(|s| s.headers.get("accept-encoding").map(String::as_str)
            == Some("gzip;q=1.0, zstd;q=0.5")));
}

#[tokio::test(flavor = "multi_thread")]
async fn what_must_not_be_compressed_is_not() {
    let o = Origin::start("app").await;
    let www = tempfile::tempdir().unwrap();
    let v = Vigie::start(&config(&o.addr_str(), &www.path().display().to_string())).await;
    let identity = |g: &Got, what: &str| {
        assert_eq!(g.encoding, None, "{what} was compressed");
    };
    identity(&get(&v, "/body?kb=100", None).await, "no Accept-Encoding");
    identity(
        &get(&v, "/body?kb=100", Some("identity")).await,
        "identity only",
    );
    // pingora's module (gzip, zstd) and vigie's brotli module obey the same rules.
    for (accept, expected) in [("gzip, zstd", "zstd"), ("br", "br")] {
        let ae = Some(accept);
        let not = |what: &str| format!("{what} ({accept})");
        let cases = [
            ("/body?kb=100&ct=image%2Fpng", "image/png"),
            ("/body?kb=100&ct=application%2Fzip", "a zip"),
            ("/body?bytes=200", "200 bytes (below min_size)"),
            ("/body?kb=100&cc=no-transform", "no-transform"),
            ("/body?kb=100&status=206", "a range"),
            ("/status/204", "204"),
            ("/plain/body?kb=100", "compress = false"),
            ("/fast/body?kb=5", "below the route's min_size"),
            (
                "/fast/body?kb=20&ct=text%2Fplain",
                "outside the route's types",
            ),
        ];
        for (path, what) in cases {
            identity(&get(&v, path, ae).await, &not(what));
        }
        let g = get(&v, "/fast/body?kb=20", ae).await;
        assert_eq!(
            g.encoding.as_deref(),
            Some(expected),
            "the route's settings"
        );
        assert_eq!(decode(expected, &g.body), test_body(20));
        // Already encoded upstream: passed through byte for byte, never encoded twice, even
        // in an encoding the client did not list.
        for ce in ["gzip", "br", "zstd"] {
            let g = get(&v, &format!("/body?kb=3&ce={ce}"), ae).await;
            assert_eq!(g.encoding.as_deref(), Some(ce), "{}", not(ce));
            assert_eq!(g.body, test_body(3), "{}", not(ce));
            assert_eq!(g.length.as_deref(), Some("3072"));
        }
        // HEAD: headers only, nothing encoded.
        let r = client()
            .head(v.url("/body?kb=100"))
            .header("host", "example.com")
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers().get("content-encoding").is_none(),
            "{}",
            not("HEAD")
        );
        assert!(r.bytes().await.unwrap().is_empty());
    }
}

/// A site that says nothing about compression, with one route that turns it on.
fn default_config(origin: &str, www: &str) -> String {
    format!(
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
  path = "/on/"
  upstream = "app"
  strip_prefix = true
  compress = true
  [[sites.routes]]
  path = "/files/"
  static = {{ root = "{www}" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn proxied_responses_are_compressed_only_when_told_static_files_by_default() {
    let o = Origin::start("app").await;
    let www = tempfile::tempdir().unwrap();
    let page = "<p>hello static</p>\n".repeat(200);
    std::fs::write(www.path().join("page.html"), &page).unwrap();
    let v = Vigie::start(&default_config(
        &o.addr_str(),
        &www.path().display().to_string(),
    ))
    .await;
    for accept in ["gzip", "br", "zstd", "gzip, deflate, br, zstd"] {
        // Nothing said on the site or route: the upstream's body as it sent it.
        let g = get(&v, "/body?kb=100", Some(accept)).await;
        assert_eq!(g.status, 200);
        assert_eq!(g.encoding, None, "proxied, {accept}");
        assert_eq!(g.length.as_deref(), Some("102400"));
        assert_eq!(g.body, test_body(100));
        // The route's `compress = true`.
        let g = get(&v, "/on/body?kb=100", Some(accept)).await;
        let encoding = g.encoding.clone().unwrap_or_default();
        assert!(!encoding.is_empty(), "compress = true, {accept}");
        assert_eq!(decode(&encoding, &g.body), test_body(100));
        // Static files: on by default.
        let g = get(&v, "/files/page.html", Some(accept)).await;
        let encoding = g.encoding.clone().unwrap_or_default();
        assert!(!encoding.is_empty(), "static, {accept}");
        assert_eq!(decode(&encoding, &g.body), page.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn static_files_are_compressed_too_and_304_is_not() {
    let o = Origin::start("app").await;
    let www = tempfile::tempdir().unwrap();
    let page = "<p>hello static</p>\n".repeat(200);
    std::fs::write(www.path().join("page.html"), &page).unwrap();
    // Several read chunks (64 KiB each): the stream spans flushes.
    let big = test_body(300);
    std::fs::write(www.path().join("big.json"), &big).unwrap();
    let v = Vigie::start(&config(&o.addr_str(), &www.path().display().to_string())).await;
    for encoding in ["gzip", "br"] {
        let g = get(&v, "/files/page.html", Some(encoding)).await;
        assert_eq!(g.encoding.as_deref(), Some(encoding));
        assert!(g.length.is_none());
        assert_eq!(decode(encoding, &g.body), page.as_bytes());
        let g = get(&v, "/files/big.json", Some(encoding)).await;
        assert_eq!(g.encoding.as_deref(), Some(encoding));
        assert!(g.body.len() < big.len() / 3);
        assert_eq!(decode(encoding, &g.body), big);
        let r = client()
            .get(v.url("/files/page.html"))
            .header("host", "example.com")
            .header("accept-encoding", encoding)
            .header(
                "if-modified-since",
                httpdate::fmt_http_date(std::time::SystemTime::now()),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304);
        assert!(r.headers().get("content-encoding").is_none());
    }
}

/// `curl --compressed` (Debian's curl decodes br with the reference libbrotli): the body it
/// writes, decoded, and the HTTP version it used.
fn curl(args: &[&str], accept: &str) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--compressed",
            "-H",
            &format!("accept-encoding: {accept}"),
        ])
        .args(["-o", &body.display().to_string(), "-w", "%{http_version}"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read(&body).unwrap(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// GET `path` over HTTP/2 (TLS) preferring br; checks the headers and returns the raw body.
async fn get_h2_br(v: &Vigie, h2: &reqwest::Client, path: &str) -> Vec<u8> {
    let r = h2
        .get(v.https_url("example.com", path))
        .header("accept-encoding", "gzip;q=0.8, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200, "{path}: {}", v.log());
    let ce = r.headers().get("content-encoding");
    assert_eq!(ce.map(|v| v.as_bytes()), Some(&b"br"[..]), "{path}: {r:?}");
    assert!(r.headers().get("content-length").is_none(), "{path}");
    let vary = r.headers()["vary"].to_str().unwrap().to_ascii_lowercase();
    assert!(vary.contains("accept-encoding"), "{path}: {vary}");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn brotli_round_trips_over_http1_and_http2_through_real_clients() {
    let o = Origin::start("app").await;
    let www = tempfile::tempdir().unwrap();
    let big = test_body(300);
    std::fs::write(www.path().join("big.json"), &big).unwrap();
    let ca = TestCa::new("compression CA");
    let (cert, key) = ca.write_leaf(www.path(), "leaf", &["example.com"]);
    let www_str = www.path().display().to_string();
    let tls = format!("tls = {{ cert = \"{cert}\", key = \"{key}\" }}");
    // And an HTTP/2 (h2c) upstream: its body ends with an end-of-stream flag, not a length.
    let h2c = Origin::start_h2c("h2").await;
    let cfg = config_with(&o.addr_str(), &www_str, "https = [\"{https}\"]", &tls).replace(
        "[[sites]]",
        &format!(
            "[upstreams.h2]\nservers = [\"{}\"]\nh2c = true\n\n[[sites]]",
            h2c.addr_str()
        ),
    )
        + "  [[sites.routes]]\n  path = \"/h2/\"\n  upstream = \"h2\"\n  strip_prefix = true\n";
    let v = Vigie::start(&cfg).await;
    let h2 = v.https_client(&["example.com"], &[ca.reqwest_root()]);
    let ca_file = www.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let port = v.https.rsplit(':').next().unwrap().to_string();
    let resolve = format!("example.com:{port}:127.0.0.1");
    let cases = [
        ("/body?kb=100", test_body(100)),
        ("/h2/body?kb=200", test_body(200)),
        ("/files/big.json", big),
    ];
    for (path, original) in cases {
        // HTTP/2 over TLS: raw bytes, decoded here.
        let body = get_h2_br(&v, &h2, path).await;
        assert!(body.len() < original.len() / 3);
        assert_eq!(decode("br", &body), original, "{path} over h2");
        // curl over TLS (the site redirects plain HTTP), HTTP/1.1 then HTTP/2.
        let url = v.https_url("example.com", path);
        for (flag, expected) in [("--http1.1", "1.1"), ("--http2", "2")] {
            let args = [
                flag,
                "--cacert",
                ca_file.to_str().unwrap(),
                "--resolve",
                &resolve,
            ];
            let (got, version) = curl(&[&args[..], &[url.as_str()]].concat(), "br");
            assert_eq!(version, expected, "{path}: curl {flag}");
            assert!(got == original, "{path}: curl {flag} decoded other bytes");
        }
    }
}
