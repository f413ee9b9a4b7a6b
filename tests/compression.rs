//! Response compression: each encoding decoded by a real decoder and compared byte for byte,
//! and every case that must stay uncompressed.

use std::io::Read;

use crate::support::origin::test_body;
use crate::support::{client, Origin, Vigie};

fn config(origin: &str, www: &str) -> String {
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
  path = "/plain/"
  upstream = "app"
  strip_prefix = true
  compress = false
  [[sites.routes]]
  path = "/fast/"
  upstream = "app"
  strip_prefix = true
  compress = {{ level = 1, min_size = "10KiB", types = ["application/json"] }}
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
        ("br;q=0.9, zstd;q=0.2, gzip;q=0.1", "zstd"),
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
    let ae = Some("gzip, zstd");
    let identity = |g: &Got, what: &str| {
        assert_eq!(g.encoding, None, "{what} was compressed");
    };
    identity(&get(&v, "/body?kb=100", None).await, "no Accept-Encoding");
    identity(
        &get(&v, "/body?kb=100", Some("identity")).await,
        "identity only",
    );
    identity(
        &get(&v, "/body?kb=100&ct=image%2Fpng", ae).await,
        "image/png",
    );
    identity(
        &get(&v, "/body?kb=100&ct=application%2Fzip", ae).await,
        "a zip",
    );
    identity(
        &get(&v, "/body?bytes=200", ae).await,
        "200 bytes (below min_size)",
    );
    identity(
        &get(&v, "/body?kb=100&cc=no-transform", ae).await,
        "no-transform",
    );
    identity(&get(&v, "/body?kb=100&status=206", ae).await, "a range");
    identity(&get(&v, "/plain/body?kb=100", ae).await, "compress = false");
    identity(
        &get(&v, "/fast/body?kb=5", ae).await,
        "below the route's min_size",
    );
    identity(
        &get(&v, "/fast/body?kb=20&ct=text%2Fplain", ae).await,
        "outside the route's types",
    );
    let g = get(&v, "/fast/body?kb=20", ae).await;
    assert_eq!(
        g.encoding.as_deref(),
        Some("zstd"),
        "the route's own settings apply"
    );
    // Already encoded upstream: passed through byte for byte, never encoded twice.
    let g = get(&v, "/body?kb=3&ce=gzip", ae).await;
    assert_eq!(g.encoding.as_deref(), Some("gzip"));
    assert_eq!(g.body, test_body(3));
    // HEAD: headers only.
    let r = client()
        .head(v.url("/body?kb=100"))
        .header("host", "example.com")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn static_files_are_compressed_too_and_304_is_not() {
    let o = Origin::start("app").await;
    let www = tempfile::tempdir().unwrap();
    let page = "<p>hello static</p>\n".repeat(200);
    std::fs::write(www.path().join("page.html"), &page).unwrap();
    let v = Vigie::start(&config(&o.addr_str(), &www.path().display().to_string())).await;
    let g = get(&v, "/files/page.html", Some("gzip")).await;
    assert_eq!(g.encoding.as_deref(), Some("gzip"));
    assert_eq!(decode("gzip", &g.body), page.as_bytes());
    let r = client()
        .get(v.url("/files/page.html"))
        .header("host", "example.com")
        .header("accept-encoding", "gzip")
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
