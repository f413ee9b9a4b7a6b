//! Per-client rate limits and connection caps, over real sockets from several loopback
//! source addresses (any 127.x.y.z can be bound as a source).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{wait_until, Vigie};

fn config(zone: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[client_ip]
trusted_proxies = ["127.0.0.1/32"]

[limits.per_ip]
{zone}

[[sites]]
names = ["example.com"]
limit = "per_ip"
  [[sites.routes]]
  path = "/"
  respond = {{ body = "ok\n" }}
  [[sites.routes]]
  path = "/free/"
  respond = {{ body = "free\n" }}
  limit = "off"
"#
    )
}

fn from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

async fn status(v: &Vigie, c: &reqwest::Client, xff: Option<&str>) -> u16 {
    let mut req = c.get(v.url("/")).header("host", "example.com");
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Fire `n` requests at once from `source`; returns (status, latency) of each.
async fn burst(v: &Vigie, source: &str, n: usize) -> Vec<(u16, Duration)> {
    let c = from(source);
    let url = v.url("/");
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let start = Instant::now();
                let s = c
                    .get(url)
                    .header("host", "example.com")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                (s, start.elapsed())
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn count(results: &[(u16, Duration)], status: u16) -> usize {
    results.iter().filter(|(s, _)| *s == status).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_burst_allows_one_per_interval_and_says_when_to_retry() {
    let v = Vigie::start(&config("rate = \"1/m\"")).await;
    let c = from("127.0.0.2");
    assert_eq!(status(&v, &c, None).await, 200);
    let r = c
        .get(v.url("/"))
        .header("host", "example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((55..=60).contains(&retry), "{retry}");
    assert_eq!(r.headers()["ratelimit-policy"], "\"per_ip\";q=1;w=60");
    assert_eq!(
        r.headers()["ratelimit"],
        format!("\"per_ip\";r=0;t={retry}")
    );
    assert!(r
        .text()
        .await
        .unwrap()
        .starts_with("429 Too Many Requests: rate limit exceeded"));
    for _ in 0..3 {
        assert_eq!(status(&v, &c, None).await, 429);
    }
    // Another client is independent; a route with limit = "off" is not limited.
    assert_eq!(status(&v, &from("127.0.0.3"), None).await, 200);
    let r = c
        .get(v.url("/free/x"))
        .header("host", "example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn burst_nodelay_passes_the_burst_at_once() {
    let v = Vigie::start(&config(
        "rate = \"1/m\"\nburst = 5\nnodelay = true\nstatus = 503",
    ))
    .await;
    let results = burst(&v, "127.0.0.4", 10).await;
    assert_eq!(count(&results, 200), 6, "{results:?}");
    assert_eq!(count(&results, 503), 4, "{results:?}");
    assert!(
        results.iter().all(|(_, d)| *d < Duration::from_secs(2)),
        "nothing is held"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn burst_without_nodelay_holds_the_excess_and_releases_it_at_the_rate() {
    // 2/s: one request per 500 ms; 3 may wait.
    let v = Vigie::start(&config("rate = \"2/s\"\nburst = 3")).await;
    let results = burst(&v, "127.0.0.5", 6).await;
    assert_eq!(count(&results, 200), 4, "{results:?}");
    assert_eq!(count(&results, 429), 2, "{results:?}");
    let mut ok: Vec<Duration> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, d)| *d)
        .collect();
    ok.sort();
    // Released one interval apart: the last waited three intervals (1.5 s).
    assert!(ok[0] < Duration::from_millis(400), "{ok:?}");
    assert!(ok[3] >= Duration::from_millis(1300), "{ok:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_stage_delay_passes_the_first_excess_at_once() {
    let v = Vigie::start(&config("rate = \"2/s\"\nburst = 4\ndelay = 2")).await;
    let results = burst(&v, "127.0.0.6", 7).await;
    assert_eq!(count(&results, 200), 5, "{results:?}");
    assert_eq!(count(&results, 429), 2, "{results:?}");
    let fast = results
        .iter()
        .filter(|(s, d)| *s == 200 && *d < Duration::from_millis(400))
        .count();
    assert_eq!(fast, 3, "1 + delay = 2 pass at once: {results:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_is_the_real_client_behind_trusted_proxies_only() {
    let v = Vigie::start(&config("rate = \"1/m\"\nexempt = [\"127.0.0.9/32\"]")).await;
    // From the trusted proxy (127.0.0.1), each forwarded client has its own budget.
    let proxy = from("127.0.0.1");
    assert_eq!(status(&v, &proxy, Some("198.51.100.7")).await, 200);
    assert_eq!(status(&v, &proxy, Some("198.51.100.7")).await, 429);
    assert_eq!(status(&v, &proxy, Some("198.51.100.8")).await, 200);
    // The right-most untrusted address counts: a client cannot pick its key.
    assert_eq!(status(&v, &proxy, Some("1.2.3.4, 198.51.100.7")).await, 429);
    // An untrusted peer's header is ignored: spoofing does not reset its budget.
    let direct = from("127.0.0.7");
    assert_eq!(status(&v, &direct, Some("203.0.113.1")).await, 200);
    assert_eq!(status(&v, &direct, Some("203.0.113.2")).await, 429);
    // IPv6 clients are keyed by their /64.
    assert_eq!(status(&v, &proxy, Some("2001:db8:1:2::1")).await, 200);
    assert_eq!(status(&v, &proxy, Some("2001:db8:1:2:ffff::2")).await, 429);
    assert_eq!(status(&v, &proxy, Some("2001:db8:1:3::1")).await, 200);
    // Exempt: never limited.
    let monitor = from("127.0.0.9");
    for _ in 0..5 {
        assert_eq!(status(&v, &monitor, None).await, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn state_survives_a_reload_when_the_zone_is_unchanged() {
    let zone = "rate = \"1/m\"";
    let v = Vigie::start(&config(zone)).await;
    let c = from("127.0.0.10");
    assert_eq!(status(&v, &c, None).await, 200);
    assert_eq!(status(&v, &c, None).await, 429);
    // Reload with another route but the same zone: still limited.
    v.write_config(&config(zone).replace("/free/", "/other/"));
    v.signal("HUP");
    v.wait_log("configuration reloaded").await;
    assert_eq!(status(&v, &c, None).await, 429);
    // A new zone definition starts fresh.
    v.write_config(&config("rate = \"2/m\""));
    v.signal("HUP");
    wait_until(Duration::from_secs(10), "the second reload", || async {
        v.log().matches("configuration reloaded").count() == 2
    })
    .await;
    assert_eq!(status(&v, &c, None).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_above_the_cap_are_closed_before_any_request() {
    let v = Vigie::start(&config(
        "rate = \"100/s\"\nburst = 100\nnodelay = true\nmax_connections = 2",
    ))
    .await;
    let open = |source: &'static str| {
        let addr = v.http.clone();
        async move {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
            sock.connect(addr.parse().unwrap()).await.unwrap()
        }
    };
    let ask = |mut s: tokio::net::TcpStream| async move {
        s.write_all(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
            .await
            .ok();
        let mut buf = vec![0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer or a close within 5s")
            .unwrap_or(0);
        (String::from_utf8_lossy(&buf[..n]).to_string(), s)
    };
    let (a, _a) = ask(open("127.0.0.11").await).await;
    let (b, _b) = ask(open("127.0.0.11").await).await;
    assert!(
        a.starts_with("HTTP/1.1 200") && b.starts_with("HTTP/1.1 200"),
        "{a}\n{b}"
    );
    // Two keep-alive connections are open: a third from the same address is closed.
    let (c, _c) = ask(open("127.0.0.11").await).await;
    assert_eq!(c, "", "the third connection got an answer");
    // Another address is not affected; a trusted proxy is never capped.
    let (d, _d) = ask(open("127.0.0.12").await).await;
    assert!(d.starts_with("HTTP/1.1 200"), "{d}");
    let mut proxies = Vec::new();
    for _ in 0..4 {
        let (p, s) = ask(open("127.0.0.1").await).await;
        assert!(p.starts_with("HTTP/1.1 200"), "{p}");
        proxies.push(s);
    }
    // Closing one frees a slot.
    drop(_a);
    wait_until(Duration::from_secs(5), "a freed slot", || async {
        ask(open("127.0.0.11").await)
            .await
            .0
            .starts_with("HTTP/1.1 200")
    })
    .await;
}
