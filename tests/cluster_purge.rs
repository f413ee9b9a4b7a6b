//! Cache purge fan-out across three vigie instances sharing a real Redis (issue 15): a purge
//! taken by one instance empties the same URL (or prefix) on all three, a purge while Redis
//! is down purges locally and says the others were not told (502), and the fan-out comes
//! back by itself when Redis does.

use std::process::Command;
use std::time::Duration;

use crate::support::redis::Redis;
use crate::support::vigie::bin;
use crate::support::{client, metric_value, wait_until, Origin, Vigie};

const TOKEN: &str = "test-token-0123456789abcdef";
const CHANNEL: &str = "t15p:purge";

fn config(origin: &Origin, redis: &Redis, node: &str, key: &std::path::Path) -> String {
    format!(
        r#"
[server]
http = ["{{http}}"]
admin = "{{admin}}"
state_dir = "{{state}}"
admin_token = "{TOKEN}"

[cluster]
redis = "{url}"
key_prefix = "t15p:"
node_id = "{node}"
encryption_key_file = "{key}"

[cache.pages]
memory = "1MiB"

[upstreams.app]
servers = ["{origin}"]

[[sites]]
names = ["example.com"]
  [[sites.routes]]
  path = "/"
  upstream = "app"
  cache = {{ zone = "pages", valid = {{ "200" = "5m" }} }}
"#,
        url = redis.url,
        key = key.display(),
        origin = origin.addr_str(),
    )
}

async fn cache_status(v: &Vigie, path: &str) -> String {
    let r = client()
        .get(v.url(path))
        .header("host", "example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()
        .get("x-cache-status")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Cache `paths` on every instance (a MISS, then a HIT).
async fn warm(cluster: &[Vigie], paths: &[&str]) {
    for v in cluster {
        for p in paths {
            cache_status(v, p).await;
            assert_eq!(cache_status(v, p).await, "HIT", "{p} on {}", v.admin);
        }
    }
}

async fn subscribers(redis: &Redis) -> i64 {
    let Ok(mut c) = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
    else {
        return 0;
    };
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(CHANNEL)
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    counts.first().map(|(_, n)| *n).unwrap_or(0)
}

async fn wait_subscribed(redis: &Redis, n: i64) {
    wait_until(
        Duration::from_secs(15),
        "every instance listening for purges",
        || async { subscribers(redis).await == n },
    )
    .await;
}

/// Wait until `v` has applied `n` purges from the others.
async fn wait_received(v: &Vigie, n: f64) {
    wait_until(
        Duration::from_secs(10),
        "the purge from the cluster",
        || async {
            metric_value(
                &v.metrics().await,
                "vigie_cluster_purges_total{direction=\"received\"}",
            ) == Some(n)
        },
    )
    .await;
}

async fn purge(v: &Vigie, url: &str) -> (u16, String) {
    let r = client()
        .post(format!("http://{}/cache/purge", v.admin))
        .bearer_auth(TOKEN)
        .body(url.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purge_on_one_instance_is_a_miss_on_all_three() {
    let mut redis = Redis::start().await;
    let origin = Origin::start("app").await;
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("cluster.key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    let mut cluster = Vec::new();
    for node in ["edge-1", "edge-2", "edge-3"] {
        cluster.push(Vigie::start(&config(&origin, &redis, node, &key)).await);
    }
    wait_subscribed(&redis, 3).await;

    // One URL, through the admin API of edge-1: gone on all three, the rest kept.
    warm(&cluster, &["/a", "/p/x", "/p/y"]).await;
    let (status, body) = purge(&cluster[0], "http://example.com/a").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "purged 1\nsent to 2 other instances of the cluster\n");
    for v in &cluster[1..] {
        wait_received(v, 1.0).await;
    }
    for v in &cluster {
        assert_eq!(cache_status(v, "/a").await, "MISS", "on {}", v.admin);
        assert_eq!(cache_status(v, "/p/x").await, "HIT", "on {}", v.admin);
    }

    // A prefix, with the CLI on edge-3.
    let out = Command::new(bin())
        .args(["cache", "purge", "--prefix", "-c"])
        .arg(&cluster[2].config)
        .arg("http://example.com/p/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "purged 2\nsent to 2 other instances of the cluster\n"
    );
    wait_received(&cluster[0], 1.0).await;
    wait_received(&cluster[1], 2.0).await;
    for v in &cluster {
        assert_eq!(cache_status(v, "/p/x").await, "MISS", "on {}", v.admin);
        assert_eq!(cache_status(v, "/p/y").await, "MISS", "on {}", v.admin);
    }

    // Redis down: this instance purges, and says plainly the others were not told.
    redis.kill();
    let (status, body) = purge(&cluster[0], "http://example.com/a").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.starts_with("purged 1\nthe other instances of the cluster were NOT purged: "),
        "{body}"
    );
    assert_eq!(cache_status(&cluster[0], "/a").await, "MISS");
    assert_eq!(cache_status(&cluster[1], "/a").await, "HIT");
    assert_eq!(
        metric_value(
            &cluster[0].metrics().await,
            "vigie_cluster_purges_total{direction=\"failed\"}"
        ),
        Some(1.0)
    );

    // Redis back: every instance listens again by itself, and purges reach all three.
    redis.restart().await;
    wait_subscribed(&redis, 3).await;
    let (status, body) = purge(&cluster[1], "http://example.com/a").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "purged 1\nsent to 2 other instances of the cluster\n");
    wait_received(&cluster[0], 2.0).await;
    wait_received(&cluster[2], 2.0).await;
    for v in &cluster {
        assert_eq!(cache_status(v, "/a").await, "MISS", "on {}", v.admin);
    }
}
