//! `/status.json` on the admin listener: its fields and counts against a running vigie with
//! real origins, and the token rule (loopback: open; any other address: the admin token).
//!
//! A non-loopback admin address without needing a second interface: the listener is bound
//! to `0.0.0.0:PORT` (every address, so not loopback: the token is required), and the test
//! still connects to it over 127.0.0.1.

use std::time::Duration;

use serde_json::Value;

use crate::support::{client, wait_until, Origin, Ports, Vigie};

const TOKEN: &str = "status-test-token-0123456789";

fn config(a: &Origin, b: &Origin) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
admin_token = "{TOKEN}"

[upstreams.app]
servers = ["{a}", "{b}"]
health = {{ path = "/health", interval = "1s", fall = 1, rise = 1 }}

[limits.tight]
rate = "1/m"

[cache.pages]
memory = "8MiB"

[[sites]]
names = ["app.test", "www.app.test"]
  [[sites.routes]]
  path = "/"
  upstream = "app"
  [[sites.routes]]
  path = "/hello"
  respond = {{ body = "hello\n" }}
  [[sites.routes]]
  path = "/limited"
  respond = {{ body = "once a minute\n" }}
  limit = "tight"
  [[sites.routes]]
  path = "/cached"
  upstream = "app"
  cache = {{ zone = "pages", valid = {{ "200" = "1m" }} }}
"#,
        a = a.addr_str(),
        b = b.addr_str(),
    )
}

async fn status_json(v: &Vigie, auth: Option<&str>) -> reqwest::Response {
    let mut req = client().get(format!("http://{}/status.json", v.admin));
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("GET /status.json")
}

async fn json(v: &Vigie) -> Value {
    let r = status_json(v, None).await;
    assert_eq!(r.status(), 200);
    serde_json::from_str(&r.text().await.expect("body")).expect("status.json is JSON")
}

fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|x| x[key] == name))
        .unwrap_or_else(|| panic!("no {key} = {name} in {list:#}"))
}

async fn get(v: &Vigie, path: &str) -> u16 {
    v.get("app.test", path).await.status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_json_counts_what_happened() {
    let a = Origin::start("a").await;
    let b = Origin::start("b").await;
    let v = Vigie::start(&config(&a, &b)).await;
    for _ in 0..6 {
        assert_eq!(get(&v, "/").await, 200);
    }
    assert_eq!(get(&v, "/status/503").await, 503);
    for _ in 0..3 {
        assert_eq!(get(&v, "/hello").await, 200);
    }
    let limited: Vec<u16> = [
        get(&v, "/limited").await,
        get(&v, "/limited").await,
        get(&v, "/limited").await,
        get(&v, "/limited").await,
    ]
    .into();
    assert_eq!(limited, [200, 429, 429, 429]);
    for _ in 0..3 {
        assert_eq!(get(&v, "/cached").await, 200);
    }
    // Requests are counted in their logging phase, just after the answer: wait for the last.
    wait_until(Duration::from_secs(10), "17 requests counted", || async {
        json(&v).await["sites"][0]["requests"]["total"] == 17
    })
    .await;
    let s = json(&v).await;

    let p = &s["process"];
    assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["pid"], v.pid());
    assert_eq!(p["token_required"], false, "loopback: no token needed");
    assert_eq!(p["last_reload"], Value::Null);
    assert_eq!(p["reloads_applied"], 0);
    assert!(p["uptime_seconds"].as_u64().is_some(), "{p:#}");
    assert!(p["connections"].as_i64().is_some_and(|c| c >= 0), "{p:#}");
    assert!(
        p["memory_rss_bytes"].as_u64().is_some_and(|m| m > 1 << 20),
        "{p:#}"
    );
    assert_eq!(s["history_step_seconds"], 2);

    let site = &s["sites"][0];
    assert_eq!(site["name"], "app.test");
    assert_eq!(
        site["names"],
        serde_json::json!(["app.test", "www.app.test"])
    );
    assert_eq!(site["tls"], "none");
    assert_eq!(site["requests"]["2xx"], 13, "{site:#}");
    assert_eq!(site["requests"]["4xx"], 3);
    assert_eq!(site["requests"]["5xx"], 1);
    let routes = &site["routes"];
    let root = find(routes, "path", "/");
    assert_eq!(root["kind"], "proxy");
    assert_eq!(root["match"], "prefix");
    assert_eq!(root["upstream"], "app");
    assert_eq!(root["requests"]["2xx"], 6);
    assert_eq!(root["requests"]["5xx"], 1);
    let hello = find(routes, "path", "/hello");
    assert_eq!(hello["kind"], "respond");
    assert_eq!(hello["requests"]["total"], 3);
    let lim = find(routes, "path", "/limited");
    assert_eq!(lim["limit"], "tight");
    assert_eq!(lim["requests"]["4xx"], 3);
    assert_eq!(find(routes, "path", "/cached")["cache"], "pages");

    let app = find(&s["upstreams"], "name", "app");
    assert_eq!(app["balance"], "round_robin");
    assert_eq!(app["health_check"]["path"], "/health");
    assert_eq!(app["health_check"]["interval_seconds"], 1.0);
    let servers = app["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 2);
    let sum = |k: &str| servers.iter().map(|x| x[k].as_u64().unwrap()).sum::<u64>();
    // 6 + the 503 + the cache miss reached a server; the two hits did not.
    assert_eq!(sum("responses"), 8, "{app:#}");
    assert_eq!(sum("responses_5xx"), 1);
    assert_eq!(sum("failures"), 0);
    assert_eq!(
        servers
            .iter()
            .map(|x| x["latency"]["count"].as_u64().unwrap())
            .sum::<u64>(),
        8
    );
    for x in servers {
        assert_eq!(x["state"], "up", "{x:#}");
        assert_eq!(x["down_by"], Value::Null);
        assert_eq!(x["in_flight"], 0);
        assert!(x["latency"]["p50_ms"].as_f64().is_some(), "{x:#}");
        assert!(x["latency"]["p99_ms"].as_f64() >= x["latency"]["p50_ms"].as_f64());
    }
    let addrs: Vec<&str> = servers
        .iter()
        .map(|x| x["address"].as_str().unwrap())
        .collect();
    assert_eq!(addrs, [a.addr_str(), b.addr_str()]);

    let tight = find(&s["limits"], "name", "tight");
    assert_eq!(tight["rate"], "1/m");
    assert_eq!(tight["allowed"], 1);
    assert_eq!(tight["rejected"], 3);
    assert_eq!(tight["delayed"], 0);
    assert_eq!(tight["tracked_clients"], 1);
    assert_eq!(
        tight["top_limited"],
        serde_json::json!([{ "client": "127.0.0.1", "limited": 3 }])
    );

    let pages = find(&s["caches"], "name", "pages");
    assert_eq!(pages["requests"]["MISS"], 1, "{pages:#}");
    assert_eq!(pages["requests"]["HIT"], 2);
    let ratio = pages["hit_ratio"].as_f64().unwrap();
    assert!((ratio - 2.0 / 3.0).abs() < 1e-9, "{ratio}");
    assert_eq!(pages["memory_max"], 8 * 1024 * 1024);
    assert!(pages["memory_bytes"].as_u64().unwrap() > 0);
    assert_eq!(pages["memory_entries"], 1);
    assert_eq!(pages["disk_bytes"], Value::Null);
    assert_eq!(s["certificates"], serde_json::json!([]));

    // The history is sampled every 2 s: the requests show up in it.
    wait_until(
        Duration::from_secs(10),
        "the requests in the history",
        || async {
            let s = json(&v).await;
            let points = s["sites"][0]["history"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            points
                .iter()
                .map(|p| p["requests"]["total"].as_u64().unwrap())
                .sum::<u64>()
                == 17
        },
    )
    .await;

    // A server taken down by its health check, then a reload refused and one applied.
    b.set_health(503);
    wait_until(Duration::from_secs(10), "b marked down", || async {
        let s = json(&v).await;
        let b_state = &s["upstreams"][0]["servers"][1];
        b_state["state"] == "down" && b_state["down_by"] == "health_check"
    })
    .await;
    let s = json(&v).await;
    let b_state = &s["upstreams"][0]["servers"][1];
    assert!(b_state["since"].as_u64().is_some(), "{b_state:#}");
    let why = b_state["last_check_error"].as_str().unwrap_or_default();
    assert!(why.contains("503"), "{why}");

    v.write_config(&format!("{}\n[bogus]\nx = 1\n", config(&a, &b)));
    v.signal("HUP");
    wait_until(Duration::from_secs(10), "the refused reload", || async {
        json(&v).await["process"]["last_reload"]["result"] == "refused"
    })
    .await;
    let r = &json(&v).await["process"]["last_reload"];
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("bogus") && error.contains("vigie.toml"),
        "{r:#}"
    );
    v.write_config(&config(&a, &b));
    v.signal("HUP");
    wait_until(Duration::from_secs(10), "the applied reload", || async {
        let p = &json(&v).await["process"];
        p["last_reload"]["result"] == "applied" && p["reloads_refused"] == 1
    })
    .await;
}

fn off_loopback(port: u16, token: Option<&str>) -> String {
    let token = token.map_or(String::new(), |t| format!("admin_token = \"{t}\""));
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "0.0.0.0:{port}"
state_dir = "{{state}}"
{token}

[[sites]]
names = ["secret-site.test"]
  [[sites.routes]]
  path = "/"
  respond = {{ body = "hi\n" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn status_json_needs_the_token_off_loopback() {
    let ports = Ports::new();
    let port = Ports::port(&ports.admin);
    let v = Vigie::start_on(&off_loopback(port, Some(TOKEN)), ports, &[]).await;

    let r = status_json(&v, None).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    assert_eq!(
        status_json(&v, Some("wrong-token-0123456789"))
            .await
            .status(),
        401
    );
    let r = status_json(&v, Some(TOKEN)).await;
    assert_eq!(r.status(), 200);
    let s: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(s["process"]["token_required"], true);
    assert_eq!(s["sites"][0]["name"], "secret-site.test");

    // The page and its script are static and hold no data: they load without the token.
    let page = client()
        .get(format!("http://{}/", v.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<script src="/status.js"></script>"#),
        "{html}"
    );
    assert!(!html.contains("secret-site"), "the page holds no data");
    for path in ["/status", "/status.js"] {
        let r = client()
            .get(format!("http://{}{path}", v.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // Nothing state-changing opens up: a POST still needs the token.
    let purge = client()
        .post(format!("http://{}/cache/purge", v.admin))
        .body("http://secret-site.test/")
        .send()
        .await
        .unwrap();
    assert_eq!(purge.status(), 401);

    // Off loopback without a configured token the data is refused, saying why.
    let ports = Ports::new();
    let port = Ports::port(&ports.admin);
    let open = Vigie::start_on(&off_loopback(port, None), ports, &[]).await;
    let r = status_json(&open, None).await;
    assert_eq!(r.status(), 403);
    let text = r.text().await.unwrap();
    assert!(text.contains("admin_token"), "{text}");
}
