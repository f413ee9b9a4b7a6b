//! Header size limits (431, 414) and header and body deadlines (408).

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_get_431_and_long_uris_414() {
    let s = setup().await;
    let v = &s.v;
    let get = |target: String, extra: String| {
        format!("GET {target} HTTP/1.1\r\nHost: example.com\r\n{extra}Connection: close\r\n\r\n")
    };
    let limit = Duration::from_secs(10);
    // Just under the limits: served.
    let ok = get(
        format!("/{}", "u".repeat(2000)),
        format!("X-Big: {}\r\n", "h".repeat(14000)),
    );
    let answer = exchange(&v.http, ok.as_bytes(), limit).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    // A 20 KiB header: 431, and the connection closes.
    let big = get("/".into(), format!("X-Big: {}\r\n", "h".repeat(20 * 1024)));
    let started = Instant::now();
    let answer = exchange(&v.http, big.as_bytes(), limit).await;
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{answer}"
    );
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        answer.ends_with("the request header is too large\n"),
        "{answer}"
    );
    assert!(started.elapsed() < limit);
    // Many small headers add up the same way.
    let many: String = (0..2000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let answer = exchange(&v.http, get("/".into(), many).as_bytes(), limit).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A 3 KiB target: 414.
    let long = get(format!("/{}", "u".repeat(3 * 1024)), String::new());
    let answer = exchange(&v.http, long.as_bytes(), limit).await;
    assert!(
        answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
        "{answer}"
    );
    assert_eq!(
        s.origin.seen().len(),
        1,
        "only the request within the limits went upstream"
    );

    // HTTP/2 (over TLS, and h2c): the same limits, checked on the parsed request.
    let c = v.https_client(&["www.shop.test"], &[internal_root(v)]);
    let url = v.https_url("www.shop.test", &format!("/{}", "u".repeat(3 * 1024)));
    let r = c.get(url).send().await.unwrap();
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (reqwest::Version::HTTP_2, 414)
    );
    let url = v.https_url("www.shop.test", "/");
    let r = c
        .get(url)
        .header("x-big", "h".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let h2c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2c
        .get(v.url(&format!("/{}", "u".repeat(3 * 1024))))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (reqwest::Version::HTTP_2, 414)
    );
}

/// A slowloris client sends a header line every 200 ms, forever: a per-read timeout never
/// fires, the 1 s header deadline does.
#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_get_408_at_the_deadline() {
    let s = setup().await;
    let v = &s.v;
    let mut c = TcpStream::connect(&v.http).await.unwrap();
    let started = Instant::now();
    c.write_all(b"GET / HTTP/1.1\r\nHost: example.com\r\n")
        .await
        .unwrap();
    let (mut rd, mut wr) = c.into_split();
    let drip = tokio::spawn(async move {
        for i in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr
                .write_all(format!("X-Drip-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return i;
            }
        }
        50
    });
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(8), rd.read_to_end(&mut answer))
        .await
        .expect("vigie closes a slowloris connection")
        .ok();
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with("\r\n\r\ntoo slow\n"),
        "the top-level page: {answer}"
    );
    assert!(took >= Duration::from_millis(950), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    eprintln!("slowloris: 408 after {took:?}");
    drip.abort();

    // A connection that sends nothing is closed at the deadline, without an answer.
    let started = Instant::now();
    let answer = exchange(&v.http, b"", Duration::from_secs(8)).await;
    assert_eq!(answer, "");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(4),
        "{took:?}"
    );

    // On a keep-alive connection the deadline starts with a request's first byte: idle time
    // between requests does not count, a slow second request still gets 408.
    let mut c = TcpStream::connect(&v.http).await.unwrap();
    let req = b"GET /one HTTP/1.1\r\nHost: example.com\r\n\r\n";
    c.write_all(req).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.write_all(b"GET /two HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(8), c.read_to_end(&mut rest))
        .await
        .unwrap()
        .ok();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 408"), "{rest}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // A header in two parts within the deadline is served; a short HTTP/1.0 request (fewer
    // bytes than the h2c preface) is answered at once, not after the deadline.
    let mut c = TcpStream::connect(&v.http).await.unwrap();
    c.write_all(b"GET /parts HTTP/1.1\r\nHost: exa")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.write_all(b"mple.com\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let answer = exchange(&v.http, b"GET / HTTP/1.0\r\n\r\n", Duration::from_secs(8)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "no Host: {answer}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_body_gets_408() {
    let s = setup().await;
    let mut c = TcpStream::connect(&s.v.http).await.unwrap();
    let started = Instant::now();
    c.write_all(
        b"POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(8), c.read_to_end(&mut answer))
        .await
        .expect("vigie gives up on the body")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(4),
        "{took:?}"
    );
}
