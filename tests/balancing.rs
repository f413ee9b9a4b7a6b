//! Load balancing: each algorithm's distribution, failover, active and passive health.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::{client, free_port, wait_until, Origin, Vigie};

fn config(servers: &[String], upstream_extra: &str) -> String {
    let list = servers
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"

[upstreams.pool]
servers = [{list}]
{upstream_extra}

[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "pool"
"#
    )
}

async fn origins(n: usize) -> Vec<Origin> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(Origin::start(&format!("o{i}")).await);
    }
    v
}

fn addrs(origins: &[Origin]) -> Vec<String> {
    origins.iter().map(|o| o.addr_str()).collect()
}

/// Which origin answered, from the `x-origin` header.
async fn who(v: &Vigie, path: &str, header: Option<(&str, &str)>) -> String {
    let mut req = client().get(v.url(path)).header("host", "example.com");
    if let Some((k, val)) = header {
        req = req.header(k, val);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", v.log());
    r.headers()["x-origin"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn round_robin_is_even() {
    let o = origins(3).await;
    let v = Vigie::start(&config(&addrs(&o), "")).await;
    for _ in 0..30 {
        who(&v, "/", None).await;
    }
    assert_eq!([o[0].count(), o[1].count(), o[2].count()], [10, 10, 10]);
}

#[tokio::test(flavor = "multi_thread")]
async fn weighted_follows_weights() {
    let o = origins(2).await;
    let cfg = config(&[], "").replace(
        "servers = []",
        &format!(
            r#"servers = ["{}", {{ addr = "{}", weight = 3 }}]
balance = "weighted""#,
            o[0].addr_str(),
            o[1].addr_str()
        ),
    );
    let v = Vigie::start(&cfg).await;
    for _ in 0..40 {
        who(&v, "/", None).await;
    }
    assert_eq!([o[0].count(), o[1].count()], [10, 30]);
}

#[tokio::test(flavor = "multi_thread")]
async fn least_conn_avoids_the_busy_server() {
    let o = origins(2).await;
    let v = Vigie::start(&config(&addrs(&o), r#"balance = "least_conn""#)).await;
    // One long request occupies one server...
    let slow_url = v.url("/slow?ms=3000");
    let slow = tokio::spawn(async move {
        client()
            .get(slow_url)
            .header("host", "example.com")
            .send()
            .await
            .unwrap()
            .headers()["x-origin"]
            .to_str()
            .unwrap()
            .to_string()
    });
    wait_until(
        Duration::from_secs(5),
        "the slow request to arrive",
        || async { o[0].count() + o[1].count() == 1 },
    )
    .await;
    let busy = if o[0].count() == 1 { "o0" } else { "o1" };
    // ...so every request meanwhile goes to the other one.
    for _ in 0..6 {
        assert_ne!(who(&v, "/fast", None).await, busy);
    }
    assert_eq!(slow.await.unwrap(), busy);
    // Idle again: ties are shared.
    let mut seen = HashMap::new();
    for _ in 0..10 {
        *seen.entry(who(&v, "/", None).await).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hash_by_header_is_sticky_and_spreads() {
    let o = origins(3).await;
    let v = Vigie::start(&config(
        &addrs(&o),
        "balance = \"hash\"\nhash_on = \"header:X-User\"",
    ))
    .await;
    let mut owners = HashMap::new();
    for user in 0..30 {
        let id = format!("user-{user}");
        let first = who(&v, "/", Some(("x-user", &id))).await;
        for _ in 0..3 {
            assert_eq!(
                who(&v, "/", Some(("x-user", &id))).await,
                first,
                "{id} moved"
            );
        }
        owners.insert(id, first);
    }
    let distinct: std::collections::HashSet<_> = owners.values().collect();
    assert!(
        distinct.len() >= 2,
        "30 users all on one server: {owners:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hash_by_client_ip_is_sticky() {
    let o = origins(3).await;
    let v = Vigie::start(&config(
        &addrs(&o),
        "balance = \"hash\"\nhash_on = \"client_ip\"",
    ))
    .await;
    let first = who(&v, "/", None).await;
    for _ in 0..10 {
        assert_eq!(who(&v, "/", None).await, first);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_two_choices_uses_every_server() {
    let o = origins(3).await;
    let v = Vigie::start(&config(&addrs(&o), r#"balance = "random_two""#)).await;
    for _ in 0..60 {
        who(&v, "/", None).await;
    }
    let counts = [o[0].count(), o[1].count(), o[2].count()];
    assert_eq!(counts.iter().sum::<usize>(), 60);
    assert!(counts.iter().all(|&c| c >= 5), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_retries_the_next_server_and_marks_the_dead_one_down() {
    let o = origins(1).await;
    let dead = format!("127.0.0.1:{}", free_port());
    let v = Vigie::start(&config(
        &[dead.clone(), o[0].addr_str()],
        "max_fails = 1\nfail_timeout = \"30s\"",
    ))
    .await;
    // Every request succeeds: a refused connection is retried on the live server.
    for _ in 0..10 {
        assert_eq!(who(&v, "/", None).await, "o0");
    }
    assert_eq!(o[0].count(), 10);
    // A POST too: nothing was sent to the dead server, so retrying it is safe.
    let r = client()
        .post(v.url("/form"))
        .header("host", "example.com")
        .body("a=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        v.log().contains("server marked down after failures"),
        "{}",
        v.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn all_servers_dead_is_502() {
    let dead = format!("127.0.0.1:{}", free_port());
    let v = Vigie::start(&config(&[dead], "")).await;
    let r = v.get("example.com", "/").await;
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().starts_with("502 Bad Gateway"));
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_server_is_504() {
    let o = origins(1).await;
    let v = Vigie::start(&config(&addrs(&o), "read_timeout = \"300ms\"\nretries = 0")).await;
    let r = v.get("example.com", "/slow?ms=3000").await;
    assert_eq!(r.status(), 504);
    assert!(r.text().await.unwrap().starts_with("504 Gateway Timeout"));
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checks_take_a_server_out_and_bring_it_back() {
    let o = origins(2).await;
    let v = Vigie::start(&config(
        &addrs(&o),
        r#"health = { path = "/health", interval = "100ms", rise = 2, fall = 2 }"#,
    ))
    .await;
    o[1].set_health(500);
    // Once o1 is out, a run of requests only reaches o0.
    wait_until(Duration::from_secs(10), "o1 to be taken out", || async {
        let before = o[1].count();
        for _ in 0..4 {
            who(&v, "/", None).await;
        }
        o[1].count() == before
    })
    .await;
    let before = o[1].count();
    for _ in 0..10 {
        assert_eq!(who(&v, "/", None).await, "o0");
    }
    assert_eq!(o[1].count(), before);
    // Healthy again: it comes back.
    o[1].set_health(200);
    wait_until(Duration::from_secs(10), "o1 to come back", || async {
        who(&v, "/", None).await == "o1"
    })
    .await;
    // Both out: 503 with a clear body.
    o[0].set_health(503);
    o[1].set_health(503);
    wait_until(Duration::from_secs(10), "both out", || async {
        v.get("example.com", "/").await.status() == 503
    })
    .await;
    let body = v.get("example.com", "/").await.text().await.unwrap();
    assert_eq!(
        body,
        "503 Service Unavailable: no healthy server in upstream \"pool\"\n"
    );
}
