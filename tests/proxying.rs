//! Proxying details: forwarding headers, header rewriting, body limits, WebSocket, reload.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};

use crate::support::{client, Origin, Vigie, WsOrigin};

fn config(origin: &str, extra_site: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[client_ip]
trusted_proxies = ["127.0.0.2/32"]

[headers.security]
"X-Frame-Options" = "SAMEORIGIN"
"X-Content-Type-Options" = "nosniff"

[upstreams.app]
servers = ["{origin}"]

[[sites]]
names = ["example.com"]
headers = "security"
max_body = "1KiB"
request_headers = {{ set = {{ "X-Env" = "test" }}, remove = ["X-Debug"] }}
response_headers = {{ remove = ["Set-By-Origin"] }}
{extra_site}
  [[sites.routes]]
  path = "/"
  upstream = "app"
  [[sites.routes]]
  path = "/upload/"
  upstream = "app"
  max_body = "64KiB"
  [[sites.routes]]
  path = "/strip/"
  upstream = "app"
  strip_prefix = true
  response_headers = {{ set = {{ "X-Route" = "strip" }} }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_and_rewritten_headers() {
    let o = Origin::start("app").await;
    let v = Vigie::start(&config(&o.addr_str(), "")).await;
    let r = client()
        .get(v.url("/page?q=1"))
        .header("host", "Example.com")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-debug", "1")
        .header("x-keep", "kept")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "hop")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Response: named set and inline ops applied; the origin's header removed.
    assert_eq!(r.headers()["x-frame-options"], "SAMEORIGIN");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().get("set-by-origin").is_none());
    let seen = &o.seen()[0];
    let h = &seen.headers;
    // From an untrusted peer, a client-sent X-Forwarded-For is replaced, not extended.
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "example.com");
    assert_eq!(h["host"], "Example.com", "Host is preserved");
    assert_eq!(h["x-env"], "test");
    assert_eq!(h["x-keep"], "kept");
    assert!(!h.contains_key("x-debug"));
    assert!(
        !h.contains_key("x-hop"),
        "a Connection-nominated header is hop-by-hop"
    );
    assert_eq!(seen.uri, "/page?q=1");

    // Prefix stripping keeps the query; route response headers add to the site's.
    let r = v.get("example.com", "/strip/inner/x?a=b").await;
    assert_eq!(r.headers()["x-route"], "strip");
    assert_eq!(r.headers()["x-frame-options"], "SAMEORIGIN");
    assert_eq!(o.seen()[1].uri, "/inner/x?a=b");
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_proxy_chain_gives_the_client_address() {
    let o = Origin::start("app").await;
    let v = Vigie::start(&config(&o.addr_str(), "")).await;
    // Connect from 127.0.0.2, a trusted proxy (a CDN in front of vigie).
    let c = reqwest::Client::builder()
        .no_proxy()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let r = c
        .get(v.url("/"))
        .header("host", "example.com")
        .header("x-forwarded-for", "203.0.113.9, 127.0.0.2")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = &o.seen()[0].headers;
    assert_eq!(h["x-real-ip"], "203.0.113.9");
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.2, 127.0.0.2");
    assert_eq!(h["x-forwarded-proto"], "https", "kept from a trusted proxy");
}

#[tokio::test(flavor = "multi_thread")]
async fn body_limits_answer_413_before_the_upstream_sees_the_excess() {
    let o = Origin::start("app").await;
    let v = Vigie::start(&config(&o.addr_str(), "")).await;
    // Declared too large: refused without contacting the origin.
    let r = client()
        .post(v.url("/"))
        .header("host", "example.com")
        .body(vec![b'x'; 2048])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().starts_with("413 Payload Too Large"));
    assert_eq!(o.count(), 0);
    // Under the limit: passes whole.
    let r = client()
        .post(v.url("/"))
        .header("host", "example.com")
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(o.seen()[0].body_len, 1000);
    // Chunked (no Content-Length), too large for the route's 64KiB: 413.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b'y'; 8192])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = client()
        .post(v.url("/upload/big"))
        .header("host", "example.com")
        .body(body)
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 413),
        // vigie may answer and close before the client finished sending.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    assert!(o.seen().iter().all(|s| s.body_len <= 64 * 1024));
    // Chunked under the route limit passes.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..4).map(|_| Ok(vec![b'z'; 8192])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = client()
        .post(v.url("/upload/ok"))
        .header("host", "example.com")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(o.seen().last().unwrap().body_len, 32768);
}

/// One WebSocket session through vigie: 5 echoes. `Err` when the tunnel broke.
async fn websocket_session(v: &Vigie) -> Result<(), String> {
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/api/live/ws", v.http),
    )
    .unwrap();
    req.headers_mut()
        .insert("host", "example.com".parse().unwrap());
    let (mut conn, resp) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(resp.status(), 101);
    for i in 0..5 {
        let text = format!("ping {i}");
        conn.send(tokio_tungstenite::tungstenite::Message::text(text.clone()))
            .await
            .map_err(|e| e.to_string())?;
        let back = tokio::time::timeout(Duration::from_secs(5), conn.next())
            .await
            .map_err(|_| "no echo within 5s".to_string())?
            .ok_or("closed")?
            .map_err(|e| e.to_string())?;
        assert_eq!(back.into_text().unwrap().as_str(), text);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_is_proxied_both_ways() {
    let ws = WsOrigin::start().await;
    let v = Vigie::start(&config(&ws.addr.to_string(), "")).await;
    // No retry: vigie tunnels upgrades itself (pingora#946 no longer applies).
    if let Err(e) = websocket_session(&v).await {
        panic!("the WebSocket session broke: {e}\n{}", v.log());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_and_a_bad_config_keeps_the_old_one() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let v = Vigie::start(&config(&a.addr_str(), "")).await;
    assert_eq!(
        v.get("example.com", "/").await.text().await.unwrap(),
        "a /\n"
    );

    v.write_config(&config(&b.addr_str(), ""));
    v.signal("HUP");
    crate::support::wait_until(Duration::from_secs(10), "the reload to apply", || async {
        v.get("example.com", "/").await.text().await.unwrap() == "b /\n"
    })
    .await;

    v.write_config("[server]\nhttp = [\"{http}\"]\nbogus = 1\n");
    v.signal("HUP");
    v.wait_log("reload rejected").await;
    assert!(v.log().contains("unknown"), "{}", v.log());
    assert_eq!(
        v.get("example.com", "/").await.text().await.unwrap(),
        "b /\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_healthz() {
    let o = Origin::start("app").await;
    let v = Vigie::start(&config(&o.addr_str(), "")).await;
    let r = client()
        .get(format!("http://{}/healthz", v.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("ok\n"));
    let r = client()
        .get(format!("http://{}/nope", v.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_downstream_and_h2c_upstream() {
    let h1 = Origin::start("h1").await;
    let h2 = Origin::start_h2c("h2").await;
    let cfg = config(&h1.addr_str(), "").replace(
        "[[sites]]",
        &format!(
            "[upstreams.h2]\nservers = [\"{}\"]\nh2c = true\n\n[[sites]]",
            h2.addr_str()
        ),
    ) + "  [[sites.routes]]\n  path = \"/h2/\"\n  upstream = \"h2\"\n";
    let v = Vigie::start(&cfg).await;
    // The client speaks HTTP/2 with prior knowledge (h2c) to vigie; the host travels in
    // :authority only, as browsers send it.
    let stream = tokio::net::TcpStream::connect(&v.http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("http://example.com/a")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let r = sender.send_request(req).await.unwrap();
    assert_eq!(r.version(), hyper::Version::HTTP_2);
    assert_eq!(r.status(), 200, "{}", v.log());
    assert_eq!(r.headers()["x-origin"], "h1");
    assert_eq!(r.headers()["x-origin-version"], "HTTP/1.1");
    // An h2c upstream is spoken to in HTTP/2.
    let r = v.get("example.com", "/h2/x").await;
    assert_eq!(r.status(), 200, "{}", v.log());
    assert_eq!(r.headers()["x-origin"], "h2");
    assert_eq!(r.headers()["x-origin-version"], "HTTP/2.0");
}
