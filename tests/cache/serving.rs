//! Cache entries served right: keys that cannot be poisoned, one compressed copy per client,
//! ranges from the cache, entries kept across reloads.

use super::*;

#[tokio::test]
async fn unkeyed_headers_cannot_poison_the_cache() {
    let o = Origin::start("app").await;
    let v = start(&o).await;
    // X-Forwarded-Host from a client never reaches the origin as such.
    let g = get_h(
        &v,
        "/c/xfh?echo=x-forwarded-host",
        &[("x-forwarded-host", "evil.example")],
    )
    .await;
    assert!(
        g.body.ends_with("x-forwarded-host=example.com"),
        "{}",
        g.body
    );
    // Host case and port do not make another entry.
    let upper = client()
        .get(v.url("/c/xfh?echo=x-forwarded-host"))
        .header("host", "EXAMPLE.com")
        .send()
        .await
        .unwrap();
    assert_eq!(upper.headers()["x-cache-status"], "HIT");
    // An absolute-form URI whose authority disagrees with Host is refused, and fills nothing.
    let addr = v
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let (status, text) = raw_get(&addr, "example.com", "http://site-b.example/c/abs").await;
    assert_eq!(status, 400, "{text}");
    let b = client()
        .get(v.url("/c/abs"))
        .header("host", "site-b.example")
        .send()
        .await
        .unwrap();
    assert_eq!(b.headers()["x-cache-status"], "MISS");
    assert_eq!(get(&v, "/c/abs").await.cache, "MISS");
    // One that agrees is keyed like the origin-form request.
    let (status, text) = raw_get(&addr, "example.com", "http://example.com/c/abs").await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("x-cache-status: hit"),
        "{text}"
    );
    // Key parts and bypass rules on /k/: a cookie in the key, a header and a query skipping it.
    let edge = |r: &reqwest::Response| r.headers()["x-edge"].to_str().unwrap().to_string();
    let fr = client()
        .get(v.url("/k/lang"))
        .header("host", "example.com")
        .header("cookie", "a=1; lang=fr")
        .send()
        .await
        .unwrap();
    assert_eq!(edge(&fr), "MISS");
    let en = client()
        .get(v.url("/k/lang"))
        .header("host", "example.com")
        .header("cookie", "lang=en")
        .send()
        .await
        .unwrap();
    assert_eq!(edge(&en), "MISS");
    let fr2 = client()
        .get(v.url("/k/lang"))
        .header("host", "example.com")
        .header("cookie", "lang=fr")
        .send()
        .await
        .unwrap();
    assert_eq!(edge(&fr2), "HIT");
    assert!(fr2.headers().get("x-cache-status").is_none());
    let by = client()
        .get(v.url("/k/lang?nocache=1"))
        .header("host", "example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(edge(&by), "BYPASS");
    let by = client()
        .get(v.url("/k/lang"))
        .header("host", "example.com")
        .header("cookie", "lang=fr")
        .header("x-no-cache", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(edge(&by), "BYPASS");
}

#[tokio::test]
async fn one_cached_copy_is_compressed_per_client() {
    let o = Origin::start("app").await;
    let v = start(&o).await;
    let p = "/c/json?size=4000&h=content-type:application/json";
    let plain = get(&v, p).await.body.into_bytes();
    assert_eq!(plain.len(), 4000);
    for (accept, enc) in [
        ("gzip", Some("gzip")),
        ("zstd", Some("zstd")),
        ("identity", None),
    ] {
        let r = client()
            .get(v.url(p))
            .header("host", "example.com")
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-cache-status"], "HIT");
        let got = r
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(got.as_deref(), enc, "{accept}");
        let raw = r.bytes().await.unwrap().to_vec();
        let body = match enc {
            Some("gzip") => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            Some("zstd") => zstd::decode_all(&raw[..]).unwrap(),
            Some("br") => {
                let mut out = Vec::new();
                brotli::Decompressor::new(&raw[..], 4096)
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            _ => raw,
        };
        assert_eq!(body, plain, "{accept}");
    }
    assert_eq!(o.count(), 1);
}

#[tokio::test]
async fn ranges_of_a_cached_object_come_from_the_cache() {
    let o = Origin::start("app").await;
    let v = start(&o).await;
    let p = "/c/range?size=1000";
    assert_eq!(get(&v, p).await.body.len(), 1000);
    let r = client()
        .get(v.url(p))
        .header("host", "example.com")
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["x-cache-status"], "HIT");
    assert_eq!(r.headers()["content-range"], "bytes 10-19/1000");
    assert_eq!(r.text().await.unwrap(), "x".repeat(10));
    assert_eq!(o.count(), 1);
}

#[tokio::test]
async fn a_reload_keeps_the_entries_even_when_it_fails() {
    let o = Origin::start("app").await;
    let v = start(&o).await;
    get(&v, "/c/kept").await;
    v.write_config(&config(&o.addr_str(), "memory = \"2MiB\"", ""));
    v.signal("HUP");
    v.wait_log("configuration reloaded").await;
    assert_eq!(get(&v, "/c/kept").await.cache, "HIT");
    // A reload that fails (bad zone) keeps the old configuration and the cache.
    v.write_config(&config(&o.addr_str(), "memory = 0", ""));
    v.signal("HUP");
    v.wait_log("reload rejected").await;
    assert_eq!(get(&v, "/c/kept").await.cache, "HIT");
    assert_eq!(o.count(), 1);
}
