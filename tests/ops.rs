//! Operations: Prometheus metrics, the access log and its reopening, request ids.

use std::time::Duration;

use crate::support::{client, metric_value, wait_until, Origin, Vigie};

fn config(origin: &str, log: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
https = ["{{https}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[client_ip]
trusted_proxies = ["127.0.0.2/32"]

[log]
{log}

[limits.ip]
rate = "1/m"

[upstreams.app]
servers = ["{origin}"]
health = {{ path = "/health", interval = "1s" }}

[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "app"
  [[sites.routes]]
  path = "/limited"
  respond = {{ body = "ok\n" }}
  limit = "ip"

[[sites]]
names = ["localhost"]
tls = "internal"
  [[sites.routes]]
  path = "/"
  respond = {{ body = "tls\n" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_metrics_count_what_happened() {
    let o = Origin::start("app").await;
    let v = Vigie::start(&config(&o.addr_str(), "access = \"off\"")).await;
    for _ in 0..3 {
        assert_eq!(v.get("example.com", "/x").await.status(), 200);
    }
    assert_eq!(v.get("example.com", "/status/503").await.status(), 503);
    assert_eq!(v.get("example.com", "/limited").await.status(), 200);
    assert_eq!(v.get("example.com", "/limited").await.status(), 429);
    let root = reqwest::Certificate::from_pem(
        std::fs::read(v.state().join("ca/root.pem"))
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    let r = v
        .https_client(&["localhost"], &[root])
        .get(v.https_url("localhost", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The access-log-free and metrics-only path: the logging phase runs after the response,
    // so wait for the counters rather than racing them.
    let series =
        r#"vigie_requests_total{method="GET",route="/",site="example.com",status_class="2xx"}"#;
    wait_until(Duration::from_secs(5), "request counters", || async {
        metric_value(&v.metrics().await, series) == Some(3.0)
    })
    .await;
    let m = v.metrics().await;
    let get = |s: &str| metric_value(&m, s).unwrap_or_else(|| panic!("no {s} in:\n{m}"));
    assert_eq!(
        get(
            r#"vigie_requests_total{method="GET",route="/",site="example.com",status_class="5xx"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            r#"vigie_requests_total{method="GET",route="/limited",site="example.com",status_class="4xx"}"#
        ),
        1.0
    );
    assert_eq!(
        get(r#"vigie_limit_requests_total{decision="rejected",zone="ip"}"#),
        1.0
    );
    assert_eq!(
        get(r#"vigie_limit_requests_total{decision="allowed",zone="ip"}"#),
        1.0
    );
    assert_eq!(
        get(&format!(
            r#"vigie_upstream_server_up{{server="{}",upstream="app"}}"#,
            o.addr_str()
        )),
        1.0
    );
    assert!(get(r#"vigie_upstream_duration_seconds_count{upstream="app"}"#) >= 4.0);
    assert!(get(r#"vigie_tls_handshakes_total{result="ok"}"#) >= 1.0);
    assert!(
        get(
            r#"vigie_certificate_not_after_timestamp_seconds{name="localhost",source="configured"}"#
        ) > 1.7e9
    );
    assert!(m.contains("vigie_config_info{hash=\""), "{m}");
    assert!(get("vigie_downstream_connections") >= 0.0);
    // Reloads, ok and failed, are counted.
    v.signal("HUP");
    v.wait_log("configuration reloaded").await;
    v.write_config("[server]\nbogus = 1\n");
    v.signal("HUP");
    v.wait_log("reload rejected").await;
    let m = v.metrics().await;
    assert_eq!(
        metric_value(&m, r#"vigie_config_reloads_total{result="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&m, r#"vigie_config_reloads_total{result="failed"}"#),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn access_log_lines_in_combined_format_and_reopened_on_usr1() {
    let o = Origin::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let v = Vigie::start(&config(
        &o.addr_str(),
        &format!("access = \"{}\"", path.display()),
    ))
    .await;
    let r = client()
        .get(v.url("/page?q=1"))
        .header("host", "example.com")
        .header("user-agent", "test-agent/1.0")
        .header("referer", "https://ref.example/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    wait_until(Duration::from_secs(5), "the access log line", || async {
        std::fs::read_to_string(&path).is_ok_and(|t| t.contains("/page?q=1"))
    })
    .await;
    let line = std::fs::read_to_string(&path).unwrap();
    let re_ok = line.starts_with("127.0.0.1 - - [")
        && line.contains("] \"GET /page?q=1 HTTP/1.1\" 200 ")
        && line.ends_with(" \"https://ref.example/\" \"test-agent/1.0\"\n");
    assert!(re_ok, "{line}");
    // The request id went upstream too.
    assert_eq!(o.seen()[0].headers["x-request-id"], id);
    // logrotate: move the file, SIGUSR1, and the next line lands in a new file.
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    v.signal("USR1");
    v.wait_log("access log reopened").await;
    v.get("example.com", "/after").await;
    wait_until(Duration::from_secs(5), "a line in the new file", || async {
        std::fs::read_to_string(&path).is_ok_and(|t| t.contains("/after"))
    })
    .await;
    assert!(!std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("/after"));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_access_log_and_request_ids() {
    let o = Origin::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.json");
    let v = Vigie::start(&config(
        &o.addr_str(),
        &format!(
            "access = \"{}\"\nformat = \"json\"\njson = true",
            path.display()
        ),
    ))
    .await;
    // From an untrusted client, a request id is replaced by a generated one.
    let r = client()
        .get(v.url("/a"))
        .header("host", "example.com")
        .header("x-request-id", "spoofed-id")
        .send()
        .await
        .unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(generated, "spoofed-id");
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    // From a trusted proxy (a CDN), it is kept.
    let cdn = reqwest::Client::builder()
        .no_proxy()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let r = cdn
        .get(v.url("/b"))
        .header("host", "example.com")
        .header("x-request-id", "cdn-123")
        .header("x-forwarded-for", "198.51.100.4")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "cdn-123");
    assert_eq!(o.seen()[1].headers["x-request-id"], "cdn-123");
    // vigie's own answers carry it too.
    let r = v.get("example.com", "/limited").await;
    assert!(r.headers().get("x-request-id").is_some());
    wait_until(Duration::from_secs(5), "three JSON lines", || async {
        std::fs::read_to_string(&path).is_ok_and(|t| t.lines().count() >= 3)
    })
    .await;
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let b = lines.iter().find(|l| l["uri"] == "/b").unwrap();
    assert_eq!(b["client"], "198.51.100.4");
    assert_eq!(b["request_id"], "cdn-123");
    assert_eq!(b["status"], 200);
    assert_eq!(b["upstream_addr"], o.addr_str());
    assert!(b["upstream_time"].as_f64().unwrap() >= 0.0);
    let limited = lines.iter().find(|l| l["uri"] == "/limited").unwrap();
    assert_eq!(limited["limit"], "passed");
    // `[log] json = true`: diagnostic lines are JSON too.
    let diag = v.log();
    let starting = diag.lines().find(|l| l.contains("vigie starting")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(starting).unwrap();
    assert_eq!(parsed["level"], "INFO");
}

fn two_upstreams(a: &str, b: &str, target: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
[log]
access = "off"
[upstreams.a]
servers = ["{a}"]
[upstreams.b]
servers = ["{b}"]
[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "{target}"
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_reloads_under_load_lose_no_request() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let (cfg_a, cfg_b) = (
        two_upstreams(&a.addr_str(), &b.addr_str(), "a"),
        two_upstreams(&a.addr_str(), &b.addr_str(), "b"),
    );
    let v = Vigie::start(&cfg_a).await;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (stop, ok, failures, url) = (stop.clone(), ok.clone(), failures.clone(), v.url("/x"));
        clients.push(tokio::spawn(async move {
            // Keep-alive: one client, its pooled connections reused across reloads.
            let c = client();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 20_000 {
                n += 1;
                match c.get(&url).header("host", "example.com").send().await {
                    Ok(r) if r.status() == 200 => {
                        let who = r.text().await.unwrap_or_default();
                        if who.starts_with("a ") || who.starts_with("b ") {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            failures.lock().unwrap().push(format!("body {who:?}"));
                        }
                    }
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", r.status())),
                    Err(e) => failures.lock().unwrap().push(e.to_string()),
                }
            }
        }));
    }
    for i in 1..=10 {
        let (cfg, expect) = if i % 2 == 1 {
            (&cfg_b, "b /x\n")
        } else {
            (&cfg_a, "a /x\n")
        };
        v.write_config(cfg);
        v.signal("HUP");
        wait_until(Duration::from_secs(10), "the reload", || async {
            v.log().matches("configuration reloaded").count() == i
        })
        .await;
        // Once applied, new requests go where the new snapshot says.
        assert_eq!(
            v.get("example.com", "/x").await.text().await.unwrap(),
            expect
        );
        // Let the load run on this configuration before the next reload.
        let base = ok.load(Ordering::Relaxed);
        wait_until(
            Duration::from_secs(20),
            "traffic between reloads",
            || async { ok.load(Ordering::Relaxed) >= base + 300 },
        )
        .await;
    }
    // An invalid file: rejected, the last good configuration (the 10th: upstream a) serves on.
    v.write_config("[server]\nhttp = [\"{http}\"]\n[[sites]]\nnames = 1\n");
    v.signal("HUP");
    v.wait_log("reload rejected").await;
    assert_eq!(
        v.get("example.com", "/x").await.text().await.unwrap(),
        "a /x\n"
    );
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    let ok = ok.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} failed of {}: {:?}",
        failures.len(),
        ok + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok > 3000, "{ok} requests");
    eprintln!("{ok} requests across 10 reloads and 1 rejected reload, 0 failed");
    assert!(a.count() > 0 && b.count() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_requests_in_flight_finish() {
    let o = Origin::start("app").await;
    let cfg = two_upstreams(&o.addr_str(), &o.addr_str(), "a").replace(
        "state_dir = \"{state}\"",
        "state_dir = \"{state}\"\ngrace_period = \"5s\"",
    );
    let mut v = Vigie::start(&cfg).await;
    let url = v.url("/slow?ms=1500");
    let slow = tokio::spawn(async move {
        client()
            .get(url)
            .header("host", "example.com")
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    wait_until(
        Duration::from_secs(5),
        "the slow request to arrive",
        || async { o.count() == 1 },
    )
    .await;
    v.signal("TERM");
    assert_eq!(
        slow.await.unwrap().unwrap(),
        200,
        "the request in flight finished"
    );
    // No new connection is accepted once draining, and the process ends by itself.
    wait_until(Duration::from_secs(5), "the listener to close", || async {
        tokio::net::TcpStream::connect(&v.http).await.is_err()
    })
    .await;
    v.wait_exit(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_upgrade_hands_the_sockets_over_without_losing_a_request() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let o = Origin::start("app").await;
    let cfg = two_upstreams(&o.addr_str(), &o.addr_str(), "a").replace(
        "state_dir = \"{state}\"",
        "state_dir = \"{state}\"\ngrace_period = \"2s\"",
    );
    let mut v = Vigie::start(&cfg).await;
    let old_pid = v.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failures, url) = (stop.clone(), ok.clone(), failures.clone(), v.url("/u"));
        clients.push(tokio::spawn(async move {
            // A new connection per request: every accept goes through the handed-over socket.
            let c = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 50_000 {
                n += 1;
                match c.get(&url).header("host", "example.com").send().await {
                    Ok(r) if r.status() == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", r.status())),
                    Err(e) => failures.lock().unwrap().push(format!("{e:?}")),
                }
            }
        }));
    }
    wait_until(Duration::from_secs(5), "traffic", || async {
        ok.load(Ordering::Relaxed) > 100
    })
    .await;
    v.upgrade().await;
    assert_ne!(v.pid(), old_pid);
    let base = ok.load(Ordering::Relaxed);
    wait_until(
        Duration::from_secs(10),
        "traffic on the new process",
        || async { ok.load(Ordering::Relaxed) > base + 100 },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    let total = ok.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} failed of {}: {:?}",
        failures.len(),
        total,
        &failures[..failures.len().min(3)]
    );
    eprintln!("{total} requests across a binary upgrade, 0 failed");
}
