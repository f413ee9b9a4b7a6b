//! Cluster-wide rate limits (issue 15): three real vigie instances sharing one real Redis
//! through `[cluster]`, a client going round-robin over them. The budget is the cluster's
//! (admitted count against rate × time), a spoofed `X-Forwarded-For` does not change the key,
//! Redis SIGKILLed under load loses no request (each instance's own limiter takes over, then
//! Redis comes back by itself), and `fail_closed` refuses limited routes while Redis is dead.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::support::redis::Redis;
use crate::support::{metric_value, wait_until, Vigie};

const HOST: &str = "example.com";
const ZONE: &str = "per_ip";

struct Edge {
    redis: Redis,
    nodes: Vec<Vigie>,
    _keys: tempfile::TempDir,
}

fn config(redis: &str, node: &str, key: &std::path::Path, zone: &str, cluster: &str) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
threads = 1

[log]
access = "off"

[client_ip]
trusted_proxies = ["127.0.0.1/32"]

[cluster]
redis = "{redis}"
key_prefix = "edge:"
node_id = "{node}"
encryption_key_file = "{key}"
{cluster}

[limits.{ZONE}]
{zone}

[[sites]]
names = ["{HOST}"]
limit = "{ZONE}"
  [[sites.routes]]
  path = "/"
  respond = {{ body = "ok\n" }}
  [[sites.routes]]
  path = "/free/"
  respond = {{ body = "free\n" }}
  limit = "off"
"#,
        key = key.display(),
    )
}

/// `n` instances on one fresh Redis, each with `zone` and the extra `[cluster]` lines,
/// returned once each says its Redis link is up.
async fn edge(n: usize, zone: &str, cluster: &str) -> Edge {
    let redis = Redis::start().await;
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("cluster.key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    let starts = (0..n).map(|i| {
        let cfg = config(&redis.url, &format!("n{i}"), &key, zone, cluster);
        async move { Vigie::start(&cfg).await }
    });
    let nodes = futures_util::future::join_all(starts).await;
    for v in &nodes {
        wait_redis(v, 1.0).await;
    }
    Edge {
        redis,
        nodes,
        _keys: keys,
    }
}

/// Wait until `vigie_cluster_redis_up` of `v` is `up`.
async fn wait_redis(v: &Vigie, up: f64) {
    wait_until(
        Duration::from_secs(15),
        &format!("vigie_cluster_redis_up {up}"),
        || async { metric_value(&v.metrics().await, "vigie_cluster_redis_up") == Some(up) },
    )
    .await;
}

async fn metric(v: &Vigie, series: &str) -> f64 {
    metric_value(&v.metrics().await, series).unwrap_or(0.0)
}

async fn allowed(v: &Vigie) -> f64 {
    metric(
        v,
        &format!("vigie_limit_requests_total{{decision=\"allowed\",zone=\"{ZONE}\"}}"),
    )
    .await
}

fn from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// What a stretch of load gave: per request, the instance it went to and its status (0 and
/// the error for a failed request); and the time from the first request sent to the last.
struct Load {
    results: Vec<(usize, u16, String)>,
    span: Duration,
}

impl Load {
    fn count(&self, status: u16) -> usize {
        self.results.iter().filter(|r| r.1 == status).count()
    }

    fn admitted_by(&self, node: usize) -> usize {
        self.results
            .iter()
            .filter(|r| r.0 == node && r.1 == 200)
            .count()
    }

    /// Every request got 200 or 429.
    fn assert_no_failure(&self) {
        let bad: Vec<_> = self
            .results
            .iter()
            .filter(|r| r.1 != 200 && r.1 != 429)
            .collect();
        assert!(bad.is_empty(), "{} failed requests: {bad:?}", bad.len());
    }
}

/// `rps` requests a second from `source` to `/`, round-robin over `nodes`, for `time`; each
/// request is its own task, so a slow answer does not slow the schedule.
async fn load(nodes: &[Vigie], source: &str, rps: u32, time: Duration) -> Load {
    let client = from(source);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rps);
    let start = Instant::now();
    let mut last = start;
    let mut tasks = Vec::new();
    let mut i = 0usize;
    while start.elapsed() < time {
        tick.tick().await;
        last = Instant::now();
        let node = i % nodes.len();
        i += 1;
        let req = client
            .get(nodes[node].url("/"))
            .header("host", HOST)
            .header("x-forwarded-for", format!("198.51.100.{}", i % 250));
        tasks.push(tokio::spawn(async move {
            match req.send().await {
                Ok(r) => (node, r.status().as_u16(), String::new()),
                Err(e) => (node, 0, format!("{e:?}")),
            }
        }));
    }
    let span = last - start;
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    Load { results, span }
}

/// What a GCRA with `rate` per second and `burst` admits from a client asking faster than the
/// rate for `span`: the burst and the first request at once, then one per interval.
fn budget(rate: f64, burst: f64, span: Duration) -> f64 {
    burst + 1.0 + rate * span.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_admit_one_cluster_wide_budget() {
    // 20/s with a burst of 10 (so the pauses of a loaded machine, up to 500 ms, lose no
    // admission); the client asks 100/s, 5 times the rate, for 5 s. The timeout is generous:
    // this test is about exactness, and every decision must come from Redis.
    let e = edge(
        3,
        "rate = \"20/s\"\nburst = 10\nnodelay = true",
        "redis_timeout = \"2s\"",
    )
    .await;
    let l = load(&e.nodes, "127.0.0.21", 100, Duration::from_secs(5)).await;
    l.assert_no_failure();
    let admitted = l.count(200) as f64;
    let expected = budget(20.0, 10.0, l.span);
    let error = (admitted - expected) / expected;
    eprintln!(
        "cluster-wide: {admitted} admitted of {} in {:?}, expected {expected:.1} ({:+.1}%), per \
         instance {:?}",
        l.results.len(),
        l.span,
        error * 100.0,
        (0..3).map(|n| l.admitted_by(n)).collect::<Vec<_>>()
    );
    assert!(
        error.abs() <= 0.05,
        "{admitted} admitted, expected {expected:.1}"
    );
    // Alone, each instance would have admitted the budget by itself: here they shared it,
    // every decision from Redis, each instance counting what it admitted.
    let mut counted = 0.0;
    for (n, v) in e.nodes.iter().enumerate() {
        assert!(l.admitted_by(n) > 0, "instance {n} admitted nothing");
        assert_eq!(
            metric(v, "vigie_cluster_limiter_fallback_total{action=\"local\"}").await,
            0.0
        );
        counted += allowed(v).await;
    }
    assert_eq!(counted, admitted);
    // One key for the client (its forwarded header was not trusted), expiring by itself.
    let mut c = e.redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("edge:limit:*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(keys, ["edge:limit:per_ip:127.0.0.21"]);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 600, "PTTL {ttl}");
}

/// `INFO commandstats`' count of script calls.
async fn script_calls(redis: &Redis) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis.conn().await)
        .await
        .unwrap();
    ["cmdstat_evalsha:calls=", "cmdstat_eval:calls="]
        .iter()
        .filter_map(|p| info.split(p).nth(1))
        .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spoofed_forwarded_address_shares_the_peers_budget() {
    let e = edge(
        3,
        "rate = \"1/m\"\nburst = 4\nnodelay = true\nexempt = [\"127.0.0.29/32\"]",
        "",
    )
    .await;
    let get = |n: usize, source: &str, xff: &str| {
        let req = from(source)
            .get(e.nodes[n % 3].url("/"))
            .header("host", HOST)
            .header("x-forwarded-for", xff.to_owned());
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // An untrusted peer: a new forwarded address on every request, round-robin over the
    // instances; one budget of 1 + 4 for the cluster.
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(get(i, "127.0.0.22", &format!("203.0.113.{i}")).await);
    }
    assert_eq!(statuses, [[200; 5].as_slice(), &[429; 7]].concat());
    // Behind the trusted proxy (127.0.0.1), the forwarded client is the key, cluster-wide.
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(get(i, "127.0.0.1", "198.51.100.9").await);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    assert_eq!(get(0, "127.0.0.1", "198.51.100.10").await, 200);
    let mut c = e.redis.conn().await;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("edge:limit:*")
        .query_async(&mut c)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "edge:limit:per_ip:127.0.0.22",
            "edge:limit:per_ip:198.51.100.10",
            "edge:limit:per_ip:198.51.100.9",
        ]
    );
    // Unlimited routes and exempt clients never reach Redis.
    let calls = script_calls(&e.redis).await;
    for i in 0..6 {
        let r = from("127.0.0.22")
            .get(e.nodes[i % 3].url("/free/x"))
            .header("host", HOST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(get(i, "127.0.0.29", "203.0.113.1").await, 200);
    }
    assert_eq!(script_calls(&e.redis).await, calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_under_load_loses_no_request_and_comes_back_by_itself() {
    let zone = "rate = \"20/s\"\nburst = 5\nnodelay = true";
    let mut e = edge(3, zone, "limits_on_redis_failure = \"fail_open\"").await;
    let source = "127.0.0.23";
    let up = load(&e.nodes, source, 90, Duration::from_secs(2)).await;
    up.assert_no_failure();
    let shared = budget(20.0, 5.0, up.span);
    assert!(
        (up.count(200) as f64) < shared * 1.1,
        "{} admitted with Redis up, budget {shared:.1}",
        up.count(200)
    );

    // SIGKILL: the requests in flight and after it are decided by each instance alone.
    let killer = {
        let pid = redis_pid(&e.redis);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let ok = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "kill redis-server");
        })
    };
    let down = load(&e.nodes, source, 90, Duration::from_secs(3)).await;
    killer.await.unwrap();
    e.redis.kill();
    down.assert_no_failure();
    for (n, v) in e.nodes.iter().enumerate() {
        wait_redis(v, 0.0).await;
        assert!(
            metric(v, "vigie_cluster_limiter_fallback_total{action=\"local\"}").await > 0.0,
            "instance {n} never fell back"
        );
        assert!(
            v.log().contains("Redis does not answer"),
            "instance {n}:\n{}",
            v.log()
        );
    }
    // Each instance granted about the whole rate by itself: far above one budget.
    let alone = budget(20.0, 5.0, down.span - Duration::from_millis(200));
    let per: Vec<usize> = (0..3).map(|n| down.admitted_by(n)).collect();
    eprintln!(
        "Redis up: {} admitted in {:?} (budget {shared:.1}); Redis killed: per instance {per:?} \
         in {:?} (each alone: about {alone:.1})",
        up.count(200),
        up.span,
        down.span
    );
    for (n, got) in per.iter().enumerate() {
        assert!(
            *got as f64 > alone * 0.6,
            "instance {n} admitted {got}: {per:?}, alone {alone:.1}"
        );
    }
    assert!(down.count(200) as f64 > shared * 1.5, "{per:?}");

    // Redis back on the same port: every instance closes its breaker without help, and the
    // budget is the cluster's again.
    e.redis.restart().await;
    for v in &e.nodes {
        wait_redis(v, 1.0).await;
        v.wait_log("Redis answers").await;
    }
    let fallbacks = metric(
        &e.nodes[0],
        "vigie_cluster_limiter_fallback_total{action=\"local\"}",
    )
    .await;
    let again = load(&e.nodes, source, 90, Duration::from_secs(2)).await;
    again.assert_no_failure();
    let expected = budget(20.0, 5.0, again.span);
    assert!(
        (again.count(200) as f64 - expected).abs() <= expected * 0.1,
        "{} admitted after Redis came back, budget {expected:.1}",
        again.count(200)
    );
    assert_eq!(
        metric(
            &e.nodes[0],
            "vigie_cluster_limiter_fallback_total{action=\"local\"}"
        )
        .await,
        fallbacks
    );
}

fn redis_pid(r: &Redis) -> u32 {
    r.pid().expect("redis-server runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn fail_closed_refuses_limited_routes_while_redis_is_dead() {
    let mut e = edge(
        1,
        "rate = \"100/s\"\nburst = 100\nstatus = 503",
        "limits_on_redis_failure = \"fail_closed\"",
    )
    .await;
    let v = &e.nodes[0];
    let c = from("127.0.0.24");
    let get = |path: &str| {
        let req = c.get(v.url(path)).header("host", HOST);
        async move { req.send().await.unwrap() }
    };
    assert_eq!(get("/").await.status(), 200);
    e.redis.kill();
    let r = get("/").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    wait_redis(v, 0.0).await;
    for _ in 0..5 {
        assert_eq!(get("/").await.status(), 503);
        assert_eq!(get("/free/").await.status(), 200);
    }
    assert!(
        metric(
            v,
            "vigie_cluster_limiter_fallback_total{action=\"refused\"}"
        )
        .await
            >= 6.0,
        "{}",
        v.metrics().await
    );
    e.redis.restart().await;
    wait_redis(v, 1.0).await;
    assert_eq!(get("/").await.status(), 200);
}
